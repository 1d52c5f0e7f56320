"""Benchmark of every pipeline stage on realistic sizes; what `make bench` runs.

Each stage runs in its own child process (this file re-invoked with `--stage NAME`),
so its peak resident memory (`ru_maxrss`) is its own and not that of an earlier
stage. Inside the child the stage call is timed with `time.perf_counter`:
interpreter start-up, imports and reading the stage's inputs are left out of the
stage's seconds, and the parent also records the wall time of the whole child.
The child reports one JSON line on stdout. `tillit score` is run as a user runs
it: the installed command, timed from outside, its peak memory from `os.wait4`.

Data sets (fixed seeds):
- the default municipality, `SimulationConfig(clients=3000, months=12, seed=7)`,
  about 2 M visits;
- a Stockholm-size month, `SimulationConfig(clients=9200, months=4, seed=7)`: its
  last month has about 14,000 invoices and 620,000 visits (clients were tuned
  for that; the actual numbers are reported).

Generated data lives in `bench/data/` (git-ignored) and is reused while size,
seed and simulator source are unchanged; `--fresh` regenerates it. The simulation
of the default municipality is timed on every run either way. The Stockholm-size
model is trained into a temporary MLflow store, removed at the end.

Memory is in MiB (2**20 bytes); the 3 GB targets are read as 3 GiB = 3072 MiB.
A stage that fails is recorded with its error and printed; the others still run.
Each child's stdout and stderr are kept in `bench/data/logs/`.

Usage:
    python bench/run.py --out bench/results.json [--fresh] [--stages simulate,train,...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DATA_ROOT = BENCH / "data"
RESULT_MARKER = "BENCH_RESULT "
CHILD_TIMEOUT_S = 900
GIB_MB = 3 * 1024.0

PACKAGES = (
    "tillit",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "pandera",
    "scikit-learn",
    "scipy",
    "lightgbm",
    "shap",
    "numba",
    "mlflow",
    "psutil",
)


@dataclass(frozen=True)
class Dataset:
    name: str
    clients: int
    months: int
    seed: int

    @property
    def folder(self) -> Path:
        return DATA_ROOT / f"{self.name}-c{self.clients}-m{self.months}-s{self.seed}"

    @property
    def validated_cache(self) -> Path:
        return DATA_ROOT / "cache" / f"{self.folder.name}-validated.pkl"

    def key(self) -> dict[str, Any]:
        """What must match for generated data to be reused."""
        return {
            "clients": self.clients,
            "months": self.months,
            "seed": self.seed,
            "simulator_sha256": _simulator_sha256(),
        }


DEFAULT = Dataset("municipality", clients=3000, months=12, seed=7)
# 9,200 clients over 4 months: the last month has ~14,000 invoices and ~620,000 visits
# (11,000 gave 16,700 and 745,000; the simulated municipality grows month by month).
STOCKHOLM = Dataset("stockholm", clients=9200, months=4, seed=7)

# Targets: metric -> upper bound. Seconds are the stage's own (score: wall of the command).
TARGETS: dict[str, dict[str, float]] = {
    "simulate": {"seconds": 60.0},
    "features_one_period": {"seconds": 3.0, "peak_rss_mb": GIB_MB},
    "features_all_periods": {"seconds": 20.0, "peak_rss_mb": GIB_MB},
    "train": {"seconds": 60.0},
    "score": {"seconds": 15.0, "peak_rss_mb": GIB_MB},
    "explain_production": {"seconds": 10.0},
}


# --------------------------------------------------------------------------- helpers


def _ru_maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(who).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - began, 3)


def _simulator_sha256() -> str:
    spec = find_spec("tillit.simulate")
    if spec is None or spec.origin is None:
        return "unknown"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


def _read_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / "bench_meta.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _dataset_ready(dataset: Dataset) -> dict[str, Any] | None:
    """The metadata of reusable generated data, or None when it must be (re)generated."""
    meta = _read_meta(dataset.folder)
    if meta is None or meta.get("key") != dataset.key():
        return None
    return meta


def _sizes(tables: dict[str, Any]) -> dict[str, Any]:
    """Row counts, and invoices and visits of the last month."""
    invoices, visits = tables["invoices"], tables["visits"]
    periods = sorted(str(p) for p in invoices["period"].unique())
    last = periods[-1]
    year, month = map(int, last.split("-"))
    start = visits["start_at"]
    last_visits = int(((start.dt.year == year) & (start.dt.month == month)).sum())
    return {
        "rows": {name: len(frame) for name, frame in tables.items()},
        "visits": len(visits),
        "invoices": len(invoices),
        "periods": len(periods),
        "first_period": periods[0],
        "last_period": last,
        "invoices_last_period": int((invoices["period"].astype("str") == last).sum()),
        "visits_last_period": last_visits,
    }


# --------------------------------------------------------------------------- child stages
# Each runs inside its own process, imports first, then times the stage call only.


def _stage_simulate(dataset: dict[str, Any], write: bool) -> dict[str, Any]:
    from tillit.config import SimulationConfig
    from tillit.data.io import write_frame, write_tables
    from tillit.simulate import simulate

    spec = Dataset(**dataset)
    config = SimulationConfig(clients=spec.clients, months=spec.months, seed=spec.seed)
    municipality, seconds = _timed(lambda: simulate(config))
    peak = _ru_maxrss_mb()
    sizes = _sizes(municipality.tables)
    write_seconds = None
    if write:
        began = time.perf_counter()
        partial = spec.folder.with_name(spec.folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_tables(municipality.tables, partial)
        write_frame(municipality.truth, partial / "truth.parquet")
        meta = {"key": spec.key(), "sizes": sizes, "written_utc": _now()}
        (partial / "bench_meta.json").write_text(json.dumps(meta, indent=2), "utf-8")
        shutil.rmtree(spec.folder, ignore_errors=True)
        partial.rename(spec.folder)
        write_seconds = round(time.perf_counter() - began, 3)
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "size": sizes,
        "details": {
            "config": config.model_dump(),
            "data_written": write,
            "write_seconds": write_seconds,
            "irregular_invoices": int(municipality.truth["irregular"].sum()),
            "memory_note": "peak_rss_mb is taken right after simulate(), before writing files",
        },
    }


def _validate(folder: Path) -> Any:
    from tillit.config import ValidationConfig
    from tillit.data.io import read_raw_tables
    from tillit.data.validate import check_quarantine_limit, validate_tables

    config = ValidationConfig()
    result = validate_tables(read_raw_tables(folder))
    check_quarantine_limit(result, config)
    return result


def _stage_validate(dataset: dict[str, Any]) -> dict[str, Any]:
    import pickle

    import tillit.data.io
    import tillit.data.validate  # noqa: F401  (imports outside the timed call)

    spec = Dataset(**dataset)
    result, seconds = _timed(lambda: _validate(spec.folder))
    peak = _ru_maxrss_mb()
    # Hand the validated tables to the feature and training stages, so their peak
    # memory is theirs and not that of reading and validating.
    spec.validated_cache.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.validated_cache.with_suffix(".partial")
    with partial.open("wb") as handle:
        pickle.dump(result.tables, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(spec.validated_cache)
    summary = result.summary
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "size": {
            "rows_read": int(sum(c["rows_read"] for c in summary.values())),
            "rows_quarantined": int(sum(c["rows_quarantined"] for c in summary.values())),
            "visits_read": int(summary["visits"]["rows_read"]),
            "invoices_read": int(summary["invoices"]["rows_read"]),
        },
        "details": {"summary": summary, "stage": "read_raw_tables + validate_tables"},
    }


def _load_validated(spec: Dataset) -> tuple[dict[str, Any], str]:
    """The validate stage's tables; validated here when that stage did not leave them."""
    import pickle

    if spec.validated_cache.is_file():
        with spec.validated_cache.open("rb") as handle:
            return pickle.load(handle), "validated by the validate stage of this run"
    return _validate(spec.folder).tables, "validated in this child (no validate stage output)"


def _stage_features(dataset: dict[str, Any]) -> dict[str, Any]:
    import features_bench  # bench/ is on sys.path: this file is run as a script

    spec = Dataset(**dataset)
    tables, source = _load_validated(spec)
    periods = sorted(str(p) for p in tables["invoices"]["period"].unique())
    rss_with_tables = _ru_maxrss_mb()
    result, seconds = _timed(lambda: features_bench.run(tables, periods))
    return {
        "seconds": seconds,
        "peak_rss_mb": _ru_maxrss_mb(),
        "size": {
            "visits": len(tables["visits"]),
            "invoices_all_periods": result["invoices_all_periods"],
            "invoices_one_period": result["one_period_invoices"],
            "one_period": periods[-1],
            "periods": len(periods),
        },
        "details": {
            **result,
            "tables": source,
            "ru_maxrss_mb_with_input_tables": rss_with_tables,
            "seconds_note": "seconds = the whole features_bench.run(): one period, all "
            "periods, DuckDB and pandas headline features, agreement check",
        },
    }


def _stage_train(dataset: dict[str, Any]) -> dict[str, Any]:
    from tillit.config import load_config
    from tillit.jobs import read_truth
    from tillit.modelling import train as training

    spec = Dataset(**dataset)
    tables, source = _load_validated(spec)
    truth = read_truth(spec.folder)
    config = load_config(None)
    spent: dict[str, float] = {}
    calls: dict[str, int] = {}
    originals = {
        name: getattr(training, name)
        for name in ("build_features", "fit_model", "_fit_scorers", "evaluate_period")
    }

    def clocked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began
                calls[name] = calls.get(name, 0) + 1

        return wrapper

    # train() looks these up in its module at call time: wrapping them splits its
    # time into features, fitting and evaluation without touching the package.
    for name, fn in originals.items():
        setattr(training, name, clocked(name, fn))
    try:
        result, seconds = _timed(
            lambda: training.train(tables, config.training, config.features, config.review, truth)
        )
    finally:
        for name, fn in originals.items():
            setattr(training, name, fn)
    fit = spent.get("fit_model", 0.0)
    parts = {
        "features_s": round(spent.get("build_features", 0.0), 3),
        "fit_s": round(fit, 3),
        "fit_scorers_only_s": round(spent.get("_fit_scorers", 0.0), 3),
        "reference_scores_s": round(fit - spent.get("_fit_scorers", 0.0), 3),
        "evaluate_s": round(spent.get("evaluate_period", 0.0), 3),
        "fits": calls.get("fit_model", 0),
    }
    parts["other_s"] = round(
        seconds - parts["features_s"] - parts["fit_s"] - parts["evaluate_s"], 3
    )
    model = result.model
    return {
        "seconds": seconds,
        "peak_rss_mb": _ru_maxrss_mb(),
        "size": {
            "months_trained": len(model.trained_periods),
            "first_period": model.trained_periods[0],
            "eval_period": result.evaluation.period,
            "invoices": int(sum(result.invoices_per_period.values())),
            "labelled": result.label_counts.get("labelled"),
            "visits": len(tables["visits"]),
        },
        "details": {
            **parts,
            "parts_note": "fit_s = both fit_model calls (held-out fit on the months before "
            "eval_period, then the refit on all months): both scorers plus the reference "
            "score distributions; features_s = build_features over all months",
            "label_counts": result.label_counts,
            "eval_basis": result.evaluation.basis,
            "eval_combined_average_precision": result.evaluation.metrics.get(
                "combined_average_precision"
            ),
            "tables": source,
            "call": "tillit.train.train(tables, config.training, config.features, "
            "config.review, truth) with load_config(None); no MLflow",
        },
    }


def _stage_stockholm_train(dataset: dict[str, Any], store: str) -> dict[str, Any]:
    from tillit.config import load_config
    from tillit.jobs import run_train
    from tillit.ops import tracking

    spec = Dataset(**dataset)
    config = load_config(None)
    store_path = Path(store)
    outcome, train_s = _timed(lambda: run_train(spec.folder, config, None, store_path))
    training = config.training
    decision, promote_s = _timed(
        lambda: tracking.promote(training.model_name, training.primary_metric, store=store_path)
    )
    if not decision.promoted:
        raise RuntimeError(f"promotion refused: {decision.message}")
    result = outcome.result
    return {
        "seconds": round(train_s + promote_s, 3),
        "peak_rss_mb": _ru_maxrss_mb(),
        "size": {
            "months_trained": len(result.model.trained_periods),
            "invoices": int(sum(result.invoices_per_period.values())),
        },
        "details": {
            "run_train_s": train_s,
            "run_train_train_part_s": outcome.train_seconds,
            "promote_s": promote_s,
            "model_version": outcome.model.version,
            "promotion": decision.message,
            "eval_period": result.evaluation.period,
            "eval_combined_average_precision": result.evaluation.metrics.get(
                "combined_average_precision"
            ),
        },
    }


def _stage_explain(
    dataset: dict[str, Any], store: str, period: str, risk_list_path: str | None
) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import shap

    from tillit.config import ScoringConfig, load_config
    from tillit.features import build_features
    from tillit.jobs import load_data, period_quarantine
    from tillit.modelling.explain import Attribution, explain, top_k_agreement
    from tillit.ops import tracking
    from tillit.review.score import ModelIdentity, score_month

    spec = Dataset(**dataset)
    config = load_config(None)
    client = tracking.connect(Path(store))
    ref = tracking.resolve_alias(client, config.training.model_name, "champion")
    model = tracking.load_risk_model(client, ref)
    loaded = load_data(spec.folder, config)
    feature_set = build_features(loaded.validation.tables, period, config.features)
    features = feature_set.features.sort_values("invoice_id", kind="stable")
    features = features.reset_index(drop=True)
    rss_before = _ru_maxrss_mb()

    # Which invoices production flags (capacity, hard findings, random checks): the
    # risk list `tillit score` wrote for this month, else score_month run here.
    if risk_list_path and Path(risk_list_path).is_file():
        risk_list, flagged_from = pd.read_parquet(risk_list_path), "the score stage's risk list"
    else:
        scored = score_month(
            model,
            features,
            feature_set.findings,
            period_quarantine(loaded, period),
            config.review,
            ModelIdentity(ref.name, ref.version, ref.run_id),
            ScoringConfig(),
        )
        risk_list, flagged_from = scored.risk_list, "score_month in this child"
    flagged_ids = risk_list.loc[
        (risk_list["status"] == "scored") & risk_list["flagged"], "invoice_id"
    ]
    flagged = np.flatnonzero(features["invoice_id"].isin(flagged_ids).to_numpy())
    X = model.matrix(features)
    iso_X = model.isolation_forest_matrix(X)
    gbm_X = model.lightgbm_matrix(X)  # the columns LightGBM learnt from (as _explain)

    # Production path (tillit/score.py::_explain): fast path attributions of both
    # scorers for every invoice, exact TreeSHAP of both for the flagged ones.
    lgb_all, lgb_s = _timed(lambda: explain(model.lightgbm, gbm_X, method="fast"))
    lgb_exact, lgb_exact_s = _timed(
        lambda: explain(model.lightgbm, gbm_X.iloc[flagged], method="exact")
    )
    iso_fast, iso_fast_s = _timed(lambda: explain(model.isolation_forest, iso_X, method="fast"))
    iso_exact, iso_exact_s = _timed(
        lambda: explain(model.isolation_forest, iso_X.iloc[flagged], method="exact")
    )
    production_s = round(lgb_s + lgb_exact_s + iso_fast_s + iso_exact_s, 3)
    rss_production = _ru_maxrss_mb()

    # Naive path: shap.TreeExplainer over every invoice for both models.
    def naive_iso() -> Any:
        matrix = iso_X.to_numpy(float, na_value=np.nan)
        explainer = shap.TreeExplainer(model.isolation_forest.model_)
        return explainer.shap_values(matrix, check_additivity=False)

    def naive_lgb() -> Any:
        # The columns LightGBM learnt from (by default all but the findings'), and every
        # booster of a bag: the bag's log-odds are the boosters' mean, and so is its SHAP.
        matrix = gbm_X.to_numpy(float, na_value=np.nan)
        per_booster = []
        for booster in model.lightgbm.boosters():
            values = shap.TreeExplainer(booster).shap_values(matrix, check_additivity=False)
            per_booster.append(np.asarray(values[-1] if isinstance(values, list) else values))
        return np.mean(per_booster, axis=0)

    naive_iso_values, naive_iso_s = _timed(naive_iso)
    naive_lgb_values, naive_lgb_s = _timed(naive_lgb)
    naive_s = round(naive_iso_s + naive_lgb_s, 3)

    fast_flagged = Attribution(
        values=iso_fast.values.iloc[flagged],
        base_value=iso_fast.base_value,
        output=np.asarray(iso_fast.output)[flagged],
        output_name=iso_fast.output_name,
        method=iso_fast.method,
    )
    agreement = top_k_agreement(iso_exact, fast_flagged, k=3)
    # Sanity checks that both paths explain the same quantities. shap explains the
    # forest's expected path length h(x) (negative = more anomalous); tillit explains -h.
    naive_iso_flagged = Attribution(
        values=pd.DataFrame(
            -np.asarray(naive_iso_values)[flagged],
            index=iso_X.index[flagged],
            columns=iso_X.columns,
        ),
        base_value=0.0,
        output=np.zeros(len(flagged)),
        output_name="",
        method="shap",
    )
    lgb_naive = np.asarray(naive_lgb_values)
    return {
        "seconds": production_s,
        "peak_rss_mb": rss_production,
        "size": {
            "period": period,
            "invoices": len(features),
            "flagged": len(flagged),
            "visits": len(loaded.validation.tables["visits"]),
        },
        "details": {
            "production_s": production_s,
            "production_lightgbm_path_all_s": lgb_s,
            "production_lightgbm_treeshap_flagged_s": lgb_exact_s,
            "production_isolation_forest_path_length_all_s": iso_fast_s,
            "production_isolation_forest_treeshap_flagged_s": iso_exact_s,
            "naive_s": naive_s,
            "naive_isolation_forest_treeexplainer_all_s": naive_iso_s,
            "naive_lightgbm_treeexplainer_all_s": naive_lgb_s,
            "naive_over_production": round(naive_s / production_s, 2),
            "isolation_forest_top3_agreement_fast_vs_exact_flagged": round(agreement, 4),
            "isolation_forest_top3_agreement_shap_direct_vs_exact_flagged": round(
                top_k_agreement(iso_exact, naive_iso_flagged, k=3), 4
            ),
            "lightgbm_top3_agreement_fast_vs_exact_flagged": round(
                top_k_agreement(
                    lgb_exact,
                    Attribution(
                        values=lgb_all.values.iloc[flagged],
                        base_value=lgb_all.base_value,
                        output=np.asarray(lgb_all.output)[flagged],
                        output_name=lgb_all.output_name,
                        method=lgb_all.method,
                    ),
                    k=3,
                ),
                4,
            ),
            "lightgbm_pred_contrib_vs_shap_max_abs_diff": float(
                np.max(np.abs(lgb_exact.values.to_numpy() - lgb_naive[flagged]))
            ),
            "flagged_from": flagged_from,
            "ru_maxrss_mb_before_explaining": rss_before,
            "ru_maxrss_mb_after_production": rss_production,
            "ru_maxrss_mb_after_naive": _ru_maxrss_mb(),
            "model_version": ref.version,
            "naive_note": "shap_values(..., check_additivity=False) for both models; the "
            "IsolationForest on model.isolation_forest_matrix(X) as float64 with NaN",
        },
    }


def _stage_robustness(clients: int, months: int) -> dict[str, Any]:
    import robustness  # bench/ is on sys.path: this file is run as a script

    result, seconds = _timed(lambda: robustness.run(clients, months, echo=False))
    return {"seconds": seconds, "peak_rss_mb": _ru_maxrss_mb(), "details": result}


CHILD_STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "simulate": _stage_simulate,
    "validate": _stage_validate,
    "features": _stage_features,
    "train": _stage_train,
    "stockholm_simulate": _stage_simulate,
    "stockholm_train": _stage_stockholm_train,
    "explain": _stage_explain,
    "robustness": _stage_robustness,
}


def child_main(stage: str, params: dict[str, Any]) -> int:
    result = CHILD_STAGES[stage](**params)
    result["child_ru_maxrss_mb"] = _ru_maxrss_mb()
    print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
    return 0


# --------------------------------------------------------------------------- parent


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The Stockholm-size store must be the temporary one, whatever the caller's shell says.
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONHASHSEED"] = "0"
    return env


def _run_process(argv: list[str], name: str, log_dir: Path) -> dict[str, Any]:
    """Run one process to its end; its wall time, exit code and peak RSS (`os.wait4`)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    with stdout_path.open("w") as out, stderr_path.open("w") as err:
        began = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=_child_env(), cwd=ROOT)
        timer = threading.Timer(CHILD_TIMEOUT_S, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = round(time.perf_counter() - began, 3)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": process.returncode,
        "wall_seconds": wall,
        "process_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": stdout_path.read_text(errors="replace"),
        "stderr": stderr_path.read_text(errors="replace"),
        "stderr_file": str(stderr_path.relative_to(ROOT)),
        "timed_out": wall >= CHILD_TIMEOUT_S,
    }


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class StageFailed(Exception):
    """A child ended without a result; the message says why, the summary in one line."""

    def __init__(self, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message.splitlines()[0]


def _failure(ran: dict[str, Any]) -> StageFailed:
    why = "timed out" if ran["timed_out"] else f"exit code {ran['exit_code']}"
    lines = ran["stderr"].strip().splitlines()
    last = lines[-1] if lines else "no output on stderr"
    return StageFailed(
        f"{why}; stderr ({ran['stderr_file']}):\n{_tail(ran['stderr'])}", f"{why}: {last}"
    )


def run_child(stage: str, params: dict[str, Any], log_dir: Path) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--stage", stage]
    argv += ["--params", json.dumps(params)]
    ran = _run_process(argv, stage, log_dir)
    results = [
        line[len(RESULT_MARKER) :]
        for line in ran["stdout"].splitlines()
        if line.startswith(RESULT_MARKER)
    ]
    if ran["exit_code"] != 0 or not results:
        raise _failure(ran)
    result = json.loads(results[-1])
    result["wall_seconds"] = ran["wall_seconds"]
    result["process_peak_rss_mb"] = ran["process_peak_rss_mb"]
    return result


def run_score(dataset: Dataset, store: Path, period: str, scratch: Path) -> dict[str, Any]:
    """`tillit score` end to end, as a user runs it."""
    command = Path(sys.executable).with_name("tillit")
    base = [str(command)] if command.exists() else [sys.executable, "-m", "tillit"]
    out = scratch / "score"
    argv = [*base, "score", "--data", str(dataset.folder), "--period", period]
    argv += ["--out", str(out), "--store", str(store)]
    ran = _run_process(argv, "score", DATA_ROOT / "logs")
    if ran["exit_code"] != 0:
        raise _failure(ran)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    return {
        "seconds": ran["wall_seconds"],
        "peak_rss_mb": ran["process_peak_rss_mb"],
        "wall_seconds": ran["wall_seconds"],
        "process_peak_rss_mb": ran["process_peak_rss_mb"],
        "size": {"period": period, **manifest["counts"]},
        "details": {
            "command": shlex.join(argv),
            "manifest_timings_seconds": manifest["timings_seconds"],
            "import_and_startup_s": round(
                ran["wall_seconds"] - manifest["timings_seconds"]["total"], 3
            ),
            "stdout": ran["stdout"].strip(),
            "seconds_note": "seconds = wall time of the whole command; peak from os.wait4",
        },
    }


def _checks(name: str, values: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Each target of `name` against its measured value (met is None when not measured)."""
    out = []
    for metric, bound in TARGETS.get(name, {}).items():
        value = values.get(metric)
        met = None if value is None else bool(value <= bound)
        out.append({"metric": prefix + metric, "value": value, "target_max": bound, "met": met})
    return out


def _machine(command: list[str]) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu_model, memory_mb = None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = round(int(line.split()[1]) / 1024)
                break
    except OSError:
        pass
    from tillit.ops.tracking import git_commit

    commit = git_commit()
    return {
        "date_utc": _now(),
        "command": " ".join(command),
        "git_commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "memory_total_mb": memory_mb,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "memory_unit": "MiB (2**20 bytes); targets of 3 GB read as 3072 MiB",
    }


STAGE_ORDER = (
    "simulate",
    "validate",
    "features",
    "train",
    "stockholm_simulate",
    "stockholm_train",
    "score",
    "explain",
    "robustness",
)
DEPENDS = {
    "stockholm_train": ("stockholm_simulate",),
    "score": ("stockholm_train",),
    "explain": ("stockholm_train",),
}


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    wanted = set(args.stages.split(",")) if args.stages else set(STAGE_ORDER)
    unknown = wanted - set(STAGE_ORDER)
    if unknown:
        raise SystemExit(f"unknown stage(s): {', '.join(sorted(unknown))}")
    log_dir = DATA_ROOT / "logs"
    report: dict[str, Any] = {
        "machine": _machine([Path(sys.executable).name, *sys.argv]),
        "datasets": {},
        "stages": {},
        "ratios": {},
    }
    stages = report["stages"]
    began = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="tillit-bench-"))
    store = scratch / "store"
    default_ready = _dataset_ready(DEFAULT) if not args.fresh else None
    stockholm_meta = _dataset_ready(STOCKHOLM) if not args.fresh else None
    stockholm_period = stockholm_meta["sizes"]["last_period"] if stockholm_meta else None

    def attempt(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        if name not in wanted:
            return
        number = STAGE_ORDER.index(name) + 1
        failed = [d for d in DEPENDS.get(name, ()) if stages.get(d, {}).get("error")]
        print(f"[{number}/{len(STAGE_ORDER)}] {name} ...", flush=True)
        if failed:
            message = f"not run: depends on {', '.join(failed)}, which failed"
            stages[name] = {"error": message}
            print(f"    ERROR {message}", flush=True)
            return
        try:
            stages[name] = fn()
        except Exception as exc:
            if isinstance(exc, StageFailed):
                summary, detail = exc.summary, str(exc)
            else:
                summary, detail = f"{type(exc).__name__}: {exc}", traceback.format_exc()
            stages[name] = {"error": summary, "error_detail": detail}
            print(f"    ERROR in stage {name}:\n    " + detail.replace("\n", "\n    "), flush=True)
            return
        result = stages[name]
        if result.get("reused"):
            print("    reused the generated data", flush=True)
            return
        print(
            f"    {result.get('seconds')} s (child wall {result.get('wall_seconds')} s), "
            f"peak {result.get('peak_rss_mb')} MiB",
            flush=True,
        )

    def simulate_default() -> dict[str, Any]:
        write = default_ready is None
        result = run_child("simulate", {"dataset": vars(DEFAULT), "write": write}, log_dir)
        result["details"]["data_reused"] = not write
        return result

    def validate_default() -> dict[str, Any]:
        DEFAULT.validated_cache.unlink(missing_ok=True)  # never a stale hand-off
        return run_child("validate", {"dataset": vars(DEFAULT)}, log_dir)

    def simulate_stockholm() -> dict[str, Any]:
        nonlocal stockholm_period
        if stockholm_meta is not None:
            stockholm_period = stockholm_meta["sizes"]["last_period"]
            return {
                "reused": True,
                "size": stockholm_meta["sizes"],
                "details": {"note": f"reused {STOCKHOLM.folder.relative_to(ROOT)}"},
            }
        result = run_child(
            "stockholm_simulate", {"dataset": vars(STOCKHOLM), "write": True}, log_dir
        )
        stockholm_period = result["size"]["last_period"]
        return result

    def period() -> str:
        if stockholm_period is None:
            raise StageFailed("the Stockholm-size data set has not been generated")
        return stockholm_period

    try:
        attempt("simulate", simulate_default)
        attempt("validate", validate_default)
        attempt("features", lambda: run_child("features", {"dataset": vars(DEFAULT)}, log_dir))
        attempt("train", lambda: run_child("train", {"dataset": vars(DEFAULT)}, log_dir))
        if {"stockholm_train", "score", "explain"} & wanted:
            wanted.add("stockholm_simulate")
        if {"score", "explain"} & wanted:
            wanted.add("stockholm_train")
        attempt("stockholm_simulate", simulate_stockholm)
        attempt(
            "stockholm_train",
            lambda: run_child(
                "stockholm_train", {"dataset": vars(STOCKHOLM), "store": str(store)}, log_dir
            ),
        )
        attempt("score", lambda: run_score(STOCKHOLM, store, period(), scratch))
        # Messy profiles, leave-one-scheme-out, train on town A / score town B
        # (bench/robustness.py), at the default municipality's size.
        attempt(
            "robustness",
            lambda: run_child(
                "robustness", {"clients": DEFAULT.clients, "months": DEFAULT.months}, log_dir
            ),
        )
        attempt(
            "explain",
            lambda: run_child(
                "explain",
                {
                    "dataset": vars(STOCKHOLM),
                    "store": str(store),
                    "period": period(),
                    "risk_list_path": str(scratch / "score" / "risk_list.parquet"),
                },
                log_dir,
            ),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        DEFAULT.validated_cache.unlink(missing_ok=True)

    for dataset in (DEFAULT, STOCKHOLM):
        meta = _read_meta(dataset.folder)
        report["datasets"][dataset.name] = {
            "folder": str(dataset.folder.relative_to(ROOT)),
            "config": {"clients": dataset.clients, "months": dataset.months, "seed": dataset.seed},
            "sizes": meta["sizes"] if meta else None,
        }
    _add_checks_and_ratios(report)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["total_bench_seconds"] = round(time.perf_counter() - began, 1)
    return report


def _add_checks_and_ratios(report: dict[str, Any]) -> None:
    stages, ratios = report["stages"], report["ratios"]
    for name in ("simulate", "train", "score"):
        stage = stages.get(name)
        if stage and "error" not in stage:
            stage["checks"] = _checks(name, stage)
    features = stages.get("features")
    if features and "error" not in features:
        d = features["details"]
        one = {"seconds": d["one_period_s"], "peak_rss_mb": d["peak_rss_mb_one_period"]}
        every = {"seconds": d["all_periods_s"], "peak_rss_mb": d["peak_rss_mb_all_periods"]}
        features["checks"] = _checks("features_one_period", one, "one_period_") + _checks(
            "features_all_periods", every, "all_periods_"
        )
        ratios["features_pandas_over_duckdb_two_headline_features"] = d[
            "pandas_over_duckdb_two_features"
        ]
    explain = stages.get("explain")
    if explain and "error" not in explain:
        d = explain["details"]
        explain["checks"] = _checks("explain_production", explain)
        ratios["explain_naive_over_production"] = d["naive_over_production"]
        for scorer in ("isolation_forest", "lightgbm"):
            key = f"{scorer}_top3_agreement_fast_vs_exact_flagged"
            ratios[f"explain_{key}"] = d[key]


# --------------------------------------------------------------------------- table


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _verdict(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return ""
    missed = [c for c in checks if c["met"] is False]
    if not missed:
        return "pass"
    return "MISS " + ", ".join(
        f"{c['metric']} {c['value']:,.1f} > {c['target_max']:,.0f}" for c in missed
    )


def _target_text(name: str | None) -> str:
    bounds = TARGETS.get(name or "", {})
    parts = []
    if "seconds" in bounds:
        parts.append(f"<= {bounds['seconds']:g} s")
    if "peak_rss_mb" in bounds:
        parts.append(f"<= {bounds['peak_rss_mb'] / 1024:g} GB")
    return ", ".join(parts)


# (label, size, seconds, child wall s, peak MiB, target name, checks)
Row = tuple[str, str, Any, Any, Any, str | None, list[dict[str, Any]] | None]


def _stage_rows(name: str, s: dict[str, Any], report: dict[str, Any]) -> list[Row]:
    """The table rows of one finished stage."""
    z, d, checks = s.get("size", {}), s.get("details", {}), s.get("checks")
    own = (s.get("seconds"), s.get("wall_seconds"), s.get("peak_rss_mb"))
    if name == "simulate":
        size = f"{DEFAULT.clients} clients x {z['periods']} mo: {z['visits']:,} visits, {z['invoices']:,} inv"
        return [("simulate", size, *own, name, checks)]
    if name == "validate":
        size = f"{z['rows_read']:,} rows, {z['rows_quarantined']:,} quarantined"
        return [("validate (read + validate)", size, *own, None, None)]
    if name == "features":
        one = f"{z['invoices_one_period']:,} inv ({z['one_period']}), {z['visits']:,} visits"
        every = f"{z['invoices_all_periods']:,} inv, {z['visits']:,} visits"
        periods = f"{z['periods']} periods"
        return [
            ("features: 1 period", one, d["one_period_s"], None, d["peak_rss_mb_one_period"],
             "features_one_period", checks[:2]),
            (f"features: {periods}", every, d["all_periods_s"], s["wall_seconds"],
             d["peak_rss_mb_all_periods"], "features_all_periods", checks[2:]),
            ("  2 headline feats, DuckDB", periods, d["duckdb_headline_two_features_all_periods_s"],
             None, d["peak_rss_mb_duckdb_headline"], None, None),
            ("  2 headline feats, pandas", periods, d["pandas_headline_two_features_all_periods_s"],
             None, d["peak_rss_mb_pandas_headline"], None, None),
        ]  # fmt: skip
    if name == "train":
        size = f"{z['months_trained']} months, {z['invoices']:,} inv, {z['labelled']:,} labels"
        return [
            ("train (no MLflow)", size, *own, name, checks),
            (f"  of which fit ({d['fits']} fits)", "both scorers + reference scores",
             d["fit_s"], None, None, None, None),
            ("  of which features", f"{z['months_trained']} months", d["features_s"],
             None, None, None, None),
        ]  # fmt: skip
    if name == "stockholm_simulate":
        size = f"{STOCKHOLM.clients} clients x {z['periods']} mo: {z['visits']:,} visits"
        size += " (reused)" if s.get("reused") else ""
        return [("sthlm: simulate (setup)", size, *own, None, None)]
    if name == "stockholm_train":
        size = f"{z['months_trained']} months, {z['invoices']:,} inv, MLflow + promote"
        return [("sthlm: train (setup)", size, *own, None, None)]
    if name == "score":
        sizes = report["datasets"].get("stockholm", {}).get("sizes") or {}
        size = f"{z['received']:,} inv ({z['period']})"
        if sizes.get("visits_last_period"):
            size += f", {sizes['visits_last_period']:,} visits that month"
        return [("sthlm: tillit score (wall)", size, *own, name, checks)]
    if name == "explain":
        size = f"{z['invoices']:,} inv, {z['flagged']:,} flagged"
        return [
            ("sthlm: explain, production", size, *own, "explain_production", checks),
            ("sthlm: explain, naive shap", f"{z['invoices']:,} inv, both models", d["naive_s"],
             None, d["ru_maxrss_mb_after_naive"], None, None),
        ]  # fmt: skip
    return [(name, "", *own, None, checks)]


def table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for name, stage in report["stages"].items():
        if "error" in stage:
            target = "explain_production" if name == "explain" else name
            rows.append(
                (name, "-", "-", "-", "-", _target_text(target), "ERROR " + stage["error"][:70])
            )
            continue
        for label, size, seconds, wall, peak, target, checks in _stage_rows(name, stage, report):
            rows.append((label, size, _fmt(seconds, 2), _fmt(wall), _fmt(peak, 0),
                         _target_text(target), _verdict(checks or [])))  # fmt: skip
    return rows


def print_table(report: dict[str, Any]) -> None:
    header = ("stage", "size", "seconds", "child wall s", "peak MiB", "target", "met?")
    rows = [header, *table_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 3, 4}
    for number, r in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
    ratios = report["ratios"]
    if ratios:
        print()
        for key, value in ratios.items():
            print(f"{key}: {value}")
    machine = report["machine"]
    print(
        f"\n{machine['cpu_count']} CPUs, Python {machine['python']}, {machine['date_utc']}; "
        f"load average {machine['load_average_at_start']} at start, "
        f"{machine.get('load_average_at_end')} at end; "
        f"whole bench {machine.get('total_bench_seconds')} s"
    )
    print(
        "seconds: the stage call alone (imports and input loading excluded); 'tillit score' "
        "is the whole command. child wall s: the whole child process (start-up, imports, "
        "inputs, every call in it). peak: ru_maxrss of the stage's process; the feature "
        "rows: RSS sampled during that call, input tables included."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--fresh", action="store_true", help="regenerate the simulated data")
    parser.add_argument("--stages", help=f"comma-separated subset of: {', '.join(STAGE_ORDER)}")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage here
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        return child_main(args.stage, json.loads(args.params))
    report = run_all(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", "utf-8")
    print()
    print_table(report)
    print(f"\nresults written to {args.out}")
    errors = [name for name, stage in report["stages"].items() if "error" in stage]
    if errors:
        print(f"stages that failed: {', '.join(errors)} (see above and bench/data/logs/)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
