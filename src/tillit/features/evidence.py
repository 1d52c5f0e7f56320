"""Evidence for hard findings: facts a reviewer can check against the source tables.

Each finding's evidence is kept as facts (`evidence_facts`: JSON parts, each a
`tillit.i18n` key and its fields: ids, dates, hours, amounts), which the review
words in the report's language, and as English text (`evidence`).

Texts name pseudonymous ids (visits, staff, providers, invoices), dates and amounts,
never a person and no client: the invoice's own is "the client", another one "another
client" (the visit ids find it). Long lists stop after a few items and say
how many more there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tillit import i18n
from tillit.config import FeatureConfig
from tillit.features.catalog import FINDING_CODES

_KEY = ["provider_id", "client_id", "service_type", "m"]


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def listing(items: Iterable[object], total: int) -> str:
    """`a, b, c` plus `and N more` when the list was cut short."""
    shown = [str(item) for item in items]
    return i18n.listing(shown, total, "en")


def _cut(items: Iterable[object], total: int) -> dict[str, Any]:
    """A list cut short, as a field `render_parts` words as `a, b and N more`."""
    return {"items": [str(item) for item in items], "total": int(total)}


# One part of a finding's evidence: a `tillit.i18n` key and its fields.
Part = tuple[str, dict[str, Any]]


def _aligned(raw: pd.DataFrame, evidence: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """`raw` with the evidence of each kind alongside (NaN where a key has none)."""
    out = raw.copy()
    renames = {
        "after_death": {"n": "after_death_n", "visit_ids": "after_death_ids"},
        "hospital": {"n": "hospital_n", "visit_ids": "hospital_ids", "stays": "hospital_stays"},
        "double_booked": {"n": "double_booked_n", "pairs": "double_booked_pairs"},
    }
    for kind, columns in renames.items():
        frame = evidence[kind][[*_KEY, *columns]].rename(columns=columns)
        merged = raw[_KEY].merge(frame, on=_KEY, how="left")
        for column in columns.values():
            out[column] = merged[column].to_numpy()
    return out


def _facts(r: Any, code: str, cap: int, min_minutes: float) -> list[Part]:
    """The evidence of one finding on one invoice as facts (`r` is a row namedtuple)."""
    key = f"evidence.{code}"
    # No client id: the invoice's client is "the client" (the risk list's client_id says which).
    who = {"provider": str(r.provider_id), "period": str(r.period)}
    service = str(r.service_type)
    if code == "billing_after_death":
        died = _day(r.deceased_known)
        money = {"billed_hours": float(r.billed_hours), "amount_sek": float(r.amount_sek)}
        return [(key, {**who, "died": died, **money})]
    if code == "visits_after_death":
        n = int(r.after_death_n)
        visits = _cut(r.after_death_ids, n)
        return [(key, {**who, "died": _day(r.deceased_known), "n": n, "visits": visits})]
    if code == "visits_during_hospital_stay":
        n = int(r.hospital_n)
        stays = {"parts": [_stay(str(stay)) for stay in r.hospital_stays]}
        return [(key, {**who, "n": n, "stays": stays, "visits": _cut(r.hospital_ids, n)})]
    if code == "billed_during_hospital_stay":
        days, in_hospital = int(r.days), int(r.hospital_days)
        granted = float(r.granted_hours)
        fields = {
            **who,
            "hospital_days": in_hospital,
            "days": days,
            "granted_hours": granted,
            "home_hours": granted * max(days - in_hospital, 0) / max(days, 1),
            "home_days": max(days - in_hospital, 0),
            "billed_hours": float(r.billed_hours),
        }
        return [(key, fields)]
    if code == "staff_double_booked":
        n = int(r.double_booked_n)
        pairs = {"parts": [_pair(str(pair)) for pair in r.double_booked_pairs]}
        parts: list[Part] = [(key, {"n": n, "min_minutes": min_minutes, "pairs": pairs})]
        if n > len(pairs["parts"]):
            parts.append((f"{key}.more", {"more": n - len(pairs)}))
        return parts
    if code == "service_without_grant":
        parts = [(key, {**who, "service": service})]
        others = r.grant_providers
        if isinstance(others, list | np.ndarray) and len(others) > 0:
            names = ", ".join(str(o) for o in others)
            parts.append((f"{key}.others", {"service": service, "others": names}))
        return parts
    if code == "amount_mismatch_tariff":
        rate = float(r.rate_sek)
        expected = float(r.billed_hours) * rate
        fields = {
            "amount_sek": float(r.amount_sek),
            "billed_hours": float(r.billed_hours),
            "rate": rate,
            "service": service,
            "tariff_year": int(r.tariff_year),
            "expected": expected,
            "difference": float(r.amount_sek) - expected,
        }
        return [(key, fields), *_prevailing(r, rate)]
    if code == "billing_outside_contract":
        if pd.isna(r.approved_on) and r.provider_known:
            return [(f"{key}.applicant", who)]
        if pd.notna(r.approved_on) and r.approved_on > r.last_day:
            return [(f"{key}.approved_later", {**who, "approved": _day(r.approved_on)})]
        return [(f"{key}.terminated", {**who, "terminated": _day(r.terminated_known)})]
    if code == "duplicate_invoice":
        others = [str(x) for x in r.key_invoice_ids if str(x) != r.invoice_id]
        fields = {
            **who,
            "n": int(r.n_invoices),
            "service": service,
            "others": _cut(others[:cap], len(others)),
        }
        return [(key, fields)]
    raise ValueError(f"no evidence text for finding {code!r}")


# The fields of an overlapping pair of visits, as features/queries.py joins them (by chr(31)).
PAIR_FIELDS = (
    "staff",
    "visit",
    "time",
    "method",
    "other_visit",
    "other_time",
    "method_other",
    "minutes",
)


def _pair(joined: str) -> Part:
    return ("evidence.pair", dict(zip(PAIR_FIELDS, joined.split("\x1f"), strict=True)))


def _stay(joined: str) -> Part:
    """A hospital stay: admitted, `open` (not discharged by the month's end) or `closed`, until."""
    admitted, state, until = joined.split("\x1f")
    return (f"evidence.stay.{state}", {"admitted": admitted, "until": until})


def _prevailing(r: Any, table_rate: float) -> list[Part]:
    """The month's prevailing rate, when it differs from the tariffs table (a mid-year change)."""
    rate = getattr(r, "prevailing_rate_sek", float("nan"))
    if pd.isna(rate) or abs(float(rate) - table_rate) < 0.01:
        return []
    expected = float(r.billed_hours) * float(rate)
    fields = {
        "service": str(r.service_type),
        "rate": float(rate),
        "expected": expected,
        "difference": float(r.amount_sek) - expected,
    }
    return [("evidence.amount_mismatch_tariff.prevailing", fields)]


def findings_table(
    raw: pd.DataFrame,
    flags: pd.DataFrame,
    evidence: Mapping[str, pd.DataFrame],
    config: FeatureConfig,
) -> pd.DataFrame:
    """One row per invoice and finding code, sorted by invoice and code order."""
    rows = _aligned(raw, evidence)
    # The rows of every finding read once (itertuples reads each of ~100 columns per call).
    any_flag = flags[list(FINDING_CODES)].to_numpy(bool).any(axis=1)
    records = list(rows[any_flag].itertuples(index=False))
    position = np.cumsum(any_flag) - 1
    parts = []
    for order, code in enumerate(FINDING_CODES):
        mask = flags[code].to_numpy(bool)
        flagged = rows[mask]
        facts = [
            _facts(records[i], code, config.evidence_max_items, config.double_booking_min_minutes)
            for i in position[mask]
        ]
        parts.append(
            pd.DataFrame(
                {
                    "invoice_id": flagged["invoice_id"].astype("str").to_numpy(),
                    "finding": code,
                    "evidence": [i18n.render_parts(parts, "en") for parts in facts],
                    "evidence_facts": [json.dumps(parts, ensure_ascii=False) for parts in facts],
                    "order": order,
                }
            )
        )
    table = pd.concat(parts, ignore_index=True).sort_values(["invoice_id", "order"], kind="stable")
    return pd.DataFrame(
        {
            "invoice_id": table["invoice_id"].astype("str").to_numpy(),
            "finding": table["finding"].astype("str").to_numpy(),
            "evidence": table["evidence"].astype("str").to_numpy(),
            "evidence_facts": table["evidence_facts"].astype("str").to_numpy(),
        }
    ).astype("str")
