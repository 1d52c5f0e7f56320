"""The edges of the pipeline: read inputs, run the stages, write outputs.

The stages themselves (validate, features, train, score, report) are pure
functions; these jobs are what the CLI commands and Makefile targets call.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import TillitConfig
from tillit.errors import TillitError
from tillit.io import (
    data_fingerprint,
    file_sha256,
    read_frame,
    read_raw_tables,
    write_frame,
    write_json,
)
from tillit.validate import ValidationResult, check_quarantine_limit, validate_tables

TRUTH_FILE = "truth.parquet"


class OutputExistsError(TillitError):
    """A run would overwrite an earlier run's outputs."""


@dataclass(frozen=True)
class LoadedData:
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


def prepare_output_dir(out: Path, overwrite: bool) -> Path:
    """Make an empty output folder; refuse to overwrite an earlier run unless told to."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"{out} already holds an earlier run's outputs; choose another --out or pass --overwrite"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_features(data_dir: Path, period: str, out: Path, config: TillitConfig) -> dict[str, object]:
    """Build and write one month's feature table, its findings and its quarantine."""
    from tillit.features import build_features

    began = time.perf_counter()
    loaded = load_data(data_dir, config)
    if not (loaded.validation.tables["invoices"]["period"] == period).any():
        raise TillitError(f"period {period} has no invoices in {data_dir}")
    feature_set = build_features(loaded.validation.tables, period, config.features)
    out = Path(out)
    write_frame(feature_set.features, out)
    stem = out.with_suffix("")
    write_frame(feature_set.findings, stem.parent / f"{stem.name}_findings.parquet")
    write_frame(feature_set.quarantine, stem.parent / f"{stem.name}_quarantine.parquet")
    return {
        "invoices": len(feature_set.features),
        "findings": len(feature_set.findings),
        "quarantined": len(feature_set.quarantine),
        "seconds": round(time.perf_counter() - began, 2),
    }


def period_quarantine(loaded: LoadedData, period: str) -> pd.DataFrame:
    """Invoices of the period that validation quarantined, one row each with the reasons."""
    records = loaded.validation.quarantine
    records = records[records["table"] == "invoices"]
    raw = loaded.raw["invoices"].reset_index(drop=True)
    if records.empty:
        return pd.DataFrame(
            columns=[
                "invoice_id",
                "provider_id",
                "client_id",
                "period",
                "service_type",
                "amount_sek",
                "reason",
            ]
        )
    reasons = records.groupby("row_number")["rule"].agg(lambda r: "; ".join(sorted(set(r))))
    rows = raw.loc[reasons.index]
    rows = rows.assign(reason=reasons.to_numpy())
    rows = rows[rows["period"].astype("str") == period]
    return rows[
        ["invoice_id", "provider_id", "client_id", "period", "service_type", "amount_sek", "reason"]
    ]


def run_train(
    data_dir: Path, config: TillitConfig, config_path: Path | None, store: Path
) -> dict[str, object]:
    """Train, evaluate on the held-out month, log to MLflow, register the challenger."""
    from tillit import plots, tracking
    from tillit.train import train

    began = time.perf_counter()
    loaded = load_data(data_dir, config)
    truth = read_truth(data_dir)
    result = train(loaded.validation.tables, config.training, config.features, config.review, truth)
    train_seconds = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        artifacts = plots.training_artifacts(result, folder)
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
        )
    return {
        "model": ref,
        "result": result,
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(time.perf_counter() - began, 2),
        "fingerprint": loaded.fingerprint,
    }


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
    """Score one month with a registered model and write the risk list, report and manifest."""
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

    out = prepare_output_dir(out, overwrite)
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
    return {"out": out, "report": report_path, "manifest": manifest}


def run_feedback(
    data_dir: Path, decisions_file: Path, risk_list_file: Path | None, config: TillitConfig
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
    log_path = Path(data_dir) / "decision_log.parquet"
    previous_log = read_frame(log_path) if log_path.exists() else None
    log = (
        result.log_rows
        if previous_log is None
        else pd.concat([previous_log, result.log_rows], ignore_index=True)
    )
    write_frame(log, log_path)
    return {
        "decisions": len(decisions),
        "accepted": len(result.log_rows),
        "outcomes_appended": len(result.new_outcomes),
        "quarantined": result.quarantine,
        "random_checks": int((result.log_rows["selection"] == "random_check").sum()),
        "outcomes_file": outcomes_path,
    }
