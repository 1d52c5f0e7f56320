"""Reviewers' decisions on a table's rows become labels, without touching the user's table.

Decisions are checked (unknown rows, bad values, repeated rows, impossible dates are
rejected with the reason) and appended to a decision log beside the table,
`<table>.decisions.parquet`; nothing in it is ever rewritten, a later decision on a
row supersedes an earlier one. Training and scoring read the table with the latest
decision of each row as its label (`not_reviewed` empties it).

The log is the core's decision log (core/feedback.py), with home care's vocabulary,
columns after the id (`LOG_TAIL`) and controls: a decision already in the log is
skipped, a decisions file applied before is refused, a row's selection is read from
the risk list the same way (flagged, random check or other), and a `cleared` on a row
whose label stands at 1 (confirmed in the log or in the table itself) is a reversal
that needs a `reversal_reason`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tillit.core.feedback import (
    DECISIONS,
    LOG_TAIL,
    REVERSAL_REASON,
    decision_keys,
    repeated,
    reversal_needed,
    selection,
)
from tillit.tables.spec import TableSpecFile

# One vocabulary with the home-care feedback (`core.feedback.DECISIONS`), as labels.
LABELS: dict[str, float] = dict(zip(DECISIONS, (1.0, 0.0, np.nan), strict=True))
# The row's id, the table's own column (the label the decision sets), then every log's.
LOG_COLUMNS = ("row_id", "decision", "label", "reviewer", "decided_on", *LOG_TAIL)


def log_keys(log: pd.DataFrame) -> pd.Series:
    """The (row, decision, decided_on, reviewer) key of each decision in the log."""
    return decision_keys(log["row_id"], log["decision"], log["decided_on"], log["reviewer"])


def check_decisions(
    decisions: pd.DataFrame,
    known_ids: pd.Series,
    risk_list: pd.DataFrame | None,
    spec: TableSpecFile,
    today: dt.date | None = None,
    recorded: pd.DataFrame | None = None,
    confirmed_ids: set[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Accepted decisions (log rows), rejected ones (row number, id, reason), repeats skipped.

    `risk_list` is the verified list the decisions answer (None: selection `other`);
    `recorded` is the decision log so far; `confirmed_ids` the rows whose label stands
    at 1 now. The log's order decides which decision holds, so any `cleared` on such a
    row supersedes it and is a reversal.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    required = [spec.id, "decision", "reviewer", "decided_on"]
    missing = [c for c in required if c not in decisions.columns]
    if missing:
        from tillit.errors import ContractError

        raise ContractError(f"the decisions file lacks columns: {', '.join(missing)}")
    ids = decisions[spec.id].astype("str").str.strip()
    decision = decisions["decision"].astype("str").str.strip().str.lower()
    decided = pd.to_datetime(decisions["decided_on"], format="%Y-%m-%d", errors="coerce")
    reviewer = decisions["reviewer"].astype("str").str.strip().where(decisions["reviewer"].notna())
    if REVERSAL_REASON in decisions:
        why_reversed = decisions[REVERSAL_REASON].astype("str").str.strip()
        why_reversed = why_reversed.where(decisions[REVERSAL_REASON].notna() & (why_reversed != ""))
    else:
        why_reversed = pd.Series(pd.NA, index=decisions.index, dtype="object")
    keys = decision_keys(ids, decision, decided, reviewer)
    skip = repeated(keys, None if recorded is None or recorded.empty else log_keys(recorded))
    skip = skip.to_numpy(dtype=bool)
    reasons = pd.Series("", index=decisions.index, dtype=object)
    known = set(known_ids.astype("str"))
    since = pd.Series(pd.Timestamp.min, index=sorted(confirmed_ids or ()), dtype="datetime64[ns]")
    reverses = reversal_needed(decision, decided, ids.map(since)).to_numpy(dtype=bool)
    live = ids[~skip]
    checks = [
        (~ids.isin(known), f"unknown {spec.id}"),
        (~decision.isin(list(LABELS)), "decision must be confirmed, cleared or not_reviewed"),
        (reviewer.isna() | (reviewer == ""), "reviewer must not be empty"),
        (decided.isna(), "decided_on must be a date YYYY-MM-DD"),
        (decided.dt.date > today, "decided_on lies in the future"),
        (ids.isin(live[live.duplicated()]), f"the same {spec.id} is decided twice in one file"),
        (
            pd.Series(reverses, index=decisions.index) & why_reversed.isna(),
            f"cleared reverses a confirmed decision (label 1): a reversal needs a "
            f"{REVERSAL_REASON}",
        ),
    ]
    for bad, why in checks:
        bad = bad.fillna(False).to_numpy(dtype=bool) & ~skip
        reasons[bad & (reasons == "")] = why
    rejected = pd.DataFrame(
        {
            "row_number": np.flatnonzero(reasons != "") + 1,
            spec.id: ids[reasons != ""].to_numpy(),
            "reason": reasons[reasons != ""].to_numpy(),
        }
    )
    ok = (reasons == "").to_numpy() & ~skip
    accepted = pd.DataFrame(
        {
            "row_id": ids[ok].to_numpy(),
            "decision": decision[ok].to_numpy(),
            "label": decision[ok].map(LABELS).to_numpy(dtype=np.float64),
            "reviewer": reviewer[ok].to_numpy(),
            "decided_on": decided[ok].dt.strftime("%Y-%m-%d").to_numpy(),
            "selection": selection(ids[ok], risk_list, spec.id).to_numpy(),
            "recorded_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reversal": reverses[ok],
            REVERSAL_REASON: why_reversed[ok].to_numpy(dtype=object),
        }
    )
    return accepted, rejected, int(skip.sum())


def apply_decisions(table: pd.DataFrame, log: pd.DataFrame, spec: TableSpecFile) -> pd.DataFrame:
    """The table with each decided row's label set to its latest decision (log order)."""
    assert spec.label is not None
    latest = log.drop_duplicates("row_id", keep="last").set_index("row_id")["label"]
    ids = table[spec.id].astype("str")
    decided = ids.isin(latest.index).to_numpy()
    if not decided.any():
        return table
    out = table.copy()
    labels = out[spec.label].to_numpy(dtype=np.float64).copy()
    labels[decided] = ids[decided].map(latest).to_numpy(dtype=np.float64)
    out[spec.label] = labels
    return out
