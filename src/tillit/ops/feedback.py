"""Auditors' decisions back into the data: validated, append-only, selection kept.

A decision on an invoice becomes a new audit_outcomes row (confirmed or cleared);
`not_reviewed` is kept in the decision log only. Earlier rows are never changed:
a later decision on the same invoice supersedes an earlier one because labels
use the latest `reviewed_on`, and both stay on record. Each decision is marked
with how the invoice was picked for review, from the scoring run's risk list:
decisions on random checks (drawn by lot outside the list) are the unbiased
sample of what the list misses.

The decision log and its controls (the vocabulary, repeats skipped, reversals that
need a reason, how a row was picked, a decisions file applied once, the risk list
checked against its run) are the core's (core/feedback.py), shared with table mode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tillit.core.feedback import (
    _KEY_SEPARATOR,
    DECISIONS,
    LOG_TAIL,
    REVERSAL_REASON,
    decision_keys,
    reversal_needed,
    selection,
)
from tillit.data.contract import MAX_INVOICE_AMOUNT_SEK
from tillit.data.validate import rule_text

DECISION_COLUMNS = ("invoice_id", "decision", "recovered_sek", "reviewer", "decided_on", "note")
LOG_COLUMNS = (*DECISION_COLUMNS, *LOG_TAIL)


class Decisions(pa.DataFrameModel):
    """One auditor decision per row, as handed back after review."""

    invoice_id: Series[str]
    decision: Series[str] = pa.Field(isin=DECISIONS)
    recovered_sek: Series[float] = pa.Field(nullable=True, ge=0, le=MAX_INVOICE_AMOUNT_SEK)
    reviewer: Series[str]
    decided_on: Series[pd.Timestamp]
    note: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = False


@dataclass(frozen=True)
class FeedbackResult:
    """New audit_outcomes rows, the decision log rows, the rejected decisions and the repeats.

    `skipped` holds the row numbers of decisions already on record (or repeating an
    earlier row of the same file): neither accepted nor rejected, appended nowhere.
    """

    new_outcomes: pd.DataFrame
    log_rows: pd.DataFrame
    quarantine: pd.DataFrame
    skipped: tuple[int, ...] = ()


def _typed(decisions: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    problems: list[tuple[int, str]] = []
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns and c != "note"]
    if missing:
        from tillit.errors import ContractError

        raise ContractError(f"decisions file: missing column(s) {', '.join(missing)}")
    frame = decisions.reset_index(drop=True).copy()
    for optional in ("note", REVERSAL_REASON):
        if optional not in frame:
            frame[optional] = pd.Series(pd.NA, index=frame.index, dtype="str")
    typed = pd.DataFrame(index=frame.index)
    for column in ("invoice_id", "decision", "reviewer", "note", REVERSAL_REASON):
        text = frame[column].astype("str").where(frame[column].notna())
        typed[column] = text.where(text.str.strip() != "")
    typed["recovered_sek"] = pd.to_numeric(frame["recovered_sek"], errors="coerce").astype(
        "float64"
    )
    bad_money = frame["recovered_sek"].notna() & typed["recovered_sek"].isna()
    bad_money &= frame["recovered_sek"].astype("str").str.strip() != ""
    problems += [(i, "recovered_sek is not a number") for i in frame.index[bad_money]]
    if pd.api.types.is_datetime64_any_dtype(frame["decided_on"]):
        typed["decided_on"] = frame["decided_on"].astype("datetime64[ns]")
    else:
        typed["decided_on"] = pd.to_datetime(
            frame["decided_on"], format="%Y-%m-%d", errors="coerce"
        ).astype("datetime64[ns]")
    bad_date = frame["decided_on"].notna() & typed["decided_on"].isna()
    problems += [(i, "decided_on is not a date YYYY-MM-DD") for i in frame.index[bad_date]]
    return typed, problems


def _money_text(values: pd.Series) -> pd.Series:
    return values.astype("float64").map(lambda v: "" if pd.isna(v) else f"{v:.2f}")


def _repeats(
    typed: pd.DataFrame, recorded: pd.DataFrame | None
) -> tuple[pd.Series, list[tuple[int, str]]]:
    """Rows to skip as repeats, and rows that repeat a recorded key with other money.

    Within a file only an exact repeat (same key and money) is skipped; the same
    invoice twice with different content stays a rejection (which row holds is unknowable).
    """
    keys = decision_keys(
        typed["invoice_id"], typed["decision"], typed["decided_on"], typed["reviewer"]
    )
    money = _money_text(typed["recovered_sek"])
    recorded_keys: pd.Series | None = None
    problems: list[tuple[int, str]] = []
    in_file = (keys + _KEY_SEPARATOR + money).duplicated(keep="first")
    if recorded is not None and len(recorded):
        recorded_keys = decision_keys(
            recorded["invoice_id"],
            recorded["decision"],
            recorded["decided_on"],
            recorded["reviewer"],
        )
        recorded_money = dict(
            zip(recorded_keys, _money_text(pd.to_numeric(recorded["recovered_sek"])), strict=True)
        )
        on_record = keys.isin(set(recorded_keys))
        other_money = on_record & (keys.map(recorded_money) != money)
        problems += [
            (
                i,
                f"already on record with recovered_sek {recorded_money[keys[i]] or 'empty'}: "
                "a correction is a new decision with its own decided_on",
            )
            for i in typed.index[other_money]
        ]
        return (on_record & ~other_money) | (in_file & ~on_record), problems
    return in_file, problems


def standing_confirmations(outcomes: pd.DataFrame | None) -> dict[str, pd.Timestamp]:
    """Invoice -> date of its standing decision, for invoices whose standing decision is confirmed.

    The standing decision is the one labels use: the latest `reviewed_on`, and on a
    tie the row appended last (as `modelling.train.review_labels` reads it).
    """
    if outcomes is None or outcomes.empty:
        return {}
    ordered = outcomes.reset_index(drop=True).reset_index(names="row")
    latest = ordered.sort_values(["invoice_id", "reviewed_on", "row"]).drop_duplicates(
        "invoice_id", keep="last"
    )
    confirmed = latest[latest["outcome"] == "confirmed"]
    return dict(
        zip(
            confirmed["invoice_id"].astype("str"),
            pd.to_datetime(confirmed["reviewed_on"]),
            strict=True,
        )
    )


def apply_decisions(
    tables: Mapping[str, pd.DataFrame],
    decisions: pd.DataFrame,
    risk_list: pd.DataFrame | None,
    today: dt.date,
    recorded_utc: str,
    recorded: pd.DataFrame | None = None,
) -> FeedbackResult:
    """Check decisions against the data and turn the good ones into outcomes.

    Rejected, with the reason: an unknown invoice, a bad value, the same invoice
    twice in one file (which one holds is unknowable), a decision dated in the
    future or before the invoice was submitted, money recovered on a cleared invoice,
    a `cleared` that reverses a standing `confirmed` without a `reversal_reason`.
    Skipped (appended nowhere): a decision already in `recorded` (the decision log)
    or repeating an earlier row of this file, by (invoice, decision, decided_on, reviewer).
    """
    typed, problems = _typed(decisions)
    skip, repeat_problems = _repeats(typed, recorded)
    problems += repeat_problems
    skipped = tuple(int(i) for i in typed.index[skip])
    problems = [(row, reason) for row, reason in problems if row not in skipped]
    unparsed = {(row, reason.split(" ", 1)[0]) for row, reason in problems}
    typed = typed.loc[~skip]
    try:
        Decisions.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases[err.failure_cases["index"].notna()]
        for row, column, check in cases[["index", "column", "check"]].itertuples(index=False):
            if check == "not_nullable" and (int(row), str(column)) in unparsed:
                continue  # already reported as not parseable, not as empty
            problems.append((int(row), rule_text(str(column), str(check))))
    invoices = tables["invoices"].set_index("invoice_id")
    known = typed["invoice_id"].isin(invoices.index)
    problems += [
        (i, "invoice_id is not an invoice in the data")
        for i in typed.index[typed["invoice_id"].notna() & ~known]
    ]
    twice = typed["invoice_id"].notna() & typed.duplicated("invoice_id", keep=False)
    problems += [(i, "the same invoice is decided twice in this file") for i in typed.index[twice]]
    future = typed["decided_on"] > pd.Timestamp(today)
    problems += [(i, "decided_on is in the future") for i in typed.index[future]]
    submitted = typed["invoice_id"].map(invoices["submitted_on"]) if len(invoices) else None
    if submitted is not None:
        early = known & (typed["decided_on"] < submitted)
        problems += [
            (i, "decided_on is before the invoice was submitted") for i in typed.index[early]
        ]
    money_on_cleared = (typed["decision"] == "cleared") & (typed["recovered_sek"].fillna(0) > 0)
    problems += [(i, "money recovered on a cleared invoice") for i in typed.index[money_on_cleared]]
    standing = standing_confirmations(tables.get("audit_outcomes"))
    confirmed_since = pd.to_datetime(typed["invoice_id"].map(standing))
    reverses = reversal_needed(typed["decision"], typed["decided_on"], confirmed_since)
    problems += [
        (
            i,
            f"cleared reverses the confirmed decision of {confirmed_since[i]:%Y-%m-%d}: "
            f"a reversal needs a {REVERSAL_REASON}",
        )
        for i in typed.index[reverses & typed[REVERSAL_REASON].isna()]
    ]

    bad_rows = sorted({row for row, _ in problems})
    original = decisions.reset_index(drop=True)
    quarantine = (
        pd.DataFrame(
            {
                "row_number": [row for row, _ in problems],
                "invoice_id": [original.loc[row, "invoice_id"] for row, _ in problems],
                "reason": [reason for _, reason in problems],
            }
        )
        .sort_values(["row_number", "reason"], kind="stable")
        .reset_index(drop=True)
    )
    good = typed.drop(index=bad_rows)
    good = good.assign(
        selection=selection(good["invoice_id"], risk_list, "invoice_id"),
        recorded_utc=recorded_utc,
        reversal=reverses.reindex(good.index).astype(bool),
    )
    # A reason given where nothing is reversed is kept as written: it is the auditor's note.
    reviewed = good[good["decision"] != "not_reviewed"]
    new_outcomes = pd.DataFrame(
        {
            "invoice_id": reviewed["invoice_id"].astype("str"),
            "reviewed_on": reviewed["decided_on"],
            "outcome": reviewed["decision"].astype("str"),
            "recovered_sek": reviewed["recovered_sek"].where(reviewed["decision"] == "confirmed"),
            # The reviewer's free-text note may name people: it stays in the decision
            # log beside the data and never reaches the training labels.
            "scheme": pd.Series(pd.NA, index=reviewed.index, dtype="str"),
            "selection": reviewed["selection"].astype("str"),
        }
    ).reset_index(drop=True)
    return FeedbackResult(
        new_outcomes=new_outcomes,
        log_rows=good.loc[:, list(LOG_COLUMNS)].reset_index(drop=True),
        quarantine=quarantine,
        skipped=skipped,
    )


def append_outcomes(existing: pd.DataFrame | None, new_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Earlier rows unchanged and first, the new ones after: the table only grows."""
    if existing is None or existing.empty:
        return new_outcomes.reset_index(drop=True)
    existing = existing.copy()
    if "selection" not in existing:
        existing["selection"] = pd.Series(pd.NA, index=existing.index, dtype="str")
    return pd.concat([existing, new_outcomes], ignore_index=True)
