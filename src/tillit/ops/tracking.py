"""MLflow, embedded: a SQLite store under `models/`, runs, the registry and promotion.

No server is needed. `MLFLOW_TRACKING_URI` overrides the default store. Models are
found by registry alias (`challenger`, `champion`), never as "the newest file".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tillit.errors import ModelUnavailableError, TillitError
from tillit.ops.integrity import verify_model

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tillit.config import TillitConfig
    from tillit.modelling.promotion import Comparison, ModelFacts

EXPERIMENT_NAME = "tillit"
# Drift runs (one per scored month) are kept apart from training runs.
DRIFT_EXPERIMENT_NAME = "tillit-drift"
DEFAULT_STORE = Path("models")
CHALLENGER = "challenger"
CHAMPION = "champion"


class RegistryError(TillitError):
    """A model alias or version that is not in the registry, or a refused promotion."""


class ModelNotFoundError(RegistryError, ModelUnavailableError):
    """No registered version has the alias asked for: no usable model (exit 3)."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str
    alias: str | None = None


def tracking_uri(store: Path = DEFAULT_STORE) -> str:
    """`MLFLOW_TRACKING_URI`, else a SQLite file in the store folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(store / 'mlflow.db').resolve()}"


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def uri_variables_kept() -> Iterator[None]:
    """`MLFLOW_TRACKING_URI` and `MLFLOW_REGISTRY_URI` as they were before, also after an error."""
    before = {name: os.environ.get(name) for name in _URI_VARIABLES}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect(store: Path = DEFAULT_STORE) -> Any:
    """Point MLflow at the store and return a client; creates the store on first use."""
    # No usage reports from MLflow (also set by `import tillit`, before MLflow's import
    # decides; kept here for a process that cleared it since).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    store.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(store)
    # MLflow's download bars would mix with tillit's own progress on stderr.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # set_tracking_uri and set_registry_uri also write MLFLOW_TRACKING_URI and
    # MLFLOW_REGISTRY_URI into the environment, which would make every later store of
    # this process, and every process it starts, resolve to this one: restore both.
    with uri_variables_kept():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id(client, store, EXPERIMENT_NAME)
    return client


def experiment_id(client: Any, store: Path, name: str) -> str:
    """The id of an experiment of the store, created (artifacts under the store) on first use."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    suffix = "" if name == EXPERIMENT_NAME else f"/{name}"
    artifacts = (store / "artifacts").resolve().as_uri() + suffix
    return str(client.create_experiment(name, artifact_location=artifacts))


def run_name(kind: str) -> str:
    """A run name no other run shares: `<kind>-<UTC time>-<6 hex>` (MLflow does not enforce it)."""
    import datetime as dt
    import secrets

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


AUDIT_TAG_PREFIX = "audit_log.record."


def tag_audit_record(client: Any, run_id: str, seq: int, record_hash: str) -> None:
    """Keep an audit-log record's hash on the MLflow run it concerns (a copy outside the log)."""
    client.set_tag(run_id, f"{AUDIT_TAG_PREFIX}{seq}", record_hash)


def audit_log_known_hashes(client: Any) -> dict[int, str]:
    """Every audit-log record hash kept on the store's MLflow runs, by sequence number."""
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return {}
    known: dict[int, str] = {}
    for run in client.search_runs([experiment.experiment_id], max_results=50_000):
        for key, value in run.data.tags.items():
            if key.startswith(AUDIT_TAG_PREFIX) and key[len(AUDIT_TAG_PREFIX) :].isdigit():
                known[int(key[len(AUDIT_TAG_PREFIX) :])] = value
    return known


def git_commit() -> str:
    """The commit of tillit's own checkout, `-dirty` with local changes; `unknown` if not from git."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10, cwd=here
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def resolve_alias(client: Any, name: str, alias: str) -> ModelRef:
    """The version behind an alias.

    Raises:
        ModelNotFoundError: the model or the alias does not exist (its message names the
            store the client reads, which is the `--store` given or MLFLOW_TRACKING_URI).
    """
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ModelNotFoundError(
            f"no model version of '{name}' has the alias '{alias}' in {client.tracking_uri}; "
            "train one with `tillit train` (and `tillit promote` for champion)"
        ) from None
    return ModelRef(name=name, version=str(version.version), run_id=version.run_id, alias=alias)


def store_of(client: Any) -> Path:
    """The store folder of a client opened by `connect` (its SQLite file's folder)."""
    from tillit.errors import ModelUnavailableError

    uri = str(client.tracking_uri)
    if not uri.startswith("sqlite:///"):
        raise ModelUnavailableError(
            f"cannot tell the model store (and its audit log) from the tracking URI {uri}"
        )
    return Path(uri.removeprefix("sqlite:///")).parent


def load_risk_model(client: Any, ref: ModelRef, store: Path | None = None) -> Any:
    """The RiskModel behind a registered version, unpickled only after its files are verified.

    The pickle the pyfunc wraps is read directly (ops/integrity.py): loading the pyfunc
    would import the stored model code, and costs most of a second more.
    """
    from tillit.ops.integrity import load_verified_pickle

    return load_verified_pickle(client, store or store_of(client), ref, "risk_model.joblib")


def log_training(
    result: Any,
    config: TillitConfig,
    data_fingerprint: str,
    artifacts: dict[str, Path],
    store: Path = DEFAULT_STORE,
    extra_metrics: dict[str, float] | None = None,
) -> ModelRef:
    """Log one invoice-model training run with what reproduces and compares it; register it.

    The registered version gets the alias `challenger` (core/registry.py).
    """
    from tillit import CONTRACT_VERSION
    from tillit.core.registry import ModelRun, flatten_params, register, standard_tags

    evaluation = result.evaluation
    model = result.model
    resolved_config = config.resolved()
    rolling = {
        f"rolling_{part.period}_{name}": value
        for part in result.rolling
        for name, value in part.metrics.items()
    }
    entry = ModelRun(
        model_name=config.training.model_name,
        run_name=run_name(f"train-{evaluation.period}"),
        model=model,
        artifact="risk_model",
        tags={
            **standard_tags(config.hash(), data_fingerprint),
            "contract_version": CONTRACT_VERSION,
            "feature_schema": model.feature_schema,
            "feature_definitions": str(model.feature_definitions),
            "eval_period": evaluation.period,
            "evaluation_basis": evaluation.basis,
            "trained_periods": ",".join(model.trained_periods),
            "labels_reviewed_until": result.labels_reviewed_until or "",
        },
        params={
            **flatten_params("", resolved_config),
            "eval_k": evaluation.k,
            **{f"labels_{k}": v for k, v in result.label_counts.items()},
        },
        metrics={
            **{f"eval_{name}": value for name, value in evaluation.metrics.items()},
            **(extra_metrics or {}),
            **rolling,
        },
        artifacts=artifacts,
        dicts={"config/resolved_config.json": resolved_config},
        signature_input=result.features.loc[:, list(model.feature_columns)]
        .head(5)
        .astype("float64"),
        keep_input_example=True,
    )
    return register(entry, store)


def log_drift(store: Path, ref: ModelRef, report: Any, drift_file: Path) -> str:
    """One small MLflow run per scored month: its drift figures and drift.json.

    Kept in its own experiment (`tillit-drift`, each run named `drift-<period>-<time>-<hex>`
    and tagged with the model version and `kind = drift`), so the training experiment
    lists training runs only and compares like with like.
    """
    from mlflow.entities import Metric

    client = connect(store)
    run = client.create_run(
        experiment_id(client, store, DRIFT_EXPERIMENT_NAME),
        run_name=run_name(f"drift-{report.period}"),
        tags={
            "kind": "drift",
            "period": report.period,
            "model_name": ref.name,
            "model_version": ref.version,
            "model_run_id": ref.run_id,
            "drifted": str(report.drifted).lower(),
        },
    )
    run_id = run.info.run_id
    stamp = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    metrics = [Metric(k, float(v), stamp, 0) for k, v in report.metrics().items() if pd.notna(v)]
    for start in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[start : start + 500])
    client.log_artifact(run_id, str(drift_file))
    client.set_terminated(run_id)
    return str(run_id)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger became champion, why (with both figures), and the two versions."""

    promoted: bool
    message: str
    challenger: ModelRef
    champion: ModelRef | None
    comparison: Comparison | None = None


def model_facts(client: Any, ref: ModelRef, primary_metric: str) -> ModelFacts:
    """What a registered version learned from and its held-out figure, from its training run."""
    from tillit.modelling.promotion import ModelFacts

    run = client.get_run(ref.run_id)
    tags, params = run.data.tags, run.data.params
    labelled = params.get("labels_labelled")
    periods = tags.get("trained_periods", "")
    return ModelFacts(
        version=ref.version,
        trained_periods=tuple(p for p in periods.split(",") if p),
        labelled=int(labelled) if labelled is not None else None,
        labels_reviewed_until=tags.get("labels_reviewed_until") or None,
        eval_period=tags.get("eval_period"),
        evaluation_basis=tags.get("evaluation_basis"),
        data_fingerprint=tags.get("data_fingerprint"),
        held_out_value=run.data.metrics.get(f"eval_combined_{primary_metric}"),
    )


def trained_definitions(client: Any, ref: ModelRef, store: Path | None = None) -> int:
    """The feature definitions an invoice model learned from (features.FEATURE_DEFINITIONS_VERSION).

    Its training run's tag; a run older than the tag has it only in the model, which is
    then loaded (verified) to read it.
    """
    tag = str(client.get_run(ref.run_id).data.tags.get("feature_definitions", ""))
    if tag.isdigit():
        return int(tag)
    return int(getattr(load_risk_model(client, ref, store), "feature_definitions", 1))


def promote(
    model_name: str,
    primary_metric: str,
    force: bool = False,
    reason: str | None = None,
    store: Path = DEFAULT_STORE,
    comparison: Comparison | None = None,
    tolerance: float = 0.0,
    missing: str | None = None,
    held_out: bool = True,
) -> PromotionDecision:
    """Make the challenger champion if there is none, or if the comparison says so.

    `comparison` is the champion and the challenger judged like with like (see
    modelling/promotion.py). Without one, the training runs' held-out figures are
    compared when both runs used the same data and month; otherwise the promotion is
    refused, saying what is missing (`missing`, or "--data"); `held_out=False` when the
    held-out figures do not compare (models trained on other feature definitions).
    `force` needs a reason, kept as a tag. The comparison's figures, month and rule are
    written as tags on the challenger's version whether it is promoted or not.

    Raises:
        RegistryError: there is no challenger, `force` without a reason, or nothing
            to compare on (unless forced).
    """
    from tillit.modelling.promotion import compare_held_out_runs

    client = connect(store)
    challenger = resolve_alias(client, model_name, CHALLENGER)
    # A challenger whose files changed since registration never becomes champion.
    verify_model(client, store, challenger)
    if force and not reason:
        raise RegistryError(
            "--force needs --reason: the override is recorded with the model version"
        )
    try:
        champion = resolve_alias(client, model_name, CHAMPION)
    except RegistryError:
        champion = None
    if champion is not None and champion.version == challenger.version:
        return PromotionDecision(
            False, f"version {challenger.version} is already champion", challenger, champion
        )
    if champion is None:
        verdict = True
        message = f"no champion yet: version {challenger.version} becomes champion"
    else:
        if comparison is None and held_out:
            comparison = compare_held_out_runs(
                model_facts(client, champion, primary_metric),
                model_facts(client, challenger, primary_metric),
                primary_metric,
                tolerance,
            )
        if comparison is None:
            why = missing or (
                "the champion and the challenger were trained on different data or months: "
                "comparing them needs the data (--data DIR) to score both on a month neither "
                "learned from"
            )
            if not force:
                raise RegistryError(f"cannot compare like with like: {why}")
            verdict, message = True, f"forced ({reason}) without a comparison: {why}"
        else:
            verdict = comparison.promote
            figures = comparison.figures(champion.version, challenger.version)
            message = (
                f"{'promoted' if verdict else 'refused'}: {comparison.verdict}; {figures} "
                f"[{comparison.how}]; rule: {comparison.rule()}"
                + (f"; {comparison.note}" if comparison.note else "")
            )
            if not verdict and force:
                verdict, message = True, f"forced ({reason}): {message}"
            for key, value in comparison.tags().items():
                client.set_model_version_tag(model_name, challenger.version, key, value[:4000])
    if force and reason and champion is not None:
        client.set_model_version_tag(model_name, challenger.version, "promotion_override", reason)
    if verdict:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
        client.set_model_version_tag(
            model_name, challenger.version, "promoted_because", message[:4000]
        )
    return PromotionDecision(verdict, message, challenger, champion, comparison)
