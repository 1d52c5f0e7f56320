"""The numpy entity history that tillit used before DuckDB: a test oracle only.

One sort per entity, cumulative sums with a leading zero, and binary-searched window
bounds on a (entity, time) key in microseconds. `tillit.tables.features.entity_history`
(DuckDB window functions) must give the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.errors import TillitError
from tillit.tables.features import (
    MICROS,
    NO_TIME_PERIOD,
    PERIOD_FORMAT,
    PERIOD_LETTER,
    entity_prefix,
    history_feature_names,
)
from tillit.tables.spec import TableSpecFile


def _window_sums(
    order_key: np.ndarray, cumulative: list[np.ndarray], lo_key: np.ndarray, hi_key: np.ndarray
) -> list[np.ndarray]:
    """Sums over the sorted rows with lo_key <= key < hi_key, from cumulative sums."""
    lo = np.searchsorted(order_key, lo_key, side="left")
    hi = np.searchsorted(order_key, hi_key, side="left")
    return [c[hi] - c[lo] for c in cumulative]


def _cumulative(values: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading zero, so c[hi] - c[lo] sums rows lo..hi-1."""
    out = np.zeros(len(values) + 1, dtype=values.dtype)
    np.cumsum(values, out=out[1:])
    return out


def numpy_entity_history(table: pd.DataFrame, spec: TableSpecFile) -> pd.DataFrame:
    """The derived features of every row of a checked table (same index, fixed column order).

    Also returns the row's `period` (day, ISO week or month as text; "all" without time).

    How: per entity, the rows are sorted once by (entity, time) and every window is a
    difference of cumulative sums between two binary-searched bounds, in microseconds:
    `[t - w periods, t)` for the history and `[t - w - delay, t - delay]` (strictly
    before `t` when the delay is 0) for the labels. Sums of amounts are in whole
    cents (integers), so they do not depend on the order they are added in.
    """
    n = len(table)
    out = pd.DataFrame(index=table.index)
    if spec.time is None:
        out["period"] = NO_TIME_PERIOD
        return out
    times = pd.to_datetime(table[spec.time]).astype("datetime64[us]")
    out["period"] = times.dt.strftime(PERIOD_FORMAT[spec.period]).to_numpy()
    if not spec.entities or n == 0:
        return (
            out.loc[:, ["period", *history_feature_names(spec)]]
            if n
            else out.reindex(columns=["period", *history_feature_names(spec)])
        )
    t_us = times.to_numpy().astype(np.int64)
    t_rel = t_us - t_us.min()
    period_us = spec.period_seconds * MICROS
    longest = max(spec.windows)
    delay_us = spec.label_delay * period_us
    reach = (longest * period_us) + delay_us + 2
    span = int(t_rel.max()) + reach + 1
    unit = PERIOD_LETTER[spec.period]
    cap_hours = longest * spec.period_seconds / 3600
    cents = (
        np.round(table[spec.amount].to_numpy(dtype=np.float64) * 100).astype(np.int64)
        if spec.amount
        else None
    )
    amount = table[spec.amount].to_numpy(dtype=np.float64) if spec.amount else np.zeros(n)
    label = table[spec.label].to_numpy(dtype=np.float64) if spec.label else None
    for entity in spec.entities:
        p = entity_prefix(entity)
        codes, uniques = pd.factorize(table[entity], sort=False)
        if len(uniques) * span >= 2**62:
            raise TillitError(
                f"{entity}: {len(uniques):,} entities over this time span do not fit the "
                "microsecond index; split the table by time"
            )
        # Everything is computed in (entity, time) order, where the binary searches are
        # cache-friendly, and put back in the table's order at the end.
        order = np.lexsort((t_rel, codes))
        sorted_codes = codes[order].astype(np.int64)
        sorted_t = t_rel[order]
        key = sorted_codes * span + sorted_t + reach
        found: dict[str, np.ndarray] = {}
        cumulative = [_cumulative(np.ones(n, dtype=np.int64))]
        if cents is not None:
            sorted_cents = cents[order]
            cumulative += [
                _cumulative(sorted_cents),
                _cumulative(sorted_cents.astype(np.float64) ** 2),
            ]
            sorted_amount = amount[order]
        for w in sorted(spec.windows):
            sums = _window_sums(key, cumulative, key - w * period_us, key)
            count = sums[0].astype(np.float64)
            found[f"{p}_rows_before_{w}{unit}"] = count
            if cents is not None:
                total = sums[1].astype(np.float64) / 100
                found[f"{p}_amount_sum_before_{w}{unit}"] = total
                mean = np.divide(total, count, out=np.zeros(n), where=count > 0)
                found[f"{p}_amount_mean_before_{w}{unit}"] = mean
                if w == longest:
                    square = sums[2] / 10_000
                    variance = np.divide(square, count, out=np.zeros(n), where=count > 0) - mean**2
                    std = np.sqrt(np.maximum(variance, 0.0))
                    # No history: the row is its own norm (ratio 1, deviation 0).
                    found[f"{p}_amount_over_mean_{longest}{unit}"] = np.divide(
                        sorted_amount, mean, out=np.ones(n), where=mean > 0
                    )
                    # The spread gets a floor of 1 % of the mean: one repeated amount is not infinite.
                    found[f"{p}_amount_z_{longest}{unit}"] = np.divide(
                        sorted_amount - mean,
                        np.maximum(std, 0.01 * mean),
                        out=np.zeros(n),
                        where=(count > 0) & (mean > 0),
                    )
        # The previous row strictly before t: the last sorted row with a smaller key.
        before = np.searchsorted(key, key, side="left") - 1
        has_previous = (before >= 0) & (sorted_codes[np.maximum(before, 0)] == sorted_codes)
        hours = (sorted_t - sorted_t[np.maximum(before, 0)]) / (3600 * MICROS)
        found[f"{p}_hours_since_previous"] = np.where(
            has_previous, np.minimum(hours, cap_hours), cap_hours
        )
        if label is not None:
            sorted_label = label[order]
            known = ~np.isnan(sorted_label)
            label_sums = [
                _cumulative(known.astype(np.int64)),
                _cumulative(np.where(known, sorted_label, 0.0).astype(np.int64)),
            ]
            # Known labels: rows at least the delay old; strictly older than t when it is 0.
            newest = key - delay_us + (1 if delay_us > 0 else 0)
            labelled, confirmed = _window_sums(
                key, label_sums, key - longest * period_us - delay_us, newest
            )
            labelled = labelled.astype(np.float64)
            confirmed = confirmed.astype(np.float64)
            found[f"{p}_confirmed_before_{longest}{unit}"] = confirmed
            found[f"{p}_confirmed_share_before_{longest}{unit}"] = np.divide(
                confirmed, labelled, out=np.zeros(n), where=labelled > 0
            )
        for name, values in found.items():
            column = np.empty(n, dtype=np.float64)
            column[order] = values
            out[name] = column
    return out.loc[:, ["period", *history_feature_names(spec)]]
