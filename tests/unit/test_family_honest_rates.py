"""bench/robustness.py: honest patterns' capacity share, also at providers with no scheme that month."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from tests import REPO


@pytest.fixture(scope="module")
def robustness() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        return importlib.import_module("robustness")
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_honest_invoices_at_a_provider_with_a_scheme_that_month_are_also_reported_apart(
    robustness,
) -> None:
    # P1 carries a scheme this month (I3); P2 none. Quarter hours at I1, I2 (P1) and I4, I5 (P2).
    month = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4", "I5", "I6"],
            "provider_id": ["P1", "P1", "P1", "P2", "P2", "P2"],
        }
    )
    world = {
        "truth": pd.DataFrame({"invoice_id": month["invoice_id"], "irregular": [0, 0, 1, 0, 0, 0]}),
        "honest_patterns": pd.DataFrame(
            {
                "invoice_id": ["I1", "I2", "I4", "I5"],
                "pattern": ["quarter_hour_registration"] * 4,
            }
        ),
    }
    in_capacity = np.array([True, True, True, True, False, False])
    flagged = pd.Series(False, index=month["invoice_id"])
    rows = robustness._honest_false_positives(world, month, in_capacity, flagged)
    quarter = rows["quarter_hour_registration"]
    assert quarter["honest_invoices"] == 4
    assert quarter["in_capacity_rate"] == 0.75
    assert quarter["honest_invoices_clean_provider"] == 2
    assert quarter["in_capacity_rate_clean_provider"] == 0.5
    assert rows["all_honest"]["honest_invoices_clean_provider"] == 3
    assert rows["all_honest"]["in_capacity_rate_clean_provider"] == pytest.approx(1 / 3, abs=1e-4)
    # The family's worst: the world with the highest share at providers with no scheme.
    worlds = [
        {"world": "a", "honest_false_positives": rows},
        {
            "world": "b",
            "honest_false_positives": {
                "quarter_hour_registration": {
                    "honest_invoices_clean_provider": 10,
                    "in_capacity_rate_clean_provider": 0.1,
                }
            },
        },
    ]
    assert robustness._highest_clean_provider_rates(worlds)["quarter_hour_registration"] == {
        "value": 0.5,
        "world": "a",
        "invoices": 2,
    }
