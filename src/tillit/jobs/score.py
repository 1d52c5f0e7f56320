"""`tillit score`: one month's risk list, explanations, report and manifest, written atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import TillitConfig
from tillit.data.io import file_sha256, write_frame, write_json
from tillit.errors import TillitError
from tillit.jobs.common import LoadedData, load_data, record_run, staged_output

# An invoice that cannot be scored, as score_month takes it: its ids, amount and why.
QUARANTINED_COLUMNS = (
    "invoice_id",
    "provider_id",
    "client_id",
    "period",
    "service_type",
    "amount_sek",
    "reason",
)


@dataclass(frozen=True)
class ScoreOutcome:
    """Where a scoring run wrote its outputs, and its manifest."""

    out: Path
    report: Path
    manifest: dict[str, Any]


def period_quarantine(loaded: LoadedData, period: str) -> pd.DataFrame:
    """Invoices of the period that validation quarantined, one row each with the reasons."""
    records = loaded.validation.quarantine
    records = records[records["table"] == "invoices"]
    raw = loaded.raw["invoices"].reset_index(drop=True)
    if records.empty:
        return pd.DataFrame(columns=list(QUARANTINED_COLUMNS))
    reasons = records.groupby("row_number")["rule"].agg(lambda r: "; ".join(sorted(set(r))))
    rows = raw.loc[reasons.index]
    rows = rows.assign(reason=reasons.to_numpy())
    rows = rows[rows["period"].astype("str") == period]
    return rows[list(QUARANTINED_COLUMNS)]


def run_score(
    data_dir: Path,
    period: str,
    out: Path,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
    overwrite: bool = False,
) -> ScoreOutcome:
    """Score one month with a registered model and write the risk list, report and manifest.

    Everything is written to a scratch folder that replaces `out` only at the end,
    so a refused run never leaves a half-written or emptied output folder.
    """
    out = Path(out)
    with staged_output(out, overwrite) as work:
        manifest = _score_into(work, out, data_dir, period, config, alias, language, store)
    return ScoreOutcome(out=out, report=out / "report.html", manifest=manifest)


def _score_into(
    out: Path,
    final: Path,
    data_dir: Path,
    period: str,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
) -> dict[str, Any]:
    """Score into the scratch folder `out` (`final` is where it will be); returns the manifest."""
    from tillit.features import build_features
    from tillit.ops import tracking
    from tillit.review.report import render_report
    from tillit.review.score import ModelIdentity, score_month

    timings: dict[str, float] = {}
    began = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    loaded = load_data(data_dir, config, quarantine_dir=out)
    received = int((loaded.raw["invoices"]["period"].astype("str") == period).sum())
    if received == 0:
        raise TillitError(f"period {period} has no invoices in {data_dir}: nothing to score")
    lap("validate")
    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, config.training.model_name, alias)
    model = tracking.load_risk_model(client, ref)
    lap("load_model")
    feature_set = build_features(loaded.validation.tables, period, config.features)
    model.check_features(feature_set.features)
    lap("features")
    held = period_quarantine(loaded, period)
    described = loaded.validation.tables["invoices"]
    feature_held = feature_set.quarantine.merge(
        described[["invoice_id", "provider_id", "client_id", "service_type", "amount_sek"]],
        on="invoice_id",
    )
    held = (
        pd.concat([held, feature_held[held.columns]], ignore_index=True)
        if len(feature_held)
        else held
    )
    scoring = config.scoring.model_copy(update={"language": language})
    identity = ModelIdentity(ref.name, ref.version, ref.run_id)
    scored = score_month(
        model, feature_set.features, feature_set.findings, held, config.review, identity, scoring
    )
    lap("score_and_explain")
    if scored.summary["invoices_received"] != received:
        raise TillitError(
            f"counts do not add up for {period}: {received} received, "
            f"{scored.summary['invoices_scored']} scored + {scored.summary['invoices_quarantined']} quarantined"
        )
    run_info = {
        "period": period,
        "model_name": ref.name,
        "model_version": ref.version,
        "run_id": ref.run_id,
        "config_hash": config.hash(),
        "data_fingerprint": loaded.fingerprint,
    }
    outputs = {
        "risk_list.parquet": write_frame(scored.risk_list, out / "risk_list.parquet"),
        "risk_list.csv": write_frame(scored.risk_list, out / "risk_list.csv"),
        "explanations.parquet": write_frame(scored.explanations, out / "explanations.parquet"),
    }
    html = render_report(
        scored.risk_list,
        scored.explanations,
        {**scored.summary, **scored.triage},
        run_info,
        language,
        model.blend.finding_floor,
        detailed_invoices=scoring.report_detailed_invoices,
    )
    report_path = out / "report.html"
    report_path.write_text(html, "utf-8")
    outputs["report.html"] = report_path
    records = loaded.validation.quarantine
    if len(feature_set.quarantine):
        from_features = pd.DataFrame(
            {
                "table": "invoices",
                "row_number": -1,
                "row_key": "invoice_id=" + feature_set.quarantine["invoice_id"].astype("str"),
                "column": "",
                "rule": feature_set.quarantine["reason"].astype("str"),
                "value": None,
            }
        )
        records = pd.concat([records, from_features], ignore_index=True)
    if len(records):
        outputs["quarantine.parquet"] = write_frame(records, out / "quarantine.parquet")
    lap("write")
    timings["total"] = round(time.perf_counter() - began, 3)
    manifest = {
        **run_info,
        "model_alias": alias,
        "contract_version": CONTRACT_VERSION,
        "feature_schema": model.feature_schema,
        "language": language,
        "data": str(data_dir),
        "counts": {
            "received": received,
            "scored": scored.summary["invoices_scored"],
            "quarantined": scored.summary["invoices_quarantined"],
            "flagged": scored.summary["flagged"],
        },
        "summary": scored.summary,
        "triage": scored.triage,
        "config": config.resolved(),
        "timings_seconds": timings,
        "outputs": {name: file_sha256(path) for name, path in sorted(outputs.items())},
    }
    write_json(manifest, out / "manifest.json")
    record_run(
        store,
        "score",
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        config_hash=config.hash(),
        data_fingerprint=loaded.fingerprint,
        counts=manifest["counts"],
        output_hashes={**manifest["outputs"], "manifest.json": file_sha256(out / "manifest.json")},
        details={"period": period, "out": str(final), "alias": alias},
    )
    return manifest
