"""The table mode's blend weight: chosen on rows the evaluation does not judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_tables import CARD as TABLE_CARD
from tests.unit.test_tables import train_plain_table
from tillit.config import TrainingConfig, ValidationConfig
from tillit.tables.features import entity_history
from tillit.tables.simulate import simulate_table
from tillit.tables.spec import SpecError, check_table, parse_spec
from tillit.tables.train import choose_supervised_weight, train_table

CARD = {**TABLE_CARD, "capacity": {"capacity_share": 0.02, "capacity_count": None}}


def _labels(n_confirmed: int, n_cleared: int) -> np.ndarray:
    return np.r_[np.ones(n_confirmed), np.zeros(n_cleared)]


def test_weight_goes_to_the_scorer_that_ranks_the_confirmed_rows_first() -> None:
    y = _labels(10, 30)
    knows = np.r_[np.linspace(0.91, 1.0, 10), np.linspace(0.0, 0.9, 30)]
    blind = np.r_[np.linspace(0.0, 0.09, 10), np.linspace(0.1, 1.0, 30)]
    supervised = choose_supervised_weight(y, blind, knows, 0.5, "the test rows")
    assert supervised.weight == 1.0
    assert "average precision 1.000 there" in supervised.basis
    assert "10 confirmed rows" in supervised.basis
    unsupervised = choose_supervised_weight(y, knows, blind, 0.5, "the test rows")
    assert unsupervised.weight == 0.0


def test_ties_go_to_the_configured_weight_and_few_labels_keep_it() -> None:
    y = _labels(10, 30)
    same = np.r_[np.linspace(0.91, 1.0, 10), np.linspace(0.0, 0.9, 30)]
    assert choose_supervised_weight(y, same, same, 0.3, "x").weight == 0.3
    few = choose_supervised_weight(_labels(9, 30), same[1:], same[1:], 0.5, "the window")
    assert few.weight == 0.5
    assert "9 confirmed and 30 cleared rows in the window are too few" in few.basis
    no_scorer = choose_supervised_weight(_labels(10, 30), same, np.full(40, np.nan), 0.5, "x")
    assert no_scorer.weight == 0.5
    assert "do not hold both confirmed and cleared rows" in no_scorer.basis


def test_unreviewed_rows_and_missing_supervised_scores_are_left_out() -> None:
    y = np.r_[_labels(10, 30), np.full(5, np.nan)]
    gbm = np.r_[np.linspace(0.91, 1.0, 10), np.linspace(0.0, 0.9, 30), np.ones(5)]
    iso = np.r_[np.linspace(0.0, 0.09, 10), np.linspace(0.1, 1.0, 30), np.ones(5)]
    assert choose_supervised_weight(y, iso, gbm, 0.5, "x").weight == 1.0


@pytest.mark.parametrize("value", [1.5, -0.1, "half"])
def test_a_bad_weight_in_the_spec_is_named(value: object) -> None:
    with pytest.raises(SpecError, match="key 'supervised_weight'"):
        parse_spec({"name": "t", "id": "row", "supervised_weight": value})


@pytest.fixture(scope="module")
def cards() -> pd.DataFrame:
    spec = parse_spec(CARD)
    return check_table(
        simulate_table("card-payments", 20000, seed=7), spec, ValidationConfig()
    ).tables["cards"]


def test_time_split_chooses_on_the_end_of_the_training_window(cards: pd.DataFrame) -> None:
    spec = parse_spec(CARD)
    result = train_table(cards, entity_history(cards, spec), spec, TrainingConfig())
    held_first = result.evaluation.period.split("..")[0]
    # The rows it chose on end before the held-out window starts.
    chosen_on = result.blend.basis.split("chosen on ")[1].split(" (the end")[0]
    assert chosen_on.split("..")[1] < held_first
    assert result.model.supervised_weight == result.blend.weight
    assert result.model.evaluation["supervised_weight"] == result.blend.weight
    m = result.evaluation.metrics
    # The chosen blend is judged on later rows: it must not fall far below either scorer.
    best_alone = max(m["lightgbm_average_precision"], m["isolation_forest_average_precision"])
    assert m["combined_average_precision"] >= 0.8 * best_alone


def test_a_weight_set_in_the_spec_is_used_as_it_is(cards: pd.DataFrame) -> None:
    spec = parse_spec({**CARD, "supervised_weight": 0.2})
    result = train_table(cards, entity_history(cards, spec), spec, TrainingConfig())
    assert result.blend.weight == 0.2
    assert result.blend.basis == "0.2 (set in the spec)"
    assert result.model.supervised_weight == 0.2


def test_cross_validation_chooses_each_folds_weight_without_that_fold() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4))
    y = np.zeros(1500)
    y[:60] = 1
    # The confirmed rows differ in a way only labels reveal: an ordinary-looking shift.
    X[:60, 0] += 1.5
    result = train_plain_table(X, y)
    m = result.evaluation.metrics
    assert "the out-of-fold scores of every labelled row" in result.blend.basis
    assert result.blend.weight >= 0.5
    assert m["combined_average_precision"] >= m["isolation_forest_average_precision"]
