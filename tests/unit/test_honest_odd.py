"""Honest care that looks odd: every pattern is laid over a small messy world, stays honest and
within the contract, and its levels are a family drawn by seed."""

from __future__ import annotations

import pandas as pd
import pytest

from tillit.config import SimulationConfig
from tillit.data.validate import validate_tables
from tillit.simulate import HONEST_PATTERNS, simulate
from tillit.simulate.honest_odd import draw_honest_odd


def _world(seed: int) -> object:
    # June to August: the summer holiday falls inside the window.
    return simulate(
        SimulationConfig(seed=seed, clients=250, months=3, start="2025-06", profile="messy")
    )


@pytest.fixture(scope="module")
def world():
    return _world(5)


def test_every_pattern_touches_regular_invoices_only(world):
    touched = world.honest_patterns
    counts = touched.groupby("pattern").size()
    assert set(counts.index) == set(HONEST_PATTERNS)
    assert (counts > 0).all()
    truth = world.truth.set_index("invoice_id")
    assert not truth.loc[touched["invoice_id"], "irregular"].any()
    assert touched["invoice_id"].isin(world.tables["invoices"]["invoice_id"]).all()
    assert not touched.duplicated().any()


def test_the_world_with_the_patterns_passes_the_contract(world):
    assert validate_tables(world.tables).quarantine.empty


def test_the_patterns_look_as_described(world):
    visits = world.tables["visits"]
    touched = world.honest_patterns
    invoices = world.tables["invoices"].set_index("invoice_id")
    period = visits["start_at"].dt.strftime("%Y-%m")
    key = ["provider_id", "client_id", "service_type"]

    def visits_of(pattern: str) -> pd.DataFrame:
        ids = touched.loc[touched["pattern"] == pattern, "invoice_id"]
        keys = invoices.loc[ids, [*key, "period"]].reset_index(drop=True)
        return visits.assign(period=period).merge(keys, on=[*key, "period"])

    # Two carers registered at the same client at the same moment.
    double = visits_of("double_staffing_both_registered")
    same_time = double.groupby(["client_id", "start_at"])["staff_id"].nunique()
    assert (same_time >= 2).any()
    # Night rounds: several visits of at most a quarter of an hour a night.
    night = visits_of("night_round_short_visits")
    minutes = (night["end_at"] - night["start_at"]).dt.total_seconds() / 60
    assert minutes.median() <= 15
    per_night = night.groupby(["client_id", night["start_at"].dt.date]).size()
    assert per_night.max() >= 3
    # Quarter hours, typed in.
    quarter = visits_of("quarter_hour_registration")
    on_quarter = quarter["start_at"].dt.minute.isin([0, 15, 30, 45]) & (
        quarter["method"] == "manual"
    )
    assert on_quarter.mean() > 0.5
    # Carers at two providers.
    for pattern in ("staff_at_two_providers", "holiday_cover_other_provider"):
        staff = visits_of(pattern)["staff_id"].unique()
        per_staff = visits[visits["staff_id"].isin(staff)].groupby("staff_id")["provider_id"]
        assert (per_staff.nunique() > 1).any()
    # A temporary grant beside the standing one covers the longer visits.
    grants = world.tables["grants"]
    for pattern in ("end_of_life_long_visits", "discharge_grant_increase"):
        clients = invoices.loc[touched.loc[touched["pattern"] == pattern, "invoice_id"]]
        care = grants[grants["service_type"] == "personal_care"]
        per_client = care[care["client_id"].isin(clients["client_id"])].groupby("client_id")
        assert (per_client.size() >= 2).any()


def test_the_family_is_drawn_by_seed():
    assert draw_honest_odd(5) == draw_honest_odd(5)
    assert draw_honest_odd(5) != draw_honest_odd(6)
    a, again = _world(11), _world(11)
    pd.testing.assert_frame_equal(a.honest_patterns, again.honest_patterns)
    assert a.parameters == again.parameters
    assert a.parameters["night_round_visits"] == draw_honest_odd(11).night_round_visits


def test_the_tidy_world_has_no_honest_patterns():
    tidy = simulate(SimulationConfig(seed=5, clients=60, months=2))
    assert tidy.honest_patterns is None
    assert "night_round_visits" not in tidy.parameters


def test_levels_override_the_drawn_ones_by_name_and_tidy_refuses_them():
    from tillit.simulate.messy import draw_parameters, override_levels

    levels = {"overlap_share": 0.3, "night_round_visits": 5.0, "not_a_level": 1.0}
    messy = override_levels(draw_parameters(5), levels)
    odd = override_levels(draw_honest_odd(5), levels)
    assert messy.overlap_share == 0.3
    assert odd.night_round_visits == 5 and isinstance(odd.night_round_visits, int)
    assert odd.palliative_days == draw_honest_odd(5).palliative_days
    with pytest.raises(ValueError, match="not_a_level"):
        simulate(SimulationConfig(seed=5, clients=60, months=2, profile="messy"), levels)
    with pytest.raises(ValueError, match="tidy"):
        simulate(SimulationConfig(seed=5, clients=60, months=2), {"overlap_share": 0.3})
