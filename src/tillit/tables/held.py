"""Rows quarantined at the door, on the risk list: every row received is accounted for.

A row that broke a rule (an unreadable amount, a negative one, an empty id, a repeated
id, a label other than 1/0/empty) cannot be scored, but it must not be paid unchecked
either: as home care does with held invoices, it is listed with `status` quarantined,
flagged, `why_flagged` quarantined, the rules it broke in words as its reason, and no
risk score or rank. A row belongs to the run of the period its time falls in; a row
whose time cannot be read is listed in every run until it is corrected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.core.risk_list import WHY_QUARANTINE, risk_list_schema
from tillit.data.validate import to_local_time
from tillit.i18n import rule_in, text
from tillit.tables.features import NO_TIME_PERIOD, PERIOD_FORMAT
from tillit.tables.score import ScoredTable
from tillit.tables.spec import TableSpecFile


def quarantined_rows(raw: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The raw rows the door quarantined, indexed by their row number in the table."""
    numbers = np.unique(quarantine["row_number"].to_numpy(dtype=np.int64))
    return raw.reset_index(drop=True).iloc[numbers].set_axis(pd.Index(numbers, name=None))


def held_rows(
    raw_rows: pd.DataFrame,
    quarantine: pd.DataFrame,
    spec: TableSpecFile,
    first: str,
    last: str,
    identity: dict[str, str],
    lang: str = "en",
) -> pd.DataFrame:
    """The quarantined rows of the periods `first..last` as risk-list rows, with their rules.

    Args:
        raw_rows: the quarantined rows as read, indexed by row number (`quarantined_rows`).
        quarantine: the door's records (`row_number`, `rule`), one per broken rule.
        spec: the table spec (id, time and amount columns, the period).
        first: the first period scored (both included); `all` without a time column.
        last: the last period scored.
        identity: model_name, model_version and run_id, copied onto every row.
        lang: the language of the reasons.
    """
    columns = _columns(spec)
    if quarantine.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    rules = quarantine.groupby("row_number")["rule"].agg(lambda r: "; ".join(sorted(set(r))))
    rows = raw_rows.loc[rules.index]
    ids = rows[spec.id].astype("str").where(rows[spec.id].notna(), "").to_numpy(dtype=object)
    reasons = np.array(
        [text("reason.cannot_be_scored", lang, reason=rule_in(lang, r)) for r in rules],
        dtype=object,
    )
    out = pd.DataFrame({spec.id: ids}, index=rules.index)
    if spec.time:
        times = to_local_time(rows[spec.time])
        placed = times.notna().to_numpy()
        periods = times.dt.strftime(PERIOD_FORMAT[spec.period]).to_numpy(dtype=object)
        periods[~placed] = ""
        keep = ~placed | ((periods >= first) & (periods <= last))
        reasons[~placed] = reasons[~placed] + text("table.unplaced", lang)
        out["period"] = periods
        out[spec.time] = times.to_numpy()
    else:
        keep = np.ones(len(rows), dtype=bool)
        out["period"] = NO_TIME_PERIOD
    if spec.amount:
        out[spec.amount] = pd.to_numeric(rows[spec.amount], errors="coerce").astype("float64")
    out["status"] = "quarantined"
    out["risk_score"] = np.nan
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["flagged"] = True
    out["why_flagged"] = WHY_QUARANTINE
    out["reasons"] = reasons
    out["isolation_forest_score"] = np.nan
    out["lightgbm_score"] = np.nan
    for key in ("model_name", "model_version", "run_id"):
        out[key] = identity[key]
    return out.loc[keep, list(columns)].reset_index(drop=True)


def _columns(spec: TableSpecFile) -> dict[str, str]:
    """The risk list's columns and their types, as `score_rows` writes them."""
    columns = {spec.id: "str", "period": "str"}
    if spec.time:
        columns[spec.time] = "datetime64[ns]"
    if spec.amount:
        columns[spec.amount] = "float64"
    columns |= {
        "status": "str",
        "risk_score": "float64",
        "rank": "Int64",
        "flagged": "bool",
        "why_flagged": "str",
        "reasons": "str",
        "isolation_forest_score": "float64",
        "lightgbm_score": "float64",
        "model_name": "str",
        "model_version": "str",
        "run_id": "str",
    }
    return columns


def with_held_rows(scored: ScoredTable, held: pd.DataFrame, spec: TableSpecFile) -> ScoredTable:
    """The scored rows and the held ones in one risk list; counts with received = scored + held.

    Held rows come after the scored rows of their period (no rank); rows whose time
    cannot be read come last.
    """
    parts = [scored.risk_list, held] if len(held) else [scored.risk_list]
    risk_list = pd.concat(parts, ignore_index=True)
    risk_list = risk_list.assign(
        _unplaced=risk_list["period"] == "", _order=np.arange(len(risk_list))
    )
    risk_list = (
        risk_list.sort_values(["_unplaced", "period", "rank", "_order"], na_position="last")
        .drop(columns=["_unplaced", "_order"])
        .reset_index(drop=True)
    )
    risk_list_schema(spec.id).validate(risk_list)
    counts = {
        "received": scored.counts["scored"] + len(held),
        "quarantined": len(held),
        **scored.counts,
        "flagged": scored.counts["flagged"] + len(held),
        "flagged_quarantined": len(held),
    }
    return ScoredTable(risk_list=risk_list, explanations=scored.explanations, counts=counts)
