"""A simulated municipality: every contract table plus the truth about each invoice.

Why: the scorer has to be trained, tested and demonstrated without real personal data,
and a model can only be judged on data whose answers are known. The simulation plants
irregular invoices the way they appear in Swedish home care under LOV (hours not delivered,
billing after death or during a hospital stay, staff at two places at once, phoenix
companies, invented visits, billing the grant instead of the delivery, wrong rates, services
that were never granted) at a minority of providers, and puts honest noise everywhere else
(rounding, manual corrections, months slightly over the grant, register events at honest
providers), so that a model has to work for its score.

The function is pure: a config in, frames out. File I/O lives in `tillit.io`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from tillit.strict import StrictModel

SERVICE_TYPES: tuple[str, ...] = ("personal_care", "home_service", "double_staffing", "night_care")
SCHEMES: tuple[str, ...] = (
    "overbilling",
    "billing_after_death",
    "hospital_billing",
    "staff_double_booking",
    "phoenix",
    "fabricated_visits",
    "billing_at_grant",
    "rate_inflation",
    "service_upcoding",
)
METHODS: tuple[str, ...] = ("nfc", "app", "manual")
LEGAL_FORMS: tuple[str, ...] = ("AB", "HB", "KB", "EF", "EK", "other")
ROLES: tuple[str, ...] = ("owner", "board_member", "ceo", "signatory")
_DISTRICT_NAMES = (
    "Centrum",
    "Norra",
    "Södra",
    "Östra",
    "Västra",
    "Hamnen",
    "Skogsby",
    "Åby",
    "Lunden",
    "Berga",
    "Ekbacken",
    "Strand",
)

_PC, _HS, _DS, _NC = 0, 1, 2, 3
_NFC, _APP, _MANUAL = 0, 1, 2
_S = {name: i for i, name in enumerate(SCHEMES)}

# Services: share of clients with the service, granted hours per month (median, spread, range),
# visit length in minutes (median, range).
_TAKE_UP = (0.80, 0.55, 0.07, 0.06)
_HOURS_MEDIAN = (36.0, 7.0, 18.0, 10.0)
_HOURS_SIGMA = (0.7, 0.5, 0.6, 0.5)
_HOURS_RANGE = ((4.0, 200.0), (3.0, 40.0), (4.0, 120.0), (3.0, 60.0))
_VISIT_MEDIAN_MIN = (32.0, 55.0, 35.0, 15.0)
_VISIT_RANGE_MIN = ((8.0, 150.0), (15.0, 180.0), (10.0, 120.0), (5.0, 45.0))
_VISIT_SIGMA = 0.3
# Tariffs in the first simulated year (SEK per hour). Double staffing is registered as one
# visit row, so its rate pays for two carers.
_BASE_RATE = (465.0, 430.0, 930.0, 520.0)

# Shifts (morning, lunch, evening, night): each provider has a separate staff pool per shift,
# and a route never runs past the start of the next shift, so honest staff are never at two
# places at once. Night routes start after midnight so that every visit starts on its date.
_SHIFT_START_S = np.array([7 * 3600, 12 * 3600, 16 * 3600 + 30 * 60, 15 * 60])
_SHIFT_JITTER_S = np.array([[-600, 900], [-600, 900], [-900, 900], [0, 900]])
_SHIFT_CAP_S = np.array([165 * 60, 120 * 60, 240 * 60, 300 * 60])
_SHIFT_CUM_PROBS = np.cumsum(
    np.array(
        [
            [0.45, 0.25, 0.30, 0.0],  # personal care
            [0.50, 0.50, 0.0, 0.0],  # home service
            [0.50, 0.0, 0.50, 0.0],  # double staffing
            [0.0, 0.0, 0.0, 1.0],  # night care
        ]
    ),
    axis=1,
)
_MORNING, _LUNCH, _EVENING, _NIGHT = 0, 1, 2, 3
_SHIFT_CYCLE = np.array(
    [
        [_MORNING, _EVENING, _LUNCH],
        [_MORNING, _LUNCH, _MORNING],
        [_MORNING, _EVENING, _MORNING],
        [_NIGHT, _NIGHT, _NIGHT],
    ]
)
_SHIFT_CYCLE_LEN = np.array([3, 2, 2, 1])
# Position in the cycle at which a day starts, given the shift drawn for its first visit.
_SHIFT_CYCLE_POS = np.array([[0, 2, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])

# Share of the non-phoenix irregular invoices per scheme, and the part of it placed at honest
# providers (an isolated employee or a billing error) rather than at fraudulent ones.
_SCHEME_WEIGHT = {
    "billing_after_death": 0.12,
    "hospital_billing": 0.12,
    "service_upcoding": 0.09,
    "staff_double_booking": 0.10,
    "fabricated_visits": 0.13,
    "billing_at_grant": 0.14,
    "rate_inflation": 0.10,
    "overbilling": 0.20,
}
_ISOLATED_ALLOWED = {
    "billing_after_death",
    "hospital_billing",
    "service_upcoding",
    "fabricated_visits",
    "rate_inflation",
    "overbilling",
}
# What a reviewer writes in audit_outcomes.scheme: free text, not the truth's names.
_REVIEW_WORDING = {
    "overbilling": ("hours not delivered", "overbilling", "billed hours exceed registered"),
    "billing_after_death": ("billing after death", "client deceased"),
    "hospital_billing": ("care billed during hospital stay", "client in hospital"),
    "staff_double_booking": ("overlapping staff registrations", "staff at two clients"),
    "phoenix": ("hours not delivered", "successor company, inflated hours"),
    "fabricated_visits": ("falsified time registrations", "visits not performed"),
    "billing_at_grant": ("billed granted hours, not delivered", "hours not delivered"),
    "rate_inflation": ("wrong rate", "amount does not match tariff"),
    "service_upcoding": ("service not granted", "double staffing without decision"),
}
_FALSE_CONFIRM_WORDING = ("documentation deficiency", "hours not delivered")

_NO_DAY = np.iinfo(np.int64).max // 4  # "never" for day arithmetic


class SimulationConfig(StrictModel):
    """Size, seed and knobs of the simulated municipality."""

    seed: int = 7
    clients: int = Field(3000, ge=20, le=200_000)
    months: int = Field(12, ge=1, le=60)
    start: str = Field("2025-01", pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")  # first period
    # Share of (pre-scheme) invoices made irregular, all schemes together.
    irregular_share: float = Field(0.03, ge=0.0, le=0.3)
    # Share of past invoices reviewed (audit_outcomes), and of those the share picked at random
    # rather than by the rule "billed hours above granted hours".
    review_share: float = Field(0.04, ge=0.0, le=1.0)
    random_review_share: float = Field(0.25, ge=0.0, le=1.0)
    providers_per_1000_clients: float = Field(28.0, gt=0.0, le=500.0)
    # Share of providers that commit fraud (phoenix pairs come on top).
    fraud_provider_share: float = Field(0.15, ge=0.0, le=1.0)
    # Share of the irregular invoices placed at honest providers (isolated cases).
    isolated_irregular_share: float = Field(0.15, ge=0.0, le=1.0)
    # Phoenix pairs per 1000 clients (at least one when months >= 3 and this is > 0).
    phoenix_per_1000_clients: float = Field(0.67, ge=0.0, le=20.0)
    annual_mortality: float = Field(0.18, ge=0.0, le=0.9)
    # Share of clients with at least one hospital stay in the window.
    hospital_client_share: float = Field(0.16, ge=0.0, le=1.0)
    districts: int = Field(10, ge=1, le=len(_DISTRICT_NAMES))
    # Reviewers clear this share of the irregular invoices they review ...
    review_miss_rate: float = Field(0.10, ge=0.0, le=1.0)
    # ... and confirm this share of the regular ones (e.g. documentation deficiencies).
    review_false_confirm_rate: float = Field(0.01, ge=0.0, le=1.0)


@dataclass(frozen=True)
class SimulatedMunicipality:
    """The contract tables of one simulated municipality and the truth behind its invoices.

    `truth` has one row per invoice: `irregular` (bool), `scheme` (one of SCHEMES, NaN when
    regular) and `excess_sek` (money billed that was not owed, 0 when regular).
    """

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    """Days are integers relative to the first day of the window (d0)."""

    d0: np.datetime64
    month_start: np.ndarray  # length months + 1, days relative to d0
    month_of_day: np.ndarray  # month index of each window day
    periods: tuple[str, ...]
    years: np.ndarray  # calendar year of each month
    n_days: int

    @property
    def months(self) -> int:
        return len(self.periods)


def _calendar(start: str, months: int) -> _Calendar:
    m0 = np.datetime64(start, "M")
    month_firsts = np.arange(m0, m0 + months + 1).astype("datetime64[D]")
    d0 = month_firsts[0]
    month_start = (month_firsts - d0).astype(np.int64)
    n_days = int(month_start[-1])
    month_of_day = np.repeat(np.arange(months), np.diff(month_start))
    periods = tuple(str(m) for m in np.arange(m0, m0 + months))
    years = np.array([int(p[:4]) for p in periods])
    return _Calendar(d0, month_start, month_of_day, periods, years, n_days)


def _dates(cal: _Calendar, days: np.ndarray) -> pd.Series:
    """Relative days to datetime64[ns]; _NO_DAY (or more) becomes NaT."""
    days = np.asarray(days, dtype=np.int64)
    missing = days >= _NO_DAY
    out = (cal.d0 + np.where(missing, 0, days).astype("timedelta64[D]")).astype("datetime64[ns]")
    out[missing] = np.datetime64("NaT")
    return pd.Series(out)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _str(values: np.ndarray | list) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=object), dtype="str")


def _luhn_check_digit(digits: list[int]) -> int:
    total = 0
    for i, d in enumerate(digits):  # nine digits: weights 2,1,2,... from the left
        p = d * (2 if i % 2 == 0 else 1)
        total += p - 9 if p > 9 else p
    return (10 - total % 10) % 10


def _org_number(rng: np.random.Generator, legal_form: str) -> str:
    first = {"AB": 5, "HB": 9, "KB": 9, "EF": 9, "EK": 7, "other": 8}[legal_form]
    digits = [first, int(rng.integers(0, 10)), int(rng.integers(2, 10))]  # 3rd digit >= 2
    digits += [int(d) for d in rng.integers(0, 10, 6)]
    digits.append(_luhn_check_digit(digits))
    s = "".join(map(str, digits))
    return f"{s[:6]}-{s[6:]}"


def _weighted_pick(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """Positions of k items drawn without replacement, proportional to weight."""
    k = min(int(k), weights.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    keys = np.log(rng.random(weights.size)) / np.maximum(weights, 1e-9)
    return np.sort(np.argsort(-keys, kind="stable")[:k])


def _group_pick(
    rng: np.random.Generator, groups: np.ndarray, weights: np.ndarray, quota: int
) -> np.ndarray:
    """Whole groups (e.g. all months of one client) until about `quota` items are taken."""
    if quota <= 0 or groups.size == 0:
        return np.empty(0, dtype=np.int64)
    uniq, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    gw = np.bincount(inv, weights=weights) / counts
    keys = np.log(rng.random(uniq.size)) / np.maximum(gw, 1e-9)
    order = np.argsort(-keys, kind="stable")
    n_groups = max(1, int(np.searchsorted(np.cumsum(counts[order]), quota, side="right")))
    chosen = np.zeros(uniq.size, dtype=bool)
    chosen[order[:n_groups]] = True
    return np.flatnonzero(chosen[inv])


# --------------------------------------------------------------------------------------
# Providers and clients
# --------------------------------------------------------------------------------------


@dataclass
class _Providers:
    n: int
    size_weight: np.ndarray
    registered: np.ndarray
    approved: np.ndarray
    terminated: np.ndarray  # _NO_DAY when active
    legal_form: list[str]
    avail_from: np.ndarray  # first day a client may choose the provider
    avail_to: np.ndarray  # last day a client may choose the provider
    fraud: np.ndarray  # bool
    signalled: np.ndarray  # bool: fraud provider with a heavy register
    intensity: np.ndarray
    repertoire: np.ndarray  # bool (n, len(SCHEMES))
    phoenix_old: np.ndarray  # index of the predecessor for each phoenix successor, else -1
    is_successor: np.ndarray  # bool
    rounding: np.ndarray  # 0 exact, 1 quarter, 2 half, 3 up to half
    manual_share: np.ndarray
    app_share: np.ndarray
    delivery: np.ndarray
    submit_delay: np.ndarray


def _make_providers(rng: np.random.Generator, cfg: SimulationConfig, cal: _Calendar) -> _Providers:
    n_days = cal.n_days
    n = max(10, round(cfg.clients * cfg.providers_per_1000_clients / 1000))
    size_weight = rng.lognormal(0.0, 1.2, n)
    age_kind = rng.choice(3, n, p=[0.3, 0.5, 0.2])
    age_years = np.select(
        [age_kind == 0, age_kind == 1],
        [rng.uniform(0.4, 3.0, n), rng.uniform(3.0, 12.0, n)],
        rng.uniform(12.0, 30.0, n),
    )
    registered = -np.round(age_years * 365.25).astype(np.int64)
    gap = np.round(rng.uniform(0.02, 1.0, n) * np.minimum(age_years - 0.15, 4.0) * 365.25)
    approved = np.minimum(registered + gap.astype(np.int64), -30)
    terminated = np.full(n, _NO_DAY, dtype=np.int64)

    order_small_first = np.argsort(size_weight, kind="stable")
    n_new = max(1, round(0.06 * n)) if cal.months >= 3 else 0
    new = rng.choice(order_small_first[: n // 2], n_new, replace=False) if n_new else []
    for p in new:
        approved[p] = int(rng.integers(int(0.05 * n_days), max(int(0.6 * n_days), 2)))
        registered[p] = approved[p] - int(rng.integers(60, 1500))
    n_term = round(0.03 * n) if cal.months >= 3 else 0
    candidates = [p for p in order_small_first[: n // 2] if p not in set(new)]
    for p in rng.permutation(candidates)[:n_term]:
        terminated[p] = int(rng.integers(int(0.25 * n_days), int(0.9 * n_days)))

    legal_form = [
        str(x) for x in rng.choice(LEGAL_FORMS, n, p=[0.80, 0.05, 0.03, 0.06, 0.02, 0.04])
    ]

    # Fraudulent providers lean young and small, but not exclusively.
    n_fraud = min(n - 1, max(3, round(cfg.fraud_provider_share * n)))
    fraud_w = 1.0 / np.sqrt(age_years + 1.0) / np.sqrt(size_weight + 0.5)
    fraud_w[terminated < _NO_DAY] = 1e-6
    fraud = np.zeros(n, dtype=bool)
    fraud[_weighted_pick(rng, fraud_w, n_fraud)] = True

    # Phoenix predecessors: established fraud-prone providers of a size whose successor
    # carries a modest part of the irregular budget.
    months_after = max(1.0, cal.months / 2)
    n_phoenix = round(cfg.clients * cfg.phoenix_per_1000_clients / 1000)
    n_phoenix = max(1, n_phoenix) if cal.months >= 3 and cfg.phoenix_per_1000_clients > 0 else 0
    expected_clients = cfg.clients * size_weight / size_weight.sum()
    target_clients = max(6.0, 0.05 * cfg.irregular_share * cfg.clients * cal.months / months_after)
    eligible = (age_years >= 2.0) & (terminated == _NO_DAY) & (approved < 0)
    old_list: list[int] = []
    for _ in range(n_phoenix):
        score = np.abs(np.log(np.maximum(expected_clients, 0.1) / target_clients))
        score[~eligible] = np.inf
        score[old_list] = np.inf
        if not np.isfinite(score).any():
            break
        p = int(np.argmin(score + rng.uniform(0, 0.3, n)))
        old_list.append(p)
        fraud[p] = True
        lo, hi = cal.month_start[int(0.35 * cal.months)], cal.month_start[int(0.65 * cal.months)]
        terminated[p] = int(rng.integers(lo, max(hi, lo + 1)))

    # Successors: new companies that take over the predecessor's clients.
    n_succ = len(old_list)
    phoenix_old = np.full(n + n_succ, -1, dtype=np.int64)
    succ_registered, succ_approved = [], []
    for k, p in enumerate(old_list):
        t = terminated[p]
        phoenix_old[n + k] = p
        succ_approved.append(t - int(rng.integers(7, 45)))
        succ_registered.append(succ_approved[-1] - int(rng.integers(60, 250)))

    # Two providers whose contracts ended before the window: in the register, no clients.
    n_hist = 2
    hist_reg = -rng.integers(6 * 365, 15 * 365, n_hist)
    hist_app = hist_reg + rng.integers(100, 700, n_hist)
    hist_term = -rng.integers(60, 700, n_hist)
    hist_term = np.maximum(hist_term, hist_app + 30)

    total = n + n_succ + n_hist
    size_weight = np.concatenate([size_weight, size_weight[old_list], np.zeros(n_hist)])
    registered = np.concatenate([registered, succ_registered, hist_reg]).astype(np.int64)
    approved = np.concatenate([approved, succ_approved, hist_app]).astype(np.int64)
    terminated = np.concatenate([terminated, np.full(n_succ, _NO_DAY), hist_term]).astype(np.int64)
    legal_form = legal_form + ["AB"] * n_succ + [str(x) for x in rng.choice(["AB", "HB"], n_hist)]
    fraud = np.concatenate([fraud, np.ones(n_succ, bool), np.zeros(n_hist, bool)])
    is_successor = np.zeros(total, dtype=bool)
    is_successor[n : n + n_succ] = True
    phoenix_old = np.concatenate([phoenix_old, np.full(n_hist, -1)])

    avail_from = approved.copy()
    avail_to = np.where(terminated < _NO_DAY, terminated - 30, _NO_DAY)
    for k, p in enumerate(old_list):
        avail_from[n + k] = terminated[p] + 1  # takes new clients only once it has taken over
    avail_to[n + n_succ :] = -_NO_DAY

    signalled = fraud & (rng.random(total) < 0.65)
    signalled[old_list] = True
    signalled[is_successor] = False
    intensity = np.where(fraud, rng.uniform(0.5, 2.0, total), 0.0)

    repertoire = np.zeros((total, len(SCHEMES)), dtype=bool)
    plain = [s for s in SCHEMES if s != "phoenix"]
    fraud_plain = [p for p in rng.permutation(np.flatnonzero(fraud & ~is_successor))]
    if fraud_plain:
        for i, s in enumerate(rng.permutation(plain)):
            repertoire[fraud_plain[i % len(fraud_plain)], _S[str(s)]] = True
        for p in fraud_plain:
            if not repertoire[p].any() or rng.random() < 0.5:
                repertoire[p, _S[str(rng.choice(plain))]] = True
    repertoire[old_list, _S["overbilling"]] = True
    repertoire[is_successor, _S["phoenix"]] = True

    rounding = rng.choice(4, total, p=[0.4, 0.3, 0.2, 0.1])
    heavy_manual = rng.random(total) < 0.2
    manual_share = np.where(
        heavy_manual, rng.uniform(0.06, 0.18, total), rng.uniform(0.01, 0.05, total)
    )
    app_share = rng.uniform(0.03, 0.12, total)
    delivery = rng.normal(1.0, 0.03, total)
    submit_delay = rng.integers(2, 10, total)
    # The successor keeps the predecessor's habits: same people, same systems.
    for k, p in enumerate(old_list):
        for arr in (rounding, manual_share, app_share, delivery, submit_delay):
            arr[n + k] = arr[p]

    return _Providers(
        n=total,
        size_weight=size_weight,
        registered=registered,
        approved=approved,
        terminated=terminated,
        legal_form=legal_form,
        avail_from=avail_from,
        avail_to=avail_to,
        fraud=fraud,
        signalled=signalled,
        intensity=intensity,
        repertoire=repertoire,
        phoenix_old=phoenix_old,
        is_successor=is_successor,
        rounding=rounding,
        manual_share=manual_share,
        app_share=app_share,
        delivery=delivery,
        submit_delay=submit_delay,
    )


@dataclass
class _Clients:
    n: int
    birth_year: np.ndarray
    district: np.ndarray
    care_start: np.ndarray
    death: np.ndarray  # _NO_DAY when alive at the end of the window


def _make_clients(rng: np.random.Generator, cfg: SimulationConfig, cal: _Calendar) -> _Clients:
    n = cfg.clients
    start_year = int(cal.periods[0][:4])
    old = rng.random(n) < 0.85
    age = np.where(old, np.clip(rng.normal(83, 7, n), 65, 102), rng.uniform(20, 64, n))
    birth_year = np.clip(start_year - np.round(age), 1900, start_year).astype(np.int64)
    dw = rng.uniform(0.5, 1.5, cfg.districts)
    district = rng.choice(cfg.districts, n, p=dw / dw.sum())
    in_window = rng.random(n) < 0.25
    care_start = np.where(
        in_window,
        rng.integers(0, max(cal.n_days - 10, 1), n),
        -rng.integers(30, 6 * 365, n),
    ).astype(np.int64)
    # Mortality rises with age; younger clients (disability) rarely die.
    factor = np.where(old, np.clip(1 + (age - 83) * 0.06, 0.4, 2.5), 0.15)
    daily = -np.log1p(-cfg.annual_mortality) / 365.25 * factor
    with np.errstate(divide="ignore"):
        wait = np.where(daily > 0, rng.exponential(1.0, n) / np.maximum(daily, 1e-12), np.inf)
    death_f = np.maximum(care_start, 0) + wait
    death = np.where(death_f <= cal.n_days - 1, np.floor(death_f), _NO_DAY).astype(np.int64)
    return _Clients(n, birth_year, district, care_start, death)


# --------------------------------------------------------------------------------------
# Care: who delivers what to whom, when (grants and their segments)
# --------------------------------------------------------------------------------------


@dataclass
class _Segments:
    """One row per grant (regular) or per after-death continuation (shadow)."""

    client: np.ndarray
    provider: np.ndarray
    service: np.ndarray
    hours: np.ndarray
    start: np.ndarray
    end: np.ndarray  # last day the segment covers in the window
    valid_to: np.ndarray  # grant's valid_to (_NO_DAY when open)
    shadow: np.ndarray


def _choose_provider(
    rng: np.random.Generator, prov: _Providers, day: int, exclude: int = -1
) -> int:
    ok = (prov.avail_from <= day) & (prov.avail_to >= day) & (prov.size_weight > 0)
    if exclude >= 0:
        ok[exclude] = False
    if not ok.any():
        ok = prov.size_weight > 0
        ok &= prov.avail_from <= max(day, 0)
    w = np.where(ok, prov.size_weight, 0.0)
    return int(rng.choice(prov.n, p=w / w.sum()))


def _make_segments(
    rng: np.random.Generator, cal: _Calendar, prov: _Providers, cli: _Clients
) -> _Segments:
    last = cal.n_days - 1
    succ_of = {int(prov.phoenix_old[p]): p for p in np.flatnonzero(prov.is_successor)}
    rows: list[tuple[int, int, int, float, int, int, int, bool]] = []
    switch_prob = 0.06 * cal.n_days / 365.25
    reassess_prob = 0.15 * cal.n_days / 365.25

    has = rng.random((cli.n, 4)) < np.array(_TAKE_UP)
    neither = ~(has[:, _PC] | has[:, _HS])
    has[neither, _PC] = True
    has[:, _DS] &= has[:, _PC]
    hours0 = np.empty((cli.n, 4))
    for s in range(4):
        lo, hi = _HOURS_RANGE[s]
        h = rng.lognormal(np.log(_HOURS_MEDIAN[s]), _HOURS_SIGMA[s], cli.n)
        hours0[:, s] = np.round(np.clip(h, lo, hi) * 2) / 2
    late_start = rng.random((cli.n, 4)) < 0.3
    late_day = rng.integers(0, max(last, 1), (cli.n, 4))
    reassess = rng.random((cli.n, 4)) < reassess_prob
    reassess_day = rng.integers(0, max(last, 1), (cli.n, 4))
    reassess_factor = rng.lognormal(0.1, 0.25, (cli.n, 4))
    open_end_offset = np.where(rng.random((cli.n, 4)) < 0.3, rng.integers(30, 500, (cli.n, 4)), -1)

    for c in range(cli.n):
        start, death = int(cli.care_start[c]), int(cli.death[c])
        end = min(death, last)
        if start >= 0:
            p = _choose_provider(rng, prov, start)
            g_from = start
        else:
            p = _choose_provider(rng, prov, -1)
            g_from = max(start, int(prov.approved[p]) + int(rng.integers(0, 60)))
            g_from = min(g_from, -1)
        # Provider timeline: (from_day, provider).
        timeline = [(g_from, p)]
        switch_day = _NO_DAY
        if rng.random() < switch_prob and end - max(g_from, 0) > 60:
            switch_day = int(rng.integers(max(g_from, 0) + 30, end - 14))
        t, cur = g_from, p
        while True:
            term = int(prov.terminated[cur])
            if term < min(switch_day, end) and term >= t:
                nxt = succ_of.get(cur, -1)
                if nxt < 0:
                    nxt = _choose_provider(rng, prov, term + 1, exclude=cur)
                t, cur = term + 1, nxt
                timeline.append((t, cur))
            elif switch_day < end and switch_day > t:
                nxt = _choose_provider(rng, prov, switch_day, exclude=cur)
                t, cur, switch_day = switch_day, nxt, _NO_DAY
                timeline.append((t, cur))
            else:
                break
        changes = [d for d, _ in timeline]
        for s in np.flatnonzero(has[c]):
            s_from = g_from
            if s in (_DS, _NC) and late_start[c, s] and late_day[c, s] > max(g_from, 0):
                s_from = int(late_day[c, s])
            if s_from > end:
                continue
            cuts = {s_from} | {d for d in changes if s_from < d <= end}
            r_day = int(reassess_day[c, s])
            if reassess[c, s] and s_from < r_day <= end:
                cuts.add(r_day)
            cuts_sorted = sorted(cuts)
            for i, a in enumerate(cuts_sorted):
                b = cuts_sorted[i + 1] - 1 if i + 1 < len(cuts_sorted) else end
                pv = next(pp for d, pp in reversed(timeline) if d <= a)
                h = hours0[c, s]
                if reassess[c, s] and a >= r_day > s_from:
                    h = float(np.clip(np.round(h * reassess_factor[c, s] * 2) / 2, 2.0, 250.0))
                if i + 1 < len(cuts_sorted):
                    valid_to = b
                elif death < _NO_DAY:
                    valid_to = death
                elif open_end_offset[c, s] >= 0:
                    valid_to = last + int(open_end_offset[c, s])
                else:
                    valid_to = _NO_DAY
                rows.append((c, pv, int(s), h, a, b, valid_to, False))
            if death < _NO_DAY:
                pv = timeline[-1][1]
                b = min(death + 75, last, int(prov.terminated[pv]))
                if b > death:
                    rows.append((c, pv, int(s), h, death + 1, b, _NO_DAY, True))

    arr = list(zip(*rows, strict=True))
    return _Segments(
        client=np.array(arr[0], dtype=np.int64),
        provider=np.array(arr[1], dtype=np.int64),
        service=np.array(arr[2], dtype=np.int64),
        hours=np.array(arr[3], dtype=np.float64),
        start=np.array(arr[4], dtype=np.int64),
        end=np.array(arr[5], dtype=np.int64),
        valid_to=np.array(arr[6], dtype=np.int64),
        shadow=np.array(arr[7], dtype=bool),
    )


def _make_hospital_stays(
    rng: np.random.Generator, cfg: SimulationConfig, cal: _Calendar, cli: _Clients
) -> tuple[pd.DataFrame, np.ndarray]:
    """Inpatient periods, and a (client, window day) mask of days spent in hospital."""
    last = cal.n_days - 1
    in_hosp = np.zeros((cli.n, cal.n_days), dtype=bool)
    rows = []
    has_stay = rng.random(cli.n) < cfg.hospital_client_share
    for c in np.flatnonzero(has_stay):
        a = max(int(cli.care_start[c]), -30)
        b = min(int(cli.death[c]), last)
        if b - a < 12:
            continue
        k = int(rng.choice([1, 2, 3], p=[0.7, 0.22, 0.08]))
        part = (b - a + 1) // k
        if part < 6:
            k, part = 1, b - a + 1
        for j in range(k):
            lo = a + j * part
            length = int(np.clip(round(rng.lognormal(np.log(6), 0.6)), 2, 20))
            if j == k - 1 and cli.death[c] >= _NO_DAY:
                # The last stay may run past the end of the window: still admitted.
                admit = lo + int(rng.integers(0, part - 1))
            else:
                length = min(length, part - 3)
                if length < 2:
                    continue
                admit = lo + int(rng.integers(0, part - length))
            discharge = admit + length
            if cli.death[c] < _NO_DAY and admit <= cli.death[c] <= discharge:
                discharge = int(cli.death[c])
            if discharge > last:
                discharge = _NO_DAY
            rows.append((c, admit, discharge))
            hi = last if discharge >= _NO_DAY else discharge
            if hi >= 0:
                in_hosp[c, max(admit, 0) : hi + 1] = True
    stays = pd.DataFrame(rows, columns=["client", "admit", "discharge"])
    return stays, in_hosp


# --------------------------------------------------------------------------------------
# Visits
# --------------------------------------------------------------------------------------


@dataclass
class _Visits:
    provider: np.ndarray
    client: np.ndarray
    service: np.ndarray
    day: np.ndarray
    start_s: np.ndarray  # seconds after d0
    dur_s: np.ndarray
    method: np.ndarray
    staff: np.ndarray
    kind: np.ndarray  # 0 delivered, 1 in hospital, 2 after death, 3 invented, 4 double booked

    def take(self, idx: np.ndarray) -> _Visits:
        return _Visits(*(getattr(self, f)[idx] for f in _VISIT_FIELDS))

    @staticmethod
    def concat(parts: list[_Visits]) -> _Visits:
        return _Visits(*(np.concatenate([getattr(p, f) for p in parts]) for f in _VISIT_FIELDS))


_VISIT_FIELDS = (
    "provider",
    "client",
    "service",
    "day",
    "start_s",
    "dur_s",
    "method",
    "staff",
    "kind",
)


@dataclass
class _StaffPools:
    offset: np.ndarray  # (providers, shifts) first position in `person`
    size: np.ndarray  # (providers, shifts)
    person: np.ndarray  # staff number at each pool position


def _sum_by(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Sum of values per key, looked up for each query key (0 when absent)."""
    if keys.size == 0:
        return np.zeros(query.size)
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=uniq.size)
    pos = np.minimum(np.searchsorted(uniq, query), uniq.size - 1)
    return np.where(uniq[pos] == query, sums[pos], 0.0)


def _round_manual(start_s: np.ndarray, dur_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times typed in afterwards are to five minutes."""
    s = np.round(start_s / 300).astype(np.int64) * 300
    e = np.maximum(np.round((start_s + dur_s) / 300).astype(np.int64) * 300, s + 300)
    return s, e - s


def _generate_visits(
    rng: np.random.Generator,
    cal: _Calendar,
    prov: _Providers,
    cli: _Clients,
    seg: _Segments,
    in_hosp: np.ndarray,
) -> tuple[_Visits, _StaffPools]:
    last = cal.n_days - 1
    ms = cal.month_start
    s_from = np.clip(seg.start, 0, last)
    s_to = np.clip(seg.end, -1, last)
    valid = (seg.end >= 0) & (seg.start <= last) & (s_from <= s_to)
    idx = np.flatnonzero(valid)
    m_a = cal.month_of_day[s_from[idx]]
    m_b = cal.month_of_day[s_to[idx]]
    n_m = m_b - m_a + 1
    cell_seg = np.repeat(idx, n_m)
    first = np.repeat(np.cumsum(n_m) - n_m, n_m)
    cell_m = np.repeat(m_a, n_m) + (np.arange(cell_seg.size) - first)
    lo = np.maximum(s_from[cell_seg], ms[cell_m])
    hi = np.minimum(s_to[cell_seg], ms[cell_m + 1] - 1)
    n_days_cell = hi - lo + 1
    days_in_month = ms[cell_m + 1] - ms[cell_m]

    # Delivery: clients cancel some visits, so most months fall a little short of the grant.
    seg_delivery = np.clip(rng.normal(0.85, 0.05, seg.client.size), 0.6, 1.1)
    seg_delivery *= prov.delivery[seg.provider]
    expected_h = (
        seg.hours[cell_seg]
        * n_days_cell
        / days_in_month
        * seg_delivery[cell_seg]
        * rng.lognormal(0.0, 0.03, cell_seg.size)
    )
    client_len = rng.lognormal(0.0, 0.25, (cli.n, 4)) * np.array(_VISIT_MEDIAN_MIN)
    cell_client = seg.client[cell_seg]
    cell_service = seg.service[cell_seg]
    mu_min = client_len[cell_client, cell_service]
    mean_min = mu_min * np.exp(_VISIT_SIGMA**2 / 2)
    n_vis = np.floor(expected_h * 60 / mean_min + rng.random(cell_seg.size)).astype(np.int64)

    v_cell = np.repeat(np.arange(cell_seg.size), n_vis)
    n = v_cell.size
    v_seg = cell_seg[v_cell]
    client = seg.client[v_seg]
    provider = seg.provider[v_seg]
    service = seg.service[v_seg]
    day = lo[v_cell] + np.floor(rng.random(n) * n_days_cell[v_cell]).astype(np.int64)
    lo_min = np.array([r[0] for r in _VISIT_RANGE_MIN])[service]
    hi_min = np.array([r[1] for r in _VISIT_RANGE_MIN])[service]
    dur_min = np.clip(mu_min[v_cell] * rng.lognormal(0.0, _VISIT_SIGMA, n), lo_min, hi_min)
    dur_s = np.round(dur_min * 60).astype(np.int64)
    kind = np.where(seg.shadow[v_seg], 2, np.where(in_hosp[client, day], 1, 0)).astype(np.int8)
    # Shifts: a client's visits of one service on one day go round the service's shifts
    # (personal care: morning, evening, lunch, morning, ...), starting at a random shift, so a
    # heavy client gets care spread over the day rather than one endless morning visit.
    cds = (client * cal.n_days + day) * 4 + service
    o = np.argsort(cds, kind="stable")
    cds_sorted = cds[o]
    new_cds = np.r_[True, cds_sorted[1:] != cds_sorted[:-1]][:n]
    first_of = np.maximum.accumulate(np.where(new_cds, np.arange(n), 0)) if n else o
    ordinal = np.empty(n, dtype=np.int64)
    ordinal[o] = np.arange(n) - first_of
    u = rng.random(n)
    first_shift = np.minimum((u[:, None] > _SHIFT_CUM_PROBS[service]).sum(axis=1), 3)
    start_in_cycle = np.empty(n, dtype=np.int64)
    start_in_cycle[o] = _SHIFT_CYCLE_POS[service[o], first_shift[o]][first_of]
    cycle_len = _SHIFT_CYCLE_LEN[service]
    shift = _SHIFT_CYCLE[service, (start_in_cycle + ordinal) % cycle_len]
    u = rng.random(n)
    method = np.where(
        u < prov.manual_share[provider],
        _MANUAL,
        np.where(u < prov.manual_share[provider] + prov.app_share[provider], _APP, _NFC),
    ).astype(np.int8)

    # Routes. A client's visits in one shift form a block that one carer does in a row, so
    # honest clients never have two carers at once. Blocks of a provider, day and shift are
    # dealt round-robin to routes of about the shift's capacity; long morning blocks go first
    # and clients with a long earlier block go last at lunch and in the evening, so a heavy
    # client's blocks do not run into each other.
    n_days = cal.n_days
    perm = rng.permutation(n)
    group = (provider * n_days + day) * 4 + shift
    order = perm[np.argsort((group * cli.n + client)[perm], kind="stable")]
    g = group[order]
    c_sorted = client[order]
    slot = dur_s[order] + rng.integers(5, 21, n) * 60
    b_start = np.r_[True, (g[1:] != g[:-1]) | (c_sorted[1:] != c_sorted[:-1])][:n]
    b_id = np.cumsum(b_start) - 1
    b_pos = np.flatnonzero(b_start)
    before = np.cumsum(slot) - slot
    in_block = before - before[b_pos][b_id]
    b_len = np.add.reduceat(slot, b_pos) if n else slot
    b_group = g[b_pos]
    b_client = c_sorted[b_pos]
    b_shift = b_group % 4
    client_day = b_client * n_days + (b_group // 4) % n_days
    morning_len = _sum_by(client_day[b_shift == _MORNING], b_len[b_shift == _MORNING], client_day)
    lunch_len = _sum_by(client_day[b_shift == _LUNCH], b_len[b_shift == _LUNCH], client_day)
    priority = np.select(
        [b_shift == _MORNING, b_shift == _LUNCH, b_shift == _EVENING],
        [-b_len - 86400 * (lunch_len > 0), morning_len, lunch_len + morning_len / 4],
        0,
    ).astype(np.float64)
    nb = b_pos.size
    b_order = np.lexsort((rng.random(nb), priority, b_group))
    gs = b_group[b_order]
    first = np.r_[True, gs[1:] != gs[:-1]][:nb]
    first_pos = np.flatnonzero(first)
    gi = np.cumsum(first) - 1
    rank = np.arange(nb) - first_pos[gi]
    total = np.add.reduceat(b_len[b_order], first_pos) if nb else b_len
    n_routes = np.maximum(1, np.ceil(total / (0.9 * _SHIFT_CAP_S[gs[first_pos] % 4]))).astype(
        np.int64
    )
    route_s = rank % n_routes[gi]
    o2 = np.lexsort((rank, route_s, gs))
    len2 = b_len[b_order][o2]
    key2 = gs[o2] * (nb + 1) + route_s[o2]
    r_first2 = np.r_[True, key2[1:] != key2[:-1]][:nb]
    cum2 = np.cumsum(len2) - len2
    route_start = np.maximum.accumulate(np.where(r_first2, np.arange(nb), 0)) if nb else cum2
    off2 = cum2 - cum2[route_start]
    sh2 = gs[o2] % 4
    jit = _SHIFT_JITTER_S[sh2, 0] + rng.random(nb) * (
        _SHIFT_JITTER_S[sh2, 1] - _SHIFT_JITTER_S[sh2, 0]
    )
    jit = jit.astype(np.int64)[route_start]
    blk = b_order[o2]  # block index for each row of the route ordering
    b_offset = np.empty(nb, dtype=np.int64)
    b_offset[blk] = off2 + jit
    b_route = np.empty(nb, dtype=np.int64)
    b_route[blk] = route_s[o2]
    sh = shift[order]
    start_sorted = day[order] * 86400 + _SHIFT_START_S[sh] + b_offset[b_id] + in_block
    start_s = np.empty(n, dtype=np.int64)
    start_s[order] = start_sorted
    route_of = np.empty(n, dtype=np.int64)
    route_of[order] = b_route[b_id]

    # Staff: each (provider, shift) has a pool larger than its busiest day; routes on one day
    # go to distinct pool members, rotating from day to day.
    max_route = np.full((prov.n, 4), -1, dtype=np.int64)
    np.maximum.at(max_route, (b_group // 4 // n_days, b_shift), b_route)
    size = np.where(max_route >= 0, np.ceil((max_route + 1) * 1.3).astype(np.int64) + 1, 0)
    pool_offset = (np.cumsum(size.ravel()) - size.ravel()).reshape(size.shape)
    person = np.arange(int(size.sum()), dtype=np.int64)
    for succ in np.flatnonzero(prov.is_successor):
        old = int(prov.phoenix_old[succ])
        for s in range(4):  # the successor rehires the predecessor's staff
            k = int(min(size[succ, s], size[old, s]))
            person[pool_offset[succ, s] : pool_offset[succ, s] + k] = person[
                pool_offset[old, s] : pool_offset[old, s] + k
            ]
    honest = np.flatnonzero(~prov.fraud & (size[:, _EVENING] > 0))
    morning = np.flatnonzero(~prov.fraud & (size[:, _MORNING] > 1))
    for _ in range(max(1, round(0.03 * prov.n))):
        if honest.size == 0 or morning.size < 2:
            break
        x = int(rng.choice(honest))
        y = int(rng.choice(morning[morning != x]))
        # An evening carer at x also works mornings at y: never at the same time.
        person[pool_offset[y, _MORNING] + size[y, _MORNING] - 1] = person[
            pool_offset[x, _EVENING] + int(rng.integers(size[x, _EVENING]))
        ]
    sh_orig = shift
    staff_pos = pool_offset[provider, sh_orig] + (route_of + day * 5) % np.maximum(
        size[provider, sh_orig], 1
    )
    staff = person[staff_pos]

    manual = method == _MANUAL
    start_s[manual], dur_s[manual] = _round_manual(start_s[manual], dur_s[manual])
    visits = _Visits(
        provider=provider,
        client=client,
        service=service.astype(np.int8),
        day=day,
        start_s=start_s,
        dur_s=dur_s,
        method=method,
        staff=staff,
        kind=kind,
    )
    # The rare evening visit that would run past midnight is cancelled, so that every visit
    # lies within its day (hospital, death and month checks are by day).
    same_day = start_s + dur_s <= (day + 1) * 86400
    return visits.take(np.flatnonzero(same_day)), _StaffPools(pool_offset, size, person)


# --------------------------------------------------------------------------------------
# Irregular schemes
# --------------------------------------------------------------------------------------


def _key(
    provider: np.ndarray, client: np.ndarray, service: np.ndarray, month: np.ndarray, dims
) -> np.ndarray:
    n_clients, n_months = dims
    return ((provider.astype(np.int64) * n_clients + client) * 4 + service) * n_months + month


def _unkey(key: np.ndarray, dims) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_clients, n_months = dims
    month = key % n_months
    rest = key // n_months
    service = rest % 4
    rest //= 4
    return rest // n_clients, rest % n_clients, service, month


@dataclass
class _Plan:
    """Which invoice keys carry which scheme, and the visits the schemes add or keep."""

    scheme_of: dict[int, int]
    visits: _Visits
    phantom_h: dict[int, float]  # hours billed for visits that were never registered
    factor: dict[int, float]  # inflation factor on billed hours or on the amount
    under_grant: set[int]
    upcoded_keys: set[int]
    n_base: int


def _invented_hours(rng: np.random.Generator, delivered_h: float, granted_h: float) -> float:
    """Hours of invented care: mostly topping up to about the grant, where the simple
    "billed over granted" rule cannot see it; otherwise a modest addition."""
    room = granted_h * rng.uniform(0.93, 1.0) - delivered_h
    if room >= 0.15 * delivered_h and rng.random() < 0.75:
        return float(room)
    return float(delivered_h * rng.uniform(0.15, 0.5))


def _plan_schemes(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    cal: _Calendar,
    prov: _Providers,
    cli: _Clients,
    vis: _Visits,
    pools: _StaffPools,
    granted: pd.Series,
) -> _Plan:
    dims = (cli.n, cal.months)
    month = cal.month_of_day[vis.day]
    vkey = _key(vis.provider, vis.client, vis.service, month, dims)
    keys, vinv = np.unique(vkey, return_inverse=True)
    hours = vis.dur_s / 3600.0
    h = np.stack(
        [np.bincount(vinv, weights=hours * (vis.kind == k), minlength=keys.size) for k in range(3)]
    )
    k_prov, k_client, k_service, k_month = _unkey(keys, dims)
    k_granted = granted.reindex(keys).fillna(0.0).to_numpy()
    base = h[0] > 0
    n_base = int(base.sum())
    target = round(cfg.irregular_share * n_base)

    # Clients with delivered visits per provider and month: needed to double-book staff.
    pm = k_prov * cal.months + k_month
    pm_clients = pd.Series(k_client[base]).groupby(pm[base]).nunique()
    k_pm_clients = pm_clients.reindex(pm).fillna(0).to_numpy()
    all_keys = np.union1d(keys, granted.index.to_numpy())
    ds_key = keys + (_DS - k_service) * cal.months
    has_ds = np.isin(ds_key, all_keys)

    scheme = np.full(keys.size, -1, dtype=np.int64)
    taken = np.zeros(keys.size, dtype=bool)
    fraud = prov.fraud[k_prov]
    succ = prov.is_successor[k_prov]
    weight = prov.intensity[k_prov]

    # 1. Phoenix successors inflate most of their invoices.
    elig = np.flatnonzero(base & succ)
    cap = max(3, round(0.3 * target)) if target > 0 else 0
    n_phx = min(round(0.85 * elig.size), cap)
    pick = elig[_weighted_pick(rng, np.ones(elig.size), n_phx)]
    scheme[pick] = _S["phoenix"]
    taken[succ] = True

    eligible_of = {
        "billing_after_death": h[2] > 0,
        "hospital_billing": (h[1] >= 1.0) & (h[2] == 0),
        "service_upcoding": base & (k_service == _PC) & (h[0] >= 4.0) & ~has_ds,
        "staff_double_booking": base & (h[0] >= 2.0) & (k_pm_clients >= 3),
        "fabricated_visits": base & (h[0] >= 2.0),
        "billing_at_grant": base & (k_granted - h[0] >= 1.0) & (h[2] == 0),
        "rate_inflation": base,
        "overbilling": base & (h[0] >= 3.0),
    }
    grouped = {
        "billing_after_death": k_prov * cli.n + k_client,
        "billing_at_grant": (k_prov * cli.n + k_client) * 4 + k_service,
    }
    remaining = max(0, target - int(np.count_nonzero(scheme >= 0)))
    deficit = 0.0
    for name, w in _SCHEME_WEIGHT.items():
        s = _S[name]
        quota = remaining * w + (deficit if name == "overbilling" else 0.0)
        iso = cfg.isolated_irregular_share if name in _ISOLATED_ALLOWED else 0.0
        q_fraud, q_iso = round(quota * (1 - iso)), round(quota * iso)
        elig_mask = eligible_of[name] & ~taken
        chosen: list[np.ndarray] = []

        def pick_from(
            mask: np.ndarray, w_items: np.ndarray, q: int, name: str = name
        ) -> np.ndarray:
            pos = np.flatnonzero(mask)
            if q <= 0 or pos.size == 0:
                return np.empty(0, dtype=np.int64)
            if name in grouped:
                return pos[_group_pick(rng, grouped[name][pos], w_items[pos], q)]
            return pos[_weighted_pick(rng, w_items[pos], q)]

        p1 = pick_from(elig_mask & prov.repertoire[k_prov, s], weight, q_fraud)
        chosen.append(p1)
        short = q_fraud - p1.size
        if short > 0:
            rest = elig_mask & fraud & ~succ
            rest[p1] = False
            chosen.append(pick_from(rest, weight, short))
            short -= chosen[-1].size
        if q_iso > 0 or (short > 0 and name in _ISOLATED_ALLOWED):
            honest = elig_mask & ~fraud
            chosen.append(pick_from(honest, np.ones(keys.size), q_iso + max(short, 0)))
        got = np.unique(np.concatenate(chosen))
        if got.size == 0 and elig_mask.any() and quota >= 0.5:
            got = pick_from(elig_mask, np.ones(keys.size), 1)
        scheme[got] = s
        taken[got] = True
        deficit += max(0.0, quota - got.size)

    # Visits: delivered ones always; hospital and after-death ones only where billed.
    hosp_keys = scheme == _S["hospital_billing"]
    dead_keys = scheme == _S["billing_after_death"]
    dead_client = np.unique(k_client[dead_keys])
    # Half of them register invented visits after the death, half bill without any.
    dead_with_visits = rng.permutation(dead_client)[: (dead_client.size + 1) // 2]
    keep_dead = dead_keys & np.isin(k_client, dead_with_visits)
    keep = (
        (vis.kind == 0) | ((vis.kind == 1) & hosp_keys[vinv]) | ((vis.kind == 2) & keep_dead[vinv])
    )
    phantom_h = {
        int(k): float(hh)
        for k, hh in zip(keys[dead_keys & ~keep_dead], h[2][dead_keys & ~keep_dead], strict=True)
    }
    # Registrations of care that did not happen are typed in or made in the app.
    fake = keep & (vis.kind > 0)
    u = rng.random(vis.kind.size)
    method = vis.method.copy()
    method[fake & (u < 0.55)] = _MANUAL
    method[fake & (u >= 0.55) & (u < 0.85)] = _APP
    start_s, dur_s = vis.start_s.copy(), vis.dur_s.copy()
    to_round = fake & (method == _MANUAL) & (vis.method != _MANUAL)
    start_s[to_round], dur_s[to_round] = _round_manual(start_s[to_round], dur_s[to_round])
    base_vis = _Visits(
        vis.provider,
        vis.client,
        vis.service.copy(),
        vis.day,
        start_s,
        dur_s,
        method,
        vis.staff,
        vis.kind,
    )

    # Upcoding: part of the personal care visits are recoded as double staffing.
    upcoded_keys: set[int] = set()
    up = np.flatnonzero(scheme == _S["service_upcoding"])
    if up.size:
        frac = np.zeros(keys.size)
        frac[up] = rng.uniform(0.3, 0.7, up.size)
        move = (vis.kind == 0) & (rng.random(vis.kind.size) < frac[vinv])
        # At least one moved visit per chosen key.
        first_visit = np.full(keys.size, -1)
        cand = np.flatnonzero(vis.kind == 0)
        first_visit[vinv[cand[::-1]]] = cand[::-1]
        move[first_visit[up][first_visit[up] >= 0]] = True
        base_vis.service[move] = _DS
        upcoded_keys = {int(k) for k in keys[up] + (_DS - _PC) * cal.months}
        scheme[up] = -1  # the remaining personal care invoice is billed correctly

    # Invented visits: identical lengths at round hours, typed in afterwards.
    added: list[_Visits] = []
    v_order = np.argsort(vinv, kind="stable")
    v_bounds = np.r_[0, np.cumsum(np.bincount(vinv, minlength=keys.size))]
    # The phoenix successor hides half of its excess the same way.
    phx = np.flatnonzero(scheme == _S["phoenix"])
    phx_invent = phx[rng.random(phx.size) < 0.5]
    fab = np.sort(np.r_[np.flatnonzero(scheme == _S["fabricated_visits"]), phx_invent])
    for k in fab:
        own = v_order[v_bounds[k] : v_bounds[k + 1]]
        own = own[vis.kind[own] == 0]
        extra_h = _invented_hours(rng, h[0][k], k_granted[k])
        length = int(rng.choice([30, 45, 60, 90]))
        m = max(1, int(extra_h * 60 // length))
        days = rng.integers(vis.day[own].min(), vis.day[own].max() + 1, m)
        start = days * 86400 + rng.integers(16, 31, m) * 1800  # 08:00 to 15:00
        sh = (
            _MORNING
            if pools.size[k_prov[k], _MORNING] > 0
            else int(np.argmax(pools.size[k_prov[k]]))
        )
        pos = pools.offset[k_prov[k], sh] + rng.integers(0, max(pools.size[k_prov[k], sh], 1), m)
        added.append(
            _Visits(
                np.full(m, k_prov[k]),
                np.full(m, k_client[k]),
                np.full(m, k_service[k], dtype=np.int8),
                days,
                start,
                np.full(m, length * 60),
                np.where(rng.random(m) < 0.8, _MANUAL, _APP).astype(np.int8),
                pools.person[pos],
                np.full(m, 3, dtype=np.int8),
            )
        )

    # Double booking: a carer registered at another client at the same time, billed twice.
    dbl = np.flatnonzero(scheme == _S["staff_double_booking"])
    if dbl.size:
        delivered = np.flatnonzero(vis.kind == 0)
        pm_v = vis.provider[delivered] * cal.months + month[delivered]
        o = np.argsort(pm_v, kind="stable")
        src_sorted, pm_sorted = delivered[o], pm_v[o]
        for k in dbl:
            a, b = np.searchsorted(pm_sorted, [pm[k], pm[k] + 1])
            src = src_sorted[a:b]
            own = v_order[v_bounds[k] : v_bounds[k + 1]]
            own_days = vis.day[own[vis.kind[own] == 0]]
            src = src[
                (vis.client[src] != k_client[k])
                & (vis.day[src] >= own_days.min())
                & (vis.day[src] <= own_days.max())
            ]
            if src.size == 0:
                continue
            extra_h = _invented_hours(rng, h[0][k], k_granted[k])
            mean_h = float(vis.dur_s[src].mean()) / 3600
            m = int(min(src.size, max(1, extra_h // mean_h)))
            take = rng.choice(src, m, replace=False)
            start = vis.start_s[take] + rng.integers(0, 601, m)
            dur = np.maximum(np.round(vis.dur_s[take] * rng.uniform(0.8, 1.1, m)), 300).astype(
                np.int64
            )
            u = rng.random(m)
            meth = np.where(u < 0.5, _APP, np.where(u < 0.8, _MANUAL, _NFC)).astype(np.int8)
            added.append(
                _Visits(
                    np.full(m, k_prov[k]),
                    np.full(m, k_client[k]),
                    np.full(m, k_service[k], dtype=np.int8),
                    vis.day[take],
                    start,
                    dur,
                    meth,
                    vis.staff[take],
                    np.full(m, 4, dtype=np.int8),
                )
            )

    factor: dict[int, float] = {}
    under_grant: set[int] = set()
    for k in np.flatnonzero(scheme == _S["overbilling"]):
        factor[int(keys[k])] = 1.15 + 0.85 * rng.random() ** 2
        if rng.random() < 0.4:
            under_grant.add(int(keys[k]))
    for k in np.setdiff1d(phx, phx_invent):
        factor[int(keys[k])] = rng.uniform(1.15, 1.6)
    for k in np.flatnonzero(scheme == _S["rate_inflation"]):
        factor[int(keys[k])] = rng.uniform(1.05, 1.35)

    scheme_of = {int(keys[k]): int(scheme[k]) for k in np.flatnonzero(scheme >= 0)}
    for uk in upcoded_keys:
        scheme_of[uk] = _S["service_upcoding"]
    all_visits = _Visits.concat([base_vis.take(np.flatnonzero(keep)), *added])
    return _Plan(scheme_of, all_visits, phantom_h, factor, under_grant, upcoded_keys, n_base)


# --------------------------------------------------------------------------------------
# Invoices, audits, register
# --------------------------------------------------------------------------------------


def _round_hours(h: np.ndarray, policy: np.ndarray) -> np.ndarray:
    out = np.round(h, 2)
    out = np.where(policy == 1, np.round(h * 4) / 4, out)
    out = np.where(policy == 2, np.round(h * 2) / 2, out)
    out = np.where(policy == 3, np.ceil(h * 2 - 1e-9) / 2, out)
    step = np.select([policy == 1, policy >= 2], [0.25, 0.5], 0.01)
    return np.where((h > 0) & (out <= 0), step, out)


def _tariffs(rng: np.random.Generator, cal: _Calendar) -> pd.DataFrame:
    """Hourly rates for every service and year in the window plus the year before."""
    years = np.arange(int(cal.years[0]) - 1, int(cal.years[-1]) + 1)
    rows = []
    for s, base in enumerate(_BASE_RATE):
        growth = np.r_[1.0, 1.0 + rng.uniform(0.025, 0.035, years.size - 1)]
        level = base * rng.uniform(0.98, 1.02) / 1.03 * np.cumprod(growth)
        rows += [
            (SERVICE_TYPES[s], int(y), round(float(r), 2))
            for y, r in zip(years, level, strict=True)
        ]
    return pd.DataFrame(rows, columns=["service_type", "year", "rate_sek"])


def _build_invoices(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    cal: _Calendar,
    prov: _Providers,
    cli: _Clients,
    plan: _Plan,
    granted: pd.Series,
    tariffs: pd.DataFrame,
) -> pd.DataFrame:
    dims = (cli.n, cal.months)
    vis = plan.visits
    month = cal.month_of_day[vis.day]
    vkey = _key(vis.provider, vis.client, vis.service, month, dims)
    keys, vinv = np.unique(vkey, return_inverse=True)
    hours = vis.dur_s / 3600.0
    reg_h = np.bincount(vinv, weights=hours, minlength=keys.size)
    legit_h = np.bincount(vinv, weights=hours * (vis.kind == 0), minlength=keys.size)
    extra = np.array(sorted(set(plan.phantom_h) - set(keys.tolist())), dtype=np.int64)
    keys = np.concatenate([keys, extra])
    reg_h = np.concatenate([reg_h, np.zeros(extra.size)])
    legit_h = np.concatenate([legit_h, np.zeros(extra.size)])
    k_prov, k_client, k_service, k_month = _unkey(keys, dims)

    scheme = np.array([plan.scheme_of.get(int(k), -1) for k in keys], dtype=np.int64)
    phantom = np.array([plan.phantom_h.get(int(k), 0.0) for k in keys])
    factor = np.array([plan.factor.get(int(k), 1.0) for k in keys])
    under = np.array([int(k) in plan.under_grant for k in keys])
    upcoded = np.array([int(k) in plan.upcoded_keys for k in keys])
    k_granted = granted.reindex(keys).fillna(0.0).to_numpy()
    policy = prov.rounding[k_prov]

    billed = _round_hours(reg_h + phantom, policy)
    regular = scheme < 0
    # Honest manual corrections of one or two hours.
    corr = regular & (rng.random(keys.size) < 0.03)
    delta = rng.choice([-2.0, -1.5, -1.0, 1.0, 1.5, 2.0], keys.size)
    billed = np.where(corr & (billed + delta > 0.25), billed + delta, billed)
    inflated = ((scheme == _S["overbilling"]) | (scheme == _S["phoenix"])) & (factor > 1.0)
    inflated_h = _round_hours(legit_h * factor, policy)
    # Some overbilling stays under the grant, so that "billed over granted" misses it.
    cap = np.round(k_granted * rng.uniform(0.92, 1.0, keys.size) * 4) / 4
    capped = np.where(under & (cap < inflated_h) & (cap >= legit_h * 1.15), cap, inflated_h)
    billed = np.where(inflated, capped, billed)
    billed = np.where(scheme == _S["billing_at_grant"], k_granted, billed)
    billed = np.clip(billed, 0.0, 744.0)

    rate_table = tariffs.set_index(["service_type", "year"])["rate_sek"]
    rate = np.array([[rate_table[(SERVICE_TYPES[s], int(y))] for y in cal.years] for s in range(4)])
    k_rate = rate[k_service, k_month]
    legit_rate = np.where(upcoded, rate[_PC, k_month], k_rate)
    amount_factor = np.where(scheme == _S["rate_inflation"], factor, 1.0)
    amount = np.round(billed * k_rate * amount_factor, 2)
    # Honest rounding differences of a few kronor.
    diff = regular & (rng.random(keys.size) < 0.02)
    amount = np.where(diff, np.maximum(amount + rng.integers(-5, 6, keys.size), 0.0), amount)
    excess = np.where(regular, 0.0, amount - np.round(legit_h * legit_rate, 2))
    # A planted scheme that happened to bill nothing extra is not an irregularity.
    scheme = np.where(excess > 0.5, scheme, -1)
    excess = np.where(scheme >= 0, np.round(excess, 2), 0.0)

    month_end = cal.month_start[k_month + 1] - 1
    late = rng.random(keys.size) < 0.05
    delay = (
        prov.submit_delay[k_prov]
        + rng.poisson(2.0, keys.size)
        + late * rng.integers(10, 40, keys.size)
    )
    submitted = month_end + 1 + delay

    inv = pd.DataFrame(
        {
            "key": keys,
            "provider": k_prov,
            "client": k_client,
            "service": k_service,
            "month": k_month,
            "billed_hours": billed,
            "amount_sek": amount,
            "submitted": submitted,
            "granted_h": k_granted,
            "scheme": scheme,
            "excess_sek": excess,
        }
    )
    inv = inv.sort_values(["month", "provider", "client", "service"], kind="stable")
    return inv.reset_index(drop=True)


def _audits(
    rng: np.random.Generator, cfg: SimulationConfig, cal: _Calendar, inv: pd.DataFrame
) -> pd.DataFrame:
    export_day = int(inv["submitted"].max())
    eligible = (inv["month"] < cal.months - 1).to_numpy() & (
        inv["submitted"].to_numpy() + 14 <= export_day
    )
    pos = np.flatnonzero(eligible)
    n_review = round(cfg.review_share * pos.size)
    n_random = round(cfg.random_review_share * n_review)
    rule = (inv["billed_hours"] > inv["granted_h"]).to_numpy()
    rule_pos = pos[rule[pos]]
    picked_rule = rule_pos[_weighted_pick(rng, np.ones(rule_pos.size), n_review - n_random)]
    rest = np.setdiff1d(pos, picked_rule)
    picked_random = rest[_weighted_pick(rng, np.ones(rest.size), n_review - picked_rule.size)]
    picked = np.sort(np.concatenate([picked_rule, picked_random]))
    by_rule = np.isin(picked, picked_rule)

    sub = inv.iloc[picked]
    submitted = sub["submitted"].to_numpy()
    latest = np.maximum(np.minimum(submitted + 70, export_day), submitted + 14)
    reviewed = (
        submitted
        + 14
        + np.floor(rng.random(picked.size) * (latest - submitted - 13)).astype(np.int64)
    )
    irregular = sub["scheme"].to_numpy() >= 0
    u = rng.random(picked.size)
    confirmed = np.where(irregular, u >= cfg.review_miss_rate, u < cfg.review_false_confirm_rate)
    excess = sub["excess_sek"].to_numpy()
    amount = sub["amount_sek"].to_numpy()
    recovered = np.where(
        confirmed,
        np.round(
            np.where(irregular, excess, amount * rng.uniform(0.05, 0.2, picked.size))
            * rng.uniform(0.6, 1.0, picked.size),
            0,
        ),
        np.nan,
    )
    text = []
    for conf, s in zip(confirmed, sub["scheme"].to_numpy(), strict=True):
        if not conf:
            text.append(np.nan)
        elif s >= 0:
            text.append(str(rng.choice(_REVIEW_WORDING[SCHEMES[s]])))
        else:
            text.append(str(rng.choice(_FALSE_CONFIRM_WORDING)))
    return pd.DataFrame(
        {
            "row": picked,
            "reviewed": reviewed,
            "outcome": np.where(confirmed, "confirmed", "cleared"),
            "recovered_sek": recovered,
            "scheme": text,
            "selection": np.where(by_rule, "rule", "random_check"),
        }
    )


_EVENT_RATES = {  # per year: honest, heavy register
    "address_change": (0.12, 0.35),
    "board_change": (0.20, 0.60),
    "owner_change": (0.04, 0.25),
    "complaint": (0.25, 0.80),
    "inspection_remark": (0.08, 0.30),
    "tax_debt_registered": (0.04, 0.50),
    "f_tax_revoked": (0.005, 0.12),
    "employer_registration_revoked": (0.003, 0.06),
    "contract_warning": (0.02, 0.25),
    "sanction": (0.003, 0.05),
}
_SIZE_SCALED = {"complaint", "inspection_remark"}


def _register(
    rng: np.random.Generator, cal: _Calendar, prov: _Providers, clients_per_provider: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Provider events and persons: honest noise everywhere, heavier signals at some fraudsters."""
    last = cal.n_days - 1
    events: list[tuple[int, int, str, float]] = []
    persons: list[list] = []  # [provider, person, role, from, to]
    next_person = [0]

    def new_person() -> int:
        next_person[0] += 1
        return next_person[0] - 1

    has_board = [lf in ("AB", "EK", "other") for lf in prov.legal_form]
    predecessors = {int(q) for q in prov.phoenix_old if q >= 0}
    for p in range(prov.n):
        if prov.is_successor[p]:
            continue  # built from the predecessor below
        reg = int(prov.registered[p])
        lf = prov.legal_form[p]
        rows: list[list] = []
        if has_board[p]:
            board = [new_person() for _ in range(int(rng.integers(1, 5)) + (lf != "AB") * 2)]
            rows += [[p, q, "board_member", reg, _NO_DAY] for q in board]
            ceo = board[0] if rng.random() < 0.5 else new_person()
            if lf != "EK":
                rows.append([p, ceo, "ceo", reg, _NO_DAY])
            if lf == "AB":
                owners = [board[0] if rng.random() < 0.6 else new_person()]
                if rng.random() < 0.3:
                    owners.append(new_person())
                rows += [[p, q, "owner", reg, _NO_DAY] for q in owners]
            rows.append([p, ceo, "signatory", reg, _NO_DAY])
            if len(board) > 1 and rng.random() < 0.4:
                rows.append([p, board[1], "signatory", reg, _NO_DAY])
        else:
            owners = [new_person() for _ in range(1 if lf == "EF" else int(rng.integers(2, 4)))]
            rows += [[p, q, "owner", reg, _NO_DAY] for q in owners]
            rows += [[p, q, "signatory", reg, _NO_DAY] for q in owners]

        lo = max(reg, -3 * 365)
        hi = min(last, int(prov.terminated[p]))
        years = max(hi - lo, 0) / 365.25
        heavy = int(prov.signalled[p])
        size = float(np.clip(np.sqrt(max(clients_per_provider[p], 1) / 30), 0.3, 3.0))
        p_events: list[tuple[int, str]] = []
        for etype, rates in _EVENT_RATES.items():
            lam = rates[heavy] * years * (size if etype in _SIZE_SCALED else 1.0)
            if etype == "board_change" and not has_board[p]:
                continue
            for d in rng.integers(lo, hi + 1, rng.poisson(lam)) if hi >= lo else []:
                p_events.append((int(d), etype))
        if p in predecessors:  # a predecessor: the build-up to termination
            t = int(prov.terminated[p])
            for etype in (
                "complaint",
                "complaint",
                "inspection_remark",
                "contract_warning",
                "contract_warning",
                "sanction",
                "tax_debt_registered",
            ):
                p_events.append((t - int(rng.integers(10, 240)), etype))
        for d, etype in sorted(p_events):
            if etype == "tax_debt_registered":
                amt = float(round(rng.lognormal(np.log(150_000 if heavy else 30_000), 1.0)))
                events.append((p, d, etype, amt))
                cleared = rng.random() < (0.4 if heavy else 0.9)
                d2 = d + int(rng.integers(15, 180))
                if cleared and d2 <= hi:
                    events.append((p, d2, "tax_debt_cleared", amt))
                continue
            events.append((p, d, etype, np.nan))
            if etype == "f_tax_revoked" and rng.random() < 0.6:
                d2 = d + int(rng.integers(30, 250))
                if d2 <= hi:
                    events.append((p, d2, "f_tax_restored", np.nan))
            if etype in ("board_change", "owner_change"):
                role = "board_member" if etype == "board_change" else "owner"
                current = [r for r in rows if r[2] == role and r[4] == _NO_DAY and r[3] <= d]
                if current:
                    old = current[int(rng.integers(len(current)))]
                    old[4] = d
                    rows.append([p, new_person(), role, d, _NO_DAY])
        persons += rows

    # Phoenix successors: the predecessor's people, a new company; sometimes a straw-man CEO.
    for succ in np.flatnonzero(prov.is_successor):
        old = int(prov.phoenix_old[succ])
        t = int(prov.terminated[old])
        reg = int(prov.registered[succ])
        current = [
            r
            for r in persons
            if r[0] == old and r[4] > t and r[2] in ("board_member", "owner", "ceo")
        ]
        rows = []
        for r in current:
            if r[2] == "ceo" and rng.random() < 0.5:
                rows.append([int(succ), new_person(), "ceo", reg, _NO_DAY])
            else:
                rows.append([int(succ), r[1], r[2], reg, _NO_DAY])
            r[4] = min(last, t + int(rng.integers(0, 60)))
        if not rows:
            rows.append([int(succ), new_person(), "board_member", reg, _NO_DAY])
        rows.append([int(succ), rows[0][1], "signatory", reg, _NO_DAY])
        persons += rows
        if rng.random() < 0.5:
            events.append((int(succ), reg + int(rng.integers(1, 40)), "address_change", np.nan))

    # A few people sit on two boards: mostly honest, and fraudsters know each other.
    boards = {}
    for r in persons:
        if r[2] == "board_member" and r[4] == _NO_DAY:
            boards.setdefault(r[0], []).append(r[1])
    plain = [p for p in boards if not prov.is_successor[p] and prov.terminated[p] == _NO_DAY]
    fraudsters = [p for p in plain if prov.fraud[p]]
    pairs = []
    for _ in range(max(1, round(0.03 * prov.n))):
        if len(plain) >= 2:
            pairs.append(rng.choice(plain, 2, replace=False))
    for p in fraudsters:
        if rng.random() < 0.4 and len(fraudsters) >= 2:
            pairs.append(np.array([p, rng.choice([q for q in fraudsters if q != p])]))
    for x, y in pairs:
        q = int(rng.choice(boards[int(x)]))
        day = max(int(prov.registered[y]), int(rng.integers(-3 * 365, last + 1)))
        if day <= last and not any(r[0] == y and r[1] == q for r in persons):
            persons.append([int(y), q, "board_member", day, _NO_DAY])

    ev = pd.DataFrame(events, columns=["provider", "day", "event_type", "amount_sek"])
    ev = ev[ev["day"] <= last].sort_values(["provider", "day", "event_type"], kind="stable")
    pe = pd.DataFrame(persons, columns=["provider", "person", "role", "from", "to"])
    pe["to"] = np.where(pe["to"] > last, _NO_DAY, pe["to"])
    pe = pe.sort_values(["provider", "from", "role", "person"], kind="stable")
    return ev.reset_index(drop=True), pe.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------


def simulate(config: SimulationConfig) -> SimulatedMunicipality:
    """Simulate one municipality: contract tables plus the truth about every invoice."""
    rng = np.random.default_rng(config.seed)
    cal = _calendar(config.start, config.months)
    prov = _make_providers(rng, config, cal)
    cli = _make_clients(rng, config, cal)
    seg = _make_segments(rng, cal, prov, cli)
    stays, in_hosp = _make_hospital_stays(rng, config, cal, cli)
    vis, pools = _generate_visits(rng, cal, prov, cli, seg, in_hosp)
    dims = (cli.n, cal.months)

    # Granted hours per (provider, client, service, month): the largest monthly grant in force.
    regular = ~seg.shadow
    s_from = np.clip(seg.start[regular], 0, cal.n_days - 1)
    s_to = np.clip(seg.end[regular], 0, cal.n_days - 1)
    ok = (seg.end[regular] >= 0) & (seg.start[regular] < cal.n_days)
    m_a, m_b = cal.month_of_day[s_from[ok]], cal.month_of_day[s_to[ok]]
    n_m = m_b - m_a + 1
    rep = np.repeat(np.arange(n_m.size), n_m)
    months = np.repeat(m_a, n_m) + np.arange(rep.size) - np.repeat(np.cumsum(n_m) - n_m, n_m)
    gk = _key(
        seg.provider[regular][ok][rep],
        seg.client[regular][ok][rep],
        seg.service[regular][ok][rep],
        months,
        dims,
    )
    granted = pd.Series(seg.hours[regular][ok][rep]).groupby(gk).max()

    plan = _plan_schemes(rng, config, cal, prov, cli, vis, pools, granted)
    tariffs = _tariffs(rng, cal)
    inv = _build_invoices(rng, config, cal, prov, cli, plan, granted, tariffs)
    aud = _audits(rng, config, cal, inv)
    clients_per_provider = np.bincount(seg.provider, minlength=prov.n)
    events, persons = _register(rng, cal, prov, clients_per_provider)

    # Identifiers: providers numbered in order of approval, the rest in table order.
    prov_order = np.lexsort((np.arange(prov.n), prov.approved))
    prov_ids = np.empty(prov.n, dtype=object)
    prov_ids[prov_order] = _ids("P", prov.n, 4)
    client_ids = _ids("C", cli.n, 5)
    used_staff = np.unique(plan.visits.staff)
    staff_ids_used = _ids("S", used_staff.size, 5)[rng.permutation(used_staff.size)]
    person_ids = _ids("R", int(persons["person"].max()) + 1, 5)[
        rng.permutation(int(persons["person"].max()) + 1)
    ]

    org = set()
    org_numbers = []
    for p in range(prov.n):
        o = _org_number(rng, prov.legal_form[p])
        while o in org:
            o = _org_number(rng, prov.legal_form[p])
        org.add(o)
        org_numbers.append(o)
    providers = pd.DataFrame(
        {
            "provider_id": _str(prov_ids),
            "org_number": _str(org_numbers),
            "legal_form": _str(prov.legal_form),
            "registered_on": _dates(cal, prov.registered),
            "approved_on": _dates(cal, prov.approved),
            "terminated_on": _dates(cal, prov.terminated),
        }
    )
    providers = providers.iloc[prov_order].reset_index(drop=True)

    provider_events = pd.DataFrame(
        {
            "provider_id": _str(prov_ids[events["provider"].to_numpy()]),
            "event_date": _dates(cal, events["day"].to_numpy()),
            "event_type": _str(events["event_type"].to_numpy()),
            "amount_sek": events["amount_sek"].to_numpy(dtype=np.float64),
        }
    )
    provider_persons = pd.DataFrame(
        {
            "provider_id": _str(prov_ids[persons["provider"].to_numpy()]),
            "person_id": _str(person_ids[persons["person"].to_numpy()]),
            "role": _str(persons["role"].to_numpy()),
            "from_date": _dates(cal, persons["from"].to_numpy()),
            "to_date": _dates(cal, persons["to"].to_numpy()),
        }
    )
    clients = pd.DataFrame(
        {
            "client_id": _str(client_ids),
            "birth_year": cli.birth_year.astype(np.int64),
            "district": _str(np.array(_DISTRICT_NAMES, dtype=object)[cli.district]),
            "deceased_on": _dates(cal, cli.death),
        }
    )

    g_order = np.lexsort((seg.start[regular], seg.service[regular], seg.client[regular]))
    g_idx = np.flatnonzero(regular)[g_order]
    grants = pd.DataFrame(
        {
            "grant_id": _str(_ids("G", g_idx.size, 6)),
            "client_id": _str(client_ids[seg.client[g_idx]]),
            "provider_id": _str(prov_ids[seg.provider[g_idx]]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[seg.service[g_idx]]),
            "hours_per_month": seg.hours[g_idx],
            "valid_from": _dates(cal, seg.start[g_idx]),
            "valid_to": _dates(cal, seg.valid_to[g_idx]),
        }
    )
    stays = stays.sort_values(["client", "admit"], kind="stable")
    hospital_stays = pd.DataFrame(
        {
            "client_id": _str(client_ids[stays["client"].to_numpy(dtype=np.int64)]),
            "admitted_on": _dates(cal, stays["admit"].to_numpy(dtype=np.int64)),
            "discharged_on": _dates(cal, stays["discharge"].to_numpy(dtype=np.int64)),
        }
    )

    v = plan.visits
    v_order = np.lexsort((v.client, v.provider, v.start_s))
    v = v.take(v_order)
    start_ns = (cal.d0.astype("datetime64[s]") + v.start_s).astype("datetime64[ns]")
    end_ns = (cal.d0.astype("datetime64[s]") + v.start_s + v.dur_s).astype("datetime64[ns]")
    staff_pos = np.searchsorted(used_staff, v.staff)
    visits = pd.DataFrame(
        {
            "visit_id": _str(_ids("V", v_order.size, 7)),
            "provider_id": _str(prov_ids[v.provider]),
            "client_id": _str(client_ids[v.client]),
            "staff_id": _str(staff_ids_used[staff_pos]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[v.service]),
            "start_at": pd.Series(start_ns),
            "end_at": pd.Series(end_ns),
            "method": _str(np.array(METHODS, dtype=object)[v.method]),
        }
    )

    invoice_ids = _ids("I", len(inv), 7)
    invoices = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids),
            "provider_id": _str(prov_ids[inv["provider"].to_numpy()]),
            "client_id": _str(client_ids[inv["client"].to_numpy()]),
            "period": _str(np.array(cal.periods, dtype=object)[inv["month"].to_numpy()]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[inv["service"].to_numpy()]),
            "billed_hours": inv["billed_hours"].to_numpy(dtype=np.float64),
            "amount_sek": inv["amount_sek"].to_numpy(dtype=np.float64),
            "submitted_on": _dates(cal, inv["submitted"].to_numpy()),
        }
    )
    audit_outcomes = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids[aud["row"].to_numpy(dtype=np.int64)]),
            "reviewed_on": _dates(cal, aud["reviewed"].to_numpy(dtype=np.int64)),
            "outcome": _str(aud["outcome"].to_numpy()),
            "recovered_sek": aud["recovered_sek"].to_numpy(dtype=np.float64),
            "scheme": _str(aud["scheme"].to_numpy()),
            # How the invoice came to be reviewed: by the municipality's rule or at random.
            "selection": _str(aud["selection"].to_numpy()),
        }
    )
    s_code = inv["scheme"].to_numpy()
    truth = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids),
            "irregular": s_code >= 0,
            "scheme": _str(np.where(s_code >= 0, np.array(SCHEMES, dtype=object)[s_code], np.nan)),
            "excess_sek": inv["excess_sek"].to_numpy(dtype=np.float64),
        }
    )
    tables = {
        "providers": providers,
        "provider_events": provider_events,
        "provider_persons": provider_persons,
        "clients": clients,
        "grants": grants,
        "hospital_stays": hospital_stays,
        "visits": visits,
        "invoices": invoices,
        "tariffs": tariffs.astype({"service_type": "str", "year": "int64", "rate_sek": "float64"}),
        "audit_outcomes": audit_outcomes,
    }
    return SimulatedMunicipality(tables=tables, truth=truth)
