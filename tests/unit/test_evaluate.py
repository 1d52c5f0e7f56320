"""Unit tests for review-capacity metrics on hand-made rankings with known answers."""

import math

import numpy as np
import pytest

from tillit.modelling.evaluate import (
    money_caught_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    top_k_mask,
)

SCORES = [0.9, 0.8, 0.7, 0.1]
LABELS = [1, 0, 1, 0]


# ------------------------------------------------------------------ at k


def test_hand_made_ranking_at_k():
    assert precision_at_k(LABELS, SCORES, 2) == 0.5
    assert recall_at_k(LABELS, SCORES, 2) == 0.5
    assert precision_at_k(LABELS, SCORES, 3) == pytest.approx(2 / 3)
    assert recall_at_k(LABELS, SCORES, 3) == 1.0
    assert precision_at_k(LABELS, SCORES, 1) == 1.0


def test_ties_at_the_kth_position_keep_row_order():
    scores = [0.5, 0.5, 0.5, 0.1]
    labels = [0, 1, 0, 1]
    np.testing.assert_array_equal(top_k_mask(scores, 1), [True, False, False, False])
    assert precision_at_k(labels, scores, 1) == 0.0
    assert precision_at_k(labels, scores, 2) == 0.5
    np.testing.assert_array_equal(top_k_mask([0.1, 0.5, 0.5], 1), [False, True, False])


def test_ties_on_a_long_list_select_the_earliest_rows():
    scores = np.random.default_rng(0).integers(0, 3, size=500).astype(float)
    top_rows = np.flatnonzero(scores == 2.0)
    np.testing.assert_array_equal(np.flatnonzero(top_k_mask(scores, 50)), top_rows[:50])


def test_k_above_the_number_of_rows_reviews_everything():
    assert precision_at_k(LABELS, SCORES, 10) == 0.5
    assert recall_at_k(LABELS, SCORES, 10) == 1.0


def test_money_caught_at_k():
    excess = [100.0, 0.0, 300.0, 600.0]
    assert money_caught_at_k(excess, SCORES, 2) == pytest.approx(0.1)
    assert money_caught_at_k(excess, SCORES, 3) == pytest.approx(0.4)
    assert math.isnan(money_caught_at_k([0.0] * 4, SCORES, 2))
    with pytest.raises(ValueError, match="non-negative"):
        money_caught_at_k([100.0, -1.0, 0.0, 0.0], SCORES, 2)


def test_recall_without_positives_is_nan():
    assert math.isnan(recall_at_k([0, 0, 0, 0], SCORES, 2))
    assert precision_at_k([0, 0, 0, 0], SCORES, 2) == 0.0


@pytest.mark.parametrize(
    ("labels", "scores", "k", "message"),
    [
        (LABELS, [0.9, np.nan, 0.7, 0.1], 2, "finite"),
        ([1, 0, 2, 0], SCORES, 2, "only 1"),
        (LABELS[:3], SCORES, 2, "shape"),
        (LABELS, SCORES, 0, "at least 1"),
        ([], [], 1, "empty"),
    ],
)
def test_bad_inputs_are_refused(labels, scores, k, message):
    with pytest.raises(ValueError, match=message):
        precision_at_k(labels, scores, k)


# ------------------------------------------------------------------ all metrics


def test_ranking_metrics_on_hand_made_ranking():
    metrics = ranking_metrics(LABELS, SCORES, 2, excess_sek=[100.0, 0.0, 300.0, 600.0])
    # AP: hits at ranks 1 and 3 -> (1/1 + 2/3) / 2.
    # ROC-AUC: of the 4 (positive, negative) pairs, 0.7 < 0.8 is the only one misordered.
    assert metrics == pytest.approx(
        {
            "precision_at_k": 0.5,
            "recall_at_k": 0.5,
            "money_caught_at_k": 0.1,
            "average_precision": 5 / 6,
            "roc_auc": 0.75,
            "n": 4.0,
            "n_positive": 2.0,
            "k": 2.0,
        }
    )


def test_ranking_metrics_keys_are_fixed_and_nan_safe_with_one_class():
    metrics = ranking_metrics([0, 0, 0, 0], SCORES, 2)
    assert set(metrics) == {
        "precision_at_k",
        "recall_at_k",
        "money_caught_at_k",
        "average_precision",
        "roc_auc",
        "n",
        "n_positive",
        "k",
    }
    for key in ("recall_at_k", "money_caught_at_k", "average_precision", "roc_auc"):
        assert math.isnan(metrics[key])
    assert math.isnan(ranking_metrics([1, 1, 1, 1], SCORES, 2)["roc_auc"])
    assert ranking_metrics(LABELS, SCORES, 9)["k"] == 4.0


def test_ranking_metrics_recall_per_group_uses_the_shared_top_k():
    labels = [1, 1, 1, 0, 1]
    scores = [0.9, 0.8, 0.7, 0.1, 0.05]
    groups = ["ghost_visits", "overbilling", "overbilling", None, "deceased_client"]
    metrics = ranking_metrics(labels, scores, 2, groups=groups)
    assert metrics["recall_at_k_ghost_visits"] == 1.0
    assert metrics["recall_at_k_overbilling"] == 0.5
    assert metrics["recall_at_k_deceased_client"] == 0.0
    assert not any(key.endswith("None") or key.endswith("nan") for key in metrics)
    assert math.isnan(ranking_metrics([0, 1], [0.2, 0.1], 1, groups=["a", "b"])["recall_at_k_a"])
