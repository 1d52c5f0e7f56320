"""Scorers: models that rank invoices so the most suspicious are reviewed first.

Every scorer follows scikit-learn conventions (``__init__`` only stores parameters,
what ``fit`` learns ends in ``_``, ``clone()`` works) and the small ``Scorer``
protocol below, so training, scoring and explanation code do not care which model
runs. A score never decides anything: it orders invoices for human review.

Scorers take a pandas DataFrame of finite float feature columns and remember the
column names seen at fit. Scoring refuses a frame whose columns differ in name or
order, because a silently re-ordered feature table would produce confident nonsense.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    import lightgbm

    from tillit.config import LabelWeighting, TrainingConfig


@runtime_checkable
class Scorer(Protocol):
    """What every fitted scorer offers: ``risk_score``, higher = more suspicious.

    scikit-learn's own method names keep scikit-learn's meaning (an outlier
    detector's ``score_samples`` is higher = more *normal*), so the ranking
    quantity has a name of its own, as pyod keeps ``decision_scores_`` apart.

    Being a runtime-checkable protocol with a data member, ``isinstance(x, Scorer)``
    is true only for *fitted* scorers (``feature_names_in_`` exists after fit).
    """

    feature_names_in_: np.ndarray

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> Self: ...

    def risk_score(self, X: pd.DataFrame) -> np.ndarray: ...


# --------------------------------------------------------------------------- input checks


def _frame_to_matrix(X: pd.DataFrame) -> np.ndarray:
    """Turn a feature frame into a finite float64 matrix, or say what is wrong with it."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"X must be a pandas DataFrame with named feature columns, got {type(X).__name__}"
        )
    if X.columns.has_duplicates:
        duplicated = sorted(map(str, X.columns[X.columns.duplicated()].unique()))
        raise ValueError(f"X has duplicated feature columns: {duplicated}")
    not_numeric = [
        str(c)
        for c, dtype in X.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    ]
    if not_numeric:
        raise ValueError(f"X has non-numeric feature columns: {not_numeric}")
    matrix = X.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(matrix)
    if not finite.all():
        bad = [str(c) for c, ok in zip(X.columns, finite.all(axis=0), strict=True) if not ok]
        raise ValueError(f"X has missing or infinite values in columns: {bad}")
    return matrix


def _check_columns(X: pd.DataFrame, expected: np.ndarray) -> None:
    """Refuse a frame whose feature columns differ in name or order from those at fit."""
    got = [str(c) for c in X.columns]
    want = [str(c) for c in expected]
    if got == want:
        return
    missing = [c for c in want if c not in set(got)]
    extra = [c for c in got if c not in set(want)]
    if missing or extra:
        raise ValueError(
            f"X has different feature columns than at fit: missing {missing}, unexpected {extra}"
        )
    raise ValueError(
        "X has the feature columns seen at fit but in a different order; "
        f"expected {want}, got {got}"
    )


def feature_matrix(scorer: BaseEstimator, X: pd.DataFrame) -> np.ndarray:
    """Check that ``scorer`` is fitted and ``X`` matches its features; return float64 values.

    Shared by scoring and explanation so both refuse the same bad inputs.
    """
    check_is_fitted(scorer, "feature_names_in_")
    if isinstance(X, pd.DataFrame):
        _check_columns(X, scorer.feature_names_in_)
    return _frame_to_matrix(X)


def _fit_matrix(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training frame; return its matrix and its column names."""
    matrix = _frame_to_matrix(X)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"cannot fit on an empty feature table (shape {matrix.shape})")
    names = np.asarray([str(c) for c in X.columns], dtype=object)
    return matrix, names


def _check_sample_weight(sample_weight: ArrayLike | None, n_rows: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (n_rows,):
        raise ValueError(f"sample_weight has shape {weight.shape}, expected ({n_rows},)")
    if not np.isfinite(weight).all() or (weight < 0).any() or weight.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return weight


# --------------------------------------------------------------------------- Isolation Forest


class IsolationForestScorer(BaseEstimator):
    """Unsupervised scorer: invoices that are easy to isolate are unusual.

    Wraps scikit-learn's ``IsolationForest`` and keeps its sign convention:
    ``score_samples`` and ``decision_function`` are higher = more normal.
    ``risk_score`` is the anomaly score of the original paper,
    ``2 ** (-h(x) / c(max_samples_))`` in (0, 1], where ``h(x)`` is the mean path
    length over trees: higher = shorter paths = more unusual. It needs no audit
    labels, so it works from the first month.

    Note: scikit-learn casts features to float32 inside the forest; values with more
    than about 7 significant digits (large SEK amounts with decimals) are rounded.

    Args:
        n_estimators: number of isolation trees.
        max_samples: rows drawn (without replacement) to grow each tree; capped at
            the number of training rows. Also accepts a float share or "auto".
        max_features: share (float) or number (int) of features drawn per tree.
        random_state: seed for the forest, so refits give identical scores.
        n_jobs: threads used to grow trees.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int | float | str = 256,
        max_features: int | float = 1.0,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Grow the forest on ``X``; ``y`` is ignored (present for API consistency)."""
        matrix, names = _fit_matrix(X)
        weight = _check_sample_weight(sample_weight, matrix.shape[0])
        max_samples = self.max_samples
        if isinstance(max_samples, numbers.Integral) and not isinstance(max_samples, bool):
            # Capping here avoids scikit-learn's warning for small training sets.
            max_samples = min(int(max_samples), matrix.shape[0])
        model = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        model.fit(matrix, sample_weight=weight)
        self.model_ = model
        self.feature_names_in_ = names
        self.n_features_in_ = matrix.shape[1]
        return self

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn's score: minus the anomaly score, in [-1, 0); higher = more normal."""
        matrix = feature_matrix(self, X)  # checks fit and columns first
        return np.asarray(self.model_.score_samples(matrix), dtype="float64")

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn's decision function: negative for outliers, higher = more normal."""
        matrix = feature_matrix(self, X)  # checks fit and columns first
        return np.asarray(self.model_.decision_function(matrix), dtype="float64")

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score in (0, 1]; higher = more suspicious."""
        return -self.score_samples(X)


# --------------------------------------------------------------------------- tail probabilities


def _keep_largest(terms: np.ndarray, columns: np.ndarray, keep: int) -> np.ndarray:
    """`terms` with each row's terms in `columns` beyond its `keep` largest set to 0.

    Ties go to the earlier column; `keep` 0 or at least the group's size keeps them all.
    """
    if not 0 < keep < columns.size:
        return terms
    group = terms[:, columns]
    left_out = np.argsort(-group, axis=1, kind="stable")[:, keep:]
    np.put_along_axis(group, left_out, 0.0, axis=1)
    terms = terms.copy()
    terms[:, columns] = group
    return terms


class TailProbabilityScorer(BaseEstimator):
    """Unsupervised scorer of another family than the forest: per-feature tail probabilities.

    As ECOD (Li et al. 2022) does, each feature is judged on its own against the
    training invoices' empirical distribution: the score of a value is
    ``-log((n_at_or_beyond + 1) / (n + 1))``, where ``n_at_or_beyond`` counts training
    values at or beyond it on the feature's risky side (above it, or below it for the
    ``lower_tail`` features, where too regular is suspicious). ``risk_score`` is the
    sum of the ``top_k`` largest terms of the invoice (of all terms when 0), so an
    invoice rises for being far out on several features at once, while an invoice
    mildly odd on many correlated features does not outrank one far out on a few. Its
    explanation is exact: each feature's counted term (0 when not among the invoice's
    ``top_k``) minus its mean over the training invoices, plus the mean training score,
    adds up to the score.

    A value at the bulk of its feature (the most common value, such as 0 for a flag)
    scores 0, so features that rarely fire cost nothing where they do not. A feature
    with one value on every training invoice says nothing about what is usual (a
    3-month growth window that has not filled yet in a short export holds 1 everywhere)
    and is not judged: its term is 0, as the forest cannot split on it either. Without
    this, every invoice of the first month after such a window fills scored the largest
    term there is on it.

    Facts of the provider (`shared`: the same value on every invoice of a provider,
    such as its tax debt, board changes and client growth) count at most
    ``max_shared_terms`` times in an invoice's sum, the largest first: a provider with
    five registry events would otherwise give every one of its invoices, honest or not,
    five large terms and crowd out what the invoice itself shows (issue 21: most of the
    honest invoices inside the capacity were such providers' invoices).

    Some facts of an invoice show in several columns at once (visits typed in by hand
    afterwards show as a high manual share, its peer z-score, its rise over the client's
    own months, round and repeated start times): each group in `facts` counts at most
    ``max_fact_terms`` of its terms per invoice, the largest first, so one fact seen five
    ways does not outweigh five facts (issue 21: honest providers registering to the
    quarter hour crowded the capacity; docs/bench-family.md).

    Args:
        lower_tail: feature names whose low values are the suspicious ones.
        max_reference: at most this many training values are kept per feature, taken at
            evenly spaced ranks (the model stays small; the tails lose a little detail).
        top_k: how many of an invoice's largest terms are summed; 0 sums every feature's
            (as scorers fitted before this parameter existed do). Ties go to the earlier
            column, so the choice is deterministic.
        shared: feature names that hold one value for a whole provider.
        max_shared_terms: at most this many of the `shared` features' terms count per
            invoice (its largest; ties to the earlier column); 0 counts them all.
        facts: groups of feature names that show one fact of the invoice.
        max_fact_terms: at most this many terms of each group count per invoice (its
            largest; ties to the earlier column); 0 counts them all.
    """

    # Scorers pickled before `top_k` existed have no such attribute: they sum every term.
    top_k: int = 0
    # Scorers pickled before constant features were left out judge every feature.
    judged_: np.ndarray | None = None
    # Scorers pickled before the provider's facts were capped count every such term.
    shared: tuple[str, ...] = ()
    max_shared_terms: int = 0
    shared_: np.ndarray | None = None
    # Scorers pickled before facts were grouped count every term of a group.
    facts: tuple[tuple[str, ...], ...] = ()
    max_fact_terms: int = 0
    fact_columns_: tuple[np.ndarray, ...] = ()

    def __init__(
        self,
        lower_tail: tuple[str, ...] = (),
        max_reference: int = 4096,
        top_k: int = 0,
        shared: tuple[str, ...] = (),
        max_shared_terms: int = 0,
        facts: tuple[tuple[str, ...], ...] = (),
        max_fact_terms: int = 0,
    ) -> None:
        self.lower_tail = lower_tail
        self.max_reference = max_reference
        self.top_k = top_k
        self.shared = shared
        self.max_shared_terms = max_shared_terms
        self.facts = facts
        self.max_fact_terms = max_fact_terms

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Keep each feature's sorted training values; ``y`` and weights are ignored."""
        matrix, names = _fit_matrix(X)
        ordered = np.sort(matrix, axis=0)
        n = ordered.shape[0]
        if n > self.max_reference:
            ordered = ordered[np.linspace(0, n - 1, self.max_reference).round().astype(np.int64)]
        self.reference_ = np.ascontiguousarray(ordered.T)
        self.lower_ = np.asarray([name in set(self.lower_tail) for name in names], dtype=bool)
        self.shared_ = np.asarray([name in set(self.shared) for name in names], dtype=bool)
        position = {name: j for j, name in enumerate(names)}
        self.fact_columns_ = tuple(
            np.asarray([position[name] for name in group if name in position], dtype=np.int64)
            for group in self.facts
        )
        self.feature_names_in_ = names
        self.n_features_in_ = matrix.shape[1]
        self.judged_ = ordered[0] != ordered[-1]
        self.expected_ = self._counted(self._terms(matrix)).mean(axis=0)
        return self

    def _terms(self, matrix: np.ndarray) -> np.ndarray:
        n = self.reference_.shape[1]
        terms = np.empty(matrix.shape, dtype=np.float64)
        for j in range(matrix.shape[1]):
            reference = self.reference_[j]
            if self.lower_[j]:
                beyond = np.searchsorted(reference, matrix[:, j], side="right")
            else:
                beyond = n - np.searchsorted(reference, matrix[:, j], side="left")
            terms[:, j] = -np.log((beyond + 1.0) / (n + 1.0))
        if self.judged_ is not None:
            terms[:, ~self.judged_] = 0.0
        return terms

    def _counted(self, terms: np.ndarray) -> np.ndarray:
        """The terms the score counts: each row's `top_k` largest, the others set to 0.

        Of the provider's facts (`shared`) only each row's `max_shared_terms` largest
        are candidates, and of each group in `facts` its `max_fact_terms` largest; the
        rest are 0 before the `top_k` are chosen.
        """
        shared = np.flatnonzero(self.shared_) if self.shared_ is not None else np.array([])
        terms = _keep_largest(terms, shared, self.max_shared_terms)
        for columns in self.fact_columns_:
            terms = _keep_largest(terms, columns, self.max_fact_terms)
        if self.top_k <= 0 or self.top_k >= terms.shape[1]:
            return terms
        left_out = np.argsort(-terms, axis=1, kind="stable")[:, self.top_k :]
        counted = terms.copy()
        np.put_along_axis(counted, left_out, 0.0, axis=1)
        return counted

    def feature_terms(self, X: pd.DataFrame) -> np.ndarray:
        """Each feature's counted term of the score, shape (rows, features); rows sum to it."""
        return self._counted(self._terms(feature_matrix(self, X)))

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        """Sum of the largest tail scores; higher = further out on the risky sides."""
        return self.feature_terms(X).sum(axis=1)


# --------------------------------------------------------------------------- LightGBM


class LightGBMScorer(BaseEstimator):
    """Supervised scorer learnt from earlier audit outcomes (confirmed = 1, cleared = 0).

    Wraps ``lightgbm.LGBMClassifier`` with deterministic training
    (``deterministic=True, force_row_wise=True`` and a fixed seed). ``risk_score``
    is ``predict_proba``'s probability of class 1. With ``class_weight="balanced"`` those
    probabilities are inflated for the rare class: use them to rank, not as rates.

    With ``n_seeds`` above 1 it is a bag of that many boosters, seeded ``random_state``,
    ``random_state + 1``, ...: the same data, different feature (and row) samples. The
    raw log-odds is the mean of theirs and the probability its logistic, so one
    booster's chance split on a single invoice counts for 1/n. Explanations stay
    exact: the mean of the boosters' attributions and of their base values adds up to
    the mean log-odds.

    Args:
        n_estimators: boosting rounds.
        learning_rate: shrinkage per round.
        num_leaves: maximum leaves per tree.
        min_child_samples: minimum rows per leaf; guards against memorising single audits.
        subsample: share of rows per round (row bagging every round when below 1).
        colsample_bytree: share of features per tree.
        reg_lambda: L2 penalty on leaf values.
        class_weight: "balanced" to up-weight the rare confirmed class, or None.
        random_state: seed for LightGBM (of the first booster of a bag).
        n_jobs: threads.
        n_seeds: boosters in the bag (1: one booster, as scorers pickled before it).
        monotone_increasing: columns the log-odds may only rise with (LightGBM's
            `monotone_constraints` +1) when `monotone_increasing_on`; a name that is not a
            column of the training frame is skipped (`monotone_increasing_applied_` holds
            those used).
        monotone_increasing_on: whether to constrain them (off: as scorers before it).
        monotone_constraints_method: LightGBM's "basic", "intermediate" or "advanced".
    """

    # Scorers pickled before bagging have one booster; before the constraints, none.
    n_seeds: int = 1
    monotone_increasing: tuple[str, ...] = ()
    monotone_increasing_on: bool = False
    monotone_constraints_method: str = "basic"
    monotone_increasing_applied_: tuple[str, ...] = ()

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        subsample: float = 1.0,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        class_weight: str | None = "balanced",
        random_state: int = 0,
        n_jobs: int = 1,
        n_seeds: int = 1,
        monotone_increasing: Sequence[str] = (),
        monotone_increasing_on: bool = False,
        monotone_constraints_method: str = "basic",
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.n_seeds = n_seeds
        self.monotone_increasing = tuple(monotone_increasing)
        self.monotone_increasing_on = monotone_increasing_on
        self.monotone_constraints_method = monotone_constraints_method

    def _monotone_parameters(self, names: np.ndarray) -> dict[str, Any]:
        """LightGBM's constraint arguments for these columns; none when nothing is constrained.

        Only the named columns present in the frame are constrained (+1), so one config
        serves home care and table mode alike; with none present LightGBM is called as
        before the setting existed, bit for bit.
        """
        wanted = set(self.monotone_increasing) if self.monotone_increasing_on else set()
        self.monotone_increasing_applied_ = tuple(str(n) for n in names if n in wanted)
        if not self.monotone_increasing_applied_:
            return {}
        return {
            "monotone_constraints": [1 if n in wanted else 0 for n in names],
            "monotone_constraints_method": self.monotone_constraints_method,
        }

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Learn from audited invoices; ``y`` holds 1 (confirmed) or 0 (cleared)."""
        import lightgbm

        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be at least 1, got {self.n_seeds}")
        matrix, names = _fit_matrix(X)
        labels = _binary_labels(y, matrix.shape[0])
        weight = _check_sample_weight(sample_weight, matrix.shape[0])
        monotone = self._monotone_parameters(names)
        models = []
        for seed in range(self.random_state, self.random_state + self.n_seeds):
            model = lightgbm.LGBMClassifier(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                subsample=self.subsample,
                subsample_freq=1 if self.subsample < 1.0 else 0,
                colsample_bytree=self.colsample_bytree,
                reg_lambda=self.reg_lambda,
                class_weight=self.class_weight,
                random_state=seed,
                n_jobs=self.n_jobs,
                deterministic=True,
                force_row_wise=True,
                verbose=-1,
                **monotone,
            )
            # Fitted on a bare matrix: the column names live in feature_names_in_ and are
            # checked by us, so LightGBM's own name rules (no JSON characters) never bite.
            model.fit(matrix, labels, sample_weight=weight)
            models.append(model)
        self.model_ = models[0]
        self.booster_: lightgbm.Booster = models[0].booster_
        self.boosters_: list[lightgbm.Booster] = [model.booster_ for model in models]
        self.feature_names_in_ = names
        self.n_features_in_ = matrix.shape[1]
        self.classes_ = np.array([0, 1])
        return self

    def boosters(self) -> list[lightgbm.Booster]:
        """The bag's boosters (one on scorers pickled before bagging)."""
        return list(getattr(self, "boosters_", None) or [self.booster_])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities of cleared (column 0) and confirmed (column 1), as scikit-learn's."""
        matrix = feature_matrix(self, X)  # checks fit and columns first
        boosters = self.boosters()
        if len(boosters) == 1:  # LightGBM's own probability, as before bagging
            return np.asarray(self.model_.predict_proba(matrix), dtype="float64")
        confirmed = 1.0 / (1.0 + np.exp(-_mean_raw_score(boosters, matrix)))
        return np.column_stack([1.0 - confirmed, confirmed])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds of a confirmed irregularity (the bag's mean): what TreeSHAP explains."""
        matrix = feature_matrix(self, X)  # checks fit and columns first
        return _mean_raw_score(self.boosters(), matrix)

    def risk_score(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted probability of a confirmed irregularity; higher = more suspicious."""
        return self.predict_proba(X)[:, 1]


def _mean_raw_score(boosters: Sequence[lightgbm.Booster], matrix: np.ndarray) -> np.ndarray:
    """The boosters' mean raw log-odds (one booster's own when it is alone, bit for bit)."""
    total = np.zeros(matrix.shape[0])
    for booster in boosters:
        total += np.asarray(booster.predict(matrix, raw_score=True), dtype="float64")
    return total / len(boosters)


def _binary_labels(y: ArrayLike | None, n_rows: int) -> np.ndarray:
    """Audit labels as int 0/1, refusing anything a reviewer could not have meant."""
    if y is None:
        raise ValueError("LightGBMScorer is supervised: y (audit outcomes, 1/0) is required")
    labels = np.asarray(y)
    if labels.shape != (n_rows,):
        raise ValueError(f"y has shape {labels.shape}, expected ({n_rows},)")
    try:
        numeric = labels.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError("y must hold 1 (confirmed) or 0 (cleared)") from err
    if not np.isin(numeric, [0.0, 1.0]).all():
        raise ValueError("y must hold only 1 (confirmed) or 0 (cleared); found other values")
    present = np.unique(numeric)
    if present.size < 2:
        raise ValueError(
            "LightGBMScorer needs both confirmed (1) and cleared (0) audit outcomes "
            f"to learn from; y holds only class {int(present[0])}"
        )
    return numeric.astype(np.int64)


# --------------------------------------------------------------------------- from config


def isolation_forest_scorer(training: TrainingConfig) -> IsolationForestScorer:
    """The label-free scorer as the config's `isolation_forest` section says, unfitted.

    The one construction for every stream (home care, table mode), so a parameter
    added to the section holds for all of them.
    """
    return IsolationForestScorer(
        **training.isolation_forest.model_dump(), random_state=training.seed
    )


def tail_probability_scorer(
    training: TrainingConfig,
    lower_tail: tuple[str, ...],
    shared: tuple[str, ...] = (),
    facts: tuple[tuple[str, ...], ...] = (),
) -> TailProbabilityScorer:
    """The second label-free scorer as the config's `tail_probability` section says, unfitted.

    `shared`: the features that are facts of the whole provider (capped per invoice);
    `facts`: groups of features that show one fact of the invoice (capped per group).
    """
    return TailProbabilityScorer(
        lower_tail=lower_tail,
        max_reference=training.tail_probability.max_reference,
        top_k=training.tail_probability.top_k,
        shared=shared,
        max_shared_terms=training.tail_probability.max_provider_terms,
        facts=facts,
        max_fact_terms=training.tail_probability.max_terms_per_fact,
    )


def lightgbm_scorer(training: TrainingConfig) -> LightGBMScorer:
    """The supervised scorer as the config's `lightgbm` section says, unfitted.

    No class weight of its own: the classes are balanced (when `labels.balance_classes`)
    through the sample weights of `label_weights`, on top of the review propensity.
    """
    return LightGBMScorer(
        **training.lightgbm.model_dump(),
        class_weight=None,
        random_state=training.seed,
    )


def label_weights(
    X: pd.DataFrame, reviewed: np.ndarray, y: np.ndarray, training: TrainingConfig
) -> np.ndarray:
    """Sample weights of the reviewed rows of X, as the config's `labels` section says.

    `y` holds the reviewed rows' labels. Inverse-propensity weights (rows rarely
    picked for review count for more), then each class carries half the weight.
    """
    weights = selection_weights(X, reviewed, training.labels, training.seed)
    if training.labels.balance_classes:
        weights = balance_classes(weights, y)
    return weights


def selection_weights(
    X: pd.DataFrame, reviewed: np.ndarray, config: LabelWeighting, seed: int
) -> np.ndarray:
    """Inverse-propensity weights for the reviewed rows of X (1 for all when disabled).

    The propensity model is cross-fitted (each row's chance is predicted by a model
    that did not see it), so a reviewed invoice does not explain its own selection.
    """
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedKFold

    if config.method == "none" or reviewed.all() or not reviewed.any():
        return np.ones(int(reviewed.sum()))
    propensity = np.zeros(len(X))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for train_rows, predict_rows in folds.split(X, reviewed):
        # A deliberately small model: it only has to say which invoices reviews favoured.
        model = lgb.LGBMClassifier(
            objective="binary",
            num_leaves=4,
            min_child_samples=50,
            learning_rate=0.1,
            n_estimators=100,
            deterministic=True,
            force_row_wise=True,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(X.iloc[train_rows], reviewed[train_rows])
        propensity[predict_rows] = np.asarray(model.predict_proba(X.iloc[predict_rows]))[:, 1]
    weights = 1.0 / np.clip(propensity[reviewed], config.min_propensity, 1.0)
    return weights / weights.mean()


def balance_classes(weights: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rescale weights so each class carries half the total weight, which stays unchanged.

    Both shares are taken before either class is rescaled: rescaling one class first
    changes the total the other's share is computed from (80/20 would end at 50:35).
    """
    weights = np.asarray(weights, dtype="float64")
    total = weights.sum()
    out = weights.copy()
    for value in np.unique(y):
        in_class = y == value
        out[in_class] *= (total / 2.0) / weights[in_class].sum()
    return out
