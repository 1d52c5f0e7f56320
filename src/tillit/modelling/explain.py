"""Explanations: which features pushed an invoice up the review list, additively.

Every explanation is an ``Attribution`` whose contributions add up exactly (to
floating-point rounding) to a named model quantity: ``base_value +
values.sum(axis=1) == output``. Positive contributions raise the risk. That lets an
audit record say "this invoice scored X because of these features" with numbers a
reviewer can add up by hand.

What is explained:

- ``LightGBMScorer``: the raw log-odds (``decision_function``), by LightGBM's own
  TreeSHAP (``pred_contrib=True``), identical to ``shap.TreeExplainer``.
- ``IsolationForestScorer``: the negative mean path length ``-h(x)``, where
  ``h(x)`` is the mean over trees of (depth of the leaf ``x`` reaches +
  ``c(n_leaf)``), ``c`` being scikit-learn's average unsuccessful-search path length.
  The forest's score is ``2 ** (-h(x) / c(max_samples_))``, a monotone function of
  ``-h``, so explaining ``-h`` explains the ranking. Two methods:

  * ``"exact"`` (method ``"treeshap"``): path-dependent TreeSHAP over a tree
    ensemble rebuilt from the forest (leaf values ``depth + c(n_leaf)``, node covers
    from the trees' training counts, per-tree feature subsets mapped back, inputs
    rounded to float32 as scikit-learn does), run by shap's C++ TreeSHAP.
    Why not hand the forest to ``shap.TreeExplainer`` directly: shap compares
    float64 inputs with the thresholds where scikit-learn compares float32-rounded
    ones, so for large values (SEK amounts near 1e6 with decimals) it follows other
    branches than the model and stops adding up to its path length. On ordinary
    data both give the same values.
  * ``"fast"`` (method ``"path_length"``): Saabas-style attribution. Along the
    path ``x`` takes in each tree, the expected leaf value of the current node
    changes at each split; that change is credited to the split's feature. Exactly
    additive by construction, vectorised over rows and trees.

- ``TailProbabilityScorer``: its score is a sum of one term per feature (0 for the
  features outside an invoice's ``top_k`` largest), so the attribution is exact by
  construction (method ``"additive"``): each feature's counted term minus its mean over
  the training invoices, with the mean training score as base.
  "exact" and "fast" are the same computation.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from tillit.modelling.scorers import (
    IsolationForestScorer,
    LightGBMScorer,
    TailProbabilityScorer,
    feature_matrix,
)

LIGHTGBM_OUTPUT = "lightgbm log-odds of a confirmed irregularity"
ISOLATION_OUTPUT = "negative mean isolation path length"
TAIL_OUTPUT = "sum over features of -log tail probability"
TAIL_TOP_OUTPUT = "sum of the {k} largest per-feature -log tail probabilities"


# eq=False: field-wise equality on a DataFrame and an array has no single truth value.
@dataclass(frozen=True, eq=False)
class Attribution:
    """Additive explanation of one scorer quantity for a set of rows.

    Attributes:
        values: contribution of each feature (columns) for each row (index = X.index);
            positive = raises the risk.
        base_value: the quantity's expected value before any feature is known.
        output: the quantity explained, one per row;
            ``base_value + values.sum(axis=1) == output``.
        output_name: what ``output`` is, in words.
        method: "treeshap" (exact, both tree scorers), "path_length" (the forest's fast
            path attribution), "saabas" (LightGBM's fast path attribution) or "additive"
            (the tail probability scorer, whose score is a sum over features).
    """

    values: pd.DataFrame
    base_value: float
    output: np.ndarray
    output_name: str
    method: Literal["treeshap", "path_length", "saabas", "additive"]

    def __post_init__(self) -> None:
        if self.output.shape != (len(self.values),):
            raise ValueError(
                f"output has shape {self.output.shape}, expected ({len(self.values)},)"
            )

    def rows(self, index: pd.Index) -> Attribution:
        """The attribution of some of the rows (by index label), in the order given."""
        positions = self.values.index.get_indexer(index)
        return Attribution(
            values=self.values.loc[index],
            base_value=self.base_value,
            output=np.asarray(self.output)[positions],
            output_name=self.output_name,
            method=self.method,
        )

    def max_additivity_error(self) -> float:
        """Largest |base_value + sum of contributions - output| over rows (0.0 if no rows)."""
        if len(self.values) == 0:
            return 0.0
        total = self.base_value + self.values.to_numpy().sum(axis=1)
        return float(np.max(np.abs(total - self.output)))


def explain(
    scorer: IsolationForestScorer | LightGBMScorer | TailProbabilityScorer,
    X: pd.DataFrame,
    method: Literal["exact", "fast"] = "exact",
) -> Attribution:
    """Explain ``scorer`` on the rows of ``X``.

    Args:
        scorer: a fitted tillit scorer.
        X: feature frame with the columns the scorer was fitted on.
        method: "exact" for TreeSHAP; "fast" for the path attribution (each split on
            a row's path through each tree credits its feature with the change in the
            node's expected output), exactly additive too and several times faster.
    """
    if method not in ("exact", "fast"):
        raise ValueError(f"method must be 'exact' or 'fast', got {method!r}")
    if isinstance(scorer, LightGBMScorer):
        if method == "fast":
            return _explain_lightgbm_path(scorer, X)
        return _explain_lightgbm(scorer, X)
    if isinstance(scorer, IsolationForestScorer):
        matrix = feature_matrix(scorer, X)
        if method == "exact":
            return _explain_iforest_treeshap(scorer, X, matrix)
        return _explain_iforest_path_length(scorer, X, matrix)
    if isinstance(scorer, TailProbabilityScorer):
        return _explain_tail_probability(scorer, X)
    raise TypeError(f"cannot explain a {type(scorer).__name__}")


# --------------------------------------------------------------------------- LightGBM


def _explain_lightgbm(scorer: LightGBMScorer, X: pd.DataFrame) -> Attribution:
    matrix = feature_matrix(scorer, X)
    # The last column is the expected value, the same for every row; an all-zero row
    # yields it when X is empty.
    probe = matrix if len(matrix) else np.zeros((1, matrix.shape[1]))
    boosters = scorer.boosters()
    # A bag's log-odds is its boosters' mean, so its TreeSHAP values and base value are
    # the means of theirs (SHAP is linear in the model): still exact.
    contrib = np.zeros((probe.shape[0], probe.shape[1] + 1))
    for booster in boosters:
        # Rows are explained independently, so every core can help without changing a value.
        contrib += np.asarray(
            booster.predict(probe, pred_contrib=True, num_threads=os.cpu_count() or 1)
        )
    contrib /= len(boosters)
    return Attribution(
        values=pd.DataFrame(
            contrib[: len(matrix), :-1], index=X.index, columns=list(scorer.feature_names_in_)
        ),
        base_value=float(contrib[0, -1]),
        output=scorer.decision_function(X) if len(matrix) else np.zeros(0),
        output_name=LIGHTGBM_OUTPUT,
        method="treeshap",
    )


def _lightgbm_leaf_contributions(
    booster: lgb.Booster, n_features: int
) -> tuple[list[np.ndarray], float]:
    """Per tree, a leaves x features table: what each split on the way to a leaf added.

    Summed over the trees a row's leaves lead to, plus the trees' root values, this
    is the row's raw score exactly (the Saabas path attribution).
    """
    tables: list[np.ndarray] = []
    base_value = 0.0
    for tree in booster.dump_model()["tree_info"]:
        root = tree["tree_structure"]
        table = np.zeros((tree["num_leaves"], n_features))
        tables.append(table)
        if "leaf_value" in root:  # a tree of one leaf: a constant, no split to credit
            base_value += float(root["leaf_value"])
            continue
        base_value += float(root["internal_value"])
        stack = [(root, np.zeros(n_features))]
        while stack:
            node, path = stack.pop()
            for side in ("left_child", "right_child"):
                child = node[side]
                is_leaf = "leaf_index" in child
                value = child["leaf_value"] if is_leaf else child["internal_value"]
                step = path.copy()
                step[node["split_feature"]] += value - node["internal_value"]
                if is_leaf:
                    table[child["leaf_index"]] = step
                else:
                    stack.append((child, step))
    return tables, base_value


def lightgbm_path_contributions(scorer: LightGBMScorer, X: pd.DataFrame) -> pd.DataFrame:
    """The fast (Saabas) attribution's contributions alone: `explain(scorer, X, "fast").values`.

    Why apart: a caller that reads only the contributions (the reasons of every invoice)
    need not predict the explained output too, a second pass of every row over every tree.
    """
    return _path_attribution(scorer, X)[0]


def _path_attribution(scorer: LightGBMScorer, X: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The path contributions and base value: a bag's are the means of its boosters'."""
    matrix = feature_matrix(scorer, X)
    by_feature = np.zeros(matrix.shape[::-1])
    base_value = 0.0
    boosters = scorer.boosters()
    for booster in boosters:
        tables, base = _lightgbm_leaf_contributions(booster, matrix.shape[1])
        by_feature += _path_values(booster, matrix, tables)
        base_value += base
    values = pd.DataFrame(
        by_feature.T / len(boosters), index=X.index, columns=list(scorer.feature_names_in_)
    )
    return values, base_value / len(boosters)


def _path_values(booster: lgb.Booster, matrix: np.ndarray, tables: list[np.ndarray]) -> np.ndarray:
    """One booster's path contributions, features x rows."""
    # Feature by feature (rows of the transpose, each contiguous), and only the features a
    # tree splits on: a tree adds exactly 0.0 to every other feature, which leaves a sum
    # that started at +0.0 unchanged, bit for bit. Each sum still adds its trees in order.
    by_feature = np.zeros(matrix.shape[::-1])
    if len(matrix):
        leaves = np.asarray(
            booster.predict(matrix, pred_leaf=True, num_threads=os.cpu_count() or 1)
        )
        leaves_by_tree = np.ascontiguousarray(leaves.T)
        for tree, table in enumerate(tables):
            table_by_feature = np.ascontiguousarray(table.T)
            for feature in np.flatnonzero(table_by_feature.any(axis=1)):
                by_feature[feature] += table_by_feature[feature][leaves_by_tree[tree]]
    return by_feature


def _explain_lightgbm_path(scorer: LightGBMScorer, X: pd.DataFrame) -> Attribution:
    values, base_value = _path_attribution(scorer, X)
    return Attribution(
        values=values,
        base_value=base_value,
        output=scorer.decision_function(X) if len(X) else np.zeros(0),
        output_name=LIGHTGBM_OUTPUT,
        method="saabas",
    )


# --------------------------------------------------------------------------- tail probabilities


def _explain_tail_probability(scorer: TailProbabilityScorer, X: pd.DataFrame) -> Attribution:
    terms = scorer.feature_terms(X)
    return Attribution(
        values=pd.DataFrame(
            terms - scorer.expected_, index=X.index, columns=list(scorer.feature_names_in_)
        ),
        base_value=float(scorer.expected_.sum()),
        output=terms.sum(axis=1),
        output_name=(
            TAIL_TOP_OUTPUT.format(k=scorer.top_k)
            if 0 < scorer.top_k < terms.shape[1]
            else TAIL_OUTPUT
        ),
        method="additive",
    )


# --------------------------------------------------------------------------- Isolation Forest


@dataclass(frozen=True)
class _IsolationTree:
    """One isolation tree in the terms both explainers need.

    Node arrays are indexed by the tree's own node ids (parents before children).
    ``features`` maps the tree's split feature to the column of the full frame
    (-1 at leaves); ``columns`` is the column subset the tree was grown on, or None
    when it saw every column (scikit-learn then does not index X).
    """

    tree: Any  # scikit-learn's ExtraTreeRegressor
    columns: np.ndarray | None
    children_left: np.ndarray
    children_right: np.ndarray
    features: np.ndarray
    thresholds: np.ndarray
    weight: np.ndarray  # training rows reaching each node
    expected: np.ndarray  # weighted mean of (depth + c(n)) over the node's leaves
    parent: np.ndarray  # -1 at the root
    is_leaf: np.ndarray


def _isolation_trees(model: IsolationForest, n_features: int) -> list[_IsolationTree]:
    """Rebuild each fitted isolation tree with leaf values ``depth + c(n_leaf)``."""
    trees = []
    for estimator, columns in zip(model.estimators_, model.estimators_features_, strict=True):
        tree = estimator.tree_
        left = tree.children_left.astype(np.int64)
        right = tree.children_right.astype(np.int64)
        is_leaf = left < 0
        depth = tree.compute_node_depths().astype(np.int64) - 1  # root at depth 0
        weight = np.where(is_leaf, tree.n_node_samples, 0).astype(np.float64)
        expected = np.where(
            is_leaf, depth + _average_path_length(tree.n_node_samples.astype(np.float64)), 0.0
        )
        internal = np.flatnonzero(~is_leaf)
        # Bottom-up by depth: a node's cover and expectation come from its children.
        for level in range(int(depth.max()) - 1, -1, -1):
            nodes = internal[depth[internal] == level]
            lw, rw = weight[left[nodes]], weight[right[nodes]]
            weight[nodes] = lw + rw
            expected[nodes] = (lw * expected[left[nodes]] + rw * expected[right[nodes]]) / (lw + rw)
        parent = np.full(tree.node_count, -1, dtype=np.int64)
        parent[left[internal]] = internal
        parent[right[internal]] = internal
        column_map = np.asarray(columns, dtype=np.int64)
        subset = None if column_map.size == n_features else column_map
        local = tree.feature.astype(np.int64)
        features = np.where(is_leaf, -1, column_map[np.where(is_leaf, 0, local)])
        trees.append(
            _IsolationTree(
                tree=tree,
                columns=subset,
                children_left=left,
                children_right=right,
                features=features,
                thresholds=tree.threshold.astype(np.float64),
                weight=weight,
                expected=expected,
                parent=parent,
                is_leaf=is_leaf,
            )
        )
    return trees


def _as_forest_input(matrix: np.ndarray) -> np.ndarray:
    """Round to float32 as scikit-learn's forest does, so every split compares the same."""
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _leaves(trees: list[_IsolationTree], x32: np.ndarray) -> np.ndarray:
    """Leaf id reached in each tree, shape (n_rows, n_trees)."""
    leaves = np.empty((x32.shape[0], len(trees)), dtype=np.int64)
    for t, tree in enumerate(trees):
        sub = x32 if tree.columns is None else np.ascontiguousarray(x32[:, tree.columns])
        leaves[:, t] = tree.tree.apply(sub)
    return leaves


def _mean_path_length(trees: list[_IsolationTree], leaves: np.ndarray) -> np.ndarray:
    """h(x): mean over trees of depth + c(n_leaf), exactly as scikit-learn sums it."""
    h = np.zeros(leaves.shape[0])
    for t, tree in enumerate(trees):
        h += tree.expected[leaves[:, t]]
    return h / len(trees)


def mean_path_length(scorer: IsolationForestScorer, X: pd.DataFrame) -> np.ndarray:
    """h(x) of the fitted forest for each row: the quantity behind the anomaly score."""
    matrix = feature_matrix(scorer, X)
    trees = _isolation_trees(scorer.model_, matrix.shape[1])
    return _mean_path_length(trees, _leaves(trees, _as_forest_input(matrix)))


def _explain_iforest_path_length(
    scorer: IsolationForestScorer, X: pd.DataFrame, matrix: np.ndarray
) -> Attribution:
    n_rows, n_features = matrix.shape
    trees = _isolation_trees(scorer.model_, n_features)
    n_trees = len(trees)
    # One row per node of the whole forest: the summed change of expectation along the
    # path from the root to that node, per feature. A row's attribution is then the
    # mean over trees of the rows of the leaves it reaches: one sparse product.
    offsets = np.cumsum([0] + [len(t.parent) for t in trees])
    rows, cols, data = [], [], []
    for t, tree in enumerate(trees):
        delta = tree.expected - tree.expected[np.maximum(tree.parent, 0)]
        split_feature = tree.features[np.maximum(tree.parent, 0)]
        nodes = np.arange(len(tree.parent))
        step = nodes.copy()
        while True:
            active = tree.parent[step] >= 0
            if not active.any():
                break
            rows.append(nodes[active] + offsets[t])
            cols.append(split_feature[step[active]])
            data.append(delta[step[active]])
            step = np.where(active, tree.parent[step], step)
            nodes, step = nodes[active], step[active]
    path_table = sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            (
                np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
                np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64),
            ),
        ),
        shape=(offsets[-1], n_features),
    )
    leaves = _leaves(trees, _as_forest_input(matrix))
    reached = sparse.csr_matrix(
        (
            np.full(n_rows * n_trees, 1.0 / n_trees),
            (leaves + offsets[:-1]).ravel(),
            np.arange(0, n_rows * n_trees + 1, n_trees),
        ),
        shape=(n_rows, offsets[-1]),
    )
    path_length_change = (reached @ path_table).toarray()
    base = float(np.mean([tree.expected[0] for tree in trees]))
    h = _mean_path_length(trees, leaves)
    return Attribution(
        values=pd.DataFrame(
            -path_length_change, index=X.index, columns=list(scorer.feature_names_in_)
        ),
        base_value=-base,
        output=-h,
        output_name=ISOLATION_OUTPUT,
        method="path_length",
    )


def _treeshap_ensemble(trees: list[_IsolationTree]) -> dict[str, object]:
    """The forest as shap's dictionary tree-ensemble form, explaining -h(x).

    Each tree's node values are ``-(depth + c(n))/n_trees`` at leaves and the
    cover-weighted mean below internal nodes; covers are the training rows reaching
    each node, which path-dependent TreeSHAP uses as the background distribution.
    """
    n_trees = len(trees)
    return {
        "trees": [
            {
                "children_left": tree.children_left.astype(np.int32),
                "children_right": tree.children_right.astype(np.int32),
                "children_default": tree.children_left.astype(np.int32),
                "features": tree.features.astype(np.int32),
                "thresholds": tree.thresholds,
                "values": (-tree.expected / n_trees).reshape(-1, 1),
                "node_sample_weight": tree.weight,
            }
            for tree in trees
        ],
        "base_offset": 0.0,
        "tree_output": "raw_value",
        "input_dtype": np.float64,
        "internal_dtype": np.float64,
    }


# shap releases whose `_cext.compute_expectations` and `dense_tree_shap` take the arguments
# `_path_dependent_treeshap` passes (as TreeExplainer does in them); any other release is
# used through shap.TreeExplainer. tests/unit/test_explain.py checks the bits.
_SHAP_KERNEL_VERSIONS = ("0.51.",)


def _shap_release() -> str | None:
    """The installed shap's release (None without shap): which of its internals are used."""
    import importlib.metadata

    try:
        return importlib.metadata.version("shap")
    except importlib.metadata.PackageNotFoundError:
        return None


def _shap_kernel() -> Any:
    """shap's compiled TreeSHAP (`shap._cext`), loaded without importing the `shap` package.

    Why: `import shap` pulls in numba, llvmlite and matplotlib, about a second of CPU in
    every `tillit score`, and the forest's explanation needs only this one C++ module.
    None when it cannot be found this way (then `shap.TreeExplainer` is used).
    """
    import importlib.machinery
    import importlib.util
    import sys

    release = _shap_release()  # the kernel's arguments are shap's internals: tested releases
    if release is None or not release.startswith(_SHAP_KERNEL_VERSIONS):
        return None
    loaded = sys.modules.get("shap._cext")
    if loaded is not None:
        return loaded
    try:
        package = importlib.util.find_spec("shap")
    except (ImportError, ValueError):
        return None
    if package is None or not package.submodule_search_locations:
        return None
    for folder in package.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, f"_cext{suffix}")
            if not os.path.isfile(path):
                continue
            loader = importlib.machinery.ExtensionFileLoader("shap._cext", path)
            spec = importlib.util.spec_from_file_location("shap._cext", path, loader=loader)
            if spec is None:
                continue
            try:
                module = importlib.util.module_from_spec(spec)
                loader.exec_module(module)
            except ImportError:
                return None
            return module
    return None


class _TreeEnsembleFields(ctypes.Structure):
    """shap 0.51's `TreeEnsemble` (shap/cext/tree_shap.h), as its C++ TreeSHAP reads it."""

    _fields_ = [
        *(
            (name, ctypes.c_void_p)
            for name in (
                "children_left",
                "children_right",
                "children_default",
                "features",
                "thresholds",
                "threshold_types",
                "values",
                "node_sample_weights",
            )
        ),
        ("max_depth", ctypes.c_uint),
        ("tree_limit", ctypes.c_uint),
        ("base_offset", ctypes.c_void_p),
        ("max_nodes", ctypes.c_uint),
        ("num_outputs", ctypes.c_uint),
    ]


class _DatasetFields(ctypes.Structure):
    """shap 0.51's `ExplanationDataset` (shap/cext/tree_shap.h): the rows to explain."""

    _fields_ = [
        *((name, ctypes.c_void_p) for name in ("X", "X_missing", "y", "R", "R_missing")),
        ("num_X", ctypes.c_uint),
        ("M", ctypes.c_uint),
        ("num_R", ctypes.c_uint),
    ]


# The C++ function `_cext.dense_tree_shap` hands its arrays to (Itanium C++ ABI name of
# `dense_tree_shap(TreeEnsemble const&, ExplanationDataset const&, double*, int,
# unsigned int, bool)`), exported by shap's extension module.
_DENSE_TREE_SHAP_SYMBOL = "_Z15dense_tree_shapRK12TreeEnsembleRK18ExplanationDatasetPdijb"
# Rows a thread explains at the least: below that a second thread is not worth starting.
_MIN_ROWS_PER_THREAD = 64
# The shap releases whose header the two structures above were checked against: a call
# with a wrong layout could crash rather than give a value the first-row check catches,
# so any other release (a patch release too) keeps the locked call.
_UNLOCKED_KERNEL_SHAP_VERSIONS = frozenset({"0.51.0"})
# Set to 1 to keep the locked call whatever the release (a safety switch for operators).
LOCKED_TREESHAP_ENV = "TILLIT_LOCKED_TREESHAP"
# At most this many threads however many cores the process sees (a container's CPU
# limit is not in the affinity mask).
_MAX_TREESHAP_THREADS = 4


@functools.cache
def _unlocked_tree_shap_in(path: str) -> Any:
    try:
        function = ctypes.CDLL(path)[_DENSE_TREE_SHAP_SYMBOL]
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.POINTER(_TreeEnsembleFields),
        ctypes.POINTER(_DatasetFields),
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_bool,
    ]
    function.restype = None
    return function


def _unlocked_tree_shap(kernel: Any) -> Any:
    """shap's C++ TreeSHAP called through ctypes, which lets go of the interpreter lock.

    Why: `_cext.dense_tree_shap` holds the lock while it runs (1-2 s for a month's flagged
    invoices), so no other Python thread moves meanwhile and the rows cannot be split
    between threads. Called through ctypes, the same compiled function runs without the
    lock. None when the module has no such symbol (another platform or build): then the
    module's own entry point is used. `_path_dependent_treeshap` checks the answer against
    that entry point on every call before using it.
    """
    if os.environ.get(LOCKED_TREESHAP_ENV, "") == "1":
        return None
    if _shap_release() not in _UNLOCKED_KERNEL_SHAP_VERSIONS:
        return None
    path = getattr(kernel, "__file__", None)
    return _unlocked_tree_shap_in(path) if isinstance(path, str) else None


def _treeshap_threads(n_rows: int) -> int:
    """How many threads explain `n_rows` rows: one per core, each with enough rows."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, _MAX_TREESHAP_THREADS, n_rows // _MIN_ROWS_PER_THREAD))


def _path_dependent_treeshap(
    trees: list[_IsolationTree], x: np.ndarray, kernel: Any, threads: int | None = None
) -> np.ndarray:
    """Path-dependent TreeSHAP of ``-h(x)`` by shap's C++ kernel, given what TreeExplainer gives it.

    The arrays are built as ``shap.TreeExplainer`` builds them from
    `_treeshap_ensemble` (its dense ``TreeEnsemble``: padded with -1 and 0 to the
    largest tree, each tree's expectations recomputed by ``compute_expectations``),
    and the kernel is called with TreeExplainer's arguments (no background data,
    identity output, no tree limit), so every value is the same, bit for bit
    (tested against shap itself).

    The kernel explains each row on its own (its trees in order, into the row's own
    output), so the rows are split between `threads` threads (default: one per core)
    running it without the interpreter lock (`_unlocked_tree_shap`): every value is the
    one a single call gives, and Python threads (the reasons) run beside it.
    """
    n_trees = len(trees)
    max_nodes = max(len(tree.children_left) for tree in trees)
    left = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    right = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    default = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    features = np.full((n_trees, max_nodes), -1, dtype=np.int32)
    thresholds = np.zeros((n_trees, max_nodes), dtype=np.float64)
    threshold_types = np.zeros((n_trees, max_nodes), dtype=np.int32)
    values = np.zeros((n_trees, max_nodes, 1), dtype=np.float64)
    weights = np.zeros((n_trees, max_nodes), dtype=np.float64)
    max_depth = 0
    for i, tree in enumerate(trees):
        n_nodes = len(tree.children_left)
        tree_left = tree.children_left.astype(np.int32)
        tree_right = tree.children_right.astype(np.int32)
        tree_values = (-tree.expected / n_trees).reshape(-1, 1) * 1.0  # shap's `scaling`
        depth = kernel.compute_expectations(tree_left, tree_right, tree.weight, tree_values)
        max_depth = max(max_depth, int(depth))
        left[i, :n_nodes] = tree_left
        right[i, :n_nodes] = tree_right
        default[i, :n_nodes] = tree_left
        features[i, :n_nodes] = tree.features.astype(np.int32)
        thresholds[i, :n_nodes] = tree.thresholds
        values[i, :n_nodes] = tree_values
        weights[i, :n_nodes] = tree.weight
    x = np.ascontiguousarray(x, dtype=np.float64)
    missing = np.isnan(x, dtype=bool)
    base_offset = np.zeros(1)
    phi = np.zeros((x.shape[0], x.shape[1] + 1, 1))

    def locked(rows: slice) -> None:  # the module's own entry point (holds the lock)
        kernel.dense_tree_shap(
            left,
            right,
            default,
            features,
            thresholds,
            threshold_types,
            values,
            weights,
            max_depth,
            x[rows],
            missing[rows],
            None,  # labels: only for explaining a loss
            None,  # background data: none, path-dependent
            None,
            n_trees,  # tree limit: every tree
            base_offset,
            phi[rows],  # a view: the kernel writes into phi itself (C-contiguous rows)
            1,  # shap's code for feature_perturbation="tree_path_dependent"
            0,  # shap's code for the identity output transform (model_output="raw")
            False,  # not interactions
        )

    threads = _treeshap_threads(len(x)) if threads is None else max(1, threads)
    unlocked = _unlocked_tree_shap(kernel) if len(x) else None
    if unlocked is None:
        locked(slice(None))
        return phi[:, :-1, 0]
    ensemble = _TreeEnsembleFields(
        left.ctypes.data,
        right.ctypes.data,
        default.ctypes.data,
        features.ctypes.data,
        thresholds.ctypes.data,
        threshold_types.ctypes.data,
        values.ctypes.data,
        weights.ctypes.data,
        max_depth,
        n_trees,
        base_offset.ctypes.data,
        max_nodes,
        1,
    )

    def without_the_lock(rows: slice, out: np.ndarray) -> None:
        part, part_missing = x[rows], missing[rows]
        dataset = _DatasetFields(
            part.ctypes.data, part_missing.ctypes.data, None, None, None, len(part), x.shape[1], 0
        )
        # 1, 0, False: path-dependent, identity output, no interactions (as `locked`).
        unlocked(ctypes.byref(ensemble), ctypes.byref(dataset), out[rows].ctypes.data, 1, 0, False)

    # The first row both ways, compared bit for bit: the structures above are shap 0.51.0's
    # (`_UNLOCKED_KERNEL_SHAP_VERSIONS`); should they ever not match, the lock is held as before.
    locked(slice(0, 1))
    probe = np.zeros_like(phi[:1])
    without_the_lock(slice(0, 1), probe)
    if not np.array_equal(probe.view(np.int64), phi[:1].view(np.int64)):
        locked(slice(1, None))
        return phi[:, :-1, 0]
    bounds = np.linspace(1, len(x), threads + 1).astype(int)
    parts = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
    if len(parts) <= 1:  # on this thread, still without the lock
        for rows in parts:
            without_the_lock(rows, phi)
        return phi[:, :-1, 0]
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="tillit-treeshap") as pool:
        for done in [pool.submit(without_the_lock, rows, phi) for rows in parts]:
            done.result()
    return phi[:, :-1, 0]


def _explain_iforest_treeshap(
    scorer: IsolationForestScorer, X: pd.DataFrame, matrix: np.ndarray
) -> Attribution:
    n_features = matrix.shape[1]
    trees = _isolation_trees(scorer.model_, n_features)
    x32 = _as_forest_input(matrix)
    h = _mean_path_length(trees, _leaves(trees, x32))
    base = -float(np.mean([tree.expected[0] for tree in trees]))
    if len(matrix):
        # float32-rounded values compared in float64 reproduce scikit-learn's splits.
        x64 = x32.astype(np.float64)
        kernel = _shap_kernel()
        covered = all(tree.weight.min() > 0 for tree in trees)
        if kernel is not None and covered:
            values = _path_dependent_treeshap(trees, x64, kernel)
        else:  # shap itself, which also says what is wrong with a leaf no training row reached
            import shap  # costs about a second of CPU at import

            explainer = shap.TreeExplainer(
                _treeshap_ensemble(trees), feature_perturbation="tree_path_dependent"
            )
            values = explainer.shap_values(x64, check_additivity=False)
    else:
        values = np.zeros((0, n_features))
    return Attribution(
        values=pd.DataFrame(values, index=X.index, columns=list(scorer.feature_names_in_)),
        base_value=base,
        output=-h,
        output_name=ISOLATION_OUTPUT,
        method="treeshap",
    )


# --------------------------------------------------------------------------- comparison


def top_k_features(attribution: Attribution, k: int = 3) -> np.ndarray:
    """Column positions of each row's k largest contributions (most risk-raising first).

    Ties are broken by column order (stable sort), so the answer is deterministic.
    """
    return _top_k_columns(attribution.values.to_numpy(), k)


def _top_k_columns(values: np.ndarray, k: int) -> np.ndarray:
    n_features = values.shape[1]
    if not 1 <= k <= n_features:
        raise ValueError(f"k must be between 1 and the number of features ({n_features})")
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


def top_k_agreement(a: Attribution, b: Attribution, k: int = 3) -> float:
    """Share of rows whose k largest contributions name the same features (as sets).

    Used to check that the fast Isolation Forest attribution tells a reviewer the
    same story as exact TreeSHAP. Rows and columns of ``a`` and ``b`` must match.
    Returns NaN when there are no rows.
    """
    return top_k_agreement_of(a.values, b.values, k)


def top_k_agreement_of(a: pd.DataFrame, b: pd.DataFrame, k: int = 3) -> float:
    """`top_k_agreement` of two tables of contributions (rows and columns must match)."""
    if not a.index.equals(b.index) or not a.columns.equals(b.columns):
        raise ValueError("attributions must cover the same rows and feature columns")
    if len(a) == 0:
        return float("nan")
    top_a = np.sort(_top_k_columns(a.to_numpy(), k), axis=1)
    top_b = np.sort(_top_k_columns(b.to_numpy(), k), axis=1)
    return float(np.mean((top_a == top_b).all(axis=1)))
