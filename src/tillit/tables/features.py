"""Entity history features, point in time: windows over each entity's earlier rows.

For each entity column (a customer, a terminal, a vehicle) and each window of
`w` periods, a row is described by the entity's rows *strictly before* the row's
time: how many, the sum and mean of their amounts, the row's deviation from that
history, the hours since the entity's previous row, and, where labels exist, how
many of the entity's earlier rows were confirmed, counting only labels at least
`label_delay` periods old. Nothing about a row uses its own label, a later row, a
row at the same moment or a label younger than the delay, so truncating the table
at any time leaves every earlier row's features unchanged (tests/unit/test_tables.py).

The work is done in DuckDB window functions: per entity, running sums over the
entity's moments (`SUM(...) OVER (PARTITION BY entity ORDER BY time ROWS UNBOUNDED
PRECEDING)`), and a window is the running sum just before the row's time minus the
running sum just before the window's first moment, read with `first_value` over a
`RANGE BETWEEN w PRECEDING AND CURRENT ROW` frame on integer microseconds (no
aggregate over the frame itself, which is what makes it fast). An `ASOF JOIN` per
bound gave the same numbers in twice the time.
Amounts are summed in whole cents (integers, squares as 128-bit integers), so the
sums do not depend on the order rows are added in and the features are deterministic.
"""

from __future__ import annotations

import tempfile

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tillit.i18n import count, text
from tillit.tables.spec import TableSpecFile

MICROS = 1_000_000
PERIOD_LETTER = {"day": "d", "week": "w", "month": "m"}
PERIOD_FORMAT = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}
NO_TIME_PERIOD = "all"
# DuckDB's share of the machine: two threads, and memory well under the 4 GB a
# 1.8 M-row table may use in all (it spills to a temporary folder beyond that).
DUCKDB_THREADS = 2
DUCKDB_MEMORY_LIMIT = "2GB"


def entity_prefix(entity: str) -> str:
    """A feature-name prefix for an entity column: lower case, letters, digits, underscores."""
    text = "".join(ch if ch.isalnum() else "_" for ch in entity.lower())
    return text.strip("_") or "entity"


def periods_text(n: int, period: str, lang: str = "en") -> str:
    """`1 day`, `7 days`, `4 weeks` (`7 dagar` in Swedish)."""
    return count(n, f"table.period.{period}", lang)


def history_feature_descriptions(spec: TableSpecFile, lang: str = "en") -> dict[str, str]:
    """The derived columns in a fixed order, each with what it holds in words (in `lang`)."""
    out: dict[str, str] = {}
    unit = PERIOD_LETTER[spec.period]
    longest = max(spec.windows)
    delay = periods_text(spec.label_delay, spec.period, lang)
    over = periods_text(longest, spec.period, lang)

    def said(key: str, **fields: object) -> str:
        return text(f"table.history.{key}", lang, amount=spec.amount, **fields)

    for entity in spec.entities:
        p = entity_prefix(entity)
        for w in sorted(spec.windows):
            span = periods_text(w, spec.period, lang)
            out[f"{p}_rows_before_{w}{unit}"] = said("rows_before", entity=entity, span=span)
            if spec.amount:
                out[f"{p}_amount_sum_before_{w}{unit}"] = said(
                    "amount_sum_before", entity=entity, span=span
                )
                out[f"{p}_amount_mean_before_{w}{unit}"] = said(
                    "amount_mean_before", entity=entity, span=span
                )
        if spec.amount:
            out[f"{p}_amount_over_mean_{longest}{unit}"] = said(
                "amount_over_mean", entity=entity, over=over
            )
            out[f"{p}_amount_z_{longest}{unit}"] = said("amount_z", entity=entity, over=over)
        out[f"{p}_hours_since_previous"] = said("hours_since_previous", entity=entity)
        if spec.label:
            out[f"{p}_confirmed_before_{longest}{unit}"] = said(
                "confirmed_before", entity=entity, over=over, delay=delay
            )
            out[f"{p}_confirmed_share_before_{longest}{unit}"] = said(
                "confirmed_share_before", entity=entity, over=over, delay=delay
            )
    return out


def history_feature_names(spec: TableSpecFile) -> list[str]:
    """The derived columns, in a fixed order, so a model's inputs are known before any data."""
    return list(history_feature_descriptions(spec))


def _connect(scratch: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with bounded threads and memory, spilling only into `scratch`."""
    con = duckdb.connect(
        config={
            "threads": DUCKDB_THREADS,
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "temp_directory": scratch,
        }
    )
    con.execute("SET enable_progress_bar = false")  # it would print into a job's output
    return con


def _entity_query(spec: TableSpecFile, entity_code: str, prefix: str) -> str:
    """One entity's features, one row per table row (`i` = the row's position).

    `moments`: one row per (entity, time) with counts and integer sums; `cum`: running
    sums over the entity's moments, strictly before and up to each; `window_sums`: each
    window's sum as the running sum before the moment minus the running sum before the
    window's first moment (`first_value` over a RANGE frame on integer microseconds,
    found by the frame's bounds, with no aggregate over the frame itself).
    """
    period_us = spec.period_seconds * MICROS
    longest = max(spec.windows)
    delay_us = spec.label_delay * period_us
    unit = PERIOD_LETTER[spec.period]
    cap_hours = longest * spec.period_seconds / 3600
    measures = ["n"]
    sums = ["count(*) AS n"]
    if spec.amount:
        measures += ["c", "c2"]
        sums += ["sum(cents) AS c", "sum(cents::HUGEINT * cents) AS c2"]
    if spec.label:
        measures += ["k", "f"]
        # A label not yet reviewed is NULL: not counted among the known ones.
        sums += ["count(label) AS k", "coalesce(sum(label), 0)::BIGINT AS f"]
    # Running sums strictly before each moment (`x_before`) and up to it (`x_upto`).
    running = ", ".join(
        f"sum({m}) OVER running - {m} AS {m}_before, sum({m}) OVER running AS {m}_upto"
        for m in measures
    )
    frames: dict[str, str] = {}  # window name -> its RANGE frame over the entity's moments

    def since(x: str, offset_us: int) -> str:
        """The sum of x over the moments from `t - offset` up to just before `t`."""
        frames[f"from_{offset_us}"] = f"RANGE BETWEEN {offset_us} PRECEDING AND CURRENT ROW"
        # The frame's first moment is the first at or after t - offset: the running sum
        # just before it is the sum of everything before t - offset.
        return f"{x}_before - first_value({x}_before) OVER from_{offset_us}"

    sums_needed: list[str] = []
    for w in sorted(spec.windows):
        sums_needed.append(f"{since('n', w * period_us)} AS n_{w}")
        if spec.amount:
            sums_needed.append(f"{since('c', w * period_us)} AS c_{w}")
    if spec.amount:
        sums_needed.append(f"{since('c2', longest * period_us)} AS c2_long")
    if spec.label:
        # Known labels: rows at least the delay old, within `longest` periods before that;
        # with no delay, strictly older than the row itself.
        for m in ("k", "f"):
            oldest = f"first_value({m}_before) OVER from_{longest * period_us + delay_us}"
            since(m, longest * period_us + delay_us)
            if delay_us:
                frames["aged"] = f"RANGE BETWEEN UNBOUNDED PRECEDING AND {delay_us} PRECEDING"
                newest = f"coalesce(last_value({m}_upto) OVER aged, 0)"
            else:
                newest = f"{m}_before"
            sums_needed.append(f"{newest} - {oldest} AS {m}_long")
    window_clause = ",\n    ".join(
        f"{name} AS (PARTITION BY e ORDER BY t {frame})" for name, frame in frames.items()
    )

    moment: list[str] = []  # features of an (entity, time): the same for rows at that moment
    row: dict[str, str] = {}  # every feature of a row, by name
    for w in sorted(spec.windows):
        name = f"{prefix}_rows_before_{w}{unit}"
        moment.append(f'n_{w}::DOUBLE AS "{name}"')
        if spec.amount:
            total = f"(c_{w}::DOUBLE / 100)"
            moment.append(f'{total} AS "{prefix}_amount_sum_before_{w}{unit}"')
            moment.append(
                f"CASE WHEN n_{w} > 0 THEN {total} / n_{w}::DOUBLE ELSE 0 END "
                f'AS "{prefix}_amount_mean_before_{w}{unit}"'
            )
    mean = f'm."{prefix}_amount_mean_before_{longest}{unit}"'
    if spec.amount:
        mean_long = f'"{prefix}_amount_mean_before_{longest}{unit}"'
        variance = (
            f"CASE WHEN n_{longest} > 0 THEN (c2_long::DOUBLE / 10000) / n_{longest}::DOUBLE "
            f"ELSE 0 END - {mean_long} * {mean_long}"  # not `** 2`: pow() may differ by an ulp
        )
        moment.append(f"sqrt(greatest({variance}, 0)) AS std_long")
        moment.append(f"n_{longest} AS n_long")
    moment.append(
        f"CASE WHEN t_prev IS NULL THEN {cap_hours!r} "
        f"ELSE least((t - t_prev)::DOUBLE / {3600 * MICROS}, {cap_hours!r}) END "
        f'AS "{prefix}_hours_since_previous"'
    )
    if spec.label:
        moment.append(f'f_long::DOUBLE AS "{prefix}_confirmed_before_{longest}{unit}"')
        moment.append(
            "CASE WHEN k_long > 0 THEN f_long::DOUBLE / k_long::DOUBLE ELSE 0 END "
            f'AS "{prefix}_confirmed_share_before_{longest}{unit}"'
        )
    for name in history_feature_names(spec):
        if name.startswith(f"{prefix}_"):
            row[name] = f'm."{name}"'
    if spec.amount:
        # No history: the row is its own norm (ratio 1, deviation 0). The spread gets a
        # floor of 1 % of the mean: one repeated amount is not infinitely far from it.
        row[f"{prefix}_amount_over_mean_{longest}{unit}"] = (
            f"CASE WHEN {mean} > 0 THEN r.amount / {mean} ELSE 1 END"
        )
        row[f"{prefix}_amount_z_{longest}{unit}"] = (
            f"CASE WHEN m.n_long > 0 AND {mean} > 0 "
            f"THEN (r.amount - {mean}) / greatest(m.std_long, 0.01 * {mean}) ELSE 0 END"
        )
    wanted = [name for name in history_feature_names(spec) if name.startswith(f"{prefix}_")]
    row_select = ",\n  ".join(f'{row[name]} AS "{name}"' for name in wanted)
    sums_select = ",\n    ".join(sums_needed)
    moment_select = ",\n    ".join(moment)
    return f"""
WITH rows AS (
  SELECT i, {entity_code} AS e, t, amount, label,
    round_even(amount * 100, 0)::BIGINT AS cents
  FROM source
),
moments AS (SELECT e, t, {", ".join(sums)} FROM rows GROUP BY e, t),
cum AS (
  SELECT e, t, {running}, lag(t) OVER (PARTITION BY e ORDER BY t) AS t_prev
  FROM moments
  WINDOW running AS (PARTITION BY e ORDER BY t ROWS UNBOUNDED PRECEDING)
),
window_sums AS (
  SELECT e, t, t_prev,
    {sums_select}
  FROM cum
  WINDOW {window_clause}
),
features AS (
  SELECT e, t,
    {moment_select}
  FROM window_sums
)
SELECT r.i,
  {row_select}
FROM rows r JOIN features m ON r.e = m.e AND r.t = m.t
"""


def entity_history(table: pd.DataFrame, spec: TableSpecFile) -> pd.DataFrame:
    """The derived features of every row of a checked table (same index, fixed column order).

    Also returns the row's `period` (day, ISO week or month as text; "all" without time).

    Windows are `[t - w periods, t)` for the history and `[t - w - delay, t - delay]`
    (strictly before `t` when the delay is 0) for the labels, in microseconds; the hours
    since the previous row are capped at the longest window. See the module docstring.
    """
    n = len(table)
    names = history_feature_names(spec)
    if spec.time is None:
        return pd.DataFrame({"period": NO_TIME_PERIOD}, index=table.index)
    if n == 0:
        return pd.DataFrame(index=table.index, columns=["period", *names])
    t_us = pd.to_datetime(table[spec.time]).astype("datetime64[us]").to_numpy().astype(np.int64)
    source: dict[str, pa.Array | np.ndarray] = {"i": np.arange(n, dtype=np.int64), "t": t_us}
    source["amount"] = table[spec.amount].to_numpy(dtype=np.float64) if spec.amount else np.zeros(n)
    label = table[spec.label].to_numpy(dtype=np.float64) if spec.label else np.full(n, np.nan)
    source["label"] = pa.array(label, from_pandas=True)  # NaN (not reviewed) -> NULL
    for j, entity in enumerate(spec.entities):
        source[f"e{j}"] = pd.factorize(table[entity], sort=False)[0].astype(np.int32)
    columns: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="tillit-duckdb-") as scratch:
        con = _connect(scratch)
        try:
            con.register("source", pa.table(source))
            period = con.execute(
                "SELECT strftime(make_timestamp(t), ?) AS period FROM source ORDER BY i",
                [PERIOD_FORMAT[spec.period]],
            ).fetchnumpy()["period"]
            columns["period"] = np.asarray(period, dtype=object)
            for j, entity in enumerate(spec.entities):
                found = con.execute(_entity_query(spec, f"e{j}", entity_prefix(entity)))
                result = found.fetchnumpy()
                at = np.asarray(result.pop("i"))
                for name, values in result.items():
                    column = np.empty(n, dtype=np.float64)
                    column[at] = np.asarray(values, dtype=np.float64)
                    columns[name] = column
        finally:
            con.close()
    return pd.DataFrame(columns, index=table.index).loc[:, ["period", *names]]
