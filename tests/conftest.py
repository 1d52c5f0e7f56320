"""Shared fixtures: a tiny, fully valid municipality built by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


def _dates(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[ns]")


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Two providers, three clients, one month of visits and invoices: every rule holds."""
    return {
        "providers": pd.DataFrame(
            {
                "provider_id": ["P1", "P2"],
                "org_number": ["556677-8899", "559900-1236"],
                "legal_form": ["AB", "HB"],
                "registered_on": _dates(["2015-03-01", "2023-06-01"]),
                "approved_on": _dates(["2016-01-01", "2023-09-01"]),
                "terminated_on": _dates([None, None]),
            }
        ),
        "provider_events": pd.DataFrame(
            {
                "provider_id": ["P1", "P2"],
                "event_date": _dates(["2024-11-02", "2025-01-10"]),
                "event_type": ["address_change", "tax_debt_registered"],
                "amount_sek": [np.nan, 120000.0],
            }
        ),
        "provider_persons": pd.DataFrame(
            {
                "provider_id": ["P1", "P2"],
                "person_id": ["X1", "X2"],
                "role": ["owner", "ceo"],
                "from_date": _dates(["2015-03-01", "2023-06-01"]),
                "to_date": _dates([None, None]),
            }
        ),
        "clients": pd.DataFrame(
            {
                "client_id": ["C1", "C2", "C3"],
                "birth_year": [1938, 1945, 1950],
                "district": ["Norr", "Syd", "Norr"],
                "deceased_on": _dates([None, None, "2025-01-20"]),
            }
        ),
        "grants": pd.DataFrame(
            {
                "grant_id": ["G1", "G2", "G3"],
                "client_id": ["C1", "C2", "C3"],
                "provider_id": ["P1", "P1", "P2"],
                "service_type": ["personal_care", "home_service", "personal_care"],
                "hours_per_month": [12.0, 6.0, 20.0],
                "valid_from": _dates(["2024-01-01", "2024-06-01", "2024-01-01"]),
                "valid_to": _dates([None, None, "2025-01-20"]),
            }
        ),
        "hospital_stays": pd.DataFrame(
            {
                "client_id": ["C2"],
                "admitted_on": _dates(["2025-01-05"]),
                "discharged_on": _dates(["2025-01-09"]),
            }
        ),
        "visits": pd.DataFrame(
            {
                "visit_id": ["V1", "V2", "V3"],
                "provider_id": ["P1", "P1", "P2"],
                "client_id": ["C1", "C2", "C3"],
                "staff_id": ["S1", "S1", "S9"],
                "service_type": ["personal_care", "home_service", "personal_care"],
                "start_at": _dates(["2025-01-02 08:00", "2025-01-02 10:00", "2025-01-03 09:00"]),
                "end_at": _dates(["2025-01-02 09:00", "2025-01-02 11:30", "2025-01-03 10:00"]),
                "method": ["nfc", "app", "manual"],
            }
        ),
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["I1", "I2", "I3"],
                "provider_id": ["P1", "P1", "P2"],
                "client_id": ["C1", "C2", "C3"],
                "period": ["2025-01", "2025-01", "2025-01"],
                "service_type": ["personal_care", "home_service", "personal_care"],
                "billed_hours": [1.0, 1.5, 1.0],
                "amount_sek": [460.0, 600.0, 460.0],
                "submitted_on": _dates(["2025-02-05", "2025-02-05", "2025-02-06"]),
            }
        ),
        "tariffs": pd.DataFrame(
            {
                "service_type": ["personal_care", "home_service"],
                "year": [2025, 2025],
                "rate_sek": [460.0, 400.0],
            }
        ),
        "audit_outcomes": pd.DataFrame(
            {
                "invoice_id": ["I1"],
                "reviewed_on": _dates(["2025-03-01"]),
                "outcome": ["cleared"],
                "recovered_sek": [np.nan],
                "scheme": pd.Series([None], dtype="str"),
                "selection": ["random_check"],
            }
        ),
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny valid municipality for each test."""
    return tiny_tables()


# The session's one trained world: simulated, trained, promoted and scored once, in process.
EXPORT_SEED, EXPORT_CLIENTS, EXPORT_MONTHS, EXPORT_PERIOD = 11, 300, 6, "2025-06"


def trained_world(root: Path, seed: int, clients: int, months: int) -> dict[str, Any]:
    """`simulate`, `train` and `promote` into `root`, run in this process (`tillit_here`).

    Returns the folders and what `train` and `promote` said.
    """
    from tests.cli import ok, tillit_here

    data, store = root / "data", root / "models"
    ok(
        tillit_here(
            "simulate", "--out", data, "--seed", seed, "--clients", clients,
            "--months", months, "--quiet",
        )
    )  # fmt: skip
    trained = ok(tillit_here("train", "--data", data, "--store", store, "--quiet"))
    promoted = ok(tillit_here("promote", "--store", store))
    said = {"train": trained.stdout, "promote": promoted.stdout}
    return {"root": root, "data": data, "store": store, "said": said}


@pytest.fixture(scope="session")
def trained_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One simulated municipality with a champion model, and its last month scored once.

    Built once per session, in process: simulating and training take most of the
    end-to-end tests' time. Tests may read it and score from its store; a test that
    trains, promotes, feeds back or otherwise changes the data or the store takes
    `world_copy` instead.
    """
    from tests.cli import ok, tillit_here

    world = trained_world(
        tmp_path_factory.mktemp("world"), EXPORT_SEED, EXPORT_CLIENTS, EXPORT_MONTHS
    )
    reference = world["root"] / "reference"
    ok(
        tillit_here(
            "score", "--data", world["data"], "--period", EXPORT_PERIOD, "--out", reference,
            "--store", world["store"], "--quiet",
        )
    )  # fmt: skip
    return {**world, "reference": reference}


def copy_world(world: dict[str, Any], root: Path) -> dict[str, Any]:
    """A copy of the world's data and model store in `root`, for a test that changes them.

    MLflow keeps absolute artifact locations in its database: the copy's are pointed at
    the copy's own folder, so runs logged to the copy never write into the original.
    The artifacts themselves are copied byte for byte.
    """
    import shutil
    import sqlite3

    data, store = root / "data", root / "models"
    shutil.copytree(world["data"], data)
    shutil.copytree(world["store"], store)
    old, new = world["store"].resolve().as_uri(), store.resolve().as_uri()
    columns = {
        "experiments": "artifact_location",
        "runs": "artifact_uri",
        "logged_models": "artifact_location",
        "model_versions": "storage_location",
    }
    with sqlite3.connect(store / "mlflow.db") as db:
        for table, column in columns.items():
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
        left = [
            table
            for table, column in columns.items()
            if db.execute(
                f"SELECT count(*) FROM {table} WHERE {column} LIKE ?", (old + "%",)
            ).fetchone()[0]
        ]
    db.close()
    assert not left, f"artifact locations still in the original store: {left}"
    return {**world, "root": root, "data": data, "store": store}


@pytest.fixture
def world_copy(trained_export: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The session's trained world copied into this test's folder, free to change."""
    return copy_world(trained_export, tmp_path / "world")


@pytest.fixture(autouse=True)
def no_inherited_mlflow_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no MLflow store in the environment, and leaves none behind.

    MLflow's `set_tracking_uri` and `set_registry_uri` write these variables; without
    this, a store one test opened would be inherited by the processes later tests start.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture(scope="session", autouse=True)
def audit_key_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """The session's audit key (and the logs' heads beside it) live in a temp folder, not ~/.config."""
    key_file = tmp_path_factory.mktemp("audit-key") / "audit.key"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TILLIT_AUDIT_KEY_FILE", str(key_file))
        patch.delenv("TILLIT_AUDIT_KEY", raising=False)
        patch.delenv("TILLIT_AUDIT_HEADS_FILE", raising=False)
        yield key_file


# The world's tests are two groups, one per worker: as one group they made that worker the
# suite's long pole (about 10 of its 10 minutes) while the other idled; each worker now
# builds the world once (about 45 s) and the two halves run side by side. The pages,
# provider and integrity worlds are built from it, so their tests stay together in
# "world" (with the full cycle and the promotion rule, about 280 s of CPU against about
# 250 s in "world-b"; docs/testing.md).
WORLD_GROUPS = {
    "test_fuzz_inputs.py": "world-b",
    "test_real_exports.py": "world-b",
    "test_output_safety.py": "world-b",
    "test_feedback_controls.py": "world-b",
    "test_batch_edges.py": "world-b",
}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the trained world are slow, and run on one worker so it is built once.

    `make test-fast` leaves out what is marked slow; `make test` runs on two processes
    with `--dist loadgroup`, which keeps every test of an `xdist_group` on one of them.
    """
    for item in items:
        if "trained_export" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            module = Path(str(item.fspath)).name
            item.add_marker(pytest.mark.xdist_group(WORLD_GROUPS.get(module, "world")))
        elif _builds_a_module_fixture(item) and not any(item.iter_markers("xdist_group")):
            # Each test outside a group is a unit of its own, and the two workers take
            # alternate units: a module's fixture was built on both. Its module is a group.
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    if getattr(config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
        _name_groups_in_node_ids(items)
        # The slow tests outside a group first (loadgroup keeps the collection order among
        # units of one test, after the groups): one taken last would leave a worker idle.
        items.sort(key=lambda item: not _alone_and_slow(item))


def _builds_a_module_fixture(item: pytest.Item) -> bool:
    """The test uses a fixture kept for its module or class (built once per worker)."""
    fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(defs[-1].scope in ("module", "class", "package") for defs in fixtures.values())


def _alone_and_slow(item: pytest.Item) -> bool:
    """Marked slow and in no group: a unit of one long test."""
    return item.get_closest_marker("slow") is not None and not any(item.iter_markers("xdist_group"))


def _name_groups_in_node_ids(items: list[pytest.Item]) -> None:
    """Put each test's group into its node id (`...@world`), where loadgroup looks for it.

    pytest-xdist 3.8 does this by assigning `item._nodeid`, which pytest 9.2 no longer
    reads (the id lives in `item._id`): without this every group was ignored, and each
    worker built the trained, provider, pages and integrity worlds for itself.
    """
    for item in items:
        names = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        if not names or "@" in item.nodeid or not hasattr(item, "_id"):
            continue
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")
