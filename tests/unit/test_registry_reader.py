"""The registry read without MLflow gives what MLflow gives, or nothing (then MLflow reads it).

The store is the session's trained world (`trained_export`, read only) or a copy of it
(`world_copy`) where a test changes the registry.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tillit.errors import ModelUnavailableError
from tillit.ops import registry_reader, tracking
from tillit.ops.integrity import expected_hashes, model_folder
from tillit.ops.registry_reader import KNOWN_SCHEMAS, installed_mlflow, read_version_by_alias

MODEL = "tillit-invoice-risk"


def test_the_installed_mlflow_schema_is_the_one_the_reader_was_written_for() -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    # An MLflow upgrade fails here: check the queries against its schema, then add it.
    assert KNOWN_SCHEMAS[installed_mlflow() or ""] == _get_latest_schema_revision()


def test_the_version_by_alias_is_the_one_mlflow_resolves(trained_export: dict[str, Any]) -> None:
    store: Path = trained_export["store"]
    client = tracking.connect(store)
    for alias in (tracking.CHAMPION, tracking.CHALLENGER):
        read = read_version_by_alias(store, MODEL, alias)
        assert read is not None
        ref = tracking.resolve_alias(client, MODEL, alias)
        assert read.ref == ref
        version = client.get_model_version(MODEL, ref.version)
        assert read.get_model_version(MODEL, ref.version).tags == version.tags
        assert read.get_model_version(MODEL, ref.version).source == version.source
        assert model_folder(read, MODEL, ref.version) == model_folder(client, MODEL, ref.version)
        assert expected_hashes(read, store, ref) == expected_hashes(client, store, ref)
    with pytest.raises(LookupError):
        read.get_model_version(MODEL, "999")


def test_the_model_loaded_without_mlflow_is_the_model_mlflow_loads(
    trained_export: dict[str, Any],
) -> None:
    store: Path = trained_export["store"]
    ref, model = tracking.load_model_by_alias(store, MODEL, tracking.CHAMPION)
    client = tracking.connect(store)
    assert ref == tracking.resolve_alias(client, MODEL, tracking.CHAMPION)
    through_mlflow = tracking.load_risk_model(client, ref, store)
    assert type(model) is type(through_mlflow)
    assert model.feature_schema == through_mlflow.feature_schema
    assert model.trained_periods == through_mlflow.trained_periods


def test_what_the_reader_does_not_read_is_left_to_mlflow(
    trained_export: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store: Path = trained_export["store"]
    assert read_version_by_alias(store, MODEL, "no-such-alias") is None
    assert read_version_by_alias(store, "no-such-model", tracking.CHAMPION) is None
    assert read_version_by_alias(store, MODEL, "Latest") is None
    assert read_version_by_alias(tmp_path, MODEL, tracking.CHAMPION) is None  # no database
    with pytest.raises(tracking.ModelNotFoundError, match="no-such-alias"):
        tracking.load_model_by_alias(store, MODEL, "no-such-alias")
    with monkeypatch.context() as env:
        env.setenv("MLFLOW_WORKSPACE", "team")
        assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is None
    with monkeypatch.context() as schemas:
        schemas.setattr(registry_reader, "KNOWN_SCHEMAS", {installed_mlflow(): "0123456789ab"})
        assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is None
        schemas.setattr(registry_reader, "KNOWN_SCHEMAS", {})
        assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is None
    assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is not None


def test_an_edited_hash_tag_is_refused_without_mlflow_as_through_it(
    world_copy: dict[str, Any],
) -> None:
    store: Path = world_copy["store"]
    with sqlite3.connect(store / "mlflow.db") as db:
        db.execute(
            "UPDATE model_version_tags SET value = replace(value, '\"artifacts/', '\"x/') "
            "WHERE name = ? AND key = 'tillit.artifact_sha256'",
            (MODEL,),
        )
    db.close()
    read = read_version_by_alias(store, MODEL, tracking.CHAMPION)
    assert read is not None
    with pytest.raises(ModelUnavailableError) as without:
        tracking.load_model_by_alias(store, MODEL, tracking.CHAMPION)
    client = tracking.connect(store)
    with pytest.raises(ModelUnavailableError) as through:
        tracking.load_risk_model(client, read.ref, store)
    assert "differ from its signed train record" in str(without.value)
    assert str(without.value) == str(through.value)


# One row outside the default workspace of each table MLflow 3.17.2 checks when it opens a
# store in single-tenant mode (`_initialize_store_state` of its registry and tracking stores).
# Experiments first: MLflow keeps a tracking store it has opened (per URI, in the process)
# and does not check again.
OUTSIDE_THE_DEFAULT_WORKSPACE = {
    "experiments": (
        "INSERT INTO experiments(name, artifact_location, lifecycle_stage, workspace) "
        "VALUES ('team-exp', '/nowhere', 'active', 'team')"
    ),
    "registered_models": (
        "INSERT INTO registered_models(name, creation_time, last_updated_time, description, "
        "workspace) VALUES ('other', 0, 0, '', 'team')"
    ),
    "webhooks": (
        "INSERT INTO webhooks(webhook_id, name, url, workspace) "
        "VALUES ('w1', 'hook', 'http://localhost', 'team')"
    ),
}


def _in_the_registry(store: Path, statement: str, *parameters: object) -> None:
    with sqlite3.connect(store / "mlflow.db") as db:
        db.execute(statement, parameters)
    db.close()


def test_a_store_mlflow_refuses_for_another_workspace_is_left_to_mlflow(
    world_copy: dict[str, Any],
) -> None:
    """A row in another workspace: MLflow refuses the store, so the reader answers None."""
    store: Path = world_copy["store"]
    refusals = {}
    for table, insert in OUTSIDE_THE_DEFAULT_WORKSPACE.items():
        _in_the_registry(store, insert)
        assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is None, table
        with pytest.raises(Exception) as refused:
            tracking.load_model_by_alias(store, MODEL, tracking.CHAMPION)
        refusals[table] = type(refused.value).__name__
        _in_the_registry(store, f"DELETE FROM {table} WHERE workspace = 'team'")
        assert read_version_by_alias(store, MODEL, tracking.CHAMPION) is not None, table
    # The registry's refusal reads as a missing alias (`resolve_alias`), the tracking
    # store's is raised when the client opens: both as without the reader.
    assert refusals == {
        "experiments": "MlflowException",
        "registered_models": "ModelNotFoundError",
        "webhooks": "ModelNotFoundError",
    }


def test_a_score_whose_mlflow_store_does_not_open_leaves_the_audit_log_as_it_was(
    world_copy: dict[str, Any], tmp_path: Path
) -> None:
    """The model loads without MLflow; MLflow refuses the store at the run's end: no record."""
    from mlflow.exceptions import MlflowException

    from tests.conftest import EXPORT_PERIOD
    from tillit.config import TillitConfig
    from tillit.jobs.common import AUDIT_LOG
    from tillit.jobs.score import run_score

    store: Path = world_copy["store"]
    log = (store / AUDIT_LOG).read_bytes()
    _in_the_registry(store, OUTSIDE_THE_DEFAULT_WORKSPACE["experiments"])
    out = tmp_path / "out"
    with pytest.raises(MlflowException, match="Cannot disable workspaces"):
        run_score(world_copy["data"], EXPORT_PERIOD, out, TillitConfig(), "champion", "en", store)
    assert (store / AUDIT_LOG).read_bytes() == log
    assert not out.exists()


def test_the_model_is_found_and_loaded_without_importing_mlflow(
    trained_export: dict[str, Any],
) -> None:
    """The reader's whole point: no MLflow (nor SQLAlchemy) import on the model's path."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tillit.ops import tracking\n"
        f"ref, model = tracking.load_model_by_alias(Path(sys.argv[1]), {MODEL!r}, 'champion')\n"
        "print(ref.version, type(model).__name__, 'mlflow' in sys.modules, "
        "'sqlalchemy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(trained_export["store"])],
        capture_output=True,
        text=True,
        check=True,
    )
    version = tracking.resolve_alias(
        tracking.connect(trained_export["store"]), MODEL, tracking.CHAMPION
    ).version
    assert done.stdout.split()[0] == version
    assert done.stdout.split()[2:] == ["False", "False"]


def test_connect_leaves_the_environment_as_it_was_when_mlflow_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else MLFLOW_TRACKING_URI stays set for the process, and the reader always falls back."""
    import os

    import mlflow

    def refuse(uri: str) -> None:
        raise RuntimeError("no registry here")

    monkeypatch.setattr(mlflow, "set_registry_uri", refuse)
    with pytest.raises(RuntimeError, match="no registry here"):
        tracking.connect(tmp_path / "store")
    assert os.environ.get("MLFLOW_TRACKING_URI") is None
    assert os.environ.get("MLFLOW_REGISTRY_URI") is None
