"""What the pages rest on, on hand-built frames: money in dispute, number formats, the
Swedish spreadsheet, and the provider order that follows what the invoice side found."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tillit.config import FeatureConfig
from tillit.data.io import SWEDISH_EXCEL, write_frame
from tillit.features.providers import SHARED_FACTS_COLUMN, register_columns
from tillit.i18n import NBSP, count, fill, money, number, share
from tillit.modelling.provider_model import (
    REGISTER_FINDINGS,
    invoice_side_priority,
    register_findings,
)
from tillit.review.dispute import hours_and_money_in_dispute
from tillit.review.score import spreadsheet_risk_list

TARIFF = 460.0


def dispute_features() -> pd.DataFrame:
    """Six invoices at a tariff of 460 SEK/h, each with one reason to doubt part of it."""
    rows = [
        # id, billed, amount, registered, granted, amount - billed x tariff, hospital h, died
        ("A", 10.0, 4600.0, 8.0, 12.0, 0.0, 0.0, 0),  # 2 h beyond the visits
        ("B", 10.0, 4600.0, 10.0, 6.0, 0.0, 0.0, 0),  # 4 h beyond the grant
        ("C", 5.0, 3000.0, 5.0, 5.0, 700.0, 0.0, 0),  # 700 SEK above the tariff
        ("D", 4.0, 2000.0, 4.0, 4.0, 160.0, 0.0, 1),  # the client died before the month
        ("E", 10.0, 4600.0, 10.0, 10.0, 0.0, 0.0, 0),  # in hospital: 3 h granted at home
        ("F", 10.0, 4600.0, 10.0, 10.0, 0.0, 4.0, 0),  # 4 visit hours on hospital days
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "invoice_id",
            "billed_hours",
            "amount_sek",
            "registered_visit_hours",
            "granted_hours",
            "amount_minus_tariff_amount_sek",
            "visit_hours_during_hospital_stay",
            "finding_billing_after_death",
        ],
    )
    frame["visit_hours_after_death"] = 0.0
    frame["provider_outside_contract_period"] = 0.0
    return frame


def hospital_finding() -> pd.DataFrame:
    facts = [["evidence.billed_during_hospital_stay", {"home_hours": 3.0, "billed_hours": 10.0}]]
    return pd.DataFrame(
        {
            "invoice_id": ["E"],
            "finding": ["billed_during_hospital_stay"],
            "evidence": ["in hospital"],
            "evidence_facts": [json.dumps(facts)],
        }
    )


def test_money_in_dispute_is_the_amount_not_backed_by_visits_grant_or_tariff():
    got = hours_and_money_in_dispute(dispute_features(), hospital_finding())
    assert got["hours_in_dispute"].tolist() == [2.0, 4.0, 0.0, 4.0, 7.0, 4.0]
    assert got["amount_in_dispute_sek"].tolist() == [
        2 * TARIFF,  # 920
        4 * TARIFF,  # 1 840
        700.0,  # 3 000 - 5 h x 460
        2000.0,  # nothing backs billing for a client who had died
        4600.0 - 3 * TARIFF,  # 3 220
        4 * TARIFF,  # 1 840
    ]
    # Without the findings the hospital stay is not known: the grant backs all 10 h.
    assert hours_and_money_in_dispute(dispute_features())["amount_in_dispute_sek"][4] == 0.0


def test_money_in_dispute_never_exceeds_the_amount_nor_goes_below_zero():
    frame = dispute_features().assign(
        billed_hours=[0.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        registered_visit_hours=[0.0, 0.0, 20.0, 20.0, 20.0, 20.0],
        granted_hours=[0.0, 0.0, 20.0, 20.0, 20.0, 20.0],
        amount_minus_tariff_amount_sek=[0.0, 0.0, -600.0, 0.0, 0.0, 0.0],
        finding_billing_after_death=0,
        visit_hours_during_hospital_stay=0.0,
    )
    got = hours_and_money_in_dispute(frame)["amount_in_dispute_sek"]
    assert got.tolist() == [4600.0, 4600.0, 0.0, 0.0, 0.0, 0.0]


def test_one_formatter_per_kind_in_each_language():
    assert number(1234567.891, "en", 2) == "1,234,567.89"
    assert number(1234567.891, "sv", 2) == f"1{NBSP}234{NBSP}567,89"
    assert money(31451, "en") == f"31,451{NBSP}SEK"
    assert money(31451, "sv") == f"31{NBSP}451{NBSP}kr"
    assert share(0.04, "en") == "4%" and share(0.045, "sv", 1) == f"4,5{NBSP}%"
    assert number(np.nan, "sv") == "–" and number(-0.001, "sv", 2) == "0,00"
    # Templates with format specs come out Swedish, thousands grouped even where not asked.
    assert fill("{a:.2f} kr, {b:.0%}, {c}", "sv", a=13683.9, b=0.45, c=0.9) == (
        f"13{NBSP}683,90 kr, 45{NBSP}%, 0,9"
    )
    assert fill("{a:.2f} SEK, {n}", "en", a=13683.9, n=2025) == "13683.90 SEK, 2025"
    assert count(1, "report.flagged_n", "en") == "1 flagged invoice"
    assert count(2, "report.flagged_n", "sv") == "2 flaggade fakturor"


def test_swedish_spreadsheet_names_columns_and_values_in_swedish(tmp_path):
    risk = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2"],
            "service_type": ["personal_care", "night_care"],
            "amount_sek": [1234.5, 99.0],
            "status": ["scored", "quarantined"],
            "flagged": [True, False],
            "why_flagged": ["capacity; hard finding", "quarantined"],
        }
    )
    sheet = spreadsheet_risk_list(risk, "sv")
    assert list(sheet.columns) == [
        "Faktura",
        "Insats",
        "Belopp (kr)",
        "Status",
        "Flaggad",
        "Varför flaggad",
    ]
    assert sheet.iloc[0].tolist() == [
        "I1",
        "personlig omvårdnad",
        1234.5,
        "bedömd",
        "ja",
        "kapacitet; fynd",
    ]
    assert spreadsheet_risk_list(risk, "en") is risk
    raw = write_frame(sheet, tmp_path / "risk_list.csv", dialect=SWEDISH_EXCEL).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfFaktura;Insats;Belopp (kr);")
    assert "I1;personlig omvårdnad;1234,5;bedömd;ja;" in raw.decode("utf-8-sig")


def test_a_provider_with_findings_is_never_ranked_below_one_with_nothing_found():
    months = pd.DataFrame(
        {
            "provider_id": ["CASE", "FOUND", "CLEAN", "APPLICANT"],
            "n_invoices": [40.0, 5.0, 30.0, 0.0],
            "n_hard_finding": [0.0, 1.0, 0.0, 0.0],
            "amount_in_dispute_sek": [0.0, 25_000.0, 0.0, 0.0],
            "is_case": [True, False, False, False],
        }
    )
    # The model ranks the clean provider first and the case last.
    group, priority = invoice_side_priority(months, np.array([0.0, 0.1, 1.0, 0.7]))
    assert group.tolist() == [2, 1, 0, 0]
    # (group + 0.5 x model risk + 0.5 x (0.5 x findings/5 + 0.5 x dispute/50 000)) / 3
    assert priority.tolist() == pytest.approx([2 / 3, (1 + 0.05 + 0.5 * 0.35) / 3, 0.5 / 3, 0.7])
    assert priority[0] > priority[1] > priority[2]


def test_a_phoenix_found_in_the_register_is_not_ranked_below_one_finding_on_400_invoices():
    # The default world's contact phoenix, 2025-12: no invoice finding, 26,212 SEK in
    # dispute, model risk 1.0; above it on main stood a provider with 1 finding on 403
    # invoices and a model risk of 0.00002.
    months = pd.DataFrame(
        {
            "provider_id": ["PHOENIX", "ONE_IN_403", "CLEAN"],
            "n_invoices": [8.0, 403.0, 30.0],
            "n_hard_finding": [0.0, 1.0, 0.0],
            "amount_in_dispute_sek": [25_000.0, 15_000.0, 0.0],
        }
    )
    risk = np.array([1.0, 0.00002, 0.5])
    # The phoenix's register finding at full strength (a board person of a sanctioned company).
    group, priority = invoice_side_priority(months, risk, np.array([1.0, 0.0, 0.0]))
    assert group.tolist() == [1, 1, 0]
    # (1 + 0.5 x 1.0 + 0.5 x max(0.5 x 25 000/50 000, 1.0)) / 3;
    # (1 + 0.5 x 0.00002 + 0.5 x (0.5 x 1/5 + 0.5 x 15 000/50 000)) / 3; 0.5 x 0.5 / 3
    assert priority.tolist() == pytest.approx(
        [(1.5 + 0.5) / 3, (1 + 0.00001 + 0.5 * (0.1 + 0.15)) / 3, 0.25 / 3]
    )
    # A weak one (shared facts at match probability 0.09: 0.18 of full) still counts as found,
    # and weighs only where it is stronger than what the invoices show.
    group, priority = invoice_side_priority(months, risk, np.array([0.18, 0.0, 0.18]))
    assert group.tolist() == [1, 1, 1]
    assert priority.tolist() == pytest.approx(
        [(1.5 + 0.125) / 3, (1 + 0.00001 + 0.5 * (0.1 + 0.15)) / 3, (1 + 0.25 + 0.09) / 3]
    )
    assert priority[0] > priority[2] > priority[1]
    # Without the register the phoenix is "nothing found" and falls below (main's order).
    group, priority = invoice_side_priority(months, risk)
    assert group.tolist() == [0, 1, 0] and priority[1] > priority[0]


def test_register_findings_are_a_board_link_or_facts_shared_at_the_evidence_floor():
    columns = register_columns(FeatureConfig())
    linked = "provider_persons_linked_to_sanctioned_or_terminated"
    months = pd.DataFrame(
        {
            "provider_id": ["BOARD", "CONTACTS", "HONEST"],
            "high_risk_invoice_share": 0.0,
            "high_risk_amount_share": 0.0,
            "mean_invoice_risk": 0.0,
            "hard_finding_share": 0.0,
            "high_risk_share_rise": 0.0,
            **{c: [0.0, 0.0, 0.0] for c in columns},
        }
    )
    months[linked] = [2.0, 0.0, 0.0]
    months["provider_age_years"] = 5.0
    months[SHARED_FACTS_COLUMN] = [0.0, 0.19, 0.0]
    found = register_findings(months, columns)
    assert list(found.columns) == list(REGISTER_FINDINGS)
    assert found.to_numpy().ravel().tolist() == pytest.approx([1.0, 0.0, 0.0, 0.38, 0.0, 0.0])
    assert found.gt(0).any(axis=1).tolist() == [True, True, False]
