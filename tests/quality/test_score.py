"""Scoring one month with a real small model: counts, ranks, who is flagged and why, explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tillit.config import FeatureConfig, ReviewConfig, SimulationConfig, TrainingConfig
from tillit.data.validate import validate_tables
from tillit.features import FINDING_CODES, build_features
from tillit.i18n import text as i18n_text
from tillit.jobs import LoadedData, period_quarantine
from tillit.modelling.train import train
from tillit.review.score import (
    RISK_LIST_COLUMNS,
    ModelIdentity,
    ScoringConfig,
    score_month,
)
from tillit.simulate import simulate

PERIOD = "2025-06"
IDENTITY = ModelIdentity("tillit-invoice-risk", "7", "run-abc")
REVIEW = ReviewConfig(
    capacity_share=None, capacity_count=10, random_check_share=0.5
)  # k = 10, 5 random checks


def held(*rows: tuple[object, ...]) -> pd.DataFrame:
    columns = [
        "invoice_id",
        "provider_id",
        "client_id",
        "period",
        "service_type",
        "amount_sek",
        "reason",
    ]
    return pd.DataFrame([list(r) for r in rows], columns=columns)


NOTHING_HELD = held()
QUARANTINED = held(
    ("Q-1", "P0001", "C00001", PERIOD, "personal_care", 1500.0, "billed_hours >= 0"),
    ("Q-2", "P0002", "C00002", PERIOD, "home_service", "12 kr", "amount_sek: type: float"),
)


@pytest.fixture(scope="module")
def world():
    """A small simulated municipality, a model trained on its first months, the last month's features."""
    sim = simulate(SimulationConfig(clients=200, months=6, seed=5))
    tables = validate_tables(sim.tables).tables
    result = train(tables, TrainingConfig(), FeatureConfig(), ReviewConfig(), sim.truth)
    feature_set = build_features(tables, PERIOD, FeatureConfig())
    return {"tables": tables, "truth": sim.truth, "model": result.model, "set": feature_set}


@pytest.fixture(scope="module")
def scored(world):
    fs = world["set"]
    return score_month(world["model"], fs.features, fs.findings, QUARANTINED, REVIEW, IDENTITY)


def scored_part(risk_list: pd.DataFrame) -> pd.DataFrame:
    return risk_list[risk_list["status"] == "scored"]


def test_every_invoice_received_is_listed_scored_or_quarantined(world, scored):
    features = world["set"].features
    risk_list, summary = scored.risk_list, scored.summary
    assert list(risk_list.columns) == list(RISK_LIST_COLUMNS)
    assert summary["invoices_scored"] == len(features) == 307
    assert summary["invoices_quarantined"] == 2
    assert summary["invoices_received"] == len(risk_list) == 309
    assert set(risk_list["invoice_id"]) == {*features["invoice_id"], "Q-1", "Q-2"}
    assert risk_list["invoice_id"].is_unique
    assert summary["flagged"] == int(risk_list["flagged"].sum())
    assert summary["flagged_quarantined"] == 2
    assert summary["amount_flagged_sek"] == pytest.approx(
        risk_list.loc[risk_list["flagged"], "amount_sek"].sum(), abs=0.005
    )
    assert summary["amount_total_sek"] == pytest.approx(
        features["amount_sek"].sum() + 1500.0, abs=0.005
    )
    assert set(
        risk_list[["model_name", "model_version", "run_id"]]
        .drop_duplicates()
        .itertuples(index=False)
    ) == {("tillit-invoice-risk", "7", "run-abc")}


def test_quarantined_invoices_come_last_flagged_with_why_they_cannot_be_scored(scored):
    tail = scored.risk_list.tail(2).reset_index(drop=True)
    assert tail["invoice_id"].tolist() == ["Q-1", "Q-2"]
    assert tail["status"].tolist() == ["quarantined", "quarantined"]
    assert tail["rank"].isna().all() and tail["risk_score"].isna().all()
    assert tail["flagged"].tolist() == [True, True]
    assert tail["why_flagged"].tolist() == ["quarantined", "quarantined"]
    assert tail["reasons"].tolist() == [
        "cannot be scored: billed_hours >= 0",
        "cannot be scored: amount_sek: type: float",
    ]
    assert tail["amount_sek"].iloc[0] == 1500.0 and np.isnan(tail["amount_sek"].iloc[1])


def test_ranks_run_from_1_to_n_by_falling_risk_which_is_the_models(world, scored):
    part = scored_part(scored.risk_list)
    assert part["rank"].tolist() == list(range(1, len(part) + 1))
    assert (part["risk_score"].diff().dropna() <= 0).all()
    ties = part[part["risk_score"].duplicated(keep=False)]
    for _, group in ties.groupby("risk_score"):
        assert group["invoice_id"].is_monotonic_increasing
    features = world["set"].features
    expected = pd.Series(world["model"].risk(features), index=features["invoice_id"])
    np.testing.assert_allclose(
        part["risk_score"].to_numpy(), expected.loc[part["invoice_id"]].to_numpy(), atol=1e-12
    )


def test_capacity_findings_and_random_checks_are_flagged_as_configured(world, scored):
    part = scored_part(scored.risk_list).set_index("invoice_id")
    why = part["why_flagged"]
    features = world["set"].features
    finding_ids = set(world["set"].findings["invoice_id"])
    assert finding_ids == set(features.loc[features["hard_finding_count"] > 0, "invoice_id"])
    assert finding_ids
    capacity = set(part.index[part["rank"] <= 10])
    assert set(why.index[why.str.contains("capacity")]) == capacity
    assert set(why.index[why.str.contains("hard finding")]) == finding_ids
    random_checks = set(why.index[why.str.contains("random check")])
    assert len(random_checks) == 5
    # Drawn only among invoices not flagged otherwise, and marked as nothing else.
    assert not random_checks & (capacity | finding_ids)
    assert (why.loc[sorted(random_checks)] == "random check").all()
    assert set(part.index[part["flagged"]]) == capacity | finding_ids | random_checks
    assert (why[~part["flagged"]] == "").all()
    summary = scored.summary
    assert summary["capacity_k"] == 10
    assert summary["flagged_by_capacity"] == 10
    assert summary["flagged_by_hard_finding"] == len(finding_ids)
    assert summary["flagged_by_random_check"] == 5
    assert summary["flagged"] == len(capacity | finding_ids | random_checks) + 2


def test_default_review_capacity_is_5_percent_with_a_tenth_more_at_random(world):
    fs = world["set"]
    month = score_month(
        world["model"], fs.features, fs.findings, NOTHING_HELD, ReviewConfig(), IDENTITY
    )
    assert month.summary["capacity_k"] == 16  # ceil(0.05 * 307)
    assert month.summary["flagged_by_random_check"] == 2  # round(0.1 * 16)
    assert month.summary["invoices_received"] == 307
    none = score_month(
        world["model"],
        fs.features,
        fs.findings,
        NOTHING_HELD,
        ReviewConfig(capacity_share=None, capacity_count=10, random_check_share=0.0),
        IDENTITY,
    )
    assert none.summary["flagged_by_random_check"] == 0
    assert not none.risk_list["why_flagged"].str.contains("random").any()


def _random_ids(month) -> set[str]:
    risk_list = month.risk_list
    return set(risk_list.loc[risk_list["why_flagged"] == "random check", "invoice_id"])


def test_hard_findings_are_flagged_beyond_the_review_capacity(world):
    fs = world["set"]
    one = ReviewConfig(
        capacity_share=None,
        capacity_count=1,
        random_check_share=0.0,
        findings_bound_share_of_capacity=100.0,
    )
    month = score_month(world["model"], fs.features, fs.findings, NOTHING_HELD, one, IDENTITY)
    flagged = month.risk_list[month.risk_list["flagged"]]
    n_findings = fs.findings["invoice_id"].nunique()
    assert n_findings >= 2
    # Findings rank first, so the capacity of one takes the top finding and no more.
    assert flagged["rank"].tolist() == list(range(1, n_findings + 1))
    assert flagged["why_flagged"].tolist() == ["capacity; hard finding"] + ["hard finding"] * (
        n_findings - 1
    )
    assert month.summary["flagged"] == n_findings


def test_findings_beyond_the_bound_stay_listed_but_unflagged(world):
    fs = world["set"]
    one = ReviewConfig(
        capacity_share=None,
        capacity_count=1,
        random_check_share=0.0,
        findings_bound_share_of_capacity=1.0,
    )
    month = score_month(world["model"], fs.features, fs.findings, NOTHING_HELD, one, IDENTITY)
    risk_list = month.risk_list
    n_findings = fs.findings["invoice_id"].nunique()
    assert n_findings >= 3
    # The capacity of one plus a bound of one more finding: two flagged, the rest listed.
    assert risk_list["flagged"].sum() == 2
    beyond = risk_list[risk_list["why_flagged"] == "finding beyond the bound (not flagged)"]
    assert len(beyond) == n_findings - 2
    assert not beyond["flagged"].any()
    assert (beyond["findings"] != "").all()
    assert month.summary["findings_beyond_bound"] == n_findings - 2
    assert month.summary["invoices_with_hard_finding"] == n_findings
    # The one flagged beyond the capacity is the most severe, then the largest amount.
    from tillit.review.triage import FINDING_SEVERITY

    def severity(invoice_id: str) -> int:
        found = fs.findings.loc[fs.findings["invoice_id"] == invoice_id, "finding"]
        return min(FINDING_SEVERITY[c] for c in found)

    extra = risk_list[risk_list["why_flagged"] == "hard finding"].iloc[0]
    for other in beyond.itertuples():
        assert (severity(extra.invoice_id), -extra.amount_sek) <= (
            severity(other.invoice_id),
            -other.amount_sek,
        )


def test_the_random_draw_is_fixed_by_the_period(world, scored):
    fs = world["set"]
    again = score_month(world["model"], fs.features, fs.findings, NOTHING_HELD, REVIEW, IDENTITY)
    assert _random_ids(again) == _random_ids(scored)
    relabelled = fs.features.assign(period="2025-09")
    other = score_month(world["model"], relabelled, fs.findings, NOTHING_HELD, REVIEW, IDENTITY)
    assert _random_ids(other) != _random_ids(scored)

    # Only the draw depends on the period: the ranking and the other flags do not.
    def others(month):
        part = scored_part(month.risk_list)
        return (
            part.loc[part["why_flagged"] != "random check"]
            .loc[part["flagged"], "invoice_id"]
            .tolist()
        )

    assert others(other) == others(scored)


def test_every_hard_finding_is_flagged_with_its_finding_and_evidence(world, scored):
    findings = world["set"].findings
    part = scored_part(scored.risk_list).set_index("invoice_id")
    floor = world["model"].blend.finding_floor
    for invoice_id, group in findings.groupby("invoice_id"):
        row = part.loc[invoice_id]
        assert row["flagged"] and "hard finding" in row["why_flagged"]
        assert row["risk_score"] >= floor
        expected = " | ".join(
            f"{FINDING_CODES[code].rstrip('.')}: {evidence}"
            for code, evidence in sorted(zip(group["finding"], group["evidence"], strict=True))
        )
        assert row["findings"] == expected
    others = part.drop(index=findings["invoice_id"].unique())
    assert (others["findings"] == "").all() and (others["risk_score"] < floor).all()


def test_swedish_scoring_names_findings_and_reasons_in_swedish(world):
    fs = world["set"]
    month = score_month(
        world["model"],
        fs.features,
        fs.findings,
        NOTHING_HELD,
        REVIEW,
        IDENTITY,
        ScoringConfig(language="sv", n_reasons=2),
    )
    flagged = month.risk_list[month.risk_list["flagged"]]
    with_finding = flagged[flagged["findings"] != ""]
    labels = tuple(f"{i18n_text(f'finding.{code}', 'sv')}: " for code in FINDING_CODES)
    for text in with_finding["findings"]:
        assert all(part.startswith(labels) for part in text.split(" | ")), text
    assert (flagged["reasons"].str.count(r" \| ") <= 1).all()
    assert flagged["reasons"].str.contains("typiskt för").any()
    english = "typical|billed|registered|no feature stands out|robust standard|the provider"
    assert not flagged["reasons"].str.contains(english).any()
    # The evidence after each finding's label is Swedish too.
    assert (
        not with_finding["findings"].str.contains(r"\bclient |invoice bills|the other\(s\)").any()
    )


def test_explanations_cover_the_flagged_invoices_and_add_up_per_scorer(world, scored):
    explanations = scored.explanations
    part = scored_part(scored.risk_list)
    assert set(explanations["invoice_id"]) == set(part.loc[part["flagged"], "invoice_id"])
    assert set(explanations["scorer"]) == {"lightgbm", "isolation_forest", "tail_probability"}
    model = world["model"]
    by_scorer = explanations.groupby("scorer")["feature"].agg(set)
    # LightGBM explains the columns it learnt from: by default all but the finding columns.
    assert by_scorer["lightgbm"] == set(model.lightgbm_columns or model.feature_columns)
    assert by_scorer["isolation_forest"] == set(model.isolation_forest_columns)
    assert by_scorer["tail_probability"] == set(model.isolation_forest_columns)
    totals = explanations.groupby(["invoice_id", "scorer"]).agg(
        contributions=("contribution", "sum"),
        base=("base_value", "first"),
        output=("output", "first"),
    )
    assert len(totals) == 3 * part["flagged"].sum()
    np.testing.assert_allclose(
        totals["base"] + totals["contributions"], totals["output"], atol=1e-6
    )
    # The LightGBM output is its log-odds; feature values are the invoice's own.
    features = world["set"].features.set_index("invoice_id")
    gbm = totals.xs("lightgbm", level="scorer")
    X = model.matrix(features.loc[gbm.index].reset_index())
    np.testing.assert_allclose(
        gbm["output"].to_numpy(),
        model.lightgbm.decision_function(model.lightgbm_matrix(X)),
        atol=1e-9,
    )
    # The tail scorer's output is its score: a sum over the forest's columns.
    tail = totals.xs("tail_probability", level="scorer")
    tail_X = model.isolation_forest_matrix(model.matrix(features.loc[tail.index].reset_index()))
    np.testing.assert_allclose(
        tail["output"].to_numpy(), model.tail_probability.risk_score(tail_X), atol=1e-9
    )
    sample = explanations[explanations["feature"] == "billed_over_registered_hours"]
    np.testing.assert_array_equal(
        sample["feature_value"].to_numpy(),
        features.loc[sample["invoice_id"], "billed_over_registered_hours"].to_numpy(),
    )


def test_every_flagged_invoice_has_reasons(scored):
    # That no text names a client or a board person is checked over a messy month's
    # whole output in both languages (tests/quality/test_messy.py).
    part = scored_part(scored.risk_list)
    flagged = part[part["flagged"]]
    assert (flagged["reasons"].str.len() > 0).all()
    assert (part["reasons"].str.count(r" \| ") <= 2).all()  # n_reasons = 3


def test_scoring_is_deterministic(world, scored):
    fs = world["set"]
    again = score_month(world["model"], fs.features, fs.findings, QUARANTINED, REVIEW, IDENTITY)
    pd.testing.assert_frame_equal(again.risk_list, scored.risk_list)
    pd.testing.assert_frame_equal(again.explanations, scored.explanations)
    assert again.summary == pytest.approx(scored.summary, nan_ok=True)


def test_risk_computed_elsewhere_gives_the_same_list_and_reasons(world, scored):
    """On the executors' path only the risk comes back: the reasons' weights are the same."""
    fs = world["set"]
    risk = pd.Series(world["model"].risk(fs.features), index=fs.features["invoice_id"].to_numpy())
    again = score_month(
        world["model"], fs.features, fs.findings, QUARANTINED, REVIEW, IDENTITY, risk_scores=risk
    )
    pd.testing.assert_frame_equal(again.risk_list, scored.risk_list)


def test_input_order_does_not_change_the_result(world, scored):
    fs = world["set"]
    shuffled = fs.features.sample(frac=1.0, random_state=3)
    again = score_month(world["model"], shuffled, fs.findings, QUARANTINED, REVIEW, IDENTITY)
    pd.testing.assert_frame_equal(again.risk_list, scored.risk_list)


def test_a_month_with_every_invoice_quarantined_lists_them_all(world):
    fs = world["set"]
    month = score_month(
        world["model"], fs.features.iloc[0:0], fs.findings.iloc[0:0], QUARANTINED, REVIEW, IDENTITY
    )
    assert month.risk_list["invoice_id"].tolist() == ["Q-1", "Q-2"]
    assert month.summary["invoices_received"] == 2 and month.summary["invoices_scored"] == 0


# ------------------------------------------------------------------ period_quarantine


def _loaded(raw: dict[str, pd.DataFrame]) -> LoadedData:
    return LoadedData(raw=raw, validation=validate_tables(raw), fingerprint="f")


def test_period_quarantine_lists_the_months_quarantined_invoices_with_their_rules(tables):
    extra = tables["invoices"].iloc[[0]].assign(invoice_id="I4", period="2024-12", amount_sek=-1.0)
    raw = {**tables, "invoices": pd.concat([tables["invoices"], extra], ignore_index=True)}
    raw["invoices"].loc[1, "billed_hours"] = -2.0
    raw["invoices"].loc[1, "service_type"] = "massage"
    got = period_quarantine(_loaded(raw), "2025-01")
    assert got.columns.tolist() == [
        "invoice_id",
        "provider_id",
        "client_id",
        "period",
        "service_type",
        "amount_sek",
        "reason",
    ]
    assert got["invoice_id"].tolist() == ["I2"]
    assert got["reason"].tolist() == [
        "billed_hours >= 0; service_type must be one of personal_care, home_service, "
        "double_staffing, night_care"
    ]
    assert got["amount_sek"].tolist() == [600.0]
    assert period_quarantine(_loaded(raw), "2024-12")["reason"].tolist() == ["amount_sek >= 0"]
    assert period_quarantine(_loaded(tables), "2025-01").empty


def test_period_quarantine_names_the_same_rule_broken_in_two_columns(tables):
    raw = {**tables, "invoices": tables["invoices"].copy()}
    raw["invoices"].loc[1, "billed_hours"] = -2.0
    raw["invoices"].loc[1, "amount_sek"] = -600.0
    got = period_quarantine(_loaded(raw), "2025-01")
    assert got["reason"].tolist() == ["amount_sek >= 0; billed_hours >= 0"]


def test_list_checks_are_drawn_by_lot_within_the_capacity_list(world, scored):
    """A stratified sample: random checks outside the list, list checks inside it."""
    part = scored_part(scored.risk_list).set_index("invoice_id")
    why = part["why_flagged"]
    capacity = set(part.index[part["rank"] <= 10])
    list_checks = set(why.index[why.str.contains("list check")])
    assert len(list_checks) == 5 == scored.summary["list_checks"]
    assert list_checks <= capacity
    assert not list_checks & set(why.index[why.str.contains("random check")])
    # They cost no extra review: the flagged set is capacity, findings and random checks.
    assert scored.summary["flagged_by_capacity"] == 10
    fs = world["set"]
    again = score_month(world["model"], fs.features, fs.findings, NOTHING_HELD, REVIEW, IDENTITY)
    assert (
        set(
            again.risk_list.loc[
                again.risk_list["why_flagged"].str.contains("list check"), "invoice_id"
            ]
        )
        == list_checks
    )


def test_a_bag_without_the_finding_columns_scores_explains_and_ranks_findings_first(world):
    """`lightgbm_without_findings` and `lightgbm.n_seeds` carried through scoring (branch lgbm21)."""
    from tillit.config import LightGBMParams
    from tillit.review.plots import feature_importance

    training = TrainingConfig(lightgbm_without_findings=True, lightgbm=LightGBMParams(n_seeds=2))
    # The module's world, trained again with the bag's settings (not simulated again).
    model = train(world["tables"], training, FeatureConfig(), ReviewConfig(), world["truth"]).model
    fs = world["set"]
    assert model.lightgbm_columns == tuple(
        c
        for c in model.feature_columns
        if not c.startswith("finding_") and c != "hard_finding_count"
    )
    assert len(model.lightgbm.boosters()) == 2
    scored = score_month(model, fs.features, fs.findings, NOTHING_HELD, REVIEW, IDENTITY)
    gbm = scored.explanations[scored.explanations["scorer"] == "lightgbm"]
    assert set(gbm["feature"]) == set(model.lightgbm_columns)
    totals = gbm.groupby("invoice_id").agg(
        contributions=("contribution", "sum"),
        base=("base_value", "first"),
        output=("output", "first"),
    )
    np.testing.assert_allclose(
        totals["base"] + totals["contributions"], totals["output"], atol=1e-6
    )
    X = model.lightgbm_matrix(model.matrix(fs.features.set_index("invoice_id").loc[totals.index]))
    np.testing.assert_allclose(totals["output"], model.lightgbm.decision_function(X), atol=1e-9)
    parts = model.components(fs.features)
    floor = model.blend.finding_floor
    assert parts["has_hard_finding"].any()
    assert parts.loc[parts["has_hard_finding"], "risk_score"].min() >= floor
    assert parts.loc[~parts["has_hard_finding"], "risk_score"].max() < floor
    importance = feature_importance(model, fs.features)
    assert importance.loc["hard_finding_count", "lightgbm_gain_share"] == 0.0
    assert importance["lightgbm_gain_share"].sum() == pytest.approx(1.0)
