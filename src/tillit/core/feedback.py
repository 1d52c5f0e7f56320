"""The reviewers' decision log, one for every stream: its vocabulary, its columns, its controls.

A decision on a row (an invoice, a table's row) is `confirmed`, `cleared` or
`not_reviewed`; each accepted decision is appended to a decision log that only grows
(`append_decision_log`), with how the row reached a reviewer (`selection`: flagged, a
random check drawn outside the list, or other), when it was recorded, whether it
reverses a confirmed decision and why, and which decisions file and risk list it came
from. The controls hold in every stream:

- `decision_keys` / `repeated`: the same (id, decision, decided_on, reviewer) is
  never appended twice, whatever the bytes of the file that carries it;
- `refuse_applied_file`: a decisions file already applied is refused as a whole;
- `reversal_needed`: a `cleared` that would supersede a `confirmed` decision is a
  reversal; it needs a `reversal_reason` and is marked as one in the log;
- `verify_risk_list`: the risk list that says which rows were random checks must be
  one a recorded scoring run wrote, byte for byte.

A stream's log is its id column, its own columns (home care: money recovered and a
note; table mode: the label), then `LOG_TAIL`. `read_decision_log` reads logs written
before the columns were one (table mode's `logged_at` is `recorded_utc` now).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tillit.errors import TillitError

DECISIONS = ("confirmed", "cleared", "not_reviewed")
# Optional in the decisions file: why a confirmed decision is reversed (required then).
REVERSAL_REASON = "reversal_reason"
SELECTIONS = ("flagged", "random_check", "other")
# Every log's columns after the stream's own: how the row was picked, when, the reversal.
LOG_TAIL = ("selection", "recorded_utc", "reversal", REVERSAL_REASON)
# And where each decision came from (added by the job that appends).
PROVENANCE_COLUMNS = ("decisions_sha256", "risk_list_manifest_sha256")
# Older table-mode logs named `recorded_utc` so.
_OLD_NAMES = {"logged_at": "recorded_utc"}
_KEY_SEPARATOR = "\x1f"  # a control character: cannot occur in a cell an auditor typed


def decision_keys(
    ids: pd.Series, decision: pd.Series, decided_on: pd.Series, reviewer: pd.Series
) -> pd.Series:
    """One text key per decision: (id, decision, decided_on as YYYY-MM-DD, reviewer).

    Normalised (stripped, decision lower-cased, dates as ISO days) so that a file
    re-saved by a spreadsheet, with rows reordered or a space added, gives the same keys.
    """
    days = pd.to_datetime(decided_on, errors="coerce").dt.strftime("%Y-%m-%d").fillna("")

    def text(values: pd.Series) -> pd.Series:
        return values.astype("str").where(values.notna(), "").str.strip()

    return (
        text(ids)
        + _KEY_SEPARATOR
        + text(decision).str.lower()
        + _KEY_SEPARATOR
        + days.astype("str")
        + _KEY_SEPARATOR
        + text(reviewer)
    )


def repeated(keys: pd.Series, recorded: pd.Series | None) -> pd.Series:
    """Which decisions are already on record, or repeat an earlier row of the same file.

    The first of several equal rows in a file counts as new (unless it is on record).
    """
    seen = set() if recorded is None else set(recorded.astype("str"))
    return keys.isin(seen) | keys.duplicated(keep="first")


def reversal_needed(
    new_decision: pd.Series, new_date: pd.Series, confirmed_since: pd.Series
) -> pd.Series:
    """Which new decisions are `cleared` on an id whose standing decision is `confirmed`.

    `confirmed_since` maps each id of the new decisions to the date of the standing
    confirmed decision (NaT where the standing decision is not a confirmation); a
    cleared dated on or after it would supersede it, so it is a reversal. A cleared
    dated before it changes no label and is no reversal.
    """
    since = pd.to_datetime(confirmed_since, errors="coerce")
    return (new_decision == "cleared") & since.notna() & (new_date >= since)


def selection(ids: pd.Series, risk_list: pd.DataFrame | None, id_column: str) -> pd.Series:
    """How each row reached a reviewer (`SELECTIONS`), read from the risk list that listed it.

    Without a risk list, `other`: nothing shows the row was flagged or drawn.
    """
    if risk_list is None or not {id_column, "why_flagged"} <= set(risk_list.columns):
        return pd.Series("other", index=ids.index, dtype="str")
    listed = risk_list.assign(_id=risk_list[id_column].astype("str"))
    listed = listed.drop_duplicates("_id", keep="first").set_index("_id")
    reason = ids.astype("str").map(listed["why_flagged"].astype("str")).fillna("")
    flagged = listed["flagged"] if "flagged" in listed else listed["why_flagged"] != ""
    if flagged.dtype != bool:  # read back from a CSV
        flagged = flagged.astype("str").str.lower().isin(["true", "1"])
    was_flagged = ids.astype("str").map(flagged).fillna(False).astype(bool)
    out = pd.Series("other", index=ids.index, dtype="str")
    out[was_flagged] = "flagged"
    # The random check draw only picks unflagged rows, so "random check" stands alone.
    # A "list check" was drawn within the capacity list and stays "flagged": the
    # contract's selections have no value for it, and its stratum is the list.
    out[reason.str.contains("random check", regex=False)] = "random_check"
    return out


@dataclass(frozen=True)
class FeedbackOutcome:
    """What a feedback run did, in any stream: decisions read, accepted (on random checks),
    rejected with reasons (`rejected_rows`, a row each with its reasons), repeats skipped,
    reversals, and the files appended to (a stream whose labels live in its data appends
    outcomes there too: home care's audit_outcomes)."""

    decisions: int
    accepted: int
    random_checks: int
    rejected_rows: pd.DataFrame
    log_file: Path
    skipped: int = 0
    reversals: int = 0
    outcomes_appended: int = 0
    outcomes_file: Path | None = None

    @property
    def rejected(self) -> int:
        """How many decisions were rejected (a decision may have several reasons)."""
        if "row_number" in self.rejected_rows:
            return int(self.rejected_rows["row_number"].nunique())
        return len(self.rejected_rows)


def read_decision_log(path: Path) -> pd.DataFrame | None:
    """A decision log as the current columns name things (None when there is none yet)."""
    from tillit.data.io import read_frame

    if not Path(path).is_file():
        return None
    log = read_frame(Path(path))
    return log.rename(columns={k: v for k, v in _OLD_NAMES.items() if k in log})


def refuse_applied_file(
    log: pd.DataFrame | None, decisions_file: Path, decisions_sha256: str
) -> None:
    """Refuse a decisions file whose bytes were applied before (the log keeps their SHA-256).

    Raises:
        TillitError: naming when it was applied (exit code 2); nothing is appended.
    """
    if log is None or "decisions_sha256" not in log:
        return
    earlier = log.loc[log["decisions_sha256"] == decisions_sha256]
    if len(earlier):
        raise TillitError(
            f"{decisions_file} was already applied on {earlier['recorded_utc'].iloc[0]}; "
            "nothing was appended (a later decision goes in a new file)"
        )


def append_decision_log(
    log_path: Path, earlier: pd.DataFrame | None, new_rows: pd.DataFrame
) -> Path:
    """Write the decision log with the earlier rows unchanged and first: it only grows.

    One writer for every stream's log. A log is written
    even when nothing is new and none existed, so a run always leaves one to hash.
    """
    from tillit.data.io import write_frame

    if earlier is not None and new_rows.empty:
        return log_path
    log = new_rows if earlier is None else pd.concat([earlier, new_rows], ignore_index=True)
    return write_frame(log, log_path)


@dataclass(frozen=True)
class RiskListSeal:
    """The hashes that tie a risk list to the scoring run that wrote it."""

    risk_list_sha256: str
    manifest_sha256: str


def verify_risk_list(risk_list_file: Path, store: Path) -> RiskListSeal:
    """Refuse a risk list that is not, byte for byte, one a recorded `tillit score` run wrote.

    Three links are checked: the file's SHA-256 is the one `manifest.json` beside it
    lists under its name; that manifest's SHA-256 is the one a score record of the
    audit log in `store` keeps; and that log is intact. An edited list, a list without
    its manifest, or a manifest rewritten to match an edited list are all refused.

    Raises:
        TillitError: naming the file and which link failed (exit code 2).
    """
    from tillit.data.io import file_sha256
    from tillit.ops.auditlog import AUDIT_LOG, read_log, verify_log

    risk_list_file = Path(risk_list_file)
    manifest_file = risk_list_file.parent / "manifest.json"
    advice = "pass the risk_list file of the `tillit score` output folder, unchanged"
    if not manifest_file.is_file():
        raise TillitError(
            f"--risk-list {risk_list_file}: no manifest.json beside it, so nothing shows "
            f"tillit wrote it; {advice}"
        )
    try:
        manifest = json.loads(manifest_file.read_text("utf-8"))
        listed = manifest["outputs"][risk_list_file.name]
    except (ValueError, KeyError, TypeError):
        raise TillitError(
            f"--risk-list {risk_list_file}: {manifest_file} does not list {risk_list_file.name}; "
            f"{advice}"
        ) from None
    risk_list_sha256 = file_sha256(risk_list_file)
    if listed != risk_list_sha256:
        raise TillitError(
            f"--risk-list {risk_list_file} was changed after tillit wrote it (its SHA-256 "
            f"differs from the one in {manifest_file}); an edited list would mislabel random "
            f"checks: {advice}"
        )
    manifest_sha256 = file_sha256(manifest_file)
    log_path = Path(store) / AUDIT_LOG
    problems = verify_log(log_path)
    if problems:
        raise TillitError(
            f"--risk-list {risk_list_file}: the audit log {log_path} cannot vouch for its "
            f"manifest ({problems[0]}); pass the --store the scoring run used"
        )
    records = read_log(log_path)
    scores = records.loc[records["command"] == "score", "output_hashes"]
    if not any(
        isinstance(hashes, dict) and hashes.get("manifest.json") == manifest_sha256
        for hashes in scores
    ):
        raise TillitError(
            f"--risk-list {risk_list_file}: its {manifest_file.name} is not the manifest of a "
            f"score run recorded in {log_path} (a manifest rewritten to fit an edited list, "
            "or another store); pass the --store the scoring run used"
        )
    return RiskListSeal(risk_list_sha256=risk_list_sha256, manifest_sha256=manifest_sha256)


def provenance(
    decisions_file: Path,
    decisions_sha256: str,
    risk_list_file: Path | None,
    seal: RiskListSeal | None,
) -> dict[str, str | None]:
    """What a feedback audit record says it came from: the decisions file and the risk list."""
    return {
        "decisions_file": str(decisions_file),
        "decisions_sha256": decisions_sha256,
        "risk_list_file": None if risk_list_file is None else str(risk_list_file),
        "risk_list_sha256": None if seal is None else seal.risk_list_sha256,
        "risk_list_manifest_sha256": None if seal is None else seal.manifest_sha256,
    }
