"""The feature SQL on two DuckDB lanes gives the same bits as one statement after another.

Each statement still runs on one thread; the lanes only let two independent chains of
statements use both cores. Compared on a small messy world, frame for frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from tillit.config import FeatureConfig, SimulationConfig
from tillit.data.validate import validate_tables
from tillit.features import CloseAsideError, build_features, wait_for_closes_aside
from tillit.features import build as build_module
from tillit.features.engine import DuckDBEngine, RecordingEngine
from tillit.jobs.common import write_manifest_and_record
from tillit.ops.tracking import ModelRef
from tillit.simulate import simulate


@pytest.fixture(scope="module")
def messy_tables() -> dict[str, pd.DataFrame]:
    world = simulate(SimulationConfig(seed=7, clients=150, months=4, profile="messy"))
    return dict(validate_tables(world.tables).tables)


def test_two_lanes_give_the_features_of_one_statement_after_another(
    messy_tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    lanes_used: list[str] = []
    real_lane = DuckDBEngine.lane

    def counted_lane(self: DuckDBEngine) -> DuckDBEngine:
        lanes_used.append("lane")
        return real_lane(self)

    monkeypatch.setattr(DuckDBEngine, "lane", counted_lane)
    evidence_fetched_on: list[str] = []
    real_evidence = build_module.queries.evidence_frames

    def evidence_frames(con, config):  # type: ignore[no-untyped-def]
        evidence_fetched_on.append(threading.current_thread().name)
        return real_evidence(con, config)

    monkeypatch.setattr(build_module.queries, "evidence_frames", evidence_frames)
    periods = ["2025-03", "2025-04"]
    in_lanes = build_features(messy_tables, periods, FeatureConfig())
    # The findings' evidence is fetched at the end of the staff lane, beside the visit lane.
    assert [name.split("_")[0] for name in evidence_fetched_on] == ["tillit-duckdb"]
    findings = set(in_lanes.findings["finding"])
    assert {"visits_after_death", "staff_double_booked"} <= findings
    in_turn_engine = RecordingEngine(DuckDBEngine())  # not a DuckDBEngine: no lanes
    try:
        in_turn = build_features(messy_tables, periods, FeatureConfig(), engine=in_turn_engine)
    finally:
        in_turn_engine.close()
    assert lanes_used == ["lane"]
    assert len(in_lanes.features) > 100
    for fast, plain in (
        (in_lanes.features, in_turn.features),
        (in_lanes.findings, in_turn.findings),
        (in_lanes.quarantine, in_turn.quarantine),
    ):
        assert fast.equals(plain)
        assert list(fast.dtypes) == list(plain.dtypes)


def test_a_lane_sees_the_tables_made_before_it_and_its_tables_are_seen() -> None:
    engine = DuckDBEngine()
    try:
        engine.execute("CREATE TEMP TABLE a AS SELECT 1 AS x")
        lane = engine.lane()
        lane.execute("CREATE TEMP TABLE b AS SELECT x + 1 AS y FROM a")
        lane.close()
        assert engine.fetch("SELECT y FROM b")["y"].tolist() == [2]
    finally:
        engine.close()


def test_an_error_in_the_second_lane_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(con: object, config: FeatureConfig, **_: object) -> None:
        raise RuntimeError("staff lane failed")

    monkeypatch.setattr(build_module, "_staff_lane", failing)
    world = simulate(SimulationConfig(seed=3, clients=40, months=2, profile="messy"))
    with pytest.raises(RuntimeError, match="staff lane failed"):
        build_features(validate_tables(world.tables).tables, "2025-02", FeatureConfig())


def test_a_visit_lane_failing_before_key_month_does_not_leave_the_other_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The staff lane waits for `key_month` before the evidence; a failure releases it."""

    def failing(con: object, config: FeatureConfig) -> None:
        raise RuntimeError("visit aggregates failed")

    monkeypatch.setattr(build_module.queries, "visit_aggregates", failing)
    world = simulate(SimulationConfig(seed=3, clients=40, months=2, profile="messy"))
    with pytest.raises(RuntimeError, match="visit aggregates failed"):
        build_features(validate_tables(world.tables).tables, "2025-02", FeatureConfig())


# A statement of some 20 s on one thread (1.6e9 rows): an interrupt ends it at once.
ENDLESS = "SELECT sum(a.i * b.j) FROM range(40000) a(i), range(40000) b(j)"


@pytest.mark.parametrize("failing", ["first", "second"])
def test_a_failing_lane_stops_the_other_and_its_own_error_shows_at_once(failing: str) -> None:
    """The other lane's running statement is interrupted and its next one refused: the
    failure surfaces in about a second, not after the other lane's work, and it is the
    failure that is raised, not the other lane's stop."""
    import time

    from tillit.features.build import _in_two_lanes

    after_the_endless: list[str] = []

    def endless(con: DuckDBEngine) -> None:
        con.fetch(ENDLESS)
        after_the_endless.append("ran on")  # never: interrupted, the statement raises

    def fails(con: DuckDBEngine) -> None:
        time.sleep(0.2)  # the endless statement is running by now
        raise RuntimeError(f"the {failing} lane failed")

    engine = DuckDBEngine()
    began = time.perf_counter()
    try:
        with pytest.raises(RuntimeError, match=f"the {failing} lane failed"):
            if failing == "first":
                _in_two_lanes(engine, fails, endless)
            else:
                _in_two_lanes(engine, endless, fails)
        assert time.perf_counter() - began < 5
        assert after_the_endless == []
        # The engine passed in works again afterwards (its owner may go on using it).
        assert engine.fetch("SELECT 1 AS x")["x"].tolist() == [1]
    finally:
        engine.close()


def test_a_stopped_lane_refuses_its_next_statement() -> None:
    from tillit.features.engine import LaneStopped

    engine = DuckDBEngine()
    try:
        engine.stop()
        with pytest.raises(LaneStopped):
            engine.execute("SELECT 1")
        engine.resume()
        assert engine.fetch("SELECT 2 AS x")["x"].tolist() == [2]
    finally:
        engine.close()


class _CloseFails(DuckDBEngine):
    """Closes, then says it failed: a close that raises on the side thread."""

    def close(self) -> None:
        super().close()
        raise OSError("disk gone while closing")


def test_a_close_that_fails_aside_fails_the_wait_and_reaches_the_thread_hook(
    messy_tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    hooked: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: hooked.append(args.exc_value))
    monkeypatch.setattr(build_module, "DuckDBEngine", _CloseFails)
    built = build_features(messy_tables, "2025-04", FeatureConfig())
    assert len(built.features) > 20  # the build itself is done before the close
    with pytest.raises(CloseAsideError, match="disk gone while closing") as raised:
        wait_for_closes_aside()
    assert isinstance(raised.value.__cause__, OSError)
    assert [type(error) for error in hooked] == [OSError]
    wait_for_closes_aside()  # reported once: nothing is left to wait for


def test_a_run_whose_close_failed_writes_no_manifest(
    messy_tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    monkeypatch.setattr(build_module, "DuckDBEngine", _CloseFails)
    build_features(messy_tables, "2025-04", FeatureConfig())
    ref = ModelRef(name="m", version="1", run_id="r")
    with pytest.raises(CloseAsideError):
        write_manifest_and_record(tmp_path, "score", tmp_path, {}, ref, "h", "f", {})
    assert list(tmp_path.iterdir()) == []


def test_a_build_that_fails_closes_at_once_and_keeps_its_own_error(
    messy_tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(con: object, config: FeatureConfig) -> None:
        raise ValueError("invoice frame failed")

    monkeypatch.setattr(build_module, "DuckDBEngine", _CloseFails)
    monkeypatch.setattr(build_module.queries, "invoice_frame", failing)
    with pytest.raises(ValueError, match="invoice frame failed") as raised:
        build_features(messy_tables, "2025-04", FeatureConfig())
    assert raised.value.__notes__ == [
        "closing the feature stage's DuckDB failed too: OSError('disk gone while closing')"
    ]
    wait_for_closes_aside()  # closed in the caller's thread: nothing aside to fail
