"""Table mode speaks of its stream's rows, never of home care's invoices, in Swedish too.

A table's rows are trips, card payments or claims: the Swedish report and risk list say
"rader" (as English says "rows") and keep the spec's own column names, even a name that
home care translates (`provider_id` is "Utförare" there, `invoice_id` "Faktura").
"""

from __future__ import annotations

import re

import pandas as pd

from tillit.jobs.table_score import write_risk_list_csv
from tillit.tables.report import render_table_report

# Home care's Swedish words a stream of other rows must never show.
HOME_CARE = re.compile(r"faktur|utförare|brukare|insats", re.IGNORECASE)


def _trips() -> pd.DataFrame:
    """Three transport trips as table score lists them; the firm's column is `provider_id`."""
    return pd.DataFrame(
        {
            "invoice_id": ["T1", "T2", "T3"],  # a trip's id, whatever the export calls it
            "period": ["2026-W20"] * 3,
            "provider_id": ["F1", "F2", "F1"],
            "amount_sek": [310.0, 95.5, 120.0],
            "status": ["scored"] * 3,
            "risk_score": [0.91, 0.40, 0.12],
            "rank": pd.array([1, 2, 3], dtype="Int64"),
            "flagged": [True, True, False],
            "why_flagged": ["capacity", "random check", ""],
            "reasons": ["fare far above the firm's mean: 310 (typical 120)", "nothing", ""],
            "isolation_forest_score": [0.7, 0.5, 0.2],
            "lightgbm_score": [0.9, 0.3, 0.1],
            "model_name": ["transport-trips"] * 3,
            "model_version": ["1"] * 3,
            "run_id": ["r1"] * 3,
        }
    )


def test_the_swedish_table_report_and_risk_list_never_say_faktura(tmp_path):
    trips = _trips()
    page = render_table_report(
        trips,
        pd.DataFrame(),
        spec_name="transport-trips",
        id_column="invoice_id",
        amount_column="amount_sek",
        selection="2026-W20",
        model={"model_name": "transport-trips", "model_version": "1", "run_id": "r1"},
        evaluation={},
        counts={"scored": 3, "quarantined": 0, "flagged": 2, "random_checks": 1},
        weights={},
        lang="sv",
    )
    assert "Flaggade rader (2)" in page and "bedömda rader" in page
    assert HOME_CARE.findall(page) == []
    path = write_risk_list_csv(
        trips, tmp_path / "risk_list.csv", "sv", ["invoice_id", "provider_id", "amount_sek"]
    )
    written = path.read_text("utf-8")
    assert HOME_CARE.findall(written) == []
    headers = pd.read_csv(path, sep=";", nrows=0).columns.tolist()
    assert headers[:4] == ["invoice_id", "Period", "provider_id", "amount_sek"]
    assert {"Status", "Riskpoäng", "Plats", "Flaggad", "Varför flaggad", "Skäl"} <= set(headers)
