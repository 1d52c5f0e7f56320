"""The key-tag share against the same client's earlier months (issue 21, padded visits)."""

from __future__ import annotations

import pytest

from tests.unit.test_features import build, client, grant, invoice, municipality, row, visit
from tillit.review.reasons import reason_sentence


def _town() -> dict:
    # C1: all 10 visits by key tag in January, 8 of 10 in February, 2 of 10 in March
    # (the rest in the app): 0.8 below its highest earlier month, January. C2: 5 of 10
    # by key tag every month (no fall). C5: all 10 by key tag in January, 10 typed in by
    # hand in March: visits typed in afterwards do not count (their own feature judges
    # them), so March has none to compare.
    # C3: new in March. C4: 3 visits in March only (too few to compare).
    keytags = {
        ("2026-01", "C1"): 10,
        ("2026-02", "C1"): 8,
        ("2026-03", "C1"): 2,
        ("2026-01", "C2"): 5,
        ("2026-02", "C2"): 5,
        ("2026-03", "C2"): 5,
        ("2026-03", "C3"): 0,
        ("2026-01", "C5"): 10,
        ("2026-03", "C5"): 0,
    }
    visits, invoices = [], []
    for (month, cid), tagged in keytags.items():
        visits += [
            visit(
                f"V{month}{cid}{d}",
                cid,
                f"{month}-{d:02d} 10:00",
                60,
                staff_id=f"S{cid}",
                method="nfc" if d <= tagged else ("manual" if cid == "C5" else "app"),
            )
            for d in range(1, 11)
        ]
        invoices.append(invoice(f"I{month}{cid}", cid, 10.0, period=month))
    visits += [visit(f"W{d}", "C4", f"2026-01-{d:02d} 12:00", 60, staff_id="S4") for d in (1, 2)]
    visits += [
        visit(f"X{d}", "C4", f"2026-03-{d:02d} 12:00", 60, staff_id="S4", method="app")
        for d in range(1, 4)
    ]
    invoices += [invoice("I2026-01C4", "C4", 2.0, period="2026-01")]
    invoices += [invoice("I2026-03C4", "C4", 3.0, period="2026-03")]
    return municipality(
        clients=[client(f"C{i}") for i in range(1, 6)],
        grants=[grant(f"G{i}", f"C{i}", hours=30.0) for i in range(1, 6)],
        visits=visits,
        invoices=invoices,
    )


def test_the_key_tag_share_against_the_clients_highest_earlier_month():
    fs = build(_town())
    drop = "keytag_share_drop_over_own_history_6m"
    c1, c2, c3 = row(fs, "I2026-03C1"), row(fs, "I2026-03C2"), row(fs, "I2026-03C3")
    # C1: 2 of 10 by key tag in March against 10 of 10 in January (its highest month).
    assert c1[drop] == pytest.approx(0.8)
    assert c1["evidence_keytag_highest_period"] == "2026-01"
    assert c1["evidence_keytag_now_share"] == pytest.approx(0.2)
    assert c1["evidence_keytag_highest_share"] == pytest.approx(1.0)
    assert c2[drop] == 0.0  # the same share every month
    assert c3[drop] == 0.0  # nothing earlier to compare with
    assert row(fs, "I2026-03C5")[drop] == 0.0  # typed in by hand: not a key-tag fall
    # C4 had 2 visits in January and 3 in March: under `own_history_min_visits` (4).
    assert row(fs, "I2026-03C4")[drop] == 0.0
    # With a lower minimum, C4's 2 key-tag visits of 2 in January count against 0 of 3.
    loose = build(_town(), own_history_min_visits=2)
    assert row(loose, "I2026-03C4")[drop] == pytest.approx(1.0)
    # With a higher one, no month of 10 visits counts either.
    assert row(build(_town(), own_history_min_visits=11), "I2026-03C1")[drop] == 0.0


def test_the_key_tag_fall_is_worded_with_the_month_compared():
    c1 = row(build(_town()), "I2026-03C1")
    assert reason_sentence("keytag_share_drop_over_own_history_6m", c1, 0.0, "en") == (
        "20% of the visits registered at the time were checked in at the client's door by "
        "key tag in 2026-03 against 100% in 2026-01, this client's highest earlier month "
        "with the provider: the app replaced the door tag"
    )
    assert reason_sentence("keytag_share_drop_over_own_history_6m", c1, 0.0, "sv") == (
        "20\u00a0% av besöken registrerade i stunden checkades in med nyckelbricka vid "
        "brukarens dörr under 2026-03 mot 100\u00a0% under 2026-01, brukarens högsta "
        "tidigare månad hos utföraren: appen har ersatt dörrens nyckelbricka"
    )
