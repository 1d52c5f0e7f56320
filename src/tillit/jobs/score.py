"""`tillit score`: one month's risk list, explanations, report and manifest, written atomically."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tillit import CONTRACT_VERSION, i18n
from tillit.config import TillitConfig
from tillit.data.io import read_raw_tables, write_frame, write_json
from tillit.data.lineage import placed_periods, received_in
from tillit.data.periods import nothing_to_score
from tillit.data.validate import ValidationResult, validate_tables
from tillit.errors import TillitError
from tillit.jobs.common import (
    AUDIT_LOG,
    MANIFEST,
    LoadedData,
    StageClock,
    load_data,
    refuse_unlisted_files,
    refuse_unsafe_output,
    run_facts,
    staged_output,
    write_manifest_and_record,
)
from tillit.jobs.drift import drift_payload
from tillit.ops.auditlog import log_head

if TYPE_CHECKING:
    from tillit.review.drift import DriftReport

# Every file a scoring run may write into --out (checked before the work: `--overwrite`
# replaces none of them unless an earlier run's manifest lists it).
SCORE_FILES: tuple[str, ...] = (
    "risk_list.parquet",
    "risk_list.csv",
    "explanations.parquet",
    "drift.json",
    "report.html",
    "quarantine.parquet",
    MANIFEST,
)


@dataclass(frozen=True)
class ScoreOutcome:
    """Where a scoring run wrote its outputs, and its manifest."""

    out: Path
    report: Path
    manifest: dict[str, Any]
    drift_warnings: tuple[str, ...] = ()


def period_quarantine(loaded: LoadedData, period: str) -> pd.DataFrame:
    """Invoices of the period that validation quarantined, one row each with the reasons.

    A malformed period that plausibly means this month (`2025-6`) counts as this month; one
    that cannot be placed in any month is listed in every month's run until it is corrected.
    """
    from tillit.review.score import HELD_COLUMNS

    records = loaded.validation.quarantine
    records = records[records["table"] == "invoices"]
    raw = loaded.raw["invoices"].reset_index(drop=True)
    if records.empty:
        return pd.DataFrame(columns=list(HELD_COLUMNS))
    reasons = records.groupby("row_number")["rule"].agg(lambda r: "; ".join(sorted(set(r))))
    rows = raw.loc[reasons.index]
    placed = placed_periods(rows)
    written = rows["period"].astype("str").where(rows["period"].notna(), "")
    note = pd.Series("", index=rows.index, dtype="str")
    misread = placed.notna() & (placed != written)
    note[misread] = [
        " " + i18n.text("rule.period_read_as", "en", period=month) for month in placed[misread]
    ]
    note[placed.isna()] = " " + i18n.text("rule.period_unplaceable", "en")
    rows = rows.assign(reason=reasons.to_numpy() + note.to_numpy(), period=written)
    rows = rows[((placed == period) | placed.isna()).to_numpy()]
    return rows[list(HELD_COLUMNS)]


def mark_incomplete_evidence(risk_list: pd.DataFrame, loaded: LoadedData) -> pd.DataFrame:
    """The risk list with `evidence_incomplete` and `quarantine_rules` for every invoice."""
    from tillit.data.lineage import incomplete_evidence
    from tillit.review.score import RiskList

    marks = incomplete_evidence(loaded.raw, loaded.validation.quarantine, risk_list)
    marked = risk_list.assign(
        evidence_incomplete=marks["evidence_incomplete"].to_numpy(),
        quarantine_rules=marks["quarantine_rules"].to_numpy(),
    )
    RiskList.validate(marked)
    return marked


def run_score(
    data_dir: Path,
    period: str,
    out: Path,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
    overwrite: bool = False,
    engine: str = "duckdb",
    spark_master: str | None = None,
    score_on: str = "driver",
) -> ScoreOutcome:
    """Score one month with a registered model and write the risk list, report and manifest.

    Everything is written to a scratch folder that replaces `out` only at the end,
    so a refused run never leaves a half-written or emptied output folder. `engine`
    says where the feature SQL runs (`tillit.features.engine`); `score_on` where the model
    scores: this machine (`driver`) or the Spark executors (`executors`, `--engine spark`).
    """
    out = Path(out)
    if score_on not in ("driver", "executors") or (score_on == "executors" and engine != "spark"):
        raise TillitError(f"scoring on {score_on!r} needs the driver, or executors with Spark")
    refuse_unsafe_output(out, {"--data": data_dir}, store=store)
    refuse_unlisted_files(out, SCORE_FILES, overwrite)
    with staged_output(out, overwrite) as work, _rarer_collections():
        manifest = _score_into(
            work,
            out,
            data_dir,
            period,
            config,
            alias,
            language,
            store,
            engine,
            spark_master,
            score_on,
        )
    warnings = tuple(manifest.get("drift", {}).get("warnings", ()))
    return ScoreOutcome(
        out=out, report=out / "report.html", manifest=manifest, drift_warnings=warnings
    )


def _score_into(
    out: Path,
    final: Path,
    data_dir: Path,
    period: str,
    config: TillitConfig,
    alias: str,
    language: str,
    store: Path,
    engine: str = "duckdb",
    spark_master: str | None = None,
    score_on: str = "driver",
) -> dict[str, Any]:
    """Score into the scratch folder `out` (`final` is where it will be); returns the manifest."""
    from tillit.ops import tracking

    clock = StageClock()
    lap = clock.lap

    def load_model() -> tuple[Any, Any]:
        with _no_collections_while_loading():
            client = tracking.connect(store)
            ref = tracking.resolve_alias(client, config.training.model_name, alias)
            return ref, tracking.load_risk_model(client, ref, store)

    # The model loads (MLflow, scikit-learn and unpickling, mostly Python) while the export
    # is read and checked and its features are built (Arrow and DuckDB, which let go of
    # the interpreter): on two cores they overlap. The model still comes first: a store
    # without one stops the run before anything of the export is said, written or refused,
    # and an error of the features is said where the features come in the plain order.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tillit-model") as pool:
        loading = pool.submit(load_model)
        raw: dict[str, pd.DataFrame] | None = None
        validation: ValidationResult | None = None
        feature_set: Any = None
        feature_error: Exception | None = None
        try:
            raw = read_raw_tables(data_dir, config.input)
            validation = validate_tables(raw)
            unusable: Exception | None = None
        except Exception as exc:  # said after the model's own error, if it has one
            unusable = exc
        lap("validate")
        if (
            raw is not None
            and validation is not None
            and _goes_on(raw, validation, period, config)
            and not (loading.done() and loading.exception())
            and score_on == "driver"  # the executors need the model while Spark is up
        ):
            # The explainers' imports (tillit's explanation and reasons modules) run while
            # DuckDB builds the features, after the model has loaded:
            # both import SciPy, whose lazy submodules are not safe to import from two
            # threads at once (seen: "Module 'scipy' has no attribute '_lib'").
            warming = threading.Thread(
                target=_import_explainers, args=(loading,), name="tillit-imports", daemon=True
            )
            warming.start()
            try:
                feature_set, _ = _features_on(
                    engine, spark_master, validation.tables, period, config
                )
            except Exception as exc:  # said once the checks before it have passed
                feature_error = exc
            warming.join()
            lap("features")
        ref, model = loading.result()
    if unusable is not None:
        raise unusable
    loaded = load_data(data_dir, config, quarantine_dir=out, raw=raw, validation=validation)
    received = int(received_in(loaded.raw["invoices"], period).sum())
    if received == 0:
        raise nothing_to_score(period, data_dir, placed_periods(loaded.raw["invoices"]))
    if feature_error is not None:
        raise feature_error
    risk_scores: pd.Series | None = None
    lap("load_model")
    if feature_set is None:  # scored on the executors, or a run the checks above would stop
        on_executors = None
        if score_on == "executors":

            def on_executors(session: Any, features: pd.DataFrame) -> pd.Series:
                from tillit.review.spark_scores import executor_risk

                model.check_features(features)
                return executor_risk(session, tracking.connect(store), store, ref, model, features)

        feature_set, risk_scores = _features_on(
            engine, spark_master, loaded.validation.tables, period, config, on_executors
        )
        lap("features")
    from tillit.features import feature_catalog
    from tillit.review.report import render_report
    from tillit.review.score import ModelIdentity, score_month

    model.check_features(feature_set.features)
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
        model,
        feature_set.features,
        feature_set.findings,
        held,
        config.review,
        identity,
        scoring,
        feature_catalog(config.features),
        risk_scores=risk_scores,
    )
    risk_list = mark_incomplete_evidence(scored.risk_list, loaded)
    summary = {
        **scored.summary,
        "invoices_evidence_incomplete": int(risk_list["evidence_incomplete"].sum()),
    }
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
    drift, drift_note = _month_drift(model, feature_set.features, scored.risk_list, period, config)
    lap("drift")
    # The Parquet files are written by Arrow (its own threads, without the interpreter
    # lock) on a side thread while the CSV and the report are made here. The writer gets
    # shallow copies: the same column arrays (nothing copied, nothing written to), but
    # frame objects of its own, so pandas' lazy bookkeeping on a read (block
    # consolidation, cached columns) never changes an object the other thread reads.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tillit-write") as writer:
        parquet = {
            name: writer.submit(write_frame, frame.copy(deep=False), out / name)
            for name, frame in (
                ("risk_list.parquet", risk_list),
                ("explanations.parquet", scored.explanations),
            )
        }
        csv = _write_risk_list_csv(risk_list, out / "risk_list.csv", language)
        html = render_report(
            risk_list,
            scored.explanations,
            {**summary, **scored.triage},
            run_info,
            language,
            model.blend.finding_floor,
            drift_section=_drift_section(drift, drift_note, language, config),
            detailed_invoices=scoring.report_detailed_invoices,
            descriptions=feature_catalog(config.features),
        )
        outputs = {
            "risk_list.parquet": parquet["risk_list.parquet"].result(),
            "risk_list.csv": csv,
            "explanations.parquet": parquet["explanations.parquet"].result(),
        }
    outputs["drift.json"] = write_json(
        drift_payload(drift, drift_note, ref.version), out / "drift.json"
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
    timings = clock.total()
    from tillit.features import FEATURE_DEFINITIONS_VERSION

    manifest = {
        **run_info,
        "model_alias": alias,
        # The audit log's newest record before this run: a copy outside the log.
        "audit_log_head": log_head(store / AUDIT_LOG),
        "contract_version": CONTRACT_VERSION,
        "feature_schema": model.feature_schema,
        # What the model's columns meant when it was trained, and what they mean now.
        "feature_definitions": {
            "model": int(getattr(model, "feature_definitions", 1)),
            "features": FEATURE_DEFINITIONS_VERSION,
        },
        "language": language,
        "feature_engine": engine,
        "scored_on": score_on,
        "data": str(data_dir),
        "counts": {
            "received": received,
            "scored": scored.summary["invoices_scored"],
            "quarantined": scored.summary["invoices_quarantined"],
            "flagged": scored.summary["flagged"],
        },
        "summary": summary,
        "triage": scored.triage,
        "drift": {
            "drifted": bool(drift is not None and drift.drifted),
            "warnings": list(drift.warnings) if drift is not None else [],
            "note": drift_note,
        },
        **run_facts(config, timings, outputs),
    }
    details = {"period": period, "out": str(final), "alias": alias}
    write_manifest_and_record(
        store, "score", out, manifest, ref, config.hash(), loaded.fingerprint, details
    )
    if drift is not None:
        _log_drift(store, ref, drift, out / "drift.json")
    return manifest


@dataclass
class _Collections:
    """The scores running in this process and the thresholds in place before the first;
    the models loading and whether the collector was on before the first of them."""

    lock: threading.Lock
    running: int = 0
    before: tuple[int, ...] = ()
    loading: int = 0
    was_enabled: bool = False


_COLLECTIONS = _Collections(threading.Lock())


@contextmanager
def _rarer_collections() -> Iterator[None]:
    """Python's cycle collector runs less often while a month is scored.

    Why: the run's imports (MLflow, SHAP, scikit-learn) leave about half a million
    long-lived objects, and every full collection walks them all; at the default
    thresholds a month's run made seven, about a second of CPU. Fewer, later collections
    free the same garbage; no result depends on when. The thresholds are process-wide:
    only the first of overlapping scores (threads) saves them and only the last restores
    them, else the second would save the first's raised ones and leave them set.
    """
    state = _COLLECTIONS
    with state.lock:
        if state.running == 0:
            state.before = gc.get_threshold()
            gc.set_threshold(10_000, 20, 20)
        state.running += 1
    try:
        yield
    finally:
        with state.lock:
            state.running -= 1
            if state.running == 0:
                gc.set_threshold(*state.before)


@contextmanager
def _no_collections_while_loading() -> Iterator[None]:
    """Python's cycle collector is off while the model loads (MLflow, scikit-learn, the pickle).

    Why: those imports leave some 400,000 long-lived objects, and the collections on the
    way walk the newest of them again and again: on the 1.5 x Stockholm month three
    quarters of the run's time in the collector (timed with `gc.callbacks`) was on the
    model's thread. Imports make next to no cyclic garbage, and the export read and
    checked meanwhile frees its frames by reference counting (the month's peak memory is
    the same with the collector off for the whole run); the collector is on again once
    the model is there, loaded or refused, and collects what is left. The switch is
    process-wide: the first of overlapping loads turns it off (if it was on) and the last
    turns it back on.
    """
    state = _COLLECTIONS
    with state.lock:
        if state.loading == 0:
            state.was_enabled = gc.isenabled()
            gc.disable()
        state.loading += 1
    try:
        yield
    finally:
        with state.lock:
            state.loading -= 1
            if state.loading == 0 and state.was_enabled:
                gc.enable()


def _goes_on(
    raw: Mapping[str, pd.DataFrame], validation: ValidationResult, period: str, config: TillitConfig
) -> bool:
    """Whether the checks after the model's would let this export on to its features.

    Never raises: an export these checks cannot read is left to them, after the model's error.
    """
    try:
        if validation.over_limit(config.validation.max_quarantine_share):
            return False
        return bool(received_in(raw["invoices"], period).any())
    except Exception:
        return False


def _import_explainers(after: Future[Any] | None = None) -> None:
    """Import what explaining the flagged invoices needs; a failure is left to the real import.

    `after`: the model's loading, waited for first (one thread at a time imports SciPy).
    """
    import importlib

    if after is not None:
        wait([after])

    for module in ("tillit.modelling.explain", "tillit.review.reasons"):
        try:
            importlib.import_module(module)
        except Exception:  # the import in the stage says what went wrong
            continue
    try:  # without shap's kernel alone (another shap release), shap itself is imported here
        from tillit.modelling.explain import _shap_kernel

        if _shap_kernel() is None:
            importlib.import_module("shap")
    except Exception:
        pass


def _features_on(
    engine: str,
    spark_master: str | None,
    tables: Mapping[str, pd.DataFrame],
    period: str,
    config: TillitConfig,
    on_executors: Callable[[Any, pd.DataFrame], pd.Series] | None = None,
) -> tuple[Any, pd.Series | None]:
    """The month's features from the validated tables, built by the named SQL engine.

    With `on_executors` (Spark only), also the risk by invoice_id it computes with the
    engine's session before the session closes; else None (scored on the driver).
    """
    from tillit.features import build_features
    from tillit.features.engine import connect

    if engine == "duckdb":
        return build_features(tables, period, config.features), None
    sql_engine = connect(engine, spark_master)
    try:
        feature_set = build_features(tables, period, config.features, sql_engine)
        if on_executors is None:
            return feature_set, None
        from tillit.features.spark_engine import SparkEngine  # imported by connect already

        assert isinstance(sql_engine, SparkEngine)
        return feature_set, on_executors(sql_engine.session, feature_set.features)
    finally:
        sql_engine.close()


def _write_risk_list_csv(risk_list: pd.DataFrame, path: Path, language: str) -> Path:
    """English: today's CSV. Swedish: Swedish headers and values, as Swedish Excel opens it."""
    from tillit.data.io import SWEDISH_EXCEL
    from tillit.review.score import spreadsheet_risk_list

    if language == "sv":
        return write_frame(spreadsheet_risk_list(risk_list, language), path, dialect=SWEDISH_EXCEL)
    return write_frame(risk_list, path)


def _log_drift(store: Path, ref: Any, drift: DriftReport, drift_file: Path) -> None:
    """Drift figures to MLflow; a tracking failure is said, never a reason to lose the list."""
    import warnings

    from mlflow.exceptions import MlflowException

    from tillit.ops import tracking

    try:
        tracking.log_drift(store, ref, drift, drift_file)
    except (MlflowException, OSError) as exc:
        warnings.warn(f"drift figures not logged to MLflow: {exc}", stacklevel=2)


def _month_drift(
    model: Any, features: pd.DataFrame, risk_list: pd.DataFrame, period: str, config: TillitConfig
) -> tuple[DriftReport | None, str]:
    """The month against the model's training months, from the risk list's scores."""
    from tillit.jobs.drift import month_drift

    if features.empty:
        return None, "no invoice of the month could be scored"
    scored = risk_list[risk_list["status"] == "scored"].set_index("invoice_id")["risk_score"]
    risk = features["invoice_id"].map(scored).to_numpy(dtype="float64")
    return month_drift(model, features, risk, period, config)


def _drift_section(
    drift: DriftReport | None, note: str, language: str, config: TillitConfig
) -> str:
    from html import escape

    from tillit.review.drift import drift_section_html

    if drift is None:
        return f"<p>{escape(note)}</p>"
    return drift_section_html(
        drift, language, config.drift.report_features, tuple(config.drift.report_only_prefixes)
    )
