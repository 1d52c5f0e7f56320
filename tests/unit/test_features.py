"""Feature stage: exact values on hand-built frames, point in time, findings, quarantine."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from tests import REPO
from tillit.config import FeatureConfig
from tillit.data.contract import TABLES
from tillit.errors import TillitError
from tillit.features import (
    EVIDENCE_COLUMNS,
    FAIRNESS_COLUMNS,
    FEATURE_COLUMNS,
    FEATURE_DESCRIPTIONS,
    FINDING_CODES,
    KEY_COLUMNS,
    FeatureSet,
    InvoiceFeatures,
    build_features,
    feature_columns,
)
from tillit.features.build import _beyond_habit, billed_beyond_provider_habit, billing_step_hours

P = "2026-03"
RATES_2026 = {
    "personal_care": 500.0,
    "home_service": 400.0,
    "double_staffing": 520.0,
    "night_care": 600.0,
}


# ---------------------------------------------------------------------------
# Builder: contract tables with the dtypes validated frames have.
# ---------------------------------------------------------------------------


def table(name: str, rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """A contract table from row dicts, typed as `tillit.data.io` + validation would type it."""
    rows = list(rows)
    # Optional columns (contract v1.1+) only when some row has them, as in an older folder.
    kinds = {
        column: kind
        for column, kind in TABLES[name].dtypes().items()
        if column not in TABLES[name].optional_columns or any(column in r for r in rows)
    }
    frame = pd.DataFrame(rows, columns=list(kinds))
    for column, kind in kinds.items():
        if kind == "str":
            frame[column] = frame[column].astype("str")
        elif kind == "float":
            frame[column] = frame[column].astype("float64")
        elif kind == "int":
            frame[column] = frame[column].astype("int64")
        else:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def provider(pid: str, **kw: object) -> dict[str, object]:
    row = {
        "provider_id": pid,
        "org_number": "556000-0000",
        "legal_form": "AB",
        "registered_on": "2015-01-01",
        "approved_on": "2016-01-01",
        "terminated_on": None,
    }
    return row | kw


def client(cid: str, **kw: object) -> dict[str, object]:
    return {"client_id": cid, "birth_year": 1940, "district": "North", "deceased_on": None} | kw


def grant(gid: str, cid: str, hours: float = 12.0, **kw: object) -> dict[str, object]:
    row = {
        "grant_id": gid,
        "client_id": cid,
        "provider_id": "P1",
        "service_type": "personal_care",
        "hours_per_month": hours,
        "valid_from": "2025-01-01",
        "valid_to": None,
    }
    return row | kw


def visit(vid: str, cid: str, start: str, minutes: float, **kw: object) -> dict[str, object]:
    begin = pd.Timestamp(start)
    row = {
        "visit_id": vid,
        "provider_id": "P1",
        "client_id": cid,
        "staff_id": "S1",
        "service_type": "personal_care",
        "start_at": begin,
        "end_at": begin + pd.Timedelta(minutes=minutes),
        "method": "nfc",
    }
    return row | kw


def daily_visits(prefix: str, cid: str, month: str, days: int, minutes: float = 60, **kw: object):
    """One visit a day at 10:00 on the first `days` days of `month`."""
    return [
        visit(f"{prefix}{d:02d}", cid, f"{month}-{d:02d} 10:00", minutes, **kw)
        for d in range(1, days + 1)
    ]


def invoice(iid: str, cid: str, billed: float, amount: float | None = None, **kw: object):
    row = {
        "invoice_id": iid,
        "provider_id": "P1",
        "client_id": cid,
        "period": P,
        "service_type": "personal_care",
        "billed_hours": billed,
        "amount_sek": amount,
        "submitted_on": "2026-04-02",
    }
    row |= kw
    if row["amount_sek"] is None:
        row["amount_sek"] = billed * RATES_2026[str(row["service_type"])]
    return row


def municipality(
    *,
    providers: Iterable[dict] | None = None,
    clients: Iterable[dict] | None = None,
    grants: Iterable[dict] = (),
    visits: Iterable[dict] = (),
    invoices: Iterable[dict] = (),
    events: Iterable[dict] = (),
    persons: Iterable[dict] = (),
    stays: Iterable[dict] | None = (),
) -> dict[str, pd.DataFrame]:
    """A small municipality: providers P1-P3, clients C1-C4, tariffs for 2025 and 2026."""
    tariffs = [{"service_type": s, "year": 2026, "rate_sek": r} for s, r in RATES_2026.items()]
    tariffs += [
        {"service_type": s, "year": 2025, "rate_sek": r - 20} for s, r in RATES_2026.items()
    ]
    out = {
        "providers": table(
            "providers", providers or [provider("P1"), provider("P2"), provider("P3")]
        ),
        "provider_events": table("provider_events", events),
        "provider_persons": table("provider_persons", persons),
        "clients": table(
            "clients", clients or [client("C1"), client("C2"), client("C3"), client("C4")]
        ),
        "grants": table("grants", grants),
        "visits": table("visits", visits),
        "invoices": table("invoices", invoices),
        "tariffs": table("tariffs", tariffs),
    }
    if stays is not None:
        out["hospital_stays"] = table("hospital_stays", stays)
    return out


def build(tables: Mapping[str, pd.DataFrame], periods=P, **config: object) -> FeatureSet:
    return build_features(tables, periods, FeatureConfig(**config))


def row(fs: FeatureSet, invoice_id: str) -> pd.Series:
    rows = fs.features[fs.features["invoice_id"] == invoice_id]
    assert len(rows) == 1, f"{invoice_id} not described exactly once"
    return rows.iloc[0]


def evidence(fs: FeatureSet, invoice_id: str, code: str) -> str:
    hits = fs.findings[(fs.findings["invoice_id"] == invoice_id) & (fs.findings["finding"] == code)]
    assert len(hits) == 1, f"{invoice_id} should have exactly one {code} finding"
    return str(hits["evidence"].iloc[0])


def codes(fs: FeatureSet, invoice_id: str) -> set[str]:
    return set(fs.findings.loc[fs.findings["invoice_id"] == invoice_id, "finding"])


# ---------------------------------------------------------------------------
# Interface
# ---------------------------------------------------------------------------


def test_columns_descriptions_and_privacy():
    assert set(KEY_COLUMNS) == {
        "invoice_id",
        "provider_id",
        "client_id",
        "period",
        "service_type",
        "billed_hours",
        "amount_sek",
    }
    assert "hard_finding_count" in FEATURE_COLUMNS
    assert {f"finding_{code}" for code in FINDING_CODES} <= set(FEATURE_COLUMNS)
    assert set(FEATURE_DESCRIPTIONS) == set(FEATURE_COLUMNS)
    for name, text in FEATURE_DESCRIPTIONS.items():
        assert text["en"] and text["sv"], name
    # Person attributes and the district are never model inputs.
    assert not {c for c in FEATURE_COLUMNS if "birth" in c or "district" in c or "age_band" in c}
    assert not set(FAIRNESS_COLUMNS) & set(FEATURE_COLUMNS)
    longer = feature_columns(FeatureConfig(history_windows_months=(2, 12)))
    assert "billed_over_registered_hours_12m" in longer
    assert "billed_over_registered_hours_3m" not in longer


def test_output_layout_sorted_and_validated():
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=daily_visits("V", "C1", P, 3),
        invoices=[invoice("I9", "C2", 1.0), invoice("I1", "C1", 3.0)],
    )
    fs = build(tables)
    assert list(fs.features.columns) == [
        *KEY_COLUMNS,
        *FAIRNESS_COLUMNS,
        *FEATURE_COLUMNS,
        *EVIDENCE_COLUMNS,
    ]
    assert list(fs.features["invoice_id"]) == ["I1", "I9"]
    assert all(fs.features[c].dtype == "float64" for c in FEATURE_COLUMNS)
    InvoiceFeatures.validate(fs.features)
    assert list(fs.findings.columns) == ["invoice_id", "finding", "evidence", "evidence_facts"]
    assert list(fs.quarantine.columns) == ["invoice_id", "period", "reason"]


def test_bad_periods_are_refused():
    tables = municipality()
    with pytest.raises(ValueError, match="YYYY-MM"):
        build(tables, "2026-3")
    with pytest.raises(ValueError, match="at least one period"):
        build(tables, [])


# ---------------------------------------------------------------------------
# Hours: billed against registered visits and the grant
# ---------------------------------------------------------------------------


def test_hours_billed_beyond_the_providers_own_habit_and_billing_step():
    # PA bills to the half hour (all six invoices on it), usually 0.125 h over per registered
    # hour (the median of 0, 0.0625, 0.125, 0.125, 0.25, 0.375): within that habit and its
    # step, 0; its 8 h billed as 11 h is 3 - 0.125 x 8 - 0.5 = 1.5 h beyond. PB bills its
    # registered minutes (step 0, usual 0), but its peers' usual is larger (0.125 per hour,
    # the median of the other providers' seven invoices with visits, PA's and PC's): 4 h
    # billed as 4.68 h is 0.68 - 0.5 = 0.18 h beyond. PC has one invoice: no habit of its
    # own, the peers' usual (PA's and PB's eleven, median 0.0625) and their (lower median)
    # step 0: 2.5 h for 2 h is 0.5 - 0.125 = 0.375 h beyond. An invoice without visits
    # counts in no habit and has no hours to scale it: 2 h beyond.
    rows = [
        *(("PA", r, b, 10) for r, b in [(4.0, 4.5), (4.0, 4.5), (2.0, 2.5), (5.0, 5.0)]),
        *(("PA", r, b, 10) for r, b in [(8.0, 8.5), (8.0, 11.0)]),
        *(("PB", r, b, 10) for r, b in [(3.13, 3.13), (4.41, 4.41), (5.27, 5.27), (6.02, 6.02)]),
        ("PB", 4.0, 4.68, 10),
        ("PC", 2.0, 2.5, 10),
        ("PB", 0.0, 2.0, 0),
    ]
    raw = pd.DataFrame(rows, columns=["provider_id", "reg_hours", "billed_hours", "n_visits"])
    raw["service_type"], raw["period"] = "personal_care", P
    config = FeatureConfig()
    assert billing_step_hours(raw, config).tolist() == [0.5] * 6 + [0.0] * 7
    beyond = billed_beyond_provider_habit(raw, config).round(6).tolist()
    assert beyond == [0.0] * 5 + [1.5] + [0.0] * 4 + [0.18, 0.375, 2.0]
    # Whose comparison stood (the reason says so): PA's own; PB's peers' usual (larger);
    # PC's peers' usual and step; without visits no usual is applied.
    assert _beyond_habit(raw, config)[1].tolist() == [0.0] * 6 + [1.0] * 6 + [0.0]
    # One of its six invoices on the half hour (under 75 %): PA bills in no step of its own.
    off_step = raw.assign(billed_hours=raw["billed_hours"] + np.where(raw.index < 5, 0.01, 0))
    assert billing_step_hours(off_step, config)[0] == 0.0


def test_an_invoice_like_all_the_providers_others_lies_beyond_nothing():
    # Six identical invoices, 0.2 h of visits billed as 0.7 h: the usual, 1.0 per floored
    # 0.5 h, is applied per the same 0.5 h (per the raw 0.2 h, 0.3 h of each lay "beyond").
    columns = ["provider_id", "reg_hours", "billed_hours", "n_visits"]
    raw = pd.DataFrame([("P1", 0.2, 0.7, 1)] * 6, columns=columns)
    raw["service_type"], raw["period"] = "personal_care", P
    assert billed_beyond_provider_habit(raw, FeatureConfig()).tolist() == [0.0] * 6
    # Mixed 0.2 and 0.3 h visits, each billed 0.5 h over: 0 on every one (was 0.2-0.3 h).
    mixed = raw.assign(reg_hours=[0.2, 0.2, 0.2, 0.3, 0.3, 0.3])
    mixed["billed_hours"] = mixed["reg_hours"] + 0.5
    assert billed_beyond_provider_habit(mixed, FeatureConfig()).round(9).tolist() == [0.0] * 6


def test_an_invoice_never_excuses_itself_as_its_own_peer():
    # The only night-patrol invoice of the month, 20 h billed for 10 h: no other provider
    # bills the type, so no peers' usual and no habit of its own (one invoice): 10 h beyond
    # (it excused itself entirely while the peers' median counted it).
    columns = ["provider_id", "service_type", "reg_hours", "billed_hours", "n_visits"]
    lone = pd.DataFrame(
        [("P1", "night_patrol", 10.0, 20.0, 8), *[("P2", "personal_care", 10.0, 10.0, 8)] * 6],
        columns=columns,
    )
    lone["period"] = P
    assert billed_beyond_provider_habit(lone, FeatureConfig())[0] == 10.0
    # Two invoices of the type, one honest: one other invoice is fewer than
    # billing_habit_min_invoices (5), so no peers' usual (it excused half itself): 10 h.
    pair = lone.iloc[:2].assign(service_type="night_patrol")
    assert billed_beyond_provider_habit(pair, FeatureConfig()).tolist() == [10.0, 0.0]
    # Another provider's invoices of the type, 12.03 h for 10 h (0.203 per hour, step 0):
    # four are too few peers for P1 (10 h beyond) and too few for a habit of their own with
    # P1 the only peer (2.03 h each); five are the peers' usual (20 - 10 - 2.03 = 7.97 h).
    for others, expected in [(4, [10.0] + [2.03] * 4), (5, [7.97] + [0.0] * 5)]:
        peers = pd.DataFrame([("P3", "night_patrol", 10.0, 12.03, 8)] * others, columns=columns)
        month = pd.concat([lone.iloc[:1], peers.assign(period=P)], ignore_index=True)
        assert billed_beyond_provider_habit(month, FeatureConfig()).round(9).tolist() == expected


def test_hours_against_visits_grant_and_tariff():
    tables = municipality(
        grants=[grant("G1", "C1", hours=12.0)],
        visits=daily_visits("V", "C1", P, 10),
        invoices=[invoice("I1", "C1", 10.0, amount=10 * 500.0)],
    )
    r = row(build(tables), "I1")
    assert r["registered_visit_hours"] == 10.0
    assert r["registered_visit_count"] == 10.0
    assert r["has_no_registered_visits"] == 0.0
    assert r["billed_over_registered_hours"] == 1.0
    assert r["billed_minus_registered_hours"] == 0.0
    assert r["granted_hours"] == 12.0
    assert r["has_no_matching_grant"] == 0.0
    assert r["billed_over_granted_hours"] == pytest.approx(10 / 12, abs=1e-12)
    assert r["amount_over_tariff_amount"] == 1.0
    assert r["amount_minus_tariff_amount_sek"] == 0.0
    assert r["hard_finding_count"] == 0.0


def test_invoice_without_visits_or_grant_is_described_with_a_finding():
    tables = municipality(
        grants=[grant("G1", "C2", provider_id="P2")],  # the client chose P2, not P1
        invoices=[invoice("I1", "C2", 8.0)],
    )
    fs = build(tables)
    r = row(fs, "I1")
    assert r["registered_visit_hours"] == 0.0
    assert r["has_no_registered_visits"] == 1.0
    assert r["billed_over_registered_hours"] == 8.0 / 0.5
    assert r["has_no_matching_grant"] == 1.0
    assert r["billed_over_granted_hours"] == 8.0 / 0.5
    assert r["finding_service_without_grant"] == 1.0
    assert r["visit_duration_cv"] == 0.0 and r["distinct_staff_per_visit_hour"] == 0.0
    assert evidence(fs, "I1", "service_without_grant") == (
        "no grant for personal_care to the client with provider P1 valid in 2026-03 (grants); "
        "the client's grant for personal_care that month is with provider(s) P2"
    )
    assert fs.quarantine.empty


def test_billed_service_type_with_only_visits_of_another_type():
    tables = municipality(
        grants=[grant("G1", "C1", service_type="double_staffing")],
        visits=daily_visits("V", "C1", P, 4, service_type="home_service"),
        invoices=[invoice("I1", "C1", 4.0, service_type="double_staffing")],
    )
    r = row(build(tables), "I1")
    assert r["has_no_registered_visits"] == 1.0
    assert r["has_only_other_service_type_visits"] == 1.0


def test_grant_valid_part_of_the_month_is_prorated_by_days():
    tables = municipality(
        grants=[grant("G1", "C1", hours=31.0, valid_from="2026-03-17")],  # 15 of 31 days
        invoices=[invoice("I1", "C1", 15.0)],
    )
    r = row(build(tables), "I1")
    assert r["granted_hours"] == pytest.approx(15.0, abs=1e-12)
    assert r["billed_over_granted_hours"] == pytest.approx(1.0, abs=1e-12)


def test_history_windows_use_billed_months_up_to_the_period():
    # Billed / registered per month: 2025-09 (outside 6m) 50/1, 2025-10 12/10,
    # 2026-01 12/12, 2026-02 12/8, 2026-03 10/10; April is later and must not count.
    months = {
        "2025-09": (50.0, 1),
        "2025-10": (12.0, 10),
        "2026-01": (12.0, 12),
        "2026-02": (12.0, 8),
        "2026-03": (10.0, 10),
        "2026-04": (99.0, 20),
    }
    visits, invoices = [], []
    for month, (billed, days) in months.items():
        visits += daily_visits(f"V{month}-", "C1", month, days)
        invoices.append(invoice(f"I{month}", "C1", billed, period=month))
    tables = municipality(grants=[grant("G1", "C1", hours=12.0)], visits=visits, invoices=invoices)
    r = row(build(tables), "I2026-03")
    assert r["billed_over_registered_hours_3m"] == pytest.approx((12 + 12 + 10) / (12 + 8 + 10))
    assert r["billed_over_registered_hours_6m"] == pytest.approx(
        (12 + 12 + 12 + 10) / (10 + 12 + 8 + 10)
    )
    assert r["billed_over_granted_hours_3m"] == pytest.approx(34 / 36)
    assert r["billed_over_granted_hours_6m"] == pytest.approx(46 / 48)
    assert r["months_billed_exactly_at_grant_6m"] == 3.0  # 2025-10, 2026-01, 2026-02


# ---------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------


def test_amount_against_tariff_provider_norm_and_municipality_norm():
    tables = municipality(
        grants=[grant(f"G{c}", c) for c in ("C1", "C2", "C3")],
        invoices=[
            invoice("I0", "C1", 10.0, amount=4500.0, period="2026-01"),  # 450 SEK/h
            invoice("I00", "C1", 10.0, amount=4700.0, period="2026-02"),  # 470 SEK/h
            invoice("I1", "C1", 10.0, amount=5200.0),  # 520 SEK/h
            invoice("I2", "C2", 4.0, provider_id="P2"),  # 500 SEK/h
            invoice("I3", "C3", 2.0, amount=1000.5),  # within the 1 SEK tolerance
        ],
    )
    fs = build(tables)
    r = row(fs, "I1")
    assert r["amount_over_tariff_amount"] == pytest.approx(1.04)
    assert r["amount_minus_tariff_amount_sek"] == pytest.approx(200.0)
    assert r["amount_per_billed_hour_over_provider_norm_6m"] == pytest.approx(520 / 460)
    # March personal care: 520, 500, 500.25 SEK/h -> median 500.25
    assert r["amount_per_billed_hour_over_municipality_norm"] == pytest.approx(520 / 500.25)
    assert evidence(fs, "I1", "amount_mismatch_tariff") == (
        "amount 5200.00 SEK; billed 10.00 h x rate 500.00 SEK/h (personal_care, 2026) "
        "= 5000.00 SEK; difference +200.00 SEK"
    )
    # No history of its own: the provider norm falls back to the municipality's; 2000 SEK
    # against 4 h x 500.25 is within the tolerance, so at the norm (feature version 3).
    assert row(fs, "I2")["amount_per_billed_hour_over_provider_norm_6m"] == 1.0
    assert row(build(tables, amount_tolerance_sek=0.5), "I2")[
        "amount_per_billed_hour_over_provider_norm_6m"
    ] == pytest.approx(500 / 500.25)
    assert "amount_mismatch_tariff" not in codes(fs, "I3")
    assert "amount_mismatch_tariff" not in codes(fs, "I2")


def test_pooled_municipalities_join_their_own_tariff():
    # Contract v1.3: a pooled export whose tariffs name a municipality; each invoice takes
    # its own municipality's rate (K1 500 SEK/h, K2 450 SEK/h), never the other's.
    tables = municipality(
        grants=[grant(f"G{c}", c) for c in ("C1", "C2")],
        invoices=[
            invoice("I1", "C1", 10.0, amount=5000.0, municipality="K1"),
            invoice("I2", "C2", 10.0, amount=5000.0, municipality="K2"),
        ],
    )
    k1 = tables["tariffs"].assign(municipality="K1")
    k2 = tables["tariffs"].assign(municipality="K2", rate_sek=lambda t: t["rate_sek"] - 50.0)
    tables["tariffs"] = pd.concat([k1, k2], ignore_index=True)
    fs = build(tables)
    assert row(fs, "I1")["amount_minus_tariff_amount_sek"] == 0.0
    assert row(fs, "I2")["amount_minus_tariff_amount_sek"] == 500.0
    assert row(fs, "I2")["amount_over_tariff_amount"] == 5000.0 / 4500.0
    assert "amount_mismatch_tariff" not in codes(fs, "I1")
    assert evidence(fs, "I2", "amount_mismatch_tariff") == (
        "amount 5000.00 SEK; billed 10.00 h x rate 450.00 SEK/h (personal_care, 2026) "
        "= 4500.00 SEK; difference +500.00 SEK"
    )
    # The same frames without the column: one tariff for all, as in every v1.2 folder.
    tables["tariffs"] = k1.drop(columns="municipality")
    assert row(build(tables), "I2")["amount_minus_tariff_amount_sek"] == 0.0


def test_tariffs_per_municipality_are_unique_per_municipality():
    from tillit.data.validate import validate_tables

    tariffs = pd.DataFrame(
        {
            "service_type": ["personal_care", "personal_care", "personal_care"],
            "year": [2026, 2026, 2026],
            "rate_sek": [500.0, 450.0, 460.0],
            "municipality": ["K1", "K2", "K2"],
        }
    )
    kept = validate_tables({"tariffs": tariffs}).tables["tariffs"]
    assert kept["rate_sek"].tolist() == [500.0]


def test_unknown_tariff_year_is_quarantined_with_the_reason():
    tables = municipality(
        grants=[grant("G1", "C1")],
        invoices=[
            invoice("I1", "C1", 2.0),
            invoice("I2", "C1", 2.0, amount=1000.0, period="2027-01"),
        ],
    )
    fs = build(tables, [P, "2027-01"])
    assert list(fs.features["invoice_id"]) == ["I1"]
    assert fs.quarantine.to_dict("records") == [
        {
            "invoice_id": "I2",
            "period": "2027-01",
            "reason": "no tariff for personal_care in 2027: the amount cannot be checked",
        }
    ]
    assert "I2" not in set(fs.findings["invoice_id"])
    assert len(fs.features) + len(fs.quarantine) == 2


def test_invoice_of_an_unknown_provider_is_quarantined():
    tables = municipality(invoices=[invoice("I1", "C1", 2.0, provider_id="P9")])
    fs = build(tables)
    assert fs.features.empty
    InvoiceFeatures.validate(fs.features)
    assert fs.quarantine["reason"].tolist() == [
        "provider P9 is not in the providers table: the invoice cannot be described"
    ]


# ---------------------------------------------------------------------------
# Visit evidence
# ---------------------------------------------------------------------------


def test_visit_registration_patterns():
    durations = [5.0, 30.0, 60.0, 90.0]
    visits = [
        visit("V1", "C1", "2026-03-02 23:50", durations[0], method="manual"),
        visit("V2", "C1", "2026-03-04 00:10", durations[1]),
        visit("V3", "C1", "2026-03-05 00:10", durations[2]),
        visit("V4", "C1", "2026-03-06 23:50", durations[3], method="app"),
    ]
    tables = municipality(
        grants=[grant("G1", "C1")], visits=visits, invoices=[invoice("I1", "C1", 3.0)]
    )
    r = row(build(tables), "I1")
    hours = np.array(durations) / 60
    assert r["manual_registration_share"] == 0.25
    # The 5-minute visit is under 10 minutes but starts at 23:50: a night check, not short.
    assert r["short_visit_share"] == 0.0
    assert r["visit_duration_cv"] == pytest.approx(hours.std() / hours.mean())
    # Start times 23:50, 00:10, 00:10, 23:50: 10 minutes either side of midnight.
    expected = math.sqrt(-2 * math.log(math.cos(2 * math.pi * 10 / 1440))) * 1440 / (2 * math.pi)
    assert r["visit_start_time_spread_minutes"] == pytest.approx(expected, rel=1e-9)
    assert r["repeated_visit_times_share"] == 0.0  # same start minutes, different durations


def test_copied_registrations_have_no_spread():
    visits = daily_visits("V", "C1", P, 6, minutes=45, method="manual")
    tables = municipality(
        grants=[grant("G1", "C1")], visits=visits, invoices=[invoice("I1", "C1", 4.5)]
    )
    r = row(build(tables), "I1")
    assert r["visit_duration_cv"] == 0.0
    assert r["visit_start_time_spread_minutes"] == 0.0
    assert r["repeated_visit_times_share"] == 1.0
    assert r["manual_registration_share"] == 1.0


def test_visits_during_hospital_stay():
    visits = [
        visit("V1", "C1", "2026-03-05 08:00", 60),  # admission day: legitimate
        visit("V2", "C1", "2026-03-07 10:00", 90),  # in hospital
        visit("V3", "C1", "2026-03-10 18:00", 60),  # discharge day: legitimate
        visit("V4", "C1", "2026-03-12 10:00", 60),
        visit("W1", "C2", "2026-03-25 10:00", 30),  # still in hospital at the end of March
    ]
    stays = [
        {"client_id": "C1", "admitted_on": "2026-03-05", "discharged_on": "2026-03-10"},
        {"client_id": "C2", "admitted_on": "2026-03-20", "discharged_on": "2026-04-05"},
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        stays=stays,
        invoices=[invoice("I1", "C1", 4.5), invoice("I2", "C2", 0.5)],
    )
    fs = build(tables)
    assert row(fs, "I1")["visit_hours_during_hospital_stay"] == 1.5
    assert row(fs, "I2")["visit_hours_during_hospital_stay"] == 0.5
    assert evidence(fs, "I1", "visits_during_hospital_stay") == (
        "1 visit(s) registered on full days the client was in hospital "
        "(admitted 2026-03-05, discharged 2026-03-10, hospital_stays): V2"
    )
    # The discharge after the period is not yet known: the stay counts as open.
    assert evidence(fs, "I2", "visits_during_hospital_stay") == (
        "1 visit(s) registered on full days the client was in hospital "
        "(admitted 2026-03-20, not discharged by 2026-03-31, hospital_stays): W1"
    )


def test_death_before_during_and_after_the_period():
    clients = [
        client("C1", deceased_on="2026-03-15"),
        client("C2", deceased_on="2026-02-10"),
        client("C3", deceased_on="2026-04-02"),  # not yet known at the end of March
        client("C4"),
    ]
    visits = [
        visit("V1", "C1", "2026-03-15 09:00", 60),  # the day of death: legitimate
        visit("V2", "C1", "2026-03-16 09:00", 60),
        visit("V3", "C1", "2026-03-17 09:00", 30),
        visit("W1", "C3", "2026-03-20 09:00", 60),
    ]
    tables = municipality(
        clients=clients,
        grants=[grant(f"G{c}", c) for c in ("C1", "C2", "C3")],
        visits=visits,
        invoices=[invoice("I1", "C1", 2.5), invoice("I2", "C2", 6.0), invoice("I3", "C3", 1.0)],
    )
    fs = build(tables)
    r1, r2, r3 = row(fs, "I1"), row(fs, "I2"), row(fs, "I3")
    assert r1["visit_hours_after_death"] == 1.5
    assert r1["billed_after_death"] == 1.0
    assert r1["period_share_after_death"] == pytest.approx(16 / 31)
    assert codes(fs, "I1") == {"visits_after_death"}  # part of the month was legitimate
    assert evidence(fs, "I1", "visits_after_death") == (
        "the client died on 2026-03-15 (clients.deceased_on); 2 visit(s) of this invoice start "
        "after that day: V2, V3"
    )
    assert r2["billed_after_death"] == 1.0 and r2["period_share_after_death"] == 1.0
    assert r2["finding_billing_after_death"] == 1.0
    assert evidence(fs, "I2", "billing_after_death") == (
        "the client died on 2026-02-10 (clients.deceased_on), before billed period 2026-03 "
        "began; the invoice bills 6.00 h, 3000.00 SEK"
    )
    assert r3["billed_after_death"] == 0.0 and r3["visit_hours_after_death"] == 0.0
    assert codes(fs, "I3") == set()


def test_the_death_month_bills_after_the_death_only_beyond_the_care_before_it():
    """End-of-life care billed up to the death is not billing after it (feature version 4)."""
    clients = [client(c, deceased_on="2026-03-15") for c in ("C1", "C2", "C3")]
    visits = [
        visit("V1", "C1", "2026-03-10 09:00", 120),
        visit("V2", "C1", "2026-03-14 22:00", 90),  # long end-of-life visits, before the day
        visit("V3", "C2", "2026-03-10 09:00", 60),
        visit("V4", "C3", "2026-03-10 09:00", 60),
    ]
    tables = municipality(
        clients=clients,
        grants=[grant(f"G{c}", c) for c in ("C1", "C2", "C3")],
        visits=visits,
        # C1 bills its 3.5 h; C2 1.75 h, 0.75 h beyond its visit (within the 1 h margin);
        # C3 3.5 h, 2.5 h beyond the care registered before the death.
        invoices=[invoice("I1", "C1", 3.5), invoice("I2", "C2", 1.75), invoice("I3", "C3", 3.5)],
    )
    fs = build(tables)
    r1, r2, r3 = row(fs, "I1"), row(fs, "I2"), row(fs, "I3")
    assert (r1["billed_after_death"], r1["period_share_after_death"]) == (0.0, 0.0)
    assert (r2["billed_after_death"], r2["period_share_after_death"]) == (0.0, 0.0)
    assert r3["billed_after_death"] == 1.0
    assert r3["period_share_after_death"] == pytest.approx(16 / 31)
    # The margin is the config's: with none, C2's 0.75 h beyond its visit bills after it.
    strict = build(tables, death_month_margin_hours=0.0)
    assert row(strict, "I2")["billed_after_death"] == 1.0


def test_a_visit_begun_on_the_day_of_death_is_care_before_it_only_until_midnight():
    # C1 died on 2026-03-10 and is billed 30 h: 1 h on the 5th, then a 24 h visit begun at
    # 23:00 on the day of death and a 5 h visit begun the evening before. Before the death:
    # 1 + 1 + 5 = 7 h, so 23 h are billed beyond it (a provider registering long evening
    # visits must not cover the days after the death with them).
    visits = [
        visit("V1", "C1", "2026-03-05 09:00", 60),
        visit("V2", "C1", "2026-03-10 23:00", 24 * 60),
        visit("V3", "C1", "2026-03-09 23:00", 5 * 60),
    ]
    died = [client("C1", deceased_on="2026-03-10")]

    def billed_after_death(billed: float) -> float:
        invoices = [invoice("I1", "C1", billed)]
        tables = municipality(
            clients=died, grants=[grant("G1", "C1")], visits=visits, invoices=invoices
        )
        return row(build(tables), "I1")["billed_after_death"]

    assert billed_after_death(30.0) == 1.0
    # Billed 7.5 h: within the 1 h margin of the 7 h before the death.
    assert billed_after_death(7.5) == 0.0


def test_an_amount_without_hours_in_the_month_of_death_bills_after_it():
    fs = build(
        municipality(
            clients=[client("C1", deceased_on="2026-03-10")], grants=[grant("G1", "C1")],
            visits=[visit("V1", "C1", "2026-03-05 09:00", 60)],
            invoices=[invoice("I1", "C1", 0.0, amount=20000.0)],
        )
    )  # fmt: skip
    assert row(fs, "I1")["billed_after_death"] == 1.0


# ---------------------------------------------------------------------------
# Staff
# ---------------------------------------------------------------------------


def test_staff_in_two_homes_for_25_minutes():
    visits = [
        visit("V1", "C1", "2026-03-04 10:00", 60),
        visit("V2", "C2", "2026-03-04 10:35", 55),
        visit("V3", "C1", "2026-03-04 10:20", 30, staff_id="S2"),  # another staff member
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 1.5), invoice("I2", "C2", 1.0)],
    )
    fs = build(tables)
    assert row(fs, "I1")["staff_overlap_minutes"] == 25.0
    assert row(fs, "I2")["staff_overlap_minutes"] == 25.0
    # One overlap in a month can be a forgotten check-out: a feature, not yet a finding.
    assert "staff_double_booked" not in codes(fs, "I1") | codes(fs, "I2")
    fs = build(tables, double_booking_min_pairs=1)
    assert evidence(fs, "I1", "staff_double_booked") == (
        "1 overlapping pair(s) of at least 5 min: carer S1: visit V1 (2026-03-04 10:00-11:00, nfc) "
        "and visit V2 at another client (2026-03-04 10:35-11:30, nfc) overlap 25.0 min"
    )
    assert "staff_double_booked" in codes(fs, "I2")


def test_the_overlap_in_the_evidence_rounds_half_up_to_a_tenth_of_a_minute():
    # 21 min 57 s = 21.95 min: the double nearest is 21.9499..., which a round() of the
    # double writes as 21.9 on DuckDB and Spark (its decimal text) as 22.0; whole seconds
    # give both 22.0. 21 min 56 s (21.933...) is 21.9 on both.
    for seconds, said in ((21 * 60 + 57, "22.0"), (21 * 60 + 56, "21.9")):
        v1 = visit("V1", "C1", "2026-03-04 10:00", 60)
        v2 = visit("V2", "C2", "2026-03-04 10:00", 60)
        v2["end_at"] = pd.Timestamp("2026-03-04 10:00") + pd.Timedelta(seconds=seconds)
        tables = municipality(
            grants=[grant("G1", "C1"), grant("G2", "C2")],
            visits=[v1, v2],
            invoices=[invoice("I1", "C1", 1.0), invoice("I2", "C2", 0.4)],
        )
        fs = build(tables, double_booking_min_pairs=1)
        assert evidence(fs, "I2", "staff_double_booked").endswith(f"overlap {said} min")


def test_double_booking_finding_goes_to_the_side_without_a_key_tag_check_in():
    visits = [
        visit("V1", "C1", "2026-03-04 10:00", 60, method="nfc"),
        visit("V2", "C2", "2026-03-04 10:10", 50, method="manual"),
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 1.0), invoice("I2", "C2", 1.0)],
    )
    fs = build(tables, double_booking_min_pairs=1)
    assert "staff_double_booked" not in codes(fs, "I1")
    assert evidence(fs, "I2", "staff_double_booked").endswith(
        "visit V2 (2026-03-04 10:10-11:00, manual) and visit V1 at another client "
        "(2026-03-04 10:00-11:00, nfc) overlap 50.0 min"
    )
    assert row(fs, "I1")["staff_overlap_minutes"] == 50.0


def test_a_late_check_out_into_the_next_visit_is_not_a_double_booking():
    # The app check-out at C1 runs 25 min into the next visit (42 % of the longer one):
    # registration noise. The same overlap with key-tag check-ins at both doors is not.
    def tables_with(method: str) -> dict[str, pd.DataFrame]:
        return municipality(
            grants=[grant("G1", "C1"), grant("G2", "C2")],
            visits=[
                visit("V1", "C1", "2026-03-04 10:00", 60, method=method),
                visit("V2", "C2", "2026-03-04 10:35", 55, method=method),
            ],
            invoices=[invoice("I1", "C1", 1.0), invoice("I2", "C2", 1.0)],
        )

    noisy = build(tables_with("app"), double_booking_min_pairs=1)
    assert "staff_double_booked" not in codes(noisy, "I1") | codes(noisy, "I2")
    assert row(noisy, "I1")["staff_overlap_minutes"] == 25.0
    two_doors = build(tables_with("nfc"), double_booking_min_pairs=1)
    assert "staff_double_booked" in codes(two_doors, "I1")
    assert "staff_double_booked" in codes(two_doors, "I2")


def test_double_booking_finding_needs_repeated_overlaps():
    days = ["2026-03-04", "2026-03-05", "2026-03-06"]
    visits = [visit(f"A{i}", "C1", f"{d} 10:00", 60) for i, d in enumerate(days)]
    visits += [visit(f"B{i}", "C2", f"{d} 10:30", 60) for i, d in enumerate(days[:2])]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 3.0), invoice("I2", "C2", 2.0)],
    )
    # Two pairs (the default double_booking_min_pairs) are a pattern; one is not.
    assert "staff_double_booked" in codes(build(tables), "I1")
    assert "staff_double_booked" not in codes(build(tables, double_booking_min_pairs=3), "I1")
    one = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=[v for v in visits if v["visit_id"] != "B1"],
        invoices=[invoice("I1", "C1", 3.0), invoice("I2", "C2", 1.0)],
    )
    assert "staff_double_booked" not in codes(build(one), "I1")


def test_overlap_minutes_count_each_minute_once_and_cross_midnight():
    visits = [
        # V1 overlaps V2 (12:10-12:40) and V3 (12:30-12:50): 40 distinct minutes.
        visit("V1", "C1", "2026-03-04 12:00", 60),
        visit("V2", "C2", "2026-03-04 12:10", 30),
        visit("V3", "C3", "2026-03-04 12:30", 20),
        # Across midnight: 23:30-00:30 and 00:00-01:00 overlap 30 minutes.
        visit("V4", "C1", "2026-03-05 23:30", 60),
        visit("V5", "C2", "2026-03-06 00:00", 60),
        # Two partners with the same overlap, then a gap: 30 + 30 minutes, never bridged.
        visit("T1", "C4", "2026-03-09 10:00", 120, staff_id="S9"),
        visit("T2", "C2", "2026-03-09 10:00", 30, staff_id="S9"),
        visit("T3", "C3", "2026-03-09 10:00", 30, staff_id="S9"),
        visit("T4", "C1", "2026-03-09 11:00", 30, staff_id="S9"),
        # The same client twice at once is not a double booking.
        visit("V6", "C1", "2026-03-08 09:00", 60, service_type="home_service"),
        visit("V7", "C1", "2026-03-08 09:30", 60),
    ]
    tables = municipality(
        grants=[grant(f"G{c}", c) for c in ("C1", "C2", "C3", "C4")],
        visits=visits,
        invoices=[
            invoice("I1", "C1", 4.0),
            invoice("I2", "C2", 1.5),
            invoice("I3", "C3", 0.5),
            invoice("I4", "C4", 2.0),
        ],
    )
    fs = build(tables)
    assert row(fs, "I1")["staff_overlap_minutes"] == 40.0 + 30.0 + 30.0  # V1, V4, T4
    assert row(fs, "I2")["staff_overlap_minutes"] == 20.0 + 10.0 + 30.0 + 30.0  # V2, V5, T2
    assert row(fs, "I3")["staff_overlap_minutes"] == 20.0 + 30.0  # V3, T3
    assert row(fs, "I4")["staff_overlap_minutes"] == 30.0 + 30.0  # T1


def test_short_overlap_is_counted_but_is_no_finding():
    visits = [visit("V1", "C1", "2026-03-04 10:00", 60), visit("V2", "C2", "2026-03-04 10:56", 30)]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 1.0), invoice("I2", "C2", 0.5)],
    )
    fs = build(tables)
    assert row(fs, "I1")["staff_overlap_minutes"] == 4.0
    assert "staff_double_booked" not in codes(fs, "I1")


def test_overlap_with_a_visit_of_the_next_month_is_not_yet_known():
    visits = [
        visit("V1", "C1", "2026-03-31 23:30", 60),
        visit("V2", "C2", "2026-04-01 00:00", 60),
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 1.0), invoice("I2", "C2", 1.0, period="2026-04")],
    )
    fs = build(tables, [P, "2026-04"])
    assert row(fs, "I1")["staff_overlap_minutes"] == 0.0
    assert row(fs, "I2")["staff_overlap_minutes"] == 30.0  # V1 was known by the end of April


def test_staff_day_hours_and_staff_shared_with_other_providers():
    visits = [
        # S1: 17 hours on 2026-03-03 across two clients and two providers.
        visit("V1", "C1", "2026-03-03 06:00", 8 * 60),
        visit("V2", "C2", "2026-03-03 14:00", 9 * 60, provider_id="P2"),
        visit("V3", "C1", "2026-03-04 08:00", 60, staff_id="S2"),
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2", provider_id="P2")],
        visits=visits,
        invoices=[invoice("I1", "C1", 9.0), invoice("I2", "C2", 9.0, provider_id="P2")],
    )
    fs = build(tables)
    r = row(fs, "I1")
    assert r["max_staff_hours_per_day"] == 17.0
    assert r["staff_hours_over_plausible_per_day"] == 1.0
    assert r["share_staff_at_other_providers"] == 0.5  # S1 of {S1, S2}
    assert r["distinct_staff_per_visit_hour"] == pytest.approx(2 / 9)
    assert r["provider_staff_per_client"] == 2.0


# ---------------------------------------------------------------------------
# Provider
# ---------------------------------------------------------------------------


def event(pid: str, day: str, kind: str, amount: float | None = None) -> dict[str, object]:
    return {"provider_id": pid, "event_date": day, "event_type": kind, "amount_sek": amount}


def test_provider_events_in_the_last_365_days():
    events = [
        event("P1", "2025-06-01", "tax_debt_registered", 100_000.0),
        event("P1", "2025-03-31", "tax_debt_registered", 50_000.0),  # 365 days before: outside
        event("P1", "2026-04-01", "tax_debt_registered", 70_000.0),  # after the period
        event("P1", "2025-12-01", "f_tax_revoked"),
        event("P1", "2026-01-15", "f_tax_restored"),
        event("P1", "2026-02-01", "sanction"),
        event("P1", "2026-03-31", "sanction"),
        event("P1", "2026-03-02", "complaint"),
        event("P1", "2025-09-09", "board_change"),
        event("P2", "2026-02-01", "f_tax_revoked"),
        event("P2", "2026-04-01", "f_tax_restored"),  # restored only after the period
        event("P3", "2026-03-05", "f_tax_revoked"),
        event("P3", "2026-03-05", "f_tax_restored"),  # the same day: restored
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2", provider_id="P2")],
        events=events,
        invoices=[
            invoice("I1", "C1", 1.0),
            invoice("I2", "C2", 1.0, provider_id="P2"),
            invoice("I3", "C3", 1.0, provider_id="P3"),
        ],
    )
    fs = build(tables)
    r1, r2 = row(fs, "I1"), row(fs, "I2")
    assert r1["provider_tax_debt_registered_sek_365d"] == 100_000.0
    assert r1["provider_f_tax_revoked_365d"] == 1.0
    assert r1["provider_f_tax_currently_revoked"] == 0.0
    assert r1["provider_sanctions_365d"] == 2.0
    assert r1["provider_complaints_365d"] == 1.0
    assert r1["provider_board_changes_365d"] == 1.0
    assert r1["provider_owner_changes_365d"] == 0.0
    assert r2["provider_f_tax_currently_revoked"] == 1.0
    assert r2["provider_sanctions_365d"] == 0.0
    assert row(fs, "I3")["provider_f_tax_currently_revoked"] == 0.0
    assert row(fs, "I3")["provider_f_tax_revoked_365d"] == 1.0


def test_provider_age_and_billing_outside_the_contract():
    providers = [
        provider("P1", registered_on="2016-03-31", approved_on="2021-03-31"),
        provider("P2", registered_on="2025-01-01", approved_on="2026-04-15"),
        provider("P3", approved_on="2020-01-01", terminated_on="2026-02-28"),
        provider("P4", approved_on="2020-01-01", terminated_on="2026-03-15"),  # part of March
    ]
    tables = municipality(
        providers=providers,
        grants=[grant(f"G{p}", "C1", provider_id=p) for p in ("P1", "P2", "P3", "P4")],
        invoices=[invoice(f"I{p}", "C1", 1.0, provider_id=p) for p in ("P1", "P2", "P3", "P4")],
    )
    fs = build(tables)
    r1 = row(fs, "IP1")
    assert r1["provider_age_years"] == pytest.approx(3652 / 365.25)
    assert r1["provider_approval_age_years"] == pytest.approx(1826 / 365.25)
    assert r1["provider_outside_contract_period"] == 0.0
    assert r1["provider_age_band"] == "5+ years"
    r2 = row(fs, "IP2")
    assert r2["provider_approval_age_years"] == 0.0
    assert r2["provider_age_band"] == "under 2 years"
    assert evidence(fs, "IP2", "billing_outside_contract") == (
        "provider P2 was approved on 2026-04-15 (providers.approved_on), after billed period "
        "2026-03 ended"
    )
    assert evidence(fs, "IP3", "billing_outside_contract") == (
        "provider P3 was terminated on 2026-02-28 (providers.terminated_on), before billed "
        "period 2026-03 began"
    )
    assert "billing_outside_contract" not in codes(fs, "IP4")


def test_client_growth_and_clients_taken_over_from_terminated_providers():
    providers = [
        provider("P1"),
        provider("P2", terminated_on="2026-02-28"),
        provider("P3", terminated_on="2026-05-31"),  # terminated after March: not yet known
    ]
    invoices = [
        invoice("I0", "C1", 1.0, period="2025-12"),
        invoice("J1", "C2", 1.0, provider_id="P2", period="2026-01"),
        invoice("J2", "C3", 1.0, provider_id="P3", period="2026-02"),
        invoice("I1", "C1", 1.0),
        invoice("I2", "C2", 1.0),
        invoice("I3", "C3", 1.0),
        invoice("I4", "C4", 1.0),
    ]
    tables = municipality(
        providers=providers,
        grants=[grant(f"G{c}", c) for c in ("C1", "C2", "C3", "C4")],
        invoices=invoices,
    )
    r = row(build(tables), "I1")
    assert r["provider_client_growth_3m"] == 4.0  # 4 clients now, 1 in December
    # Without any invoice in December the data does not reach back: growth is unknown, 1.
    no_december = {
        **tables,
        "invoices": tables["invoices"][tables["invoices"]["period"] > "2025-12"],
    }
    assert row(build(no_december), "I1")["provider_client_growth_3m"] == 1.0
    assert r["provider_clients_from_terminated_providers_share_12m"] == 0.25  # C2 of 4
    assert r["provider_clients_billed_log"] == pytest.approx(math.log(5))
    assert r["provider_size_band"] == "1-19 clients"


def test_board_members_linked_to_sanctioned_or_terminated_providers():
    providers = [
        provider("P1"),
        provider("P2"),
        provider("P3", terminated_on="2024-06-30"),
        provider("P4", terminated_on="2026-06-30"),  # after the period
        provider("P5"),
    ]

    def role(pid: str, person: str, start: str, end: str | None = None) -> dict[str, object]:
        return {
            "provider_id": pid,
            "person_id": person,
            "role": "board_member",
            "from_date": start,
            "to_date": end,
        }

    persons = [
        role("P1", "X", "2020-01-01"),
        role("P3", "X", "2018-01-01", "2019-12-31"),  # X sat on terminated P3's board
        role("P1", "Y", "2020-01-01"),
        role("P2", "Y", "2020-01-01"),  # P2 is clean
        role("P1", "Z", "2020-01-01", "2026-01-01"),  # left P1 before March
        role("P5", "Z", "2020-01-01"),
        role("P1", "W", "2020-01-01"),
        role("P4", "W", "2020-01-01"),
        role("P1", "Q", "2020-01-01"),
        role("P5", "Q", "2020-01-01"),
    ]
    events = [event("P5", "2025-05-01", "sanction"), event("P2", "2026-04-10", "sanction")]
    tables = municipality(
        providers=providers,
        persons=persons,
        events=events,
        grants=[grant("G1", "C1")],
        invoices=[invoice("I1", "C1", 1.0)],
    )
    # X (terminated P3) and Q (sanctioned P5); not Y (P2 sanctioned only in April),
    # not Z (left P1), not W (P4 terminated only in June).
    assert row(build(tables), "I1")["provider_persons_linked_to_sanctioned_or_terminated"] == 2.0


# ---------------------------------------------------------------------------
# Peer context and remaining findings
# ---------------------------------------------------------------------------


def test_peer_z_scores_are_robust_with_a_floor():
    clients = [client(f"C{i}") for i in range(1, 6)]
    visits, invoices = [], []
    for i, billed in enumerate([10.0, 11.0, 12.0, 13.0, 14.0], start=1):
        visits += daily_visits(f"V{i}-", f"C{i}", P, 10, staff_id=f"S{i}")
        invoices.append(invoice(f"I{i}", f"C{i}", billed))
    invoices.append(invoice("H1", "C1", 2.0, service_type="home_service"))  # its own peer group
    tables = municipality(
        clients=clients,
        grants=[grant(f"G{i}", f"C{i}", hours=12.0) for i in range(1, 6)],
        visits=visits,
        invoices=invoices,
    )
    fs = build(tables)
    # billed/registered 1.0 ... 1.4: median 1.2, MAD 0.1
    assert row(fs, "I5")["billed_over_registered_hours_peer_z"] == pytest.approx(0.2 / 0.14826)
    assert row(fs, "I3")["billed_over_registered_hours_peer_z"] == 0.0
    # Every amount matches the tariff: MAD 0, so the floor keeps z at 0, not NaN.
    assert row(fs, "I5")["amount_over_tariff_amount_peer_z"] == 0.0
    assert row(fs, "H1")["billed_over_registered_hours_peer_z"] == 0.0


def test_duplicate_invoice_finding():
    tables = municipality(
        grants=[grant("G1", "C1")],
        invoices=[invoice("I1", "C1", 4.0), invoice("I2", "C1", 4.0)],
    )
    fs = build(tables)
    assert evidence(fs, "I1", "duplicate_invoice") == (
        "2 invoices from provider P1 for the client, personal_care, 2026-03; the other(s): I2"
    )
    assert row(fs, "I2")["finding_duplicate_invoice"] == 1.0


def test_long_evidence_lists_are_capped():
    clients = [client("C1", deceased_on="2026-02-27")]
    tables = municipality(
        clients=clients,
        grants=[grant("G1", "C1")],
        visits=daily_visits("V", "C1", P, 8),
        invoices=[invoice("I1", "C1", 8.0)],
    )
    fs = build(tables)
    assert evidence(fs, "I1", "visits_after_death").endswith("V01, V02, V03, V04, V05 and 3 more")
    r = row(fs, "I1")
    assert r["hard_finding_count"] == 2.0  # billing_after_death and visits_after_death


def test_missing_or_empty_optional_tables():
    base = municipality(
        grants=[grant("G1", "C1")],
        visits=daily_visits("V", "C1", P, 2),
        invoices=[invoice("I1", "C1", 2.0)],
        stays=None,
    )
    assert "hospital_stays" not in base
    without = build(base).features
    with_empty = build({**base, "hospital_stays": table("hospital_stays", [])}).features
    with_outcomes = build({**base, "audit_outcomes": table("audit_outcomes", [])}).features
    pd.testing.assert_frame_equal(without, with_empty)
    pd.testing.assert_frame_equal(without, with_outcomes)
    assert without["visit_hours_during_hospital_stay"].tolist() == [0.0]


def test_person_attributes_do_not_change_the_features():
    base = municipality(
        grants=[grant("G1", "C1")],
        visits=daily_visits("V", "C1", P, 2),
        invoices=[invoice("I1", "C1", 2.0)],
    )
    other = dict(base)
    other["clients"] = base["clients"].assign(birth_year=1990, district="South")
    a, b = build(base).features, build(other).features
    pd.testing.assert_frame_equal(a[list(FEATURE_COLUMNS)], b[list(FEATURE_COLUMNS)])
    assert b["client_district"].tolist() == ["South"]


# ---------------------------------------------------------------------------
# Point in time
# ---------------------------------------------------------------------------


def random_municipality(seed: int = 7) -> dict[str, pd.DataFrame]:
    """Four months of irregular data: deaths, stays and terminations on both sides of March."""
    rng = np.random.default_rng(seed)
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    providers = [
        provider("P1"),
        provider("P2", terminated_on="2026-04-10"),
        provider("P3", approved_on="2026-02-01", registered_on="2025-11-01"),
        provider("P4", terminated_on="2026-02-15"),
    ]
    clients = [client(f"C{i}") for i in range(1, 13)]
    clients[0]["deceased_on"] = "2026-03-20"
    clients[1]["deceased_on"] = "2026-04-03"
    clients[2]["deceased_on"] = "2026-01-25"
    service = ["personal_care", "home_service"]
    grants, visits, invoices = [], [], []
    for i in range(1, 13):
        pid = f"P{1 + i % 3}"
        stype = service[i % 2]
        grants.append(
            grant(
                f"G{i}",
                f"C{i}",
                hours=float(10 + i),
                provider_id=pid,
                service_type=stype,
                valid_to="2026-04-20" if i % 4 == 0 else None,
            )
        )
        for month in months:
            n = 0
            for day in range(1, 29, 3):
                if rng.random() < 0.8:
                    start = pd.Timestamp(f"{month}-{day:02d}") + pd.Timedelta(
                        minutes=int(rng.integers(6 * 60, 23 * 60 + 50))
                    )
                    visits.append(
                        visit(
                            f"V{i}-{month}-{day}",
                            f"C{i}",
                            str(start),
                            float(rng.integers(5, 120)),
                            provider_id=pid,
                            service_type=stype,
                            staff_id=f"S{rng.integers(1, 5)}",
                            method=str(rng.choice(["nfc", "app", "manual"])),
                        )
                    )
                    n += 1
            billed = float(round(n * rng.uniform(0.5, 1.8), 1))
            invoices.append(
                invoice(
                    f"I{i}-{month}",
                    f"C{i}",
                    billed,
                    amount=billed * 500 * rng.choice([1, 1.1]),
                    provider_id=pid,
                    service_type=stype,
                    period=month,
                )
            )
    # Month-boundary overlap and a visit of P4's old client after P4 ended.
    visits.append(visit("X1", "C4", "2026-03-31 23:40", 60, staff_id="S1", provider_id="P1"))
    visits.append(visit("X2", "C5", "2026-04-01 00:05", 60, staff_id="S1", provider_id="P2"))
    invoices.append(invoice("I4-P4", "C4", 2.0, provider_id="P4", period="2026-01"))
    stays = [
        {"client_id": "C5", "admitted_on": "2026-03-10", "discharged_on": "2026-04-12"},
        {"client_id": "C6", "admitted_on": "2026-02-20", "discharged_on": "2026-03-05"},
        {"client_id": "C7", "admitted_on": "2026-04-02", "discharged_on": None},
    ]
    events = [
        event("P1", "2026-03-15", "sanction"),
        event("P1", "2026-04-15", "sanction"),
        event("P2", "2026-02-01", "f_tax_revoked"),
        event("P2", "2026-04-01", "f_tax_restored"),
        event("P3", "2026-05-01", "tax_debt_registered", 9_000.0),
    ]
    persons = [
        {
            "provider_id": "P1",
            "person_id": "A",
            "role": "owner",
            "from_date": "2020-01-01",
            "to_date": "2026-04-30",
        },
        {
            "provider_id": "P4",
            "person_id": "A",
            "role": "ceo",
            "from_date": "2019-01-01",
            "to_date": None,
        },
        {
            "provider_id": "P3",
            "person_id": "B",
            "role": "board_member",
            "from_date": "2026-04-01",
            "to_date": None,
        },
        {
            "provider_id": "P2",
            "person_id": "B",
            "role": "board_member",
            "from_date": "2020-01-01",
            "to_date": None,
        },
    ]
    return municipality(
        providers=providers,
        clients=clients,
        grants=grants,
        visits=visits,
        invoices=invoices,
        events=events,
        persons=persons,
        stays=stays,
    )


def truncate(tables: Mapping[str, pd.DataFrame], period: str) -> dict[str, pd.DataFrame]:
    """The data as it stood at the end of `period`: later rows gone, later dates not yet known."""
    start = pd.Timestamp(f"{period}-01")
    end = start + pd.offsets.MonthEnd(0)  # the last day
    out = {name: frame.copy() for name, frame in tables.items()}

    def unknown_after(frame: pd.DataFrame, column: str) -> None:
        frame.loc[frame[column] > end, column] = pd.NaT

    out["visits"] = out["visits"][out["visits"]["start_at"] < end + pd.Timedelta(days=1)]
    out["invoices"] = out["invoices"][out["invoices"]["period"] <= period]
    out["provider_events"] = out["provider_events"][out["provider_events"]["event_date"] <= end]
    out["provider_persons"] = out["provider_persons"][out["provider_persons"]["from_date"] <= end]
    unknown_after(out["provider_persons"], "to_date")
    unknown_after(out["providers"], "terminated_on")
    unknown_after(out["clients"], "deceased_on")
    out["grants"] = out["grants"][out["grants"]["valid_from"] <= end]
    unknown_after(out["grants"], "valid_to")
    out["hospital_stays"] = out["hospital_stays"][out["hospital_stays"]["admitted_on"] <= end]
    unknown_after(out["hospital_stays"], "discharged_on")
    return {name: frame.reset_index(drop=True) for name, frame in out.items()}


def test_point_in_time_later_rows_change_nothing():
    full = random_municipality()
    for period in ("2026-02", "2026-03"):
        on_full = build(full, period)
        on_truncated = build(truncate(full, period), period)
        assert len(on_full.features) == 12
        pd.testing.assert_frame_equal(on_full.features, on_truncated.features)
        pd.testing.assert_frame_equal(on_full.findings, on_truncated.findings)
        pd.testing.assert_frame_equal(on_full.quarantine, on_truncated.quarantine)
    # The data holds facts that would leak if dates after March were used.
    march = build(full, "2026-03").features.set_index("invoice_id")
    assert march.loc["I2-2026-03", "billed_after_death"] == 0.0  # C2 dies in April
    assert march.loc["I1-2026-03", "billed_after_death"] == 1.0
    assert march.loc["I3-2026-03", "provider_sanctions_365d"] == 1.0  # P1: March, not April


def test_many_periods_in_one_pass_equal_one_period_at_a_time():
    full = random_municipality(seed=11)
    periods = ["2026-02", "2026-03", "2026-04", "2026-05"]
    together = build(full, periods)
    alone = [build(full, p) for p in periods]
    pd.testing.assert_frame_equal(
        together.features,
        pd.concat([a.features for a in alone]).sort_values("invoice_id").reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(
        together.findings,
        pd.concat([a.findings for a in alone])
        .sort_values("invoice_id", kind="stable")
        .reset_index(drop=True),
    )
    assert len(together.features) == 4 * 12 and together.findings["finding"].nunique() >= 4


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------


def test_schema_rejects_broken_feature_tables():
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2")],
        visits=daily_visits("V", "C1", P, 2),
        invoices=[invoice("I1", "C1", 2.0), invoice("I2", "C2", 1.0)],
    )
    good = build(tables).features
    InvoiceFeatures.validate(good)
    broken = {
        "NaN feature": good.assign(billed_over_registered_hours=[np.nan, 1.0]),
        "infinite feature": good.assign(staff_overlap_minutes=[np.inf, 0.0]),
        "share above 1": good.assign(manual_registration_share=[1.5, 0.0]),
        "negative ratio": good.assign(billed_over_granted_hours=[-1.0, 0.0]),
        "flag not 0/1": good.assign(finding_duplicate_invoice=[0.5, 0.0]),
        "count disagrees with flags": good.assign(hard_finding_count=[3.0, 0.0]),
        "duplicate key": good.assign(invoice_id=["I1", "I1"]),
        "int feature": good.assign(registered_visit_count=[2, 0]),
        "unknown column": good.assign(client_birth_year=[1940.0, 1950.0]),
    }
    for what, frame in broken.items():
        with pytest.raises((pa.errors.SchemaError, pa.errors.SchemaErrors)):
            InvoiceFeatures.validate(frame)
            pytest.fail(f"{what} was accepted")


# ---------------------------------------------------------------------------
# On a simulated municipality
# ---------------------------------------------------------------------------

CERTAIN_FINDINGS = (
    "billing_after_death",
    "visits_after_death",
    "visits_during_hospital_stay",
    "service_without_grant",
    "billing_outside_contract",
    "duplicate_invoice",
)


@pytest.fixture(scope="module")
def simulated():
    from tillit.config import SimulationConfig
    from tillit.simulate import simulate

    sim = simulate(SimulationConfig(clients=400, months=8, seed=3))
    periods = sorted(sim.tables["invoices"]["period"].unique())
    return sim, periods, build_features(sim.tables, periods)


def test_simulated_features_pass_the_schema_and_account_for_every_invoice(simulated):
    sim, _periods, fs = simulated
    InvoiceFeatures.validate(fs.features)
    assert len(fs.features) + len(fs.quarantine) == len(sim.tables["invoices"])
    assert set(fs.findings["finding"]) <= set(FINDING_CODES)
    assert set(fs.findings["invoice_id"]) <= set(fs.features["invoice_id"])
    assert fs.findings["evidence"].str.len().min() > 20
    counts = fs.findings.groupby("invoice_id")["finding"].nunique()
    described = fs.features.set_index("invoice_id")["hard_finding_count"]
    assert (described.loc[counts.index] == counts).all()
    assert (described.drop(counts.index) == 0).all()


def test_simulated_point_in_time(simulated):
    sim, periods, fs = simulated
    period = periods[4]
    tables = {k: v for k, v in sim.tables.items() if k != "audit_outcomes"}
    truncated = build_features(truncate(tables, period), period)
    alone = build_features(sim.tables, period)
    pd.testing.assert_frame_equal(alone.features, truncated.features)
    pd.testing.assert_frame_equal(alone.findings, truncated.findings)
    together = fs.features[fs.features["period"] == period].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.features, together)


def test_simulated_planted_facts_are_described(simulated):
    sim, _periods, fs = simulated
    f = fs.features.merge(sim.truth, on="invoice_id")
    scheme = f["scheme"].fillna("regular")

    def share(name: str, found: pd.Series) -> float:
        return float(found[scheme == name].mean())

    assert share("billing_after_death", f["billed_after_death"] == 1) >= 0.9
    assert share("hospital_billing", f["visit_hours_during_hospital_stay"] > 0) >= 0.8
    assert share("staff_double_booking", f["staff_overlap_minutes"] > 0) >= 0.9
    # The finding needs a pattern (double_booking_min_pairs): small copies stay features.
    # A pair does not count for the side whose partner has far more pairs (the client
    # copied from): here 5 of 9 scheme invoices and no regular one (without that rule
    # 6 of 9, and 5 regular invoices whose visits were copied).
    assert share("staff_double_booking", f["finding_staff_double_booked"] == 1) >= 0.5
    assert share("regular", f["finding_staff_double_booked"] == 1) == 0
    assert share("rate_inflation", f["finding_amount_mismatch_tariff"] == 1) >= 0.9
    assert share("service_upcoding", f["finding_service_without_grant"] == 1) >= 0.9
    taken_over = f["provider_clients_from_terminated_providers_share_12m"] > 0
    assert share("phoenix", taken_over) >= 0.8
    certain = f[[f"finding_{code}" for code in CERTAIN_FINDINGS]].sum(axis=1) > 0
    assert share("regular", certain) <= 0.01


def test_simulated_headline_features_match_the_pandas_baseline(simulated):
    import importlib.util

    path = REPO / "bench" / "features_bench.py"
    spec = importlib.util.spec_from_file_location("features_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sim, periods, fs = simulated
    baseline = bench.pandas_headline(sim.tables, periods)
    ours = fs.features.set_index("invoice_id")
    for column in ("billed_over_registered_hours", "staff_overlap_minutes"):
        np.testing.assert_allclose(
            baseline.loc[ours.index, column].to_numpy(), ours[column].to_numpy(), atol=1e-9
        )
    assert ours["staff_overlap_minutes"].gt(0).sum() > 10  # the comparison is not vacuous


def test_round_start_time_share_counts_starts_exactly_on_the_hour_or_half_hour():
    visits = [
        visit("V1", "C1", "2026-03-04 10:00", 30),
        visit("V2", "C1", "2026-03-05 10:17", 30),
        visit("V3", "C1", "2026-03-06 14:30", 30),
        visit("V4", "C1", "2026-03-07 09:30:20", 30),  # seconds: a clock, not a typed time
    ]
    tables = municipality(
        grants=[grant("G1", "C1")], visits=visits, invoices=[invoice("I1", "C1", 2.0)]
    )
    assert row(build(tables), "I1")["round_start_time_share"] == 0.5


def test_billing_for_hospital_days_is_a_finding_without_any_visit_in_the_stay():
    # C1: in hospital 03-01..03-17, full days 03-02..03-16 = 15 of 31; grant 31 h, so
    # 16 h for the days at home, allowed 16 * 1.25 + 2 = 22 h. Billing 31 h is a finding
    # although no visit was registered during the stay; billing 20 h is not.
    # C2: in hospital 4 full days only (03-10..03-15): below the 5-day minimum.
    stays = [
        {"client_id": "C1", "admitted_on": "2026-03-01", "discharged_on": "2026-03-17"},
        {"client_id": "C2", "admitted_on": "2026-03-10", "discharged_on": "2026-03-15"},
        {"client_id": "C3", "admitted_on": "2026-03-01", "discharged_on": "2026-03-17"},
    ]
    visits = [
        visit(f"V{d}", c, f"2026-03-{d:02d} 10:00", 60)
        for d in (20, 25)
        for c in ("C1", "C2", "C3")
    ]
    tables = municipality(
        grants=[grant("G1", "C1", 31.0), grant("G2", "C2", 31.0), grant("G3", "C3", 31.0)],
        visits=[{**v, "visit_id": f"{v['visit_id']}{v['client_id']}"} for v in visits],
        stays=stays,
        invoices=[invoice("I1", "C1", 31.0), invoice("I2", "C2", 31.0), invoice("I3", "C3", 20.0)],
    )
    fs = build(tables)
    assert evidence(fs, "I1", "billed_during_hospital_stay") == (
        "the client was in hospital 15 full day(s) of 31 in 2026-03 (hospital_stays); "
        "granted 31.00 h for the month, 16.00 h for the 16 day(s) at home; "
        "the invoice bills 31.00 h"
    )
    assert "visits_during_hospital_stay" not in codes(fs, "I1")
    assert "billed_during_hospital_stay" not in codes(fs, "I2")
    assert "billed_during_hospital_stay" not in codes(fs, "I3")
    assert row(fs, "I1")["finding_billed_during_hospital_stay"] == 1.0


def test_a_rate_most_invoices_of_the_month_bill_is_not_a_tariff_mismatch():
    # The tariffs table says 500 SEK/h for 2026; from March every provider bills 510.
    rate = RATES_2026["personal_care"]
    n = 25
    clients = [client(f"C{i}") for i in range(n)]
    invoices = [invoice(f"I{i}", f"C{i}", 10.0, 10.0 * (rate + 10)) for i in range(n - 1)]
    invoices.append(invoice("IX", f"C{n - 1}", 10.0, 10.0 * rate * 1.2))  # a rate inflated 20 %
    tables = municipality(
        clients=clients,
        grants=[grant(f"G{i}", f"C{i}", 10.0) for i in range(n)],
        invoices=invoices,
    )
    fs = build(tables)
    assert "amount_mismatch_tariff" not in codes(fs, "I0")
    assert evidence(fs, "IX", "amount_mismatch_tariff").endswith(
        f"most invoices of personal_care this month bill {rate + 10:.2f} SEK/h, which gives "
        f"{10 * (rate + 10):.2f} SEK ({10 * rate * 1.2 - 10 * (rate + 10):+.2f} SEK)"
    )
    # Too few invoices to call a rate prevailing: the table decides.
    few = build(tables, tariff_prevailing_min_invoices=n + 1)
    assert "amount_mismatch_tariff" in codes(few, "I0")


def test_pooled_tariffs_refuse_an_invoice_without_its_municipality():
    # Without one it would miss every tariff and be held as "no tariff", which is false.
    tables = municipality(
        grants=[grant(f"G{c}", c) for c in ("C1", "C2")],
        invoices=[
            invoice("I1", "C1", 10.0, amount=5000.0, municipality="K1"),
            invoice("I2", "C2", 10.0, amount=5000.0),
        ],
    )
    tables["tariffs"] = tables["tariffs"].assign(municipality="K1")
    with pytest.raises(TillitError, match="1 row\\(s\\) of invoices name no municipality"):
        build(tables)


def test_a_pooled_month_finds_each_municipality_its_own_prevailing_rate():
    from tillit.config import FeatureConfig
    from tillit.features.build import prevailing_rate

    # K1 bills 400 SEK/h on 3 invoices, K2 350 SEK/h on 2: pooled, K1's rate would prevail
    # for K2 too and hide K2's invoices billed at K1's rate.
    raw = pd.DataFrame(
        {
            "service_type": ["personal_care"] * 5,
            "period": ["2026-03"] * 5,
            "billed_hours": [10.0] * 5,
            "amount_sek": [4000.0, 4000.0, 4000.0, 3500.0, 3500.0],
            "tariff_municipality": ["K1", "K1", "K1", "K2", "K2"],
        }
    )
    config = FeatureConfig(tariff_prevailing_min_invoices=2)
    assert prevailing_rate(raw, config).tolist() == [400.0, 400.0, 400.0, 350.0, 350.0]
    assert prevailing_rate(raw.drop(columns="tariff_municipality"), config).tolist() == [400.0] * 5
