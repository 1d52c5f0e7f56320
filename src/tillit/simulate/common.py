"""What every part of the simulated world shares: its vocabulary, rates, calendar and small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class SimulatedMunicipality:
    """The contract tables of one simulated municipality and the truth behind its invoices.

    `truth` has one row per invoice: `irregular` (bool), `scheme` (one of SCHEMES, NaN when
    regular) and `excess_sek` (money billed that was not owed, 0 when regular).
    """

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    # The drawn noise levels of a messy profile (empty for tidy).
    parameters: dict[str, float] = field(default_factory=dict)
    # One row per provider and month billed (and per applicant): see simulate/provider_truth.py.
    provider_truth: pd.DataFrame | None = None
    # Messy profile only: which honest-but-odd pattern touched which regular invoice, one row
    # per (invoice_id, pattern); see simulate/honest_odd.py. None for tidy.
    honest_patterns: pd.DataFrame | None = None
    # Who is who behind provider and person ids (contract v1.3): see simulate/contacts.py.
    link_truth: pd.DataFrame | None = None


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
