"""Three months of the monthly loop through the CLI, on a small simulated municipality.

Every step is the command's Typer app run in this process (`tillit_here`: the same
options, messages and exit codes): the loop is what is tested here, and the full cycle
(tests/e2e/test_full_cycle.py) starts each command as a new process.

The municipality's audit history stops at 2025-05. Then, for each of 2025-06, -07
and -08: score the month with the champion, the auditors decide every flagged
invoice (random and list checks included) as the simulation's truth says,
`tillit feedback`, `tillit retrain`. Each retrain judges the challenger trained the
month before on the month whose decisions just came back (neither model learned
from it) and trains the next challenger. The loop must promote at least once, and
the champion's figure on a month neither learned from must not fall.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import ok, refused, tillit_here
from tillit.ops.auditlog import read_log

SEED = 11
CLIENTS = 300
MONTHS = 8
HISTORY_UNTIL = "2025-06"  # audit outcomes on earlier months only
CYCLE = ("2025-06", "2025-07", "2025-08")
MODEL = "tillit-invoice-risk"
TOLERANCE = 0.01  # training.promotion_tolerance


def decide_from_truth(
    risk_list: Path, truth: pd.DataFrame, decided_on: pd.Timestamp
) -> pd.DataFrame:
    """Every flagged invoice decided as the simulation says."""
    listed = pd.read_parquet(risk_list)
    flagged = listed[listed["flagged"] & (listed["status"] == "scored")]
    irregular = truth.loc[flagged["invoice_id"], "irregular"].to_numpy()
    return pd.DataFrame(
        {
            "invoice_id": flagged["invoice_id"].to_numpy(),
            "decision": ["confirmed" if bad else "cleared" for bad in irregular],
            "recovered_sek": [None] * len(flagged),
            "reviewer": "auditor-1",
            "decided_on": decided_on.strftime("%Y-%m-%d"),
        }
    )


def held_out_figure(store: Path, data: Path, version: str, period: str) -> float:
    """A registered version's average precision on one month, judged on truth."""
    from tillit.config import TillitConfig
    from tillit.features import build_features
    from tillit.jobs.common import load_data, read_truth
    from tillit.modelling.train import evaluate_period, review_labels
    from tillit.ops import tracking

    config = TillitConfig()
    client = tracking.connect(store)
    run_id = client.get_model_version(MODEL, version).run_id
    model = tracking.load_risk_model(client, tracking.ModelRef(MODEL, version, run_id))
    tables = load_data(data, config).validation.tables
    features = build_features(tables, period, config.features).features
    labels = review_labels(tables["audit_outcomes"])
    evaluation = evaluate_period(model, features, labels, read_truth(data), config.review)
    return float(evaluation.metrics["combined_average_precision"])


@pytest.mark.slow
def test_three_months_of_the_loop_promote_and_the_champion_does_not_get_worse(tmp_path):
    data, store = tmp_path / "data", tmp_path / "models"
    ok(
        tillit_here(
            "simulate", "--out", data, "--seed", SEED, "--clients", CLIENTS, "--months", MONTHS
        )
    )
    invoices = pd.read_parquet(data / "invoices.parquet")
    period_of = invoices.set_index("invoice_id")["period"]
    outcomes = pd.read_parquet(data / "audit_outcomes.parquet")
    outcomes[outcomes["invoice_id"].map(period_of) < HISTORY_UNTIL].to_parquet(
        data / "audit_outcomes.parquet", index=False
    )
    truth = pd.read_parquet(data / "truth.parquet").set_index("invoice_id")

    first = ok(tillit_here("retrain", "--data", data, "--store", store, "--out", tmp_path / "r0"))
    assert "no champion yet: version 1 becomes champion" in first.stdout

    judged: list[dict[str, object]] = []
    for number, month in enumerate(CYCLE, start=1):
        out = tmp_path / f"score-{month}"
        ok(tillit_here("score", "--data", data, "--period", month, "--out", out, "--store", store))
        decided_on = invoices.loc[invoices["period"] == month, "submitted_on"].max() + pd.Timedelta(
            days=1
        )
        decisions = decide_from_truth(out / "risk_list.parquet", truth, decided_on)
        decisions.to_csv(tmp_path / f"decisions-{month}.csv", index=False)
        ok(
            tillit_here(
                "feedback",
                "--data",
                data,
                "--decisions",
                tmp_path / f"decisions-{month}.csv",
                "--risk-list",
                out / "risk_list.parquet",
                "--store",
                store,
            )
        )
        if number == 2:
            # A challenger (version 2, trained up to 2025-06) waits. Without data nothing
            # can be compared; that is said, not guessed.
            refused(tillit_here("promote", "--store", store), "pass --data DIR")
        retrained = ok(
            tillit_here(
                "retrain", "--data", data, "--store", store, "--out", tmp_path / f"r{month}"
            )
        )
        summary = (tmp_path / f"r{month}" / "summary.md").read_text()
        assert "## Features whose importance moved most" in summary
        assert "| feature | champion | new challenger | change |" in summary
        assert f"Version {number + 1}, trained on 2025-01 to {month}" in summary
        records = read_log(store / "audit_log.jsonl")
        promotes = records[records["command"] == "promote"]
        last = promotes.iloc[-1]["details"]
        if number == 1:
            # Version 1 is champion and challenger: nothing waits to be judged.
            assert "No challenger was waiting to be judged." in summary
            continue
        comparison = last["comparison"]
        assert comparison["period"] == month, comparison
        assert comparison["basis"] == "truth"
        assert comparison["how"] == "scored both models on a month neither learned from"
        assert f"average_precision on {month} (truth)" in retrained.stdout
        judged.append(
            {
                **comparison,
                "promoted": last["promoted"],
                "version": promotes.iloc[-1]["model_version"],
            }
        )

    print("month by month:", json.dumps(judged, indent=1))
    assert any(j["promoted"] for j in judged), judged
    for j in judged:
        if j["promoted"]:
            assert j["challenger_value"] >= j["champion_value"] - TOLERANCE
        else:
            assert j["challenger_value"] <= j["champion_value"] + TOLERANCE

    # The figures, month and rule are on the judged version's tags.
    from tillit.ops import tracking

    client = tracking.connect(store)
    tags = client.get_model_version(MODEL, judged[0]["version"]).tags
    assert tags["promotion_period"] == CYCLE[1]
    assert float(tags["promotion_challenger_value"]) == pytest.approx(
        judged[0]["challenger_value"], abs=1e-6
    )
    assert tags["promotion_rule"].startswith(
        "promote when the challenger is better by more than 0.01"
    )

    # The champion at the end does at least as well as the first one on the last month,
    # which neither learned from.
    champion = tracking.resolve_alias(client, MODEL, tracking.CHAMPION)
    assert champion.version != "1"
    final = held_out_figure(store, data, champion.version, CYCLE[-1])
    initial = held_out_figure(store, data, "1", CYCLE[-1])
    print(
        f"on {CYCLE[-1]}: version 1 {initial:.4f}, champion version {champion.version} {final:.4f}"
    )
    assert final >= initial

    # The registered model has a signature, an input example, and flat artifacts.
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names()[:1] == ["registered_visit_hours"]
    assert info.saved_input_example_info is not None
    listed = {
        a.path
        for a in client.list_artifacts(client.get_model_version(MODEL, "1").run_id, "fairness")
    }
    assert listed == {"fairness/by_group.csv", "fairness/disparity.csv"}
