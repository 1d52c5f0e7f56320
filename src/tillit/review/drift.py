"""Has this month moved away from the months the model learned from? Pure functions.

At training time the model keeps a reference of its training months
(`DriftReference`): for every feature and for the risk score, the decile cut
points and the share of invoices in each bin (plus a bin for missing values);
the share of invoices with each hard finding; and the share flagged by capacity
or finding per month. Each scored month is compared with it:

- **Population stability index** per feature and for the risk score:
  PSI = sum over bins of (month share - reference share) x ln(month share /
  reference share), shares floored at 1e-4 so an empty bin counts but cannot
  make it infinite. The usual reading: below 0.1 stable, 0.1-0.25 moderate,
  above 0.25 a large shift. The month warns when at least `features_warn`
  (default 3) invoice-level features have PSI above `psi_warn`: one feature
  alone crosses it by chance (a tidy simulated month of 421 invoices had
  `max_staff_hours_per_day` at PSI 0.82 with its mean 0.009 sd away and nothing
  else above 0.06), while a month that really differs moves several together (a
  municipality drawn with 3 times the irregular share moved 10 of them above 0.35).
  Provider-level features (`report_only_prefixes`, default `provider_`) are
  reported but never warn: they take one value per provider, so with tens of
  providers their invoice-weighted distribution moves whenever one company
  changes (on a tidy simulated month of 10 providers, `provider_staff_per_client`
  had PSI 4.3 and `provider_age_years` 2.5, since every company ages each month).
- **Finding rates**: the share of invoices with each hard finding, month against
  training months. A rate warns when the month's count is improbable at the
  training rate (binomial, two-sided p below `finding_rate_p_value`) and moved
  by more than `finding_rate_warn_points`: rare findings move by a few invoices
  in a small month, and a large month makes any tiny change significant.
- **Flagged share**: invoices flagged by capacity or finding, month against the
  training months' mean (a ratio).

Above the thresholds of the `drift` config section the month is marked: the
risk list may be less reliable. Drift never stops a run on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import DriftConfig, ReviewConfig
from tillit.i18n import fill, text, words

PROPORTION_FLOOR = 1e-4


@dataclass(frozen=True)
class Distribution:
    """Decile cut points of the reference and its share of invoices per bin (last: missing)."""

    edges: np.ndarray
    proportions: np.ndarray
    median: float
    mean: float = float("nan")
    std: float = float("nan")


@dataclass(frozen=True)
class DriftReference:
    """What the training months looked like, kept with the model."""

    periods: tuple[str, ...]
    features: dict[str, Distribution]
    risk_score: Distribution
    finding_rates: dict[str, float]
    flagged_share: float


@dataclass(frozen=True)
class DriftReport:
    """One month against the training months, with the warnings it raises."""

    period: str
    training_periods: tuple[str, ...]
    feature_psi: pd.DataFrame  # feature, psi, reference_median, month_median; largest PSI first
    score_psi: float
    finding_rates: pd.DataFrame  # finding, reference, month, change_points
    flagged_share: float
    reference_flagged_share: float
    warnings: list[str] = field(default_factory=list)  # in English, as drift.json keeps them
    # The same warnings as `tillit.i18n` keys (`drift.warn_*`) and fields, for the report.
    warning_parts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.warnings)

    def to_dict(self) -> dict[str, object]:
        """drift.json: every figure, rounded so reruns write the same bytes."""
        return {
            "period": self.period,
            "training_periods": list(self.training_periods),
            "drifted": self.drifted,
            "warnings": list(self.warnings),
            "score_psi": round(self.score_psi, 6),
            "max_feature_psi": round(self.max_feature_psi, 6),
            "flagged_share": round(self.flagged_share, 6),
            "reference_flagged_share": round(self.reference_flagged_share, 6),
            "feature_psi": [
                {
                    "feature": row.feature,
                    "psi": round(float(row.psi), 6),
                    "moved_bin": [None if v is None or np.isnan(v) else v for v in row.moved_bin],
                    "moved_bin_reference_share": round(float(row.moved_bin_reference_share), 6),
                    "moved_bin_month_share": round(float(row.moved_bin_month_share), 6),
                    "mean_shift_sd": _round(row.mean_shift_sd),
                    "reference_median": _round(row.reference_median),
                    "month_median": _round(row.month_median),
                }
                for row in self.feature_psi.itertuples()
            ],
            "finding_rates": [
                {
                    "finding": row.finding,
                    "reference": round(float(row.reference), 6),
                    "month": round(float(row.month), 6),
                }
                for row in self.finding_rates.itertuples()
            ],
        }

    @property
    def max_feature_psi(self) -> float:
        return float(self.feature_psi["psi"].max()) if len(self.feature_psi) else 0.0

    def metrics(self) -> dict[str, float]:
        """For MLflow: the headline figures and every feature's PSI."""
        out = {
            "drift_max_feature_psi": self.max_feature_psi,
            "drift_score_psi": self.score_psi,
            "drift_flagged_share": self.flagged_share,
            "drift_reference_flagged_share": self.reference_flagged_share,
            "drift_warnings": float(len(self.warnings)),
        }
        out.update({f"psi_{r.feature}": float(r.psi) for r in self.feature_psi.itertuples()})
        return out


def _round(value: float) -> float | None:
    return None if pd.isna(value) else round(float(value), 6)


def bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner cut points at the reference's quantiles 1/n, ..., (n-1)/n, duplicates dropped."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(finite, np.arange(1, n_bins) / n_bins))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin: bin i holds values with i cut points at or below them; last: missing."""
    values = np.asarray(values, dtype="float64")
    counts = np.zeros(len(edges) + 2)
    finite = np.isfinite(values)
    np.add.at(counts, np.searchsorted(edges, values[finite], side="right"), 1.0)
    counts[-1] = (~finite).sum()
    return counts / max(len(values), 1)


def psi(reference: np.ndarray, month: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    expected = np.maximum(np.asarray(reference, dtype="float64"), PROPORTION_FLOOR)
    actual = np.maximum(np.asarray(month, dtype="float64"), PROPORTION_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def distribution(values: np.ndarray, n_bins: int) -> Distribution:
    values = np.asarray(values, dtype="float64")
    edges = bin_edges(values, n_bins)
    finite = values[np.isfinite(values)]
    return Distribution(
        edges=edges,
        proportions=bin_shares(values, edges),
        median=float(np.median(finite)) if finite.size else float("nan"),
        mean=float(finite.mean()) if finite.size else float("nan"),
        std=float(finite.std()) if finite.size else float("nan"),
    )


def mean_shift_sd(reference: Distribution, values: np.ndarray) -> float:
    """How far the month's mean moved, in training standard deviations (0 when both are empty).

    A constant training feature that changes counts as infinitely far.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not np.isfinite(reference.mean):
        return 0.0
    moved = abs(float(finite.mean()) - reference.mean)
    if reference.std > 0:
        return moved / reference.std
    return float("inf") if moved > 0 else 0.0


def _bin_range(edges: np.ndarray, index: int) -> tuple[float | None, float | None]:
    """(low, high) of bin `index` (None: open end); the missing-value bin is (nan, nan)."""
    if index == len(edges) + 1:
        return (float("nan"), float("nan"))
    low = float(edges[index - 1]) if index > 0 else None
    high = float(edges[index]) if index < len(edges) else None
    return (low, high)


def range_words(bin_range: tuple[float | None, float | None], language: str) -> str:
    """A bin in words: "below 1.05", "from 1.05 to 1.2", "1.2 or more", "missing"."""
    low, high = bin_range
    w = words("drift", language)
    if low is not None and high is not None and np.isnan(low):
        return w["range_missing"]
    if low is None and high is None:
        return w["range_any"]
    if low is None:
        return w["range_below"].format(high=_number(float(high), language))  # type: ignore[arg-type]
    if high is None:
        return w["range_above"].format(low=_number(low, language))
    return w["range_between"].format(low=_number(low, language), high=_number(high, language))


def rate_p_value(count: int, n: int, reference_rate: float) -> float:
    """Two-sided binomial p-value of `count` in `n` at the reference rate (1 when n is 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return 1.0
    rate = min(max(reference_rate, 1.0 / (10.0 * max(n, 1))), 1.0)
    return float(binomtest(int(count), int(n), rate).pvalue)


def flagged_share(risk: np.ndarray, has_finding: np.ndarray, review: ReviewConfig) -> float:
    """Share of a month's invoices flagged by capacity (the k highest risks) or a hard finding."""
    n = len(risk)
    if n == 0:
        return 0.0
    order = np.argsort(-np.asarray(risk), kind="stable")
    top = np.zeros(n, dtype=bool)
    top[order[: review.k(n)]] = True
    return float((top | np.asarray(has_finding, dtype=bool)).mean())


def finding_rates(findings: pd.DataFrame) -> dict[str, float]:
    """Share of invoices with each hard finding (the `finding_*` columns, > 0 means present)."""
    columns = sorted(c for c in findings.columns if c.startswith("finding_"))
    return {c: float((findings[c].astype("float64") > 0).mean()) for c in columns}


def build_reference(
    X: pd.DataFrame,
    periods: pd.Series,
    risk: np.ndarray,
    has_finding: np.ndarray,
    review: ReviewConfig,
    n_bins: int,
) -> DriftReference:
    """The training months' reference: feature and score distributions, finding and flag rates.

    Args:
        X: the model's feature matrix of every training invoice.
        periods: each row's month.
        risk: each row's combined risk.
        has_finding: each row's hard-finding flag.
    """
    months = np.asarray(periods)
    shares = [
        flagged_share(risk[months == p], has_finding[months == p], review)
        for p in sorted(set(months))
    ]
    return DriftReference(
        periods=tuple(sorted(str(p) for p in set(months))),
        features={c: distribution(X[c].to_numpy(dtype="float64"), n_bins) for c in X.columns},
        risk_score=distribution(risk, n_bins),
        finding_rates=finding_rates(X),
        flagged_share=float(np.mean(shares)) if shares else 0.0,
    )


def compare(
    reference: DriftReference,
    period: str,
    X: pd.DataFrame,
    risk: np.ndarray,
    has_finding: np.ndarray,
    review: ReviewConfig,
    config: DriftConfig,
) -> DriftReport:
    """One month's drift from the training months, with warnings above the thresholds."""
    rows = []
    for name, ref in reference.features.items():
        if name not in X.columns:
            continue
        values = X[name].to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        shares = bin_shares(values, ref.edges)
        most = int(np.argmax(np.abs(shares - ref.proportions)))
        rows.append(
            {
                "feature": name,
                "psi": psi(ref.proportions, shares),
                # The bin whose share changed most: what the report puts in words.
                "moved_bin": _bin_range(ref.edges, most),
                "moved_bin_reference_share": float(ref.proportions[most]),
                "moved_bin_month_share": float(shares[most]),
                "mean_shift_sd": mean_shift_sd(ref, values),
                "reference_median": ref.median,
                "month_median": float(np.median(finite)) if finite.size else float("nan"),
            }
        )
    feature_psi = (
        pd.DataFrame(
            rows,
            columns=[
                "feature",
                "psi",
                "moved_bin",
                "moved_bin_reference_share",
                "moved_bin_month_share",
                "mean_shift_sd",
                "reference_median",
                "month_median",
            ],
        )
        .sort_values(["psi", "feature"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    score_psi = psi(reference.risk_score.proportions, bin_shares(risk, reference.risk_score.edges))
    month_rates = finding_rates(X)
    rates = pd.DataFrame(
        [
            {"finding": f, "reference": r, "month": month_rates.get(f, 0.0)}
            for f, r in sorted(reference.finding_rates.items())
        ],
        columns=["finding", "reference", "month"],
    )
    rates["change_points"] = rates["month"] - rates["reference"]
    share = flagged_share(risk, has_finding, review)
    parts: list[tuple[str, dict[str, Any]]] = []
    moved = feature_psi[
        (feature_psi["psi"] > config.psi_warn)
        & ~feature_psi["feature"].str.startswith(tuple(config.report_only_prefixes))
    ]
    if len(moved) >= config.features_warn:
        names = ", ".join(f"{r.feature} ({r.psi:.2f})" for r in moved.head(5).itertuples())
        more = " ..." if len(moved) > 5 else ""
        fields = {"n": len(moved), "psi_warn": config.psi_warn, "names": names, "more": more}
        parts.append(("drift.warn_features", fields))
    if score_psi > config.psi_warn:
        parts.append(("drift.warn_score", {"psi": score_psi}))
    n = len(X)
    for row in rates.itertuples():
        unlikely = (
            rate_p_value(round(row.month * n), n, row.reference) < config.finding_rate_p_value
        )
        if unlikely and abs(row.change_points) > config.finding_rate_warn_points:
            fields = {"finding": row.finding, "month": row.month, "reference": row.reference}
            parts.append(("drift.warn_finding", fields))
    ratio = config.flagged_share_warn_ratio
    base = reference.flagged_share
    if base > 0 and (share > base * ratio or share < base / ratio):
        parts.append(("drift.warn_flagged", {"month": share, "reference": base}))
    warnings = [text(key, "en", **fields) for key, fields in parts]
    return DriftReport(
        period=period,
        training_periods=reference.periods,
        feature_psi=feature_psi,
        score_psi=score_psi,
        finding_rates=rates,
        flagged_share=share,
        reference_flagged_share=base,
        warnings=warnings,
        warning_parts=parts,
    )


def drift_section_html(
    report: DriftReport, language: str, top: int = 5, skip_prefixes: tuple[str, ...] = ()
) -> str:
    """The report's drift section: a plain answer, then the features that moved most, in words.

    Features named by `skip_prefixes` (provider-level ones) are left out of the list:
    they move with single companies, which tells an auditor nothing about the month.
    """
    from html import escape

    from tillit.features import FEATURE_DESCRIPTIONS

    w = words("drift", language)
    training = (
        f"{report.training_periods[0]} – {report.training_periods[-1]}"
        if report.training_periods
        else ""
    )
    listed = report.feature_psi[~report.feature_psi["feature"].str.startswith(skip_prefixes)]
    largest = float(listed["psi"].max()) if len(listed) else 0.0
    parts = [f"<h2>{escape(w['title'])}</h2>"]
    if report.drifted:
        parts.append(f"<p><b>{escape(fill(w['moved'], language, training=training))}</b></p>")
        said = [
            text(key, language, **_worded(fields, language)) for key, fields in report.warning_parts
        ]
        items = said if len(said) == len(report.warnings) else report.warnings
        parts.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>")
    else:
        parts.append(
            "<p>"
            + escape(fill(w["stable"], language, max_psi=largest, score_psi=report.score_psi))
            + "</p>"
        )
    parts.append(f"<p>{escape(w['features'])}:</p><ul>")
    for row in listed.head(top).itertuples():
        description = FEATURE_DESCRIPTIONS.get(row.feature, {}).get(language, row.feature)
        parts.append(
            "<li>"
            + fill(
                w["feature_line"],
                language,
                description=escape(description.rstrip(".")),
                name=escape(row.feature),
                range=escape(range_words(row.moved_bin, language)),
                ref=row.moved_bin_reference_share,
                month=row.moved_bin_month_share,
                psi=row.psi,
            )
            + "</li>"
        )
    parts.append("</ul>")
    parts.append(f"<p>{escape(fill(w['score'], language, psi=report.score_psi))} ")
    parts.append(
        escape(
            fill(
                w["flagged"],
                language,
                month=report.flagged_share,
                reference=report.reference_flagged_share,
            )
        )
        + "</p>"
    )
    return "\n".join(parts)


def _worded(fields: dict[str, Any], language: str) -> dict[str, Any]:
    """A warning's feature names and finding codes in words, for a Swedish page."""
    if language == "en":
        return fields
    import re

    from tillit.features import FEATURE_DESCRIPTIONS
    from tillit.features.catalog import short_description

    out = dict(fields)
    if "names" in out:
        names = str(out["names"])
        for feature in sorted(FEATURE_DESCRIPTIONS, key=len, reverse=True):
            if feature in names:
                said = short_description(FEATURE_DESCRIPTIONS[feature][language]).lower()
                names = names.replace(feature, said)
        out["names"] = re.sub(r"(\d)\.(\d)", r"\1,\2", names)
    if "finding" in out:
        # Rates are kept per finding column (`finding_billing_after_death`); words by finding.
        code = str(out["finding"]).removeprefix("finding_")
        out["finding"] = words("pattern", language).get(code, out["finding"])
    return out


def _number(value: float, language: str = "en") -> str:
    if pd.isna(value):
        return "–"
    return fill("{value:.4g}", language, value=float(value))
