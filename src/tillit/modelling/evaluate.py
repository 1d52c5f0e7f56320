"""Evaluation as the auditors work: a fixed number of invoices can be reviewed.

A municipality's reviewers open the top ``k`` invoices of each month's list and no
more, so what matters is how many real irregularities, and how much money, sit in
that top ``k``. Threshold-free measures (average precision, ROC-AUC) are reported
beside them for comparison with the literature.

Ranking rule, used by every ``*_at_k`` function: rows are ordered by score,
highest first; rows with equal scores keep their input order (stable sort), so the
top ``k`` is deterministic even when the k-th score is tied. Average precision and
ROC-AUC follow scikit-learn, which treats tied scores as one threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score


def _scores(scores: ArrayLike) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite")
    return values


def _labels(y_true: ArrayLike, n: int) -> np.ndarray:
    labels = np.asarray(y_true, dtype=np.float64)
    if labels.shape != (n,):
        raise ValueError(f"y_true has shape {labels.shape}, expected ({n},)")
    if not np.isin(labels, [0.0, 1.0]).all():
        raise ValueError("y_true must hold only 1 (irregular) or 0 (cleared)")
    return labels.astype(np.int64)


def top_k_mask(scores: ArrayLike, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` rows reviewers would open: highest scores, ties by row order.

    ``k`` larger than the number of rows selects every row.
    """
    values = _scores(scores)
    if values.size == 0:
        raise ValueError("cannot rank an empty set of scores")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-values, kind="stable")
    mask = np.zeros(values.size, dtype=bool)
    mask[order[:k]] = True
    return mask


def random_check_seed(key: str) -> int:
    """The seed of a period's random checks: a SHA-256 of `key`, the same on every machine.

    One function for every stream (home care keys by period, table mode by table and
    period), so a draw can be repeated from the key alone and no stream's checks
    follow from another's. Python's own `hash` is salted per process, so it is not used.
    """
    return int.from_bytes(hashlib.sha256(f"tillit-random-check-{key}".encode()).digest()[:8], "big")


def precision_at_k(y_true: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of the ``k`` reviewed invoices that are irregular."""
    mask = top_k_mask(scores, k)
    labels = _labels(y_true, mask.size)
    return float(labels[mask].sum() / mask.sum())


def recall_at_k(y_true: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of all irregular invoices that are among the ``k`` reviewed; NaN if none exist."""
    mask = top_k_mask(scores, k)
    labels = _labels(y_true, mask.size)
    positives = labels.sum()
    if positives == 0:
        return float("nan")
    return float(labels[mask].sum() / positives)


def money_caught_at_k(excess_sek: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of the money at stake (over-billed SEK) that sits in the ``k`` reviewed invoices.

    ``excess_sek`` is the amount each invoice over-bills (0 for a correct one). NaN
    when nothing is at stake.
    """
    mask = top_k_mask(scores, k)
    excess = np.asarray(excess_sek, dtype=np.float64)
    if excess.shape != mask.shape:
        raise ValueError(f"excess_sek has shape {excess.shape}, expected {mask.shape}")
    if not np.isfinite(excess).all() or (excess < 0).any():
        raise ValueError("excess_sek must be finite and non-negative")
    total = excess.sum()
    if total == 0:
        return float("nan")
    return float(excess[mask].sum() / total)


def ranking_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    k: int,
    excess_sek: ArrayLike | None = None,
    groups: Sequence[str] | ArrayLike | None = None,
) -> dict[str, float]:
    """Every ranking metric for one review list, with a fixed set of keys.

    Keys: ``precision_at_k``, ``recall_at_k``, ``money_caught_at_k`` (NaN without
    ``excess_sek``), ``average_precision`` and ``roc_auc`` (NaN when only one class is
    present), ``n``, ``n_positive``, ``k`` (the capacity actually used, at most ``n``),
    and with ``groups`` (e.g. the fraud scheme of each row) ``recall_at_k_<group>`` for
    each group: the share of that group's irregular invoices caught by the shared top
    ``k`` (NaN for a group without irregular invoices; null groups are skipped).
    """
    values = _scores(scores)
    labels = _labels(y_true, values.size)
    k_used = min(k, values.size)
    mask = top_k_mask(values, k)
    n_positive = int(labels.sum())
    both_classes = 0 < n_positive < values.size
    metrics = {
        "precision_at_k": precision_at_k(labels, values, k),
        "recall_at_k": recall_at_k(labels, values, k),
        "money_caught_at_k": (
            money_caught_at_k(excess_sek, values, k) if excess_sek is not None else float("nan")
        ),
        "average_precision": (
            float(average_precision_score(labels, values)) if both_classes else float("nan")
        ),
        "roc_auc": float(roc_auc_score(labels, values)) if both_classes else float("nan"),
        "n": float(values.size),
        "n_positive": float(n_positive),
        "k": float(k_used),
    }
    if groups is not None:
        group_of = np.asarray(groups, dtype=object)
        if group_of.shape != values.shape:
            raise ValueError(f"groups has shape {group_of.shape}, expected {values.shape}")
        # Rows without a group (e.g. cleared invoices with no scheme) belong to none.
        names = np.array(["" if pd.isna(g) else str(g) for g in group_of], dtype=object)
        for group in sorted(set(names) - {""}):
            in_group = names == group
            positives = labels[in_group].sum()
            caught = labels[in_group & mask].sum()
            metrics[f"recall_at_k_{group}"] = (
                float(caught / positives) if positives else float("nan")
            )
    return metrics
