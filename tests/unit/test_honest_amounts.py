"""Amounts within the tolerance of a price are that price (rounding is no price of its own)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.test_features import RATES_2026, build, grant, invoice, municipality, row, visit


def _ten_hours_each(amounts: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Invoices of 10 billed hours at the amounts given, one per client (`C<n>` for `I<n>`),
    each backed by ten one-hour visits in March 2026."""
    clients = [f"C{invoice_id[1:]}" for invoice_id in amounts]
    visits = [
        visit(f"V{c}{d:02d}", c, f"2026-03-{d:02d} {8 + i:02d}:00", 60, staff_id=f"S{c}")
        for i, c in enumerate(clients)
        for d in range(1, 11)
    ]
    return municipality(
        grants=[grant(f"G{c}", c, 10.0) for c in clients],
        visits=visits,
        invoices=[
            invoice(invoice_id, c, 10.0, amount)
            for (invoice_id, amount), c in zip(amounts.items(), clients, strict=True)
        ],
    )


def test_an_amount_within_the_tolerance_of_the_tariff_is_at_the_tariff():
    rate = RATES_2026["personal_care"]
    # Ten hours each: at the tariff, 0.40 SEK above (rounding), 50 SEK above.
    tables = _ten_hours_each({"I1": 10 * rate, "I2": 10 * rate + 0.40, "I3": 10 * rate + 50.0})
    fs = build(tables)
    i1, i2, i3 = row(fs, "I1"), row(fs, "I2"), row(fs, "I3")
    for r in (i1, i2):
        assert r["amount_over_tariff_amount"] == 1.0
        assert r["amount_minus_tariff_amount_sek"] == 0.0
    assert i3["amount_over_tariff_amount"] == pytest.approx((10 * rate + 50.0) / (10 * rate))
    assert i3["amount_minus_tariff_amount_sek"] == pytest.approx(50.0)
    # The month's norm per hour is the median, rate + 0.04: I1 and I2 are at it, I3 is not.
    norm = rate + 0.04
    assert i1["amount_per_billed_hour_over_municipality_norm"] == 1.0
    assert i2["amount_per_billed_hour_over_municipality_norm"] == 1.0
    assert i3["amount_per_billed_hour_over_municipality_norm"] == pytest.approx((rate + 5.0) / norm)
    # A stricter tolerance keeps the fraction of a krona (I2 is the month's median invoice,
    # but three invoices are no prevailing rate: its own rate is no price).
    strict = row(build(tables, amount_tolerance_sek=0.1), "I2")
    assert strict["amount_minus_tariff_amount_sek"] == pytest.approx(0.40)
    assert strict["amount_over_tariff_amount"] == pytest.approx((10 * rate + 0.4) / (10 * rate))


def test_an_amount_at_the_month_s_new_rate_is_at_a_price_when_the_tariff_table_lags():
    # Every provider bills a new rate, 2 % above the tariff table's (a mid-year change the
    # exported table does not have): 10 h at the new rate, 0.40 SEK above it (rounding), and
    # 50 SEK above it.
    new_rate = RATES_2026["personal_care"] * 1.02
    tables = _ten_hours_each(
        {
            "I1": round(10 * new_rate, 2),
            "I2": round(10 * new_rate, 2),
            "I3": round(10 * new_rate + 0.40, 2),
            "I4": round(10 * new_rate + 50.0, 2),
        }
    )
    fs = build(tables, tariff_prevailing_min_invoices=4)
    for invoice_id in ("I1", "I2", "I3"):
        r = row(fs, invoice_id)
        assert r["amount_over_tariff_amount"] == 1.0
        assert r["amount_minus_tariff_amount_sek"] == 0.0
    rate = RATES_2026["personal_care"]
    i4 = row(fs, "I4")
    amount = round(10 * new_rate + 50.0, 2)
    # Off every price: still judged against the tariff table, as before.
    assert i4["amount_over_tariff_amount"] == pytest.approx(amount / (10 * rate))
    assert i4["amount_minus_tariff_amount_sek"] == pytest.approx(amount - 10 * rate)


@pytest.mark.parametrize(
    ("amounts", "minimum"),
    [
        ({"I1": 1.3}, 20),  # a lone invoice of its service that month: its rate is no price
        ({"I1": 1.0, "I2": 1.3, "I3": 1.3}, 20),  # too few invoices for a prevailing rate
        ({"I1": 1.0, "I2": 1.0, "I3": 1.3, "I4": 1.3}, 4),  # half at a rate is not most
    ],
)
def test_a_rate_only_some_invoices_bill_is_no_price(amounts, minimum):
    """Overbilled invoices that set their group's median stay judged against the tariff."""
    rate = RATES_2026["personal_care"]
    tables = _ten_hours_each({i: round(10 * rate * f, 2) for i, f in amounts.items()})
    fs = build(tables, tariff_prevailing_min_invoices=minimum)
    for invoice_id, factor in amounts.items():
        r = row(fs, invoice_id)
        if factor == 1.0:
            assert r["amount_over_tariff_amount"] == 1.0
        else:
            assert r["amount_over_tariff_amount"] == pytest.approx(factor, abs=1e-4)
            assert r["amount_minus_tariff_amount_sek"] == pytest.approx(
                round(10 * rate * factor, 2) - 10 * rate
            )


def test_an_amount_far_below_every_price_is_a_mismatch_without_a_prevailing_rate():
    """No prevailing rate is no price: 10 h billed for 5 SEK is off the tariff (a finding).

    The finding once read a missing prevailing rate as 0 SEK/h, and an amount within the
    tolerance of 0 passed as at a price; the features read it as none (`at_a_price`).
    """
    rate = RATES_2026["personal_care"]
    fs = build(_ten_hours_each({"I1": 10 * rate, "I2": 5.0}))
    assert row(fs, "I1")["finding_amount_mismatch_tariff"] == 0.0
    assert row(fs, "I2")["finding_amount_mismatch_tariff"] == 1.0
    assert row(fs, "I2")["amount_minus_tariff_amount_sek"] == pytest.approx(5.0 - 10 * rate)
