"""Reviewers' decisions on a table's rows become labels, without touching the user's table.

Decisions are checked (unknown rows, bad values, repeated rows, impossible dates are
rejected with the reason) and appended to a decision log beside the table,
`<table>.decisions.parquet`; nothing in it is ever rewritten, a later decision on a
row supersedes an earlier one. Training and scoring read the table with the latest
decision of each row as its label (`not_reviewed` empties it).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tillit.tables.spec import TableSpecFile

DECISIONS = {"confirmed": 1.0, "cleared": 0.0, "not_reviewed": np.nan}
LOG_COLUMNS = ("row_id", "decision", "label", "reviewer", "decided_on", "selection", "logged_at")


def check_decisions(
    decisions: pd.DataFrame,
    known_ids: pd.Series,
    random_checks: set[str],
    spec: TableSpecFile,
    today: dt.date | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accepted decisions (log rows) and rejected ones (row number, id, reason)."""
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
    reasons = pd.Series("", index=decisions.index, dtype=object)
    known = set(known_ids.astype("str"))
    checks = [
        (~ids.isin(known), f"unknown {spec.id}"),
        (~decision.isin(list(DECISIONS)), "decision must be confirmed, cleared or not_reviewed"),
        (reviewer.isna() | (reviewer == ""), "reviewer must not be empty"),
        (decided.isna(), "decided_on must be a date YYYY-MM-DD"),
        (decided.dt.date > today, "decided_on lies in the future"),
        (ids.duplicated(keep=False), f"the same {spec.id} is decided twice in one file"),
    ]
    for bad, why in checks:
        bad = bad.fillna(False).to_numpy(dtype=bool)
        reasons[bad & (reasons == "")] = why
    rejected = pd.DataFrame(
        {
            "row_number": np.flatnonzero(reasons != "") + 1,
            spec.id: ids[reasons != ""].to_numpy(),
            "reason": reasons[reasons != ""].to_numpy(),
        }
    )
    ok = (reasons == "").to_numpy()
    accepted = pd.DataFrame(
        {
            "row_id": ids[ok].to_numpy(),
            "decision": decision[ok].to_numpy(),
            "label": decision[ok].map(DECISIONS).to_numpy(dtype=np.float64),
            "reviewer": reviewer[ok].to_numpy(),
            "decided_on": decided[ok].dt.strftime("%Y-%m-%d").to_numpy(),
            "selection": np.where(ids[ok].isin(random_checks), "random_check", "flagged"),
            "logged_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    return accepted, rejected


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
