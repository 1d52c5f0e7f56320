"""Providers (honest, fraudulent, phoenix pairs) and the clients who choose them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tillit.config import SimulationConfig
from tillit.data.vocabulary import LEGAL_FORMS
from tillit.simulate.common import _NO_DAY, _S, SCHEMES, _Calendar, _weighted_pick


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
    size_weight = rng.lognormal(0.0, cfg.provider_size_sigma, n)
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
    new = (
        rng.choice(order_small_first[: n // 2], n_new, replace=False)
        if n_new
        else np.array([], dtype=np.int64)
    )
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
