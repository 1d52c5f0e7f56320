"""Quarantine lineage: which invoices lost evidence, and which month a malformed period means."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_tables
from tillit.data.lineage import incomplete_evidence, place_period
from tillit.data.validate import validate_tables


@pytest.mark.parametrize(
    ("written", "placed"),
    [
        ("2025-06", "2025-06"),
        ("2025-6", "2025-06"),
        ("2025/06", "2025-06"),
        (" 2025.6 ", "2025-06"),
        ("202506", "2025-06"),
        ("2025-06-15", "2025-06"),
        ("06/2025", "2025-06"),
        ("juni 2025", "2025-06"),
        ("June 2025", "2025-06"),
        ("okt. 2025", "2025-10"),
        ("2025-13", None),
        ("next month", None),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_a_period_is_placed_only_when_its_text_says_which_month(written, placed):
    assert place_period(written) == placed


def test_invoices_are_marked_with_the_rules_that_hit_their_evidence():
    tables = tiny_tables()
    tables["visits"].loc[0, "method"] = "fax"  # I1's visit (P1, C1, January)
    tables["grants"].loc[1, "hours_per_month"] = -1.0  # C2's grant: I2
    tables["visits"].loc[2, "client_id"] = (
        None  # P2's visit, client unknown: matches I3 by provider
    )
    result = validate_tables(tables)
    marks = incomplete_evidence(tables, result.quarantine, result.tables["invoices"])
    assert marks.values.tolist() == [
        ["I1", True, "visits: method must be one of nfc, app, manual"],
        ["I2", True, "grants: hours_per_month > 0"],
        ["I3", True, "visits: client_id must not be empty"],
    ]


def test_a_visit_of_another_month_or_client_marks_nothing():
    tables = tiny_tables()
    tables["visits"].loc[0, "start_at"] = tables["visits"].loc[0, "start_at"].replace(month=3)
    tables["visits"].loc[0, "end_at"] = tables["visits"].loc[0, "start_at"]  # ends when it starts
    result = validate_tables(tables)
    assert result.quarantine["rule"].tolist() == ["end_at_after_start_at"]
    marks = incomplete_evidence(tables, result.quarantine, result.tables["invoices"])
    assert not marks["evidence_incomplete"].any()
    assert marks["quarantine_rules"].tolist() == ["", "", ""]
