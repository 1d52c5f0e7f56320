"""Describe each invoice of the requested periods as model inputs, hard findings and quarantine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import FeatureConfig
from tillit.data.vocabulary import PERIOD_RE
from tillit.features import queries
from tillit.features.catalog import (
    FAIRNESS_COLUMNS,
    FINDING_CODES,
    KEY_COLUMNS,
    MAD_TO_SD,
    PEER_Z_BASES,
    PROVIDER_AGE_BANDS,
    PROVIDER_EVENT_COUNTS,
    PROVIDER_SIZE_BANDS,
    SIZE_PEER_Z_BASES,
    band_labels,
    feature_columns,
)
from tillit.features.engine import (
    DuckDBEngine,
    Engine,
    TableSource,
    stopped_by_the_other_lane,
)
from tillit.features.evidence import findings_table
from tillit.features.schema import EVIDENCE_TEXT_SUFFIXES, InvoiceFeatures
from tillit.i18n import text

FINDINGS_COLUMNS = ("invoice_id", "finding", "evidence", "evidence_facts")
# The comparison evidence in the feature table (after the features): the SQL's columns,
# a month number `..._m` as a period `..._period`, then 1 where the usual or billing step
# of billed_beyond_provider_habit_hours was the service type's peers' (0: the provider's
# own). Never model inputs.
HABIT_OF_PEERS = "evidence_habit_of_peers"
_SQL_EVIDENCE_COLUMNS: tuple[str, ...] = tuple(
    f"{c.removesuffix('_m')}_period" if c.endswith("_m") else c
    for c in queries.COMPARISON_EVIDENCE_COLUMNS
)
EVIDENCE_COLUMNS: tuple[str, ...] = (*_SQL_EVIDENCE_COLUMNS, HABIT_OF_PEERS)
# Comparison evidence held as text (the rest are numbers; months become periods).
COMPARISON_EVIDENCE_TEXT = frozenset(
    c for c in queries.COMPARISON_EVIDENCE_COLUMNS if c.endswith(EVIDENCE_TEXT_SUFFIXES)
)
QUARANTINE_COLUMNS = ("invoice_id", "period", "reason")


@dataclass(frozen=True)
class FeatureSet:
    """What the feature stage hands on.

    Attributes:
        features: one row per described invoice, sorted by invoice_id; passes InvoiceFeatures.
        findings: invoice_id, finding (a FINDING_CODES key), evidence (checkable text, English),
            evidence_facts (the same as JSON facts, worded in either language by tillit.i18n).
        quarantine: invoice_id, period, reason for invoices that cannot be described.
    """

    features: pd.DataFrame
    findings: pd.DataFrame
    quarantine: pd.DataFrame


def requested_months(periods: str | Sequence[str]) -> list[int]:
    """The requested periods as sorted, unique month numbers.

    Raises:
        ValueError: no period, or one that is not `YYYY-MM`.
    """
    items = [periods] if isinstance(periods, str) else list(periods)
    if not items:
        raise ValueError("at least one period (YYYY-MM) is needed")
    bad = [p for p in items if not isinstance(p, str) or not PERIOD_RE.match(p)]
    if bad:
        raise ValueError(f"periods must look like YYYY-MM, got {bad[:5]}")
    return sorted({queries.month_index(p) for p in items})


def build_features(
    tables: Mapping[str, TableSource],
    periods: str | Sequence[str],
    config: FeatureConfig | None = None,
    engine: Engine | None = None,
) -> FeatureSet:
    """Describe every invoice of the requested periods, all periods in one pass.

    A feature of period P uses only what was known when P's invoices were paid:
    visits, hospital stays, deaths, provider events and board roles up to the
    last day of P, and invoices of P and earlier. Building several periods at
    once gives exactly the rows that building each period alone would.

    Args:
        tables: validated contract tables by name (frames, or Parquet files or folders);
            hospital_stays may be absent or empty.
        periods: one `YYYY-MM` or several.
        config: windows and thresholds; the defaults when None.
        engine: where the SQL runs (`tillit.features.engine`); a fresh one-thread DuckDB
            when None. An engine passed in is left open: its owner closes it.
    """
    config = config or FeatureConfig()
    targets = requested_months(periods)
    plan = queries.plan_months(targets, config)
    con = engine if engine is not None else DuckDBEngine()
    try:
        queries.load_tables(con, tables, plan)
        key_month_made = threading.Event()
        evidence: dict[str, pd.DataFrame] = {}
        _in_two_lanes(
            con,
            partial(_visit_lane, config=config, key_month_made=key_month_made),
            partial(_staff_lane, config=config, key_month_made=key_month_made, evidence=evidence),
        )
        raw = queries.invoice_frame(con, config)
    except BaseException as error:
        if engine is None:  # leaving on a failure: close here, where a failing close is seen
            try:
                con.close()
            except Exception as close_error:
                error.add_note(f"closing the feature stage's DuckDB failed too: {close_error!r}")
        raise
    if engine is None:
        _close_aside(con)

    reasons = _quarantine_reasons(raw)
    quarantine = pd.DataFrame(
        {
            "invoice_id": raw.loc[reasons.notna(), "invoice_id"].astype("str"),
            "period": raw.loc[reasons.notna(), "period"].astype("str"),
            "reason": reasons[reasons.notna()].astype("str"),
        },
        columns=list(QUARANTINE_COLUMNS),
    ).reset_index(drop=True)
    described = raw[reasons.isna()].reset_index(drop=True)

    described["prevailing_rate_sek"] = prevailing_rate(described, config)
    values = _describe(described, config)
    flags = _finding_flags(described, evidence, config)
    for code in FINDING_CODES:
        values[f"finding_{code}"] = flags[code].astype("float64")
    values["hard_finding_count"] = flags[list(FINDING_CODES)].sum(axis=1).astype("float64")
    _add_peer_z(values, described, config)

    features = pd.DataFrame(
        {
            **{column: described[column] for column in KEY_COLUMNS},
            **_audit_columns(described, values),
        }
    )
    for column in KEY_COLUMNS[:5] + FAIRNESS_COLUMNS:
        features[column] = features[column].astype("str")
    for column in ("billed_hours", "amount_sek"):
        features[column] = features[column].astype("float64")
    columns = feature_columns(config)
    feature_block = pd.DataFrame(
        {column: np.asarray(values[column], dtype="float64") for column in columns},
        index=features.index,
    )
    facts = _evidence_columns(described)
    facts[HABIT_OF_PEERS] = values[HABIT_OF_PEERS]
    features = pd.concat([features, feature_block, facts], axis=1)
    features = features.sort_values("invoice_id", kind="stable").reset_index(drop=True)
    features = InvoiceFeatures.validate(features)

    findings = findings_table(described, flags, evidence, config)
    return FeatureSet(features=features, findings=findings, quarantine=quarantine)


class CloseAsideError(RuntimeError):
    """Closing a feature stage's DuckDB, on its side thread, failed."""


# Closes still running aside, each with the list its failure (if any) lands in.
_closing: list[tuple[threading.Thread, list[BaseException]]] = []
_closing_lock = threading.Lock()


def _close_aside(con: Engine) -> None:
    """Close the stage's own DuckDB on a thread of its own, while the caller goes on.

    Why: closing frees the database's gigabyte or so of tables (about 0.3 s of wall,
    without the interpreter lock), time the scoring after it need not wait for. The
    thread is not a daemon: the interpreter waits for it before it exits. A failure is
    kept for `wait_for_closes_aside`, which the jobs call before they write a manifest:
    a side thread's failure fails the run.

    A database still closing may overlap the next build (a loop of months, the retrain
    loop's steps): each build opens a DuckDB of its own, so they share no state, but
    their memory adds up for those ~0.3 s. Code that forks (multiprocessing's "fork"
    start, os.fork) must call `wait_for_closes_aside()` first: a child forked while the
    close holds DuckDB's locks inherits them held, with no thread to release them.
    """
    failures: list[BaseException] = []

    def close() -> None:
        try:
            con.close()
        except BaseException as error:
            failures.append(error)
            raise  # also to threading.excepthook (stderr), for callers that never wait

    thread = threading.Thread(target=close, name="tillit-duckdb-close")
    with _closing_lock:
        # Forget closes that ended well, so loops of builds do not pile them up.
        _closing[:] = [(t, f) for t, f in _closing if t.is_alive() or f]
        _closing.append((thread, failures))
    thread.start()


def wait_for_closes_aside() -> None:
    """Wait for every DuckDB close still running aside; raise if one of them failed.

    Raises:
        CloseAsideError: a close failed (the first failure is its cause).
    """
    with _closing_lock:
        pending = list(_closing)
        _closing.clear()
    failures: list[BaseException] = []
    for thread, failed in pending:
        thread.join()
        failures.extend(failed)
    if failures:
        raise CloseAsideError(
            f"closing the feature stage's DuckDB failed ({len(failures)} close(s)): {failures[0]!r}"
        ) from failures[0]


def _visit_lane(
    con: Engine, config: FeatureConfig, key_month_made: threading.Event | None = None
) -> None:
    """Visit hours and patterns, grants, the key's history, the provider's habits, the visits' own history.

    Sets `key_month_made` once `history_features` has made `key_month` (or when the lane
    fails, so the other lane never waits on a table that will not come). The visits' own
    history ran in the staff lane while the provider-habit statement was the longest of
    this one; with that statement cut to a third, it is back here and the lanes are even.
    """
    try:
        queries.visit_aggregates(con, config)
        queries.grant_months(con)
        queries.history_features(con, config)
    finally:
        if key_month_made is not None:
            key_month_made.set()
    queries.provider_registration_habits(con, config)
    queries.own_history(con, config)
    queries.visit_key_months(con)
    queries.visit_own_history(con, config)
    queries.keytag_own_history(con, config)
    # Here, not with the staff statements it reads like: it made that lane the longer one.
    queries.carer_overlaps(con, config)


def _staff_lane(
    con: Engine,
    config: FeatureConfig,
    key_month_made: threading.Event | None = None,
    evidence: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Staff overlaps and behaviour, provider facts, the comparisons' evidence; the findings' evidence.

    Reads base tables only, except the comparisons' evidence, which needs `key_month` from
    `_visit_lane` and waits for it: the lanes then take about as long. Every statement is
    the same; only which lane runs it moved. With `evidence`, the findings' evidence
    (`queries.evidence_frames`: the visits, the hospital visits `hv` of `visit_aggregates`,
    made before `key_month`, and this lane's overlapping pairs) is fetched into it last:
    this lane ends before the other, so the fetch is off the stage's longest path.
    """
    queries.staff_overlaps(con)
    queries.staff_aggregates(con)
    queries.staff_behaviour(con, config)
    queries.staff_elsewhere(con, config)
    queries.provider_features(con, config)
    if key_month_made is not None:
        key_month_made.wait()
    queries.comparison_evidence(con, config)  # base tables and key_month (see above)
    if evidence is not None:
        evidence.update(queries.evidence_frames(con, config))


def _in_two_lanes(
    con: Engine, first: Callable[[Engine], None], second: Callable[[Engine], None]
) -> None:
    """Run two independent chains of statements: at the same time on DuckDB, else in turn.

    Why: each DuckDB statement runs on one thread (bit-identical sums); two chains that do
    not read each other's tables (but for one waited-for table, see `_staff_lane`) can
    still use both cores. Each statement sees the same
    tables either way, so the features are the same bits (tested). When one chain fails,
    the other is stopped (its running statement interrupted, later ones refused), so the
    error shows at once rather than after the other chain's minutes of work; the error
    raised is the failure itself, never the other chain's stop.
    """
    if not isinstance(con, DuckDBEngine):
        first(con)
        second(con)
        return
    lane = con.lane()

    def second_then_stop_first() -> None:
        try:
            second(lane)
        except BaseException:
            con.stop()
            raise

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tillit-duckdb") as pool:
            other = pool.submit(second_then_stop_first)
            try:
                first(con)
            except BaseException as error:
                lane.stop()
                cause = other.exception()  # at once: the lane has been stopped
                if stopped_by_the_other_lane(error) and cause is not None:
                    raise cause from None
                raise
            other.result()
    finally:
        con.resume()
        lane.close()


def _quarantine_reasons(raw: pd.DataFrame) -> pd.Series:
    """Why an invoice cannot be described (None when it can); several reasons joined by '; '."""
    reasons = pd.Series([None] * len(raw), index=raw.index, dtype="object")
    unknown_provider = ~raw["provider_known"].astype(bool)
    unknown_client = ~raw["client_known"].astype(bool)
    no_tariff = raw["rate_sek"].isna()
    for i in np.flatnonzero((unknown_provider | unknown_client | no_tariff).to_numpy()):
        r = raw.iloc[i]
        parts = []
        if unknown_provider.iloc[i]:
            parts.append(text("rule.provider_unknown", "en", provider_id=r["provider_id"]))
        if unknown_client.iloc[i]:
            # No client id in a text: the row's client_id says which (privacy policy).
            parts.append(text("rule.client_unknown", "en"))
        if no_tariff.iloc[i]:
            parts.append(
                text(
                    "rule.no_tariff",
                    "en",
                    service_type=r["service_type"],
                    year=int(r["tariff_year"]),
                )
            )
        reasons.iloc[i] = "; ".join(parts)
    return reasons


def _ratio(numerator: np.ndarray, denominator: np.ndarray, floor: float) -> np.ndarray:
    return numerator / np.maximum(denominator, floor)


def _col(frame: pd.DataFrame, column: str, fill: float = 0.0) -> np.ndarray:
    return frame[column].astype("float64").fillna(fill).to_numpy()


def _beyond(frame: pd.DataFrame, share: str, habit: str) -> np.ndarray:
    """The invoice's share above the provider's share at its other clients (0 when not above)."""
    return np.maximum(_col(frame, share) - _col(frame, habit), 0.0)


def _month_groups(raw: pd.DataFrame, *keys: str) -> list[np.ndarray]:
    """Grouping keys within one month (and municipality, in a pooled month)."""
    groups = [raw[key].astype("str").to_numpy() for key in (*keys, "period")]
    if "tariff_municipality" in raw:  # a pooled month: each municipality its own peers
        groups.append(raw["tariff_municipality"].astype("str").to_numpy())
    return groups


def _group_codes(raw: pd.DataFrame, *keys: str) -> np.ndarray:
    """Each row's group within its month (`_month_groups`) as an integer code."""
    return pd.Series(np.zeros(len(raw))).groupby(_month_groups(raw, *keys)).ngroup().to_numpy()


def billing_step_hours(raw: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """The step a provider bills its hours in that month, per invoice (0: no rounding seen).

    `_billing_step`'s step.
    """
    return _billing_step(raw, config)[0]


def _billing_step(raw: pd.DataFrame, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The step a provider bills its hours in, per invoice, and whether it is its own.

    The coarsest of `features.billing_steps_hours` of which at least
    `features.billing_step_share` of the provider's billed hours are whole multiples
    (1.0 h, 0.5 h, a quarter hour), read from two billed invoices or more (two invoices
    on the half hour are a habit, one is not). A provider with one billed invoice has no
    step of its own to read: the (lower) median step of the service type's invoices that month.
    """
    billed = _col(raw, "billed_hours")
    counted = billed > 0
    provider = _group_codes(raw, "provider_id")
    invoices = np.bincount(provider, weights=counted)
    cents = np.round(billed * 100.0)
    step = np.zeros(len(raw))
    for candidate in sorted(config.billing_steps_hours):  # a coarser step overrides
        whole = counted & (np.round(cents / (candidate * 100.0)) * candidate * 100.0 == cents)
        share = np.bincount(provider, weights=whole) / np.maximum(invoices, 1.0)
        step = np.where(share[provider] >= config.billing_step_share, candidate, step)
    own = invoices[provider] >= 2
    peers = (  # the lower median: a step the peers bill in, never one between two steps
        pd.Series(np.where(own, step, np.nan))
        .groupby(_group_codes(raw, "service_type"))
        .transform(lambda steps: steps.quantile(0.5, interpolation="lower"))
        .to_numpy()
    )
    return np.where(own, step, np.nan_to_num(peers, nan=0.0)), own


def _median_of_other_providers(
    per_hour: np.ndarray, group: np.ndarray, pair: np.ndarray, min_invoices: int
) -> np.ndarray:
    """Per row: the median of `per_hour` over its group's rows of other providers (NaN: too few).

    `group` codes the peers (service type, month[, municipality]), `pair` the provider within
    them; NaN values count nowhere. An invoice never excuses itself: a provider alone in its
    group, or with fewer than `min_invoices` others' invoices there, has no peers' usual.
    Vectorised as a binary search per (group, provider) on the group's sorted values, each
    step counting the provider's own values at or below a candidate (no loop over groups).
    """
    known = ~np.isnan(per_hour)
    values, rank = np.unique(per_hour[known], return_inverse=True)
    span = len(values) + 1
    groups, pairs = int(group.max(initial=-1)) + 1, int(pair.max(initial=-1)) + 1
    group_of_pair = np.zeros(pairs, dtype=np.int64)
    group_of_pair[pair] = group
    group_keys = np.sort(group[known] * span + rank)
    pair_keys = np.sort(pair[known] * span + rank)
    in_group = np.bincount(group[known], minlength=groups)
    own = np.bincount(pair[known], minlength=pairs)
    group_start = np.concatenate(([0], np.cumsum(in_group)[:-1]))
    pair_start = np.concatenate(([0], np.cumsum(own)[:-1]))
    start = group_start[group_of_pair]
    size = in_group[group_of_pair]
    others = size - own
    enough = others >= min_invoices

    def order_statistic(wanted: np.ndarray) -> np.ndarray:
        """The `wanted`-th (0-based) of the other providers' values, per pair (where enough)."""
        low, high = np.zeros(pairs, dtype=np.int64), np.maximum(size - 1, 0)
        while np.any(low < high):
            middle = (low + high) // 2
            key = group_keys[np.minimum(start + middle, len(group_keys) - 1)]
            candidate = key - group_of_pair * span  # the candidate's rank
            at_or_below = np.searchsorted(group_keys, key, side="right") - start
            own_at_or_below = (
                np.searchsorted(pair_keys, np.arange(pairs) * span + candidate, side="right")
                - pair_start
            )
            reached = at_or_below - own_at_or_below >= wanted + 1
            high = np.where(reached & (low < high), middle, high)
            low = np.where(~reached & (low < high), middle + 1, low)
        key = group_keys[np.minimum(start + low, len(group_keys) - 1)]
        return values[np.clip(key - group_of_pair * span, 0, len(values) - 1)]  # any when empty

    median = np.full(pairs, np.nan)
    if len(values):
        lower = order_statistic(np.maximum(others - 1, 0) // 2)
        upper = order_statistic(np.maximum(others, 0) // 2)
        median = np.where(enough & (others > 0), (lower + upper) / 2.0, np.nan)
    return median[pair]


def billed_beyond_provider_habit(raw: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """Hours billed over the registered visits beyond the provider's own habit and step.

    `_beyond_habit`'s hours.
    """
    return _beyond_habit(raw, config)[0]


def _beyond_habit(raw: pd.DataFrame, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hours billed beyond the provider's habit and step, and 1 where that was the peers'.

    An honest provider bills over its visits in its own way, the same on every invoice:
    rounding each invoice up to its billing step (`billing_step_hours`) and a usual
    excess of billed over registered hours, per registered hour (floored at
    `features.min_denominator_hours`, and applied per the same floored hour: an invoice
    identical to all the provider's others lies beyond nothing, however short its visits;
    the median over its invoices of the service type that month: a provider that bills each
    visit's started quarter hour bills more over a long month than over a short one). An
    auditor compares an invoice's excess with that habit and with the service type's peers
    (the other providers' invoices of the type that month, at least
    `features.billing_habit_min_invoices` of them: an invoice never excuses itself): what
    lies beyond the larger usual (never below 0: billing under the visits, as with
    forgotten check-outs or two carers registered for one client, excuses nothing and asks
    nothing) and the step is hours no visit and no habit explain. A provider with fewer than
    `features.billing_habit_min_invoices` invoices with visits of the service type has its
    usual over all its invoices; with fewer than that in all, the peers' usual stands in,
    and without enough peers there is no usual (0, for want of peers). Invoices without
    registered visits count in no habit (0 visits is another check). The second array is 1
    where the usual or the step that stood was not the provider's own (its reason says so;
    0 without visits, where no usual is applied).
    """
    registered = _col(raw, "reg_hours")
    has_visits = _col(raw, "n_visits") > 0
    floored = np.maximum(registered, config.min_denominator_hours)
    excess = _col(raw, "billed_hours") - registered
    with_visits = pd.Series(np.where(has_visits, excess / floored, np.nan))
    provider_type = _group_codes(raw, "provider_id", "service_type")
    peers = _median_of_other_providers(
        with_visits.to_numpy(),
        _group_codes(raw, "service_type"),
        provider_type,
        config.billing_habit_min_invoices,
    )
    own = pd.Series(np.nan, index=with_visits.index)  # NaN: too few invoices of its own
    # The provider's usual over all its invoices, then over those of the service type: the
    # narrowest with enough invoices stands.
    for codes in (_group_codes(raw, "provider_id"), provider_type):
        grouped = with_visits.groupby(codes)
        enough = grouped.transform("count") >= config.billing_habit_min_invoices
        own = grouped.transform("median").where(enough, own)
    usual = np.fmax(np.fmax(own.to_numpy(), peers), 0.0)  # NaN: no usual, 0
    step, own_step = _billing_step(raw, config)
    allowed = usual * np.where(has_visits, floored, 0.0) + step
    not_own = ~(own.to_numpy() >= np.nan_to_num(peers, nan=-np.inf)) | ~own_step
    return np.maximum(excess - allowed, 0.0), (has_visits & not_own).astype("float64")


def _days_between(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """Whole days from `earlier` to `later`, as floats (NaN where either is missing)."""
    return ((later - earlier) / pd.Timedelta(days=1)).astype("float64").to_numpy()


def _bills_after_death(
    raw: pd.DataFrame,
    billed: np.ndarray,
    amount: np.ndarray,
    registered: np.ndarray,
    config: FeatureConfig,
) -> np.ndarray:
    """1 where the invoice bills care after the client's death, else 0 (feature version 4).

    A month that began after the death bills after it whenever it bills. In the month of
    the death, an auditor compares the hours billed with the visits registered up to the
    end of the day of death: an end-of-life invoice bills the care given until then,
    billing after the death bills more (visits registered after it, or hours without
    visits) by more than `death_month_margin_hours`, or an amount without hours. Until version 4 every invoice of the death month
    counted, which put honest end-of-life care among the month's riskiest (issue 21).
    """
    deceased = raw["deceased_known"]
    bills = (billed > 0) | (amount > 0)
    before_month = (deceased < raw["month_start"]).fillna(False).to_numpy(bool)
    in_month = (
        ((deceased >= raw["month_start"]) & (deceased < raw["last_day"]))
        .fillna(False)
        .to_numpy(bool)
    )
    # Care before the death ends with the day of death: the part of a visit begun that
    # evening that runs past midnight is not care before it.
    care_before_death = registered - _col(raw, "after_death_day_hours")
    beyond = billed - care_before_death > config.death_month_margin_hours
    # An amount billed without hours has no care to compare with: after the death, as before.
    amount_only = (billed <= 0) & (amount > 0)
    return ((before_month & bills) | (in_month & (beyond | amount_only))).astype(float)


def _describe(raw: pd.DataFrame, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Every numeric feature except the findings and peer z-scores (and `HABIT_OF_PEERS`)."""
    floor = config.min_denominator_hours
    longest = config.longest_window_months
    days = config.provider_event_window_days
    f: dict[str, np.ndarray] = {}
    billed = _col(raw, "billed_hours")
    amount = _col(raw, "amount_sek")
    reg = _col(raw, "reg_hours")
    n_visits = _col(raw, "n_visits")
    granted = _col(raw, "granted_hours")

    f["registered_visit_hours"] = reg
    f["registered_visit_count"] = n_visits
    f["has_no_registered_visits"] = (n_visits == 0).astype(float)
    f["has_only_other_service_type_visits"] = (
        (n_visits == 0) & (_col(raw, "all_types_hours") > 0)
    ).astype(float)
    f["billed_over_registered_hours"] = _ratio(billed, reg, floor)
    f["billed_minus_registered_hours"] = billed - reg
    f["billed_beyond_provider_habit_hours"], f[HABIT_OF_PEERS] = _beyond_habit(raw, config)
    f["granted_hours"] = granted
    f["has_no_matching_grant"] = (granted <= 0).astype(float)
    f["billed_over_granted_hours"] = _ratio(billed, granted, floor)
    for w in config.history_windows_months:
        f[f"billed_over_registered_hours_{w}m"] = _ratio(
            _col(raw, f"billed_{w}m"), _col(raw, f"registered_{w}m"), floor
        )
    for w in config.history_windows_months:
        f[f"billed_over_granted_hours_{w}m"] = _ratio(
            _col(raw, f"billed_{w}m"), _col(raw, f"granted_{w}m"), floor
        )
    f[f"months_billed_exactly_at_grant_{longest}m"] = _col(raw, "months_exact_at_grant")

    rate = _col(raw, "rate_sek")
    # An amount within `amount_tolerance_sek` of a price (the tariff, a norm) is that price:
    # amounts rounded to whole kronor and hours to the minute or cent differ from the
    # tariff by fractions of a krona, which is no price of its own (the mismatch finding
    # uses the same tolerance). Without this, the bulk sat exactly at the tariff and an
    # honest provider that bills what it registered to the quarter hour was in the tail.
    tolerance = config.amount_tolerance_sek
    sek_per_hour = amount / np.maximum(billed, floor)
    municipality_norm = raw["municipality_norm"].astype("float64").to_numpy()
    municipality_norm = np.where(
        np.isfinite(municipality_norm) & (municipality_norm > 0), municipality_norm, rate
    )
    # At the tariff or at the month's prevailing rate (`at_a_price`), as the mismatch
    # finding reads it: without the second price, after a mid-year change the bulk sat at
    # 1.013 x the table and the kronor rounding around it (1.01322 against 1.01327) put
    # honest invoices in the tail.
    at_price = at_a_price(raw, config)
    f["amount_over_tariff_amount"] = np.where(
        at_price, 1.0, amount / (np.maximum(billed, floor) * rate)
    )
    f["amount_minus_tariff_amount_sek"] = np.where(at_price, 0.0, amount - billed * rate)
    provider_norm = raw["provider_norm"].astype("float64").to_numpy()
    provider_norm = np.where(
        np.isfinite(provider_norm) & (provider_norm > 0), provider_norm, municipality_norm
    )
    f[f"amount_per_billed_hour_over_provider_norm_{longest}m"] = np.where(
        np.abs(amount - billed * provider_norm) <= tolerance, 1.0, sek_per_hour / provider_norm
    )
    f["amount_per_billed_hour_over_municipality_norm"] = np.where(
        np.abs(amount - billed * municipality_norm) <= tolerance,
        1.0,
        sek_per_hour / municipality_norm,
    )

    several = n_visits >= 2
    mean_hours = _col(raw, "mean_hours")
    # Registration shares beyond the provider's own habit at its other clients (queries.py
    # provider_registration_habits): what singles this invoice out, not the provider's way.
    f["manual_registration_share"] = _beyond(raw, "manual_share", "habit_manual_share")
    f["visit_duration_cv"] = np.where(
        several & (mean_hours > 0),
        _col(raw, "sd_hours") / np.where(mean_hours > 0, mean_hours, 1),
        0.0,
    )
    resultant = np.clip(np.hypot(_col(raw, "start_cos", 1.0), _col(raw, "start_sin")), 1e-6, 1.0)
    # Identical start times give a resultant of 1 up to rounding: call that no spread.
    resultant = np.where(resultant > 1.0 - 1e-12, 1.0, resultant)
    circular_sd = np.sqrt(-2.0 * np.log(resultant)) * 1440.0 / (2.0 * np.pi)
    f["visit_start_time_spread_minutes"] = np.where(several, circular_sd, 0.0)
    f["repeated_visit_times_share"] = _beyond(raw, "typed_repeated_share", "habit_repeated_share")
    f["round_start_time_share"] = _beyond(raw, "round_start_share", "habit_round_share")
    f["short_visit_share"] = _beyond(raw, "day_short_share", "habit_short_share")
    f["visit_hours_during_hospital_stay"] = _col(raw, "hospital_hours")
    f["visit_hours_after_death"] = _col(raw, "after_death_hours")
    f["billed_after_death"] = _bills_after_death(raw, billed, amount, reg, config)
    days_after_death = np.nan_to_num(_days_between(raw["last_day"], raw["deceased_known"]), nan=0.0)
    f["period_share_after_death"] = f["billed_after_death"] * np.clip(
        days_after_death / _col(raw, "days"), 0.0, 1.0
    )

    max_day = _col(raw, "max_staff_day_hours")
    f["staff_overlap_minutes"] = _col(raw, "overlap_minutes")
    f["max_staff_hours_per_day"] = max_day
    f["staff_hours_over_plausible_per_day"] = np.maximum(
        max_day - config.max_plausible_staff_hours_per_day, 0.0
    )
    f["share_staff_at_other_providers"] = _col(raw, "share_staff_other_providers")
    f["distinct_staff_per_visit_hour"] = np.where(
        n_visits > 0, _ratio(_col(raw, "n_staff"), reg, floor), 0.0
    )
    f["max_staff_day_hours_across_providers"] = _col(raw, "multi_provider_day_hours")
    f["staff_manual_registration_share"] = _col(raw, "staff_manual_share")
    f["staff_only_by_hand_hours_share"] = _col(raw, "paper_staff_share")
    f["regular_staff_hours_share"] = _col(raw, "regular_staff_share")
    f["staff_elsewhere_hours_share"] = np.clip(
        _col(raw, "elsewhere_hours") / np.maximum(_col(raw, "reg_hours"), floor), 0.0, 1.0
    )
    f["carer_overlap_visit_share"] = np.where(
        n_visits > 0, _col(raw, "carer_overlap_visits") / np.maximum(n_visits, 1.0), 0.0
    )
    earlier = raw["earlier_billed"].astype("float64").to_numpy()
    earlier_granted = _col(raw, "earlier_granted")
    # Growth the grant grew with is granted: in a client's last weeks or after a hospital
    # stay a temporary grant raises the hours, and a controller compares the billing with
    # the grant in force, not with the standing one. Billing's growth over the client's own
    # months is divided by the grant's growth (when both grants are known and it grew).
    granted_growth = np.where(
        (earlier_granted > 0) & (granted > 0), granted / np.maximum(earlier_granted, floor), 1.0
    )
    # A key new to the provider has no earlier month to compare with: 1, like growth.
    f[f"billed_over_own_history_hours_{longest}m"] = np.where(
        np.isfinite(earlier),
        billed / np.maximum(np.nan_to_num(earlier), floor) / np.maximum(granted_growth, 1.0),
        1.0,
    )
    f[f"provider_billed_over_registered_change_{longest}m"] = _col(
        raw, "provider_ratio_change", 1.0
    )
    now_manual = raw["now_manual_share"].astype("float64").to_numpy()
    earlier_manual = raw["earlier_manual_share"].astype("float64").to_numpy()
    f[f"manual_share_rise_over_own_history_{longest}m"] = np.where(
        np.isfinite(now_manual) & np.isfinite(earlier_manual),
        np.maximum(np.nan_to_num(now_manual) - np.nan_to_num(earlier_manual), 0.0),
        0.0,
    )
    f[f"provider_visit_length_change_{longest}m"] = _col(raw, "provider_visit_length_change", 1.0)
    # Both shares or neither (keytag_own_history keeps only keys with both): 0 without.
    f[f"keytag_share_drop_over_own_history_{longest}m"] = np.maximum(
        _col(raw, "highest_keytag_share") - _col(raw, "now_keytag_share"), 0.0
    )

    f["provider_age_years"] = np.clip(
        _days_between(raw["last_day"], raw["registered_on"]) / 365.25, 0.0, None
    )
    # An applicant (approved_on empty, contract v1.2) has no approval age: 0.
    f["provider_approval_age_years"] = np.nan_to_num(
        np.clip(_days_between(raw["last_day"], raw["approved_on"]) / 365.25, 0.0, None), nan=0.0
    )
    f["provider_outside_contract_period"] = _outside_contract(raw).astype(float)
    f[f"provider_tax_debt_registered_sek_{days}d"] = _col(raw, "tax_debt_sek")
    f[f"provider_f_tax_revoked_{days}d"] = _col(raw, "f_tax_revoked")
    f["provider_f_tax_currently_revoked"] = raw["f_tax_revoked_now"].astype(bool).to_numpy(float)
    for name in PROVIDER_EVENT_COUNTS:
        f[f"provider_{name}_{days}d"] = _col(raw, name)
    n_clients = _col(raw, "n_clients")
    # Before the data begins (no invoices at all that month) growth is unknown: 1.
    f[f"provider_client_growth_{config.client_growth_window_months}m"] = np.where(
        raw["growth_known"].astype(bool).to_numpy(),
        n_clients / np.maximum(_col(raw, "n_clients_before"), 1.0),
        1.0,
    )
    f[f"provider_clients_from_terminated_providers_share_{config.takeover_lookback_months}m"] = (
        _col(raw, "n_taken_over") / np.maximum(n_clients, 1.0)
    )
    f["provider_persons_linked_to_sanctioned_or_terminated"] = _col(raw, "linked_persons")
    f["provider_clients_billed_log"] = np.log1p(n_clients)
    f["provider_staff_per_client"] = _col(raw, "staff_per_client")
    return f


def _outside_contract(raw: pd.DataFrame) -> np.ndarray:
    """Never approved (an applicant), approved only after the month ended, or terminated before it began."""
    not_yet = (raw["approved_on"].isna() | (raw["approved_on"] > raw["last_day"])).fillna(False)
    ended = (raw["terminated_known"] < raw["month_start"]).fillna(False)
    return (not_yet | ended).to_numpy(bool)


def at_a_price(raw: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """Whether each amount is within `amount_tolerance_sek` of billed hours x a price.

    The prices are the tariff and, when most of the month's invoices of the service bill a
    rate the tariff table does not have yet (a mid-year change), that prevailing rate
    (`prevailing_rate`: at least `tariff_prevailing_min_invoices` invoices, more than half
    at it, per municipality of a pooled month), so a lone invoice or a small group cannot
    make its own rate a price. One reading for the amount features and the mismatch finding.
    """
    billed = _col(raw, "billed_hours")
    amount = _col(raw, "amount_sek")
    tolerance = config.amount_tolerance_sek
    prevailing = (
        raw["prevailing_rate_sek"].astype("float64").to_numpy()
        if "prevailing_rate_sek" in raw
        else np.full(len(raw), np.nan)
    )
    return (np.abs(amount - billed * _col(raw, "rate_sek")) <= tolerance) | (
        np.abs(amount - billed * prevailing) <= tolerance  # NaN (no prevailing rate): False
    )


def prevailing_rate(raw: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """The hourly rate most of the month's invoices of a service type bill (NaN when none does).

    Why: tariffs are one rate per service type and year, but a municipality can change
    its rate mid-year, and then every honest invoice after the change differs from the
    table. A rate counts as prevailing when at least
    `tariff_prevailing_min_invoices` invoices of the service that month bill hours,
    and more than half of them are within the tolerance of their median rate.
    """
    billed = _col(raw, "billed_hours")
    amount = _col(raw, "amount_sek")
    implied = pd.Series(np.where(billed > 0, amount / np.maximum(billed, 1e-9), np.nan))
    groups = _month_groups(raw, "service_type")  # a pooled month: each municipality its own rates
    median = implied.groupby(groups).transform("median").to_numpy()
    near = pd.Series(np.abs(amount - billed * median) <= config.amount_tolerance_sek)
    near_share = near.where(billed > 0).groupby(groups).transform("mean").to_numpy()
    counted = implied.notna().groupby(groups).transform("sum").to_numpy()
    ok = (counted >= config.tariff_prevailing_min_invoices) & (near_share > 0.5)
    return np.where(ok, median, np.nan).astype("float64")


def _billed_for_hospital_days(raw: pd.DataFrame, config: FeatureConfig) -> np.ndarray:
    """Billed hours above the grant for the days at home, in a month with days in hospital.

    A finding whether or not visits were registered during the stay: an invoice that
    bills the whole grant for a month the client spent half of in hospital bills days
    nobody could have cared for the client at home.
    """
    days = _col(raw, "days")
    hospital_days = _col(raw, "hospital_days")
    granted = _col(raw, "granted_hours")
    home_share = np.clip((days - hospital_days) / np.maximum(days, 1.0), 0.0, 1.0)
    allowed = granted * home_share * (1.0 + config.hospital_billing_margin_share)
    allowed = allowed + config.hospital_billing_margin_hours
    return (
        (hospital_days >= config.hospital_billing_min_days)
        & (granted > 0)
        & (_col(raw, "billed_hours") > allowed)
    )


def _finding_flags(
    raw: pd.DataFrame, evidence: Mapping[str, pd.DataFrame], config: FeatureConfig
) -> pd.DataFrame:
    """One boolean column per finding code: certain facts, not statistics."""
    billed = _col(raw, "billed_hours")
    amount = _col(raw, "amount_sek")
    bills = (billed > 0) | (amount > 0)
    died_before = (raw["deceased_known"] < raw["month_start"]).fillna(False).to_numpy(bool)
    key = ["provider_id", "client_id", "service_type", "m"]
    double_booked = (
        raw[key]
        .merge(
            evidence["double_booked"][key].drop_duplicates(), on=key, how="left", indicator=True
        )["_merge"]
        .eq("both")
        .to_numpy(bool)
    )
    flags = pd.DataFrame(
        {
            "billing_after_death": died_before & bills,
            "visits_after_death": _col(raw, "after_death_hours") > 0,
            "visits_during_hospital_stay": _col(raw, "hospital_hours") > 0,
            "billed_during_hospital_stay": _billed_for_hospital_days(raw, config),
            "staff_double_booked": double_booked,
            "service_without_grant": (_col(raw, "granted_hours") <= 0) & bills,
            "amount_mismatch_tariff": ~at_a_price(raw, config),
            "billing_outside_contract": _outside_contract(raw),
            "duplicate_invoice": _col(raw, "n_invoices") > 1,
        },
        index=raw.index,
    )
    return flags[list(FINDING_CODES)]


def _add_peer_z(values: dict[str, np.ndarray], raw: pd.DataFrame, config: FeatureConfig) -> None:
    """Robust z-scores within service type and period (median and MAD).

    Across all providers for PEER_Z_BASES; within the provider size band too for
    SIZE_PEER_Z_BASES, whose norm differs with a provider's size.
    """
    groups = [raw["service_type"].astype("str").to_numpy(), raw["period"].astype("str").to_numpy()]
    size_band = band_labels(_col(raw, "n_clients"), PROVIDER_SIZE_BANDS).astype("str")
    for base in PEER_Z_BASES + SIZE_PEER_Z_BASES:
        if base in SIZE_PEER_Z_BASES:
            groups = [*groups[:2], size_band]
        series = pd.Series(values[base], index=raw.index)
        grouped = series.groupby(groups)
        median = grouped.transform("median")
        mad = (series - median).abs().groupby(groups).transform("median")
        scale = np.maximum(MAD_TO_SD * mad.to_numpy(), config.peer_mad_floor)
        values[f"{base}_peer_z"] = ((series - median).to_numpy() / scale).astype("float64")


def _evidence_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """The facts behind the comparisons beyond the invoice (never model inputs; may be null).

    Staff ids and dates as text, months as periods (`YYYY-MM`), counts and hours as floats.
    """
    out: dict[str, object] = {}
    pairs = zip(queries.COMPARISON_EVIDENCE_COLUMNS, _SQL_EVIDENCE_COLUMNS, strict=True)
    for column, name in pairs:
        values = raw[column]
        if column.endswith("_m"):
            periods = {m: queries.period_of(int(m)) for m in values.dropna().unique()}
            out[name] = _cells(values, periods.__getitem__)
        elif column in COMPARISON_EVIDENCE_TEXT:
            out[column] = _cells(values, str)
        else:
            out[column] = values.astype("float64").to_numpy()
    frame = pd.DataFrame(out, index=raw.index)
    texts = [c for c in frame.columns if c in COMPARISON_EVIDENCE_TEXT or c.endswith("_period")]
    return frame.astype(dict.fromkeys(texts, "str"))


def _cells(values: pd.Series, convert: Callable[[Any], str]) -> list[str | None]:
    """Each present value converted, None where it is missing (a null test per column, not
    per cell: `pd.isna` of each of 20,000 rows times the evidence columns cost tenths of a s)."""
    present = values.notna().to_numpy()
    cells: list[str | None] = [None] * len(values)
    # The values as iterating the column gives them (Python scalars, Timestamps), as before.
    for position, value in zip(np.flatnonzero(present).tolist(), values[present], strict=True):
        cells[position] = convert(value)
    return cells


def _audit_columns(raw: pd.DataFrame, values: Mapping[str, np.ndarray]) -> dict[str, object]:
    """Who the invoice is about, for the fairness audit only (never a model input)."""
    return {
        "provider_size_band": band_labels(_col(raw, "n_clients"), PROVIDER_SIZE_BANDS),
        "provider_age_band": band_labels(values["provider_age_years"], PROVIDER_AGE_BANDS),
        "provider_legal_form": raw["legal_form"].astype("str").to_numpy(),
        "client_district": raw["district"].astype("str").to_numpy(),
    }
