"""Evidence texts for hard findings: facts a reviewer can check against the source tables.

Texts name pseudonymous ids (visits, staff, clients, providers, invoices),
dates and amounts, never a person. Long lists stop after a few items and say
how many more there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import FeatureConfig
from tillit.features.catalog import FINDING_CODES

_KEY = ["provider_id", "client_id", "service_type", "m"]


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def listing(items: Iterable[object], total: int) -> str:
    """`a, b, c` plus `and N more` when the list was cut short."""
    shown = [str(item) for item in items]
    text = ", ".join(shown)
    if total > len(shown):
        text += f" and {total - len(shown)} more"
    return text


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


def _text(r: Any, code: str, cap: int, min_minutes: float) -> str:
    """The evidence sentence of one finding on one invoice (`r` is a row namedtuple)."""
    client, provider, service, period = r.client_id, r.provider_id, r.service_type, r.period
    if code == "billing_after_death":
        return (
            f"client {client} died on {_day(r.deceased_known)} (clients.deceased_on), "
            f"before billed period {period} began; the invoice bills "
            f"{r.billed_hours:.2f} h, {r.amount_sek:.2f} SEK"
        )
    if code == "visits_after_death":
        n = int(r.after_death_n)
        return (
            f"client {client} died on {_day(r.deceased_known)} (clients.deceased_on); "
            f"{n} visit(s) of this invoice start after that day: {listing(r.after_death_ids, n)}"
        )
    if code == "visits_during_hospital_stay":
        n = int(r.hospital_n)
        return (
            f"{n} visit(s) registered on full days client {client} was in hospital "
            f"({'; '.join(r.hospital_stays)}, hospital_stays): {listing(r.hospital_ids, n)}"
        )
    if code == "billed_during_hospital_stay":
        days, in_hospital = int(r.days), int(r.hospital_days)
        home = float(r.granted_hours) * max(days - in_hospital, 0) / max(days, 1)
        return (
            f"client {client} was in hospital {in_hospital} full day(s) of {days} in "
            f"{period} (hospital_stays); granted {float(r.granted_hours):.2f} h for the month, "
            f"{home:.2f} h for the {max(days - in_hospital, 0)} day(s) at home; the invoice "
            f"bills {float(r.billed_hours):.2f} h"
        )
    if code == "staff_double_booked":
        n = int(r.double_booked_n)
        pairs = [str(pair) for pair in r.double_booked_pairs]
        text = f"{n} overlapping pair(s) of at least {min_minutes:g} min: " + "; ".join(pairs)
        return text + (f" and {n - len(pairs)} more pairs" if n > len(pairs) else "")
    if code == "service_without_grant":
        text = (
            f"no grant for {service} to client {client} with provider {provider} "
            f"valid in {period} (grants)"
        )
        others = r.grant_providers
        if isinstance(others, list | np.ndarray) and len(others) > 0:
            text += (
                f"; the client's grant for {service} that month is with provider(s) "
                f"{', '.join(str(o) for o in others)}"
            )
        return text
    if code == "amount_mismatch_tariff":
        rate = float(r.rate_sek)
        expected = float(r.billed_hours) * rate
        return (
            f"amount {r.amount_sek:.2f} SEK; billed {r.billed_hours:.2f} h x rate "
            f"{rate:.2f} SEK/h ({service}, {int(r.tariff_year)}) = {expected:.2f} SEK; "
            f"difference {float(r.amount_sek) - expected:+.2f} SEK" + _prevailing_text(r, rate)
        )
    if code == "billing_outside_contract":
        if pd.isna(r.approved_on) and r.provider_known:
            return (
                f"provider {provider} has no approval date (providers.approved_on is empty: "
                f"an applicant) but billed period {period}"
            )
        if pd.notna(r.approved_on) and r.approved_on > r.last_day:
            return (
                f"provider {provider} was approved on {_day(r.approved_on)} "
                f"(providers.approved_on), after billed period {period} ended"
            )
        return (
            f"provider {provider} was terminated on {_day(r.terminated_known)} "
            f"(providers.terminated_on), before billed period {period} began"
        )
    if code == "duplicate_invoice":
        others = [str(x) for x in r.key_invoice_ids if str(x) != r.invoice_id]
        return (
            f"{int(r.n_invoices)} invoices from provider {provider} for client {client}, "
            f"{service}, {period}; the other(s): {listing(others[:cap], len(others))}"
        )
    raise ValueError(f"no evidence text for finding {code!r}")


def _prevailing_text(r: Any, table_rate: float) -> str:
    """The month's prevailing rate, when it differs from the tariffs table (a mid-year change)."""
    rate = getattr(r, "prevailing_rate_sek", float("nan"))
    if pd.isna(rate) or abs(float(rate) - table_rate) < 0.01:
        return ""
    expected = float(r.billed_hours) * float(rate)
    return (
        f"; most invoices of {r.service_type} this month bill {float(rate):.2f} SEK/h, "
        f"which gives {expected:.2f} SEK ({float(r.amount_sek) - expected:+.2f} SEK)"
    )


def findings_table(
    raw: pd.DataFrame,
    flags: pd.DataFrame,
    evidence: Mapping[str, pd.DataFrame],
    config: FeatureConfig,
) -> pd.DataFrame:
    """One row per invoice and finding code, sorted by invoice and code order."""
    rows = _aligned(raw, evidence)
    parts = []
    for order, code in enumerate(FINDING_CODES):
        flagged = rows[flags[code].to_numpy(bool)]
        texts = [
            _text(r, code, config.evidence_max_items, config.double_booking_min_minutes)
            for r in flagged.itertuples(index=False)
        ]
        parts.append(
            pd.DataFrame(
                {
                    "invoice_id": flagged["invoice_id"].astype("str").to_numpy(),
                    "finding": code,
                    "evidence": texts,
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
        }
    ).astype("str")
