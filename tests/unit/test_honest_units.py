"""Honest care that looks odd, judged as a controller would: growth under a temporary grant."""

from __future__ import annotations

import pytest

from tests.unit.test_features import build, grant, municipality, row
from tests.unit.test_label_free import billed_months
from tillit.config import FeatureConfig


def test_growth_over_the_client_s_own_months_that_the_grant_grew_with_is_granted():
    # C1: 10 h billed and registered in January and February under a 10 h grant, 15 h in
    # March, when a temporary grant adds 5 h (end of life, reablement).
    plan = {
        "2026-01": {"C1": (10.0, 10)},
        "2026-02": {"C1": (10.0, 10)},
        "2026-03": {"C1": (15.0, 15)},
    }
    visits, invoices = billed_months(plan)
    standing = grant("G1", "C1", hours=10.0)
    temporary = grant("G2", "C1", hours=5.0, valid_from="2026-03-01", valid_to="2026-03-31")
    with_temporary = build(
        municipality(grants=[standing, temporary], visits=visits, invoices=invoices)
    )
    assert row(with_temporary, "I2026-03C1")["billed_over_own_history_hours_6m"] == 1.0
    # Under the standing grant alone, the growth is the billing's: 15 / 10.
    standing_only = build(municipality(grants=[standing], visits=visits, invoices=invoices))
    assert row(standing_only, "I2026-03C1")["billed_over_own_history_hours_6m"] == 1.5
    # A grant that shrank does not make billed growth look larger than it is.
    smaller = grant("G1", "C1", hours=10.0, valid_to="2026-02-28")
    lower = grant("G3", "C1", hours=5.0, valid_from="2026-03-01")
    shrunk = build(municipality(grants=[smaller, lower], visits=visits, invoices=invoices))
    assert row(shrunk, "I2026-03C1")["billed_over_own_history_hours_6m"] == 1.5


def test_round_service_types_must_be_contract_service_types():
    config = FeatureConfig(round_service_types=("night_care", "night_care"))
    assert config.round_service_types == ("night_care",)
    with pytest.raises(ValueError, match="unknown service type"):
        FeatureConfig(round_service_types=("nightcare",))
