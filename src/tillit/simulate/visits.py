"""Registered visits: shifts, routes and staff pools, as a visit-registration system logs them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tillit.simulate.care import _Segments
from tillit.simulate.common import (
    _APP,
    _EVENING,
    _LUNCH,
    _MANUAL,
    _MORNING,
    _NFC,
    _SHIFT_CAP_S,
    _SHIFT_CUM_PROBS,
    _SHIFT_CYCLE,
    _SHIFT_CYCLE_LEN,
    _SHIFT_CYCLE_POS,
    _SHIFT_JITTER_S,
    _SHIFT_START_S,
    _VISIT_MEDIAN_MIN,
    _VISIT_RANGE_MIN,
    _VISIT_SIGMA,
    _Calendar,
)
from tillit.simulate.population import _Clients, _Providers


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
