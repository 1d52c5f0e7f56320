"""Money in dispute: the part of an invoice's amount that nothing in the source data backs.

An auditor weighs a case by what is at stake, and the gross amount overstates it:
an invoice of 40 000 SEK with 38 000 SEK of registered, granted visits at the
tariff disputes 2 000 SEK, not 40 000. The estimate, per invoice:

    backed hours = the least of
        billed hours,
        registered visit hours (less visit hours on full hospital days and after death),
        granted hours (less the days in hospital when the stay is a finding);
      0 when the client died before the billed month or the provider had no contract then
    backed price = the tariff per hour, or the invoice's own price per hour when lower
    in dispute   = amount - backed hours x backed price  (0 at least, the amount at most)

It is an estimate for ranking and for reading a case, not a claim: a grant the
data does not show, or visits registered late, back hours the estimate does not see.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

# The columns the estimate reads from the feature table.
DISPUTE_INPUTS = (
    "invoice_id",
    "billed_hours",
    "amount_sek",
    "registered_visit_hours",
    "granted_hours",
    "amount_minus_tariff_amount_sek",
    "visit_hours_during_hospital_stay",
    "visit_hours_after_death",
    "provider_outside_contract_period",
)


def _column(features: pd.DataFrame, name: str) -> np.ndarray:
    if name not in features:
        return np.zeros(len(features))
    return pd.to_numeric(features[name], errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def home_hours(findings: pd.DataFrame) -> pd.Series:
    """Granted hours for the days at home, per invoice with a billed-during-hospital-stay finding."""
    if findings.empty or "evidence_facts" not in findings:
        return pd.Series(dtype="float64")
    stays = findings[findings["finding"] == "billed_during_hospital_stay"]
    hours: dict[str, float] = {}
    for invoice_id, facts in zip(stays["invoice_id"], stays["evidence_facts"], strict=True):
        for _key, fields in json.loads(str(facts)):
            if isinstance(fields, dict) and "home_hours" in fields:
                hours[str(invoice_id)] = float(fields["home_hours"])
    return pd.Series(hours, dtype="float64")


def hours_and_money_in_dispute(
    features: pd.DataFrame, findings: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per invoice (rows of `features`): `hours_in_dispute` and `amount_in_dispute_sek`.

    Args:
        features: the month's feature table (DISPUTE_INPUTS and the finding columns).
        findings: hard findings with `evidence_facts` (for the hours granted for days at home).
    """
    billed = _column(features, "billed_hours")
    amount = _column(features, "amount_sek")
    visits = _column(features, "registered_visit_hours")
    visits = visits - _column(features, "visit_hours_during_hospital_stay")
    visits = np.maximum(visits - _column(features, "visit_hours_after_death"), 0.0)
    granted = _column(features, "granted_hours")
    if findings is not None:
        at_home = features["invoice_id"].astype("str").map(home_hours(findings))
        granted = np.fmin(granted, at_home.to_numpy(dtype="float64"))
    backed = np.minimum.reduce([billed, visits, granted])
    no_basis = (_column(features, "finding_billing_after_death") > 0) | (
        _column(features, "provider_outside_contract_period") > 0
    )
    backed = np.where(no_basis, 0.0, np.maximum(backed, 0.0))
    tariff_amount = amount - _column(features, "amount_minus_tariff_amount_sek")
    safe_billed = np.where(billed > 0, billed, 1.0)
    price = np.where(billed > 0, np.minimum(tariff_amount, amount) / safe_billed, 0.0)
    price = np.maximum(price, 0.0)
    dispute = np.clip(amount - backed * price, 0.0, np.maximum(amount, 0.0))
    return pd.DataFrame(
        {
            "hours_in_dispute": np.round(np.maximum(billed - backed, 0.0), 2),
            "amount_in_dispute_sek": np.round(dispute, 2),
        },
        index=features.index,
    )


__all__ = ["DISPUTE_INPUTS", "home_hours", "hours_and_money_in_dispute"]
