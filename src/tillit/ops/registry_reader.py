"""A registered version found by alias with read-only SQLite queries, without importing MLflow.

Why: `tillit score` needs three facts from the registry before it loads a model (the
version behind the alias, its files' folder, its hash tag), and importing MLflow and its
SQLAlchemy store to read them costs about 2.7 s of CPU on the model's thread, beside the
export being read (issue 22). MLflow stays the store's only writer and the reader of
anything else: this reads only a store it was written for (the SQLite file of `--store`,
no tracking or registry URI nor workspace setting in the environment, the registry
schema of the installed MLflow release, `KNOWN_SCHEMAS`), and only one MLflow itself
would open: not when a registered model, webhook or experiment lies outside the default
workspace (MLflow's checks on opening a single-tenant store, repeated here). Otherwise,
and whenever a fact is not there as expected, it answers None, so that MLflow reads the
store and says what is wrong in its own words. The model found is verified exactly as
through MLflow: `ops/integrity.py` reads the same facts through `ReadOnlyVersion`, which
answers its two questions from the rows read here.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tillit.ops.tracking import ModelRef

# The MLflow release -> the registry schema (its Alembic head) the queries below were
# written for and checked against. Another release, or a store at another revision (one
# MLflow would refuse or migrate), is read through MLflow.
KNOWN_SCHEMAS: dict[str, str] = {"3.17.2": "dc11669786a5"}
_ENVIRONMENT = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_ENABLE_WORKSPACES",
    "MLFLOW_WORKSPACE",
)
_DEFAULT_WORKSPACE = "default"
_DELETED_VERSION = "Deleted_Internal"  # MLflow's STAGE_DELETED_INTERNAL
_DELETED_MODEL = "deleted"  # MLflow's LifecycleStage.DELETED
_LATEST = "latest"  # an alias MLflow resolves itself (the highest version)
# The tables whose rows outside the default workspace make MLflow refuse the store in
# single-tenant mode: `_initialize_store_state` of its registry store (registered models,
# webhooks) and of its tracking store (experiments), MLflow 3.17.2.
_SINGLE_TENANT_TABLES = ("registered_models", "webhooks", "experiments")


@dataclass(frozen=True)
class ReadOnlyVersion:
    """One registered version as read from the store: what `ops/integrity.py` asks a client.

    Answers `get_model_version` for this version only and `get_logged_model` for its
    logged model only (anything else is a LookupError: the verification never asks it).
    """

    ref: ModelRef
    source: str
    tags: dict[str, str]
    logged_model: str | None = None
    artifact_location: str | None = field(default=None)

    def get_model_version(self, name: str, version: str) -> Any:
        if (name, str(version)) != (self.ref.name, self.ref.version):
            raise LookupError(f"{name} version {version} was not read")
        return SimpleNamespace(
            name=name,
            version=self.ref.version,
            run_id=self.ref.run_id,
            source=self.source,
            tags=dict(self.tags),
        )

    def get_logged_model(self, model_id: str) -> Any:
        if model_id != self.logged_model or self.artifact_location is None:
            raise LookupError(f"logged model {model_id} was not read")
        return SimpleNamespace(model_id=model_id, artifact_location=self.artifact_location)


def installed_mlflow() -> str | None:
    """The installed MLflow release, from its package metadata (MLflow itself not imported)."""
    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return None


def read_version_by_alias(store: Path, name: str, alias: str) -> ReadOnlyVersion | None:
    """The version of `name` behind `alias` in the store's own SQLite file, read-only.

    None when the store is not one this reads (see the module's docstring), or any fact
    is missing (no such model, alias or version, a deleted logged model): the caller then
    asks MLflow, which answers or raises exactly as before.
    """
    schema = KNOWN_SCHEMAS.get(installed_mlflow() or "")
    database = Path(store) / "mlflow.db"
    if (
        schema is None
        or any(os.environ.get(name) for name in _ENVIRONMENT)
        or alias.lower() == _LATEST
        or not database.is_file()
    ):
        return None
    try:
        with _read_only(database) as con:
            return _read(con, schema, name, alias)
    except sqlite3.Error:
        return None


class _read_only:
    """A read-only connection (`mode=ro`: never creates, migrates or writes the file), closed after."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def __enter__(self) -> sqlite3.Connection:
        self.con = sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True)
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def _read(con: sqlite3.Connection, schema: str, name: str, alias: str) -> ReadOnlyVersion | None:
    revisions = [row[0] for row in con.execute("SELECT version_num FROM alembic_version")]
    if revisions != [schema] or _outside_the_default_workspace(con):
        return None
    ws = _DEFAULT_WORKSPACE
    if (
        con.execute(
            "SELECT 1 FROM registered_models WHERE name = ? AND workspace = ?", (name, ws)
        ).fetchone()
        is None
    ):
        return None
    aliased = con.execute(
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ? AND workspace = ?",
        (name, alias, ws),
    ).fetchone()
    if aliased is None:
        return None
    version = con.execute(
        "SELECT version, run_id, source FROM model_versions "
        "WHERE name = ? AND version = ? AND workspace = ? AND current_stage != ?",
        (name, aliased[0], ws, _DELETED_VERSION),
    ).fetchone()
    if version is None or version[2] is None:
        return None
    number, run_id, source = version
    tags = dict(
        con.execute(
            "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? AND workspace = ?",
            (name, number, ws),
        ).fetchall()
    )
    ref = ModelRef(name=name, version=str(number), run_id=run_id, alias=alias)
    source = str(source)
    if not source.startswith("models:/"):
        return ReadOnlyVersion(ref, source, tags)
    model_id = source.removeprefix("models:/")
    logged = con.execute(
        "SELECT artifact_location FROM logged_models WHERE model_id = ? AND lifecycle_stage != ?",
        (model_id, _DELETED_MODEL),
    ).fetchone()
    if logged is None or logged[0] is None:
        return None
    return ReadOnlyVersion(ref, source, tags, model_id, str(logged[0]))


def _outside_the_default_workspace(con: sqlite3.Connection) -> bool:
    """Whether the store holds a row MLflow in single-tenant mode refuses to open it with.

    MLflow's own checks, query for query: then the reader answers None and MLflow raises
    its `INVALID_STATE` ("Cannot disable workspaces because ...") as it always did.
    """
    return any(
        con.execute(
            f"SELECT 1 FROM {table} WHERE workspace IS NOT NULL AND workspace != ? LIMIT 1",
            (_DEFAULT_WORKSPACE,),
        ).fetchone()
        is not None
        for table in _SINGLE_TENANT_TABLES
    )
