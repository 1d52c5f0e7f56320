"""Who is granted what care from which provider, when, and the hospital stays that interrupt it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig
from tillit.simulate.common import (
    _DS,
    _HOURS_MEDIAN,
    _HOURS_RANGE,
    _HOURS_SIGMA,
    _HS,
    _NC,
    _NO_DAY,
    _PC,
    _TAKE_UP,
    _Calendar,
)
from tillit.simulate.population import _Clients, _Providers


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
    succ_of = {int(prov.phoenix_old[p]): int(p) for p in np.flatnonzero(prov.is_successor)}
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
        drawn = rng.lognormal(np.log(_HOURS_MEDIAN[s]), _HOURS_SIGMA[s], cli.n)
        hours0[:, s] = np.round(np.clip(drawn, lo, hi) * 2) / 2
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
        for s in (int(x) for x in np.flatnonzero(has[c])):
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
                h = float(hours0[c, s])
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
