"""`tillit feedback`: auditors' decisions appended to audit_outcomes, never rewriting earlier rows."""

from __future__ import annotations

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
    append_table_rows(
        outcomes_path,
        "audit_outcomes",
        append_outcomes(existing, result.new_outcomes),
        existing,
        dialect,
    )
    # Outcomes first: after a crash in between, running the file again appends the
    # same decisions once more, which changes no label.
    new_log = result.log_rows.assign(decisions_sha256=decisions_sha256)
    log = new_log if previous_log is None else pd.concat([previous_log, new_log], ignore_index=True)
    write_frame(log, log_path)
    record_run(
        store,
        "feedback",
        data_fingerprint=loaded.fingerprint,
        counts={
            "decisions": len(decisions),
            "accepted": len(result.log_rows),
            "rejected": int(result.quarantine["row_number"].nunique()),
            "outcomes_appended": len(result.new_outcomes),
        },
        output_hashes={
            outcomes_path.name: file_sha256(outcomes_path),
            log_path.name: file_sha256(log_path),
        },
        details={
            "decisions_file": str(decisions_file),
            "decisions_sha256": decisions_sha256,
        },
    )
    return FeedbackOutcome(
        decisions=len(decisions),
        accepted=len(result.log_rows),
        outcomes_appended=len(result.new_outcomes),
        rejected_rows=result.quarantine,
        rejected=int(result.quarantine["row_number"].nunique()),
        random_checks=int((result.log_rows["selection"] == "random_check").sum()),
        outcomes_file=outcomes_path,
    )
