"""Registration shares judged against the provider's own habit at its other clients.

A provider whose staff type everything in afterwards to the round hour, or whose night
patrol checks on clients in short visits at the same times every night, does so at all
its clients: the invoice's share beyond the provider's other clients' share is what counts.
"""

from __future__ import annotations

import pytest

from tests.unit.test_features import (
    P,
    build,
    grant,
    invoice,
    municipality,
    row,
    visit,
)


def _days(prefix: str, cid: str, days: range, time: str, minutes: float, **kw: object):
    return [visit(f"{prefix}{cid}{d:02d}", cid, f"{P}-{d:02d} {time}", minutes, **kw) for d in days]


def _town(c1: list[dict], others: list[dict], other_invoices: list[dict]) -> dict:
    return municipality(
        grants=[grant(f"G{c}", c, 40.0) for c in ("C1", "C2", "C3")]
        + [grant("GN", "C3", 40.0, service_type="night_care")],
        visits=c1 + others,
        invoices=[invoice("I1", "C1", 10.0), *other_invoices],
    )


def test_a_provider_that_types_everything_in_to_the_half_hour_is_its_habit():
    # C1: 10 visits typed in at 10:00 for 60 min, the same every day. C2 at the same
    # provider: 12 visits, all typed in, 9 of them at round starts (the other 3 at :15),
    # 6 repeating their start and length on another day.
    c1 = _days("V", "C1", range(1, 11), "10:00", 60, method="manual")
    c2 = (
        _days("W", "C2", range(1, 7), "08:30", 45, method="manual", staff_id="S2")
        + _days("X", "C2", range(11, 14), "14:00", 30 + 0, method="manual", staff_id="S2")
        + _days("Y", "C2", range(14, 17), "13:15", 20, method="manual", staff_id="S2")
    )
    # The 14:00 visits repeat too (3 days): 6 + 3 + 3 = 12 repeated of 12.
    tables = _town(c1, c2, [invoice("I2", "C2", 7.0)])
    r1, r2 = row(build(tables), "I1"), row(build(tables), "I2")
    assert r1["manual_registration_share"] == 0.0  # 1.0 - 12/12
    assert r1["round_start_time_share"] == pytest.approx(1.0 - 9 / 12)
    assert r1["repeated_visit_times_share"] == 0.0  # 1.0 - 12/12
    # C2 against C1's 10 visits: all typed in, all round, all repeated: nothing beyond.
    assert r2["manual_registration_share"] == 0.0
    assert r2["round_start_time_share"] == 0.0
    assert r2["repeated_visit_times_share"] == 0.0


def test_an_invoice_of_typed_in_round_visits_at_a_provider_that_checks_in_stands_out():
    # C2's 12 visits at the same provider are checked in at the door, at 08:07.
    c1 = _days("V", "C1", range(1, 11), "10:00", 60, method="manual")
    c2 = _days("W", "C2", range(1, 13), "08:07", 45, staff_id="S2")
    r1 = row(build(_town(c1, c2, [invoice("I2", "C2", 9.0)])), "I1")
    assert r1["manual_registration_share"] == 1.0
    assert r1["round_start_time_share"] == 1.0
    # C2's 08:07 visits repeat too, but a key tag at the door is no copied registration.
    assert r1["repeated_visit_times_share"] == 1.0


def test_too_few_visits_at_other_clients_are_no_habit():
    # C2 has 9 visits (under provider_habit_min_visits = 10): C1 is judged on its own.
    c1 = _days("V", "C1", range(1, 11), "10:00", 60, method="manual")
    c2 = _days("W", "C2", range(1, 10), "08:00", 45, method="manual", staff_id="S2")
    tables = _town(c1, c2, [invoice("I2", "C2", 6.75)])
    r1 = row(build(tables), "I1")
    assert r1["manual_registration_share"] == 1.0
    assert r1["round_start_time_share"] == 1.0
    assert r1["repeated_visit_times_share"] == 1.0
    r1 = row(build(tables, provider_habit_min_visits=9), "I1")
    assert r1["manual_registration_share"] == 0.0


def test_night_checks_by_key_tag_are_neither_short_nor_copied():
    # C3: 12 night checks of 5 min at 02:13, checked in at the door: short in the night
    # and repeating, as a night patrol's round does. The same checks typed in at 12:13:
    # short day visits repeating to the minute.
    c1 = _days("V", "C1", range(1, 11), "11:07", 60)
    night = _days("N", "C3", range(1, 13), "02:13", 5, service_type="night_care")
    day = _days("N", "C3", range(1, 13), "12:13", 5, service_type="night_care", method="app")
    bill = [invoice("I3", "C3", 1.0, service_type="night_care")]
    r3 = row(build(_town(c1, night, bill)), "I3")
    assert r3["short_visit_share"] == 0.0
    assert r3["repeated_visit_times_share"] == 0.0
    r3 = row(build(_town(c1, day, bill)), "I3")
    # Short is the norm for a service given in rounds (features.round_service_types).
    assert r3["short_visit_share"] == 0.0
    assert r3["repeated_visit_times_share"] == 1.0
    r3 = row(build(_town(c1, day, bill), round_service_types=()), "I3")
    assert r3["short_visit_share"] == 1.0


def test_short_visits_are_judged_against_the_provider_s_other_clients_of_the_service():
    # C3 (home service): 12 typed-in visits of 5 min at 12:13. The provider's other
    # home-service client C2 has 12 such visits; its personal-care client C1 does not
    # count while there are enough home-service visits to compare with.
    home = {"service_type": "home_service", "method": "manual"}
    c3 = _days("N", "C3", range(1, 13), "12:13", 5, **home)
    c2 = _days("M", "C2", range(1, 13), "13:20", 5, staff_id="S9", **home)
    c1 = _days("V", "C1", range(1, 11), "11:07", 60)
    bills = [
        invoice("I2", "C2", 1.0, service_type="home_service"),
        invoice("I3", "C3", 1.0, service_type="home_service"),
    ]
    r3 = row(build(_town(c1, c2 + c3, bills)), "I3")
    assert r3["short_visit_share"] == 0.0  # 1.0 - 12/12
    assert r3["repeated_visit_times_share"] == 0.0
    assert r3["manual_registration_share"] == 0.0
    # Without another home-service client: against C1's 10 personal-care visits.
    r3 = row(build(_town(c1, c3, bills[1:])), "I3")
    assert r3["short_visit_share"] == 1.0
    assert r3["repeated_visit_times_share"] == 1.0
    assert r3["manual_registration_share"] == 1.0


def _four_clients(typed_in: dict[str, int]) -> dict:
    """C1-C4 at P1, 10 personal-care visits each, the first `typed_in[c]` typed in."""
    visits = []
    for n, (cid, typed) in enumerate(typed_in.items()):
        visits += [
            visit(
                f"V{cid}{d:02d}",
                cid,
                f"{P}-{d:02d} {8 + n:02d}:07",
                60,
                staff_id=f"S{cid}",
                method="manual" if d <= typed else "nfc",
            )
            for d in range(1, 11)
        ]
    return municipality(
        grants=[grant(f"G{c}", c, 40.0) for c in typed_in],
        visits=visits,
        invoices=[invoice(f"I{c[1:]}", c, 10.0) for c in typed_in],
    )


def test_a_client_is_judged_against_the_provider_s_typical_other_client_too():
    # C1 all typed in; C2, C3, C4 10, 5 and 8 of 10. Pooled over the others, 23 of 30
    # (0.767); their typical client (the 0.75 quantile of 1.0, 0.5, 0.8) 0.9.
    tables = _four_clients({"C1": 10, "C2": 10, "C3": 5, "C4": 8})
    with_three = build(tables, provider_habit_min_clients=3)
    assert row(with_three, "I1")["manual_registration_share"] == pytest.approx(1.0 - 0.9)
    # With fewer other clients than provider_habit_min_clients (4): the pooled share.
    assert row(build(tables), "I1")["manual_registration_share"] == pytest.approx(1.0 - 23 / 30)
    # C3 is under both: nothing beyond.
    assert row(with_three, "I3")["manual_registration_share"] == 0.0


def test_one_typed_in_client_at_a_provider_that_checks_in_still_stands_out():
    tables = _four_clients({"C1": 10, "C2": 0, "C3": 0, "C4": 1})
    r1 = row(build(tables, provider_habit_min_clients=3), "I1")
    # Others: 1 of 30 pooled, their typical client 0.05 (the 0.75 quantile of 0, 0, 0.1),
    # the larger of the two: 1.0 - 0.05.
    assert r1["manual_registration_share"] == pytest.approx(1.0 - 0.05)


def test_one_visit_clients_do_not_set_the_typical_client():
    """Four clients of one typed-in visit each would make the typical share 1.0 (a provider
    controls its own registrations); only clients of provider_habit_client_min_visits (4)
    visits that month count among the others, so the pooled share judges C1."""
    visits = [
        visit(f"V1{d:02d}", "C1", f"{P}-{d:02d} 08:07", 60, staff_id="S1", method="manual")
        for d in range(1, 11)
    ]
    small = [f"C{i}" for i in range(2, 6)]
    for n, cid in enumerate(small):
        visits.append(
            visit(f"V{cid}", cid, f"{P}-03 {9 + n:02d}:07", 60, staff_id=f"S{cid}", method="manual")
        )
    visits += [
        visit(f"VB{d:02d}", "CB", f"{P}-{d:02d} 20:07", 60, staff_id="SB", method="nfc")
        for d in range(1, 21)
    ]
    clients = ["C1", *small, "CB"]
    hours = {"C1": 10.0, "CB": 20.0}
    tables = municipality(
        grants=[grant(f"G{c}", c, 40.0) for c in clients],
        visits=visits,
        invoices=[invoice(f"I{c}", c, hours.get(c, 1.0)) for c in clients],
    )
    # Others of C1: 24 visits, 4 typed in (pooled 4/24); none of the one-visit clients is
    # typical, so only CB counts and 1 other client is under provider_habit_min_clients.
    assert row(build(tables), "IC1")["manual_registration_share"] == pytest.approx(1.0 - 4 / 24)


def _self_join_typical(min_visits: int, quantile: float) -> str:
    """The typical other client by definition: each key against each other eligible client."""
    typical = ", ".join(
        f"quantile_cont(o.n_{c} / CAST(o.n AS DOUBLE), {quantile!r}) AS typical_{c}"
        for c in ("manual", "round")
    )
    return f"""
        SELECT k.provider_id, k.client_id, k.service_type, k.m, count(*) AS n_others, {typical}
        FROM k JOIN k o
          ON o.provider_id = k.provider_id AND o.service_type = k.service_type
         AND o.m = k.m AND o.client_id <> k.client_id AND o.n >= {min_visits}
        GROUP BY ALL ORDER BY ALL
    """


@pytest.mark.parametrize("quantile", [0.5, 0.75, 0.9, 0.6, 1.0])
@pytest.mark.parametrize("min_visits", [1, 4])
def test_the_typical_other_client_is_the_quantile_over_each_key_s_others_to_the_bit(
    quantile: float, min_visits: int
) -> None:
    """`typical_other_client` leaves out one eligible client per case instead of joining
    every key with every other client: the same values, bit for bit, as the self-join.

    Providers of 1 to 40 clients (the edge of no other client, one, a handful), shares
    with ties (few distinct counts), some clients under the visit floor.
    """
    import duckdb
    import numpy as np
    import pandas as pd

    from tillit.features.queries import typical_other_client

    rng = np.random.default_rng(int(quantile * 100) + min_visits)
    rows = []
    for p in range(60):
        for service in ("home_care", "night_care"):
            for client in range(int(rng.integers(1, 41))):
                n = int(rng.integers(1, 13))
                manual, round_start = (int(rng.integers(0, n + 1)) for _ in range(2))
                rows.append((f"P{p}", f"C{client:02d}", service, 300, n, manual, round_start))
    k = pd.DataFrame(
        rows, columns=["provider_id", "client_id", "service_type", "m", "n", "n_manual", "n_round"]
    )
    con = duckdb.connect(config={"threads": 1})
    con.register("k_frame", k)
    con.execute("CREATE TABLE k AS SELECT * FROM k_frame")
    ctes = typical_other_client(("manual", "round"), min_visits, quantile)
    fast = con.execute(f"WITH {ctes} SELECT * FROM other_clients ORDER BY ALL").df()
    expected = con.execute(_self_join_typical(min_visits, quantile)).df()

    assert len(expected) > 1000
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)
    for column in ("typical_manual", "typical_round"):  # same bits, not only equal values
        assert (
            fast[column].to_numpy().view("int64") == expected[column].to_numpy().view("int64")
        ).all()
