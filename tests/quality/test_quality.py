"""Quality floors on a simulated municipality with known irregularities (truth is read only here).

Held-out months are judged the way auditors work: at the review capacity (5 % of
the month's invoices), against the one-line rule "billed over registered hours".
"""

from __future__ import annotations

import pandas as pd
import pytest

from tillit.config import FeatureConfig, ReviewConfig, SimulationConfig, TrainingConfig
from tillit.data.validate import validate_tables
from tillit.modelling.train import train
from tillit.simulate import SCHEMES, simulate


@pytest.fixture(scope="module")
def trained():
    world = simulate(SimulationConfig(clients=1000, months=6, seed=3))
    tables = validate_tables(world.tables).tables
    config = TrainingConfig(rolling_eval_months=1)
    result = train(tables, config, FeatureConfig(), ReviewConfig(), world.truth)
    return tables, world, result


def test_two_held_out_months_are_judged_on_truth(trained):
    _, _, result = trained
    months = [result.evaluation.period] + [e.period for e in result.rolling]
    assert months == ["2025-05", "2025-04"]
    assert {e.basis for e in [result.evaluation, *result.rolling]} == {"truth"}


@pytest.mark.parametrize("which", [0, 1])
def test_combined_risk_clearly_beats_the_one_line_rule(trained, which):
    _, _, result = trained
    m = [result.evaluation, *result.rolling][which].metrics
    assert m["combined_average_precision"] >= 0.75
    assert m["combined_recall_at_k"] >= 0.75
    assert (
        m["combined_average_precision"] >= m["rule_billed_over_registered_average_precision"] + 0.3
    )
    assert m["combined_recall_at_k"] >= m["rule_billed_over_registered_recall_at_k"] + 0.3
    assert m["combined_money_caught_at_k"] >= 0.8


@pytest.mark.parametrize("scorer", ["isolation_forest", "lightgbm"])
def test_each_scorer_alone_is_far_above_chance(trained, scorer):
    _, _, result = trained
    for evaluation in [result.evaluation, *result.rolling]:
        m = evaluation.metrics
        prevalence = m[f"{scorer}_n_positive"] / m[f"{scorer}_n"]
        assert m[f"{scorer}_average_precision"] >= 5 * prevalence
        assert m[f"{scorer}_roc_auc"] >= 0.85


def test_every_scheme_is_found_in_the_top_k_at_a_useful_rate(trained):
    _, _, result = trained
    found = []
    for evaluation in [result.evaluation, *result.rolling]:
        scored = evaluation.scored
        top = scored.nlargest(evaluation.k, "combined").index
        found.append(scored.assign(in_top_k=scored.index.isin(top))[scored["label"] == 1])
    pooled = pd.concat(found).groupby("scheme")["in_top_k"].agg(["mean", "size"])
    assert set(pooled.index) == set(SCHEMES)
    for scheme, row in pooled.iterrows():
        assert row["mean"] >= 0.6, f"{scheme}: {row['mean']:.2f} of {row['size']} in the top k"


def test_without_truth_the_evaluation_uses_audit_outcomes_and_says_so(trained):
    tables, _, _ = trained
    result = train(tables, TrainingConfig(), FeatureConfig(), ReviewConfig(), truth=None)
    assert result.evaluation.basis == "audit_outcomes"
    reviewed = result.evaluation.scored
    labelled = tables["audit_outcomes"]["invoice_id"]
    assert reviewed["invoice_id"].isin(labelled).all()
    assert result.evaluation.metrics["reviews_random_check_n"] > 0
    assert 0 <= result.evaluation.metrics["reviews_random_check_confirmed_share"] <= 1
