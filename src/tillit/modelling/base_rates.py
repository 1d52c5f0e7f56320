"""How often each finding type fires, and what reviews decided where it fired.

Why: a finding is a fact with evidence, but a fact that is true of most honest invoices
is not a reason to review one. Real exports carry recording habits nobody lists in
advance (staff checking in at the next client before checking out at the last, a rate
changed mid-year), and a finding type tripped by such a habit would flag most of a
month. So the base rates are measured on the training history and stored with the
model, and at scoring time a finding type that fires on a large share of the month's
invoices, or that past reviews mostly cleared, is demoted: it stays a feature of the
models and is stated in the report as a pattern, but no longer lifts an invoice into
the hard-finding band.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tillit.config import BlendConfig
from tillit.core.findings import finding_column
from tillit.i18n import text

# What a pattern row holds (one row per finding type and period).
PATTERN_COLUMNS = (
    "period",
    "finding",
    "invoices",
    "fired",
    "month_share",
    "history_month_share",
    "history_reviewed",
    "history_cleared_share",
    "demoted",
    "why",  # in English
    "why_facts",  # the same as JSON parts for tillit.i18n (render_parts), for the report
)
_MIN_PROVIDER_INVOICES = 20


def finding_base_rates(
    features: pd.DataFrame, labels: pd.DataFrame | None, codes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per finding type (`codes`, the stream's), over the training months: how often it
    fires and how reviews ended.

    Returns, per code: `month_share_mean` and `month_share_max` (share of a month's
    invoices with the finding), `provider_share_median` (median over providers with at
    least 20 invoices of the share of their invoices with it), `reviewed`, `confirmed`,
    `cleared` (latest decisions on invoices that had it) and `cleared_share` (NaN
    without reviews).
    """
    label = (
        labels.set_index("invoice_id")["label"]
        if labels is not None and len(labels)
        else pd.Series(dtype="int64")
    )
    reviewed = features["invoice_id"].map(label)
    rates: dict[str, dict[str, float]] = {}
    periods = features["period"].astype("str")
    providers = features["provider_id"].astype("str")
    provider_size = providers.map(providers.value_counts())
    for code in codes:
        column = finding_column(code)
        if column not in features:
            continue
        fired = features[column].to_numpy(dtype="float64") > 0
        by_month = pd.Series(fired).groupby(periods.to_numpy()).mean()
        big = (provider_size >= _MIN_PROVIDER_INVOICES).to_numpy()
        by_provider = pd.Series(fired[big]).groupby(providers.to_numpy()[big]).mean()
        decided = reviewed[fired].dropna()
        n_reviewed = len(decided)
        n_confirmed = int((decided == 1).sum())
        rates[code] = {
            "month_share_mean": float(by_month.mean()) if len(by_month) else 0.0,
            "month_share_max": float(by_month.max()) if len(by_month) else 0.0,
            "provider_share_median": float(by_provider.median()) if len(by_provider) else 0.0,
            "reviewed": float(n_reviewed),
            "confirmed": float(n_confirmed),
            "cleared": float(n_reviewed - n_confirmed),
            "cleared_share": (n_reviewed - n_confirmed) / n_reviewed if n_reviewed else np.nan,
        }
    return rates


def finding_patterns(
    features: pd.DataFrame,
    base_rates: Mapping[str, Mapping[str, float]],
    blend: BlendConfig,
    codes: Sequence[str],
) -> pd.DataFrame:
    """Per period and finding type: how often it fires now and whether it is demoted, and why.

    A finding type is demoted in a period when it fires on more than
    `blend.finding_max_month_share` of the period's invoices (judged only when the
    period has at least `blend.finding_min_month_invoices` invoices), or when past
    reviews cleared more than `blend.finding_max_cleared_share` of at least
    `blend.finding_min_reviews` invoices that had it.
    """
    rows = []
    periods = _periods(features)
    for period in sorted(set(periods)):
        month = features[periods == period]
        n = len(month)
        for code in codes:
            column = finding_column(code)
            if column not in month:
                continue
            fired = int((month[column].to_numpy(dtype="float64") > 0).sum())
            share = fired / n if n else 0.0
            history = base_rates.get(code, {})
            reviews = float(history.get("reviewed", 0.0))
            cleared = float(history.get("cleared_share", np.nan))
            too_common = (
                n >= blend.finding_min_month_invoices and share > blend.finding_max_month_share
            )
            mostly_cleared = (
                reviews >= blend.finding_min_reviews
                and not np.isnan(cleared)
                and cleared > blend.finding_max_cleared_share
            )
            why: list[tuple[str, dict[str, float]]] = []
            if too_common:
                why.append(("pattern.why_common", {"share": share}))
            if mostly_cleared:
                why.append(("pattern.why_cleared", {"cleared": cleared, "reviews": reviews}))
            rows.append(
                {
                    "period": period,
                    "finding": code,
                    "invoices": n,
                    "fired": fired,
                    "month_share": share,
                    "history_month_share": float(history.get("month_share_mean", np.nan)),
                    "history_reviewed": reviews,
                    "history_cleared_share": cleared,
                    "demoted": bool(fired) and (too_common or mostly_cleared),
                    "why": "; ".join(text(key, "en", **fields) for key, fields in why),
                    "why_facts": json.dumps(why),
                }
            )
    return pd.DataFrame(rows, columns=list(PATTERN_COLUMNS))


def hard_finding_mask(
    features: pd.DataFrame, patterns: pd.DataFrame, codes: Sequence[str]
) -> np.ndarray:
    """True where an invoice has a finding that is not demoted in its period."""
    hit = np.zeros(len(features), dtype=bool)
    periods = _periods(features)
    demoted = patterns[patterns["demoted"]]
    for code in codes:
        column = finding_column(code)
        if column not in features:
            continue
        fired = features[column].to_numpy(dtype="float64") > 0
        off = demoted.loc[demoted["finding"] == code, "period"].to_numpy()
        hit |= fired & ~np.isin(periods, off)
    return hit


def demoted_in_every_period(features: pd.DataFrame, demoted: Sequence[str]) -> pd.DataFrame:
    """Patterns that demote `demoted` in every period of `features`, as `hard_finding_mask` reads them.

    Why: on Spark executors a model sees the month in batches; whether a finding type is
    too common is the whole month's question, answered once on the driver.
    """
    periods = sorted(set(_periods(features)))
    return pd.DataFrame(
        {
            "period": [p for p in periods for _ in demoted],
            "finding": [str(code) for _ in periods for code in demoted],
            "demoted": True,
        }
    )


def _periods(features: pd.DataFrame) -> np.ndarray:
    """Each row's period; one unnamed period for a frame without the column."""
    if "period" in features:
        return features["period"].astype("str").to_numpy()
    return np.full(len(features), "", dtype=object)
