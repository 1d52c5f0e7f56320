"""DuckDB queries: the joins and aggregations behind the features, for all periods at once.

Months are integers (`year * 12 + month - 1`), so windows are ranges of ints.
Every query only sees what was known at the end of the month it describes:
visits, stays, deaths, events and board roles up to the month's last day,
invoices of that month and earlier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tillit.config import FeatureConfig
from tillit.errors import TillitError
from tillit.features.engine import Engine, TableSource

# DuckDB column types of the contract tables the features read.
_TABLE_TYPES: dict[str, dict[str, str]] = {
    "providers": {
        "provider_id": "VARCHAR",
        "legal_form": "VARCHAR",
        "registered_on": "TIMESTAMP",
        "approved_on": "TIMESTAMP",
        "terminated_on": "TIMESTAMP",
    },
    "provider_events": {
        "provider_id": "VARCHAR",
        "event_date": "TIMESTAMP",
        "event_type": "VARCHAR",
        "amount_sek": "DOUBLE",
    },
    "provider_persons": {
        "provider_id": "VARCHAR",
        "person_id": "VARCHAR",
        "role": "VARCHAR",
        "from_date": "TIMESTAMP",
        "to_date": "TIMESTAMP",
    },
    "clients": {"client_id": "VARCHAR", "district": "VARCHAR", "deceased_on": "TIMESTAMP"},
    "grants": {
        "grant_id": "VARCHAR",
        "client_id": "VARCHAR",
        "provider_id": "VARCHAR",
        "service_type": "VARCHAR",
        "hours_per_month": "DOUBLE",
        "valid_from": "TIMESTAMP",
        "valid_to": "TIMESTAMP",
    },
    "hospital_stays": {
        "client_id": "VARCHAR",
        "admitted_on": "TIMESTAMP",
        "discharged_on": "TIMESTAMP",
    },
    "visits": {
        "visit_id": "VARCHAR",
        "provider_id": "VARCHAR",
        "client_id": "VARCHAR",
        "staff_id": "VARCHAR",
        "service_type": "VARCHAR",
        "start_at": "TIMESTAMP",
        "end_at": "TIMESTAMP",
        "method": "VARCHAR",
    },
    "invoices": {
        "invoice_id": "VARCHAR",
        "provider_id": "VARCHAR",
        "client_id": "VARCHAR",
        "period": "VARCHAR",
        "service_type": "VARCHAR",
        "billed_hours": "DOUBLE",
        "amount_sek": "DOUBLE",
    },
    "tariffs": {"service_type": "VARCHAR", "year": "BIGINT", "rate_sek": "DOUBLE"},
}
OPTIONAL_TABLES = frozenset({"hospital_stays"})

_KEY = "provider_id, client_id, service_type, m"


def _in_rounds(config: FeatureConfig) -> str:
    """SQL: the visit's service type is given in rounds of short checks (a night patrol)."""
    if not config.round_service_types:
        return "FALSE"
    return f"service_type IN ({', '.join(repr(s) for s in config.round_service_types)})"


# Visit hours summed in whole microseconds, divided once: the same bits whatever order an
# engine adds in (DuckDB, Spark), so hours rounded to the cent (hours in dispute) agree.
_HOURS_OF_SUM = "CAST(sum(micros) AS DOUBLE) / 3600000000.0"


def month_index(period: str) -> int:
    """`YYYY-MM` as months since year 0, so month arithmetic is integer arithmetic."""
    year, month = period.split("-")
    return int(year) * 12 + int(month) - 1


def period_of(m: int) -> str:
    """The inverse of `month_index`."""
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


@dataclass(frozen=True)
class MonthPlan:
    """Which months each table is needed for, given the requested periods."""

    frame: pd.DataFrame
    first_visit_start: pd.Timestamp
    visit_end: pd.Timestamp


def plan_months(targets: Sequence[int], config: FeatureConfig) -> MonthPlan:
    """Months the requested periods need: their windows, lookbacks and the month before.

    The month before each requested month is loaded for visits so that a visit
    starting just before midnight on the last day can overlap one in the month.
    """
    longest = config.longest_window_months
    invoice_back = max(longest, config.client_growth_window_months, config.takeover_lookback_months)
    visit_months: set[int] = set()
    invoice_months: set[int] = set()
    for t in targets:
        visit_months.update(range(t - longest, t + 1))  # t - longest: the month before, too
        invoice_months.update(range(t - invoice_back, t + 1))
    months = sorted(visit_months | invoice_months)
    starts = pd.to_datetime([f"{period_of(m)}-01" for m in months])
    next_starts = pd.to_datetime([f"{period_of(m + 1)}-01" for m in months])
    frame = pd.DataFrame(
        {
            "m": np.asarray(months, dtype="int64"),
            "period": [period_of(m) for m in months],
            "month_start": starts,
            "next_start": next_starts,
            "last_day": next_starts - pd.Timedelta(days=1),
            "days": np.asarray((next_starts - starts).days, dtype="int64"),
            "is_target": [m in set(targets) for m in months],
            "need_visits": [m in visit_months for m in months],
        }
    )
    loaded = frame[frame["need_visits"]]
    return MonthPlan(frame, loaded["month_start"].min(), loaded["next_start"].max())


def _empty_select(types: Mapping[str, str]) -> str:
    columns = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in types.items())
    return f"SELECT {columns} WHERE FALSE"


def _typed_select(source: str, types: Mapping[str, str]) -> str:
    columns = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in types.items())
    return f"SELECT {columns} FROM {source}"


def relation_columns(con: Engine, relation: str) -> list[str]:
    """The column names of a registered table or view, on any engine."""
    return [str(c) for c in con.fetch(f"SELECT * FROM {relation} LIMIT 0").columns]


def tariffs_by_municipality(con: Engine, tables: Mapping[str, TableSource]) -> bool:
    """Whether the tariffs carry a `municipality` column (contract v1.3, optional).

    Why: a pooled month (a national body's, on Spark) holds many municipalities, each with
    its own rates; their invoices then join the tariff of their own municipality.
    """
    tariffs = tables.get("tariffs")
    if tariffs is None:
        return False
    if isinstance(tariffs, pd.DataFrame):
        # Validation gives a v1.2 folder's tables the optional column, empty.
        return "municipality" in tariffs.columns and bool(tariffs["municipality"].notna().any())
    con.register("tariffs_src", tariffs)
    return "municipality" in relation_columns(con, "tariffs_src")


def load_tables(
    con: Engine,
    tables: Mapping[str, TableSource],
    plan: MonthPlan,
) -> None:
    """Copy the needed rows of each table into the engine with fixed column types.

    A table is a frame or a Parquet file or folder (read where it lies, e.g. on Spark).
    Missing or empty optional tables become empty typed tables, so every query
    can join them without special cases.
    """
    con.register("months_src", plan.frame)
    con.execute("CREATE TEMP TABLE months AS SELECT * FROM months_src")
    keyed = tariffs_by_municipality(con, tables)
    for name, types in _TABLE_TYPES.items():
        frame = tables.get(name)
        if keyed and name in ("tariffs", "invoices"):
            types = {**types, "municipality": "VARCHAR"}
        target = f"{name}_raw" if name in ("visits", "invoices") else name
        if frame is None or (isinstance(frame, pd.DataFrame) and len(frame) == 0):
            if frame is None and name not in OPTIONAL_TABLES:
                raise KeyError(f"required table {name!r} is missing")
            con.execute(f"CREATE TEMP TABLE {target} AS {_empty_select(types)}")
            continue
        source = f"{name}_src"
        if (
            keyed
            and name in ("tariffs", "invoices")
            and isinstance(frame, pd.DataFrame)
            and ("municipality" not in frame.columns or frame["municipality"].isna().any())
        ):
            # An invoice without one would miss every tariff and be held as "no tariff".
            missing = (
                len(frame)
                if "municipality" not in frame
                else int(frame["municipality"].isna().sum())
            )
            raise TillitError(
                f"the tariffs are per municipality, but {missing} row(s) of {name} name no "
                "municipality: give every tariff and invoice its municipality"
            )
        con.register(source, frame[list(types)] if isinstance(frame, pd.DataFrame) else frame)
        if name == "visits":
            # Only the months the windows need: the visit table is by far the largest.
            lo = plan.first_visit_start.strftime("%Y-%m-%d %H:%M:%S")
            hi = plan.visit_end.strftime("%Y-%m-%d %H:%M:%S")
            con.execute(
                f"CREATE TEMP VIEW {target} AS {_typed_select(source, types)} "
                f"WHERE start_at >= TIMESTAMP '{lo}' AND start_at < TIMESTAMP '{hi}'"
            )
        else:
            con.execute(f"CREATE TEMP TABLE {target} AS {_typed_select(source, types)}")

    # Visits in the needed months, with their month and what was known of the
    # client's death at the end of that month.
    con.execute(
        """
        CREATE TEMP TABLE v AS
        SELECT s.visit_id, s.provider_id, s.client_id, s.staff_id, s.service_type,
               s.start_at, s.end_at, s.method, mo.m, mo.is_target, mo.last_day, mo.next_start,
               epoch(s.end_at - s.start_at) / 3600.0 AS hours,
               date_diff('microsecond', s.start_at, s.end_at) AS micros,
               CASE WHEN c.deceased_on <= mo.last_day
                    AND s.start_at >= c.deceased_on + INTERVAL 1 DAY
                    THEN TRUE ELSE FALSE END AS after_death,
               -- The part of a visit after the day of death, whenever the visit began: a
               -- visit begun that evening cannot carry the night after it as care before.
               CASE WHEN c.deceased_on <= mo.last_day
                    AND s.end_at > c.deceased_on + INTERVAL 1 DAY
                    THEN date_diff('microsecond',
                                   greatest(s.start_at, c.deceased_on + INTERVAL 1 DAY),
                                   s.end_at)
                    ELSE 0 END AS micros_after_death_day
        FROM visits_raw s
        JOIN months mo ON mo.m = year(s.start_at) * 12 + month(s.start_at) - 1
        -- Only the deceased: a client without a day of death gives FALSE and 0 either way,
        -- and the join's table is a few hundred rows instead of every client.
        LEFT JOIN (SELECT client_id, deceased_on FROM clients WHERE deceased_on IS NOT NULL) c
               ON c.client_id = s.client_id
        WHERE mo.need_visits
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE inv AS
        SELECT i.*, mo.m, mo.is_target
        FROM invoices_raw i
        JOIN months mo ON mo.period = i.period
        """
    )


def visit_aggregates(con: Engine, config: FeatureConfig) -> None:
    """Per provider, client, service type and month: hours, counts and registration patterns."""
    short_hours = config.short_visit_minutes / 60.0
    # Hours for every loaded month: the windowed ratios need earlier months too.
    con.execute(
        f"""
        CREATE TEMP TABLE vhours AS
        SELECT {_KEY}, {_HOURS_OF_SUM} AS reg_hours FROM v GROUP BY ALL
        """
    )
    # Visits on full days strictly between admission and discharge: care on the
    # admission and discharge days themselves is legitimate. A stay discharged
    # after the end of the visit's month is treated as still open.
    con.execute(
        """
        CREATE TEMP TABLE hv AS
        SELECT v.visit_id, v.provider_id, v.client_id, v.service_type, v.m, v.hours, v.micros,
               h.admitted_on,
               CASE WHEN h.discharged_on <= v.last_day THEN h.discharged_on END AS discharged_known,
               v.last_day
        FROM v JOIN hospital_stays h ON h.client_id = v.client_id
        WHERE v.is_target
          AND h.admitted_on <= v.last_day
          AND v.start_at >= h.admitted_on + INTERVAL 1 DAY
          AND (h.discharged_on IS NULL OR h.discharged_on > v.last_day
               OR v.end_at <= h.discharged_on)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE vagg AS
        WITH pattern AS (
            SELECT {_KEY}, count(*) AS n, count(DISTINCT CAST(start_at AS DATE)) AS n_days
            FROM v WHERE is_target
            GROUP BY {_KEY}, hour(start_at) * 60 + minute(start_at),
                     round(epoch(end_at - start_at) / 60.0)
        ),
        repeated AS (
            SELECT {_KEY}, sum(CASE WHEN n_days >= 2 THEN n ELSE 0 END) AS n_repeated
            FROM pattern GROUP BY ALL
        ),
        hospital AS (
            SELECT {_KEY}, {_HOURS_OF_SUM} AS hospital_hours
            FROM (SELECT DISTINCT visit_id, {_KEY}, micros FROM hv) GROUP BY ALL
        ),
        base AS (
            SELECT {_KEY},
                   count(*) AS n_visits,
                   {_HOURS_OF_SUM} AS reg_hours,
                   avg(CASE WHEN method = 'manual' THEN 1.0 ELSE 0.0 END) AS manual_share,
                   avg(CASE WHEN minute(start_at) % 30 = 0 AND second(start_at) = 0
                            THEN 1.0 ELSE 0.0 END) AS round_start_share,
                   avg(CASE WHEN hours < {short_hours!r} THEN 1.0 ELSE 0.0 END) AS short_share,
                   avg(hours) AS mean_hours,
                   stddev_pop(hours) AS sd_hours,
                   avg(cos(2 * pi() * (hour(start_at) * 60 + minute(start_at)
                       + second(start_at) / 60.0) / 1440.0)) AS start_cos,
                   avg(sin(2 * pi() * (hour(start_at) * 60 + minute(start_at)
                       + second(start_at) / 60.0) / 1440.0)) AS start_sin,
                   count(DISTINCT staff_id) AS n_staff,
                   CAST(sum(CASE WHEN after_death THEN micros ELSE 0 END) AS DOUBLE) / 3600000000.0
                       AS after_death_hours,
                   CAST(sum(micros_after_death_day) AS DOUBLE) / 3600000000.0
                       AS after_death_day_hours
            FROM v WHERE is_target GROUP BY ALL
        )
        SELECT base.*, repeated.n_repeated, coalesce(hospital.hospital_hours, 0.0) AS hospital_hours
        FROM base
        JOIN repeated USING (provider_id, client_id, service_type, m)
        LEFT JOIN hospital USING (provider_id, client_id, service_type, m)
        """
    )


def provider_registration_habits(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: registration shares against the provider's other clients.

    Why: a provider whose staff type every visit in afterwards to the round quarter hour,
    or whose night patrol checks on its clients in short visits, does so at all its
    clients: a registration habit, not a sign against one client's invoice. The invoice's
    typed-in, round-start, repeated-time and short-visit shares are judged against the
    same shares of the provider's visits at its *other* clients in the month, of the same
    service type (a night patrol is not compared with day care); with fewer than
    `features.provider_habit_min_visits` such visits, of any service type; with fewer
    still, against nothing (baseline 0). Two counts are an auditor's, not a clock's:
    a short visit is one in the day (06:00-21:59; night checks are short everywhere), and
    a repeated time (start minute and length again on another day) is one typed in or
    made in the app: a key tag at the client's door records when the carer was there,
    so a round kept to the minute is no copied registration.
    Needs `visit_aggregates` first (its `vagg`).
    """
    floor = config.provider_habit_min_visits
    short_hours = config.short_visit_minutes / 60.0
    in_rounds = _in_rounds(config)
    min_clients = config.provider_habit_min_clients
    client_min_visits = config.provider_habit_client_min_visits
    quantile = config.provider_habit_client_quantile
    parts = ("manual", "round", "short", "repeated")
    sums = ", ".join(f"sum(n_{c}) AS n_{c}" for c in parts)
    pooled = {
        c: f"""CASE WHEN s.n - k.n >= {floor}
                    THEN (s.n_{c} - k.n_{c}) / CAST(s.n - k.n AS DOUBLE)
                    WHEN p.n - c.n >= {floor}
                    THEN (p.n_{c} - c.n_{c}) / CAST(p.n - c.n AS DOUBLE)
                    ELSE 0.0 END"""
        for c in parts
    }
    # The habit is the larger of the pooled share and the share of the provider's typical
    # other client (the quantile of their shares, `typical_other_client`), when it has enough
    # other clients.
    shares = ",\n".join(
        f"""CASE WHEN o.n_others >= {min_clients}
                    THEN greatest({pooled[c]}, o.typical_{c})
                    ELSE {pooled[c]} END AS habit_{c}_share"""
        for c in parts
    )
    con.execute(
        f"""
        CREATE TEMP TABLE provhabit AS
        WITH typed_pattern AS (
            SELECT {_KEY}, count(*) AS n, count(DISTINCT CAST(start_at AS DATE)) AS n_days
            FROM v WHERE is_target AND method <> 'nfc'
            GROUP BY {_KEY}, hour(start_at) * 60 + minute(start_at),
                     round(epoch(end_at - start_at) / 60.0)
        ),
        typed_repeated AS (
            SELECT {_KEY}, sum(CASE WHEN n_days >= 2 THEN n ELSE 0 END) AS n_repeated
            FROM typed_pattern GROUP BY provider_id, client_id, service_type, m
        ),
        day_short AS (
            SELECT {_KEY},
                   sum(CASE WHEN hours < {short_hours!r} AND hour(start_at) >= 6
                            AND hour(start_at) < 22 AND NOT ({in_rounds})
                            THEN 1 ELSE 0 END) AS n_short
            FROM v WHERE is_target GROUP BY provider_id, client_id, service_type, m
        ),
        k AS (
            SELECT a.provider_id, a.client_id, a.service_type, a.m, a.n_visits AS n,
                   CAST(round(a.manual_share * a.n_visits) AS BIGINT) AS n_manual,
                   CAST(round(a.round_start_share * a.n_visits) AS BIGINT) AS n_round,
                   coalesce(d.n_short, 0) AS n_short,
                   coalesce(r.n_repeated, 0) AS n_repeated
            FROM vagg a
            LEFT JOIN day_short d USING (provider_id, client_id, service_type, m)
            LEFT JOIN typed_repeated r USING (provider_id, client_id, service_type, m)
        ),
        same_service AS (
            SELECT provider_id, service_type, m, sum(n) AS n, {sums}
            FROM k GROUP BY provider_id, service_type, m
        ),
        client_at_provider AS (
            SELECT provider_id, client_id, m, sum(n) AS n, {sums}
            FROM k GROUP BY provider_id, client_id, m
        ),
        provider_all AS (
            SELECT provider_id, m, sum(n) AS n, {sums} FROM k GROUP BY provider_id, m
        ),
        {typical_other_client(parts, client_min_visits, quantile)}
        SELECT k.provider_id, k.client_id, k.service_type, k.m,
               k.n_short / CAST(k.n AS DOUBLE) AS day_short_share,
               k.n_repeated / CAST(k.n AS DOUBLE) AS typed_repeated_share,
               {shares}
        FROM k
        JOIN same_service s
          ON s.provider_id = k.provider_id AND s.service_type = k.service_type AND s.m = k.m
        JOIN client_at_provider c
          ON c.provider_id = k.provider_id AND c.client_id = k.client_id AND c.m = k.m
        JOIN provider_all p ON p.provider_id = k.provider_id AND p.m = k.m
        LEFT JOIN other_clients o
          ON o.provider_id = k.provider_id AND o.client_id = k.client_id
         AND o.service_type = k.service_type AND o.m = k.m
        """
    )


def typical_other_client(parts: Sequence[str], min_visits: int, quantile: float) -> str:
    """SQL: the CTEs down to `other_clients`, each key's typical other client of its provider.

    Reads `k` (one row per provider, client, service type and month with `n` visits and
    `n_<part>` of them of each part) and gives, per key with at least one other client of
    `min_visits` visits at the provider in the service type and month, `n_others` and
    `typical_<part>`: the `quantile` of those other clients' shares `n_<part> / n`.

    Why not the plain self-join (each key against each other client): the month's large
    providers made it ten million rows, most of the provider-habit statement's time. A
    quantile of N - 1 values reads only the two values at its floor and ceiling positions
    F and C of the sorted list, and leaving out the value at position p of the sorted list
    of all N eligible clients puts at F and C the values at F + 1 and C + 1 (p <= F), at F
    and C + 1 (F < p <= C) or at F and C (p > C). Every key of a case gets the quantile of
    leaving out one of them (position 0, C or N - 1): the same values at F and C, so the
    same bits; a key with too few visits is not among the values and leaves out none
    (position -1). At most four quantiles of N values per provider, service type, month
    and part. F and C are computed as the quantile computes them, `(N - 2) * quantile` in
    double precision.
    """
    eligible = "\n            UNION ALL\n".join(
        f"""SELECT provider_id, service_type, m, client_id, '{c}' AS part,
                   n_{c} / CAST(n AS DOUBLE) AS share
            FROM k WHERE n >= {min_visits}"""
        for c in parts
    )
    typical = ",\n".join(
        f"max(CASE WHEN r.part = '{c}' THEN t.typical END) AS typical_{c}" for c in parts
    )
    return f"""eligible AS (
            {eligible}
        ),
        ranked AS (
            SELECT provider_id, service_type, m, client_id, part, share,
                   row_number() OVER (PARTITION BY provider_id, service_type, m, part
                                      ORDER BY share, client_id) - 1 AS pos,
                   count(*) OVER (PARTITION BY provider_id, service_type, m, part) AS n_eligible
            FROM eligible
        ),
        positions AS (
            SELECT DISTINCT provider_id, service_type, m, part, n_eligible,
                   CAST(floor(CAST(n_eligible - 2 AS DOUBLE) * CAST({quantile!r} AS DOUBLE))
                        AS BIGINT) AS f,
                   CAST(ceil(CAST(n_eligible - 2 AS DOUBLE) * CAST({quantile!r} AS DOUBLE))
                        AS BIGINT) AS c
            FROM ranked
        ),
        left_out AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m, g.part,
                   CASE WHEN r.pos IS NULL THEN -1
                        WHEN r.pos <= g.f THEN 0
                        WHEN r.pos > g.c THEN g.n_eligible - 1
                        ELSE g.c END AS pos
            FROM k
            JOIN positions g
              ON g.provider_id = k.provider_id AND g.service_type = k.service_type AND g.m = k.m
            LEFT JOIN ranked r
              ON r.provider_id = k.provider_id AND r.service_type = k.service_type
             AND r.m = k.m AND r.part = g.part AND r.client_id = k.client_id
        ),
        typical_without AS (
            SELECT o.provider_id, o.service_type, o.m, o.part, o.pos, count(*) AS n_others,
                   quantile_cont(e.share, {quantile!r}) AS typical
            FROM (SELECT DISTINCT provider_id, service_type, m, part, pos FROM left_out) o
            JOIN ranked e
              ON e.provider_id = o.provider_id AND e.service_type = o.service_type
             AND e.m = o.m AND e.part = o.part AND e.pos <> o.pos
            GROUP BY o.provider_id, o.service_type, o.m, o.part, o.pos
        ),
        other_clients AS (
            SELECT r.provider_id, r.client_id, r.service_type, r.m,
                   max(t.n_others) AS n_others,
                   {typical}
            FROM left_out r
            JOIN typical_without t
              ON t.provider_id = r.provider_id AND t.service_type = r.service_type
             AND t.m = r.m AND t.part = r.part AND t.pos = r.pos
            GROUP BY r.provider_id, r.client_id, r.service_type, r.m
        )"""


def staff_overlaps(con: Engine) -> None:
    """Per visit of the requested months: minutes the same staff was also at another client.

    Overlaps are found by a self-join of visits on staff and day. A visit is
    listed under each day it touches (at most two, as a visit lasts at most
    24 h), and a pair is kept only under the day its overlap starts, so each
    overlapping pair is found exactly once. The partner visit must have started
    before the end of the month being described (point in time).
    """
    # Partners come from the requested months and the month before each.
    con.execute(
        """
        CREATE TEMP TABLE vday AS
        WITH near AS (
            SELECT * FROM v
            WHERE is_target OR m + 1 IN (SELECT m FROM months WHERE is_target)
        )
        SELECT visit_id, staff_id, client_id, start_at, end_at, is_target, next_start,
               CAST(start_at AS DATE) AS d
        FROM near
        UNION ALL
        SELECT visit_id, staff_id, client_id, start_at, end_at, is_target, next_start,
               CAST(end_at - INTERVAL 1 MICROSECOND AS DATE) AS d
        FROM near
        WHERE CAST(end_at - INTERVAL 1 MICROSECOND AS DATE) <> CAST(start_at AS DATE)
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE pairs AS
        SELECT a.visit_id AS a_id, b.visit_id AS b_id, a.staff_id,
               greatest(a.start_at, b.start_at) AS overlap_start,
               least(a.end_at, b.end_at) AS overlap_end
        FROM vday a JOIN vday b ON a.staff_id = b.staff_id AND a.d = b.d
        WHERE a.is_target
          AND a.client_id <> b.client_id
          AND a.start_at < b.end_at AND b.start_at < a.end_at
          AND CAST(greatest(a.start_at, b.start_at) AS DATE) = a.d
          AND b.start_at < a.next_start
        """
    )
    # Union of each visit's overlap intervals (gaps and islands), so a visit
    # overlapping two others at the same moment counts those minutes once.
    con.execute(
        """
        CREATE TEMP TABLE visit_overlap AS
        WITH ordered AS (
            SELECT *, max(overlap_end) OVER (
                PARTITION BY a_id ORDER BY overlap_start, overlap_end, b_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
            FROM pairs
        ),
        islands AS (
            SELECT *, sum(CASE WHEN previous_end IS NULL OR overlap_start > previous_end
                               THEN 1 ELSE 0 END) OVER (
                PARTITION BY a_id ORDER BY overlap_start, overlap_end, b_id
                ROWS UNBOUNDED PRECEDING) AS island
            FROM ordered
        ),
        lengths AS (
            SELECT a_id, island, epoch(max(overlap_end) - min(overlap_start)) / 60.0 AS minutes
            FROM islands GROUP BY a_id, island
        )
        SELECT a_id AS visit_id, sum(minutes) AS overlap_minutes FROM lengths GROUP BY a_id
        """
    )


def staff_aggregates(con: Engine) -> None:
    """Per invoice key: overlap minutes, the busiest staff day, staff shared with other providers.

    Needs `staff_overlaps` first.
    """
    con.execute(
        f"""
        CREATE TEMP TABLE staffagg AS
        WITH day_hours AS (
            SELECT staff_id, m, CAST(start_at AS DATE) AS d, {_HOURS_OF_SUM} AS hours
            FROM v WHERE is_target GROUP BY ALL
        ),
        staff_month AS (
            SELECT staff_id, m, max(hours) AS max_day_hours FROM day_hours GROUP BY ALL
        ),
        staff_providers AS (
            SELECT staff_id, m, count(DISTINCT provider_id) AS n_providers
            FROM v WHERE is_target GROUP BY ALL
        ),
        key_staff AS (
            SELECT DISTINCT {_KEY}, staff_id FROM v WHERE is_target
        ),
        overlap AS (
            SELECT v.provider_id, v.client_id, v.service_type, v.m,
                   sum(o.overlap_minutes) AS overlap_minutes
            FROM visit_overlap o JOIN v ON v.visit_id = o.visit_id AND v.is_target
            GROUP BY ALL
        ),
        per_key AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m,
                   max(sm.max_day_hours) AS max_staff_day_hours,
                   avg(CASE WHEN sp.n_providers > 1 THEN 1.0 ELSE 0.0 END)
                       AS share_staff_other_providers
            FROM key_staff k
            JOIN staff_month sm USING (staff_id, m)
            JOIN staff_providers sp USING (staff_id, m)
            GROUP BY ALL
        )
        SELECT per_key.*, coalesce(overlap.overlap_minutes, 0.0) AS overlap_minutes
        FROM per_key LEFT JOIN overlap USING (provider_id, client_id, service_type, m)
        """
    )


def staff_behaviour(con: Engine, config: FeatureConfig) -> None:
    """Per invoice key: how the invoice's staff work across all their clients and providers.

    What an auditor looks at beyond the single invoice: a carer's day summed over
    every provider they registered for that day, carers whose registrations are
    mostly typed in afterwards, carers who appear at this provider only by hand
    (no key-tag or app check-in there all month), and carers whose visit lengths
    are too alike to be real care.
    """
    min_visits = config.regular_staff_min_visits
    max_cv = config.regular_staff_max_duration_cv
    con.execute(
        f"""
        CREATE TEMP TABLE staffbehaviour AS
        WITH staff_month AS (
            SELECT staff_id, m,
                   avg(CASE WHEN method = 'manual' THEN 1.0 ELSE 0.0 END) AS manual_share,
                   CASE WHEN count(*) >= {min_visits} AND avg(hours) > 0
                             AND stddev_pop(hours) <= {max_cv!r} * avg(hours)
                        THEN 1.0 ELSE 0.0 END AS is_regular
            FROM v WHERE is_target GROUP BY staff_id, m
        ),
        staff_at_provider AS (
            SELECT staff_id, provider_id, m,
                   CASE WHEN sum(CASE WHEN method = 'manual' THEN 0 ELSE 1 END) = 0
                        THEN 1.0 ELSE 0.0 END AS only_by_hand
            FROM v WHERE is_target GROUP BY staff_id, provider_id, m
        ),
        staff_day AS (
            SELECT staff_id, m, CAST(start_at AS DATE) AS d, sum(hours) AS hours,
                   count(DISTINCT provider_id) AS n_providers
            FROM v WHERE is_target GROUP BY staff_id, m, CAST(start_at AS DATE)
        ),
        key_days AS (
            SELECT DISTINCT provider_id, client_id, service_type, m, staff_id,
                   CAST(start_at AS DATE) AS d
            FROM v WHERE is_target
        ),
        multi AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m,
                   max(sd.hours) AS multi_provider_day_hours
            FROM key_days k
            JOIN staff_day sd ON sd.staff_id = k.staff_id AND sd.m = k.m AND sd.d = k.d
            WHERE sd.n_providers >= 2
            GROUP BY k.provider_id, k.client_id, k.service_type, k.m
        ),
        per_key AS (
            SELECT v.provider_id, v.client_id, v.service_type, v.m,
                   avg(sm.manual_share) AS staff_manual_share,
                   sum(v.hours * sp.only_by_hand) / sum(v.hours) AS paper_staff_share,
                   sum(v.hours * sm.is_regular) / sum(v.hours) AS regular_staff_share
            FROM v
            JOIN staff_month sm ON sm.staff_id = v.staff_id AND sm.m = v.m
            JOIN staff_at_provider sp
              ON sp.staff_id = v.staff_id AND sp.provider_id = v.provider_id AND sp.m = v.m
            WHERE v.is_target AND v.hours > 0
            GROUP BY v.provider_id, v.client_id, v.service_type, v.m
        )
        SELECT per_key.*, coalesce(multi.multi_provider_day_hours, 0.0) AS multi_provider_day_hours
        FROM per_key LEFT JOIN multi USING (provider_id, client_id, service_type, m)
        """
    )


# The earlier months of the longest window, shared by own_history and comparison_evidence
# (formatted with `longest`): a target key's billed months, a provider's months.
_CLIENT_EARLIER_JOIN = """FROM t JOIN key_month k
              ON k.provider_id = t.provider_id AND k.client_id = t.client_id
             AND k.service_type = t.service_type AND k.m < t.m AND k.m >= t.m - {longest}
            WHERE k.has_invoice
            GROUP BY t.provider_id, t.client_id, t.service_type, t.m"""
_PROVIDER_MONTH_CTE = """provider_month AS (
            SELECT provider_id, m, sum(billed) AS billed, sum(reg_hours) AS reg_hours
            FROM key_month WHERE has_invoice GROUP BY provider_id, m
        )"""
_PROVIDER_EARLIER_JOIN = """FROM provider_month now JOIN provider_month before
              ON before.provider_id = now.provider_id
             AND before.m < now.m AND before.m >= now.m - {longest}"""


def own_history(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: this month against the same client's and provider's earlier months.

    Needs `history_features` first (its `key_month`). The earlier months are those of
    the longest window before the month; only months with an invoice count, so a
    client new to the provider is compared with nothing (and the feature says 1).
    """
    longest = config.longest_window_months
    floor = config.min_denominator_hours
    client_earlier = _CLIENT_EARLIER_JOIN.format(longest=longest)
    provider_month = _PROVIDER_MONTH_CTE
    provider_earlier = _PROVIDER_EARLIER_JOIN.format(longest=longest)
    con.execute(
        f"""
        CREATE TEMP TABLE ownhistory AS
        WITH t AS (SELECT DISTINCT {_KEY} FROM inv WHERE is_target),
        earlier AS (
            SELECT t.provider_id, t.client_id, t.service_type, t.m,
                   avg(k.billed) AS earlier_billed,
                   -- a month without a grant row says nothing of the grant's size
                   avg(CASE WHEN k.granted_hours > 0 THEN k.granted_hours END)
                       AS earlier_granted
            {client_earlier}
        ),
        {provider_month},
        provider_earlier AS (
            SELECT now.provider_id, now.m,
                   sum(before.billed) AS billed, sum(before.reg_hours) AS reg_hours
            {provider_earlier}
            GROUP BY now.provider_id, now.m
        ),
        provider_change AS (
            SELECT now.provider_id, now.m,
                   (now.billed / greatest(now.reg_hours, {floor!r}))
                   / greatest(e.billed / greatest(e.reg_hours, {floor!r}), 1e-9)
                       AS provider_ratio_change
            FROM provider_month now
            JOIN provider_earlier e ON e.provider_id = now.provider_id AND e.m = now.m
        )
        SELECT t.provider_id, t.client_id, t.service_type, t.m, earlier.earlier_billed,
               earlier.earlier_granted,
               coalesce(pc.provider_ratio_change, 1.0) AS provider_ratio_change
        FROM t
        LEFT JOIN earlier USING (provider_id, client_id, service_type, m)
        LEFT JOIN provider_change pc ON pc.provider_id = t.provider_id AND pc.m = t.m
        """
    )


def visit_key_months(con: Engine) -> None:
    """Per provider, client, service type and loaded month: the visits' counts by method.

    Why its own table: the visits' own history (`visit_own_history`) and the key-tag history
    (`keytag_own_history`) both read these counts of every loaded month; one pass over the
    visits instead of one each. `n_at_the_time` counts the visits registered when they were
    made (key tag or app: not typed in afterwards), `n_keytag` those checked in by key tag.
    """
    con.execute(
        f"""
        CREATE TEMP TABLE vkeymonth AS
        SELECT {_KEY}, count(*) AS n, sum(micros) AS micros,
               sum(CASE WHEN method = 'manual' THEN 1 ELSE 0 END) AS n_manual,
               sum(CASE WHEN method <> 'manual' THEN 1 ELSE 0 END) AS n_at_the_time,
               sum(CASE WHEN method = 'nfc' THEN 1 ELSE 0 END) AS n_keytag
        FROM v GROUP BY provider_id, client_id, service_type, m
        """
    )


def visit_own_history(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: the typed-in share and the provider's visit length, against the past.

    What an auditor who suspects padded or invented visits compares: the same client's
    typed-in share with this provider in the earlier months of the longest window, and
    the provider's mean visit length of the service type with its own earlier months.
    The shortest earlier month is the reference, so padding that began some months ago
    still shows. Only months with at least `own_history_min_visits` visits count (the
    mean of two visits says little), the month itself included. A client's own visit
    length is not compared: the shortest of a few months of a handful of visits each is
    low by chance, and on the bench family (messy seed 31) that noise put honest
    invoices in the capacity (docs/label-free.md). Needs `visit_key_months` first (its
    `vkeymonth`).
    """
    longest = config.longest_window_months
    min_visits = config.own_history_min_visits
    con.execute(
        f"""
        CREATE TEMP TABLE visithistory AS
        WITH t AS (SELECT DISTINCT {_KEY} FROM inv WHERE is_target),
        key_all AS (SELECT {_KEY}, n, micros, n_manual FROM vkeymonth),
        key_visits AS (
            SELECT {_KEY}, CAST(n_manual AS DOUBLE) / n AS manual_share
            FROM key_all WHERE n >= {min_visits}
        ),
        visits_earlier AS (
            SELECT t.provider_id, t.client_id, t.service_type, t.m,
                   avg(k.manual_share) AS earlier_manual_share
            FROM t JOIN key_visits k
              ON k.provider_id = t.provider_id AND k.client_id = t.client_id
             AND k.service_type = t.service_type AND k.m < t.m AND k.m >= t.m - {longest}
            GROUP BY t.provider_id, t.client_id, t.service_type, t.m
        ),
        provider_visits AS (
            SELECT provider_id, service_type, m,
                   CAST(sum(micros) AS DOUBLE) / 3600000000.0 / sum(n) AS mean_hours
            FROM key_all GROUP BY provider_id, service_type, m
            HAVING sum(n) >= {min_visits}
        ),
        provider_lowest AS (
            SELECT now.provider_id, now.service_type, now.m, now.mean_hours,
                   before.mean_hours AS lowest_mean_hours, before.m AS lowest_m,
                   row_number() OVER (
                       PARTITION BY now.provider_id, now.service_type, now.m
                       ORDER BY before.mean_hours, before.m) AS rank
            FROM provider_visits now JOIN provider_visits before
              ON before.provider_id = now.provider_id AND before.service_type = now.service_type
             AND before.m < now.m AND before.m >= now.m - {longest}
            WHERE now.m IN (SELECT m FROM months WHERE is_target)
        )
        SELECT t.provider_id, t.client_id, t.service_type, t.m,
               kn.manual_share AS now_manual_share, ve.earlier_manual_share,
               coalesce(pl.mean_hours / greatest(pl.lowest_mean_hours, 1e-9), 1.0)
                   AS provider_visit_length_change,
               60.0 * pl.mean_hours AS evidence_provider_length_minutes,
               60.0 * pl.lowest_mean_hours AS evidence_provider_length_lowest_minutes,
               pl.lowest_m AS evidence_provider_length_lowest_m
        FROM t
        LEFT JOIN key_visits kn USING (provider_id, client_id, service_type, m)
        LEFT JOIN visits_earlier ve USING (provider_id, client_id, service_type, m)
        LEFT JOIN provider_lowest pl
          ON pl.provider_id = t.provider_id AND pl.service_type = t.service_type
         AND pl.m = t.m AND pl.rank = 1
        """
    )


def keytag_own_history(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: the key-tag share against the same client's earlier months.

    What an auditor who suspects padded visits looks at: a key tag at the client's door
    records when the carer came and went, so a provider that lengthens visits on paper
    cannot keep using it and registers them in the app instead. Of the client's visits
    with this provider and service type registered at the time (key tag or app; visits
    typed in afterwards are judged by `manual_share_rise_over_own_history` and against
    the provider's habit, and a provider that types everything in to the quarter hour
    is not a key-tag fall), the share checked in by key tag is compared with its highest
    share in an earlier month of the longest window. Only months with at least
    `own_history_min_visits` such visits count, the month itself included. Needs
    `visit_key_months` first (its `vkeymonth`).
    """
    longest = config.longest_window_months
    min_visits = config.own_history_min_visits
    con.execute(
        f"""
        CREATE TEMP TABLE keytaghistory AS
        WITH t AS (SELECT DISTINCT {_KEY} FROM inv WHERE is_target),
        key_visits AS (
            SELECT {_KEY}, CAST(n_keytag AS DOUBLE) / n_at_the_time AS keytag_share
            FROM vkeymonth WHERE n_at_the_time >= {min_visits}
        ),
        highest AS (
            SELECT t.provider_id, t.client_id, t.service_type, t.m,
                   k.keytag_share AS highest_keytag_share, k.m AS highest_m,
                   row_number() OVER (
                       PARTITION BY t.provider_id, t.client_id, t.service_type, t.m
                       ORDER BY k.keytag_share DESC, k.m DESC) AS rank
            FROM t JOIN key_visits k
              ON k.provider_id = t.provider_id AND k.client_id = t.client_id
             AND k.service_type = t.service_type AND k.m < t.m AND k.m >= t.m - {longest}
        )
        SELECT t.provider_id, t.client_id, t.service_type, t.m,
               kn.keytag_share AS now_keytag_share, h.highest_keytag_share,
               kn.keytag_share AS evidence_keytag_now_share,
               h.highest_keytag_share AS evidence_keytag_highest_share,
               h.highest_m AS evidence_keytag_highest_m
        FROM t
        JOIN key_visits kn USING (provider_id, client_id, service_type, m)
        JOIN highest h USING (provider_id, client_id, service_type, m)
        WHERE h.rank = 1
        """
    )


def staff_elsewhere(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: hours of visits whose carer was registered at another client.

    Needs `staff_overlaps` first (`pairs`). A visit counts when the same carer's visit at
    another client covers at least half of it and the two began within
    `same_time_max_start_gap_minutes` of each other, or the other visit was checked in by
    key-tag while this one was not, at most `keytag_max_lead_minutes` before this one
    began or during it (the tag at that door shows where the carer was when it was read;
    a tag read hours earlier whose check-out was forgotten shows nothing now). A
    late check-out running into the next visit starts a whole visit earlier and covers
    the next one's start, not most of a visit begun at the same time; a key-tag visit
    itself never counts (the tag is the evidence of presence). One such visit is enough,
    unlike the double-booking finding, which needs several pairs in a month.
    """
    gap_seconds = 60.0 * config.same_time_max_start_gap_minutes
    lead_seconds = 60.0 * config.keytag_max_lead_minutes
    this_span = _visit_span("start_at", "end_at")
    other_span = _visit_span("other_start", "other_end")
    con.execute(
        f"""
        CREATE TEMP TABLE staffelsewhere AS
        WITH paired AS (
            -- The visits of the pairs only, read from the visits once.
            SELECT visit_id, provider_id, client_id, service_type, m, micros, staff_id,
                   start_at, end_at, method
            FROM v
            WHERE visit_id IN (SELECT a_id FROM pairs UNION ALL SELECT b_id FROM pairs)
        ),
        hit AS (
            SELECT a.provider_id, a.client_id, a.service_type, a.m, a.visit_id, a.micros,
                   a.staff_id, a.start_at, a.end_at, b.client_id AS other_client,
                   b.start_at AS other_start, b.end_at AS other_end, b.visit_id AS other_visit,
                   CASE WHEN b.method = 'nfc' THEN 1 ELSE 0 END AS other_keytag
            FROM pairs p
            JOIN paired a ON a.visit_id = p.a_id
            JOIN paired b ON b.visit_id = p.b_id
            WHERE a.method <> 'nfc'
              AND epoch(p.overlap_end - p.overlap_start) >= 0.5 * epoch(a.end_at - a.start_at)
              AND (
                  abs(epoch(a.start_at - b.start_at)) <= {gap_seconds!r}
                  -- The tag shows where the carer was when it was read: shortly before
                  -- this visit began or during it, never a check-in hours earlier whose
                  -- check-out was forgotten and filled in later.
                  OR (b.method = 'nfc'
                      AND epoch(a.start_at - b.start_at) <= {lead_seconds!r}
                      AND b.start_at < a.end_at)
              )
        ),
        ranked AS (
            SELECT *,
                   row_number() OVER (
                       PARTITION BY visit_id
                       ORDER BY other_keytag DESC, other_start, other_client, other_visit
                   ) AS partner_rank
            FROM hit
        ),
        per_visit AS (
            SELECT *,
                   row_number() OVER (
                       PARTITION BY provider_id, client_id, service_type, m
                       ORDER BY start_at, visit_id
                   ) AS rank
            FROM ranked WHERE partner_rank = 1
        )
        SELECT provider_id, client_id, service_type, m,
               count(*) AS elsewhere_visits,
               CAST(sum(micros) AS DOUBLE) / 3600000000.0 AS elsewhere_hours,
               max(CASE WHEN rank = 1 THEN staff_id END) AS evidence_elsewhere_staff,
               max(CASE WHEN rank = 1 THEN {this_span} END) AS evidence_elsewhere_date,
               max(CASE WHEN rank = 1 THEN {other_span} END) AS evidence_elsewhere_other_date,
               max(CASE WHEN rank = 1 THEN other_keytag END) AS evidence_elsewhere_other_keytag,
               count(*) AS evidence_elsewhere_visits,
               CAST(sum(micros) AS DOUBLE) / 3600000000.0 AS evidence_elsewhere_hours
        FROM per_visit
        GROUP BY provider_id, client_id, service_type, m
        """
    )


def carer_overlaps(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: visits overlapping the same carer's neighbouring visit.

    What an auditor checks in a carer's day: one carer cannot be at two visits at once, so
    a visit that overlaps the carer's previous or next visit (at this client or any
    other, for any provider) by `double_booking_min_minutes` or more holds time the
    carer spent elsewhere. Visits made longer on paper, at either end, overlap their
    neighbours when the route itself is unchanged; a route leaves travel time between
    visits. Shorter overlaps are clock noise (a key tag and an app a minute apart). Both
    visits of an overlapping pair count, so which one is charged does not depend on
    their ids; the neighbours are the carer's visits just before and after by start in
    the same month, so a month is described from its own visits only. The first such
    visit by start, with the neighbour it overlaps most, is the reason's fact.
    """
    min_micros = round(config.double_booking_min_minutes * 60_000_000)
    by_carer = "OVER (PARTITION BY staff_id, m ORDER BY start_at, visit_id)"
    this_span = _visit_span("start_at", "end_at")
    prev_span = _visit_span("prev_start", "prev_end")
    next_span = _visit_span("next_start", "next_end")
    con.execute(
        f"""
        CREATE TEMP TABLE carer_overlap AS
        WITH neighbours AS (
            SELECT visit_id, provider_id, client_id, service_type, m, start_at, end_at,
                   lag(start_at) {by_carer} AS prev_start,
                   lag(end_at) {by_carer} AS prev_end,
                   lag(provider_id) {by_carer} AS prev_provider,
                   lead(start_at) {by_carer} AS next_start,
                   lead(end_at) {by_carer} AS next_end,
                   lead(provider_id) {by_carer} AS next_provider,
                   count(*) OVER (PARTITION BY provider_id, client_id, service_type, m)
                       AS key_visits
            FROM v WHERE is_target
        ),
        overlapping AS (
            SELECT *,
                   CASE WHEN prev_end IS NULL THEN 0  -- least() skips a NULL
                        ELSE date_diff('microsecond', start_at, least(prev_end, end_at))
                   END AS prev_micros,
                   CASE WHEN next_start IS NULL THEN 0
                        ELSE date_diff('microsecond', next_start, least(next_end, end_at))
                   END AS next_micros
            FROM neighbours
        ),
        counted AS (
            SELECT *,
                   prev_micros >= next_micros AS with_prev,
                   row_number() OVER (
                       PARTITION BY provider_id, client_id, service_type, m
                       ORDER BY start_at, visit_id
                   ) AS rank
            FROM overlapping WHERE greatest(prev_micros, next_micros) >= {min_micros}
        )
        SELECT provider_id, client_id, service_type, m,
               count(*) AS carer_overlap_visits,
               max(CASE WHEN rank = 1 THEN {this_span} END)
                   AS evidence_carer_overlap_date,
               max(CASE WHEN rank = 1 AND with_prev THEN {prev_span}
                        WHEN rank = 1 THEN {next_span} END)
                   AS evidence_carer_overlap_other_date,
               max(CASE WHEN rank = 1 AND with_prev THEN prev_provider
                        WHEN rank = 1 THEN next_provider END)
                   AS evidence_carer_overlap_other_provider,
               max(CASE WHEN rank = 1
                        THEN CAST(floor(greatest(prev_micros, next_micros) / 60000000) AS BIGINT) END)
                   AS evidence_carer_overlap_minutes,
               count(*) AS evidence_carer_overlap_visits,
               max(key_visits) AS evidence_carer_overlap_key_visits
        FROM counted
        GROUP BY provider_id, client_id, service_type, m
        """
    )


def _visit_span(start: str, end: str) -> str:
    """SQL text of a visit's times, `2026-03-02 08:00-09:10`, an end on another day with its
    date (`2026-03-06 23:50-2026-03-07 00:20`): every visit span of the evidence is written
    here, so a visit across midnight never reads as ending before it began."""
    return (
        f"strftime({start}, '%Y-%m-%d %H:%M') || '-' || CASE WHEN CAST({start} AS DATE) = "
        f"CAST({end} AS DATE) THEN strftime({end}, '%H:%M') ELSE strftime({end}, "
        "'%Y-%m-%d %H:%M') END"
    )


# The facts behind the comparisons beyond the invoice (`comparison_evidence`), as the
# feature table carries them: what makes each such reason checkable (review/reasons.py).
COMPARISON_EVIDENCE_COLUMNS: tuple[str, ...] = (
    # max_staff_day_hours_across_providers: the carer, the day, its hours, providers, this key.
    "evidence_busy_day_staff",
    "evidence_busy_day_date",
    "evidence_busy_day_hours",
    "evidence_busy_day_providers",
    "evidence_busy_day_key_hours",
    # staff_manual_registration_share: the carer weighing most, their month, the others here.
    "evidence_manual_staff",
    "evidence_manual_staff_manual_visits",
    "evidence_manual_staff_visits",
    "evidence_manual_other_staff_share",
    # staff_only_by_hand_hours_share: hours of carers never checked in here, the main one.
    "evidence_by_hand_staff",
    "evidence_by_hand_staff_visits",
    "evidence_by_hand_staff_count",
    "evidence_by_hand_hours",
    # regular_staff_hours_share: hours of too-regular carers, the main one's visit lengths.
    "evidence_regular_staff",
    "evidence_regular_staff_visits",
    "evidence_regular_staff_mode_visits",
    "evidence_regular_staff_mode_minutes",
    "evidence_regular_staff_count",
    "evidence_regular_hours",
    # The invoice's registered hours (visits longer than zero): both shares' denominator.
    "evidence_key_hours",
    # billed_over_own_history_hours: the earlier months compared with.
    "evidence_history_billed",
    "evidence_history_months",
    "evidence_history_first_m",
    "evidence_history_last_m",
    # provider_billed_over_registered_change: this month and the earlier months, in hours.
    "evidence_provider_billed",
    "evidence_provider_registered",
    "evidence_provider_history_billed",
    "evidence_provider_history_registered",
    "evidence_provider_history_months",
    "evidence_provider_history_first_m",
    "evidence_provider_history_last_m",
    # staff_elsewhere_hours_share (staff_elsewhere): the first such visit, its carer, the
    # other client's visit (its times, never the client), whether a key-tag showed the
    # carer there; how many, their hours.
    "evidence_elsewhere_staff",
    "evidence_elsewhere_date",
    "evidence_elsewhere_other_date",
    "evidence_elsewhere_other_keytag",
    "evidence_elsewhere_visits",
    "evidence_elsewhere_hours",
    # carer_overlap_visit_share (carer_overlaps): the first such visit, the carer's visit it
    # overlaps most and that visit's provider, by how many minutes; how many, of how many.
    "evidence_carer_overlap_date",
    "evidence_carer_overlap_other_date",
    "evidence_carer_overlap_other_provider",
    "evidence_carer_overlap_minutes",
    "evidence_carer_overlap_visits",
    "evidence_carer_overlap_key_visits",
    # provider_visit_length_change (visit_own_history): the provider's mean visit length.
    "evidence_provider_length_minutes",
    "evidence_provider_length_lowest_minutes",
    "evidence_provider_length_lowest_m",
    # keytag_share_drop_over_own_history (keytag_own_history): both shares, the month.
    "evidence_keytag_now_share",
    "evidence_keytag_highest_share",
    "evidence_keytag_highest_m",
)


def _evidence_table(column: str) -> str:
    """The alias of the table that makes an evidence column in `invoice_frame`."""
    if "_elsewhere_" in column:
        return "se"  # staff_elsewhere
    if "_provider_length_" in column:
        return "vh"  # visit_own_history
    if "_keytag_" in column:
        return "kh"  # keytag_own_history
    if "_carer_overlap_" in column:
        return "co"  # carer_overlaps
    return "cmp"  # comparison_evidence


def comparison_evidence(con: Engine, config: FeatureConfig) -> None:
    """Per target invoice key: the facts behind each comparison beyond the invoice.

    Needs `history_features` first (its `key_month`). Each fact restates the feature's
    own computation (staff_behaviour, own_history) so the reason can name the carer,
    the day, the hours and the months; those tables are left as they are, so feature
    values do not change. Where several carers or days qualify, the one that decides
    the value (the busiest day) or weighs most on the invoice is named, ties by date
    and staff id: the same choice on every engine. Hours are summed in microseconds.
    """
    min_visits = config.regular_staff_min_visits
    max_cv = config.regular_staff_max_duration_cv
    longest = config.longest_window_months
    client_earlier = _CLIENT_EARLIER_JOIN.format(longest=longest)
    provider_month = _PROVIDER_MONTH_CTE
    provider_earlier = _PROVIDER_EARLIER_JOIN.format(longest=longest)
    per_key = "PARTITION BY k.provider_id, k.client_id, k.service_type, k.m"
    on_key = """{0}.provider_id = t.provider_id AND {0}.client_id = t.client_id
         AND {0}.service_type = t.service_type AND {0}.m = t.m"""
    con.execute(
        f"""
        CREATE TEMP TABLE comparisons AS
        WITH t AS (SELECT DISTINCT {_KEY} FROM inv WHERE is_target),
        key_day AS (
            SELECT {_KEY}, staff_id, CAST(start_at AS DATE) AS d, sum(micros) AS micros
            FROM v WHERE is_target GROUP BY {_KEY}, staff_id, CAST(start_at AS DATE)
        ),
        staff_day AS (
            SELECT staff_id, m, d, sum(micros) AS micros,
                   count(DISTINCT provider_id) AS n_providers
            FROM key_day GROUP BY staff_id, m, d
        ),
        busy AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m, k.staff_id, k.d,
                   sd.micros AS day_micros, sd.n_providers, k.micros AS key_micros,
                   row_number() OVER ({per_key} ORDER BY sd.micros DESC, k.d, k.staff_id)
                       AS rank
            FROM key_day k
            JOIN staff_day sd ON sd.staff_id = k.staff_id AND sd.m = k.m AND sd.d = k.d
            WHERE sd.n_providers >= 2
        ),
        staff_month AS (
            SELECT staff_id, m, count(*) AS n_visits,
                   sum(CASE WHEN method = 'manual' THEN 1 ELSE 0 END) AS n_manual,
                   count(*) >= {min_visits} AND avg(hours) > 0
                       AND stddev_pop(hours) <= {max_cv!r} * avg(hours) AS is_regular
            FROM v WHERE is_target GROUP BY staff_id, m
        ),
        lengths AS (
            SELECT v.staff_id, v.m, round(epoch(v.end_at - v.start_at) / 60.0) AS minutes,
                   count(*) AS n
            FROM v JOIN staff_month sm ON sm.staff_id = v.staff_id AND sm.m = v.m
            WHERE v.is_target AND sm.is_regular
            GROUP BY v.staff_id, v.m, round(epoch(v.end_at - v.start_at) / 60.0)
        ),
        modal_length AS (
            SELECT staff_id, m, minutes, n,
                   row_number() OVER (PARTITION BY staff_id, m ORDER BY n DESC, minutes) AS rank
            FROM lengths
        ),
        key_staff AS (
            SELECT {_KEY}, staff_id, count(*) AS n_visits,
                   sum(CASE WHEN method = 'manual' THEN 1 ELSE 0 END) AS n_manual,
                   sum(CASE WHEN hours > 0 THEN 1 ELSE 0 END) AS key_visits,
                   sum(CASE WHEN hours > 0 THEN micros ELSE 0 END) AS key_micros
            FROM v WHERE is_target GROUP BY {_KEY}, staff_id
        ),
        staff_at_provider AS (
            SELECT staff_id, provider_id, m, sum(n_visits) AS n_visits, sum(n_manual) AS n_manual
            FROM key_staff GROUP BY staff_id, provider_id, m
        ),
        provider_visits AS (
            SELECT provider_id, m, sum(n_visits) AS n_visits, sum(n_manual) AS n_manual
            FROM key_staff GROUP BY provider_id, m
        ),
        key_totals AS (
            SELECT {_KEY}, sum(key_micros) AS key_micros FROM key_staff GROUP BY {_KEY}
        ),
        key_staff_here AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m,
                   sum(sp.n_visits) AS n_visits, sum(sp.n_manual) AS n_manual
            FROM key_staff k
            JOIN staff_at_provider sp
              ON sp.staff_id = k.staff_id AND sp.provider_id = k.provider_id AND sp.m = k.m
            GROUP BY k.provider_id, k.client_id, k.service_type, k.m
        ),
        manual AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m, k.staff_id,
                   sm.n_manual, sm.n_visits,
                   row_number() OVER (
                       {per_key}
                       ORDER BY CAST(k.key_visits * sm.n_manual AS DOUBLE) / sm.n_visits DESC,
                                k.key_visits DESC, k.staff_id) AS rank
            FROM key_staff k JOIN staff_month sm ON sm.staff_id = k.staff_id AND sm.m = k.m
            WHERE k.key_visits > 0
        ),
        by_hand AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m, k.staff_id, sp.n_visits,
                   count(*) OVER ({per_key}) AS n_staff,
                   sum(k.key_micros) OVER ({per_key}) AS micros,
                   row_number() OVER ({per_key} ORDER BY k.key_micros DESC, k.staff_id) AS rank
            FROM key_staff k
            JOIN staff_at_provider sp
              ON sp.staff_id = k.staff_id AND sp.provider_id = k.provider_id AND sp.m = k.m
            WHERE k.key_visits > 0 AND sp.n_manual = sp.n_visits
        ),
        regular_here AS (
            SELECT k.provider_id, k.client_id, k.service_type, k.m, k.staff_id,
                   sm.n_visits, ml.n AS mode_visits, ml.minutes AS mode_minutes,
                   count(*) OVER ({per_key}) AS n_staff,
                   sum(k.key_micros) OVER ({per_key}) AS micros,
                   row_number() OVER ({per_key} ORDER BY k.key_micros DESC, k.staff_id) AS rank
            FROM key_staff k
            JOIN staff_month sm ON sm.staff_id = k.staff_id AND sm.m = k.m
            JOIN modal_length ml ON ml.staff_id = k.staff_id AND ml.m = k.m AND ml.rank = 1
            WHERE k.key_visits > 0 AND sm.is_regular
        ),
        client_earlier AS (
            SELECT t.provider_id, t.client_id, t.service_type, t.m,
                   avg(k.billed) AS billed, count(*) AS n_months,
                   min(k.m) AS first_m, max(k.m) AS last_m
            {client_earlier}
        ),
        {provider_month},
        provider_earlier AS (
            SELECT now.provider_id, now.m,
                   sum(before.billed) AS billed, sum(before.reg_hours) AS reg_hours,
                   count(*) AS n_months, min(before.m) AS first_m, max(before.m) AS last_m
            {provider_earlier}
            WHERE now.m IN (SELECT m FROM months WHERE is_target)
            GROUP BY now.provider_id, now.m
        )
        SELECT t.provider_id, t.client_id, t.service_type, t.m,
               busy.staff_id AS evidence_busy_day_staff,
               strftime(busy.d, '%Y-%m-%d') AS evidence_busy_day_date,
               CAST(busy.day_micros AS DOUBLE) / 3600000000.0 AS evidence_busy_day_hours,
               busy.n_providers AS evidence_busy_day_providers,
               CAST(busy.key_micros AS DOUBLE) / 3600000000.0 AS evidence_busy_day_key_hours,
               manual.staff_id AS evidence_manual_staff,
               manual.n_manual AS evidence_manual_staff_manual_visits,
               manual.n_visits AS evidence_manual_staff_visits,
               CASE WHEN pv.n_visits > here.n_visits
                    THEN CAST(pv.n_manual - here.n_manual AS DOUBLE)
                         / (pv.n_visits - here.n_visits) END AS evidence_manual_other_staff_share,
               by_hand.staff_id AS evidence_by_hand_staff,
               by_hand.n_visits AS evidence_by_hand_staff_visits,
               by_hand.n_staff AS evidence_by_hand_staff_count,
               CAST(by_hand.micros AS DOUBLE) / 3600000000.0 AS evidence_by_hand_hours,
               regular_here.staff_id AS evidence_regular_staff,
               regular_here.n_visits AS evidence_regular_staff_visits,
               regular_here.mode_visits AS evidence_regular_staff_mode_visits,
               regular_here.mode_minutes AS evidence_regular_staff_mode_minutes,
               regular_here.n_staff AS evidence_regular_staff_count,
               CAST(regular_here.micros AS DOUBLE) / 3600000000.0 AS evidence_regular_hours,
               CAST(kt.key_micros AS DOUBLE) / 3600000000.0 AS evidence_key_hours,
               ce.billed AS evidence_history_billed,
               ce.n_months AS evidence_history_months,
               ce.first_m AS evidence_history_first_m,
               ce.last_m AS evidence_history_last_m,
               pm.billed AS evidence_provider_billed,
               pm.reg_hours AS evidence_provider_registered,
               pe.billed AS evidence_provider_history_billed,
               pe.reg_hours AS evidence_provider_history_registered,
               pe.n_months AS evidence_provider_history_months,
               pe.first_m AS evidence_provider_history_first_m,
               pe.last_m AS evidence_provider_history_last_m
        FROM t
        LEFT JOIN busy ON {on_key.format("busy")} AND busy.rank = 1
        LEFT JOIN manual ON {on_key.format("manual")} AND manual.rank = 1
        LEFT JOIN key_staff_here here ON {on_key.format("here")}
        LEFT JOIN provider_visits pv ON pv.provider_id = t.provider_id AND pv.m = t.m
        LEFT JOIN by_hand ON {on_key.format("by_hand")} AND by_hand.rank = 1
        LEFT JOIN regular_here ON {on_key.format("regular_here")} AND regular_here.rank = 1
        LEFT JOIN key_totals kt ON {on_key.format("kt")}
        LEFT JOIN client_earlier ce ON {on_key.format("ce")}
        LEFT JOIN provider_month pm ON pm.provider_id = t.provider_id AND pm.m = t.m
        LEFT JOIN provider_earlier pe ON pe.provider_id = t.provider_id AND pe.m = t.m
        """
    )


def grant_months(con: Engine) -> None:
    """Granted hours per provider, client, service type and month, by the days each grant held."""
    con.execute(
        """
        CREATE TEMP TABLE gm AS
        SELECT g.provider_id, g.client_id, g.service_type, mo.m,
               sum(g.hours_per_month
                   * (date_diff('day', greatest(g.valid_from, mo.month_start),
                                least(coalesce(g.valid_to, mo.last_day), mo.last_day)) + 1)
                   / mo.days) AS granted_hours
        FROM grants g JOIN months mo
          ON g.valid_from <= mo.last_day AND (g.valid_to IS NULL OR g.valid_to >= mo.month_start)
        GROUP BY ALL
        """
    )


def history_features(con: Engine, config: FeatureConfig) -> None:
    """Windowed sums per target invoice key: billed, registered and granted hours.

    Only months the key was billed count, so a window reaching back before the
    data (or before the client came to the provider) does not dilute the ratio.
    """
    longest = config.longest_window_months
    tolerance = config.exact_grant_tolerance_hours
    window_sums = ",\n".join(
        f"sum(CASE WHEN k.m > t.m - {w} THEN k.billed END) AS billed_{w}m, "
        f"sum(CASE WHEN k.m > t.m - {w} THEN k.reg_hours END) AS registered_{w}m, "
        f"sum(CASE WHEN k.m > t.m - {w} THEN k.granted_hours END) AS granted_{w}m"
        for w in config.history_windows_months
    )
    con.execute(
        f"""
        CREATE TEMP TABLE key_month AS
        WITH billed AS (SELECT {_KEY}, sum(billed_hours) AS billed FROM inv GROUP BY ALL)
        SELECT provider_id, client_id, service_type, m,
               coalesce(b.billed, 0.0) AS billed, b.billed IS NOT NULL AS has_invoice,
               coalesce(h.reg_hours, 0.0) AS reg_hours,
               coalesce(g.granted_hours, 0.0) AS granted_hours
        FROM billed b
        FULL JOIN vhours h USING (provider_id, client_id, service_type, m)
        FULL JOIN gm g USING (provider_id, client_id, service_type, m)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE history AS
        WITH t AS (SELECT DISTINCT {_KEY} FROM inv WHERE is_target)
        SELECT t.provider_id, t.client_id, t.service_type, t.m,
               {window_sums},
               count(CASE WHEN k.has_invoice AND k.granted_hours > 0
                          AND abs(k.billed - k.granted_hours) <= {tolerance!r} THEN 1 END)
                   AS months_exact_at_grant
        FROM t JOIN key_month k
          ON k.provider_id = t.provider_id AND k.client_id = t.client_id
         AND k.service_type = t.service_type AND k.m > t.m - {longest} AND k.m <= t.m
        WHERE k.has_invoice
        GROUP BY ALL
        """
    )


def provider_features(con: Engine, config: FeatureConfig) -> None:
    """Per provider and target month: events, growth, takeovers, board links, size."""
    con.execute(
        """
        CREATE TEMP TABLE pm AS
        SELECT DISTINCT i.provider_id, i.m, mo.month_start, mo.last_day
        FROM inv i JOIN months mo USING (m) WHERE i.is_target
        """
    )
    provider_month_features(con, config)


def provider_month_features(con: Engine, config: FeatureConfig) -> None:
    """Events, growth, takeovers, board links and size for every provider-month in `pm`.

    `pm` (provider_id, m, month_start, last_day) lists the provider-months to
    describe: those with invoices for the invoice features, every provider in the
    register (applicants too) for the provider scorecard (`tillit.features.providers`).
    """
    days = config.provider_event_window_days
    growth = config.client_growth_window_months
    lookback = config.takeover_lookback_months
    counted = {
        "f_tax_revoked": "f_tax_revoked",
        "employer_registration_revoked": "employer_registration_revoked",
        "sanction": "sanctions",
        "complaint": "complaints",
        "inspection_remark": "inspection_remarks",
        "contract_warning": "contract_warnings",
        "board_change": "board_changes",
        "owner_change": "owner_changes",
        "address_change": "address_changes",
    }
    counts = ",\n".join(
        f"count(CASE WHEN e.event_type = '{event}' THEN 1 END) AS {name}"
        for event, name in counted.items()
    )
    con.execute(
        f"""
        CREATE TEMP TABLE pevents AS
        WITH windowed AS (
            SELECT pm.provider_id, pm.m,
                   sum(CASE WHEN e.event_type = 'tax_debt_registered'
                            THEN coalesce(e.amount_sek, 0.0) ELSE 0.0 END) AS tax_debt_sek,
                   {counts}
            FROM pm JOIN provider_events e
              ON e.provider_id = pm.provider_id
             AND e.event_date <= pm.last_day
             AND e.event_date > pm.last_day - INTERVAL {days} DAY
            GROUP BY ALL
        ),
        f_tax AS (
            -- Revoked on a later day than it was last restored (same day: restored).
            SELECT pm.provider_id, pm.m,
                   coalesce(max(e.event_date) FILTER (WHERE e.event_type = 'f_tax_revoked')
                            > max(e.event_date) FILTER (WHERE e.event_type = 'f_tax_restored'),
                            max(e.event_date) FILTER (WHERE e.event_type = 'f_tax_revoked')
                            IS NOT NULL) AS f_tax_revoked_now
            FROM pm JOIN provider_events e
              ON e.provider_id = pm.provider_id AND e.event_date <= pm.last_day
             AND e.event_type IN ('f_tax_revoked', 'f_tax_restored')
            GROUP BY ALL
        )
        SELECT pm.provider_id, pm.m, windowed.* EXCLUDE (provider_id, m),
               coalesce(f_tax.f_tax_revoked_now, FALSE) AS f_tax_revoked_now
        FROM pm
        LEFT JOIN windowed USING (provider_id, m)
        LEFT JOIN f_tax USING (provider_id, m)
        """
    )
    # A person linked to this provider at the end of the month who has held a
    # role at another provider that was sanctioned or terminated by then.
    con.execute(
        """
        CREATE TEMP TABLE pboard AS
        WITH flagged AS (
            SELECT pm.provider_id AS anchor, pm.m, p.provider_id AS other
            FROM pm CROSS JOIN providers p
            WHERE p.terminated_on <= pm.last_day
               OR EXISTS (SELECT 1 FROM provider_events e
                          WHERE e.provider_id = p.provider_id AND e.event_type = 'sanction'
                            AND e.event_date <= pm.last_day)
        ),
        current_persons AS (
            SELECT pm.provider_id, pm.m, pp.person_id
            FROM pm JOIN provider_persons pp
              ON pp.provider_id = pm.provider_id AND pp.from_date <= pm.last_day
             AND (pp.to_date IS NULL OR pp.to_date >= pm.last_day)
        )
        SELECT c.provider_id, c.m, count(DISTINCT c.person_id) AS linked_persons
        FROM current_persons c
        JOIN pm ON pm.provider_id = c.provider_id AND pm.m = c.m
        JOIN provider_persons other_role
          ON other_role.person_id = c.person_id AND other_role.provider_id <> c.provider_id
         AND other_role.from_date <= pm.last_day
        JOIN flagged f ON f.anchor = c.provider_id AND f.m = c.m AND f.other = other_role.provider_id
        GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE pclients AS
        WITH clients_month AS (
            SELECT provider_id, m, count(DISTINCT client_id) AS n_clients FROM inv GROUP BY ALL
        ),
        target_clients AS (
            SELECT DISTINCT i.provider_id, i.client_id, i.m, mo.last_day
            FROM inv i JOIN months mo USING (m) WHERE i.is_target
        ),
        taken_over AS (
            SELECT t.provider_id, t.m, count(DISTINCT t.client_id) AS n_taken_over
            FROM target_clients t
            JOIN inv earlier ON earlier.client_id = t.client_id
             AND earlier.provider_id <> t.provider_id
             AND earlier.m < t.m AND earlier.m >= t.m - {lookback}
            JOIN providers p ON p.provider_id = earlier.provider_id
             AND p.terminated_on <= t.last_day
            GROUP BY ALL
        ),
        staffing AS (
            SELECT provider_id, m,
                   count(DISTINCT staff_id) / count(DISTINCT client_id) AS staff_per_client
            FROM v WHERE is_target GROUP BY ALL
        )
        SELECT pm.provider_id, pm.m, coalesce(now.n_clients, 0) AS n_clients,
               coalesce(before.n_clients, 0) AS n_clients_before,
               EXISTS (SELECT 1 FROM inv WHERE inv.m = pm.m - {growth}) AS growth_known,
               coalesce(taken_over.n_taken_over, 0) AS n_taken_over,
               coalesce(staffing.staff_per_client, 0.0) AS staff_per_client
        FROM pm
        LEFT JOIN clients_month now ON now.provider_id = pm.provider_id AND now.m = pm.m
        LEFT JOIN clients_month before
          ON before.provider_id = pm.provider_id AND before.m = pm.m - {growth}
        LEFT JOIN taken_over ON taken_over.provider_id = pm.provider_id AND taken_over.m = pm.m
        LEFT JOIN staffing ON staffing.provider_id = pm.provider_id AND staffing.m = pm.m
        """
    )


def invoice_frame(con: Engine, config: FeatureConfig) -> pd.DataFrame:
    """One row per target invoice with every raw aggregate the features are made from."""
    longest = config.longest_window_months
    windows = ", ".join(
        f"h.billed_{w}m, h.registered_{w}m, h.granted_{w}m" for w in config.history_windows_months
    )
    evidence = ", ".join(
        f"{_evidence_table(column)}.{column}" for column in COMPARISON_EVIDENCE_COLUMNS
    )
    # Pooled municipalities: each invoice takes its own municipality's rate.
    pooled = "municipality" in relation_columns(con, "tariffs")
    same_municipality = "AND tr.municipality = i.municipality" if pooled else ""
    tariff_municipality = " i.municipality AS tariff_municipality," if pooled else ""
    return con.execute(
        f"""
        WITH sek_per_hour AS (
            SELECT {_KEY}, invoice_id, amount_sek / billed_hours AS sek_per_hour
            FROM inv WHERE billed_hours > 0
        ),
        municipality_norm AS (
            SELECT service_type, m, median(sek_per_hour) AS norm
            FROM sek_per_hour GROUP BY ALL
        ),
        provider_norm AS (
            SELECT t.provider_id, t.service_type, t.m, median(s.sek_per_hour) AS norm
            FROM (SELECT DISTINCT provider_id, service_type, m FROM inv WHERE is_target) t
            JOIN sek_per_hour s ON s.provider_id = t.provider_id
             AND s.service_type = t.service_type AND s.m < t.m AND s.m >= t.m - {longest}
            GROUP BY ALL
        ),
        duplicates AS (
            SELECT {_KEY}, count(*) AS n_invoices,
                   list(invoice_id ORDER BY invoice_id) AS key_invoice_ids
            FROM inv WHERE is_target GROUP BY ALL
        ),
        other_visits AS (
            SELECT provider_id, client_id, m, sum(reg_hours) AS all_types_hours
            FROM vhours GROUP BY ALL
        ),
        hospital_days AS (
            SELECT h.client_id, mo.m,
                   least(max(mo.days), sum(greatest(0, date_diff('day',
                       CAST(greatest(h.admitted_on + INTERVAL 1 DAY, mo.month_start) AS DATE),
                       CASE WHEN h.discharged_on IS NULL OR h.discharged_on > mo.last_day
                            THEN CAST(mo.last_day + INTERVAL 1 DAY AS DATE)
                            ELSE CAST(h.discharged_on AS DATE) END)))) AS hospital_days
            FROM hospital_stays h JOIN months mo
              ON h.admitted_on < mo.last_day
             AND (h.discharged_on IS NULL OR h.discharged_on > mo.month_start + INTERVAL 1 DAY)
            WHERE mo.is_target
            GROUP BY ALL
        ),
        other_grants AS (
            SELECT client_id, service_type, m,
                   list(DISTINCT provider_id ORDER BY provider_id) AS grant_providers
            FROM gm GROUP BY ALL
        )
        SELECT i.invoice_id, i.provider_id, i.client_id, i.period, i.service_type,
               i.billed_hours, i.amount_sek, i.m,
               mo.month_start, mo.last_day, mo.days,
               tr.rate_sek, CAST(substr(i.period, 1, 4) AS BIGINT) AS tariff_year,{tariff_municipality}
               p.provider_id IS NOT NULL AS provider_known,
               p.legal_form, p.registered_on, p.approved_on,
               CASE WHEN p.terminated_on <= mo.last_day THEN p.terminated_on END AS terminated_known,
               c.client_id IS NOT NULL AS client_known, c.district,
               CASE WHEN c.deceased_on <= mo.last_day THEN c.deceased_on END AS deceased_known,
               coalesce(a.n_visits, 0) AS n_visits,
               coalesce(a.reg_hours, 0.0) AS reg_hours,
               coalesce(a.manual_share, 0.0) AS manual_share,
               coalesce(a.round_start_share, 0.0) AS round_start_share,
               coalesce(a.short_share, 0.0) AS short_share,
               coalesce(a.mean_hours, 0.0) AS mean_hours,
               coalesce(a.sd_hours, 0.0) AS sd_hours,
               coalesce(a.start_cos, 1.0) AS start_cos,
               coalesce(a.start_sin, 0.0) AS start_sin,
               coalesce(a.n_staff, 0) AS n_staff,
               coalesce(a.n_repeated, 0) AS n_repeated,
               coalesce(a.hospital_hours, 0.0) AS hospital_hours,
               coalesce(a.after_death_hours, 0.0) AS after_death_hours,
               coalesce(a.after_death_day_hours, 0.0) AS after_death_day_hours,
               coalesce(ph.day_short_share, 0.0) AS day_short_share,
               coalesce(ph.typed_repeated_share, 0.0) AS typed_repeated_share,
               coalesce(ph.habit_manual_share, 0.0) AS habit_manual_share,
               coalesce(ph.habit_round_share, 0.0) AS habit_round_share,
               coalesce(ph.habit_short_share, 0.0) AS habit_short_share,
               coalesce(ph.habit_repeated_share, 0.0) AS habit_repeated_share,
               coalesce(hd.hospital_days, 0) AS hospital_days,
               coalesce(ov.all_types_hours, 0.0) AS all_types_hours,
               coalesce(g.granted_hours, 0.0) AS granted_hours,
               og.grant_providers,
               coalesce(s.max_staff_day_hours, 0.0) AS max_staff_day_hours,
               coalesce(s.share_staff_other_providers, 0.0) AS share_staff_other_providers,
               coalesce(s.overlap_minutes, 0.0) AS overlap_minutes,
               coalesce(sb.staff_manual_share, 0.0) AS staff_manual_share,
               coalesce(sb.paper_staff_share, 0.0) AS paper_staff_share,
               coalesce(sb.regular_staff_share, 0.0) AS regular_staff_share,
               coalesce(sb.multi_provider_day_hours, 0.0) AS multi_provider_day_hours,
               oh.earlier_billed, oh.earlier_granted,
               coalesce(oh.provider_ratio_change, 1.0) AS provider_ratio_change,
               {evidence},
               vh.now_manual_share, vh.earlier_manual_share,
               kh.now_keytag_share, kh.highest_keytag_share,
               coalesce(vh.provider_visit_length_change, 1.0) AS provider_visit_length_change,
               coalesce(se.elsewhere_visits, 0) AS elsewhere_visits,
               coalesce(se.elsewhere_hours, 0.0) AS elsewhere_hours,
               coalesce(co.carer_overlap_visits, 0) AS carer_overlap_visits,
               {windows}, coalesce(h.months_exact_at_grant, 0) AS months_exact_at_grant,
               pn.norm AS provider_norm, mn.norm AS municipality_norm,
               d.n_invoices, d.key_invoice_ids,
               coalesce(pe.tax_debt_sek, 0.0) AS tax_debt_sek,
               coalesce(pe.f_tax_revoked, 0) AS f_tax_revoked,
               coalesce(pe.employer_registration_revoked, 0) AS employer_registration_revoked,
               coalesce(pe.sanctions, 0) AS sanctions,
               coalesce(pe.complaints, 0) AS complaints,
               coalesce(pe.inspection_remarks, 0) AS inspection_remarks,
               coalesce(pe.contract_warnings, 0) AS contract_warnings,
               coalesce(pe.board_changes, 0) AS board_changes,
               coalesce(pe.owner_changes, 0) AS owner_changes,
               coalesce(pe.address_changes, 0) AS address_changes,
               coalesce(pe.f_tax_revoked_now, FALSE) AS f_tax_revoked_now,
               coalesce(pb.linked_persons, 0) AS linked_persons,
               pc.n_clients, pc.n_clients_before, pc.growth_known, pc.n_taken_over,
               pc.staff_per_client
        FROM inv i
        JOIN months mo ON mo.m = i.m
        LEFT JOIN tariffs tr
          ON tr.service_type = i.service_type AND tr.year = CAST(substr(i.period, 1, 4) AS BIGINT)
         {same_municipality}
        LEFT JOIN providers p ON p.provider_id = i.provider_id
        LEFT JOIN clients c ON c.client_id = i.client_id
        LEFT JOIN vagg a
          ON a.provider_id = i.provider_id
         AND a.client_id = i.client_id
         AND a.service_type = i.service_type
         AND a.m = i.m
        LEFT JOIN provhabit ph
          ON ph.provider_id = i.provider_id
         AND ph.client_id = i.client_id
         AND ph.service_type = i.service_type
         AND ph.m = i.m
        LEFT JOIN other_visits ov
          ON ov.provider_id = i.provider_id
         AND ov.client_id = i.client_id
         AND ov.m = i.m
        LEFT JOIN gm g
          ON g.provider_id = i.provider_id
         AND g.client_id = i.client_id
         AND g.service_type = i.service_type
         AND g.m = i.m
        LEFT JOIN hospital_days hd ON hd.client_id = i.client_id AND hd.m = i.m
        LEFT JOIN other_grants og
          ON og.client_id = i.client_id
         AND og.service_type = i.service_type
         AND og.m = i.m
        LEFT JOIN staffagg s
          ON s.provider_id = i.provider_id
         AND s.client_id = i.client_id
         AND s.service_type = i.service_type
         AND s.m = i.m
        LEFT JOIN staffbehaviour sb
          ON sb.provider_id = i.provider_id
         AND sb.client_id = i.client_id
         AND sb.service_type = i.service_type
         AND sb.m = i.m
        LEFT JOIN ownhistory oh
          ON oh.provider_id = i.provider_id
         AND oh.client_id = i.client_id
         AND oh.service_type = i.service_type
         AND oh.m = i.m
        LEFT JOIN visithistory vh
          ON vh.provider_id = i.provider_id
         AND vh.client_id = i.client_id
         AND vh.service_type = i.service_type
         AND vh.m = i.m
        LEFT JOIN keytaghistory kh
          ON kh.provider_id = i.provider_id
         AND kh.client_id = i.client_id
         AND kh.service_type = i.service_type
         AND kh.m = i.m
        LEFT JOIN staffelsewhere se
          ON se.provider_id = i.provider_id
         AND se.client_id = i.client_id
         AND se.service_type = i.service_type
         AND se.m = i.m
        LEFT JOIN carer_overlap co
          ON co.provider_id = i.provider_id
         AND co.client_id = i.client_id
         AND co.service_type = i.service_type
         AND co.m = i.m
        LEFT JOIN comparisons cmp
          ON cmp.provider_id = i.provider_id
         AND cmp.client_id = i.client_id
         AND cmp.service_type = i.service_type
         AND cmp.m = i.m
        LEFT JOIN history h
          ON h.provider_id = i.provider_id
         AND h.client_id = i.client_id
         AND h.service_type = i.service_type
         AND h.m = i.m
        LEFT JOIN provider_norm pn
          ON pn.provider_id = i.provider_id
         AND pn.service_type = i.service_type
         AND pn.m = i.m
        LEFT JOIN municipality_norm mn ON mn.service_type = i.service_type AND mn.m = i.m
        LEFT JOIN duplicates d
          ON d.provider_id = i.provider_id
         AND d.client_id = i.client_id
         AND d.service_type = i.service_type
         AND d.m = i.m
        LEFT JOIN pevents pe ON pe.provider_id = i.provider_id AND pe.m = i.m
        LEFT JOIN pboard pb ON pb.provider_id = i.provider_id AND pb.m = i.m
        LEFT JOIN pclients pc ON pc.provider_id = i.provider_id AND pc.m = i.m
        WHERE i.is_target
        ORDER BY i.invoice_id
        """
    ).df()


def evidence_frames(con: Engine, config: FeatureConfig) -> dict[str, pd.DataFrame]:
    """Per invoice key, the checkable facts behind visit- and staff-based findings."""
    cap = config.evidence_max_items
    min_minutes = config.double_booking_min_minutes
    after_death = con.execute(
        f"""
        SELECT {_KEY}, count(*) AS n,
               list(visit_id ORDER BY start_at, visit_id)[1:{cap}] AS visit_ids
        FROM v WHERE is_target AND after_death GROUP BY ALL
        """
    ).df()
    hospital = con.execute(
        f"""
        WITH stays AS (
            SELECT {_KEY}, admitted_on, discharged_known, last_day,
                   count(DISTINCT visit_id) AS n_stay
            FROM hv GROUP BY ALL
        ),
        stay_text AS (
            SELECT {_KEY},
                   -- Facts, not words: admitted, open/closed, until (evidence.py words them).
                   list(strftime(admitted_on, '%Y-%m-%d') || chr(31) ||
                        CASE WHEN discharged_known IS NULL
                             THEN 'open' || chr(31) || strftime(last_day, '%Y-%m-%d')
                             ELSE 'closed' || chr(31) || strftime(discharged_known, '%Y-%m-%d') END
                        ORDER BY admitted_on, discharged_known) AS stays
            FROM stays GROUP BY ALL
        ),
        visits AS (
            SELECT {_KEY}, count(DISTINCT visit_id) AS n,
                   list(DISTINCT visit_id ORDER BY visit_id)[1:{cap}] AS visit_ids
            FROM hv GROUP BY ALL
        )
        SELECT * FROM visits JOIN stay_text USING (provider_id, client_id, service_type, m)
        """
    ).df()
    # Text only for the first pairs of each key: dense overlaps must not cost a
    # string per pair. A key-tag check-in at the door is evidence of presence: when
    # only one visit of a pair was checked in that way, the other registration is
    # the doubtful one, and only its invoice gets the finding (the overlap minutes
    # feature still counts both sides). Registration noise (a late check-out running
    # into the next visit, a forgotten check-out) overlaps part of the longer visit;
    # an impossibility is two key-tag check-ins at two doors, or an overlap covering
    # most of both visits (`double_booking_min_longer_share` of the longer one). One
    # or two in a month can be chance; the finding needs `double_booking_min_pairs`.
    # A pair does not count for an invoice whose partner invoice has more than
    # `double_booking_partner_ratio` times as many such pairs: visits copied from many
    # clients' real visits make one invoice overlap many, and the clients copied from
    # each overlap it only a few times.
    double_booked = con.execute(
        f"""
        WITH q AS (
            SELECT a.provider_id, a.client_id, a.service_type, a.m, pairs.staff_id,
                   b.provider_id AS b_provider, b.service_type AS b_service, b.m AS b_m,
                   pairs.a_id, pairs.b_id, b.client_id AS other_client, pairs.overlap_start,
                   epoch(pairs.overlap_end - pairs.overlap_start) / 60.0 AS minutes,
                   -- Tenths of a minute, rounded half up by floor: round() of a double
                   -- differs between engines at .x5 (DuckDB rounds the binary value,
                   -- Spark its decimal text), and the evidence must read the same.
                   floor((epoch(pairs.overlap_end - pairs.overlap_start) + 3) / 6)
                       AS overlap_tenths,
                   a.start_at AS a_start, a.end_at AS a_end,
                   b.start_at AS b_start, b.end_at AS b_end,
                   a.method AS a_method, b.method AS b_method
            FROM pairs
            JOIN v a ON a.visit_id = pairs.a_id
            JOIN v b ON b.visit_id = pairs.b_id
            WHERE epoch(pairs.overlap_end - pairs.overlap_start) / 60.0 >= {min_minutes!r}
              AND NOT (a.method = 'nfc' AND b.method <> 'nfc')
              AND (
                (a.method = 'nfc' AND b.method = 'nfc')
                OR epoch(pairs.overlap_end - pairs.overlap_start)
                   >= {config.double_booking_min_longer_share!r}
                      * greatest(epoch(a.end_at - a.start_at), epoch(b.end_at - b.start_at))
              )
        ),
        key_pairs AS (
            SELECT {_KEY}, count(*) AS n_key FROM q GROUP BY ALL
        ),
        p AS (
            SELECT q.* FROM q
            JOIN key_pairs own USING (provider_id, client_id, service_type, m)
            LEFT JOIN key_pairs other
              ON other.provider_id = q.b_provider AND other.client_id = q.other_client
             AND other.service_type = q.b_service AND other.m = q.b_m
            WHERE own.n_key * {config.double_booking_partner_ratio!r} >= coalesce(other.n_key, 0)
        ),
        ranked AS (
            SELECT *,
                   row_number() OVER (PARTITION BY {_KEY} ORDER BY overlap_start, a_id, b_id)
                       AS rank,
                   count(*) OVER (PARTITION BY {_KEY}) AS n
            FROM p
        )
        SELECT {_KEY}, any_value(n) AS n,
               -- Facts, not words, split by evidence.py (PAIR_FIELDS) and worded there.
               list(
                 concat_ws(chr(31), staff_id, a_id,
                   {_visit_span("a_start", "a_end")},
                   coalesce(a_method, ''), b_id,
                   {_visit_span("b_start", "b_end")},
                   coalesce(b_method, ''), CAST(overlap_tenths / 10.0 AS VARCHAR))
                 ORDER BY rank
               ) AS pairs
        FROM ranked WHERE rank <= {cap} AND n >= {config.double_booking_min_pairs} GROUP BY ALL
        """
    ).df()
    return {
        "after_death": after_death,
        "hospital": hospital,
        "double_booked": double_booked,
    }
