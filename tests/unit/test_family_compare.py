"""bench/family_compare.py: the honest line is each run's own capacity share."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from tests import REPO


def _summary(run: dict[str, Any]) -> list[str]:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        return importlib.import_module("family_compare").summary(run)
    finally:
        sys.path.remove(str(REPO / "bench"))


def _run(**capacity: float) -> dict[str, Any]:
    """One world whose quarter-hour pattern has 15 % of its 20 honest invoices in capacity."""
    world = {
        "world": "w1",
        "average_precision": 0.9,
        "recall_at_k": 0.8,
        "never_labelled_recall_at_k": 0.7,
        "flagged_share": 0.1,
        "leave_one_scheme_out": {"overbilling": {"without_its_labels": 0.6}},
        "honest_false_positives": {
            "quarter_hour_registration": {"in_capacity_rate": 0.15, "honest_invoices": 20}
        },
    }
    return {"worlds": [world], **capacity}


def test_a_pattern_is_over_the_line_of_its_own_run() -> None:
    over_at_20 = [
        line
        for line in _summary(_run(capacity_share=0.2))
        if line.startswith("honest patterns over")
    ]
    assert over_at_20[0] == "honest patterns over 0.2 by world, all providers: "
    over_at_10 = [
        line
        for line in _summary(_run(capacity_share=0.1))
        if line.startswith("honest patterns over")
    ]
    assert over_at_10[0] == (
        "honest patterns over 0.1 by world, all providers: quarter_hour_registration w1 0.150 (20)"
    )


def test_a_run_without_its_capacity_share_is_read_at_ten_percent() -> None:
    over = [line for line in _summary(_run()) if line.startswith("honest patterns over")]
    assert over[0].startswith("honest patterns over 0.1 by world, all providers: quarter_hour")
