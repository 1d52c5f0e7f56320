"""The irregular schemes, planned on top of honest care: which invoices, how the hours change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig
from tillit.simulate.common import (
    _APP,
    _DS,
    _ISOLATED_ALLOWED,
    _MANUAL,
    _MORNING,
    _NFC,
    _PC,
    _S,
    _SCHEME_WEIGHT,
    _Calendar,
    _group_pick,
    _weighted_pick,
)
from tillit.simulate.population import _Clients, _Providers
from tillit.simulate.visits import _round_manual, _StaffPools, _Visits


def _key(
    provider: np.ndarray,
    client: np.ndarray,
    service: np.ndarray,
    month: np.ndarray,
    dims: tuple[int, int],
) -> np.ndarray:
    n_clients, n_months = dims
    return ((provider.astype(np.int64) * n_clients + client) * 4 + service) * n_months + month


def _unkey(
    key: np.ndarray, dims: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
