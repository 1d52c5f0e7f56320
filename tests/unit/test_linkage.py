"""Linking providers and persons across registers (contract v1.3), on hand-built frames."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import tiny_tables
from tillit.config import LinkConfig
from tillit.data import linkage
from tillit.data.linkage import link_registers
from tillit.errors import TillitError
from tillit.features.providers import SHARED_FACTS_COLUMN, register_profile

T = pd.Timestamp


def _world() -> dict[str, pd.DataFrame]:
    """Twelve providers: P1 terminated, P2 its successor at P1's address paying into P1's
    bank giro (new phone, new people); P3-P6 honest tenants of one office building; the
    rest alone. Persons: X1 listed again as L1 at P3 (no personal number)."""
    ids = [f"P{i}" for i in range(1, 13)]
    tables = tiny_tables()
    tables["providers"] = pd.DataFrame(
        {
            "provider_id": ids,
            "org_number": ["556677-8899"] * 12,
            "legal_form": ["AB"] * 12,
            "registered_on": pd.Series([T("2015-01-01")] * 12),
            "approved_on": pd.Series([T("2015-06-01")] * 12),
            "terminated_on": pd.Series([T("2024-10-31")] + [pd.NaT] * 11),
        }
    )
    street = [
        "Storgatan 1",
        "STORG. 1, 2 tr",
        *(["Kungsgatan 5"] * 4),
        *[f"Ågatan {i}" for i in range(7, 13)],
    ]
    tables["provider_contacts"] = pd.DataFrame(
        {
            "provider_id": ids,
            "valid_from": pd.Series([T("2015-01-01")] + [T("2024-11-15")] + [T("2015-01-01")] * 10),
            "valid_to": pd.Series([pd.NaT] * 12),
            "street_address": street,
            "postcode": [
                "111 11",
                "11111",
                *(["113 00"] * 4),
                *[f"12{i % 10} 00" for i in range(7, 13)],
            ],
            "phone_number": [f"08-100 00 {i:02d}" for i in range(1, 13)],
            "bankgiro": ["123-4567", "1234567", *[f"{i}00-000{i % 10}" for i in range(3, 13)]],
            "plusgiro": [None] * 12,
            "email_domain": [f"p{i}.se" for i in range(1, 13)],
        }
    )
    persons = pd.DataFrame(
        {
            "provider_id": ["P1", "P2", "P3", "P3", "P4"],
            "person_id": ["X1", "X2", "X3", "L1", "X4"],
            "role": ["ceo", "ceo", "ceo", "signatory", "ceo"],
            "from_date": pd.Series([T("2015-01-01")] * 5),
            "to_date": pd.Series([pd.NaT] * 5),
            "name_token": ["NM-a", "NM-b", "NM-c", "NM-c", "NM-d"],
            "birth_year": [1970.0, 1980.0, 1965.0, 1965.0, 1990.0],
        }
    )
    tables["provider_persons"] = persons
    tables["provider_events"] = tables["provider_events"].iloc[0:0]
    tables["invoices"] = tables["invoices"].iloc[0:0]
    return tables


def test_exact_rule_links_two_facts_and_not_a_shared_building():
    result = link_registers(_world(), LinkConfig(method="exact"))
    links = result.provider_links
    assert set(zip(links["provider_id"], links["linked_provider_id"], strict=True)) == {
        ("P1", "P2"),
        ("P2", "P1"),
    }
    assert set(links["shared_facts"]) == {"street_address, postcode, bankgiro"}
    persons = result.person_links
    assert set(zip(persons["person_id"], persons["linked_person_id"], strict=True)) == {
        ("L1", "X3"),
        ("X3", "L1"),
    }
    entities = result.entities.set_index(["record_table", "record_id"])["entity_id"]
    assert entities[("providers", "P2")] == "P1"
    assert entities[("provider_persons", "L1")] == "L1"  # the smallest id names the group
    assert entities[("provider_persons", "X3")] == "L1"


def test_splink_scores_the_successor_far_above_a_shared_office_and_is_deterministic():
    config = LinkConfig(method="splink", min_probability=0.9, evidence_min_probability=0.001)
    first = link_registers(_world(), config)
    again = link_registers(_world(), config)
    pd.testing.assert_frame_equal(first.provider_links, again.provider_links)
    links = first.provider_links.set_index(["provider_id", "linked_provider_id"])
    phoenix = links.loc[("P2", "P1"), "match_probability"]
    office = links.loc[("P3", "P4"), "match_probability"]
    assert phoenix > 20 * office
    assert links.loc[("P2", "P1"), "shared_facts"] == "street_address, postcode, bankgiro"
    # Five person ids say little about chance; still only L1 and X3 are more likely one.
    persons = first.person_links
    likely = persons[persons["match_probability"] > 0.5]
    assert set(zip(likely["person_id"], likely["linked_person_id"], strict=True)) == {
        ("L1", "X3"),
        ("X3", "L1"),
    }
    assert first.method == "splink"


def test_register_profile_names_the_pair_only_from_the_month_the_facts_are_on_record():
    tables = _world()
    result = link_registers(tables, LinkConfig(method="exact"))
    profile = register_profile(tables, ["2024-10", "2024-11"], linkage=result)
    got = profile.profile.set_index(["provider_id", "period"])[SHARED_FACTS_COLUMN]
    assert got[("P2", "2024-11")] == 1.0
    assert got[("P1", "2024-10")] == 0.0  # P2's facts are not on record before 2024-11-15
    assert (got.drop([("P2", "2024-11")]) == 0.0).all()
    pair = profile.shared_facts.iloc[0]
    assert (pair["provider_id"], pair["linked_provider_id"]) == ("P2", "P1")
    assert pair["linked_terminated_on"] == T("2024-10-31")
    assert pd.isna(pair["linked_sanctioned_on"])


def test_without_splink_auto_falls_back_to_the_exact_rule_and_splink_is_refused(monkeypatch):
    monkeypatch.setattr(linkage, "splink_available", lambda: False)
    assert link_registers(_world(), LinkConfig(method="auto")).method == "exact"
    with pytest.raises(TillitError, match=r"pip install 'tillit\[link\]'"):
        link_registers(_world(), LinkConfig(method="splink"))


def test_a_v1_2_folder_links_nothing_and_every_id_is_its_own_entity(tables):
    result = link_registers(tables, LinkConfig(method="exact"))
    assert result.provider_links.empty and result.person_links.empty
    assert (result.entities["record_id"] == result.entities["entity_id"]).all()


def test_the_package_never_imports_splink_until_linking_asks_for_it():
    code = (
        "import sys, tillit.cli, tillit.jobs.providers, tillit.jobs.link, tillit.data.linkage; "
        "from tillit.config import LinkConfig; from tests.conftest import tiny_tables; "
        "tillit.data.linkage.link_registers(tiny_tables(), LinkConfig(method='exact')); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'splink'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
