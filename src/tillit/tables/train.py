"""Training and evaluation of a table's risk model, as auditors work.

With a time column: the scorers learn from the training window (the spec's `train`,
or the first 60 % of the periods), `label_delay` periods are skipped (their labels
would not be known yet), and the model is judged on every later period at the
review capacity of each period. Without one: stratified k-fold cross-validation,
each row scored by a model that never saw it. Every ranking is set beside the
one-line baseline "largest amount first".

The registered model is then refit on every row (labels only where they are at
least `label_delay` old at the end of the table); the metrics logged with it are
the held-out ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tillit.config import ReviewConfig, TrainingConfig
from tillit.errors import TillitError
from tillit.modelling.evaluate import ranking_metrics, top_k_mask
from tillit.review.fairness import FairnessAudit, fairness_audit
from tillit.tables.features import history_feature_descriptions, periods_text
from tillit.tables.model import TableRiskModel, fit_table_model
from tillit.tables.spec import TableSpecFile, feature_columns

TRAIN_SHARE_OF_PERIODS = 0.6
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
class TableTrainingResult:
    """The registered model, its held-out evaluation and the fairness audit."""

    model: TableRiskModel
    evaluation: TableEvaluation
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
    }


def train_table(
    table: pd.DataFrame,
    history: pd.DataFrame,
    spec: TableSpecFile,
    training: TrainingConfig,
) -> TableTrainingResult:
    """Evaluate on held-out rows, then fit the model to register on every row.

    Raises:
        TableTrainingError: the table cannot be split as asked.
    """
    X = model_inputs(table, history, spec)
    descriptions = feature_descriptions(spec, table)
    y = _labels(table, spec)
    periods = history["period"].to_numpy()
    amounts = table[spec.amount].to_numpy(dtype=np.float64) if spec.amount else None

    def fit(rows: np.ndarray, labels: np.ndarray, trained: np.ndarray) -> TableRiskModel:
        return fit_table_model(
            X.iloc[rows],
            labels,
            training,
            spec_name=spec.name,
            spec_hash=spec.hash(),
            descriptions=descriptions,
            trained_periods=[str(p) for p in np.unique(trained)],
        )

    scores: dict[str, np.ndarray] = {}
    if spec.time is not None:
        train, held, window = _time_split(table, periods, spec)
        held_model = fit(np.flatnonzero(train), y[train], periods[train])
        scores = {k: v for k, v in _score_all(held_model, X.loc[held]).items()}
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
            out = {k: np.full(len(y), np.nan) for k in ("combined", "isolation_forest", "lightgbm")}
            for fit_part, test_part in folds.split(labelled, y[labelled]):
                rows = np.concatenate([labelled[fit_part], unlabelled])
                fold_model = fit(rows, y[rows], periods[rows])
                test_rows = labelled[test_part]
                for k, v in _score_all(fold_model, X.iloc[test_rows]).items():
                    out[k][test_rows] = v
            held_index = labelled
            scores = {k: v[labelled] for k, v in out.items()}
            window = f"{spec.cv_folds}-fold cross-validation"
            basis = f"stratified {spec.cv_folds}-fold cross-validation, every row scored by a model that never saw it"
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
    if spec.time is not None and spec.label_delay:
        times = pd.to_datetime(table[spec.time]).to_numpy()
        known_until = times.max() - np.timedelta64(spec.label_delay * spec.period_seconds, "s")
        final_y[times > known_until] = np.nan
    model = fit(np.arange(len(X)), final_y, periods)
    evaluation = TableEvaluation(
        basis=basis,
        period=window,
        metrics=metrics,
        capacity=(
            f"{spec.capacity.capacity_count} rows per {spec.period}"
            if spec.capacity.capacity_count
            else f"{spec.capacity.capacity_share:.1%} of each {spec.period}'s rows"
        ),
        n_rows=len(held_index),
        n_positive=n_positive,
    )
    model.evaluation = {
        "basis": basis,
        "period": window,
        "metrics": metrics,
        "capacity": evaluation.capacity,
    }
    known = ~np.isnan(final_y)
    label_counts = {
        "confirmed": int((final_y[known] == 1).sum()),
        "cleared": int((final_y[known] == 0).sum()),
        "not_reviewed": int((~known).sum()),
    }
    return TableTrainingResult(
        model=model,
        evaluation=evaluation,
        label_counts=label_counts,
        fairness=fairness,
        rows_trained=len(X),
        held_out=held_out,
    )
