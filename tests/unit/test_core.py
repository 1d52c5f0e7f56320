"""The stream-agnostic core: one risk-list schema, one decision log, one page shell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from tillit.core.feedback import LOG_TAIL, read_decision_log, refuse_applied_file, selection
from tillit.core.findings import codes_in, finding_column
from tillit.core.html import PAGE_CSS, page
from tillit.core.risk_list import risk_list_schema, spreadsheet
from tillit.errors import TillitError


def _risk_list(id_column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            id_column: ["a", "b", "c", ""],
            "period": ["2026-01"] * 4,
            "status": ["scored", "scored", "scored", "quarantined"],
            "risk_score": [0.9, 0.5, 0.1, np.nan],
            "rank": pd.array([1, 2, 3, pd.NA], dtype="Int64"),
            "flagged": [True, False, True, True],
            "why_flagged": ["capacity", "", "random check", "quarantined"],
            "reasons": ["high amount", "", "x", "cannot be scored: amount >= 0"],
        }
    )


@pytest.mark.parametrize("id_column", ["invoice_id", "TRANSACTION_ID"])
def test_one_schema_takes_any_id_column(id_column: str) -> None:
    risk_list_schema(id_column).validate(_risk_list(id_column))
    several = _risk_list(id_column)
    several["why_flagged"] = ["capacity; hard finding", "", "random check", "quarantined"]
    risk_list_schema(id_column).validate(several)


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"risk_score": [1.5, 0.5, 0.1, np.nan]}, "less_than_or_equal_to"),
        ({"why_flagged": ["capacity", "", "hunch", "quarantined"]}, "why_in_the_vocabulary"),
        ({"why_flagged": ["capacity; hunch", "", "x", "quarantined"]}, "why_in_the_vocabulary"),
        ({"reasons": ["high amount", "", "", "held"]}, "every_flagged_row_has_reasons"),
        ({"flagged": [True, False, True, False]}, "quarantined_rows_are_flagged"),
        ({"row": ["a", "a", "c", ""]}, "scored_ids_are_unique"),
    ],
)
def test_the_schema_refuses_what_a_risk_list_must_not_be(change: dict, check: str) -> None:
    frame = _risk_list("row").assign(**change)
    with pytest.raises(pa.errors.SchemaError, match=check):
        risk_list_schema("row").validate(frame)


def test_a_stream_adds_its_own_columns_and_checks() -> None:
    schema = risk_list_schema(
        "row",
        extra_columns={"money": pa.Column(float, pa.Check.ge(0))},
        extra_checks=[pa.Check(lambda df: df["money"] < 100, name="small_money")],
    )
    schema.validate(_risk_list("row").assign(money=[1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(pa.errors.SchemaError, match="small_money"):
        schema.validate(_risk_list("row").assign(money=[1.0, 2.0, 3.0, 400.0]))


def test_the_swedish_spreadsheet_says_codes_in_words_and_keeps_unknown_columns() -> None:
    sheet = spreadsheet(_risk_list("TX").assign(TX_AMOUNT=1.0), "sv", {"period": "Period"})
    assert list(sheet.columns[:3]) == ["TX", "Period", "Status"]
    assert sheet["Status"].tolist() == ["bedömd"] * 3 + ["i karantän"]
    assert sheet["Varför flaggad"].tolist() == ["kapacitet", "", "stickprov", "karantän"]
    assert sheet["Flaggad"].tolist() == ["ja", "nej", "ja", "ja"]
    assert "TX_AMOUNT" in sheet
    assert spreadsheet(_risk_list("TX"), "en").equals(_risk_list("TX"))


def test_selection_reads_the_risk_list_by_its_id_column() -> None:
    listed = _risk_list("TX").astype({"flagged": "str"})  # as read back from a CSV
    ids = pd.Series(["a", "b", "c", "zz"])
    assert selection(ids, listed, "TX").tolist() == ["flagged", "other", "random_check", "other"]
    assert selection(ids, None, "TX").tolist() == ["other"] * 4


def test_an_old_table_log_reads_with_today_s_columns(tmp_path: Path) -> None:
    old = pd.DataFrame(
        {"row_id": ["7"], "decision": ["confirmed"], "logged_at": ["2026-02-01T10:00:00Z"]}
    )
    old.to_parquet(tmp_path / "t.decisions.parquet", index=False)
    log = read_decision_log(tmp_path / "t.decisions.parquet")
    assert log is not None and log["recorded_utc"].tolist() == ["2026-02-01T10:00:00Z"]
    assert "recorded_utc" in LOG_TAIL
    assert read_decision_log(tmp_path / "none.parquet") is None


def test_a_decisions_file_applied_before_is_refused(tmp_path: Path) -> None:
    log = pd.DataFrame({"decisions_sha256": ["abc"], "recorded_utc": ["2026-02-01T10:00:00Z"]})
    refuse_applied_file(log, tmp_path / "d.csv", "def")
    refuse_applied_file(None, tmp_path / "d.csv", "abc")
    with pytest.raises(TillitError, match="already applied on 2026-02-01T10:00:00Z"):
        refuse_applied_file(log, tmp_path / "d.csv", "abc")


def test_one_shell_for_every_page() -> None:
    html = page("Risk <list>", ["<h1>x</h1>", "<p>y</p>"], "sv")
    assert html.startswith('<!DOCTYPE html>\n<html lang="sv">')
    assert "<title>Risk &lt;list&gt;</title>" in html and PAGE_CSS in html
    assert html.endswith("<h1>x</h1>\n<p>y</p>\n</body>\n</html>\n")


def test_the_stream_names_its_findings() -> None:
    columns = ["amount", finding_column("duplicate"), "finding_late", "hard_finding_count"]
    assert codes_in(columns) == ("duplicate", "late")
