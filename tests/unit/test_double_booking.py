"""Staff double booking: the finding on a small invoice, and the same finding from a UTC export."""

from __future__ import annotations

import pandas as pd
from pandas.testing import assert_frame_equal

from tests.unit.test_features import (
    build,
    codes,
    evidence,
    grant,
    invoice,
    municipality,
    provider,
    visit,
)
from tillit.data.validate import validate_tables


def _town(days: list[str], at: str = "00:30") -> dict[str, pd.DataFrame]:
    """Carer S1 registered at C1 and C2 for most of both visits, once on each day."""
    visits = []
    for i, day in enumerate(days):
        visits.append(visit(f"A{i}", "C1", f"{day} {at}", 40, method="app"))
        visits.append(visit(f"B{i}", "C2", f"{day} {at}", 40, method="manual", staff_id="S1"))
    # C2's own carer's visits: the copied client is billed for much more than the pairs.
    visits += [visit(f"R{d}", "C2", f"2026-03-{d:02d} 09:00", 60, staff_id="S2") for d in (1, 2)]
    return municipality(
        # Org numbers that pass validation's check digit (the town goes through it).
        providers=[provider(p, org_number="556000-0001") for p in ("P1", "P2", "P3")],
        grants=[grant("G1", "C1", hours=4.0), grant("G2", "C2", hours=4.0)],
        visits=visits,
        invoices=[invoice("I1", "C1", 0.7 * len(days)), invoice("I2", "C2", 2.0)],
    )


def _as_utc(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same visits as an export writing UTC (time-zone-aware) would carry them."""
    visits = tables["visits"].copy()
    for column in ("start_at", "end_at"):
        local = visits[column].dt.tz_localize("Europe/Stockholm")
        visits[column] = local.dt.tz_convert("UTC")
    return {**tables, "visits": visits}


def test_two_pairs_in_a_month_are_a_finding_one_is_not():
    # 2026-03-04 and 2026-03-30 (after the change to summer time), 40 min each.
    two = build(_town(["2026-03-04", "2026-03-30"]))
    assert "staff_double_booked" in codes(two, "I1")
    assert "staff_double_booked" in codes(two, "I2")
    assert evidence(two, "I1", "staff_double_booked").startswith(
        "2 overlapping pair(s) of at least 5 min: carer S1: visit A0 (2026-03-04 00:30-01:10, app)"
    )
    one = build(_town(["2026-03-04"]))
    assert not codes(one, "I1") & {"staff_double_booked"}
    assert one.features.set_index("invoice_id").loc["I1", "staff_overlap_minutes"] == 40.0
    # The earlier default needed three pairs: a small invoice copied twice was never found.
    assert "staff_double_booked" not in codes(
        build(_town(["2026-03-04", "2026-03-30"]), double_booking_min_pairs=3), "I1"
    )


def test_a_utc_export_gives_the_same_finding_as_local_time():
    # 00:30 local is 23:30 (winter) and 22:30 (summer) UTC of the day before: a grouping
    # on the UTC date would put the pairs on other days, and 2026-04-01 00:30 in March.
    days = ["2026-03-04", "2026-03-30", "2026-04-01"]
    local = validate_tables(_town(days)).tables
    utc_raw = _as_utc(_town(days))
    assert str(utc_raw["visits"]["start_at"].dt.tz) == "UTC"
    assert utc_raw["visits"]["start_at"].iloc[0] == pd.Timestamp("2026-03-03 23:30", tz="UTC")
    utc = validate_tables(utc_raw).tables
    assert_frame_equal(utc["visits"], local["visits"])
    from_local, from_utc = build(local), build(utc)
    assert_frame_equal(from_utc.features, from_local.features)
    assert_frame_equal(from_utc.findings, from_local.findings)
    # The April pair is April's: March has the two others, a finding with local times.
    assert evidence(from_utc, "I1", "staff_double_booked").startswith(
        "2 overlapping pair(s) of at least 5 min: carer S1: visit A0 (2026-03-04 00:30-01:10, app)"
    )
    assert from_utc.features.set_index("invoice_id").loc["I1", "staff_overlap_minutes"] == 80.0
