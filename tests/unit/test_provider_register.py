"""The provider register profile at a date: point in time, board links with evidence, applicants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.features.providers import register_columns, register_profile

T = pd.Timestamp


def _with_register(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """P3 was sanctioned and terminated; X7 sat on its board and now sits on P2 and the applicant P4."""
    extra = pd.DataFrame(
        {
            "provider_id": ["P3", "P4"],
            "org_number": ["212000-0142", "556036-0793"],
            "legal_form": ["AB", "AB"],
            "registered_on": pd.to_datetime(["2018-01-01", "2024-08-01"]),
            "approved_on": pd.Series([T("2018-06-01"), pd.NaT], dtype="datetime64[ns]"),
            "terminated_on": pd.Series([T("2024-05-31"), pd.NaT], dtype="datetime64[ns]"),
        }
    )
    tables["providers"] = pd.concat([tables["providers"], extra], ignore_index=True)
    events = pd.DataFrame(
        {
            "provider_id": ["P3", "P2", "P2", "P1"],
            "event_date": pd.to_datetime(["2024-03-15", "2025-02-01", "2024-12-01", "2025-01-31"]),
            "event_type": ["sanction", "sanction", "complaint", "f_tax_revoked"],
            "amount_sek": [np.nan, np.nan, np.nan, np.nan],
        }
    )
    tables["provider_events"] = pd.concat([tables["provider_events"], events], ignore_index=True)
    persons = pd.DataFrame(
        {
            "provider_id": ["P3", "P2", "P4", "P1"],
            "person_id": ["X7", "X7", "X7", "X8"],
            "role": ["board_member", "board_member", "ceo", "board_member"],
            "from_date": pd.to_datetime(["2018-01-01", "2024-09-01", "2024-08-01", "2025-03-01"]),
            "to_date": pd.Series([T("2024-06-30"), pd.NaT, pd.NaT, pd.NaT], dtype="datetime64[ns]"),
        }
    )
    tables["provider_persons"] = pd.concat([tables["provider_persons"], persons], ignore_index=True)
    result = validate_tables(tables)
    assert result.quarantine.empty
    return result.tables


def test_board_person_of_a_sanctioned_company_is_a_fact_with_org_number_person_and_dates(tables):
    register = register_profile(_with_register(tables), "2025-01")
    links = register.links.set_index("provider_id")
    assert sorted(links.index) == ["P2", "P4"]
    for provider, role in (("P2", "board_member"), ("P4", "ceo")):
        link = links.loc[provider]
        assert link["person_id"] == "X7"
        assert link["role"] == role
        assert link["linked_provider_id"] == "P3"
        assert link["linked_org_number"] == "212000-0142"
        assert link["linked_role"] == "board_member"
        assert link["linked_from"] == T("2018-01-01")
        assert link["linked_to"] == T("2024-06-30")
        assert link["linked_sanctioned_on"] == T("2024-03-15")
        assert link["linked_terminated_on"] == T("2024-05-31")
    profile = register.profile.set_index("provider_id")
    # P3 was terminated before January began: no longer in the register.
    assert sorted(profile.index) == ["P1", "P2", "P4"]
    linked = "provider_persons_linked_to_sanctioned_or_terminated"
    assert profile[linked].to_dict() == {"P1": 0.0, "P2": 1.0, "P4": 1.0}
    assert profile["is_applicant"].to_dict() == {"P1": False, "P2": False, "P4": True}
    assert pd.isna(profile.loc["P4", "approved_on"])
    assert profile.loc["P4", "provider_approval_age_years"] == 0.0
    assert profile.loc["P4", "n_clients"] == 0.0


def test_an_event_after_the_period_date_never_counts(tables):
    valid = _with_register(tables)
    january = register_profile(valid, "2025-01").profile.set_index("provider_id")
    # P2's sanction of 2025-02-01 is after January; its complaint of 2024-12-01 is inside.
    assert january.loc["P2", "provider_sanctions_365d"] == 0.0
    assert january.loc["P2", "provider_complaints_365d"] == 1.0
    # P1's F-skatt was revoked on January's last day: counts, and is revoked now.
    assert january.loc["P1", "provider_f_tax_revoked_365d"] == 1.0
    assert january.loc["P1", "provider_f_tax_currently_revoked"] == 1.0
    december = register_profile(valid, "2024-12").profile.set_index("provider_id")
    assert december.loc["P1", "provider_f_tax_revoked_365d"] == 0.0
    assert december.loc["P1", "provider_f_tax_currently_revoked"] == 0.0
    february = register_profile(valid, "2025-02").profile.set_index("provider_id")
    assert february.loc["P2", "provider_sanctions_365d"] == 1.0
    # X8 joins P1's board in March; X7 joined P2 in September 2024 and P3 was sanctioned
    # in March 2024: in August 2024 X7 sat on no other board yet, so P2 had no link.
    august = register_profile(valid, "2024-08")
    assert august.links[august.links["provider_id"] == "P2"].empty
    # Before its termination (and sanction) P3 is no one's link, and in the register itself.
    early = register_profile(valid, "2024-02")
    assert early.links.empty
    assert "P3" in set(early.profile["provider_id"])


def test_an_approval_after_the_period_makes_an_applicant_then(tables):
    valid = _with_register(tables)
    before = register_profile(valid, "2023-07").profile.set_index("provider_id")
    assert bool(before.loc["P2", "is_applicant"]) is True
    assert pd.isna(before.loc["P2", "approved_on"])
    after = register_profile(valid, "2023-09").profile.set_index("provider_id")
    assert bool(after.loc["P2", "is_applicant"]) is False


def test_profile_equals_the_invoice_features_provider_columns(tables):
    valid = _with_register(tables)
    profile = register_profile(valid, "2025-01").profile.set_index("provider_id")
    features = build_features(valid, "2025-01").features.drop_duplicates("provider_id")
    features = features.set_index("provider_id")
    for column in register_columns_in_features():
        for provider in features.index:
            assert profile.loc[provider, column] == pytest.approx(features.loc[provider, column]), (
                provider,
                column,
            )


def register_columns_in_features() -> tuple[str, ...]:
    from tillit.config import FeatureConfig

    return register_columns(FeatureConfig())
