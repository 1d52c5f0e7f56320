"""`tillit feedback --table FILE --spec SPEC --decisions FILE`: reviewers' decisions become labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import file_sha256, read_frame, read_own_frame, write_frame
from tillit.errors import TillitError
from tillit.jobs.common import record_run, refuse_unsafe_output
from tillit.tables.spec import load_spec


def decisions_log_path(table_path: Path) -> Path:
    """The append-only decision log beside a table: `<table>.decisions.parquet`."""
    return Path(table_path).with_name(f"{Path(table_path).stem}.decisions.parquet")


@dataclass(frozen=True)
class TableFeedbackOutcome:
    """How many decisions were read, accepted (and on random checks) and rejected, and why."""

    decisions: int
    accepted: int
    random_checks: int
    rejected_rows: pd.DataFrame
    log_file: Path


def run_table_feedback(
    table_path: Path,
    spec_path: Path,
    decisions_path: Path,
    risk_list_path: Path | None,
    config: TillitConfig,
    store: Path,
) -> TableFeedbackOutcome:
    """Check decisions against the table and append the accepted ones to the decision log."""
    from tillit.tables.feedback import LOG_COLUMNS, check_decisions

    refuse_unsafe_output(
        None,
        {
            "--table": table_path,
            "--spec": spec_path,
            "--decisions": decisions_path,
            "--risk-list": risk_list_path,
        },
        store=store,
        writes=[decisions_log_path(table_path)],
    )
    spec = load_spec(spec_path)
    if spec.label is None:
        raise TillitError(
            f"the spec {spec.name!r} has no label column: name one (1/0/empty) to learn "
            "from decisions"
        )
    table = read_frame(Path(table_path))
    if spec.id not in table.columns:
        raise TillitError(f"the table lacks the id column {spec.id}")
    decisions = read_frame(Path(decisions_path))
    random_checks: set[str] = set()
    if risk_list_path is not None:
        risk = read_own_frame(Path(risk_list_path))
        if {spec.id, "why_flagged"} <= set(risk.columns):
            random_checks = set(
                risk.loc[risk["why_flagged"] == "random check", spec.id].astype(str)
            )
    accepted, rejected = check_decisions(decisions, table[spec.id], random_checks, spec)
    log_file = decisions_log_path(table_path)
    if len(accepted):
        earlier = read_frame(log_file) if log_file.is_file() else None
        combined = (
            accepted if earlier is None else pd.concat([earlier, accepted], ignore_index=True)
        )
        write_frame(combined.loc[:, list(LOG_COLUMNS)], log_file)
    record_run(
        store,
        "feedback",
        config_hash=config.hash(),
        data_fingerprint=file_sha256(Path(table_path))[:16],
        counts={
            "decisions": len(decisions),
            "accepted": len(accepted),
            "rejected": len(rejected),
        },
        output_hashes={log_file.name: file_sha256(log_file)} if log_file.is_file() else {},
        details={"table_spec": spec.name, "decisions_file": str(decisions_path)},
    )
    return TableFeedbackOutcome(
        decisions=len(decisions),
        accepted=len(accepted),
        random_checks=int((accepted["selection"] == "random_check").sum()),
        rejected_rows=rejected,
        log_file=log_file,
    )
