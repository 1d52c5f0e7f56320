"""Feedback as a controlled record: each way the issue steered feedback, refused or caught.

- a forged `--risk-list` (capacity invoices relabelled as random checks) is refused;
- a later `cleared` that reverses a `confirmed` needs a reason and is marked a reversal;
- the same decision is never appended twice, whatever the bytes of the file;
- the feedback audit record keeps the decisions file's and the risk list's hashes.
The home-care feedback and the table-mode feedback share the controls; both are tried.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests import REPO
from tests.cli import ok, refused, tillit
from tests.unit.test_feedback import issued_risk_list, risk_list
from tillit.config import TillitConfig
from tillit.data.io import file_sha256, read_frame, write_tables
from tillit.errors import TillitError
from tillit.jobs import AUDIT_LOG, run_feedback
from tillit.jobs.table_feedback import run_table_feedback
from tillit.ops.auditlog import read_log, verify_log

COLUMNS = ["invoice_id", "decision", "recovered_sek", "reviewer", "decided_on", "note"]
SPECS = REPO / "configs" / "tables"


@pytest.fixture
def folder(tables, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_tables(tables, data, "parquet")
    return data


def write_decisions(path: Path, rows: list[tuple[object, ...]], **extra: list[object]) -> Path:
    frame = pd.DataFrame([list(r) for r in rows], columns=COLUMNS, dtype="str")
    for column, values in extra.items():
        frame[column] = values
    frame.to_csv(path, index=False)
    return path


def snapshot(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data.iterdir())}


# ------------------------------------------------------------------ the risk list must be tillit's


def test_a_risk_list_edited_after_scoring_is_refused_and_nothing_is_written(folder, tmp_path):
    store = tmp_path / "models"
    issued = issued_risk_list(risk_list(), tmp_path / "score", store)
    decisions = write_decisions(
        tmp_path / "d.csv", [("I2", "confirmed", "300", "anna", "2025-03-10", None)]
    )
    # The attack: the capacity invoice I2 relabelled as a random check.
    forged = read_frame(issued)
    forged.loc[forged["invoice_id"] == "I2", "why_flagged"] = "random check"
    forged.to_csv(issued, index=False)
    before, records = snapshot(folder), len(read_log(store / AUDIT_LOG))
    with pytest.raises(TillitError, match="was changed after tillit wrote it"):
        run_feedback(folder, decisions, issued, TillitConfig(), store)
    # The attacker also rewrites the manifest to fit: the audit log does not know it.
    manifest = tmp_path / "score" / "manifest.json"
    manifest.write_text(json.dumps({"outputs": {"risk_list.csv": file_sha256(issued)}}))
    with pytest.raises(TillitError, match="is not the manifest of a score run recorded"):
        run_feedback(folder, decisions, issued, TillitConfig(), store)
    manifest.unlink()
    with pytest.raises(TillitError, match=r"no manifest\.json beside it"):
        run_feedback(folder, decisions, issued, TillitConfig(), store)
    assert snapshot(folder) == before
    assert len(read_log(store / AUDIT_LOG)) == records  # no feedback record for a refused run


def test_the_risk_list_tillit_wrote_is_accepted_and_its_hashes_are_on_the_record(folder, tmp_path):
    store = tmp_path / "models"
    issued = issued_risk_list(risk_list(), tmp_path / "score", store)
    decisions = write_decisions(
        tmp_path / "d.csv",
        [
            ("I1", "cleared", None, "anna", "2025-03-10", None),
            ("I2", "confirmed", "300", "anna", "2025-03-10", None),
        ],
    )
    outcome = run_feedback(folder, decisions, issued, TillitConfig(), store)
    assert (outcome.accepted, outcome.random_checks) == (2, 1)
    record = read_log(store / AUDIT_LOG).iloc[-1]
    assert record["command"] == "feedback"
    assert record["details"]["decisions_sha256"] == file_sha256(decisions)
    assert record["details"]["risk_list_sha256"] == file_sha256(issued)
    manifest_sha256 = file_sha256(tmp_path / "score" / "manifest.json")
    assert record["details"]["risk_list_manifest_sha256"] == manifest_sha256
    log = read_frame(folder / "decision_log.parquet")
    assert set(log["risk_list_manifest_sha256"]) == {manifest_sha256}
    assert verify_log(store / AUDIT_LOG) == []


# ------------------------------------------------------------------ reversals


def test_a_later_cleared_without_reason_is_refused_and_with_one_is_marked_a_reversal(
    folder, tmp_path
):
    store = tmp_path / "models"
    confirmed = [("I2", "confirmed", "600", "anna", "2025-03-10", "hours not delivered")]
    run_feedback(
        folder, write_decisions(tmp_path / "1.csv", confirmed), None, TillitConfig(), store
    )
    outcomes_before = (folder / "audit_outcomes.parquet").read_bytes()

    cleared = [("I2", "cleared", None, "bo", "2025-04-01", None)]
    silent = run_feedback(
        folder, write_decisions(tmp_path / "2.csv", cleared), None, TillitConfig(), store
    )
    assert silent.accepted == 0 and silent.reversals == 0
    assert silent.rejected_rows["invoice_id"].tolist() == ["I2"]
    assert silent.rejected_rows["reason"].tolist() == [
        "cleared reverses the confirmed decision of 2025-03-10: a reversal needs a reversal_reason"
    ]
    assert (folder / "audit_outcomes.parquet").read_bytes() == outcomes_before

    reasoned = run_feedback(
        folder,
        write_decisions(
            tmp_path / "3.csv", cleared, reversal_reason=["visits found in the app log"]
        ),
        None,
        TillitConfig(),
        store,
    )
    assert (reasoned.accepted, reasoned.reversals) == (1, 1)
    log = read_frame(folder / "decision_log.parquet")
    last = log.iloc[-1]
    assert (last["invoice_id"], last["decision"], bool(last["reversal"])) == ("I2", "cleared", True)
    assert last["reversal_reason"] == "visits found in the app log"
    assert not bool(log.iloc[0]["reversal"])  # the confirmation itself is no reversal
    record = read_log(store / AUDIT_LOG).iloc[-1]
    assert record["counts"]["reversals"] == 1
    assert record["details"]["reversed_invoices"] == ["I2"]
    # Both decisions stay on record; the label follows the reversal.
    outcomes = read_frame(folder / "audit_outcomes.parquet")
    assert outcomes.loc[outcomes["invoice_id"] == "I2", "outcome"].tolist() == [
        "confirmed",
        "cleared",
    ]


def test_a_cleared_dated_before_the_confirmation_reverses_nothing_and_needs_no_reason(
    folder, tmp_path
):
    store = tmp_path / "models"
    confirmed = [("I2", "confirmed", "600", "anna", "2025-03-10", None)]
    run_feedback(
        folder, write_decisions(tmp_path / "1.csv", confirmed), None, TillitConfig(), store
    )
    earlier = [("I2", "cleared", None, "bo", "2025-03-01", None)]
    done = run_feedback(
        folder, write_decisions(tmp_path / "2.csv", earlier), None, TillitConfig(), store
    )
    assert (done.accepted, done.reversals) == (1, 0) and done.rejected_rows.empty


def test_cli_names_the_invoice_of_a_refused_reversal(folder, tmp_path):
    store = tmp_path / "models"
    confirmed = [("I2", "confirmed", "600", "anna", "2025-03-10", None)]
    run_feedback(
        folder, write_decisions(tmp_path / "1.csv", confirmed), None, TillitConfig(), store
    )
    cleared = write_decisions(
        tmp_path / "2.csv", [("I2", "cleared", None, "bo", "2025-04-01", None)]
    )
    done = ok(
        tillit("feedback", "--data", folder, "--decisions", cleared, "--store", store, cwd=tmp_path)
    )
    assert "1 decisions read: 0 accepted (0 on random checks), 1 rejected" in done.stdout
    assert (
        "rejected row 0 (I2): cleared reverses the confirmed decision of 2025-03-10: "
        "a reversal needs a reversal_reason"
    ) in done.stdout


# ------------------------------------------------------------------ no decision twice


@pytest.mark.parametrize(
    "change",
    ["trailing_whitespace", "reordered_rows", "crlf_and_spaces_in_cells"],
)
def test_the_same_decisions_with_other_bytes_append_nothing_and_say_so(folder, tmp_path, change):
    store = tmp_path / "models"
    rows = [
        ("I2", "confirmed", "600", "anna", "2025-03-10", "hours not delivered"),
        ("I3", "cleared", None, "anna", "2025-03-10", None),
    ]
    first = write_decisions(tmp_path / "first.csv", rows)
    run_feedback(folder, first, None, TillitConfig(), store)
    before = snapshot(folder)
    again = tmp_path / "again.csv"
    if change == "trailing_whitespace":
        again.write_bytes(first.read_bytes().replace(b"\n", b" \n"))
    elif change == "reordered_rows":
        write_decisions(again, rows[::-1])
    else:
        text = first.read_text().replace("anna", " anna ").replace("\n", "\r\n")
        again.write_bytes(text.encode())
    assert file_sha256(again) != file_sha256(first)
    done = run_feedback(folder, again, None, TillitConfig(), store)
    assert (done.skipped, done.accepted, done.outcomes_appended) == (2, 0, 0)
    assert done.rejected_rows.empty
    assert snapshot(folder) == before  # recovered SEK is counted once
    assert read_log(store / AUDIT_LOG).iloc[-1]["counts"]["skipped_repeats"] == 2


def test_only_new_decisions_are_appended_and_a_repeat_with_other_money_is_rejected(
    folder, tmp_path
):
    store = tmp_path / "models"
    old = ("I2", "confirmed", "600", "anna", "2025-03-10", None)
    run_feedback(folder, write_decisions(tmp_path / "1.csv", [old]), None, TillitConfig(), store)
    new = ("I3", "cleared", None, "bo", "2025-03-12", None)
    done = run_feedback(
        folder,
        write_decisions(tmp_path / "2.csv", [old, new, new]),  # an exact repeat inside the file too
        None,
        TillitConfig(),
        store,
    )
    assert (done.skipped, done.accepted, done.outcomes_appended) == (2, 1, 1)
    outcomes = read_frame(folder / "audit_outcomes.parquet")
    assert outcomes["recovered_sek"].sum() == 600.0
    more_money = ("I2", "confirmed", "6000", "anna", "2025-03-10", None)
    changed = run_feedback(
        folder, write_decisions(tmp_path / "3.csv", [more_money]), None, TillitConfig(), store
    )
    assert changed.accepted == 0 and changed.skipped == 0
    assert changed.rejected_rows["reason"].tolist() == [
        "already on record with recovered_sek 600.00: a correction is a new decision "
        "with its own decided_on"
    ]


def test_cli_says_how_many_repeats_were_skipped(folder, tmp_path):
    store = tmp_path / "models"
    rows = [("I3", "cleared", None, "anna", "2025-03-10", None)]
    first = write_decisions(tmp_path / "first.csv", rows)
    run_feedback(folder, first, None, TillitConfig(), store)
    again = tmp_path / "again.csv"
    again.write_bytes(first.read_bytes().replace(b"anna", b"anna "))
    done = ok(
        tillit("feedback", "--data", folder, "--decisions", again, "--store", store, cwd=tmp_path)
    )
    assert "1 decisions read: 0 accepted" in done.stdout
    assert "1 decision(s) already on record" in done.stdout and "skipped" in done.stdout


# ------------------------------------------------------------------ table mode: the same controls


@pytest.fixture
def card_table(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    from tillit.tables.simulate import simulate_table

    table = simulate_table("card-payments", 300, seed=5)
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False)
    return path, table


def _table_decisions(path: Path, rows: list[tuple[str, str, str, str]], **extra) -> Path:
    frame = pd.DataFrame(rows, columns=["TRANSACTION_ID", "decision", "reviewer", "decided_on"])
    for column, values in extra.items():
        frame[column] = values
    frame.to_csv(path, index=False)
    return path


def test_table_mode_refuses_a_forged_risk_list(card_table, tmp_path):
    path, table = card_table
    store = tmp_path / "models"
    ids = table["TRANSACTION_ID"].astype(str)
    listed = pd.DataFrame(
        {"TRANSACTION_ID": ids[:3], "why_flagged": ["capacity", "capacity", "random check"]}
    )
    issued = issued_risk_list(listed, tmp_path / "score", store, name="risk_list.parquet")
    forged = listed.assign(why_flagged="random check")
    forged.to_parquet(issued, index=False)
    decisions = _table_decisions(tmp_path / "d.csv", [(ids.iloc[0], "cleared", "r1", "2026-02-10")])
    with pytest.raises(TillitError, match="was changed after tillit wrote it"):
        run_table_feedback(
            path, SPECS / "card-payments.yaml", decisions, issued, TillitConfig(), store
        )
    assert not (tmp_path / "t.decisions.parquet").exists()


def test_table_mode_skips_repeats_and_needs_a_reason_to_clear_a_confirmed_row(card_table, tmp_path):
    path, table = card_table
    store = tmp_path / "models"
    spec = SPECS / "card-payments.yaml"
    fraud = str(table.loc[table["TX_FRAUD"] == 1, "TRANSACTION_ID"].iloc[0])
    honest = str(table.loc[table["TX_FRAUD"] == 0, "TRANSACTION_ID"].iloc[0])
    first = _table_decisions(tmp_path / "1.csv", [(honest, "confirmed", "r1", "2026-02-10")])
    assert run_table_feedback(path, spec, first, None, TillitConfig(), store).accepted == 1
    # One changed byte: the same decision is skipped.
    again = tmp_path / "again.csv"
    again.write_bytes(first.read_bytes() + b"\n")
    repeat = run_table_feedback(path, spec, again, None, TillitConfig(), store)
    assert (repeat.accepted, repeat.skipped) == (0, 1)
    # Clearing a row confirmed in the log, or labelled 1 in the table itself, needs a reason.
    clearing = [(honest, "cleared", "r2", "2026-02-11"), (fraud, "cleared", "r2", "2026-02-11")]
    silent = run_table_feedback(
        path, spec, _table_decisions(tmp_path / "2.csv", clearing), None, TillitConfig(), store
    )
    assert silent.accepted == 0
    assert silent.rejected_rows["TRANSACTION_ID"].tolist() == [honest, fraud]
    assert set(silent.rejected_rows["reason"]) == {
        "cleared reverses a confirmed decision (label 1): a reversal needs a reversal_reason"
    }
    reasoned = run_table_feedback(
        path,
        spec,
        _table_decisions(tmp_path / "3.csv", clearing, reversal_reason=["app log", "refund"]),
        None,
        TillitConfig(),
        store,
    )
    assert (reasoned.accepted, reasoned.reversals) == (2, 2)
    log = pd.read_parquet(tmp_path / "t.decisions.parquet")
    assert log["reversal"].tolist() == [False, True, True]
    assert log["reversal_reason"].tolist()[1:] == ["app log", "refund"]
    record = read_log(store / AUDIT_LOG).iloc[-1]
    assert record["counts"]["reversals"] == 2
    assert record["details"]["decisions_sha256"] == file_sha256(tmp_path / "3.csv")


# ------------------------------------------------------------------ end to end on a scored month


def test_cli_refuses_two_capacity_invoices_relabelled_as_random_checks(trained_export, tmp_path):
    """The issue's attack on a real scoring run's risk list: exit 2, the data untouched."""
    data, store = tmp_path / "data", tmp_path / "models"
    shutil.copytree(trained_export["data"], data)
    store.mkdir()
    shutil.copy(trained_export["store"] / AUDIT_LOG, store / AUDIT_LOG)
    score = tmp_path / "score"
    shutil.copytree(trained_export["reference"], score)
    listed = pd.read_csv(score / "risk_list.csv", dtype=str, keep_default_na=False)
    capacity = listed.index[listed["why_flagged"].str.contains("capacity")][:2]
    assert len(capacity) == 2
    decided_on = str(pd.read_parquet(data / "invoices.parquet")["submitted_on"].max().date())
    decisions = pd.DataFrame(
        {
            "invoice_id": listed.loc[capacity, "invoice_id"].tolist(),
            "decision": ["cleared", "cleared"],
            "recovered_sek": ["", ""],
            "reviewer": ["anna", "anna"],
            "decided_on": [decided_on, decided_on],
        }
    )
    decisions.to_csv(tmp_path / "d.csv", index=False)
    listed.loc[capacity, "why_flagged"] = "random check"
    listed.to_csv(score / "risk_list.csv", index=False)
    before = snapshot(data)
    args = ("feedback", "--data", data, "--decisions", "d.csv", "--store", store)
    refused(
        tillit(*args, "--risk-list", score / "risk_list.csv", cwd=tmp_path),
        "was changed after tillit wrote it",
    )
    assert snapshot(data) == before
    # The list tillit wrote, unchanged, is accepted: the two are flagged, not random checks.
    fed = ok(tillit(*args, "--risk-list", score / "risk_list.parquet", cwd=tmp_path))
    assert "2 decisions read: 2 accepted (0 on random checks), 0 rejected" in fed.stdout
