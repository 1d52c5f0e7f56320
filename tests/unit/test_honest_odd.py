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


def _granted_by_invoice(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Hours granted per invoice, each grant pro rata by its days in the month (as features)."""
    granted = {}
    grants = tables["grants"]
    for row in tables["invoices"].itertuples():
        month = pd.Period(row.period, "M")
        first, last = month.start_time.normalize(), month.end_time.normalize()
        mine = grants[
            (grants["provider_id"] == row.provider_id)
            & (grants["client_id"] == row.client_id)
            & (grants["service_type"] == row.service_type)
        ]
        hours = 0.0
        for g in mine.itertuples():
            begin = max(pd.Timestamp(g.valid_from), first)
            end = min(pd.Timestamp(g.valid_to) if pd.notna(g.valid_to) else last, last)
            if end >= begin:
                hours += g.hours_per_month * ((end - begin).days + 1) / month.days_in_month
        granted[row.invoice_id] = hours
    return pd.Series(granted)


def test_an_honest_night_patrol_bills_within_its_grant(world):
    touched = world.honest_patterns
    rounds = touched.loc[touched["pattern"] == "night_round_short_visits", "invoice_id"]
    invoices = world.tables["invoices"].set_index("invoice_id").loc[rounds]
    granted = _granted_by_invoice(world.tables.copy() | {"invoices": invoices.reset_index()})
    assert len(invoices) > 0
    assert (invoices["billed_hours"] <= granted.reindex(invoices.index) + 1e-9).all()
    # The patrol registers at the door: its checks are neither typed in nor rounded up.
    visits = world.tables["visits"]
    period = visits["start_at"].dt.strftime("%Y-%m")
    key = ["provider_id", "client_id", "service_type", "period"]
    on_round = visits.assign(period=period).merge(invoices.reset_index()[key], on=key)
    assert (on_round["method"] == "nfc").all()
    # Carers take turns by night: no patrol carer works every night of the window.
    nights = on_round.groupby("staff_id")["start_at"].apply(lambda s: s.dt.date.nunique())
    assert nights.max() < on_round["start_at"].dt.date.nunique()


def test_quarter_hour_typing_never_rounds_a_short_visit_up():
    from dataclasses import replace

    import numpy as np

    from tillit.simulate.honest_odd import _quarter_hours, _World

    at = pd.Timestamp("2025-04-02 08:03")
    visits = pd.DataFrame(
        {
            "visit_id": ["V1", "V2"],
            "provider_id": ["P1", "P1"],
            "client_id": ["C1", "C1"],
            "staff_id": ["S1", "S1"],
            "service_type": ["personal_care", "personal_care"],
            # A 5-minute check, and 38 minutes two hours later.
            "start_at": [at, at + pd.Timedelta(hours=2)],
            "end_at": [at + pd.Timedelta(minutes=5), at + pd.Timedelta(minutes=158)],
            "method": ["nfc", "nfc"],
        }
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1"],
            "provider_id": ["P1"],
            "client_id": ["C1"],
            "service_type": ["personal_care"],
            "period": ["2025-04"],
            "billed_hours": [0.72],
            "amount_sek": [360.0],
        }
    )
    world = _World(visits, invoices, {"I1"})
    params = replace(draw_honest_odd(5), quarter_hour_provider_share=1.0)
    hits = _quarter_hours(np.random.default_rng(0), world, params)
    assert hits["invoice_id"].tolist() == ["I1"]
    out = world.visits
    # The check keeps its times; the long visit is typed in as 10:00-10:45 (38 -> 45 min).
    assert out["start_at"].tolist() == [at, pd.Timestamp("2025-04-02 10:00")]
    assert out["end_at"].tolist() == [
        at + pd.Timedelta(minutes=5),
        pd.Timestamp("2025-04-02 10:45"),
    ]
    assert out["method"].tolist() == ["nfc", "manual"]
    # Billed what was typed in: 7 more minutes at 500 kr an hour.
    assert world.invoices["billed_hours"].tolist() == [0.84]
    assert world.invoices["amount_sek"].tolist() == [420.0]


def test_granted_hours_count_each_grant_by_its_days_in_the_month():
    from tillit.simulate.honest_odd import _granted_hours

    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3"],
            "provider_id": ["P1", "P1", "P2"],
            "client_id": ["C1", "C1", "C1"],
            "service_type": ["night_care", "night_care", "night_care"],
            "period": ["2025-04", "2025-05", "2025-04"],
        }
    )
    grants = pd.DataFrame(
        {
            "provider_id": ["P1", "P1"],
            "client_id": ["C1", "C1"],
            "service_type": ["night_care", "night_care"],
            "hours_per_month": [30.0, 12.0],
            # 10 hours a month all along; 12 more from 16 April to 15 May.
            "valid_from": pd.to_datetime(["2025-01-01", "2025-04-16"]),
            "valid_to": pd.to_datetime([None, "2025-05-15"]),
        }
    )
    grants.loc[0, "hours_per_month"] = 10.0
    # April: 10 + 12 * 15/30 = 16; May: 10 + 12 * 15/31; P2 has no grant.
    assert _granted_hours(invoices, grants).tolist() == pytest.approx(
        [16.0, 10.0 + 12.0 * 15 / 31, 0.0], abs=1e-12
    )
