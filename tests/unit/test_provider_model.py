"""The provider risk: invoice aggregates and trend, the weighted evidence score, applicants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tillit.config import FeatureConfig, ProviderConfig
from tillit.features.providers import register_columns
from tillit.modelling.provider_model import (
    EVIDENCE,
    INVOICE_WEIGHTS,
    REGISTER_WEIGHTS,
    ProviderRiskModel,
    provider_months,
)

COLUMNS = register_columns(FeatureConfig())


def _profile(period: str, rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "provider_id": list(rows),
            "period": period,
            "org_number": "556677-8899",
            "legal_form": "AB",
            "registered_on": pd.Timestamp("2015-01-01"),
            "approved_on": [
                pd.NaT if r.get("applicant") else pd.Timestamp("2016-01-01") for r in rows.values()
            ],
            "is_applicant": [bool(r.get("applicant")) for r in rows.values()],
            "n_clients": 3.0,
            "n_taken_over": 0.0,
        }
    )
    for column in COLUMNS:
        frame[column] = 0.0
    frame["provider_age_years"] = 10.0
    frame["provider_client_growth_3m"] = 1.0
    for i, r in enumerate(rows.values()):
        for key, value in r.items():
            if key != "applicant":
                frame.loc[i, key] = value
    return frame


def _invoices() -> pd.DataFrame:
    # P1: 4 invoices in March, 3 high-risk (>= 0.85), one with a finding; 1 of 2 high in February.
    return pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(8)],
            "provider_id": ["P1"] * 6 + ["P2"] * 2,
            "period": ["2025-03"] * 4 + ["2025-02"] * 2 + ["2025-03"] * 2,
            "amount_sek": [100.0, 200.0, 300.0, 400.0, 50.0, 50.0, 1000.0, 1000.0],
            "risk_score": [0.95, 0.86, 0.85, 0.10, 0.9, 0.2, 0.5, 0.3],
            "has_hard_finding": [True, False, False, False, False, False, False, False],
        }
    )


def test_invoice_part_counts_shares_money_and_trend_exactly():
    profile = _profile("2025-03", {"P1": {}, "P2": {}, "P3": {}, "A1": {"applicant": True}})
    months = provider_months(_invoices(), profile, ["2025-03"], ProviderConfig())
    got = months.set_index("provider_id")
    # P3 did not bill in March and is no applicant: not listed; A1 is listed without invoices.
    assert sorted(got.index) == ["A1", "P1", "P2"]
    p1 = got.loc["P1"]
    assert p1["n_invoices"] == 4 and p1["n_high_risk"] == 3 and p1["n_hard_finding"] == 1
    assert p1["amount_sek"] == 1000.0 and p1["high_risk_amount_sek"] == 600.0
    assert p1["high_risk_invoice_share"] == 0.75
    assert p1["high_risk_amount_share"] == pytest.approx(0.6)
    assert p1["mean_invoice_risk"] == pytest.approx(0.69)
    assert p1["high_risk_share_before"] == 0.5
    assert p1["high_risk_share_rise"] == pytest.approx(0.25)
    assert got.loc["P2", "high_risk_share_rise"] == 0.0  # no earlier month: no rise
    assert got.loc["A1", "n_invoices"] == 0.0


def test_weighted_score_is_the_weighted_mean_of_the_evidence_and_applicants_get_the_register_part():
    profile = _profile(
        "2025-03",
        {
            "P1": {"provider_persons_linked_to_sanctioned_or_terminated": 2.0},
            "P2": {"provider_tax_debt_registered_sek_365d": 50_000.0},
            "A1": {"applicant": True, "provider_persons_linked_to_sanctioned_or_terminated": 1.0},
        },
    )
    months = provider_months(_invoices(), profile, ["2025-03"], ProviderConfig())
    model = ProviderRiskModel("weighted", COLUMNS, 0.85, 3, ("2025-03",), "1.2")
    risk = dict(zip(months["provider_id"], model.risk(months), strict=True))
    total = sum(INVOICE_WEIGHTS.values()) + sum(REGISTER_WEIGHTS.values())
    register_total = sum(REGISTER_WEIGHTS.values())
    p1 = (3 * 0.75 + 2 * 0.6 + 1 * 0.69 + 1 * 0.5 + 0.5 * 0.5 + 3 * 1.0) / total
    assert risk["P1"] == pytest.approx(p1)
    p2 = (1 * 0.4 + 1 * 0.5) / total  # mean risk 0.4; tax debt 50,000 of 100,000
    assert risk["P2"] == pytest.approx(p2)
    assert risk["A1"] == pytest.approx(3.0 / register_total)
    contributions = model.contributions(months)
    assert list(contributions.columns) == list(EVIDENCE)
    np.testing.assert_allclose(contributions.sum(axis=1), model.risk(months))
    assert all(0.0 <= r <= 1.0 for r in risk.values())


def test_facts_shared_with_a_sanctioned_company_weigh_by_match_probability_and_old_models_skip_them():
    from tillit.features.providers import SHARED_FACTS_COLUMN

    profile = _profile("2025-03", {"P1": {}, "P2": {}, "A1": {"applicant": True}})
    profile[SHARED_FACTS_COLUMN] = profile["provider_id"].map({"P1": 0.25, "P2": 0.8, "A1": 0.0})
    months = provider_months(_invoices(), profile, ["2025-03"], ProviderConfig())
    model = ProviderRiskModel("weighted", COLUMNS, 0.85, 3, ("2025-03",), "1.3")
    shared = model.evidence(months).set_index(months["provider_id"])
    shared = shared["shares_facts_with_sanctioned_or_terminated"]
    assert shared.to_dict() == {"P1": 0.5, "P2": 1.0, "A1": 0.0}  # full at 0.5
    total = sum(INVOICE_WEIGHTS.values()) + sum(REGISTER_WEIGHTS.values())
    part = model.contributions(months).set_index(months["provider_id"])
    assert part.loc["P1", "shares_facts_with_sanctioned_or_terminated"] == pytest.approx(
        1.5 / total
    )
    # A model registered before contract v1.3 has no weight for the item and reads on.
    weights = {
        k: v for k, v in model.weights.items() if k != "shares_facts_with_sanctioned_or_terminated"
    }
    old = ProviderRiskModel("weighted", COLUMNS, 0.85, 3, ("2025-03",), "1.2", weights=weights)
    assert "shares_facts_with_sanctioned_or_terminated" not in old.contributions(months)
    np.testing.assert_allclose(old.contributions(months).sum(axis=1), old.risk(months))
