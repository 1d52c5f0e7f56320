"""`tillit score --table FILE --spec SPEC --period P|FROM..TO --out OUT`: the table's risk list.

Checks the table at the door, derives entity history over the whole table (a row's
history is every earlier row, also before the periods scored), scores the rows of
the chosen periods with the registered model, and writes into OUT: the risk list
(Parquet and CSV), the explanations of flagged rows, report.html, the model card,
manifest.json and, when rows broke a rule, quarantine.parquet; rows of the chosen
periods that broke a rule are on the risk list too, flagged as quarantined.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import file_sha256, write_frame
from tillit.data.periods import parse_range
from tillit.errors import NothingToScoreError, TillitError
from tillit.jobs.common import (
    MANIFEST,
    refuse_earlier_outputs,
    refuse_unsafe_output,
    staged_output,
    write_manifest_and_record,
)
from tillit.jobs.table_feedback import decisions_log_path
from tillit.jobs.table_train import load_table
from tillit.tables.features import NO_TIME_PERIOD
from tillit.tables.spec import TableSpecFile, load_spec

# Every file a table-mode scoring run may write into --out (checked before the work).
TABLE_SCORE_FILES: tuple[str, ...] = (
    "risk_list.parquet",
    "risk_list.csv",
    "explanations.parquet",
    "report.html",
    "model_card.md",
    "model_card.html",
    "quarantine.parquet",
    MANIFEST,
)


@dataclass(frozen=True)
class TableScoreOutcome:
    """Where the outputs went and what the manifest says."""

    out: Path
    report: Path
    manifest: dict[str, Any]


def parse_selection(text: str, spec: TableSpecFile) -> tuple[str, str]:
    """`P` or `FROM..TO` (both included) in the spec's period format; `all` without time."""
    if spec.time is None:
        if text != NO_TIME_PERIOD:
            raise TillitError(
                f"the spec {spec.name!r} has no time column: score it with --period all"
            )
        return NO_TIME_PERIOD, NO_TIME_PERIOD
    return parse_range(text, spec.period)


def run_table_score(
    table_path: Path,
    spec_path: Path,
    selection: str,
    out: Path,
    config: TillitConfig,
    model_alias: str,
    store: Path,
    overwrite: bool,
    lang: str = "en",
) -> TableScoreOutcome:
    """Score the chosen periods of a table; outputs replace OUT only when the run succeeds.

    `lang` is the language of the reasons, the report and the CSV's headers and words
    (the Parquet keeps the codes, as in home care).
    """
    from tillit.ops import tracking
    from tillit.review.modelcard import render_model_card
    from tillit.tables.features import entity_history
    from tillit.tables.held import held_rows, with_held_rows
    from tillit.tables.report import render_table_report
    from tillit.tables.score import score_rows
    from tillit.tables.train import model_inputs

    began = time.perf_counter()
    refuse_unsafe_output(
        out,
        # The decision log beside the table is read as labels: an input too.
        {
            "--table": table_path,
            "--spec": spec_path,
            "decision log": decisions_log_path(table_path),
        },
        store=store,
    )
    refuse_earlier_outputs(out, TABLE_SCORE_FILES, overwrite)
    spec = load_spec(spec_path)
    first, last = parse_selection(selection, spec)
    with staged_output(out, overwrite) as work:
        # The model first: a store without one stops the run before the table is read.
        client = tracking.connect(store)
        ref = tracking.resolve_alias(client, spec.name, model_alias)
        model = tracking.load_risk_model(client, ref, store)
        loaded = load_table(table_path, spec_path, config, work)
        table = loaded.table
        history = entity_history(table, spec)
        periods = history["period"].to_numpy()
        chosen = (periods >= first) & (periods <= last)
        if not chosen.any():
            known = np.unique(periods)
            raise NothingToScoreError(
                f"no rows of the table in {selection}: nothing to score; it holds "
                f"{known[0]}..{known[-1]}"
            )
        X = model_inputs(table, history, spec).loc[chosen]
        identity = {"model_name": ref.name, "model_version": ref.version, "run_id": ref.run_id}
        scored = score_rows(
            model,
            table.loc[chosen],
            X,
            periods[chosen],
            spec,
            identity,
            config.scoring.n_reasons,
            lang,
        )
        # Rows the door quarantined in these periods are listed too: received = scored + held.
        held = held_rows(
            loaded.quarantined_raw if loaded.quarantined_raw is not None else table.head(0),
            loaded.validation.quarantine,
            spec,
            first,
            last,
            identity,
            lang,
        )
        scored = with_held_rows(scored, held, spec)
        summary = loaded.validation.summary[spec.name]
        counts = {
            **scored.counts,
            "table_rows_read": int(summary["rows_read"]),
            "table_rows_quarantined": int(summary["rows_quarantined"]),
        }
        write_frame(scored.risk_list, work / "risk_list.parquet")
        write_risk_list_csv(scored.risk_list, work / "risk_list.csv", lang, spec.required_columns())
        write_frame(scored.explanations, work / "explanations.parquet")
        html = render_table_report(
            scored.risk_list,
            scored.explanations,
            spec_name=spec.name,
            id_column=spec.id,
            amount_column=spec.amount,
            selection=selection,
            model=identity,
            evaluation=model.evaluation,
            counts=counts,
            weights=model.weights,
            lang=lang,
        )
        (work / "report.html").write_text(html, "utf-8")
        card_files: list[str] = []
        if model.card is not None:
            from dataclasses import replace

            markdown, card_html = render_model_card(replace(model.card, model_version=ref.version))
            (work / "model_card.md").write_text(markdown, "utf-8")
            (work / "model_card.html").write_text(card_html, "utf-8")
            card_files = ["model_card.md", "model_card.html"]
        outputs = [
            "risk_list.parquet",
            "risk_list.csv",
            "explanations.parquet",
            "report.html",
            *card_files,
        ]
        if loaded.quarantine_file is not None:
            outputs.append("quarantine.parquet")
        manifest: dict[str, Any] = {
            "table": str(table_path),
            "table_spec": spec.name,
            "spec_hash": spec.hash(),
            "periods": selection,
            "model": identity | {"alias": model_alias},
            "feature_schema": model.feature_schema,
            "language": lang,
            "config_hash": config.hash(),
            "data_fingerprint": loaded.fingerprint,
            "git_commit": tracking.git_commit(),
            "counts": counts,
            "timings_seconds": {"total": round(time.perf_counter() - began, 2)},
            "outputs": {name: file_sha256(work / name) for name in outputs},
        }
        details = {"table_spec": spec.name, "periods": selection, "out": str(out)}
        write_manifest_and_record(
            store, "score", work, manifest, ref, config.hash(), loaded.fingerprint, details
        )
    return TableScoreOutcome(out=out, report=out / "report.html", manifest=manifest)


def write_risk_list_csv(
    risk_list: pd.DataFrame, path: Path, lang: str, own_columns: Iterable[str] = ()
) -> Path:
    """English: the codes, as the Parquet. Swedish: headers and words in Swedish, as Swedish
    Excel opens it; the spec's own columns (`own_columns`) keep their names, even one that
    shares a name with a home-care column (`provider_id` would read "Utförare",
    `invoice_id` "Faktura" in a stream whose rows are trips or card payments)."""
    from tillit.core.risk_list import spreadsheet
    from tillit.data.io import SWEDISH_EXCEL
    from tillit.i18n import words

    if lang == "en":
        return write_frame(risk_list, path)
    table = words("table", lang)
    names = {k.removeprefix("column."): v for k, v in table.items() if k.startswith("column.")}
    names |= {column: column for column in own_columns}
    return write_frame(spreadsheet(risk_list, lang, names), path, dialect=SWEDISH_EXCEL)
