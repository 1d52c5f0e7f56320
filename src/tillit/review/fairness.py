"""Fairness audit: what the model's flags do to whom.

For each grouping (provider size band, provider age band, legal form, the
client's district) the audit breaks three numbers down by group, using
Fairlearn's ``MetricFrame``:

- flag rate: share of the group's invoices that were flagged for review;
- precision: share of the group's flagged invoices that were irregular;
- recall: share of the group's irregular invoices that were flagged.

Precision and recall are computed on labelled invoices only. Labels may be
the truth (simulated data) or audit outcomes; with audit outcomes an
unreviewed invoice has no label (NaN) and counts towards the flag rate only,
and both figures inherit the bias of whoever chose what to review.

Disparity per grouping and metric is the largest ratio (highest group over
lowest) and the largest difference. Groups are left out of that comparison,
and named in ``excluded_groups``, when

- they hold fewer than ``min_group_size`` invoices (30 by default,
  ``small_group`` in the table): a handful of invoices gives rates that
  swing by chance and would dominate any maximum;
- the metric is undefined for them: precision without flagged invoices,
  recall without irregular ones.

A ratio is ``inf`` when the lowest compared group is at exactly 0 while
another is not (for example a district where nothing was flagged), and NaN
when fewer than two groups can be compared. Note that precision rests on
``n_flagged`` and recall on ``n_positive`` invoices, often far fewer than
``n``: read them together.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from tillit.features.catalog import (
    FAIRNESS_COLUMNS,
    PROVIDER_AGE_BANDS,
    PROVIDER_SIZE_BANDS,
    band_labels,
)
from tillit.review.markup import html_table, md_table, md_text

__all__ = [
    "DEFAULT_MIN_GROUP_SIZE",
    "FAIRNESS_COLUMNS",
    "FairnessAudit",
    "age_band",
    "fairness_audit",
    "size_band",
]

DEFAULT_MIN_GROUP_SIZE = 30
MISSING_GROUP = "(missing)"
METRICS: tuple[str, ...] = ("flag_rate", "precision", "recall")
BY_GROUP_COLUMNS: tuple[str, ...] = (
    "grouping",
    "group",
    "n",
    "n_flagged",
    "n_labelled",
    "n_positive",
    "flag_rate",
    "precision",
    "recall",
    "small_group",
)
DISPARITY_COLUMNS: tuple[str, ...] = (
    "grouping",
    "metric",
    "min_group",
    "min_value",
    "max_group",
    "max_value",
    "largest_ratio",
    "largest_difference",
    "groups_compared",
    "excluded_groups",
)
_PLAIN_NAMES = {
    "provider_size_band": "provider size (clients billed in the month)",
    "provider_age_band": "provider age (since company registration)",
    "provider_legal_form": "provider legal form",
    "client_district": "client's district",
    "flag_rate": "flag rate",
    "precision": "precision",
    "recall": "recall",
}


def _band(value: float, bands: tuple[tuple[float, str], ...], what: str) -> str:
    if value is None or math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be a number at least 0, got {value}")
    return str(band_labels(np.array([value]), bands)[0])


def size_band(n_clients: float) -> str:
    """Provider size band from the clients it billed in the month.

    Uses the feature stage's cut points (``PROVIDER_SIZE_BANDS``) so the
    audit and the feature table cannot disagree.
    """
    return _band(n_clients, PROVIDER_SIZE_BANDS, "n_clients")


def age_band(years: float) -> str:
    """Provider age band from the years since company registration (``PROVIDER_AGE_BANDS``)."""
    return _band(years, PROVIDER_AGE_BANDS, "years")


# Metric functions for MetricFrame. Labels arrive as float with NaN for
# "not reviewed"; flags as 0/1.
def _n(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(len(y_pred))


def _n_flagged(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(y_pred))


def _n_labelled(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(~np.isnan(y_true)))


def _n_positive(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.nansum(y_true))


def _flag_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_pred)) if len(y_pred) else math.nan


def _precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    labelled = ~np.isnan(y_true)
    flagged = labelled & (y_pred == 1)
    return float(np.mean(y_true[flagged])) if flagged.any() else math.nan


def _recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    positive = y_true == 1
    return float(np.mean(y_pred[positive])) if positive.any() else math.nan


_METRIC_FUNCTIONS = {
    "n": _n,
    "n_flagged": _n_flagged,
    "n_labelled": _n_labelled,
    "n_positive": _n_positive,
    "flag_rate": _flag_rate,
    "precision": _precision,
    "recall": _recall,
}


def _as_labels(series: pd.Series, name: str) -> np.ndarray:
    try:
        values = series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must hold 1 (irregular), 0 (not) or null") from err
    if not np.isin(values[~np.isnan(values)], [0.0, 1.0]).all():
        raise ValueError(f"{name} must hold 1 (irregular), 0 (not) or null")
    return values


def _as_flags(series: pd.Series, name: str) -> np.ndarray:
    if series.isna().any():
        raise ValueError(f"{name} must not be null: every invoice is flagged or not")
    values = _as_labels(series, name)
    return values.astype(np.int64)


def _disparity_rows(
    grouping: str, table: pd.DataFrame, min_group_size: int
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for metric in METRICS:
        small = table["n"] < min_group_size
        undefined = table[metric].isna()
        compared = table[~small & ~undefined].sort_values("group", kind="stable")
        excluded = [f"{g} (n < {min_group_size})" for g in table.loc[small, "group"]]
        reason = {"precision": "no flagged", "recall": "no irregular", "flag_rate": "no invoices"}
        excluded += [f"{g} ({reason[metric]})" for g in table.loc[~small & undefined, "group"]]
        row: dict[str, object] = {
            "grouping": grouping,
            "metric": metric,
            "min_group": None,
            "min_value": math.nan,
            "max_group": None,
            "max_value": math.nan,
            "largest_ratio": math.nan,
            "largest_difference": math.nan,
            "groups_compared": len(compared),
            "excluded_groups": "; ".join(excluded),
        }
        if len(compared) >= 2:
            values = compared[metric].to_numpy(dtype=np.float64)
            lo, hi = int(np.argmin(values)), int(np.argmax(values))
            low, high = float(values[lo]), float(values[hi])
            # All groups at 0 is no gap (ratio 1); one group at 0 and another not is inf.
            ratio = high / low if low > 0 else (math.inf if high > 0 else 1.0)
            row.update(
                min_group=str(compared["group"].iloc[lo]),
                min_value=low,
                max_group=str(compared["group"].iloc[hi]),
                max_value=high,
                largest_ratio=ratio,
                largest_difference=high - low,
            )
        rows.append(row)
    return rows


def _fmt_share(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f} %"


def _fmt_ratio(value: float) -> str:
    if pd.isna(value):
        return "n/a"
    return "∞ (lowest group at 0)" if math.isinf(value) else f"{value:.2f}"


def _fmt_points(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f} points"


@dataclass(frozen=True)
class FairnessAudit:
    """Per-group rates and the largest gaps between groups, ready for a report or MLflow."""

    by_group: pd.DataFrame
    disparity: pd.DataFrame
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE

    def _group_rows(self) -> tuple[list[str], list[list[object]]]:
        header = ["Grouping", "Group", "Invoices", "Flagged", "Irregular", "Flag rate"]
        header += ["Precision", "Recall", "Note"]
        rows = [
            [
                _PLAIN_NAMES.get(r.grouping, r.grouping),
                r.group,
                f"{int(r.n):,}",
                f"{int(r.n_flagged):,}",
                f"{int(r.n_positive):,}",
                _fmt_share(r.flag_rate),
                _fmt_share(r.precision),
                _fmt_share(r.recall),
                f"small group (n < {self.min_group_size})" if r.small_group else "",
            ]
            for r in self.by_group.itertuples(index=False)
        ]
        return header, rows

    def _gap_rows(self) -> tuple[list[str], list[list[object]]]:
        header = ["Grouping", "Metric", "Lowest group", "Highest group", "Ratio", "Difference"]
        header += ["Left out"]
        rows = [
            [
                _PLAIN_NAMES.get(r.grouping, r.grouping),
                _PLAIN_NAMES.get(r.metric, r.metric),
                "n/a" if pd.isna(r.min_group) else f"{r.min_group} ({_fmt_share(r.min_value)})",
                "n/a" if pd.isna(r.max_group) else f"{r.max_group} ({_fmt_share(r.max_value)})",
                _fmt_ratio(r.largest_ratio),
                _fmt_points(r.largest_difference),
                r.excluded_groups or "none",
            ]
            for r in self.disparity.itertuples(index=False)
        ]
        return header, rows

    def caveat(self) -> str:
        """The reading instructions that must travel with the numbers."""
        return (
            f"Groups with fewer than {self.min_group_size} invoices are marked as small and left "
            "out of the ratios and differences, as are groups where a metric is undefined "
            "(precision without flagged invoices, recall without irregular ones). Precision "
            "rests on the flagged invoices and recall on the irregular ones, often few per "
            "group. When labels are audit outcomes, precision and recall describe only the "
            "invoices someone chose to review."
        )

    def to_markdown(self) -> str:
        """Both tables and the caveat, as a Markdown fragment (level-3 headings)."""
        group_header, group_rows = self._group_rows()
        gap_header, gap_rows = self._gap_rows()
        return "\n\n".join(
            [
                "### Rates by group",
                md_table(group_header, group_rows),
                "### Largest gaps between groups",
                md_table(gap_header, gap_rows),
                md_text(self.caveat()),
            ]
        )

    def to_html(self) -> str:
        """Both tables and the caveat, as an HTML fragment (no ``<html>`` wrapper, all escaped)."""
        group_header, group_rows = self._group_rows()
        gap_header, gap_rows = self._gap_rows()
        return "\n".join(
            [
                "<h3>Rates by group</h3>",
                html_table(group_header, group_rows),
                "<h3>Largest gaps between groups</h3>",
                html_table(gap_header, gap_rows),
                f'<p class="caveat">{html.escape(self.caveat())}</p>',
            ]
        )

    def summary_metrics(self) -> dict[str, float]:
        """Ratios and differences per metric and grouping, named for MLflow.

        For example ``fairness_flag_rate_ratio_provider_size_band``. Pairs that
        cannot be compared (NaN) are left out; ``inf`` is kept, it means a group at 0.
        """
        out: dict[str, float] = {}
        for r in self.disparity.itertuples(index=False):
            if not pd.isna(r.largest_ratio):
                out[f"fairness_{r.metric}_ratio_{r.grouping}"] = float(r.largest_ratio)
            if not pd.isna(r.largest_difference):
                out[f"fairness_{r.metric}_difference_{r.grouping}"] = float(r.largest_difference)
        return out


def fairness_audit(
    frame: pd.DataFrame,
    label_col: str,
    flagged_col: str,
    group_cols: Sequence[str] = FAIRNESS_COLUMNS,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> FairnessAudit:
    """Flag rate, precision and recall by group, and the largest gaps, for each grouping.

    Args:
        frame: one row per invoice of the evaluated period(s).
        label_col: 1 irregular, 0 not, null for not reviewed.
        flagged_col: 1 (or True) if the invoice was flagged for review.
        group_cols: the groupings, string columns; nulls become ``(missing)``.
        min_group_size: groups with fewer invoices are marked small and left
            out of the disparity comparison.
    """
    missing = [c for c in (label_col, flagged_col, *group_cols) if c not in frame.columns]
    if missing:
        raise ValueError(f"columns missing for the fairness audit: {', '.join(missing)}")
    if frame.empty:
        raise ValueError("cannot audit an empty frame")
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
    labels = _as_labels(frame[label_col], label_col)
    flags = _as_flags(frame[flagged_col], flagged_col)

    tables: list[pd.DataFrame] = []
    disparity_rows: list[dict[str, object]] = []
    for grouping in group_cols:
        groups = frame[grouping].astype("object").where(frame[grouping].notna(), MISSING_GROUP)
        metric_frame = MetricFrame(
            metrics=_METRIC_FUNCTIONS,
            y_true=labels,
            y_pred=flags,
            sensitive_features=pd.Series(groups.astype(str).to_numpy(), name=grouping),
        )
        table = metric_frame.by_group.reset_index()
        table = table.rename(columns={grouping: "group"})
        table.insert(0, "grouping", grouping)
        table = table.sort_values("group", kind="stable").reset_index(drop=True)
        for count in ("n", "n_flagged", "n_labelled", "n_positive"):
            table[count] = table[count].astype(np.int64)
        table["small_group"] = table["n"] < min_group_size
        tables.append(table.loc[:, list(BY_GROUP_COLUMNS)])
        disparity_rows += _disparity_rows(grouping, table, min_group_size)

    by_group = pd.concat(tables, ignore_index=True)
    by_group["grouping"] = by_group["grouping"].astype("str")
    by_group["group"] = by_group["group"].astype("str")
    disparity = pd.DataFrame(disparity_rows, columns=list(DISPARITY_COLUMNS))
    for column in ("grouping", "metric", "min_group", "max_group", "excluded_groups"):
        disparity[column] = disparity[column].astype("str")
    return FairnessAudit(by_group=by_group, disparity=disparity, min_group_size=min_group_size)
