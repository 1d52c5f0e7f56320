"""The edges of the pipeline: read inputs, run the stages, write outputs.

The stages themselves (validate, features, train, score, report) are pure
functions; these jobs are what the CLI commands and Makefile targets call.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import TillitConfig
from tillit.errors import QuarantineLimitError, TillitError
from tillit.io import (
    data_fingerprint,
    file_sha256,
    read_frame,
    read_raw_tables,
    write_frame,
    write_json,
)
from tillit.validate import ValidationResult, check_quarantine_limit, validate_tables

if TYPE_CHECKING:
    from tillit.fairness import FairnessAudit
    from tillit.tracking import ModelRef, PromotionDecision
    from tillit.train import TrainingResult

TRUTH_FILE = "truth.parquet"
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
AUDIT_LOG = "audit_log.jsonl"


class OutputExistsError(TillitError):
    """A run would overwrite an earlier run's outputs."""


@dataclass(frozen=True)
class LoadedData:
    """A contract folder as read (untyped), as validated, and its fingerprint."""

    raw: dict[str, pd.DataFrame]
    validation: ValidationResult
    fingerprint: str


def load_data(
    data_dir: Path, config: TillitConfig, quarantine_dir: Path | None = None
) -> LoadedData:
    """Read and validate a contract folder; stop when it is unusable.

    The quarantine is written to `quarantine_dir` before the limit is checked,
    so a refused run still leaves the record of why.
    """
    raw = read_raw_tables(data_dir)
    validation = validate_tables(raw, config.validation)
    if quarantine_dir is not None and not validation.quarantine.empty:
        write_frame(validation.quarantine, quarantine_dir / "quarantine.parquet")
    check_quarantine_limit(validation, config.validation)
    return LoadedData(raw=raw, validation=validation, fingerprint=data_fingerprint(data_dir))


def read_truth(data_dir: Path) -> pd.DataFrame | None:
    """Simulated ground truth, for evaluation only: scoring never reads it."""
    path = Path(data_dir) / TRUTH_FILE
    return read_frame(path) if path.is_file() else None


def refuse_existing_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's outputs unless told to; touches nothing."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{out} already holds an earlier run's outputs; choose another --out or pass --overwrite"
        )


@contextmanager
def staged_output(out: Path, overwrite: bool) -> Iterator[Path]:
    """A scratch folder that replaces `out` only when the run succeeds.

    A refused or failed run leaves an earlier run's outputs as they were. A run
    stopped by the quarantine limit still leaves its quarantine records in `out`
    when `out` held nothing before, so the reason can be read.
    """
    out = Path(out)
    refuse_existing_output(out, overwrite)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except QuarantineLimitError:
        if not out.exists() or not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
            work.replace(out)
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.replace(out)


def run_features(data_dir: Path, period: str, out: Path, config: TillitConfig) -> dict[str, object]:
    """Build and write one month's feature table, its findings and its quarantine.

    Rows the contract check quarantined are written beside it as
    `<name>_validation_quarantine.parquet`, so nothing is dropped without a record.
    """
    from tillit.features import build_features

    began = time.perf_counter()
    out = Path(out)
    stem = out.with_suffix("")
    loaded = load_data(data_dir, config)
    if len(loaded.validation.quarantine):
        write_frame(
            loaded.validation.quarantine,
            stem.parent / f"{stem.name}_validation_quarantine.parquet",
        )
    if not (loaded.validation.tables["invoices"]["period"] == period).any():
        raise TillitError(f"period {period} has no invoices in {data_dir}")
    feature_set = build_features(loaded.validation.tables, period, config.features)
    write_frame(feature_set.features, out)
    write_frame(feature_set.findings, stem.parent / f"{stem.name}_findings.parquet")
    write_frame(feature_set.quarantine, stem.parent / f"{stem.name}_quarantine.parquet")
    return {
        "invoices": len(feature_set.features),
        "findings": len(feature_set.findings),
        "quarantined": len(feature_set.quarantine),
        "rows_quarantined_by_validation": len(loaded.validation.quarantine),
        "seconds": round(time.perf_counter() - began, 2),
    }


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


def run_train(
    data_dir: Path, config: TillitConfig, config_path: Path | None, store: Path
) -> dict[str, object]:
    """Train, evaluate on the held-out month, log to MLflow, register the challenger.

    The fairness audit of the held-out month and the model card go with the run
    and are written beside the registry in `<store>/model_cards/`; the audit log
    gets a record.
    """
    from tillit import plots, tracking
    from tillit.fairness import fairness_audit
    from tillit.train import train

    began = time.perf_counter()
    loaded = load_data(data_dir, config)
    truth = read_truth(data_dir)
    result = train(loaded.validation.tables, config.training, config.features, config.review, truth)
    train_seconds = time.perf_counter() - began
    fairness = fairness_audit(result.evaluation.audit_frame, "label", "flagged")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        artifacts = plots.training_artifacts(result, folder)
        (folder / "fairness").mkdir()
        fairness.by_group.to_csv(folder / "fairness" / "by_group.csv", index=False)
        fairness.disparity.to_csv(folder / "fairness" / "disparity.csv", index=False)
        artifacts["fairness"] = folder / "fairness"
        if config_path is not None:
            shutil.copy(config_path, folder / "config.yaml")
            artifacts["config"] = folder / "config.yaml"
        ref = tracking.log_training(
            result,
            config.resolved(),
            config.hash(),
            loaded.fingerprint,
            config.training.model_name,
            artifacts,
            store,
            extra_metrics=fairness.summary_metrics(),
        )
    card_paths = write_model_card(result, ref, fairness, config, loaded.fingerprint, store)
    audit(
        store,
        "train",
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        config_hash=config.hash(),
        data_fingerprint=loaded.fingerprint,
        counts={
            "invoices": int(sum(result.invoices_per_period.values())),
            "quarantined_invoices": result.quarantined_invoices,
            **result.label_counts,
        },
        output_hashes={path.name: file_sha256(path) for path in card_paths},
        details={
            "eval_period": result.evaluation.period,
            "evaluation_basis": result.evaluation.basis,
            "eval_combined_average_precision": result.evaluation.metrics.get(
                "combined_average_precision"
            ),
            "eval_combined_recall_at_k": result.evaluation.metrics.get("combined_recall_at_k"),
        },
    )
    return {
        "model": ref,
        "result": result,
        "fairness": fairness,
        "model_card": card_paths,
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(time.perf_counter() - began, 2),
        "fingerprint": loaded.fingerprint,
    }


def write_model_card(
    result: TrainingResult,
    ref: ModelRef,
    fairness: FairnessAudit,
    config: TillitConfig,
    fingerprint: str,
    store: Path,
) -> list[Path]:
    """Render the model card of a registered version, log it to its run, write it beside the model."""
    import datetime as dt

    from tillit import tracking
    from tillit.features import FEATURE_DESCRIPTIONS
    from tillit.modelcard import ModelCardData, render_model_card

    evaluation = result.evaluation
    model = result.model
    metrics = evaluation.metrics

    def strip(prefix: str) -> dict[str, float]:
        """The metrics of one ranking, without the per-scheme recalls."""
        return {
            k.removeprefix(prefix): v
            for k, v in metrics.items()
            if k.startswith(prefix) and not k.startswith(f"{prefix}recall_at_k_")
        }

    card = ModelCardData(
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        created_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        training_data={
            "periods": f"{model.trained_periods[0]} to {model.trained_periods[-1]}",
            "invoices_per_period": result.invoices_per_period,
            "labels": result.label_counts,
            "quarantined_invoices": result.quarantined_invoices,
        },
        features=[
            (c, FEATURE_DESCRIPTIONS.get(c, {}).get("en", "")) for c in model.feature_columns
        ],
        evaluation=strip("combined_"),
        evaluation_basis=evaluation.basis,
        eval_period=evaluation.period,
        capacity_k=evaluation.k,
        per_scheme_recall={
            k.removeprefix("combined_recall_at_k_"): v
            for k, v in metrics.items()
            if k.startswith("combined_recall_at_k_")
        },
        baseline=strip("rule_billed_over_registered_"),
        fairness=fairness,
        config_hash=config.hash(),
        data_fingerprint=fingerprint,
        git_commit=tracking.git_commit(),
        contract_version=model.contract_version,
        feature_schema=model.feature_schema,
    )
    markdown, html = render_model_card(card)
    folder = store / "model_cards"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{ref.name}-v{ref.version}"
    paths = [folder / f"{stem}.md", folder / f"{stem}.html"]
    paths[0].write_text(markdown, "utf-8")
    paths[1].write_text(html, "utf-8")
    client = tracking.connect(store)
    client.log_text(ref.run_id, markdown, "model_card/model_card.md")
    client.log_text(ref.run_id, html, "model_card/model_card.html")
    return paths


def run_score(
    data_dir: Path,
    period: str,
    out: Path,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
    overwrite: bool = False,
) -> dict[str, object]:
    """Score one month with a registered model and write the risk list, report and manifest.

    Everything is written to a scratch folder that replaces `out` only at the end,
    so a refused run never leaves a half-written or emptied output folder.
    """
    out = Path(out)
    with staged_output(out, overwrite) as work:
        outcome = _score_into(work, out, data_dir, period, config, alias, language, store)
    return {**outcome, "out": out, "report": out / "report.html"}


def _score_into(
    out: Path,
    final: Path,
    data_dir: Path,
    period: str,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
) -> dict[str, object]:
    from tillit import tracking
    from tillit.features import build_features
    from tillit.report import render_report
    from tillit.score import ModelIdentity, ScoringConfig, score_month

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
    scoring = ScoringConfig(n_reasons=config.scoring.n_reasons, language=language)
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
        scored.summary,
        run_info,
        language,
        model.blend.finding_floor,
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
        "config": config.resolved(),
        "timings_seconds": timings,
        "outputs": {name: file_sha256(path) for name, path in sorted(outputs.items())},
    }
    write_json(manifest, out / "manifest.json")
    audit(
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
    return {"out": out, "report": report_path, "manifest": manifest}


def run_feedback(
    data_dir: Path,
    decisions_file: Path,
    risk_list_file: Path | None,
    config: TillitConfig,
    store: Path,
) -> dict[str, object]:
    """Validate decisions and append them to audit_outcomes and the decision log in the data folder.

    Rows already in the folder are never changed: CSV files get new lines appended,
    Parquet files are rewritten with the old rows first (atomically, via a temporary file).
    """
    import datetime as dt

    from tillit.feedback import append_outcomes, apply_decisions
    from tillit.io import append_table_rows, find_table_file

    loaded = load_data(data_dir, config)
    decisions = read_frame(decisions_file)
    decisions_sha256 = file_sha256(decisions_file)
    log_path = Path(data_dir) / "decision_log.parquet"
    previous_log = read_frame(log_path) if log_path.exists() else None
    if previous_log is not None and "decisions_sha256" in previous_log:
        earlier = previous_log.loc[previous_log["decisions_sha256"] == decisions_sha256]
        if len(earlier):
            raise TillitError(
                f"{decisions_file} was already applied on {earlier['recorded_utc'].iloc[0]}; "
                "nothing was appended (a later decision goes in a new file)"
            )
    risk_list = read_frame(risk_list_file) if risk_list_file is not None else None
    if risk_list is not None and "flagged" in risk_list and risk_list["flagged"].dtype != bool:
        risk_list["flagged"] = risk_list["flagged"].astype("str").str.lower() == "true"
    now = dt.datetime.now(dt.UTC)
    result = apply_decisions(
        loaded.validation.tables,
        decisions,
        risk_list,
        now.date(),
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    outcomes_path = (
        find_table_file(data_dir, "audit_outcomes") or Path(data_dir) / "audit_outcomes.parquet"
    )
    existing = read_frame(outcomes_path) if outcomes_path.exists() else None
    append_table_rows(
        outcomes_path, "audit_outcomes", append_outcomes(existing, result.new_outcomes), existing
    )
    # Outcomes first: after a crash in between, running the file again appends the
    # same decisions once more, which changes no label.
    new_log = result.log_rows.assign(decisions_sha256=decisions_sha256)
    log = new_log if previous_log is None else pd.concat([previous_log, new_log], ignore_index=True)
    write_frame(log, log_path)
    audit(
        store,
        "feedback",
        data_fingerprint=loaded.fingerprint,
        counts={
            "decisions": len(decisions),
            "accepted": len(result.log_rows),
            "rejected": int(result.quarantine["row_number"].nunique()),
            "outcomes_appended": len(result.new_outcomes),
        },
        output_hashes={
            outcomes_path.name: file_sha256(outcomes_path),
            log_path.name: file_sha256(log_path),
        },
        details={
            "decisions_file": str(decisions_file),
            "decisions_sha256": decisions_sha256,
        },
    )
    return {
        "decisions": len(decisions),
        "accepted": len(result.log_rows),
        "outcomes_appended": len(result.new_outcomes),
        "quarantined": result.quarantine,
        "rejected": int(result.quarantine["row_number"].nunique()),
        "random_checks": int((result.log_rows["selection"] == "random_check").sum()),
        "outcomes_file": outcomes_path,
    }


def run_pseudonymise(
    in_dir: Path, out_dir: Path, key_file: Path, new_key: bool, config: TillitConfig
) -> dict[str, int]:
    """Pseudonymise every table file of an export folder into a new folder, same formats.

    Every `.csv` and `.parquet` file is read (not only contract tables: an export
    may carry more), so identifiers cannot slip through in a table tillit does not use.
    """
    import os

    from tillit.pseudonymise import generate_key, load_key, pseudonymise_tables

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise TillitError(f"input folder {in_dir} does not exist")
    if out_dir.resolve() == in_dir.resolve():
        raise TillitError(
            "--out must be another folder than --in: the originals are not overwritten"
        )
    if new_key:
        if key_file.exists():
            raise TillitError(
                f"{key_file} exists: refusing to replace a key (old pseudonyms would no longer link)"
            )
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(generate_key())
    key = load_key(key_file)
    files = sorted(p for p in in_dir.iterdir() if p.suffix in (".csv", ".parquet") and p.is_file())
    tables = {path.stem: read_frame(path) for path in files}
    cleaned = pseudonymise_tables(tables, key, config.pseudonymise)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        write_frame(cleaned[path.stem], out_dir / path.name)
    return {"files": len(files), "rows": int(sum(len(t) for t in cleaned.values()))}


def run_promote(
    config: TillitConfig, store: Path, force: bool = False, reason: str | None = None
) -> PromotionDecision:
    """Promote the challenger if it beats the champion, and record the decision in the audit log."""
    from tillit.tracking import promote

    decision = promote(
        config.training.model_name, config.training.primary_metric, force, reason, store
    )
    audit(
        store,
        "promote",
        model_name=decision.challenger.name,
        model_version=decision.challenger.version,
        run_id=decision.challenger.run_id,
        config_hash=config.hash(),
        details={
            "promoted": decision.promoted,
            "message": decision.message,
            "forced": force,
            "reason": reason,
            "previous_champion": decision.champion.version if decision.champion else None,
        },
    )
    return decision


def audit(store: Path, command: str, **fields: object) -> None:
    """Append one record to the audit log beside the model registry."""
    from tillit.auditlog import append_record

    append_record(store / AUDIT_LOG, command=command, **fields)  # type: ignore[arg-type]
