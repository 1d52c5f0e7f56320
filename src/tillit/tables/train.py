"""Training and evaluation of a table's risk model, as auditors work.

With a time column: the scorers learn from the training window (the spec's `train`,
or the first 60 % of the periods), `label_delay` periods are skipped (their labels
would not be known yet), and the model is judged on every later period at the
review capacity of each period. The blend weight is chosen inside the training
window (a time split at its end, or purged time-ordered cross-validation where the
window is too short for one). Without a time column: stratified k-fold cross-validation,
each row scored by a model that never saw it. Every ranking is set beside the
one-line baseline "largest amount first".

The registered model is then refit on every row (labels only where they are at
least `label_delay` old at the end of the table); the metrics logged with it are
the held-out ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from tillit.config import ReviewConfig, TrainingConfig
from tillit.errors import TillitError
from tillit.modelling.evaluate import ranking_metrics, top_k_mask
from tillit.review.fairness import FairnessAudit, fairness_audit
from tillit.tables.features import history_feature_descriptions, periods_text
from tillit.tables.model import TableRiskModel, blend_percentiles, fit_table_model
from tillit.tables.spec import TableSpecFile, feature_columns

TRAIN_SHARE_OF_PERIODS = 0.6
# The blend weight is chosen on the last quarter of the training periods (time split).
VALIDATION_SHARE_OF_TRAINING_PERIODS = 0.25
WEIGHT_GRID = tuple(round(w / 10, 1) for w in range(11))
# Fewer confirmed (or cleared) rows than this and the choice would be noise.
MIN_ROWS_PER_CLASS_TO_CHOOSE_WEIGHT = 10
RANKINGS = ("combined", "lightgbm", "isolation_forest", "baseline_amount")
METRICS = ("average_precision", "roc_auc", "precision_at_k", "recall_at_k", "money_caught_at_k")


class TableTrainingError(TillitError):
    """The table cannot be split or learnt from as asked."""


@dataclass(frozen=True)
class TableEvaluation:
    """Held-out figures of every ranking, and how they were obtained."""

    basis: str
    period: str
    metrics: dict[str, float]
    capacity: str
    n_rows: int
    n_positive: int


@dataclass(frozen=True)
class BlendChoice:
    """The supervised scorer's weight in the blend, and how it was arrived at, in words."""

    weight: float
    basis: str


def choose_supervised_weight(
    labels: np.ndarray,
    unsupervised_percentile: np.ndarray,
    supervised_percentile: np.ndarray,
    fallback: float,
    where: str,
) -> BlendChoice:
    """The weight on the grid 0, 0.1, ..., 1 whose blend has the best average precision.

    Why: how much past audit outcomes should count against plain unusualness depends
    on the stream (many reliable labels: mostly the supervised scorer; few or noisy:
    mostly the label-free one), so a fixed weight is wrong somewhere. The choice is
    made on rows the reported evaluation does not judge (`where` says which); ties go
    to the weight nearest `fallback`, and with fewer than ten rows of either class
    the fallback stands.
    """
    if np.isnan(supervised_percentile).all():
        return BlendChoice(
            fallback,
            f"{fallback:g} (the configured weight: the rows fitted before {where} do not "
            "hold both confirmed and cleared rows, so no supervised scorer to weigh)",
        )
    known = ~np.isnan(labels) & ~np.isnan(supervised_percentile)
    y = labels[known]
    n_confirmed, n_cleared = int((y == 1).sum()), int((y == 0).sum())
    if min(n_confirmed, n_cleared) < MIN_ROWS_PER_CLASS_TO_CHOOSE_WEIGHT:
        return BlendChoice(
            fallback,
            f"{fallback:g} (the configured weight: {n_confirmed} confirmed and {n_cleared} "
            f"cleared rows in {where} are too few to choose one)",
        )
    iso, gbm = unsupervised_percentile[known], supervised_percentile[known]
    precision = {w: float(average_precision_score(y, w * gbm + (1 - w) * iso)) for w in WEIGHT_GRID}
    best = max(WEIGHT_GRID, key=lambda w: (round(precision[w], 9), -abs(w - fallback)))
    return BlendChoice(
        best,
        f"{best:g}, chosen on {where} ({n_confirmed} confirmed rows): average precision "
        f"{precision[best]:.3f} there, against {precision[0.0]:.3f} for the label-free "
        f"scorer alone and {precision[1.0]:.3f} for the supervised one alone",
    )


@dataclass(frozen=True)
class TableTrainingResult:
    """The registered model, its held-out evaluation and the fairness audit.

    `held_out` holds, per held-out row, each ranking's score
    (`<ranking>_score`), the label, whether the combined risk flagged it, and the
    protected columns.
    """

    model: TableRiskModel
    evaluation: TableEvaluation
    blend: BlendChoice
    label_counts: dict[str, int]
    fairness: FairnessAudit | None
    rows_trained: int
    held_out: pd.DataFrame = field(repr=False)


def feature_descriptions(spec: TableSpecFile, table: pd.DataFrame) -> dict[str, str]:
    """Every model input with what it holds: the amount, the spec's features, the history."""
    out: dict[str, str] = {}
    if spec.amount:
        out[spec.amount] = spec.amount
    for column in feature_columns(spec, table):
        out.setdefault(column, column)
    out.update(history_feature_descriptions(spec))
    return out


def model_inputs(table: pd.DataFrame, history: pd.DataFrame, spec: TableSpecFile) -> pd.DataFrame:
    """The model's input frame: the table's own columns that are features, then the history."""
    columns = list(feature_descriptions(spec, table))
    own = [c for c in columns if c in table.columns]
    derived = [c for c in columns if c not in table.columns]
    frame = pd.concat(
        [table.loc[:, own].astype("float64"), history.loc[:, derived]], axis=1, copy=False
    )
    return frame.loc[:, columns]


def capacity_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    periods: np.ndarray,
    amounts: np.ndarray | None,
    capacity: ReviewConfig,
) -> tuple[dict[str, float], np.ndarray]:
    """AP and ROC-AUC over the labelled rows; precision, recall and money at each period's k.

    Rows without a label count as not confirmed in the top k (a reviewer who opens
    them finds nothing known). Returns the metrics and the flagged mask.
    """
    y = np.nan_to_num(labels, nan=0.0)
    flagged = np.zeros(len(y), dtype=bool)
    for _, index in pd.Series(np.arange(len(y))).groupby(periods, sort=True):
        rows = index.to_numpy()
        flagged[rows[top_k_mask(scores[rows], capacity.k(len(rows)))]] = True
    positives = y == 1
    caught = positives & flagged
    labelled = ~np.isnan(labels)
    threshold_free = ranking_metrics(labels[labelled], scores[labelled], 1)
    money = float("nan")
    if amounts is not None and amounts[positives].sum() > 0:
        money = float(amounts[caught].sum() / amounts[positives].sum())
    metrics = {
        "average_precision": threshold_free["average_precision"],
        "roc_auc": threshold_free["roc_auc"],
        "precision_at_k": float(caught.sum() / max(flagged.sum(), 1)),
        "recall_at_k": float(caught.sum() / positives.sum()) if positives.any() else float("nan"),
        "money_caught_at_k": money,
        "k": float(flagged.sum()),
    }
    return metrics, flagged


def capacity_text(spec: TableSpecFile) -> str:
    """The spec's review capacity in words: per period, or of the table without a time column."""
    each = f"each {spec.period}'s rows" if spec.time is not None else "the table's rows"
    if spec.capacity.capacity_count:
        per = f"per {spec.period}" if spec.time is not None else "in the table"
        return f"{spec.capacity.capacity_count} rows {per}"
    return f"{spec.capacity.capacity_share:.1%} of {each}"


def _labels(table: pd.DataFrame, spec: TableSpecFile) -> np.ndarray:
    if spec.label is None:
        return np.full(len(table), np.nan)
    return table[spec.label].to_numpy(dtype=np.float64)


def _time_split(
    table: pd.DataFrame, periods: np.ndarray, spec: TableSpecFile
) -> tuple[np.ndarray, np.ndarray, str]:
    """Training rows, held-out rows and the held-out window in words."""
    assert spec.time is not None
    times = pd.to_datetime(table[spec.time]).to_numpy()
    if spec.train is not None:
        start = np.datetime64(spec.train.start)
        end = np.datetime64(spec.train.to) + np.timedelta64(1, "D")
        train = (times >= start) & (times < end)
        held_from = end + np.timedelta64(spec.label_delay * spec.period_seconds, "s")
        held = times >= held_from
    else:
        ordered = np.unique(periods)
        n_train = max(1, int(TRAIN_SHARE_OF_PERIODS * len(ordered)))
        train = np.isin(periods, ordered[:n_train])
        held = np.isin(periods, ordered[n_train + spec.label_delay :])
    if not train.any():
        raise TableTrainingError(f"the training window holds no rows of the table {spec.name!r}")
    if not held.any():
        raise TableTrainingError(
            f"no period of the table {spec.name!r} is left to evaluate on after the training "
            f"window and the label delay of {periods_text(spec.label_delay, spec.period)}; "
            "give a longer table or an earlier train window"
        )
    held_periods = np.unique(periods[held])
    return train, held, f"{held_periods[0]}..{held_periods[-1]}"


def _score_all(model: TableRiskModel, X: pd.DataFrame) -> dict[str, np.ndarray]:
    parts = model.components(X)
    return {
        "combined": parts["risk_score"].to_numpy(),
        "isolation_forest": parts["isolation_forest_score"].to_numpy(),
        "lightgbm": parts["lightgbm_score"].to_numpy(),
        "isolation_forest_percentile": parts["isolation_forest_percentile"].to_numpy(),
        "lightgbm_percentile": parts["lightgbm_percentile"].to_numpy(),
    }


def _validation_split(
    train: np.ndarray, periods: np.ndarray, spec: TableSpecFile
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Inside the training window: earlier periods to fit, the last quarter to choose on.

    The label delay is skipped between them, as between training and evaluation.
    None when the window is too short to leave both parts.
    """
    ordered = np.unique(periods[train])
    n_validation = max(1, round(VALIDATION_SHARE_OF_TRAINING_PERIODS * len(ordered)))
    n_fit = len(ordered) - n_validation - spec.label_delay
    if n_fit < 1:
        return None
    fit_rows = train & np.isin(periods, ordered[:n_fit])
    validation = train & np.isin(periods, ordered[-n_validation:])
    chosen = ordered[-n_validation:]
    return fit_rows, validation, f"{chosen[0]}..{chosen[-1]} (the end of the training window)"


@dataclass(frozen=True)
class PurgedFold:
    """One fold of the purged, time-ordered cross-validation: rows learnt from, rows judged.

    Every row in `fit` lies at least the label delay before the first validation
    period, so each label the fold's model learns from would already be known when
    the validation rows arrive, as in use.
    """

    fit_periods: tuple[str, ...]
    validation_periods: tuple[str, ...]
    fit: np.ndarray = field(repr=False)
    validation: np.ndarray = field(repr=False)


def purged_time_folds(
    periods: np.ndarray, train: np.ndarray, label_delay: int, n_folds: int
) -> list[PurgedFold]:
    """Expanding-window folds ordered by time, the label delay purged before each validation block.

    The training window's periods are cut into at most `n_folds` consecutive
    validation blocks. A block starting at period p is judged by a model fitted on
    the periods before p minus `label_delay` (the purge gap: their labels would not
    be known yet), at most as many periods as the training window holds, so a
    fold's model learns from as much history as the registered one. When the window
    is shorter than the delay, those periods lie before it: their labels are old
    enough to be known when training runs. Only blocks with at least one period to
    fit on are kept. Periods are counted as the table's distinct periods.
    """
    ordered = np.unique(periods)
    position = np.searchsorted(ordered, periods)
    window = np.unique(position[train])
    eligible = window[window - label_delay >= 1]
    folds: list[PurgedFold] = []
    if len(eligible) == 0:
        return folds
    for block in np.array_split(eligible, min(n_folds, len(eligible))):
        fit_end = int(block[0]) - label_delay  # first period not learnt from
        fit_start = max(0, fit_end - len(window))
        fit = (position >= fit_start) & (position < fit_end)
        validation = train & np.isin(position, block)
        folds.append(
            PurgedFold(
                fit_periods=tuple(str(p) for p in ordered[fit_start:fit_end]),
                validation_periods=tuple(str(p) for p in ordered[block]),
                fit=fit,
                validation=validation,
            )
        )
    return folds


def purged_cv_where(folds: list[PurgedFold], label_delay: int, period: str) -> str:
    """The rows a purged cross-validation chose on, in words."""
    first, last = folds[0].validation_periods[0], folds[-1].validation_periods[-1]
    return (
        f"purged time-ordered cross-validation inside the training window (the window is too "
        f"short for a time split): {len(folds)} folds judged on {first}..{last}, each fitted "
        f"on the {period}s ending {periods_text(label_delay, period)} before its first {period} "
        f"judged (the first fold on {folds[0].fit_periods[0]}..{folds[0].fit_periods[-1]})"
    )


def _choose_by_purged_folds(
    folds: list[PurgedFold],
    y: np.ndarray,
    spec: TableSpecFile,
    fallback: float,
    score: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]],
) -> BlendChoice:
    """The weight chosen on every fold's validation rows, each scored by its own fold's model.

    `score(fit_rows, scored_rows)` fits a model on the first row positions and scores
    the second. With no fold, or too few labels in them, the configured weight
    stands and the basis says why.
    """
    delay = periods_text(spec.label_delay, spec.period)
    if not folds:
        return BlendChoice(
            fallback,
            f"{fallback:g} (the configured weight: the training window is too short for a time "
            f"split, and no {spec.period} in it has a {spec.period} to learn from "
            f"{delay} before it, so purged cross-validation has no fold)",
        )
    n = len(y)
    iso, gbm, labels = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for fold in folds:
        rows, scored = np.flatnonzero(fold.fit), np.flatnonzero(fold.validation)
        parts = score(rows, scored)
        iso[scored] = parts["isolation_forest_percentile"]
        gbm[scored] = parts["lightgbm_percentile"]
        labels[scored] = y[scored]
    judged = ~np.isnan(iso)
    return choose_supervised_weight(
        labels[judged],
        iso[judged],
        gbm[judged],
        fallback,
        purged_cv_where(folds, spec.label_delay, spec.period),
    )


def train_table(
    table: pd.DataFrame,
    history: pd.DataFrame,
    spec: TableSpecFile,
    training: TrainingConfig,
) -> TableTrainingResult:
    """Evaluate on held-out rows, then fit the model to register on every row.

    The blend weight is the spec's number, or with `supervised_weight: auto` chosen
    on rows the evaluation does not judge: the end of the training window (time
    split); where the window has no room for that split after the label delay, the
    validation blocks of a purged, time-ordered cross-validation inside it
    (`purged_time_folds`); without a time column, the other folds' out-of-fold
    scores (cross-validation).

    Raises:
        TableTrainingError: the table cannot be split as asked.
    """
    X = model_inputs(table, history, spec)
    descriptions = feature_descriptions(spec, table)
    y = _labels(table, spec)
    periods = history["period"].to_numpy()
    amounts = table[spec.amount].to_numpy(dtype=np.float64) if spec.amount else None
    fallback = training.blend.supervised_weight
    fixed = None
    if spec.supervised_weight != "auto":
        weight = float(spec.supervised_weight)
        fixed = BlendChoice(weight, f"{weight:g} (set in the spec)")

    def fit(
        rows: np.ndarray,
        labels: np.ndarray,
        trained: np.ndarray,
        weight: float = fallback,
        review_known: np.ndarray | None = None,
    ) -> TableRiskModel:
        model = fit_table_model(
            X.iloc[rows],
            labels,
            training,
            spec_name=spec.name,
            spec_hash=spec.hash(),
            descriptions=descriptions,
            trained_periods=[str(p) for p in np.unique(trained)],
            review_known=review_known,
        )
        model.supervised_weight = weight
        return model

    scores: dict[str, np.ndarray] = {}
    blend = fixed or BlendChoice(fallback, f"{fallback:g} (the configured weight)")
    if spec.time is not None:
        train, held, window = _time_split(table, periods, spec)
        inner = _validation_split(train, periods, spec) if fixed is None else None
        if inner is not None:
            fit_rows, validation, where = inner
            inner_model = fit(np.flatnonzero(fit_rows), y[fit_rows], periods[fit_rows])
            parts = _score_all(inner_model, X.loc[validation])
            blend = choose_supervised_weight(
                y[validation],
                parts["isolation_forest_percentile"],
                parts["lightgbm_percentile"],
                fallback,
                where,
            )
        elif fixed is None:
            blend = _choose_by_purged_folds(
                purged_time_folds(periods, train, spec.label_delay, spec.cv_folds),
                y,
                spec,
                fallback,
                lambda rows, scored: _score_all(fit(rows, y[rows], periods[rows]), X.iloc[scored]),
            )
        held_model = fit(np.flatnonzero(train), y[train], periods[train], blend.weight)
        scores = _score_all(held_model, X.loc[held])
        basis = (
            f"time split: trained on {np.unique(periods[train])[0]}..{np.unique(periods[train])[-1]}, "
            f"{periods_text(spec.label_delay, spec.period)} skipped for the label delay, judged on {window}"
        )
        held_index = np.flatnonzero(held)
    else:
        from sklearn.model_selection import StratifiedKFold

        labelled = np.flatnonzero(~np.isnan(y))
        if len(labelled) == 0 or len(np.unique(y[labelled])) < 2:
            held_index = np.zeros(0, dtype=np.int64)
            window, basis = "none", "no evaluation: the table has no labels of both kinds"
        else:
            folds = StratifiedKFold(spec.cv_folds, shuffle=True, random_state=training.seed)
            unlabelled = np.flatnonzero(np.isnan(y))
            names = (
                "isolation_forest",
                "lightgbm",
                "isolation_forest_percentile",
                "lightgbm_percentile",
            )
            out = {k: np.full(len(y), np.nan) for k in names}
            fold_of = np.full(len(y), -1)
            for fold, (fit_part, test_part) in enumerate(folds.split(labelled, y[labelled])):
                rows = np.concatenate([labelled[fit_part], unlabelled])
                fold_model = fit(rows, y[rows], periods[rows])
                test_rows = labelled[test_part]
                fold_of[test_rows] = fold
                parts = _score_all(fold_model, X.iloc[test_rows])
                for k in names:
                    out[k][test_rows] = parts[k]
            combined = np.full(len(y), np.nan)
            for fold in range(spec.cv_folds):
                # Each fold's blend weight is chosen on the other folds' out-of-fold scores.
                others = fold_of >= 0
                others &= fold_of != fold
                mine = fold_of == fold
                choice = fixed or choose_supervised_weight(
                    y[others],
                    out["isolation_forest_percentile"][others],
                    out["lightgbm_percentile"][others],
                    fallback,
                    "the other folds",
                )
                supervised = out["lightgbm_percentile"][mine]
                combined[mine] = blend_percentiles(
                    out["isolation_forest_percentile"][mine],
                    None if np.isnan(supervised).all() else supervised,
                    choice.weight,
                )
            if fixed is None:
                scored = fold_of >= 0
                blend = choose_supervised_weight(
                    y[scored],
                    out["isolation_forest_percentile"][scored],
                    out["lightgbm_percentile"][scored],
                    fallback,
                    "the out-of-fold scores of every labelled row",
                )
            out["combined"] = combined
            held_index = labelled
            scores = {k: v[labelled] for k, v in out.items()}
            window = f"{spec.cv_folds}-fold cross-validation"
            basis = f"stratified {spec.cv_folds}-fold cross-validation, every row scored by a model that never saw it"
    for k in ("isolation_forest_percentile", "lightgbm_percentile"):
        scores.pop(k, None)
    metrics: dict[str, float] = {}
    held_out = pd.DataFrame(index=table.index[held_index])
    fairness = None
    n_positive = int(np.nansum(y[held_index] == 1)) if len(held_index) else 0
    if len(held_index) and n_positive:
        held_y = y[held_index]
        held_periods = periods[held_index]
        held_amounts = amounts[held_index] if amounts is not None else None
        if held_amounts is not None:
            scores["baseline_amount"] = held_amounts
        for ranking, values in scores.items():
            if np.isnan(values).all():
                continue
            found, flagged = capacity_metrics(
                held_y, values, held_periods, held_amounts, spec.capacity
            )
            metrics.update({f"{ranking}_{name}": value for name, value in found.items()})
            held_out[f"{ranking}_score"] = values
            if ranking == "combined":
                held_out["label"] = held_y
                held_out["flagged"] = flagged
                held_out["risk_score"] = values
        for column in spec.protected:
            held_out[column] = table[column].to_numpy()[held_index]
        if spec.protected:
            fairness = fairness_audit(held_out, "label", "flagged", list(spec.protected))
    # The registered model: every row; labels only where they are known by the table's end.
    final_y = y.copy()
    review_known = None
    if spec.time is not None and spec.label_delay:
        times = pd.to_datetime(table[spec.time]).to_numpy()
        known_until = times.max() - np.timedelta64(spec.label_delay * spec.period_seconds, "s")
        review_known = times <= known_until
        final_y[~review_known] = np.nan
    model = fit(np.arange(len(X)), final_y, periods, blend.weight, review_known)
    evaluation = TableEvaluation(
        basis=basis,
        period=window,
        metrics=metrics,
        capacity=capacity_text(spec),
        n_rows=len(held_index),
        n_positive=n_positive,
    )
    model.evaluation = {
        "basis": basis,
        "period": window,
        "metrics": metrics,
        "capacity": evaluation.capacity,
        "supervised_weight": blend.weight,
        "supervised_weight_basis": blend.basis,
    }
    known = ~np.isnan(final_y)
    # "labelled" is the name promotion reads (ops.tracking.model_facts) for every model.
    label_counts = {
        "labelled": int(known.sum()),
        "confirmed": int((final_y[known] == 1).sum()),
        "cleared": int((final_y[known] == 0).sum()),
        "not_reviewed": int((~known).sum()),
    }
    return TableTrainingResult(
        model=model,
        evaluation=evaluation,
        blend=blend,
        label_counts=label_counts,
        fairness=fairness,
        rows_trained=len(X),
        held_out=held_out,
    )
