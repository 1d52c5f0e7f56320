"""Contract v1.3: provider contact facts and person name tokens, checked and pseudonymised."""

from __future__ import annotations

import pandas as pd
import pytest

from tillit import CONTRACT_VERSION
from tillit.data.contacts import normalise_address, normalise_fact, normalise_phone
from tillit.data.io import read_raw_tables, write_tables
from tillit.data.pseudonymise import pseudonymise_export
from tillit.data.validate import validate_tables

KEY = bytes(range(32))
T = pd.Timestamp


def _contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "provider_id": ["P1", "P2", "P2"],
            "valid_from": pd.Series([T("2015-03-01"), T("2023-06-01"), T("2024-06-01")]),
            "valid_to": pd.Series([pd.NaT, T("2024-05-31"), pd.NaT]),
            "street_address": ["Storgatan 12 B, 2 tr", "Kungsv. 3", None],
            "postcode": ["113 45", "11122", None],
            "phone_number": ["08-123 456 78", None, "+46 8 765 43 21"],
            "bankgiro": ["123-4567", "5050-1055", None],
            "plusgiro": [None, None, "4711-2"],
            "email_domain": ["Info@Omsorg.SE", None, None],
        }
    )


def test_the_contract_is_v1_3():
    assert CONTRACT_VERSION == "1.3"


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["Storgatan 12 B, 2 tr", "STORG. 12B", "Stor gatan 12b vån 3"], "storgatan 12b"),
        (["Kungsv. 3", "Kungsvägen 3 lgh 1101"], "kungsvägen 3"),
    ],
)
def test_one_address_in_many_spellings_is_one_fact(spellings, canonical):
    assert {normalise_address(s) for s in spellings} == {canonical}


def test_phone_and_giro_spellings_agree_and_a_token_passes_unchanged():
    phones = ["08-123 456 78", "+46 8-123 456 78", "0046812345678", "+46 (0)8 123 456 78"]
    assert {normalise_phone(p) for p in phones} == {"0812345678"}
    assert normalise_fact("bankgiro", "123-4567") == normalise_fact("bankgiro", "1234567")
    token = "BG-0123456789abcdef0123"
    assert normalise_fact("bankgiro", token) == token
    assert normalise_fact("street_address", "  ") is None


def test_a_v1_2_folder_without_contacts_or_name_tokens_reads_unchanged(tables, tmp_path):
    write_tables(tables, tmp_path, "csv")
    raw = read_raw_tables(tmp_path)
    assert "provider_contacts" not in raw
    result = validate_tables(raw)
    assert result.quarantine.empty
    persons = result.tables["provider_persons"]
    assert persons["name_token"].isna().all() and persons["birth_year"].isna().all()


def test_contacts_are_read_and_each_broken_row_quarantined_with_its_rule(tables, tmp_path):
    contacts = _contacts()
    bad = pd.DataFrame(
        {
            "provider_id": ["P1", "P2", "P404"],
            "valid_from": pd.Series([T("2020-01-01"), T("2020-01-01"), T("2020-01-01")]),
            "valid_to": pd.Series([T("2019-01-01"), pd.NaT, pd.NaT]),
            "street_address": ["Ågatan 1", None, "Torget 1"],
            "postcode": ["1134", None, None],
            "phone_number": [None, None, None],
            "bankgiro": [None, None, None],
            "plusgiro": [None, None, None],
            "email_domain": [None, None, None],
        }
    )
    tables["provider_contacts"] = pd.concat([contacts, bad], ignore_index=True)
    write_tables(tables, tmp_path, "parquet")
    result = validate_tables(read_raw_tables(tmp_path))
    q = result.quarantine[result.quarantine["table"] == "provider_contacts"]
    rules = set(zip(q["row_number"], q["column"], q["rule"], strict=True))
    assert (3, "postcode", r"postcode must match ^\d{3}(?: ?\d{2})?$") in rules
    assert (3, "valid_to", "valid_to_not_before_valid_from") in rules
    assert (4, "street_address", "at_least_one_contact_fact") in rules
    assert (5, "provider_id", "provider_id must refer to a valid row of providers") in rules
    assert result.summary["provider_contacts"]["rows_valid"] == 3


def test_pseudonymise_turns_facts_and_names_into_keyed_tokens_and_cuts_postcodes(tables):
    tables["provider_contacts"] = _contacts()
    tables["provider_persons"] = tables["provider_persons"].assign(
        family_name=["Andersson", "Berg"], given_name=["Anna Maria", "Per"], birth_year=[1970, None]
    )
    other = _contacts().assign(
        street_address=["STORG. 12B", "Kungsvägen 3 lgh 1101", None],
        phone_number=["+46 8-123 456 78", None, "08-7654321"],
        bankgiro=["1234567", "50501055", None],
        email_domain=["www.omsorg.se", None, None],
    )
    once = pseudonymise_export(tables, KEY).tables
    again = pseudonymise_export({**tables, "provider_contacts": other}, KEY).tables
    contacts = once["provider_contacts"]
    assert contacts["postcode"].tolist()[:2] == ["113", "111"]
    assert contacts["street_address"].str.startswith("ADR-").sum() == 2
    assert contacts["bankgiro"].str.match(r"^BG-[0-9a-f]{20}$").sum() == 2
    # Every spelling of one fact gives one token.
    for column in ("street_address", "phone_number", "bankgiro", "email_domain"):
        assert contacts[column].equals(again["provider_contacts"][column]), column
    cells = " ".join(str(v) for v in contacts.to_numpy().ravel()).lower()
    for fact in ("storg", "kungsv", "1234567", "812345678", "50501055", "omsorg", "4711"):
        assert fact not in cells
    persons = once["provider_persons"]
    assert "family_name" not in persons and "given_name" not in persons
    assert persons["name_token"].str.match(r"^NM-[0-9a-f]{20}$").all()
    # Pseudonymised output is valid v1.3 input, and pseudonymising it again changes nothing.
    assert validate_tables(once).quarantine.empty
    twice = pseudonymise_export(once, KEY).tables["provider_contacts"]
    pd.testing.assert_frame_equal(twice, contacts)
