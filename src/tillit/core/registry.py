"""The MLflow edge of every training command: one run logged, one model registered.

`tillit train` (invoice and provider models) and `tillit train --table` log their runs
and register their models here, the same way: tags that say what the model learned
from (git commit, config hash, data fingerprint, tillit version), parameters, the
finite metrics, artifacts, the model pickled under the one pyfunc entry
(core/pyfunc_model.py) with a signature inferred from an input example, the SHA-256
of every registered file (ops/integrity.py), and the alias `challenger`. Promotion
with the configured tolerance is `ops.tracking.promote`, for every model.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from tillit.ops.tracking import ModelRef

PYFUNC_ENTRY = Path(__file__).with_name("pyfunc_model.py")


@dataclass(frozen=True)
class ModelRun:
    """What one training run logs and registers (the store and the MLflow calls are `register`'s).

    `artifact` names the pickle (`<artifact>.joblib`, which ops/integrity.py loads);
    `artifacts` maps a name to a file (logged at the top) or a folder (its files under
    the name); `signature_input` is the frame the model's `risk` is inferred on (its
    first rows are kept as the input example when `keep_input_example`); `on_run` is
    called with the run id before the model is pickled (a table model carries its card).
    """

    model_name: str
    run_name: str
    model: Any
    artifact: str
    tags: Mapping[str, str]
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    dicts: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    signature_input: pd.DataFrame | None = None
    keep_input_example: bool = False
    on_run: Callable[[str], None] | None = None


def flatten_params(prefix: str, value: Any) -> dict[str, Any]:
    """A nested config as flat MLflow parameters (`a.b.c`), lists as JSON."""
    out: dict[str, Any] = {}

    def walk(key: str, inner: Any) -> None:
        if isinstance(inner, dict):
            for name, item in inner.items():
                walk(f"{key}.{name}" if key else str(name), item)
        else:
            out[key] = json.dumps(inner) if isinstance(inner, list | tuple) else inner

    walk(prefix, value)
    return out


def finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics MLflow can keep: numbers that are neither missing nor infinite."""
    return {k: float(v) for k, v in metrics.items() if pd.notna(v) and math.isfinite(float(v))}


def standard_tags(config_hash: str, data_fingerprint: str) -> dict[str, str]:
    """The tags every training run carries, whatever the stream."""
    from tillit import __version__
    from tillit.ops.tracking import git_commit

    return {
        "git_commit": git_commit(),
        "config_hash": config_hash,
        "data_fingerprint": data_fingerprint,
        "tillit_version": __version__,
    }


def register(entry: ModelRun, store: Path) -> ModelRef:
    """Log the run, register the model with its signature and file hashes, alias it `challenger`."""
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    from tillit.ops import tracking
    from tillit.ops.integrity import record_artifact_hashes

    client = tracking.connect(store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=entry.run_name) as run:
        mlflow.set_tags(dict(entry.tags))
        mlflow.log_params(dict(entry.params))
        mlflow.log_metrics(finite(entry.metrics))
        for name, content in entry.dicts.items():
            mlflow.log_dict(content, name)
        for name, path in entry.artifacts.items():
            # A folder's files go under its name, a file at the top: never `name/name/...`.
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=name)
            else:
                mlflow.log_artifact(str(path))
        run_id = run.info.run_id
        if entry.on_run is not None:
            entry.on_run(run_id)
        signature, example = None, None
        if entry.signature_input is not None:
            example = entry.signature_input.head(5).reset_index(drop=True)
            signature = infer_signature(example, entry.model.risk(example))
        with tempfile.TemporaryDirectory() as scratch:
            bundle = Path(scratch) / f"{entry.artifact}.joblib"
            joblib.dump(entry.model, bundle)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_ENTRY),
                artifacts={entry.artifact: str(bundle)},
                pip_requirements=pip_requirements(),
                registered_model_name=entry.model_name,
                signature=signature,
                input_example=example if entry.keep_input_example else None,
            )
    version = str(info.registered_model_version)
    record_artifact_hashes(client, entry.model_name, version)
    client.set_registered_model_alias(entry.model_name, tracking.CHALLENGER, version)
    return tracking.ModelRef(entry.model_name, version, run_id, tracking.CHALLENGER)


def pip_requirements() -> list[str]:
    """The packages a registered pyfunc needs, pinned to the versions that trained it."""
    from importlib.metadata import version

    names = ["pandas", "numpy", "scikit-learn", "lightgbm", "shap", "pandera", "pyarrow", "joblib"]
    return [f"{name}=={version(name)}" for name in names] + [f"tillit=={version('tillit')}"]
