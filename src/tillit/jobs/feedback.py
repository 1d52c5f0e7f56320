"""`tillit feedback`: auditors' decisions appended to audit_outcomes, never rewriting earlier rows.

The risk list a decisions file answers (`--risk-list`) decides which decisions count
as random checks, the unbiased sample the miss estimate rests on; so it must be a
list tillit wrote (`core.feedback.verify_risk_list`). The decision log and its controls
are the core's, shared with table mode.
"""

from __future__ import annotations

from pathlib import Path

from tillit.config import TillitConfig
from tillit.core.feedback import (
    FeedbackOutcome,
    RiskListSeal,
    append_decision_log,
    provenance,
    read_decision_log,
    refuse_applied_file,
    verify_risk_list,
)
from tillit.data.io import file_sha256, read_frame, read_own_frame
from tillit.jobs.common import load_data, record_run, refuse_unsafe_output

# Where the checks moved (core/feedback.py), still importable from here.
__all__ = ["FeedbackOutcome", "RiskListSeal", "provenance", "run_feedback", "verify_risk_list"]


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
    previous_log = read_decision_log(log_path)
    refuse_applied_file(previous_log, decisions_file, decisions_sha256)
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
        random_checks=int((result.log_rows["selection"] == "random_check").sum()),
        rejected_rows=result.quarantine,
        log_file=log_path,
        skipped=len(result.skipped),
        reversals=len(reversed_ids),
        outcomes_appended=len(result.new_outcomes),
        outcomes_file=outcomes_path,
    )
