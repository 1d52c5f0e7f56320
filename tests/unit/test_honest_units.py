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


def test_a_month_without_a_grant_does_not_count_as_a_grant_of_zero():
    # C1: 10 h billed in January (no grant row yet) and February under a 10 h grant that
    # starts in February; 20 h billed in March under the same 10 h grant. The grant did not
    # grow: averaging January's missing grant as 0 made it look doubled and hid the growth.
    plan = {
        "2026-01": {"C1": (10.0, 10)},
        "2026-02": {"C1": (10.0, 10)},
        "2026-03": {"C1": (20.0, 20)},
    }
    visits, invoices = billed_months(plan)
    late = grant("G1", "C1", hours=10.0, valid_from="2026-02-01")
    fs = build(municipality(grants=[late], visits=visits, invoices=invoices))
    assert row(fs, "I2026-03C1")["billed_over_own_history_hours_6m"] == 2.0


def test_round_service_types_must_be_contract_service_types():
    config = FeatureConfig(round_service_types=("night_care", "night_care"))
    assert config.round_service_types == ("night_care",)
    with pytest.raises(ValueError, match="unknown service type"):
        FeatureConfig(round_service_types=("nightcare",))


def test_the_short_visit_description_names_the_configured_round_services():
    from tillit.features.catalog import feature_catalog

    both = feature_catalog(FeatureConfig(round_service_types=("night_care", "home_service")))
    assert "given in rounds: home service, night care)" in both["short_visit_share"]["en"]
    assert "i rundor: serviceinsatser, nattinsatser)" in both["short_visit_share"]["sv"]
    none = feature_catalog(FeatureConfig(round_service_types=()))["short_visit_share"]
    assert "given in rounds: none)" in none["en"]
    assert "night care" not in none["en"].split("):")[0]
