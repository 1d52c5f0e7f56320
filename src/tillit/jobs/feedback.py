"""`tillit feedback`: auditors' decisions appended to audit_outcomes, never rewriting earlier rows.

The risk list a decisions file answers (`--risk-list`) decides which decisions count
as random checks, the unbiased sample the miss estimate rests on; so it must be a
list tillit wrote: `verify_risk_list` checks it against the manifest beside it, and
that manifest against the score run's record in the audit log. Table mode uses the
same check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import file_sha256, read_frame, read_own_frame, write_frame
from tillit.errors import TillitError
from tillit.jobs.common import load_data, record_run, refuse_unsafe_output


@dataclass(frozen=True)
class FeedbackOutcome:
    """Counts of a feedback run, the rejected decisions with reasons, and the file appended to."""

    decisions: int
    accepted: int
    outcomes_appended: int
    rejected_rows: pd.DataFrame
    rejected: int
    random_checks: int
    outcomes_file: Path
    skipped: int = 0
    reversals: int = 0


def append_decision_log(
    log_path: Path, earlier: pd.DataFrame | None, new_rows: pd.DataFrame
) -> Path:
    """Write the decision log with the earlier rows unchanged and first: it only grows.

    One writer for both feedback logs (home care and table mode). A log is written
    even when nothing is new and none existed, so a run always leaves one to hash.
    """
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
    from tillit.jobs.common import AUDIT_LOG
    from tillit.ops.auditlog import read_log, verify_log

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


def run_feedback(
    data_dir: Path,
    decisions_file: Path,
    risk_list_file: Path | None,
    config: TillitConfig,
    store: Path,
) -> FeedbackOutcome:
    """Validate decisions and append them to audit_outcomes and the decision log in the data folder.

    Rows already in the folder are never changed: CSV files get new lines appended,
    Parquet files are rewritten with the old rows first (atomically, via a temporary file).
    """
    import datetime as dt

    from tillit.data.io import (
        CsvDialect,
        append_table_rows,
        find_table_file,
        read_csv_table,
        table_files,
    )
    from tillit.ops.feedback import append_outcomes, apply_decisions

    log_path = Path(data_dir) / "decision_log.parquet"
    # The data folder is this command's output: the files it appends to must be real files.
    refuse_unsafe_output(
        None,
        {"--decisions": decisions_file, "--risk-list": risk_list_file},
        store=store,
        writes=[log_path, *table_files(data_dir, "audit_outcomes")],
    )
    seal = verify_risk_list(risk_list_file, store) if risk_list_file is not None else None
    loaded = load_data(data_dir, config)
    decisions = read_frame(decisions_file, config.input)
    decisions_sha256 = file_sha256(decisions_file)
    previous_log = read_frame(log_path) if log_path.exists() else None
    if previous_log is not None and "decisions_sha256" in previous_log:
        earlier = previous_log.loc[previous_log["decisions_sha256"] == decisions_sha256]
        if len(earlier):
            raise TillitError(
                f"{decisions_file} was already applied on {earlier['recorded_utc'].iloc[0]}; "
                "nothing was appended (a later decision goes in a new file)"
            )
    risk_list = read_own_frame(risk_list_file) if risk_list_file is not None else None
    if risk_list is not None and "flagged" in risk_list and risk_list["flagged"].dtype != bool:
        risk_list["flagged"] = risk_list["flagged"].astype("str").str.lower() == "true"
    now = dt.datetime.now(dt.UTC)
    result = apply_decisions(
        loaded.validation.tables,
        decisions,
        risk_list,
        now.date(),
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        recorded=previous_log,
    )
    outcomes_path = (
        find_table_file(data_dir, "audit_outcomes") or Path(data_dir) / "audit_outcomes.parquet"
    )
    dialect: CsvDialect | None = None
    existing = None
    if outcomes_path.exists() and outcomes_path.suffix == ".csv":
        existing, dialect = read_csv_table(outcomes_path, "audit_outcomes", config.input)
    elif outcomes_path.exists():
        existing = read_frame(outcomes_path)
    if len(result.new_outcomes) or not outcomes_path.exists():
        append_table_rows(
            outcomes_path,
            "audit_outcomes",
            append_outcomes(existing, result.new_outcomes),
            existing,
            dialect,
        )
    # Outcomes first: after a crash in between, running the file again appends the
    # same decisions once more, which changes no label.
    new_log = result.log_rows.assign(
        decisions_sha256=decisions_sha256,
        risk_list_manifest_sha256=seal.manifest_sha256 if seal is not None else None,
    )
    append_decision_log(log_path, previous_log, new_log)
    rejected = int(result.quarantine["row_number"].nunique())
    reversed_ids = sorted(result.log_rows.loc[result.log_rows["reversal"], "invoice_id"])
    record_run(
        store,
        "feedback",
        data_fingerprint=loaded.fingerprint,
        counts={
            "decisions": len(decisions),
            "accepted": len(result.log_rows),
            "rejected": rejected,
            "skipped_repeats": len(result.skipped),
            "reversals": len(reversed_ids),
            "outcomes_appended": len(result.new_outcomes),
        },
        output_hashes={
            outcomes_path.name: file_sha256(outcomes_path),
            log_path.name: file_sha256(log_path),
        },
        details={
            **provenance(decisions_file, decisions_sha256, risk_list_file, seal),
            "reversed_invoices": reversed_ids,
        },
    )
    return FeedbackOutcome(
        decisions=len(decisions),
        accepted=len(result.log_rows),
        outcomes_appended=len(result.new_outcomes),
        rejected_rows=result.quarantine,
        rejected=rejected,
        random_checks=int((result.log_rows["selection"] == "random_check").sum()),
        outcomes_file=outcomes_path,
        skipped=len(result.skipped),
        reversals=len(reversed_ids),
    )
