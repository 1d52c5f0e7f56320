"""The combined risk: percentiles, blend, hard findings first, feature checks, capacity."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from tillit.config import BlendConfig, ReviewConfig
from tillit.modelling.risk_model import (
    FeatureMismatchError,
    fit_risk_model,
    percentile_rank,
    scorer_weights,
    supervised_share,
)


class ColumnScorer:
    """A stand-in scorer whose score is one feature column: makes the blend checkable by hand."""

    def __init__(self, column: str) -> None:
        self.column = column

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy()


def _features(a: list[float], b: list[float], findings: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"a": a, "b": b, "hard_finding_count": [float(f) for f in findings]})


def _model(reference: pd.DataFrame, weight: float = 0.5, rule: str = "mean"):
    return fit_risk_model(
        ColumnScorer("a"),
        ColumnScorer("b"),
        reference,
        ("a", "b", "hard_finding_count"),
        ("a", "b", "hard_finding_count"),
        BlendConfig(
            supervised_weight=weight,
            noisy_or_supervised_weight=weight,
            finding_floor=0.9,
            blend_rule=rule,
        ),
        ("2025-01",),
        "1.1",
    )


def test_percentiles_blend_and_floor_by_hand():
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    model = _model(reference, weight=0.75)
    parts = model.components(_features([3, 4, 0], [10, 40, 50], [0, 0, 1]))
    # a=3: one reference below, one equal -> (2 + 3) / 8 = 0.625; b=10 -> (0 + 1) / 8 = 0.125
    assert parts["isolation_forest_percentile"].tolist() == [0.625, 0.875, 0.0]
    assert parts["lightgbm_percentile"].tolist() == [0.125, 0.875, 1.0]
    blend = [0.75 * 0.125 + 0.25 * 0.625, 0.875, 0.75]
    assert parts["blend"].tolist() == pytest.approx(blend)
    assert parts["risk_score"].tolist() == pytest.approx(
        [0.9 * blend[0], 0.9 * 0.875, 0.9 + 0.1 * 0.75]
    )


def test_noisy_or_blend_by_hand():
    """1 - (1 - a)^w (1 - b)^(1 - w): far into one side's tail counts more than both halfway."""
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    model = _model(reference, weight=0.75, rule="noisy_or")
    parts = model.components(_features([3, 4, 0, 4], [10, 40, 50, 50], [0, 0, 1, 0]))

    # percentiles as in the mean's test: LightGBM (b) 0.125, 0.875, 1, 1; forest (a) 0.625,
    # 0.875, 0, 0.875 (no tail scorer: the label-free side is the forest)
    # Each side is squeezed by 1e-6 below 1, so a percentile of 1 (beyond every training
    # invoice) still lets the other side order: rows 3 and 4 do not tie (by invoice id).
    def noisy_or(a: float, b: float, gap: float = 1e-6) -> float:
        return 1 - (1 - a * (1 - gap)) ** 0.75 * (1 - b * (1 - gap)) ** 0.25

    blend = [noisy_or(0.125, 0.625), noisy_or(0.875, 0.875), noisy_or(1, 0), noisy_or(1, 0.875)]
    assert parts["blend"].tolist() == pytest.approx(blend, rel=0, abs=1e-12)
    assert blend[1] == pytest.approx(0.875, abs=1e-6) and blend[2] < blend[3] < 1
    # without a finding below the floor (0.9), with one in [0.9, 1]
    assert parts["risk_score"].tolist() == pytest.approx(
        [0.9 * blend[0], 0.9 * blend[1], 0.9 + 0.1 * blend[2], 0.9 * blend[3]], rel=0, abs=1e-12
    )
    assert parts["risk_score"].iloc[3] < 0.9
    # the mean of the same percentiles ranks the first invoice lower: 0.25 vs 0.292
    assert 0.75 * 0.125 + 0.25 * 0.625 == 0.25 < blend[0] == pytest.approx(0.29203, abs=1e-5)


def _pickled_before(model, *fields: str):
    """The model as unpickled from a release whose BlendConfig had none of `fields`."""
    for name in fields:  # what that release's pickle held: neither the value nor the key set
        del model.blend.__dict__[name]
        model.blend.__pydantic_fields_set__.discard(name)
    return pickle.loads(pickle.dumps(model))


def test_a_blend_pickled_before_the_rule_scores_by_the_mean():
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    old = _pickled_before(
        _model(reference, weight=0.75, rule="noisy_or"),
        "blend_rule",
        "noisy_or_supervised_weight",
    )
    # Each field read directly, not only through rule_and_weight (an AttributeError before).
    assert (old.blend.blend_rule, old.blend.noisy_or_supervised_weight) == ("mean", 0.75)
    assert old.blend.rule_and_weight() == ("mean", 0.75)
    mean = _model(reference, weight=0.75, rule="mean")
    batch = _features([3, 4, 0], [10, 40, 50], [0, 0, 1])
    assert old.risk(batch).tolist() == mean.risk(batch).tolist()


def test_a_noisy_or_pickled_before_its_own_weight_keeps_the_weight_it_had():
    """Between the rule and its own key (2f0dce3..99b4113) noisy-or read `supervised_weight`."""
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    old = _pickled_before(
        _model(reference, weight=0.3, rule="noisy_or"), "noisy_or_supervised_weight"
    )
    assert old.blend.rule_and_weight() == ("noisy_or", 0.3)
    same = _model(reference, weight=0.3, rule="noisy_or")
    batch = _features([3, 4, 0], [10, 40, 50], [0, 0, 1])
    assert old.risk(batch).tolist() == same.risk(batch).tolist()
    assert old.risk(batch).tolist() != _model(reference, weight=0.3).risk(batch).tolist()


def test_a_blend_pickled_today_reads_back_as_it_was():
    blend = BlendConfig(blend_rule="noisy_or", supervised_weight=0.5)
    again = pickle.loads(pickle.dumps(blend))
    assert again == blend and again.rule_and_weight() == ("noisy_or", 0.45)


def test_reason_weights_are_each_sides_share_of_the_noisy_or_by_hand():
    """-log(1 - blend) = w (-log(1 - a)) + (1 - w) (-log(1 - b)): LightGBM's share is its term."""
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    model = _model(reference, weight=0.75, rule="noisy_or")
    parts = model.components(_features([3, 4, 0, 4, 0], [10, 40, 50, 50, 0], [0, 0, 1, 0, 0]))
    # LightGBM (b) 0.125, 0.875, 1, 1, 0; the label-free side (a, the forest alone) 0.625,
    # 0.875, 0, 0.875, 0 (as in the blend's test above, and a row at 0 on both sides)
    assert parts["lightgbm_percentile"].tolist() == [0.125, 0.875, 1.0, 1.0, 0.0]
    assert parts["label_free_percentile"].tolist() == [0.625, 0.875, 0.0, 0.875, 0.0]
    weights = model.reason_weights(parts)
    assert set(weights) == {"lightgbm", "isolation_forest"}
    lightgbm = weights["lightgbm"]
    assert isinstance(lightgbm, pd.Series) and lightgbm.index.equals(parts.index)

    def term(percentile: float, weight: float) -> float:  # squeezed by 1e-6 as the blend is
        return weight * -np.log(1 - percentile * (1 - 1e-6))

    first = term(0.125, 0.75) / (term(0.125, 0.75) + term(0.625, 0.25))
    fourth = term(1, 0.75) / (term(1, 0.75) + term(0.875, 0.25))
    # 0.100148 / (0.100148 + 0.245207); equal percentiles: the weight; one side at 0: the
    # other side all; both at 0 (blend 0): the weight
    assert first == pytest.approx(0.289987, abs=1e-6)
    assert fourth == pytest.approx(0.952225, abs=1e-6)
    expected = [first, 0.75, 1.0, fourth, 0.75]
    assert lightgbm.tolist() == pytest.approx(expected, rel=1e-12, abs=0)
    assert (weights["lightgbm"] + weights["isolation_forest"]).tolist() == pytest.approx([1.0] * 5)
    # the shares decompose the blend: share * -log(1 - blend) is LightGBM's term
    blend = parts["blend"].to_numpy()
    assert (lightgbm.to_numpy()[:4] * -np.log1p(-blend[:4])).tolist() == pytest.approx(
        [term(0.125, 0.75), term(0.875, 0.75), term(1, 0.75), term(1, 0.75)], rel=1e-9
    )


def test_reason_weights_of_the_mean_are_the_fixed_weights():
    """The mean, and a model pickled before the rule, weigh every row as the blend does."""
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    batch = _features([3, 4, 0], [10, 40, 50], [0, 0, 1])
    old = _pickled_before(
        _model(reference, weight=0.75, rule="noisy_or"),
        "blend_rule",
        "noisy_or_supervised_weight",
    )
    for model in (_model(reference, weight=0.75, rule="mean"), old):
        weights = model.reason_weights(model.components(batch))
        assert weights == {"lightgbm": 0.75, "isolation_forest": 0.25}
        assert all(type(w) is float for w in weights.values())


def test_scorer_weights_split_the_label_free_share_as_the_mix():
    share = np.array([0.2, 0.45])
    weights = scorer_weights(share, {"isolation_forest": 0.1, "tail_probability": 0.9})
    assert weights["lightgbm"] is share
    assert weights["isolation_forest"].tolist() == pytest.approx([0.08, 0.055], abs=1e-15)
    assert weights["tail_probability"].tolist() == pytest.approx([0.72, 0.495], abs=1e-15)
    # the mean's weight as a number: exactly the numbers the reasons used before
    assert scorer_weights(0.45, {"isolation_forest": 0.1, "tail_probability": 0.9}) == {
        "lightgbm": 0.45,
        "isolation_forest": (1.0 - 0.45) * 0.1,
        "tail_probability": (1.0 - 0.45) * 0.9,
    }


def test_supervised_share_keeps_the_weight_where_the_blend_says_nothing():
    """Percentiles at 1 give a finite term (the blend's squeeze); blend 0 or no number: the weight."""
    a = np.array([1.0, 1.0, 0.0, np.nan, 0.5])
    b = np.array([1.0, 0.0, 0.0, 0.5, 0.999])
    share = supervised_share(a, b, 0.45, "noisy_or")
    assert np.isfinite(share).all()
    assert share[:4].tolist() == [0.45, 1.0, 0.45, 0.45]
    # deep in the label-free tail, middling on LightGBM: 0.45 * 0.693 / (0.312 + 0.55 * 6.908)
    assert share[4] == pytest.approx(0.075880, abs=1e-6)
    assert supervised_share(a, b, 0.45, "mean") == 0.45
    with pytest.raises(ValueError, match="unknown blend rule"):
        supervised_share(a, b, 0.45, "max")


def test_every_hard_finding_ranks_above_every_other_invoice():
    rng = np.random.default_rng(0)
    reference = _features(rng.normal(size=200).tolist(), rng.normal(size=200).tolist(), [0] * 200)
    model = _model(reference)
    findings = [1 if i % 7 == 0 else 0 for i in range(100)]
    batch = _features(
        (rng.normal(size=100) * 3).tolist(), (rng.normal(size=100) * 3).tolist(), findings
    )
    risk = model.risk(batch)
    assert ((risk >= 0) & (risk <= 1)).all()
    has = np.asarray(findings) > 0
    assert risk[has].min() >= 0.9 > risk[~has].max()


def test_features_other_than_training_are_refused():
    model = _model(_features([1, 2], [1, 2], [0, 0]))
    with pytest.raises(FeatureMismatchError, match="missing b"):
        model.risk(pd.DataFrame({"a": [1.0], "hard_finding_count": [0.0]}))


@pytest.mark.parametrize(
    ("share", "count", "n", "k", "random"),
    [
        (0.05, None, 1000, 50, 5),
        (0.05, None, 10, 1, 1),
        (0.07, None, 100, 7, 1),  # 0.07 * 100 is 7.000000000000001 in floating point
        (0.07, None, 101, 8, 1),  # 7.07 rounds up: capacity is whole invoices
        (None, 30, 1000, 30, 3),
        (None, 30, 12, 12, 1),
    ],
)
def test_capacity(share, count, n, k, random):
    review = ReviewConfig(capacity_share=share, capacity_count=count)
    assert review.k(n) == k
    assert review.random_checks(n) == random


def test_capacity_needs_exactly_one_setting():
    with pytest.raises(ValueError, match="exactly one"):
        ReviewConfig(capacity_share=0.05, capacity_count=10)


def test_percentile_rank_gives_ties_the_mid_rank():
    reference = np.array([0.1, 0.2, 0.2, 0.4])
    ranks = percentile_rank(reference, np.array([0.05, 0.2, 0.3, 0.9]))
    np.testing.assert_array_equal(ranks, [0.0, 0.5, 0.75, 1.0])


class OnlyColumnsScorer(ColumnScorer):
    """A stand-in that refuses any frame other than exactly its columns (as LightGBM does)."""

    def __init__(self, column: str, columns: tuple[str, ...]) -> None:
        super().__init__(column)
        self.columns = columns

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        assert tuple(X.columns) == self.columns, tuple(X.columns)
        return super().risk_score(X)


def test_lightgbm_sees_only_its_own_columns_and_findings_still_rank_first():
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 1])
    model = fit_risk_model(
        ColumnScorer("a"),
        OnlyColumnsScorer("b", ("a", "b")),
        reference,
        ("a", "b", "hard_finding_count"),
        ("a", "b", "hard_finding_count"),
        BlendConfig(supervised_weight=0.75, finding_floor=0.9, blend_rule="mean"),
        ("2025-01",),
        "1.1",
        lightgbm_columns=("a", "b"),
    )
    assert model.lightgbm_columns == ("a", "b")
    parts = model.components(_features([3, 4, 0], [10, 40, 50], [0, 0, 1]))
    assert parts["lightgbm_percentile"].tolist() == [0.125, 0.875, 1.0]
    assert parts["risk_score"].tolist() == pytest.approx(
        [0.9 * (0.75 * 0.125 + 0.25 * 0.625), 0.9 * 0.875, 0.9 + 0.1 * 0.75]
    )


def test_a_model_without_its_own_lightgbm_columns_scores_as_before():
    """Every column given (or none, as on models pickled before the list) keeps None: all."""
    reference = _features([1, 2, 3, 4], [10, 20, 30, 40], [0, 0, 0, 0])
    columns = ("a", "b", "hard_finding_count")
    same = fit_risk_model(
        ColumnScorer("a"),
        OnlyColumnsScorer("b", columns),
        reference,
        columns,
        columns,
        BlendConfig(supervised_weight=0.75, finding_floor=0.9, blend_rule="mean"),
        ("2025-01",),
        "1.1",
        lightgbm_columns=columns,
    )
    assert same.lightgbm_columns is None
    old = _model(reference, weight=0.75)
    del old.__dict__["lightgbm_columns"]  # as unpickled from before the field existed
    batch = _features([3, 4, 0], [10, 40, 50], [0, 0, 1])
    assert old.risk(batch).tolist() == same.risk(batch).tolist()


def test_lightgbm_columns_leave_out_the_finding_flags_and_count_when_asked():
    from tillit.config import TrainingConfig
    from tillit.modelling.train import lightgbm_columns

    columns = ("a", "finding_after_death", "hard_finding_count", "b")
    assert lightgbm_columns(columns, TrainingConfig()) == ("a", "b")
    every = TrainingConfig(lightgbm_without_findings=False)
    assert lightgbm_columns(columns, every) == columns
