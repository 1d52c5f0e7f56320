"""Which invoices lost evidence to the quarantine, and which month a malformed period means.

A visit, grant, client or provider row quarantined at validation is missing from
the features, so an invoice it belonged to may read as "no registered visit" when
the visit was only unreadable. Such invoices are still scored, but marked, with
the rules that hit their evidence. Pure functions: frames in, frames out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from tillit.data.vocabulary import PERIOD_PATTERN, PERIOD_RE

LINEAGE_COLUMNS = ("invoice_id", "evidence_incomplete", "quarantine_rules")

# Which invoices a quarantined row of each table is evidence for: the columns it shares
# with the invoice (all must match where the row has a value), and the column whose
# month must be the invoice's period (where it can be read).
_EVIDENCE: dict[str, tuple[tuple[str, ...], str | None]] = {
    "visits": (("provider_id", "client_id"), "start_at"),
    "grants": (("client_id",), None),
    "hospital_stays": (("client_id",), None),
    "clients": (("client_id",), None),
    "providers": (("provider_id",), None),
    "provider_events": (("provider_id",), None),
    "provider_persons": (("provider_id",), None),
    "tariffs": (("service_type",), None),
}

_MONTHS = {
    **{
        name: number
        for number, names in enumerate(
            (
                ("jan", "januari", "january"),
                ("feb", "februari", "february"),
                ("mar", "mars", "march"),
                ("apr", "april"),
                ("maj", "may"),
                ("jun", "juni", "june"),
                ("jul", "juli", "july"),
                ("aug", "augusti", "august"),
                ("sep", "sept", "september"),
                ("okt", "oct", "oktober", "october"),
                ("nov", "november"),
                ("dec", "december"),
            ),
            start=1,
        )
        for name in names
    }
}


def place_period(value: object) -> str | None:
    """The `YYYY-MM` a period as written plausibly means, or None when it cannot be placed.

    `2025-06`, `2025-6`, `2025/06`, `202506`, `2025-06-01`, `06/2025`, `juni 2025`, `June 2025`.
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip().lower()
    if PERIOD_RE.match(text):
        return text
    patterns = (
        (r"(\d{4})\s*[-/.]\s*(\d{1,2})(?:[-/.]\d{1,2})?(?:[ t].*)?", (1, 2)),
        (r"(\d{4})(\d{2})", (1, 2)),
        (r"(\d{1,2})\s*[-/.]\s*(\d{4})", (2, 1)),
    )
    for pattern, (year_group, month_group) in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            year, month = int(match.group(year_group)), int(match.group(month_group))
            return f"{year:04d}-{month:02d}" if 1 <= month <= 12 else None
    match = re.fullmatch(r"([a-zåäö]+)\.?\s+(\d{4})", text)
    if match and match.group(1) in _MONTHS:
        return f"{int(match.group(2)):04d}-{_MONTHS[match.group(1)]:02d}"
    return None


def incomplete_evidence(
    raw: Mapping[str, pd.DataFrame], quarantine: pd.DataFrame, invoices: pd.DataFrame
) -> pd.DataFrame:
    """For each invoice, whether quarantined rows of another table were its evidence, and why.

    Args:
        raw: the tables as read (row numbers in the quarantine refer to these).
        quarantine: the validation records (table, row_number, rule, ...).
        invoices: the invoices to mark: invoice_id, provider_id, client_id, service_type, period.

    Returns:
        One row per invoice: invoice_id, evidence_incomplete, quarantine_rules
        (`table: rule` pairs, sorted, joined by "; "; empty when complete).
    """
    marks = invoices[["invoice_id", "provider_id", "client_id", "service_type", "period"]].copy()
    for column in marks.columns:
        marks[column] = marks[column].astype("str")
    pairs = []
    for table, (keys, month_column) in _EVIDENCE.items():
        records = quarantine[quarantine["table"] == table]
        if records.empty or table not in raw:
            continue
        rules = records[["row_number", "rule"]].drop_duplicates()
        rows = raw[table].reset_index(drop=True)
        evidence = pd.DataFrame({"row_number": rules["row_number"].unique()})
        picked = rows.loc[evidence["row_number"]]
        for key in keys:
            text = picked[key].astype("str").str.strip().where(picked[key].notna())
            evidence[key] = text.where(text != "").to_numpy()
        if month_column is not None:
            evidence["period"] = [_month_of(v) for v in picked[month_column]]
        columns = [*keys, "period"] if month_column is not None else list(keys)
        # A row matches on every column it has a value in (a broken key column matches any).
        for present, group in evidence.groupby(
            [evidence[c].notna() for c in columns], sort=True, dropna=False
        ):
            on = [c for c, has in zip(columns, _as_tuple(present), strict=True) if has]
            if not on:
                continue
            joined = group.merge(marks, on=on)[["row_number", "invoice_id"]]
            pairs.append(joined.merge(rules, on="row_number").assign(table=table))
    if pairs:
        hits = pd.concat(pairs, ignore_index=True)
        hits = (
            (hits["table"] + ": " + hits["rule"])
            .groupby(hits["invoice_id"])
            .agg(lambda r: "; ".join(sorted(set(r))))
        )
    else:
        hits = pd.Series(dtype="str")
    rules_text = marks["invoice_id"].map(hits).fillna("").astype("str")
    return pd.DataFrame(
        {
            "invoice_id": marks["invoice_id"].to_numpy(),
            "evidence_incomplete": (rules_text != "").to_numpy(),
            "quarantine_rules": rules_text.to_numpy(),
        }
    ).astype({"invoice_id": "str", "evidence_incomplete": "bool", "quarantine_rules": "str"})


def _as_tuple(value: object) -> tuple[bool, ...]:
    return tuple(bool(v) for v in value) if isinstance(value, tuple) else (bool(value),)


def _month_of(value: object) -> str | None:
    """The `YYYY-MM` of a timestamp as written, or None when it cannot be read."""
    if value is None or not pd.notna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m")
    text = str(value).strip()
    return text[:7] if PERIOD_RE.match(text[:7]) else None


def placed_periods(invoices: pd.DataFrame) -> pd.Series:
    """The month each raw invoice plausibly belongs to (`2025-6` -> `2025-06`), None if unplaceable."""
    text = invoices["period"].astype("str").where(invoices["period"].notna())
    well_formed = text.str.fullmatch(PERIOD_PATTERN).fillna(False).astype(bool)
    placed = text.where(well_formed)
    odd = ~well_formed
    if odd.any():
        placed[odd] = [place_period(value) for value in invoices.loc[odd, "period"]]
    return placed


def received_in(invoices: pd.DataFrame, period: str) -> pd.Series:
    """Which raw invoices a month's run must account for: its own, however the period is written,
    and those whose period cannot be placed in any month (so they are never lost)."""
    placed = placed_periods(invoices)
    return (placed == period) | placed.isna()
