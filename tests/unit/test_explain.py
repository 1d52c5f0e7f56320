"""Model tests for explanations: exact additivity, agreement with the models they explain."""

import pickle

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble._iforest import _average_path_length
from sklearn.exceptions import NotFittedError

from tillit.modelling.explain import (
    ISOLATION_OUTPUT,
    LIGHTGBM_OUTPUT,
    Attribution,
    explain,
    mean_path_length,
    top_k_agreement,
    top_k_features,
)
from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer

N_FEATURES = 12
FEATURES = [f"feature_{i}" for i in range(N_FEATURES)]


def planted(seed: int = 0, n_normal: int = 800, n_far: int = 40):
    """Gaussian cloud; each far row is pushed out on one known feature."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_normal + n_far, N_FEATURES))
    pushed = rng.integers(0, N_FEATURES, size=n_far)
    values[n_normal + np.arange(n_far), pushed] += 6.0
    index = pd.Index([f"inv-{i:04d}" for i in range(len(values))], name="invoice_id")
    return pd.DataFrame(values, columns=FEATURES, index=index), n_normal, pushed


def sklearn_path_length(scorer: IsolationForestScorer, X: pd.DataFrame) -> np.ndarray:
    """h(x) recovered from scikit-learn's own score: score_samples = -2 ** (-h / c)."""
    model = scorer.model_
    c = _average_path_length([model.max_samples_])[0]
    return -np.log2(-model.score_samples(X.to_numpy())) * c


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module", params=[1.0, 0.5], ids=["all_features", "half_features"])
def forest(request, data):
    X, _, _ = data
    return IsolationForestScorer(n_estimators=60, max_features=request.param).fit(X)


@pytest.fixture(scope="module")
def lightgbm_scorer(data):
    X, n_normal, _ = data
    y = (np.arange(len(X)) >= n_normal).astype(int)
    return LightGBMScorer(n_estimators=60).fit(X, y)


# ------------------------------------------------------------------ additivity


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_isolation_forest_attribution_is_additive_to_sklearn_path_length(forest, data, method):
    X, _, _ = data
    attribution = explain(forest, X, method=method)
    np.testing.assert_allclose(-attribution.output, sklearn_path_length(forest, X), atol=1e-9)
    assert attribution.max_additivity_error() <= 1e-6
    assert attribution.output_name == ISOLATION_OUTPUT
    assert attribution.method == {"exact": "treeshap", "fast": "path_length"}[method]
    assert attribution.values.index.equals(X.index)
    assert list(attribution.values.columns) == FEATURES


def test_both_isolation_forest_methods_share_output_and_base(forest, data):
    X, _, _ = data
    exact = explain(forest, X.iloc[:200], method="exact")
    fast = explain(forest, X.iloc[:200], method="fast")
    np.testing.assert_array_equal(exact.output, fast.output)
    assert exact.base_value == pytest.approx(fast.base_value, abs=1e-12)
    np.testing.assert_allclose(-exact.output, mean_path_length(forest, X.iloc[:200]), atol=0)


def test_isolation_forest_treeshap_matches_shap_on_sklearn_forest(forest, data):
    X, _, _ = data
    ours = explain(forest, X.iloc[:300], method="exact")
    explainer = shap.TreeExplainer(forest.model_)
    native = -explainer.shap_values(X.iloc[:300].to_numpy())
    native_attribution = Attribution(
        values=pd.DataFrame(native, index=ours.values.index, columns=FEATURES),
        base_value=-float(np.atleast_1d(explainer.expected_value)[0]),
        output=ours.output,
        output_name=ISOLATION_OUTPUT,
        method="treeshap",
    )
    np.testing.assert_allclose(ours.values.to_numpy(), native, atol=1e-9)
    assert ours.base_value == pytest.approx(native_attribution.base_value, abs=1e-9)
    assert top_k_agreement(ours, native_attribution, k=3) == 1.0


def test_isolation_forest_treeshap_rounds_inputs_like_sklearn():
    """Large SEK amounts lose decimals in scikit-learn's float32 forest; so must we."""
    rng = np.random.default_rng(1)

    def frame(n):
        return pd.DataFrame(
            {
                "billed_amount_sek": 1e6 + rng.normal(0.0, 3.0, n),
                "billed_hours": rng.normal(50.0, 5.0, n),
            }
        )

    scorer = IsolationForestScorer(n_estimators=20).fit(frame(1000))
    new = frame(500)
    for method in ("exact", "fast"):
        attribution = explain(scorer, new, method=method)
        np.testing.assert_allclose(-attribution.output, sklearn_path_length(scorer, new), atol=1e-9)
        assert attribution.max_additivity_error() <= 1e-6


def test_lightgbm_attribution_is_additive_to_log_odds(lightgbm_scorer, data):
    X, _, _ = data
    attribution = explain(lightgbm_scorer, X)
    np.testing.assert_allclose(attribution.output, lightgbm_scorer.decision_function(X), atol=1e-12)
    assert attribution.max_additivity_error() <= 1e-6
    assert attribution.output_name == LIGHTGBM_OUTPUT
    assert attribution.method == "treeshap"
    assert attribution.values.index.equals(X.index)
    fast = explain(lightgbm_scorer, X, method="fast")
    assert fast.method == "saabas"
    assert fast.max_additivity_error() <= 1e-6
    np.testing.assert_allclose(fast.output, attribution.output, atol=1e-12)
    assert fast.values.index.equals(X.index)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_lightgbm_credits_the_pushed_feature(lightgbm_scorer, data, method):
    X, n_normal, pushed = data
    far = X.iloc[n_normal:]
    attribution = explain(lightgbm_scorer, far, method=method)
    top = attribution.values.to_numpy().argmax(axis=1)
    assert (top == pushed).mean() >= 0.8


def test_lightgbm_attribution_equals_shap_tree_explainer(lightgbm_scorer, data):
    X, _, _ = data
    ours = explain(lightgbm_scorer, X.iloc[:100])
    explainer = shap.TreeExplainer(lightgbm_scorer.booster_)
    np.testing.assert_allclose(
        ours.values.to_numpy(), explainer.shap_values(X.iloc[:100].to_numpy()), atol=1e-9
    )


# ------------------------------------------------------------------ sign and content


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_isolation_forest_credits_the_pushed_feature(forest, data, method):
    X, n_normal, pushed = data
    attribution = explain(forest, X.iloc[n_normal:], method=method)
    top_feature = top_k_features(attribution, k=1)[:, 0]
    assert np.mean(top_feature == pushed) >= 0.9
    # Positive = riskier: the pushed feature raises the risk of its row.
    pushed_values = attribution.values.to_numpy()[np.arange(len(pushed)), pushed]
    assert (pushed_values > 0).mean() >= 0.95


def test_lightgbm_credits_a_planted_rule_with_positive_values():
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(1200, 4)), columns=["a", "b", "c", "d"])
    y = (X["c"] > 1.0).astype(int)
    scorer = LightGBMScorer(n_estimators=80).fit(X, y)
    attribution = explain(scorer, X[y == 1])
    assert (top_k_features(attribution, k=1)[:, 0] == 2).mean() >= 0.95
    assert (attribution.values["c"] > 0).mean() >= 0.95


def test_fast_path_agrees_with_treeshap_on_top_three_features(forest, data):
    X, n_normal, _ = data
    exact = explain(forest, X, method="exact")
    fast = explain(forest, X, method="fast")
    # Measured 0.70 (all features) and 0.76 (half per tree) on this data.
    assert top_k_agreement(exact, fast, k=3) >= 0.6
    # Far rows differ in one feature, so only their top feature carries signal:
    # measured 0.975 and 0.95.
    flagged = X.iloc[n_normal:]
    flagged_exact = explain(forest, flagged, method="exact")
    flagged_fast = explain(forest, flagged, method="fast")
    assert top_k_agreement(flagged_exact, flagged_fast, k=1) >= 0.9


# ------------------------------------------------------------------ helpers and errors


def attribution_of(rows: list[list[float]]) -> Attribution:
    values = pd.DataFrame(rows, columns=["a", "b", "c", "d"])
    return Attribution(
        values=values,
        base_value=1.0,
        output=1.0 + values.sum(axis=1).to_numpy(),
        output_name="test",
        method="treeshap",
    )


def test_top_k_agreement_on_hand_made_attributions():
    a = attribution_of([[4, 3, 2, 1], [1, 2, 3, 4], [0, 0, 5, 1]])
    b = attribution_of([[3, 4, 1, 2], [4, 3, 2, 1], [0, 1, 5, 0]])
    # Row 0: {a, b} both ways; row 1: {d, c} vs {a, b}; row 2: {c, d} vs {c, b}.
    assert top_k_agreement(a, b, k=2) == pytest.approx(1 / 3)
    # k=1: row 0 a vs b, row 1 d vs a, row 2 c vs c.
    assert top_k_agreement(a, b, k=1) == pytest.approx(1 / 3)
    assert top_k_agreement(a, b, k=4) == 1.0
    # Ties go to the earlier column: row 2 of a has a tie between a and b at 0.
    np.testing.assert_array_equal(top_k_features(a, k=3)[2], [2, 3, 0])


def test_top_k_agreement_refuses_mismatched_attributions():
    a = attribution_of([[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="same rows"):
        top_k_agreement(a, attribution_of([[1, 2, 3, 4], [1, 2, 3, 4]]))
    with pytest.raises(ValueError, match="k must be"):
        top_k_agreement(a, a, k=5)


def test_attribution_checks_output_length():
    with pytest.raises(ValueError, match="output"):
        Attribution(pd.DataFrame({"a": [1.0, 2.0]}), 0.0, np.zeros(3), "x", "treeshap")


def test_explain_refuses_bad_arguments(forest, data):
    X, _, _ = data
    with pytest.raises(ValueError, match="method"):
        explain(forest, X, method="approximate")
    with pytest.raises(TypeError, match="cannot explain"):
        explain(object(), X)
    with pytest.raises(NotFittedError):
        explain(IsolationForestScorer(), X)
    with pytest.raises(ValueError, match="unexpected"):
        explain(forest, X.assign(extra=0.0), method="fast")


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_explain_handles_no_rows(forest, lightgbm_scorer, data, method):
    X, _, _ = data
    for scorer in (forest, lightgbm_scorer):
        attribution = explain(scorer, X.iloc[:0], method=method)
        assert attribution.values.shape == (0, N_FEATURES)
        assert np.isfinite(attribution.base_value)


# ------------------------------------------------------------------ faster paths, same bits


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def test_isolation_forest_treeshap_kernel_gives_shap_tree_explainers_bits(forest, data):
    """The forest's TreeSHAP calls shap's C++ kernel directly (no `import shap`): same bits."""
    from tillit.modelling import explain as module

    X, _, _ = data
    rows = X.iloc[::7]
    ours = explain(forest, rows, method="exact").values.to_numpy()
    trees = module._isolation_trees(forest.model_, N_FEATURES)
    x64 = module._as_forest_input(rows.to_numpy()).astype(np.float64)
    explainer = shap.TreeExplainer(
        module._treeshap_ensemble(trees), feature_perturbation="tree_path_dependent"
    )
    reference = explainer.shap_values(x64, check_additivity=False)
    np.testing.assert_array_equal(_bits(ours), _bits(reference))


def test_isolation_forest_treeshap_without_the_kernel_uses_shap_and_agrees(
    forest, data, monkeypatch
):
    from tillit.modelling import explain as module

    X, _, _ = data
    rows = X.iloc[:90]
    direct = explain(forest, rows, method="exact")
    monkeypatch.setattr(module, "_shap_kernel", lambda: None)
    via_shap = explain(forest, rows, method="exact")
    np.testing.assert_array_equal(_bits(direct.values), _bits(via_shap.values))
    np.testing.assert_array_equal(direct.output, via_shap.output)


def _treeshap_inputs(forest, rows: pd.DataFrame):
    from tillit.modelling import explain as module

    trees = module._isolation_trees(forest.model_, N_FEATURES)
    return trees, module._as_forest_input(rows.to_numpy()).astype(np.float64)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n_rows", [1, 2, 5, 840])
def test_treeshap_split_between_threads_without_the_lock_gives_the_serial_bits(
    forest, data, threads, n_rows, monkeypatch
):
    """Rows split between threads running shap's kernel unlocked: the bits of one locked call."""
    from tillit.modelling import explain as module

    X, _, _ = data
    trees, x64 = _treeshap_inputs(forest, X.iloc[:n_rows])
    kernel = module._shap_kernel()
    # this build has the C++ symbol and a checked release (else the month is slower: see
    # _UNLOCKED_KERNEL_SHAP_VERSIONS; a new shap needs its header checked before it is added)
    assert module._unlocked_tree_shap(kernel) is not None
    split = module._path_dependent_treeshap(trees, x64, kernel, threads=threads)
    monkeypatch.setattr(module, "_unlocked_tree_shap", lambda kernel: None)
    serial = module._path_dependent_treeshap(trees, x64, kernel)  # one call, lock held
    assert split.shape == serial.shape == (n_rows, N_FEATURES)
    np.testing.assert_array_equal(_bits(split), _bits(serial))
    assert np.abs(split).sum() > 0


def test_treeshap_without_the_lock_falls_back_when_its_first_row_disagrees(
    forest, data, monkeypatch
):
    """Should the structures not be the kernel's, its first row differs: the lock is held."""
    import ctypes

    from tillit.modelling import explain as module

    X, _, _ = data
    trees, x64 = _treeshap_inputs(forest, X.iloc[:200])
    kernel = module._shap_kernel()
    serial = module._path_dependent_treeshap(trees, x64, kernel, threads=1)
    calls = []

    def wrong(ensemble, dataset, out, *args):  # writes 1.0 as the first contribution
        calls.append(out)
        np.ctypeslib.as_array(ctypes.cast(out, ctypes.POINTER(ctypes.c_double)), (1,))[0] = 1.0

    monkeypatch.setattr(module, "_unlocked_tree_shap", lambda kernel: wrong)
    got = module._path_dependent_treeshap(trees, x64, kernel, threads=2)
    assert len(calls) == 1  # the probe only
    np.testing.assert_array_equal(_bits(got), _bits(serial))


def test_treeshap_keeps_the_lock_on_an_unchecked_release_or_when_told(monkeypatch):
    """A shap release whose structures were not checked, or the operator's switch: locked call."""
    import importlib.metadata

    from tillit.modelling import explain as module

    kernel = module._shap_kernel()
    assert module._unlocked_tree_shap(kernel) is not None
    monkeypatch.setenv(module.LOCKED_TREESHAP_ENV, "1")
    assert module._unlocked_tree_shap(kernel) is None
    monkeypatch.delenv(module.LOCKED_TREESHAP_ENV)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.51.1")
    assert module._unlocked_tree_shap(kernel) is None


def test_treeshap_threads_are_bounded():
    """One thread per 64 rows, at most one per core and at most four."""
    from tillit.modelling import explain as module

    assert module._treeshap_threads(10) == 1
    assert 1 <= module._treeshap_threads(10**6) <= 4


def test_shap_kernel_loads_without_importing_shap():
    """`import shap` costs about a second of CPU (numba, matplotlib) in every scoring run."""
    import subprocess
    import sys

    probe = (
        "import sys; from tillit.modelling.explain import _shap_kernel; k = _shap_kernel(); "
        "assert hasattr(k, 'dense_tree_shap'), k; "
        "assert 'shap' not in sys.modules and 'numba' not in sys.modules, 'imported shap'"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_lightgbm_fast_path_adds_each_trees_table_in_order_bit_for_bit(lightgbm_scorer, data):
    """Only the features a tree splits on are added: the sums keep every bit of the dense ones."""
    from tillit.modelling import explain as module

    X, _, _ = data
    booster = lightgbm_scorer.booster_
    tables, base_value = module._lightgbm_leaf_contributions(booster, N_FEATURES)
    leaves = np.asarray(booster.predict(X.to_numpy(), pred_leaf=True))
    dense = np.zeros(X.shape)
    for tree, table in enumerate(tables):
        dense += table[leaves[:, tree]]
    fast = explain(lightgbm_scorer, X, method="fast")
    np.testing.assert_array_equal(_bits(fast.values.to_numpy()), _bits(dense))
    assert fast.base_value == base_value


def test_an_untested_shap_release_is_used_through_tree_explainer(monkeypatch):
    import importlib.metadata

    from tillit.modelling import explain as module

    assert module._shap_kernel() is not None  # the installed release is a tested one
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.0.0")
    assert module._shap_kernel() is None


# ------------------------------------------------------------------ a bag of boosters


@pytest.fixture(scope="module")
def bag_and_members(data):
    """A bag of three boosters and the three single scorers seeded as its members."""
    X, n_normal, _ = data
    y = (np.arange(len(X)) >= n_normal).astype(int)
    params = {"n_estimators": 20, "colsample_bytree": 0.5}
    bag = LightGBMScorer(**params, n_seeds=3, random_state=4).fit(X, y)
    members = [LightGBMScorer(**params, random_state=seed).fit(X, y) for seed in (4, 5, 6)]
    return bag, members


def test_a_bag_scores_the_mean_log_odds_of_boosters_seeded_one_after_another(bag_and_members, data):
    X, _, _ = data
    bag, members = bag_and_members
    raw = np.mean([member.decision_function(X) for member in members], axis=0)
    np.testing.assert_allclose(bag.decision_function(X), raw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bag.risk_score(X), 1 / (1 + np.exp(-raw)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(bag.predict_proba(X).sum(axis=1), 1.0, rtol=0, atol=1e-15)
    # Different seeds sample different features: the members differ, so the mean is news.
    assert np.abs(members[0].decision_function(X) - members[1].decision_function(X)).max() > 0.01


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_bags_attribution_is_the_mean_of_its_boosters_and_adds_up(bag_and_members, data, method):
    X, _, _ = data
    bag, members = bag_and_members
    ours = explain(bag, X.iloc[:150], method=method)
    theirs = [explain(member, X.iloc[:150], method=method) for member in members]
    np.testing.assert_allclose(
        ours.values.to_numpy(),
        np.mean([t.values.to_numpy() for t in theirs], axis=0),
        rtol=0,
        atol=1e-12,
    )
    assert ours.base_value == pytest.approx(np.mean([t.base_value for t in theirs]), abs=1e-12)
    np.testing.assert_allclose(ours.output, bag.decision_function(X.iloc[:150]), atol=1e-12)
    assert ours.max_additivity_error() <= 1e-6


def test_one_seed_and_a_scorer_pickled_before_bags_score_lightgbms_own_bits(lightgbm_scorer, data):
    X, _, _ = data
    own = lightgbm_scorer.model_.predict_proba(X.to_numpy())
    assert lightgbm_scorer.n_seeds == 1 and len(lightgbm_scorer.boosters()) == 1
    np.testing.assert_array_equal(_bits(lightgbm_scorer.predict_proba(X)), _bits(own))
    old = pickle.loads(pickle.dumps(lightgbm_scorer))
    del old.__dict__["boosters_"], old.__dict__["n_seeds"]  # as pickled before bagging
    np.testing.assert_array_equal(_bits(old.predict_proba(X)), _bits(own))
    np.testing.assert_array_equal(
        _bits(explain(old, X.iloc[:50]).values.to_numpy()),
        _bits(explain(lightgbm_scorer, X.iloc[:50]).values.to_numpy()),
    )


def test_a_bag_needs_a_booster():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="n_seeds"):
        LightGBMScorer(n_seeds=0).fit(X, [0, 1, 0, 1])


# ------------------------------------------------------------------ monotone constraints


def _not_monotone(seed: int = 0, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """Confirmed rows billed 1.1-1.5 x their visits; cleared rows at 1.0 and again above 1.6.

    The honest rows above 1.6 (as an export's corrections) teach an unconstrained booster
    that billing far over the visits is less suspicious than billing a little over.
    """
    rng = np.random.default_rng(seed)
    ratio = np.concatenate(
        [rng.uniform(0.9, 1.05, n), rng.uniform(1.1, 1.5, n // 3), rng.uniform(1.6, 2.0, n // 3)]
    )
    y = np.concatenate([np.zeros(n), np.ones(n // 3), np.zeros(n // 3)]).astype(int)
    X = pd.DataFrame({"ratio": ratio, "noise": rng.normal(size=len(ratio))})
    return X, y


def _along_ratio(scorer: LightGBMScorer) -> np.ndarray:
    grid = pd.DataFrame({"ratio": [1.0, 1.3, 1.8, 2.5], "noise": 0.0})
    return scorer.decision_function(grid)


def test_a_monotone_column_can_only_raise_the_log_odds():
    X, y = _not_monotone()
    params = {"n_estimators": 40, "min_child_samples": 10}
    free = LightGBMScorer(**params).fit(X, y)
    bound = LightGBMScorer(**params, monotone_increasing=["ratio"], monotone_increasing_on=True)
    bound.fit(X, y)
    # Unconstrained, 1.8 x the visits reads as more honest than 1.3 x; constrained it cannot.
    free_raw, bound_raw = _along_ratio(free), _along_ratio(bound)
    assert free_raw[2] < free_raw[1] - 1.0
    assert (np.diff(bound_raw) >= 0).all() and bound_raw[1] > bound_raw[0] + 1.0
    assert bound.monotone_increasing_applied_ == ("ratio",)
    assert free.monotone_increasing_applied_ == ()
    # Every method LightGBM offers keeps the constraint.
    for method in ("intermediate", "advanced"):
        other = LightGBMScorer(
            **params,
            monotone_increasing=["ratio"],
            monotone_increasing_on=True,
            monotone_constraints_method=method,
        ).fit(X, y)
        assert (np.diff(_along_ratio(other)) >= 0).all()


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_constrained_boosters_attribution_still_adds_up(method):
    X, y = _not_monotone()
    bound = LightGBMScorer(
        n_estimators=40, monotone_increasing=["ratio"], monotone_increasing_on=True
    ).fit(X, y)
    attribution = explain(bound, X.iloc[::20], method=method)
    np.testing.assert_allclose(
        attribution.output, bound.decision_function(X.iloc[::20]), atol=1e-12
    )
    assert attribution.max_additivity_error() <= 1e-6


def test_constraints_switched_off_or_on_absent_columns_leave_lightgbm_as_before():
    X, y = _not_monotone()
    plain = LightGBMScorer(n_estimators=40).fit(X, y).decision_function(X)
    off = LightGBMScorer(n_estimators=40, monotone_increasing=["ratio"]).fit(X, y)
    # A table without the named columns (table mode shares the section): nothing constrained.
    absent = LightGBMScorer(
        n_estimators=40,
        monotone_increasing=["amount_over_tariff_amount"],
        monotone_increasing_on=True,
    ).fit(X, y)
    assert off.monotone_increasing_applied_ == () == absent.monotone_increasing_applied_
    np.testing.assert_array_equal(_bits(off.decision_function(X)), _bits(plain))
    np.testing.assert_array_equal(_bits(absent.decision_function(X)), _bits(plain))


def test_a_scorer_pickled_before_the_constraints_scores_and_reports_as_before():
    X, y = _not_monotone()
    scorer = LightGBMScorer(n_estimators=40).fit(X, y)
    old = pickle.loads(pickle.dumps(scorer))
    for name in (
        "monotone_increasing",
        "monotone_increasing_on",
        "monotone_constraints_method",
        "monotone_increasing_applied_",
    ):
        del old.__dict__[name]  # what a scorer pickled before the setting holds
    np.testing.assert_array_equal(
        _bits(old.decision_function(X)), _bits(scorer.decision_function(X))
    )
    assert old.get_params()["monotone_increasing_on"] is False
    assert old.monotone_increasing_applied_ == ()
