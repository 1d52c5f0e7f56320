"""Auditors' decisions back into the data: exact outcomes, exact rejections, append-only files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tillit.config import TillitConfig
from tillit.data.io import read_frame, read_raw_tables, write_frame, write_tables
from tillit.data.validate import validate_tables
from tillit.errors import ContractError, TillitError
from tillit.jobs import AUDIT_LOG, run_feedback
from tillit.modelling.train import review_labels
from tillit.ops.auditlog import read_log, verify_log
from tillit.ops.feedback import LOG_COLUMNS, append_outcomes, apply_decisions

TODAY = dt.date(2025, 6, 30)
RECORDED = "2025-06-30T12:00:00Z"


def decisions(*rows: tuple[object, ...]) -> pd.DataFrame:
    """Decisions as read from an auditors' CSV: every cell text, blanks as missing."""
    columns = ["invoice_id", "decision", "recovered_sek", "reviewer", "decided_on", "note"]
    return pd.DataFrame([list(r) for r in rows], columns=columns, dtype="str")


def risk_list() -> pd.DataFrame:
    """I1 drawn as a random check, I2 flagged by capacity, I3 not on the list."""
    return pd.DataFrame(
        {
            "invoice_id": ["I1", "I2"],
            "flagged": [True, True],
            "why_flagged": ["random check", "capacity"],
        }
    )


def issued_risk_list(frame: pd.DataFrame, folder: Path, store: Path, name: str = "risk_list.csv"):
    """A risk list as `tillit score` leaves it: the file, its manifest, the run's audit record."""
    from tillit.data.io import file_sha256, write_json
    from tillit.jobs.common import record_run

    path = write_frame(frame, folder / name)
    manifest = write_json({"outputs": {name: file_sha256(path)}}, folder / "manifest.json")
    record_run(store, "score", counts={}, output_hashes={"manifest.json": file_sha256(manifest)})
    return path


def reasons_by_row(quarantine: pd.DataFrame) -> dict[int, list[str]]:
    return {
        int(row): sorted(group["reason"])
        for row, group in quarantine.groupby("row_number", sort=True)
    }


# ------------------------------------------------------------------ apply_decisions


def test_confirmed_and_cleared_become_outcomes_with_how_they_were_picked(tables):
    result = apply_decisions(
        tables,
        decisions(
            ("I1", "cleared", None, "anna", "2025-03-10", "all visits checked"),
            ("I2", "confirmed", "250.5", "bo", "2025-03-11", "hours not delivered"),
            ("I3", "confirmed", None, "bo", "2025-03-12", None),
        ),
        risk_list(),
        TODAY,
        RECORDED,
    )
    expected = pd.DataFrame(
        {
            "invoice_id": pd.Series(["I1", "I2", "I3"], dtype="str"),
            "reviewed_on": pd.Series(
                pd.to_datetime(["2025-03-10", "2025-03-11", "2025-03-12"]), dtype="datetime64[ns]"
            ),
            "outcome": pd.Series(["cleared", "confirmed", "confirmed"], dtype="str"),
            # Money only on a confirmed invoice; the reviewer's free-text note may name
            # people, so it stays in the decision log and never becomes a label's scheme.
            "recovered_sek": [np.nan, 250.5, np.nan],
            "scheme": pd.Series([np.nan, np.nan, np.nan], dtype="str"),
            "selection": pd.Series(["random_check", "flagged", "other"], dtype="str"),
        }
    )
    pd.testing.assert_frame_equal(result.new_outcomes, expected)
    assert result.quarantine.empty
    assert list(result.log_rows.columns) == list(LOG_COLUMNS)
    assert result.log_rows["recorded_utc"].tolist() == [RECORDED] * 3
    assert result.log_rows["reviewer"].tolist() == ["anna", "bo", "bo"]


def test_selection_is_other_without_a_risk_list_and_for_an_unflagged_row(tables):
    unflagged = pd.DataFrame({"invoice_id": ["I1"], "flagged": [False], "why_flagged": [""]})
    rows = decisions(
        ("I1", "cleared", None, "anna", "2025-03-10", None),
        ("I2", "cleared", None, "anna", "2025-03-10", None),
    )
    with_list = apply_decisions(tables, rows, unflagged, TODAY, RECORDED)
    without = apply_decisions(tables, rows, None, TODAY, RECORDED)
    assert with_list.new_outcomes["selection"].tolist() == ["other", "other"]
    assert without.new_outcomes["selection"].tolist() == ["other", "other"]


def test_not_reviewed_is_kept_in_the_log_only(tables):
    result = apply_decisions(
        tables,
        decisions(
            ("I1", "not_reviewed", None, "anna", "2025-03-10", "no time this month"),
            ("I2", "cleared", None, "anna", "2025-03-10", None),
        ),
        risk_list(),
        TODAY,
        RECORDED,
    )
    assert result.new_outcomes["invoice_id"].tolist() == ["I2"]
    assert result.log_rows["invoice_id"].tolist() == ["I1", "I2"]
    assert result.log_rows["decision"].tolist() == ["not_reviewed", "cleared"]
    assert result.log_rows["selection"].tolist() == ["random_check", "flagged"]
    assert result.log_rows["note"].tolist()[0] == "no time this month"


GOOD = ("I3", "cleared", None, "bo", "2025-03-01", None)


@pytest.mark.parametrize(
    ("bad", "reasons"),
    [
        (
            ("I99", "confirmed", None, "anna", "2025-03-01", None),
            ["invoice_id is not an invoice in the data"],
        ),
        (("I1", "cleared", None, "anna", "2025-07-01", None), ["decided_on is in the future"]),
        (
            ("I1", "cleared", None, "anna", "2025-02-04", None),
            ["decided_on is before the invoice was submitted"],
        ),
        (
            ("I1", "cleared", "1200", "anna", "2025-03-01", None),
            ["money recovered on a cleared invoice"],
        ),
        (
            ("I1", "confirmed", "12 000 kr", "anna", "2025-03-01", None),
            ["recovered_sek is not a number"],
        ),
    ],
    ids=["unknown_invoice", "future", "before_submission", "money_on_cleared", "bad_amount"],
)
def test_each_bad_decision_is_rejected_with_its_exact_reason(tables, bad, reasons):
    result = apply_decisions(tables, decisions(bad, GOOD), None, TODAY, RECORDED)
    assert reasons_by_row(result.quarantine) == {0: reasons}
    assert result.quarantine["invoice_id"].tolist() == [bad[0]] * len(reasons)
    # The rest of the file goes on.
    assert result.log_rows["invoice_id"].tolist() == ["I3"]
    assert result.new_outcomes["invoice_id"].tolist() == ["I3"]


def test_decisions_on_the_submission_day_and_today_are_accepted(tables):
    result = apply_decisions(
        tables,
        decisions(
            ("I1", "cleared", None, "anna", "2025-02-05", None),
            ("I2", "cleared", "0", "anna", TODAY.isoformat(), None),
        ),
        None,
        TODAY,
        RECORDED,
    )
    assert result.quarantine.empty
    assert result.new_outcomes["invoice_id"].tolist() == ["I1", "I2"]


def test_the_same_invoice_twice_in_one_file_rejects_both_rows(tables):
    result = apply_decisions(
        tables,
        decisions(
            ("I2", "confirmed", "100", "anna", "2025-03-01", None),
            GOOD,
            ("I2", "cleared", None, "bo", "2025-03-02", None),
        ),
        None,
        TODAY,
        RECORDED,
    )
    assert reasons_by_row(result.quarantine) == {
        0: ["the same invoice is decided twice in this file"],
        2: ["the same invoice is decided twice in this file"],
    }
    assert result.new_outcomes["invoice_id"].tolist() == ["I3"]


@pytest.mark.parametrize(
    ("bad", "column"),
    [
        (("I1", "fraud", None, "anna", "2025-03-01", None), "decision"),
        (("I1", "confirmed", "-5", "anna", "2025-03-01", None), "recovered_sek"),
        (("I1", "cleared", None, None, "2025-03-01", None), "reviewer"),
    ],
    ids=["bad_decision", "negative_amount", "no_reviewer"],
)
def test_a_bad_value_is_rejected_naming_its_column(tables, bad, column):
    result = apply_decisions(tables, decisions(bad, GOOD), None, TODAY, RECORDED)
    reasons = reasons_by_row(result.quarantine)
    assert list(reasons) == [0]
    assert len(reasons[0]) == 1 and reasons[0][0].startswith(column)
    assert result.log_rows["invoice_id"].tolist() == ["I3"]


def test_value_rejections_are_stated_in_words_like_the_contract_checks(tables):
    result = apply_decisions(
        tables,
        decisions(
            ("I1", "fraud", None, "anna", "2025-03-01", None),
            ("I2", "confirmed", "-5", "anna", "2025-03-01", None),
            ("I3", "cleared", None, None, "2025-03-01", None),
        ),
        None,
        TODAY,
        RECORDED,
    )
    assert reasons_by_row(result.quarantine) == {
        0: ["decision must be one of confirmed, cleared, not_reviewed"],
        1: ["recovered_sek >= 0"],
        2: ["reviewer must not be empty"],
    }


def test_an_unparseable_date_is_rejected_as_not_a_date(tables):
    result = apply_decisions(
        tables,
        decisions(("I1", "cleared", None, "anna", "1 mars 2025", None), GOOD),
        None,
        TODAY,
        RECORDED,
    )
    reasons = reasons_by_row(result.quarantine)
    assert list(reasons) == [0]
    assert "decided_on is not a date YYYY-MM-DD" in reasons[0]
    assert result.new_outcomes["invoice_id"].tolist() == ["I3"]


def test_an_unparseable_date_gets_only_the_not_a_date_reason(tables):
    result = apply_decisions(
        tables,
        decisions(("I1", "cleared", None, "anna", "2025-13-01", None)),
        None,
        TODAY,
        RECORDED,
    )
    assert reasons_by_row(result.quarantine) == {0: ["decided_on is not a date YYYY-MM-DD"]}


def test_a_row_with_several_problems_lists_each(tables):
    result = apply_decisions(
        tables,
        decisions(("I99", "cleared", "40", "anna", "2099-01-01", None)),
        None,
        TODAY,
        RECORDED,
    )
    assert reasons_by_row(result.quarantine) == {
        0: [
            "decided_on is in the future",
            "invoice_id is not an invoice in the data",
            "money recovered on a cleared invoice",
        ]
    }
    assert result.log_rows.empty and result.new_outcomes.empty


def test_a_decisions_file_without_a_required_column_is_refused(tables):
    rows = decisions(GOOD).drop(columns=["reviewer", "decided_on"])
    with pytest.raises(ContractError, match="missing column\\(s\\) reviewer, decided_on"):
        apply_decisions(tables, rows, None, TODAY, RECORDED)


def test_the_note_column_is_optional(tables):
    rows = decisions(("I2", "confirmed", "10", "anna", "2025-03-01", None)).drop(columns="note")
    result = apply_decisions(tables, rows, None, TODAY, RECORDED)
    assert result.quarantine.empty
    assert result.new_outcomes["scheme"].isna().all()


# ------------------------------------------------------------------ append_outcomes


def test_append_outcomes_keeps_earlier_rows_first_and_unchanged(tables):
    existing = tables["audit_outcomes"]
    new = apply_decisions(
        tables,
        decisions(("I2", "cleared", None, "anna", "2025-03-10", None)),
        None,
        TODAY,
        RECORDED,
    ).new_outcomes
    combined = append_outcomes(existing, new)
    assert combined["invoice_id"].tolist() == ["I1", "I2"]
    pd.testing.assert_frame_equal(combined.iloc[:1], existing, check_dtype=False)
    pd.testing.assert_frame_equal(combined.iloc[1:].reset_index(drop=True), new, check_dtype=False)
    # A v1.0 table without the selection column gets it, empty for the old rows.
    old = append_outcomes(existing.drop(columns="selection"), new)
    assert old["selection"].isna().tolist() == [True, False]
    assert append_outcomes(None, new).equals(new)


# ------------------------------------------------------------------ run_feedback on a folder


def _folder(tmp_path: Path, tables: dict[str, pd.DataFrame], fmt: str) -> Path:
    data = tmp_path / "data"
    write_tables(tables, data, fmt)
    return data


def _write_decisions(path: Path, *rows: tuple[object, ...]) -> Path:
    decisions(*rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "fmt",
    [
        "parquet",
        "csv",
    ],
)
def test_run_feedback_appends_and_later_decisions_supersede(tables, tmp_path, fmt):
    data = _folder(tmp_path, tables, fmt)
    store = tmp_path / "models"
    outcomes_file = data / f"audit_outcomes.{fmt}"
    before_bytes = outcomes_file.read_bytes()
    before = read_frame(outcomes_file)
    risk_file = issued_risk_list(risk_list(), tmp_path, store)

    first = run_feedback(
        data,
        _write_decisions(
            tmp_path / "first.csv",
            ("I2", "cleared", None, "anna", "2025-04-01", None),
            ("I3", "not_reviewed", None, "anna", "2025-04-01", None),
            ("I1", "cleared", None, "anna", "2025-04-01", None),
        ),
        risk_file,
        TillitConfig(),
        store,
    )
    assert first.outcomes_file == outcomes_file
    assert (first.decisions, first.accepted, first.outcomes_appended) == (3, 3, 2)
    assert first.random_checks == 1 and first.rejected_rows.empty

    after = read_frame(outcomes_file)
    assert len(after) == len(before) + 2
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)
    assert after["invoice_id"].tolist() == ["I1", "I2", "I1"]
    assert after["selection"].tolist()[1:] == ["flagged", "random_check"]
    if fmt == "csv":
        assert outcomes_file.read_bytes().startswith(before_bytes)

    second = run_feedback(
        data,
        _write_decisions(
            tmp_path / "second.csv",
            # Later than the first decision on I2: it supersedes it.
            ("I2", "confirmed", "600", "bo", "2025-05-01", "hours not delivered"),
            # Earlier than the cleared reviews of I1 already on record: it does not.
            ("I1", "confirmed", "100", "bo", "2025-02-20", None),
        ),
        None,
        TillitConfig(),
        store,
    )
    assert second.outcomes_appended == 2
    final = read_frame(outcomes_file)
    pd.testing.assert_frame_equal(final.iloc[: len(after)], after)
    assert final["invoice_id"].tolist() == ["I1", "I2", "I1", "I2", "I1"]

    validation = validate_tables(read_raw_tables(data))
    assert validation.quarantine.empty
    outcomes = validation.tables["audit_outcomes"]
    assert len(outcomes) == 5
    labels = review_labels(outcomes).set_index("invoice_id")
    assert labels.loc["I2", "label"] == 1 and labels.loc["I2", "selection"] == "other"
    assert labels.loc["I1", "label"] == 0 and labels.loc["I1", "selection"] == "random_check"
    assert sorted(labels.index) == ["I1", "I2"]

    log = read_frame(data / "decision_log.parquet")
    assert log["invoice_id"].tolist() == ["I2", "I3", "I1", "I2", "I1"]
    assert log["decision"].tolist()[:2] == ["cleared", "not_reviewed"]

    records = read_log(store / AUDIT_LOG)
    assert records["command"].tolist() == ["score", "feedback", "feedback"]
    assert records["counts"].tolist()[1] == {
        "decisions": 3,
        "accepted": 3,
        "rejected": 0,
        "skipped_repeats": 0,
        "reversals": 0,
        "outcomes_appended": 2,
    }
    assert outcomes_file.name in records["output_hashes"].tolist()[1]
    assert verify_log(store / AUDIT_LOG) == []


def test_run_feedback_creates_audit_outcomes_when_the_folder_has_none(tables, tmp_path):
    del tables["audit_outcomes"]
    data = _folder(tmp_path, tables, "parquet")
    run_feedback(
        data,
        _write_decisions(tmp_path / "d.csv", ("I3", "confirmed", "460", "anna", "2025-03-01", "x")),
        None,
        TillitConfig(),
        tmp_path / "models",
    )
    outcomes = validate_tables(read_raw_tables(data)).tables["audit_outcomes"]
    assert outcomes["invoice_id"].tolist() == ["I3"]
    assert outcomes["recovered_sek"].tolist() == [460.0]


def test_run_feedback_leaves_rejected_decisions_out_of_every_file(tables, tmp_path):
    data = _folder(tmp_path, tables, "parquet")
    before = read_frame(data / "audit_outcomes.parquet")
    outcome = run_feedback(
        data,
        _write_decisions(
            tmp_path / "d.csv", ("I99", "confirmed", None, "anna", "2025-03-01", None)
        ),
        None,
        TillitConfig(),
        tmp_path / "models",
    )
    assert outcome.accepted == 0
    assert outcome.rejected_rows["reason"].tolist() == ["invoice_id is not an invoice in the data"]
    pd.testing.assert_frame_equal(read_frame(data / "audit_outcomes.parquet"), before)
    assert read_frame(data / "decision_log.parquet").empty


def test_run_feedback_counts_add_up_when_a_row_has_two_problems(tables, tmp_path):
    data = _folder(tmp_path, tables, "parquet")
    store = tmp_path / "models"
    run_feedback(
        data,
        _write_decisions(
            tmp_path / "d.csv",
            ("I99", "cleared", "50", "anna", "2025-03-01", None),  # two problems, one decision
            GOOD,
        ),
        None,
        TillitConfig(),
        store,
    )
    counts = read_log(store / AUDIT_LOG)["counts"].tolist()[-1]
    assert counts["decisions"] == counts["accepted"] + counts["rejected"]
    assert counts["rejected"] == 1


def test_the_same_decisions_file_is_not_applied_twice(tables, tmp_path):
    data = _folder(tmp_path, tables, "parquet")
    store = tmp_path / "models"
    decisions = tmp_path / "decisions.csv"
    pd.DataFrame(
        {
            "invoice_id": ["I2"],
            "decision": ["cleared"],
            "recovered_sek": [None],
            "reviewer": ["R1"],
            "decided_on": ["2025-03-01"],
            "note": [None],
        }
    ).to_csv(decisions, index=False)
    run_feedback(data, decisions, None, TillitConfig(), store)
    before = pd.read_parquet(data / "audit_outcomes.parquet")
    with pytest.raises(TillitError, match="was already applied"):
        run_feedback(data, decisions, None, TillitConfig(), store)
    pd.testing.assert_frame_equal(pd.read_parquet(data / "audit_outcomes.parquet"), before)
