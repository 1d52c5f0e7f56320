"""The whole monthly cycle through the real CLI: score, review, feed back, retrain, score the next month.

simulate -> train -> promote -> score month M -> auditors decide every flagged invoice
(random checks included) -> feedback -> retrain -> promote -> score M+1 -> the audit log
holds every step with its hash chain intact, and the retrained model learned from the
decisions, counted by how each reviewed invoice was picked. The first three steps are the
session's trained world (`world_copy`); every step after them is a new `python -m tillit`.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.cli import ok, refused, tillit
from tests.conftest import EXPORT_PERIOD
from tillit.ops.auditlog import read_log

MONTH = "2025-05"
NEXT_MONTH = EXPORT_PERIOD  # the session world's last month
MODEL = "tillit-invoice-risk"


def latest_selection(outcomes: pd.DataFrame) -> dict[str, str]:
    """How each reviewed invoice was picked, by its latest review (later rows win ties)."""
    ordered = outcomes.reset_index(drop=True).reset_index(names="row")
    ordered = ordered.sort_values(["reviewed_on", "row"])
    return dict(zip(ordered["invoice_id"], ordered["selection"].fillna("unknown"), strict=True))


def commands_of_the_invoice_model(records: pd.DataFrame) -> list[str]:
    """The commands of these audit-log records, less the provider model's own (issue 14)."""
    return records.loc[records["model_name"] != "tillit-provider-risk", "command"].tolist()


@pytest.mark.slow
def test_score_review_feed_back_retrain_and_score_the_next_month(world_copy, tmp_path):
    # simulate -> train -> promote: the session's world (seed 11, 300 clients, 6 months),
    # copied; what its promote said, and the log records it left, are checked below.
    data, store = world_copy["data"], world_copy["store"]
    assert "no champion yet" in world_copy["said"]["promote"]
    records_before = len(read_log(store / "audit_log.jsonl"))
    outcomes_before = pd.read_parquet(data / "audit_outcomes.parquet")
    invoices = pd.read_parquet(data / "invoices.parquet")
    truth = pd.read_parquet(data / "truth.parquet").set_index("invoice_id")

    score_m = tmp_path / f"score-{MONTH}"
    ok(
        tillit(
            "score",
            "--data",
            data,
            "--period",
            MONTH,
            "--out",
            score_m,
            "--store",
            store,
            cwd=tmp_path,
        )
    )

    # The auditors decide every flagged invoice of M: confirmed where the simulation says
    # irregular, else cleared; one they did not get to.
    risk_list = pd.read_parquet(score_m / "risk_list.parquet")
    flagged = risk_list[risk_list["flagged"] & (risk_list["status"] == "scored")].reset_index(
        drop=True
    )
    random_checks = set(flagged.loc[flagged["why_flagged"] == "random check", "invoice_id"])
    assert random_checks, "the scoring run drew no random check"
    skipped = flagged.loc[flagged["why_flagged"] != "random check", "invoice_id"].iloc[-1]
    # After every earlier review of these invoices, so the new decisions are the latest.
    decided_on = max(
        invoices.loc[invoices["period"] == MONTH, "submitted_on"].max(),
        outcomes_before["reviewed_on"].max(),
    ) + pd.Timedelta(days=1)
    assert decided_on.date() <= pd.Timestamp.now().date()
    irregular = truth.loc[flagged["invoice_id"], "irregular"].to_numpy()
    decisions = pd.DataFrame(
        {
            "invoice_id": flagged["invoice_id"],
            "decision": ["confirmed" if bad else "cleared" for bad in irregular],
            "recovered_sek": [
                round(float(truth.loc[i, "excess_sek"]), 2) if bad else None
                for i, bad in zip(flagged["invoice_id"], irregular, strict=True)
            ],
            "reviewer": "auditor-1",
            "decided_on": decided_on.strftime("%Y-%m-%d"),
            "note": [
                str(truth.loc[i, "scheme"]) if bad else None
                for i, bad in zip(flagged["invoice_id"], irregular, strict=True)
            ],
        }
    )
    decisions.loc[decisions["invoice_id"] == skipped, ["decision", "recovered_sek", "note"]] = [
        "not_reviewed",
        None,
        None,
    ]
    decisions.to_csv(tmp_path / "decisions.csv", index=False)

    fed = ok(
        tillit(
            "feedback",
            "--data",
            data,
            "--decisions",
            tmp_path / "decisions.csv",
            # The CSV copy of the risk list: its flags are text and must still count.
            "--risk-list",
            score_m / "risk_list.csv",
            "--store",
            store,
            cwd=tmp_path,
        )
    )
    n = len(decisions)
    assert (
        f"{n} decisions read: {n} accepted ({len(random_checks)} on random checks), 0 rejected; "
        f"{n - 1} outcomes appended to {data / 'audit_outcomes.parquet'}"
    ) in fed.stdout
    outcomes_after = pd.read_parquet(data / "audit_outcomes.parquet")
    assert len(outcomes_after) == len(outcomes_before) + n - 1
    pd.testing.assert_frame_equal(
        outcomes_after.iloc[: len(outcomes_before)].drop(columns="selection"),
        outcomes_before.drop(columns="selection"),
    )
    new_rows = outcomes_after.iloc[len(outcomes_before) :]
    assert set(new_rows.loc[new_rows["selection"] == "random_check", "invoice_id"]) == random_checks
    assert (
        new_rows.loc[~new_rows["invoice_id"].isin(random_checks), "selection"] == "flagged"
    ).all()
    assert skipped not in set(new_rows["invoice_id"])
    assert len(pd.read_parquet(data / "decision_log.parquet")) == n

    ok(tillit("train", "--data", data, "--store", store, cwd=tmp_path))
    # The retrained model learned from May's decisions, and no later month has outcomes
    # yet: nothing neither model learned from to compare on, and the held-out figures
    # are on different data (the decisions were added). It waits, and says why.
    refused(
        tillit("promote", "--data", data, "--store", store, cwd=tmp_path),
        "cannot compare like with like: no month with audit outcomes that neither model "
        "learned from: the challenger (version 2) was trained on months up to 2025-05, the "
        "champion (version 1) up to 2025-05, and the data's audit outcomes reach 2025-05",
    )
    score_next = tmp_path / f"score-{NEXT_MONTH}"
    scored_next = ok(
        tillit(
            "score",
            "--data",
            data,
            "--period",
            NEXT_MONTH,
            "--out",
            score_next,
            "--store",
            store,
            cwd=tmp_path,
        )
    )
    assert "flagged for review" in scored_next.stdout
    next_list = pd.read_parquet(score_next / "risk_list.parquet")
    assert set(next_list["period"]) == {NEXT_MONTH}
    assert next_list["model_version"].iloc[0] == "1"

    shown = ok(tillit("log", "--store", store, cwd=tmp_path)).stdout
    assert "hash chain intact" in shown
    logged = read_log(store / "audit_log.jsonl")
    # The provider model's train and promote records (issue 14) have their own model name.
    records = logged[logged["model_name"] != "tillit-provider-risk"].reset_index(drop=True)
    world_part, ours = logged.iloc[:records_before], logged.iloc[records_before:]
    # The world's train and promote; after them, the world's scores of its last month.
    assert commands_of_the_invoice_model(world_part)[:2] == ["train", "promote"]
    assert commands_of_the_invoice_model(ours) == ["score", "feedback", "train", "promote", "score"]
    for command in ("train", "promote", "score", "feedback"):
        assert f" {command} " in shown
    for version in ("1", "2"):
        for suffix in ("md", "html"):
            assert (store / "model_cards" / f"{MODEL}-v{version}.{suffix}").is_file()

    # The retrained model learned from the decisions, counted by how each was picked.
    second_train = records[records["command"] == "train"].iloc[-1]
    counts, eval_period = second_train["counts"], second_train["details"]["eval_period"]
    assert eval_period == MONTH
    selection = latest_selection(outcomes_before)
    reviewed = decisions[decisions["decision"] != "not_reviewed"]
    for invoice_id in reviewed["invoice_id"]:
        selection[invoice_id] = "random_check" if invoice_id in random_checks else "flagged"
    trained = set(invoices.loc[invoices["period"] <= eval_period, "invoice_id"])
    expected = pd.Series({i: s for i, s in selection.items() if i in trained}).value_counts()
    assert counts["labelled"] == int(expected.sum())
    assert (
        counts["labelled_flagged"] == int(expected["flagged"]) == len(reviewed) - len(random_checks)
    )
    assert counts["labelled_random_check"] == int(expected["random_check"])
    first_train = records[records["command"] == "train"].iloc[0]["counts"]
    assert "labelled_flagged" not in first_train
    assert counts["labelled_random_check"] > first_train["labelled_random_check"]
