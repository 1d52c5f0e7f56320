"""The provider register: dated events (tax debts, sanctions, ...) and the persons behind each company."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.simulate.common import _NO_DAY, _Calendar
from tillit.simulate.population import _Providers

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
        old_provider = int(prov.phoenix_old[succ])
        t = int(prov.terminated[old_provider])
        reg = int(prov.registered[succ])
        current = [
            r
            for r in persons
            if r[0] == old_provider and r[4] > t and r[2] in ("board_member", "owner", "ceo")
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
    boards: dict[int, list[str]] = {}
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
