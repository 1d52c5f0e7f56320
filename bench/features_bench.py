"""Benchmark of the feature stage: DuckDB pipeline timings, peak memory, and a pandas baseline.

`run(tables, periods)` is what `make bench` calls. Standalone:

    python bench/features_bench.py                       # SimulationConfig(clients=3000, months=12)
    python bench/features_bench.py --clients 500 --months 6 --seed 1

Memory is measured two ways:
- `peak_rss_mb_*`: the highest resident set size of this process during the call,
  sampled every 5 ms by a background thread with psutil (DuckDB allocates outside
  Python, so tracemalloc would not see it). It includes the input tables, which
  are already in memory before the call.
- `ru_maxrss_mb`: the process's lifetime peak from `resource.getrusage`.

The pandas baseline computes only the two headline features
(`billed_over_registered_hours`, `staff_overlap_minutes`) with the same
definitions; the run asserts it gives the same values as `build_features`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from tillit.config import FeatureConfig
from tillit.features import build_features, queries, requested_months
from tillit.features.queries import month_index, period_of

try:  # optional: without psutil only ru_maxrss is reported
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


class _PeakRss:
    """Samples this process's RSS in a background thread; `peak_mb` after the block."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak_mb = float("nan")
        self._stop = threading.Event()

    def _sample(self) -> None:
        process = psutil.Process()
        peak = process.memory_info().rss
        while not self._stop.wait(self.interval_s):
            peak = max(peak, process.memory_info().rss)
        self.peak_mb = max(peak, process.memory_info().rss) / 2**20

    def __enter__(self) -> _PeakRss:
        if psutil is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if psutil is not None:
            self._stop.set()
            self._thread.join()


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    with _PeakRss() as rss:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return result, seconds, rss.peak_mb


# ---------------------------------------------------------------------------
# Plain pandas versions of the two headline features (same definitions).
# ---------------------------------------------------------------------------


def pandas_billed_over_registered_hours(
    tables: Mapping[str, pd.DataFrame], periods: Sequence[str], floor_hours: float = 0.5
) -> pd.Series:
    """Billed hours over the hours of visits with the same provider, client, type and month."""
    visits = tables["visits"]
    invoices = tables["invoices"]
    invoices = invoices[invoices["period"].isin(periods)]
    period = visits["start_at"].dt.strftime("%Y-%m")
    keep = period.isin(periods)
    hours = (visits["end_at"] - visits["start_at"])[keep].dt.total_seconds() / 3600.0
    registered = hours.groupby(
        [
            visits.loc[keep, "provider_id"],
            visits.loc[keep, "client_id"],
            visits.loc[keep, "service_type"],
            period[keep],
        ]
    ).sum()
    registered.index.names = ["provider_id", "client_id", "service_type", "period"]
    merged = invoices.merge(
        registered.rename("registered").reset_index(),
        on=["provider_id", "client_id", "service_type", "period"],
        how="left",
    )
    ratio = merged["billed_hours"] / np.maximum(merged["registered"].fillna(0.0), floor_hours)
    return pd.Series(ratio.to_numpy(), index=merged["invoice_id"].to_numpy()).sort_index()


def pandas_staff_overlap_minutes(
    tables: Mapping[str, pd.DataFrame], periods: Sequence[str]
) -> pd.Series:
    """Minutes of each invoice's visits when the same staff was registered at another client.

    Sort trick: with one staff member's visits sorted by start, the visits that
    overlap visit i and start after it are a contiguous run i+1, i+2, ...; so
    comparing each visit with the one k places later, for k = 1, 2, ... until no
    pair overlaps, finds every pair exactly once.
    """
    targets = sorted({month_index(p) for p in periods})
    visits = tables["visits"]
    month = (visits["start_at"].dt.year * 12 + visits["start_at"].dt.month - 1).to_numpy()
    # Requested months plus the month before (a visit just before midnight can overlap).
    keep = np.isin(month, targets) | np.isin(month + 1, targets)
    v = visits.loc[keep, ["visit_id", "provider_id", "client_id", "staff_id", "service_type"]]
    v = v.assign(
        start=visits.loc[keep, "start_at"].to_numpy("datetime64[us]").astype("int64"),
        end=visits.loc[keep, "end_at"].to_numpy("datetime64[us]").astype("int64"),
        m=month[keep],
    )
    v["staff_code"] = pd.factorize(v["staff_id"])[0]
    v = v.sort_values(["staff_code", "start", "visit_id"]).reset_index(drop=True)
    staff = v["staff_code"].to_numpy()
    start, end = v["start"].to_numpy(), v["end"].to_numpy()
    client = pd.factorize(v["client_id"])[0]
    m = v["m"].to_numpy()
    months = np.unique(m)
    next_starts = pd.to_datetime([f"{period_of(x + 1)}-01" for x in months])
    next_start = next_starts.to_numpy("datetime64[us]").astype("int64")[np.searchsorted(months, m)]
    is_target = np.isin(m, targets)
    a_idx, b_idx = [], []
    n = len(v)
    k = 1
    while k < n:
        i = np.arange(n - k)
        j = i + k
        hit = (staff[i] == staff[j]) & (start[j] < end[i])
        if not hit.any():
            break
        i, j = i[hit], j[hit]
        other = client[i] != client[j]
        i, j = i[other], j[other]
        # a = the earlier visit: the partner must have started before a's month ended.
        forward = is_target[i] & (start[j] < next_start[i])
        a_idx.append(i[forward])
        b_idx.append(j[forward])
        # a = the later visit: its partner started earlier, so it was known.
        backward = is_target[j]
        a_idx.append(j[backward])
        b_idx.append(i[backward])
        k += 1
    a = np.concatenate(a_idx) if a_idx else np.array([], dtype=int)
    b = np.concatenate(b_idx) if b_idx else np.array([], dtype=int)
    pairs = pd.DataFrame(
        {"a": a, "os": np.maximum(start[a], start[b]), "oe": np.minimum(end[a], end[b])}
    ).sort_values(["a", "os", "oe"], kind="stable")
    # Union of each visit's overlap intervals (gaps and islands).
    previous_end = pairs.groupby("a")["oe"].cummax().groupby(pairs["a"]).shift()
    new_island = previous_end.isna() | (pairs["os"] > previous_end)
    pairs["island"] = new_island.astype(int).groupby(pairs["a"]).cumsum()
    islands = pairs.groupby(["a", "island"]).agg(os=("os", "min"), oe=("oe", "max"))
    minutes = ((islands["oe"] - islands["os"]) / 60e6).groupby(level="a").sum()
    per_visit = v.loc[minutes.index, ["provider_id", "client_id", "service_type", "m"]].assign(
        minutes=minutes.to_numpy()
    )
    per_key = per_visit.groupby(["provider_id", "client_id", "service_type", "m"])["minutes"].sum()
    invoices = tables["invoices"]
    invoices = invoices[invoices["period"].isin(periods)]
    inv_m = invoices["period"].map(month_index)
    merged = invoices.assign(m=inv_m).merge(
        per_key.rename("minutes").reset_index(),
        on=["provider_id", "client_id", "service_type", "m"],
        how="left",
    )
    return pd.Series(
        merged["minutes"].fillna(0.0).to_numpy(), index=merged["invoice_id"].to_numpy()
    ).sort_index()


def duckdb_headline(tables: Mapping[str, pd.DataFrame], periods: Sequence[str]) -> pd.DataFrame:
    """Both headline features by invoice_id, with the package's own DuckDB queries only."""
    config = FeatureConfig()
    floor = config.min_denominator_hours
    con = duckdb.connect()
    try:
        queries.load_tables(con, tables, queries.plan_months(requested_months(periods), config))
        queries.staff_overlaps(con)
        frame = con.execute(
            f"""
            WITH registered AS (
                SELECT provider_id, client_id, service_type, m, sum(hours) AS hours
                FROM v WHERE is_target GROUP BY ALL
            ),
            overlap AS (
                SELECT v.provider_id, v.client_id, v.service_type, v.m,
                       sum(o.overlap_minutes) AS minutes
                FROM visit_overlap o JOIN v ON v.visit_id = o.visit_id GROUP BY ALL
            )
            SELECT i.invoice_id,
                   i.billed_hours / greatest(coalesce(r.hours, 0.0), {floor!r})
                       AS billed_over_registered_hours,
                   coalesce(o.minutes, 0.0) AS staff_overlap_minutes
            FROM inv i
            LEFT JOIN registered r ON r.provider_id = i.provider_id
             AND r.client_id = i.client_id AND r.service_type = i.service_type AND r.m = i.m
            LEFT JOIN overlap o ON o.provider_id = i.provider_id
             AND o.client_id = i.client_id AND o.service_type = i.service_type AND o.m = i.m
            WHERE i.is_target
            """
        ).df()
    finally:
        con.close()
    return frame.set_index("invoice_id").sort_index()


def pandas_headline(tables: Mapping[str, pd.DataFrame], periods: Sequence[str]) -> pd.DataFrame:
    """Both headline features by invoice_id, in plain pandas/numpy."""
    return pd.DataFrame(
        {
            "billed_over_registered_hours": pandas_billed_over_registered_hours(tables, periods),
            "staff_overlap_minutes": pandas_staff_overlap_minutes(tables, periods),
        }
    )


# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------


def run(tables: Mapping[str, pd.DataFrame], periods: Sequence[str]) -> dict[str, Any]:
    """Time the feature stage on `tables`: the last period alone, then all periods at once.

    Also times the pandas baseline of the two headline features on all periods and
    asserts it agrees with the DuckDB pipeline (to 1e-9).
    """
    periods = sorted(periods)
    config = FeatureConfig()
    rss_before = psutil.Process().memory_info().rss / 2**20 if psutil is not None else float("nan")
    one, one_s, one_rss = _timed(lambda: build_features(tables, periods[-1], config))
    every, all_s, all_rss = _timed(lambda: build_features(tables, periods, config))
    headline, duckdb_s, duckdb_rss = _timed(lambda: duckdb_headline(tables, periods))
    baseline, pandas_s, pandas_rss = _timed(lambda: pandas_headline(tables, periods))

    ours = every.features.set_index("invoice_id")[list(baseline.columns)]
    for name, other in (("pandas", baseline), ("DuckDB headline", headline)):
        for column in baseline.columns:
            np.testing.assert_allclose(
                other.loc[ours.index, column].to_numpy(),
                ours[column].to_numpy(),
                rtol=1e-9,
                atol=1e-9,
                err_msg=f"{name} and build_features disagree on {column}",
            )
    return {
        "visits": len(tables["visits"]),
        "invoices_all_periods": len(every.features) + len(every.quarantine),
        "periods": len(periods),
        "features": every.features.shape[1],
        "findings_all_periods": len(every.findings),
        "quarantined_all_periods": len(every.quarantine),
        "one_period_s": round(one_s, 3),
        "one_period_invoices": len(one.features) + len(one.quarantine),
        "all_periods_s": round(all_s, 3),
        "all_periods_over_one_period": round(all_s / one_s, 2),
        "rss_mb_before_with_input_tables": round(rss_before, 1),
        "peak_rss_mb_one_period": round(one_rss, 1),
        "peak_rss_mb_all_periods": round(all_rss, 1),
        "duckdb_headline_two_features_all_periods_s": round(duckdb_s, 3),
        "pandas_headline_two_features_all_periods_s": round(pandas_s, 3),
        "pandas_over_duckdb_two_features": round(pandas_s / duckdb_s, 2),
        "peak_rss_mb_duckdb_headline": round(duckdb_rss, 1),
        "peak_rss_mb_pandas_headline": round(pandas_rss, 1),
        "headline_features_agree": True,
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "memory_method": "psutil RSS sampled every 5 ms"
        if psutil is not None
        else "resource.getrusage ru_maxrss only",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tillit.config import SimulationConfig
    from tillit.simulate import simulate

    start = time.perf_counter()
    sim = simulate(SimulationConfig(clients=args.clients, months=args.months, seed=args.seed))
    print(f"simulated {args.clients} clients x {args.months} months in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    tables = sim.tables
    periods = sorted(tables["invoices"]["period"].unique())
    result = run(tables, periods)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
