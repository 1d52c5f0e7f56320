"""Visits still running when the same carer's next visit began (issue 21, padded visits)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.test_features import build, client, grant, invoice, municipality, row, visit
from tillit.review.reasons import reason_sentence

SHARE = "running_into_next_visit_share"


def _town() -> dict:
    # Carer S1 on 2026-03-02: C1 08:00-09:10, then C2 from 09:00 (C1's visit ran into it);
    # C1 again 12:00-12:50 and 12:40-13:00 (into the next visit at the same client).
    # On 2026-03-03: C1 08:00-08:45 and C2 09:00-09:45, a route with travel time.
    # So 2 of C1's 4 visits ran into the carer's next one; none of C2's 2.
    # Carer S2: C3 (provider P2) 10:00-11:00 and C4 (P1) from 10:30: C3's visit ran into
    # the carer's next one at another provider; C4's visit began inside it but did not
    # itself run into a later one.
    # Carer S3: C5 on 2026-02-28 23:30 to 2026-03-01 00:30 and again 2026-03-01 00:15-00:45:
    # the February visit is not described (its next visit is in another month), and the
    # March visit is the carer's last.
    visits = [
        visit("A1", "C1", "2026-03-02 08:00", 70),
        visit("A2", "C2", "2026-03-02 09:00", 45),
        visit("A3", "C1", "2026-03-02 12:00", 50),
        visit("A4", "C1", "2026-03-02 12:40", 20),
        visit("A5", "C1", "2026-03-03 08:00", 45),
        visit("A6", "C2", "2026-03-03 09:00", 45),
        visit("B1", "C3", "2026-03-04 10:00", 60, staff_id="S2", provider_id="P2"),
        visit("B2", "C4", "2026-03-04 10:30", 30, staff_id="S2", method="app"),
        visit("D1", "C5", "2026-02-28 23:30", 60, staff_id="S3"),
        visit("D2", "C5", "2026-03-01 00:15", 30, staff_id="S3"),
    ]
    invoices = [
        invoice("I1", "C1", 2.75),
        invoice("I2", "C2", 1.5),
        invoice("I3", "C3", 1.0, provider_id="P2"),
        invoice("I4", "C4", 0.5),
        invoice("I5", "C5", 0.5),
    ]
    return municipality(
        clients=[client(f"C{i}") for i in range(1, 6)],
        grants=[grant("G1", "C1"), grant("G2", "C2"), grant("G3", "C3", provider_id="P2")]
        + [grant(f"G{i}", f"C{i}") for i in (4, 5)],
        visits=visits,
        invoices=invoices,
    )


def test_the_share_of_visits_running_into_the_carers_next_visit():
    fs = build(_town())
    c1 = row(fs, "I1")
    assert c1[SHARE] == pytest.approx(0.5)  # 2 of 4, one at another client, one here
    assert c1["evidence_into_next_staff"] == "S1"
    assert c1["evidence_into_next_date"] == "2026-03-02 08:00-09:10"
    assert c1["evidence_into_next_other_client"] == "C2"
    assert c1["evidence_into_next_other_date"] == "2026-03-02 09:00"
    assert c1["evidence_into_next_visits"] == 2
    assert c1["evidence_into_next_key_visits"] == 4
    assert row(fs, "I2")[SHARE] == 0.0  # travel time before the next visit
    assert row(fs, "I3")[SHARE] == pytest.approx(1.0)  # the next visit was for another provider
    assert row(fs, "I4")[SHARE] == 0.0  # began inside another visit, but ran into none
    assert row(fs, "I5")[SHARE] == 0.0  # the visit it overlaps belongs to February
    assert pd.isna(row(fs, "I2")["evidence_into_next_staff"])  # no such visit: no facts


def test_running_into_the_next_visit_is_worded_with_the_visits_to_check():
    c1 = row(build(_town()), "I1")
    assert reason_sentence(SHARE, c1, 0.0, "en") == (
        "carer S1 was registered here on 2026-03-02 08:00-09:10, but their next visit, at "
        "client C2, began 2026-03-02 09:00; 2 of the invoice's 4 visits ran into the "
        "carer's next visit (50%)"
    )
    assert reason_sentence(SHARE, c1, 0.0, "sv") == (
        "personal S1 var registrerad här 2026-03-02 08:00-09:10, men personalens nästa "
        "besök, hos brukare C2, började 2026-03-02 09:00; 2 av fakturans 4 besök drog över "
        "in i personalens nästa besök (50\u00a0%)"
    )
