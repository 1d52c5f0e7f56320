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
from tillit.tables.train import (
    TableTrainingResult,
    choose_supervised_weight,
    purged_time_folds,
    train_table,
)

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


# --------------------------------------------------------------------------- short windows

DAYS = [f"2026-01-{d:02d}" for d in range(1, 31)]
SHORT_WINDOW = {
    "name": "short",
    "id": "row",
    "time": "t",
    "label": "y",
    "label_delay": 7,
    "train": {"from": "2026-01-15", "to": "2026-01-21"},
    "cv_folds": 5,
}
# Small scorers: the choice is what is tested, not their strength.
SMALL = TrainingConfig.model_validate(
    {
        "isolation_forest": {"n_estimators": 50, "max_samples": 128},
        "lightgbm": {"n_estimators": 40, "min_child_samples": 5},
    }
)


def test_purged_folds_leave_the_label_delay_between_learning_and_judging() -> None:
    periods = np.repeat(np.array(DAYS), 2)
    train = np.isin(periods, DAYS[14:21])  # 2026-01-15..21: one week
    folds = purged_time_folds(periods, train, label_delay=7, n_folds=5)
    # Seven days of validation cut into five time-ordered blocks ...
    assert [f.validation_periods for f in folds] == [
        ("2026-01-15", "2026-01-16"),
        ("2026-01-17", "2026-01-18"),
        ("2026-01-19",),
        ("2026-01-20",),
        ("2026-01-21",),
    ]
    # ... each judged by a model of as many days as the window, ending 7 days before it.
    assert [(f.fit_periods[0], f.fit_periods[-1]) for f in folds] == [
        ("2026-01-01", "2026-01-07"),
        ("2026-01-03", "2026-01-09"),
        ("2026-01-05", "2026-01-11"),
        ("2026-01-06", "2026-01-12"),
        ("2026-01-07", "2026-01-13"),
    ]
    for fold in folds:
        assert fold.fit.sum() == 14
        assert set(periods[fold.validation]) == set(fold.validation_periods)
        # Every label learnt from is known (7 days old) when the first validation day starts.
        last_fit = np.datetime64(max(periods[fold.fit]))
        first_judged = np.datetime64(min(periods[fold.validation]))
        assert last_fit + np.timedelta64(7, "D") < first_judged
        assert not (fold.fit & fold.validation).any()


def test_purged_folds_expand_from_the_first_period_and_need_one_to_fit_on() -> None:
    periods = np.array(DAYS[:10])
    train = np.isin(periods, DAYS[:6])
    folds = purged_time_folds(periods, train, label_delay=3, n_folds=5)
    assert [f.validation_periods for f in folds] == [
        ("2026-01-05",),
        ("2026-01-06",),
    ]
    assert [f.fit_periods for f in folds] == [
        ("2026-01-01",),
        ("2026-01-01", "2026-01-02"),
    ]
    assert purged_time_folds(periods, train, label_delay=5, n_folds=5) == []


def _short_window_table(supervised_knows: bool) -> pd.DataFrame:
    """30 days of 40 rows, 4 of them confirmed each day.

    The confirmed rows sit in the middle of `x` (ordinary-looking: only labels reveal
    them), or, with `supervised_knows=False`, from 2026-01-15 on far out instead: a
    new scheme the forest finds by its unusualness while the labels learnt from
    earlier days point at the middle.
    """
    rng = np.random.default_rng(3)
    n_days, per_day = 30, 40
    x = rng.uniform(-3, 3, (n_days, per_day))
    y = np.zeros((n_days, per_day))
    y[:, :4] = 1
    x[:, :4] = rng.uniform(-0.05, 0.05, (n_days, 4))
    if not supervised_knows:
        x[14:, :4] = rng.choice([-1, 1], (n_days - 14, 4)) * rng.uniform(8, 9, (n_days - 14, 4))
    times = np.repeat(np.datetime64("2026-01-01T12:00"), n_days * per_day) + np.repeat(
        np.arange(n_days) * np.timedelta64(1, "D"), per_day
    )
    return pd.DataFrame(
        {"row": [f"r{i}" for i in range(n_days * per_day)], "t": times, "x": x.ravel(),
         "y": y.ravel()}
    )  # fmt: skip


def _train_short(table: pd.DataFrame, training: TrainingConfig = SMALL) -> TableTrainingResult:
    spec = parse_spec(SHORT_WINDOW)
    clean = check_table(table, spec, ValidationConfig()).tables["short"]
    return train_table(clean, entity_history(clean, spec), spec, training)


def test_a_window_too_short_for_a_time_split_chooses_by_purged_folds() -> None:
    knows = _train_short(_short_window_table(supervised_knows=True))
    # Mostly the supervised scorer: a tenth of the forest breaks the ties among its
    # plateaus (the forest alone ranks the ordinary-looking confirmed rows last).
    assert knows.blend.weight == 0.9
    assert knows.blend.basis.startswith(
        "0.9, chosen on purged time-ordered cross-validation inside the training window (the "
        "window is too short for a time split): 5 folds judged on 2026-01-15..2026-01-21, "
        "each fitted on the days ending 7 days before its first day judged (the first fold "
        "on 2026-01-01..2026-01-07) (28 confirmed rows)"
    )
    assert knows.blend.basis.endswith(
        "average precision 0.763 there, against 0.068 for the label-free scorer alone and "
        "0.661 for the supervised one alone"
    )
    assert knows.model.supervised_weight == 0.9
    assert knows.model.evaluation["supervised_weight_basis"] == knows.blend.basis
    assert knows.evaluation.period == "2026-01-29..2026-01-30"


def test_purged_folds_give_the_label_free_scorer_the_weight_when_labels_say_nothing() -> None:
    blind = _train_short(_short_window_table(supervised_knows=False))
    assert blind.blend.weight == 0.0
    assert "5 folds judged on 2026-01-15..2026-01-21" in blind.blend.basis


def test_without_a_fold_or_enough_labels_in_them_the_configured_weight_stands() -> None:
    table = _short_window_table(supervised_knows=True)
    # The window starts on the table's first day: no day has one to learn from 7 days before.
    late = table.assign(t=table["t"] + np.timedelta64(14, "D"))
    none = _train_short(late)
    assert none.blend.weight == 0.5
    assert none.blend.basis == (
        "0.5 (the configured weight: the training window is too short for a time split, and "
        "no day in it has a day to learn from 7 days before it, so purged cross-validation "
        "has no fold)"
    )
    # Two confirmed rows a day in the window: 14 in all, too few once the folds need 10 each.
    sparse = table.copy()
    in_window = sparse["t"].between("2026-01-15", "2026-01-22")
    sparse.loc[in_window & (sparse.index % 40 < 3), "y"] = 0.0
    few = _train_short(sparse)
    assert few.blend.weight == 0.5
    assert few.blend.basis.startswith("0.5 (the configured weight: 7 confirmed and 273 cleared")
    assert few.blend.basis.endswith("are too few to choose one)")


def test_interpolated_percentiles_keep_the_order_of_scores_between_training_rows() -> None:
    from tillit.modelling.risk_model import percentile_rank

    reference = np.array([0.1, 0.2, 0.2, 0.4])
    scores = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.9])
    # Steps: every score strictly between 0.2 and 0.4 gets 0.75, so 0.3 and 0.35 tie.
    stepped = percentile_rank(reference, scores)
    np.testing.assert_array_equal(stepped, [0.0, 0.125, 0.25, 0.5, 0.75, 0.75, 0.875, 1.0])
    # Interpolated: the same at training values and outside their range, lines between.
    lines = percentile_rank(reference, scores, interpolate=True)
    np.testing.assert_allclose(lines, [0.0, 0.125, 0.3125, 0.5, 0.6875, 0.78125, 0.875, 1.0])
