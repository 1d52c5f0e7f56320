"""Tariffs, the invoices providers send, and past reviews of them (audit outcomes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig
from tillit.data.vocabulary import SERVICE_TYPES
from tillit.simulate.common import (
    _BASE_RATE,
    _FALSE_CONFIRM_WORDING,
    _PC,
    _REVIEW_WORDING,
    _S,
    SCHEMES,
    _Calendar,
    _weighted_pick,
)
from tillit.simulate.population import _Clients, _Providers
from tillit.simulate.schemes import _key, _Plan, _unkey


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
    text: list[object] = []
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
