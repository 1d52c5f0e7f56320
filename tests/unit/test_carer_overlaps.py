"""Visits overlapping the same carer's previous or next visit (issue 21, padded visits)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.test_features import build, client, grant, invoice, municipality, row, visit
from tillit.review.reasons import reason_sentence

SHARE = "carer_overlap_visit_share"


def _town() -> dict:
    # Carer S1 on 2026-03-02: C1 08:00-09:10, then C2 09:00-09:45 (10 minutes at both:
    # both count); C1 12:00-12:50 and again 12:40-13:00 (10 minutes: both count).
    # On 2026-03-03: C1 08:00-08:45 and C2 from 08:43 (2 minutes: clock noise, neither).
    # So 3 of C1's 4 visits count and 1 of C2's 2.
    # Carer S2: C3 (provider P2) 10:00-11:00 and C4 (P1) from 10:30: both count, the one
    # that began inside the other too (a visit padded at its start).
    # Carer S3: C5 on 2026-02-28 23:30 to 2026-03-01 00:30 and again 2026-03-01 00:15-00:45:
    # the overlap is with a February visit, which March's invoice does not read.
    # Carer S4: C6 2026-03-06 23:50 to 00:20 and C7 from 2026-03-07 00:10 (10 minutes across
    # midnight); C6 and C7 both at 10:00-10:30 on 2026-03-08 (equal starts: both count,
    # whatever their ids).
    visits = [
        visit("A1", "C1", "2026-03-02 08:00", 70),
        visit("A2", "C2", "2026-03-02 09:00", 45),
        visit("A3", "C1", "2026-03-02 12:00", 50),
        visit("A4", "C1", "2026-03-02 12:40", 20),
        visit("A5", "C1", "2026-03-03 08:00", 45),
        visit("A6", "C2", "2026-03-03 08:43", 45),
        visit("B1", "C3", "2026-03-04 10:00", 60, staff_id="S2", provider_id="P2"),
        visit("B2", "C4", "2026-03-04 10:30", 30, staff_id="S2", method="app"),
        visit("D1", "C5", "2026-02-28 23:30", 60, staff_id="S3"),
        visit("D2", "C5", "2026-03-01 00:15", 30, staff_id="S3"),
        visit("E3", "C6", "2026-03-06 23:50", 30, staff_id="S4"),
        visit("E4", "C7", "2026-03-07 00:10", 20, staff_id="S4"),
        visit("E9", "C6", "2026-03-08 10:00", 30, staff_id="S4"),
        visit("E1", "C7", "2026-03-08 10:00", 30, staff_id="S4"),
    ]
    invoices = [
        invoice("I1", "C1", 3.08),
        invoice("I2", "C2", 1.5),
        invoice("I3", "C3", 1.0, provider_id="P2"),
        invoice("I4", "C4", 0.5),
        invoice("I5", "C5", 0.5),
        invoice("I6", "C6", 1.0),
        invoice("I7", "C7", 0.83),
    ]
    return municipality(
        clients=[client(f"C{i}") for i in range(1, 8)],
        grants=[grant("G1", "C1"), grant("G2", "C2"), grant("G3", "C3", provider_id="P2")]
        + [grant(f"G{i}", f"C{i}") for i in (4, 5, 6, 7)],
        visits=visits,
        invoices=invoices,
    )


def test_the_share_of_visits_overlapping_the_carers_neighbouring_visit():
    fs = build(_town())
    c1 = row(fs, "I1")
    assert c1[SHARE] == pytest.approx(0.75)  # 3 of 4: one at another client, two here
    assert c1["evidence_carer_overlap_date"] == "2026-03-02 08:00-09:10"
    assert c1["evidence_carer_overlap_other_date"] == "2026-03-02 09:00-09:45"
    assert c1["evidence_carer_overlap_other_provider"] == "P1"
    assert c1["evidence_carer_overlap_minutes"] == 10
    assert c1["evidence_carer_overlap_visits"] == 3
    assert c1["evidence_carer_overlap_key_visits"] == 4
    assert row(fs, "I2")[SHARE] == pytest.approx(0.5)  # the 2-minute overlap does not count
    assert row(fs, "I3")[SHARE] == pytest.approx(1.0)  # overlapped another provider's visit
    assert row(fs, "I3")["evidence_carer_overlap_other_provider"] == "P1"
    assert row(fs, "I4")[SHARE] == pytest.approx(1.0)  # began inside another visit
    assert row(fs, "I4")["evidence_carer_overlap_other_provider"] == "P2"
    assert row(fs, "I5")[SHARE] == 0.0  # the visit it overlaps belongs to February
    assert pd.isna(row(fs, "I5")["evidence_carer_overlap_date"])  # no such visit: no facts
    c6, c7 = row(fs, "I6"), row(fs, "I7")
    assert c6[SHARE] == pytest.approx(1.0) and c7[SHARE] == pytest.approx(1.0)  # equal starts
    assert c6["evidence_carer_overlap_date"] == "2026-03-06 23:50-2026-03-07 00:20"
    assert c6["evidence_carer_overlap_other_date"] == "2026-03-07 00:10-00:30"
    assert c7["evidence_carer_overlap_other_date"] == "2026-03-06 23:50-2026-03-07 00:20"


def test_a_shorter_overlap_counts_with_a_lower_clock_tolerance():
    fs = build(_town(), double_booking_min_minutes=1.0)
    assert row(fs, "I2")[SHARE] == pytest.approx(1.0)  # the 2-minute overlap now counts


def test_the_carer_overlap_is_worded_with_the_visits_to_check_and_no_person():
    c1 = row(build(_town()), "I1")
    assert reason_sentence(SHARE, c1, 0.0, "en") == (
        "a carer was registered here on 2026-03-02 08:00-09:10 and at another visit, for "
        "provider P1, on 2026-03-02 09:00-09:45: 10 minutes at two visits at once; 3 of the "
        "invoice's 4 visits overlapped another visit of the same carer (75%)"
    )
    assert reason_sentence(SHARE, c1, 0.0, "sv") == (
        "en personal var registrerad här 2026-03-02 08:00-09:10 och vid ett annat besök, för "
        "utförare P1, 2026-03-02 09:00-09:45: 10 minuter vid två besök samtidigt; 3 av "
        "fakturans 4 besök överlappade ett annat besök av samma personal (75\u00a0%)"
    )


def test_every_evidence_span_across_midnight_carries_its_end_date():
    # Carer S1 key-tagged at C1 from 23:20 to 00:15 and typed in at C2 from 23:30 to 00:10:
    # the typed-in visit is both registered elsewhere (staff_elsewhere) and double-booked
    # (the finding's pair); every span that ends on the next day says which day.
    visits = [
        visit("V1", "C1", "2026-03-02 23:20", 55),
        visit("V2", "C2", "2026-03-02 23:30", 40, method="manual"),
    ]
    tables = municipality(
        clients=[client("C1"), client("C2")],
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 55 / 60), invoice("I2", "C2", 40 / 60)],
    )
    fs = build(tables, double_booking_min_pairs=1)
    i2 = row(fs, "I2")
    assert i2["evidence_elsewhere_date"] == "2026-03-02 23:30-2026-03-03 00:10"
    assert i2["evidence_elsewhere_other_date"] == "2026-03-02 23:20-2026-03-03 00:15"
    assert reason_sentence("staff_elsewhere_hours_share", i2, 0.0, "en") == (
        "carer S1 was registered here on 2026-03-02 23:30-2026-03-03 00:10 and at another "
        "client on 2026-03-02 23:20-2026-03-03 00:15 (checked in there by key-tag); 1 such "
        "visit on this invoice, 0.7 of 0.7 h (100%)"
    )
    pair = fs.findings.loc[fs.findings["invoice_id"] == "I2", "evidence"].tolist()
    assert pair == [
        "1 overlapping pair(s) of at least 5 min: carer S1: visit V2 (2026-03-02 "
        "23:30-2026-03-03 00:10, manual) and visit V1 at another client (2026-03-02 "
        "23:20-2026-03-03 00:15, nfc) overlap 40.0 min"
    ]
