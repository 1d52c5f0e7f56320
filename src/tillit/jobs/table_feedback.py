"""`tillit feedback --table FILE --spec SPEC --decisions FILE`: reviewers' decisions become labels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tillit.config import TillitConfig
from tillit.core.feedback import FeedbackOutcome
from tillit.data.io import file_sha256, read_frame, read_own_frame
from tillit.errors import TillitError
from tillit.jobs.common import record_run, refuse_unsafe_output
from tillit.tables.spec import load_spec


def decisions_log_path(table_path: Path) -> Path:
    """The append-only decision log beside a table: `<table>.decisions.parquet`."""
    return Path(table_path).with_name(f"{Path(table_path).stem}.decisions.parquet")


def run_table_feedback(
    table_path: Path,
    spec_path: Path,
    decisions_path: Path,
    risk_list_path: Path | None,
    config: TillitConfig,
    store: Path,
) -> FeedbackOutcome:
    """Check decisions against the table and append the accepted ones to the decision log.

    The same controls as the home-care feedback (`jobs.feedback`): the risk list must
    be one tillit wrote, repeats are skipped, a reversal of a confirmed row needs a reason.
    """
    from tillit.core.feedback import (
        PROVENANCE_COLUMNS,
        append_decision_log,
        provenance,
        read_decision_log,
        refuse_applied_file,
        verify_risk_list,
    )
    from tillit.tables.feedback import LOG_COLUMNS, apply_decisions, check_decisions

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
    seal = verify_risk_list(risk_list_path, store) if risk_list_path is not None else None
    table = read_frame(Path(table_path))
    if spec.id not in table.columns:
        raise TillitError(f"the table lacks the id column {spec.id}")
    decisions = read_frame(Path(decisions_path))
    decisions_sha256 = file_sha256(Path(decisions_path))
    risk = read_own_frame(Path(risk_list_path)) if risk_list_path is not None else None
    log_file = decisions_log_path(table_path)
    earlier = read_decision_log(log_file)
    refuse_applied_file(earlier, decisions_path, decisions_sha256)
    standing = table if earlier is None or earlier.empty else apply_decisions(table, earlier, spec)
    labels = pd.to_numeric(standing[spec.label], errors="coerce")
    confirmed_ids = set(standing.loc[labels == 1, spec.id].astype("str"))
    accepted, rejected, skipped = check_decisions(
        decisions,
        table[spec.id],
        risk,
        spec,
        recorded=earlier,
        confirmed_ids=confirmed_ids,
    )
    accepted = accepted.assign(
        decisions_sha256=decisions_sha256,
        risk_list_manifest_sha256=None if seal is None else seal.manifest_sha256,
    )
    if len(accepted):
        columns = [*LOG_COLUMNS, *PROVENANCE_COLUMNS]
        append_decision_log(log_file, earlier, accepted.reindex(columns=columns))
    reversed_ids = sorted(accepted.loc[accepted["reversal"].astype(bool), "row_id"])
    record_run(
        store,
        "feedback",
        config_hash=config.hash(),
        data_fingerprint=file_sha256(Path(table_path))[:16],
        counts={
            "decisions": len(decisions),
            "accepted": len(accepted),
            "rejected": len(rejected),
            "skipped_repeats": skipped,
            "reversals": len(reversed_ids),
        },
        output_hashes={log_file.name: file_sha256(log_file)} if log_file.is_file() else {},
        details={
            "table_spec": spec.name,
            **provenance(decisions_path, decisions_sha256, risk_list_path, seal),
            "reversed_rows": reversed_ids,
        },
    )
    return FeedbackOutcome(
        decisions=len(decisions),
        accepted=len(accepted),
        random_checks=int((accepted["selection"] == "random_check").sum()),
        rejected_rows=rejected,
        log_file=log_file,
        skipped=skipped,
        reversals=len(reversed_ids),
    )
