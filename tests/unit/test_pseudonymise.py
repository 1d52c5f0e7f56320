"""Pseudonymisation: stable, keyed, consistent across tables, and nothing original survives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tillit.data.pseudonymise import (
    PseudonymiseConfig,
    generate_key,
    load_key,
    normalise_identifier,
    pseudonym,
    pseudonymise_tables,
)
from tillit.errors import TillitError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _with_check_digit(nine: str) -> str:
    """Ten-digit personnummer: nine digits plus the Luhn check digit."""
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return nine + str((10 - total % 10) % 10)


ANNA = _with_check_digit("380101123")  # born 1938-01-01
BERT = _with_check_digit("450615987")  # born 1945-06-15
CARL = _with_check_digit("250310456")  # born 1925-03-10: 100+, written with '+'
OWNER = _with_check_digit("790923321")


def _raw_tables() -> dict[str, pd.DataFrame]:
    """An export before pseudonymisation: personnummer in mixed spellings, names, staff numbers."""
    anna_12 = "19" + ANNA[:6] + "-" + ANNA[6:]
    anna_10 = ANNA[:6] + "-" + ANNA[6:]
    bert_12 = "19" + BERT
    carl_plus = CARL[:6] + "+" + CARL[6:]
    return {
        "clients": pd.DataFrame(
            {
                "client_id": [anna_12, bert_12, carl_plus],
                "name": ["Anna Andersson", "Bert Berglund", "Carl Carlsson"],
                "personnummer": [anna_12, bert_12, carl_plus],
                "birth_year": [1938, 1945, 1925],
                "district": ["Norr", "Syd", "Norr"],
            }
        ),
        "grants": pd.DataFrame(
            {"grant_id": ["G1", "G2"], "client_id": [anna_10, " " + bert_12 + " "]}
        ),
        "visits": pd.DataFrame(
            {
                "visit_id": ["V1", "V2", "V3"],
                "client_id": [ANNA, BERT, CARL],  # ten digits, no separator
                "staff_id": ["EMP-7001", "EMP-7002", ANNA],  # Anna also works as staff
                "address": ["Storgatan 1", "Lillgatan 2", "Torget 3"],
            }
        ),
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["I1", "I2", "I3"],
                "client_id": [anna_12, BERT, carl_plus],
                "amount_sek": [1000.0, 2000.0, 3000.0],
            }
        ),
        "hospital_stays": pd.DataFrame({"client_id": pd.Series([], dtype="str")}),
        "provider_persons": pd.DataFrame(
            {
                "provider_id": ["P1", "P2"],
                "person_id": ["19" + OWNER, None],
                "first_name": ["Olle", "Pia"],
                "last_name": ["Olsson", "Persson"],
            }
        ),
        "providers": pd.DataFrame({"provider_id": ["P1", "P2"], "legal_form": ["AB", "HB"]}),
    }


def _all_cells(tables: dict[str, pd.DataFrame]) -> list[str]:
    cells: list[str] = []
    for name, frame in tables.items():
        cells.append(name)
        cells.extend(str(c) for c in frame.columns)
        for column in frame.columns:
            cells.extend(str(v) for v in frame[column].tolist())
    return cells


def test_same_input_and_key_give_same_ids_and_different_key_different_ids() -> None:
    first = pseudonymise_tables(_raw_tables(), KEY)
    again = pseudonymise_tables(_raw_tables(), KEY)
    other = pseudonymise_tables(_raw_tables(), OTHER_KEY)
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert set(first["clients"]["client_id"]).isdisjoint(other["clients"]["client_id"])
    assert set(first["visits"]["staff_id"]).isdisjoint(other["visits"]["staff_id"])


def test_pseudonym_format_is_prefix_and_twenty_hex() -> None:
    out = pseudonymise_tables(_raw_tables(), KEY)
    ids = out["clients"]["client_id"].tolist()
    assert all(v.startswith("C-") and len(v) == 22 for v in ids)
    assert all(int(v[2:], 16) >= 0 for v in ids)
    assert out["visits"]["staff_id"].str.startswith("S-").all()
    assert out["provider_persons"]["person_id"].iloc[0].startswith("X-")


@pytest.mark.parametrize(
    "spelling",
    [
        "19121212-1212",
        "191212121212",
        "121212-1212",
        "1212121212",
        "121212+1212",
        "  19121212-1212 ",
        "121212 1212",
    ],
)
def test_personnummer_spellings_normalise_to_one_form(spelling: str) -> None:
    assert normalise_identifier(spelling) == "1212121212"


def test_invalid_check_digit_or_date_is_not_treated_as_personnummer() -> None:
    # Same digits, wrong check digit: an ordinary id, kept as written (stripped).
    assert normalise_identifier("19121212-1213") == "19121212-1213"
    assert normalise_identifier("19121332-1212") == "19121332-1212"  # day 32
    assert normalise_identifier(" EMP-7001 ") == "EMP-7001"
    # A number column read as float keeps its digits.
    assert normalise_identifier(1212121212.0) == "1212121212"


def test_same_person_in_two_spellings_gets_one_id() -> None:
    out = pseudonymise_tables(_raw_tables(), KEY)
    clients = out["clients"]["client_id"].tolist()
    # Anna: 12-digit with dash in clients, 10-digit with dash in grants, bare in visits.
    assert out["grants"]["client_id"].iloc[0] == clients[0]
    assert out["visits"]["client_id"].iloc[0] == clients[0]
    # Bert: 12 digits, padded with spaces, 10 digits.
    assert out["grants"]["client_id"].iloc[1] == clients[1]
    assert out["invoices"]["client_id"].iloc[1] == clients[1]
    # Carl (100+): '+' in clients and invoices, bare ten digits in visits.
    assert out["visits"]["client_id"].iloc[2] == clients[2]
    assert len(set(clients)) == 3


def test_references_stay_consistent_across_tables() -> None:
    out = pseudonymise_tables(_raw_tables(), KEY)
    known = set(out["clients"]["client_id"])
    for table in ("grants", "visits", "invoices"):
        assert set(out[table]["client_id"]) <= known, table


def test_domains_keep_the_same_value_apart_unless_configured() -> None:
    out = pseudonymise_tables(_raw_tables(), KEY)
    anna_client = out["clients"]["client_id"].iloc[0]
    anna_staff = out["visits"]["staff_id"].iloc[2]
    assert anna_client[2:] != anna_staff[2:]
    linked = PseudonymiseConfig(
        domains={"client_id": "person", "staff_id": "person", "person_id": "person"},
        prefix={"client_id": "P-", "staff_id": "P-", "person_id": "P-"},
    )
    out_linked = pseudonymise_tables(_raw_tables(), KEY, linked)
    assert out_linked["clients"]["client_id"].iloc[0] == out_linked["visits"]["staff_id"].iloc[2]


def test_one_domain_with_two_prefixes_is_rejected() -> None:
    with pytest.raises(ValueError, match="share a prefix"):
        PseudonymiseConfig(domains={"client_id": "p", "staff_id": "p", "person_id": "p"})


def test_no_original_identifier_or_name_survives_anywhere() -> None:
    raw = _raw_tables()
    out = pseudonymise_tables(raw, KEY)
    originals: set[str] = set()
    for column in ("client_id", "staff_id", "person_id", "name", "first_name", "last_name"):
        for frame in raw.values():
            if column in frame.columns:
                originals |= {str(v).strip() for v in frame[column].dropna()}
    originals |= {"Storgatan 1", "Lillgatan 2", "Torget 3"}
    # Every spelling's digits, with and without century and separator.
    originals |= {ANNA, BERT, CARL, OWNER, "19" + ANNA, "19" + OWNER, ANNA[:6], BERT[:6]}
    cells = _all_cells(out)
    for original in originals:
        assert not any(original in cell for cell in cells), original
    for dropped in ("name", "personnummer", "address", "first_name", "last_name"):
        assert all(dropped not in frame.columns for frame in out.values())


def test_key_never_appears_in_output() -> None:
    key = generate_key()
    assert len(key) == 32
    cells = _all_cells(pseudonymise_tables(_raw_tables(), key))
    for needle in (key.hex(), key.hex()[:16], key.hex().upper()[:16]):
        assert not any(needle in cell for cell in cells)


def test_nulls_stay_null_and_other_columns_and_inputs_untouched() -> None:
    raw = _raw_tables()
    before = {name: frame.copy() for name, frame in raw.items()}
    out = pseudonymise_tables(raw, KEY)
    assert out["provider_persons"]["person_id"].isna().tolist() == [False, True]
    assert out["hospital_stays"].empty
    pd.testing.assert_frame_equal(out["providers"], raw["providers"])
    assert out["invoices"]["amount_sek"].tolist() == [1000.0, 2000.0, 3000.0]
    assert out["clients"]["district"].tolist() == ["Norr", "Syd", "Norr"]
    for name, frame in raw.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_identifier_column_in_an_unlisted_table_is_pseudonymised() -> None:
    raw = {"extra_table": pd.DataFrame({"client_id": [ANNA], "value": [np.float64(1.0)]})}
    out = pseudonymise_tables(raw, KEY)
    assert out["extra_table"]["client_id"].iloc[0] == pseudonym(ANNA, KEY, "client", "C-")


def test_short_or_missing_key_file_gives_a_clear_error(tmp_path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    with pytest.raises(TillitError, match="31 bytes"):
        load_key(short)
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    with pytest.raises(TillitError, match="empty"):
        load_key(empty)
    with pytest.raises(TillitError, match="not found"):
        load_key(tmp_path / "absent.key")
    good = tmp_path / "good.key"
    good.write_bytes(KEY)
    assert load_key(good) == KEY


def test_short_key_in_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        pseudonymise_tables(_raw_tables(), b"short")


def test_direct_identifiers_are_dropped_whatever_their_case_or_language() -> None:
    tables = {
        "clients": pd.DataFrame(
            {
                "client_id": [_with_check_digit("380101123")],
                "Personnummer": [_with_check_digit("380101123")],
                "Namn": ["Greta Gran"],
                "ADRESS": ["Storgatan 1"],
                "district": ["Norr"],
            }
        )
    }
    out = pseudonymise_tables(tables, KEY)["clients"]
    assert list(out.columns) == ["client_id", "district"]


def test_a_column_of_personal_identity_numbers_nobody_listed_stops_the_run() -> None:
    numbers = [_with_check_digit(f"3801011{i:02d}") for i in range(10)]
    tables = {"visits": pd.DataFrame({"visit_id": ["V1"] * 10, "carer_ssn": numbers})}
    with pytest.raises(TillitError, match=r"visits\.carer_ssn holds personal identity numbers"):
        pseudonymise_tables(tables, KEY)
