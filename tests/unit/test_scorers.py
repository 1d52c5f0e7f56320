"""Model tests for the scorers: scikit-learn conventions, bad inputs, planted anomalies."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer, Scorer

FEATURES = [f"feature_{i}" for i in range(8)]


def planted_anomalies(seed: int = 0, n_normal: int = 600, n_far: int = 12):
    """A Gaussian cloud plus a few rows far out on two random features each."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, len(FEATURES)))
    far = rng.normal(size=(n_far, len(FEATURES)))
    for row in far:
        row[rng.choice(len(FEATURES), size=2, replace=False)] += rng.choice([-7.0, 7.0], size=2)
    X = pd.DataFrame(np.vstack([normal, far]), columns=FEATURES)
    y = np.r_[np.zeros(n_normal, dtype=int), np.ones(n_far, dtype=int)]
    return X, y


def planted_rule(seed: int = 0, n: int = 1500):
    """Labelled audits where a confirmed irregularity follows a two-feature rule."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    y = ((X["feature_0"] > 0.8) & (X["feature_3"] > 0.0)).astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def anomalies():
    return planted_anomalies()


@pytest.fixture(scope="module")
def fitted_forest(anomalies):
    X, _ = anomalies
    return IsolationForestScorer(n_estimators=100).fit(X)


@pytest.fixture(scope="module")
def rule():
    return planted_rule()


@pytest.fixture(scope="module")
def fitted_lightgbm(rule):
    X, y = rule
    return LightGBMScorer(n_estimators=150).fit(X.iloc[:1000], y[:1000])


SCORERS = [
    IsolationForestScorer(n_estimators=30, max_samples=64, max_features=0.5, random_state=3),
    LightGBMScorer(n_estimators=30, num_leaves=7, class_weight=None, subsample=0.8),
]


# ------------------------------------------------------------------ conventions


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_clone_round_trips_parameters(scorer):
    copy = clone(scorer)
    assert copy is not scorer
    assert copy.get_params() == scorer.get_params()
    assert not hasattr(copy, "model_")


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_unfitted_scorer_raises_not_fitted(scorer, anomalies):
    X, _ = anomalies
    fresh = clone(scorer)
    with pytest.raises(NotFittedError):
        fresh.risk_score(X)
    with pytest.raises(NotFittedError):
        fresh.decision_function(X)
    assert not isinstance(fresh, Scorer)


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_fitted_scorer_satisfies_protocol_and_learns_attributes(scorer, anomalies):
    X, y = anomalies
    fitted = clone(scorer).fit(X, y)
    assert isinstance(fitted, Scorer)
    assert list(fitted.feature_names_in_) == FEATURES
    assert fitted.n_features_in_ == len(FEATURES)
    scores = fitted.risk_score(X)
    assert scores.shape == (len(X),)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_column_mismatch_names_missing_and_extra_columns(scorer, anomalies):
    X, y = anomalies
    fitted = clone(scorer).fit(X, y)
    renamed = X.rename(columns={"feature_2": "feature_two"})
    with pytest.raises(ValueError, match=r"missing \['feature_2'\], unexpected \['feature_two'\]"):
        fitted.risk_score(renamed)
    with pytest.raises(ValueError, match=r"missing \['feature_7'\]"):
        fitted.risk_score(X.drop(columns="feature_7"))
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        fitted.risk_score(X.assign(extra=1.0))
    with pytest.raises(ValueError, match="different order"):
        fitted.risk_score(X[FEATURES[::-1]])


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_non_finite_or_non_frame_input_is_refused(scorer, anomalies):
    X, y = anomalies
    fitted = clone(scorer).fit(X, y)
    broken = X.copy()
    broken.iloc[3, 5] = np.nan
    with pytest.raises(ValueError, match="feature_5"):
        fitted.risk_score(broken)
    broken.iloc[3, 5] = np.inf
    with pytest.raises(ValueError, match="feature_5"):
        clone(scorer).fit(broken, y)
    with pytest.raises(TypeError, match="DataFrame"):
        fitted.risk_score(X.to_numpy())
    with pytest.raises(ValueError, match="non-numeric"):
        fitted.risk_score(X.assign(feature_1="a"))


@pytest.mark.parametrize("scorer", SCORERS, ids=type)
def test_same_data_and_parameters_give_identical_scores(scorer, anomalies):
    X, y = anomalies
    first = clone(scorer).fit(X, y).risk_score(X)
    second = clone(scorer).fit(X, y).risk_score(X)
    np.testing.assert_array_equal(first, second)


# ------------------------------------------------------------------ Isolation Forest


def test_isolation_forest_ranks_planted_anomalies_first(anomalies, fitted_forest):
    X, y = anomalies
    scores = fitted_forest.risk_score(X)
    assert roc_auc_score(y, scores) >= 0.95
    assert ((scores > 0) & (scores <= 1)).all()


def test_isolation_forest_keeps_sklearn_signs_and_risk_is_their_opposite(anomalies, fitted_forest):
    X, y = anomalies
    sklearn_scores = fitted_forest.model_.score_samples(X.to_numpy())
    np.testing.assert_array_equal(fitted_forest.score_samples(X), sklearn_scores)
    np.testing.assert_array_equal(
        fitted_forest.decision_function(X), fitted_forest.model_.decision_function(X.to_numpy())
    )
    np.testing.assert_array_equal(fitted_forest.risk_score(X), -sklearn_scores)
    # scikit-learn's sign: planted anomalies score *lower* (more abnormal).
    assert roc_auc_score(y, fitted_forest.score_samples(X)) <= 0.05


def test_isolation_forest_caps_max_samples_on_small_tables_without_warning():
    X, _ = planted_anomalies(n_normal=40, n_far=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = IsolationForestScorer(n_estimators=10).fit(X)
    assert fitted.model_.max_samples_ == 42
    assert fitted.get_params()["max_samples"] == 256


def test_fit_refuses_an_empty_table():
    with pytest.raises(ValueError, match="empty"):
        IsolationForestScorer().fit(pd.DataFrame(columns=FEATURES, dtype=float))


# ------------------------------------------------------------------ LightGBM


def test_lightgbm_learns_a_planted_rule(rule, fitted_lightgbm):
    X, y = rule
    scores = fitted_lightgbm.risk_score(X.iloc[1000:])
    assert roc_auc_score(y[1000:], scores) >= 0.95
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_array_equal(fitted_lightgbm.classes_, [0, 1])


def test_lightgbm_decision_function_is_log_odds_of_score(rule, fitted_lightgbm):
    X, _ = rule
    probability = fitted_lightgbm.risk_score(X.iloc[:50])
    log_odds = fitted_lightgbm.decision_function(X.iloc[:50])
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), probability, rtol=1e-12)


def test_lightgbm_refuses_a_single_class(rule):
    X, _ = rule
    with pytest.raises(ValueError, match=r"both confirmed \(1\) and cleared \(0\).*only class 0"):
        LightGBMScorer().fit(X, np.zeros(len(X)))


def test_lightgbm_refuses_missing_or_odd_labels(rule):
    X, y = rule
    with pytest.raises(ValueError, match=r"y .* is required"):
        LightGBMScorer().fit(X)
    with pytest.raises(ValueError, match="only 1"):
        LightGBMScorer().fit(X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="shape"):
        LightGBMScorer().fit(X, y[:-1])


def test_lightgbm_trains_in_deterministic_mode(fitted_lightgbm):
    params = fitted_lightgbm.model_.get_params()
    assert params["deterministic"] is True
    assert params["force_row_wise"] is True
    assert params["random_state"] == 0


def test_lightgbm_is_identical_across_thread_counts(rule):
    X, y = rule
    one = LightGBMScorer(n_estimators=40, n_jobs=1).fit(X, y).risk_score(X)
    two = LightGBMScorer(n_estimators=40, n_jobs=2).fit(X, y).risk_score(X)
    np.testing.assert_array_equal(one, two)
