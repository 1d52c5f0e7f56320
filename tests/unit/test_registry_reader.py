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
