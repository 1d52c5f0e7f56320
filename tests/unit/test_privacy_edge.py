"""Privacy at the edge: what `tillit pseudonymise` lets through, tried as a provider would attack it.

A provider writes its own ids and an export carries more columns than the contract
asks for. Each attack of the issue is reproduced here: a personnummer in a text
column, a name column, a sole trader's org number (its owner's personnummer); a key
of 32 identical bytes; a key file inside --out.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import ok, refused, tillit
from tillit.core.keys import key_weakness
from tillit.data.contract import luhn_valid
from tillit.data.pseudonymise import (
    TEXT_TOKEN_PREFIX,
    is_personal_org_number,
    load_key,
    mask_personal_numbers,
    pseudo_org_number,
    pseudonymise_export,
    pseudonymise_tables,
)
from tillit.errors import TillitError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def with_check_digit(nine: str) -> str:
    """Ten digits: nine plus the Luhn check digit."""
    for check in "0123456789":
        if luhn_valid(nine + check):
            return nine + check
    raise AssertionError(nine)


OWNER = with_check_digit("800202123")  # a sole trader, born 1980-02-02
CLIENT = with_check_digit("450615987")
COORDINATION = with_check_digit("800262123")  # samordningsnummer: day 02 + 60
COMPANY_ORG = with_check_digit("556677889")  # third digit 6: a company, never a person


def dashed(ten: str) -> str:
    return f"{ten[:6]}-{ten[6:]}"


# ------------------------------------------------------------------ personal numbers in text


@pytest.mark.parametrize(
    "spelling",
    [
        dashed(CLIENT),
        CLIENT,
        "19" + CLIENT,
        "19" + dashed(CLIENT),
        f"{CLIENT[:6]}+{CLIENT[6:]}",
    ],
    ids=["dash", "ten_digits", "twelve_digits", "twelve_with_dash", "plus_for_100_plus"],
)
def test_every_spelling_in_free_text_is_masked_to_one_token(spelling: str) -> None:
    masked, count = mask_personal_numbers(f"ring anhörig om {spelling} i morgon", KEY)
    reference, _ = mask_personal_numbers(dashed(CLIENT), KEY)
    assert count == 1
    assert CLIENT[:6] not in masked and CLIENT[6:] not in masked
    assert masked == f"ring anhörig om {reference} i morgon"
    assert reference.startswith(TEXT_TOKEN_PREFIX) and len(reference) == len("PNR-") + 12


def test_coordination_numbers_and_numbers_with_a_wrong_check_digit_are_masked_too() -> None:
    # A mistyped personnummer is still personal data: the check digit is not required.
    wrong_digit = CLIENT[:9] + str((int(CLIENT[9]) + 1) % 10)
    for number in (dashed(COORDINATION), dashed(wrong_digit)):
        masked, count = mask_personal_numbers(f"note {number}", KEY)
        assert count == 1 and number not in masked


def test_digits_that_cannot_be_a_date_and_company_org_numbers_stay() -> None:
    for text in (
        dashed(COMPANY_ORG),  # month 67
        "INV-0000012345",  # month 00
        "2025-03-01",
        "ref 12345678901234",  # fourteen digits: no personnummer boundary
    ):
        assert mask_personal_numbers(text, KEY) == (text, 0)


def test_the_token_is_keyed() -> None:
    assert mask_personal_numbers(CLIENT, KEY)[0] != mask_personal_numbers(CLIENT, OTHER_KEY)[0]


# ------------------------------------------------------------------ sole traders' org numbers


def test_a_sole_traders_org_number_and_any_personal_number_as_org_number_are_personal() -> None:
    assert is_personal_org_number(dashed(OWNER), "AB")  # a personnummer, whatever the form says
    assert is_personal_org_number(dashed(COMPANY_ORG), "EF")  # a sole trader, whatever the digits
    assert not is_personal_org_number(dashed(COMPANY_ORG), "AB")


def test_a_pseudo_org_number_passes_the_contract_and_is_no_personnummer() -> None:
    pseudo = pseudo_org_number(dashed(OWNER), KEY)
    assert pseudo == pseudo_org_number(OWNER, KEY)  # spelling does not matter
    assert pseudo != pseudo_org_number(dashed(OWNER), OTHER_KEY)
    assert pseudo.startswith("00") and int(pseudo[2]) >= 2
    assert len(pseudo) == 11 and pseudo[6] == "-" and luhn_valid(pseudo)
    assert not is_personal_org_number(pseudo, "AB")
    assert mask_personal_numbers(pseudo, KEY) == (pseudo, 0)


# ------------------------------------------------------------------ the allow-list


def attacked_export() -> dict[str, pd.DataFrame]:
    """An export as a provider could shape it: its id is the owner's personnummer."""
    own_id = f"EF {dashed(OWNER)}"
    return {
        "providers": pd.DataFrame(
            {
                "provider_id": [own_id, "P2"],
                "org_number": [dashed(OWNER), dashed(COMPANY_ORG)],
                "legal_form": ["EF", "AB"],
                "provider_name": ["Olle Olsson Omsorg", "Vård AB"],
            }
        ),
        "invoices": pd.DataFrame(
            {"invoice_id": ["I1", "I2"], "provider_id": [own_id, "P2"], "client_id": ["C1", "C2"]}
        ),
        "clients": pd.DataFrame(
            {"client_id": ["C1", "C2"], "district": [f"Norr, anhörig {CLIENT}", "Syd"]}
        ),
        "case_notes": pd.DataFrame({"client_id": ["C1"], "text": ["Olle ringde"]}),
    }


def test_the_export_keeps_contract_columns_only_masks_text_and_pseudonymises_sole_traders() -> None:
    export = pseudonymise_export(attacked_export(), KEY)
    assert export.dropped_tables == ("case_notes",)
    assert export.dropped_columns == ("providers.provider_name",)
    assert export.masked_cells == {
        "providers.provider_id": 1,
        "invoices.provider_id": 1,
        "clients.district": 1,
    }
    assert export.org_numbers_pseudonymised == 1
    providers = export.tables["providers"]
    assert list(providers.columns) == ["provider_id", "org_number", "legal_form"]
    assert providers["org_number"].tolist() == [
        pseudo_org_number(dashed(OWNER), KEY),
        dashed(COMPANY_ORG),  # a company's org number is public and stays
    ]
    # The masked provider id is the same token in every table: invoices still join.
    assert export.tables["invoices"]["provider_id"].tolist() == providers["provider_id"].tolist()
    assert providers["provider_id"].iloc[0].startswith("EF PNR-")
    cells = [str(v) for frame in export.tables.values() for c in frame for v in frame[c].tolist()]
    for secret in (OWNER, OWNER[:6], CLIENT, CLIENT[:6], "Olle"):
        assert not any(secret in cell for cell in cells), secret
    notes = export.notes()
    assert "not in the data contract, not copied: case_notes" in notes
    assert "columns not in the data contract, dropped: providers.provider_name" in notes
    assert "clients.district: a personal identity number masked in 1 cell(s)" in notes


# ------------------------------------------------------------------ keys


def test_a_key_of_32_identical_bytes_or_few_distinct_values_is_refused(tmp_path: Path) -> None:
    weak = tmp_path / "weak.key"
    weak.write_bytes(b"\x00" * 32)
    with pytest.raises(TillitError, match="only 1 distinct value"):
        load_key(weak)
    assert key_weakness(b"ab" * 32) is not None
    assert key_weakness(b"password" * 4) is not None
    assert key_weakness(KEY) is None
    with pytest.raises(ValueError, match="not random"):
        pseudonymise_tables({}, b"\x07" * 32)


def _small_export(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, frame in attacked_export().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_cli_refuses_a_weak_key_and_writes_nothing(tmp_path: Path) -> None:
    export = _small_export(tmp_path / "export")
    key = tmp_path / "keys" / "weak.key"
    key.parent.mkdir()
    key.write_bytes(b"A" * 32)
    result = tillit(
        "pseudonymise", "--in", export, "--out", "pseud", "--key-file", key, cwd=tmp_path
    )
    refused(result, "weak.key is not random", "only 1 distinct value")
    assert not (tmp_path / "pseud").exists()


@pytest.mark.parametrize("inside", ["--out", "--in"])
def test_cli_refuses_a_key_file_inside_the_data_folders(tmp_path: Path, inside: str) -> None:
    export = _small_export(tmp_path / "export")
    out = tmp_path / "pseud"
    folder = out if inside == "--out" else export
    for new_key in (True, False):
        if not new_key:
            folder.mkdir(exist_ok=True)
            (folder / "k.key").write_bytes(bytes(range(32)))
        result = tillit(
            "pseudonymise", "--in", export, "--out", out, "--key-file", folder / "k.key",
            *(["--new-key"] if new_key else []), cwd=tmp_path,
        )  # fmt: skip
        refused(result, f"lies inside the {inside} folder", "keep the key outside")
        if new_key:
            assert not (folder / "k.key").exists()  # refused before any key was made
    assert not (out / "providers.csv").exists()


def test_cli_masks_notes_and_keeps_its_key_0600_and_never_replaces_it(tmp_path: Path) -> None:
    export = _small_export(tmp_path / "export")
    key = tmp_path / "keys" / "k.key"
    done = ok(
        tillit(
            "pseudonymise", "--in", export, "--out", "pseud", "--key-file", key, "--new-key",
            cwd=tmp_path,
        )
    )  # fmt: skip
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "note: columns not in the data contract, dropped: providers.provider_name" in done.stdout
    assert "note: not in the data contract, not copied: case_notes" in done.stdout
    assert "1 sole trader / personal org number(s) pseudonymised" in done.stdout
    manifest = (tmp_path / "pseud" / "manifest.json").read_text("utf-8")
    assert '"providers.provider_name"' in manifest and '"case_notes"' in manifest
    assert not (tmp_path / "pseud" / "case_notes.csv").exists()
    text = "".join(p.read_text("utf-8") for p in (tmp_path / "pseud").glob("*.csv"))
    for secret in (OWNER, OWNER[:6], CLIENT[:6], "Olle"):
        assert secret not in text
    before = key.read_bytes()
    again = tillit(
        "pseudonymise", "--in", export, "--out", "pseud2", "--key-file", key, "--new-key",
        cwd=tmp_path,
    )  # fmt: skip
    refused(again, "refusing to replace a key")
    assert key.read_bytes() == before


# ------------------------------------------------------------------ end to end: providers.html


def test_no_personal_number_name_or_sole_trader_org_number_reaches_providers_html(
    trained_export: dict[str, Path], tmp_path: Path
) -> None:
    """The attack of the issue on a scored municipality: none of it reaches the scorecard."""
    from tests.conftest import EXPORT_PERIOD

    data = tmp_path / "export"
    shutil.copytree(trained_export["data"], data)
    invoices = pd.read_parquet(data / "invoices.parquet")
    busiest = invoices.loc[invoices["period"] == EXPORT_PERIOD, "provider_id"].value_counts()
    sole, other = busiest.index[0], busiest.index[1]  # both on the month's scorecard
    own_id = f"Omsorg {dashed(OWNER)}"
    second = with_check_digit("760505456")
    for path in data.glob("*.parquet"):
        frame = pd.read_parquet(path)
        if "provider_id" in frame:
            frame["provider_id"] = frame["provider_id"].replace({sole: own_id})
            frame.to_parquet(path, index=False)
    providers = pd.read_parquet(data / "providers.parquet")
    providers.loc[providers["provider_id"] == own_id, ["org_number", "legal_form"]] = [
        dashed(OWNER),
        "EF",
    ]
    # Not a sole trader by its form, but its org number is a person's number.
    providers.loc[providers["provider_id"] == other, ["org_number", "legal_form"]] = [
        dashed(second),
        "other",
    ]
    providers["owner_name"] = "Olle Olsson"
    providers.to_parquet(data / "providers.parquet", index=False)

    key = tmp_path / "keys" / "k.key"
    done = ok(
        tillit(
            "pseudonymise", "--in", data, "--out", "pseud", "--key-file", key, "--new-key",
            cwd=tmp_path,
        )
    )  # fmt: skip
    assert "providers.owner_name" in done.stdout
    personal = sum(map(is_personal_org_number, providers["org_number"], providers["legal_form"]))
    assert personal >= 2  # the two planted here, and any sole trader the simulation drew
    assert f"{personal} sole trader / personal org number(s) pseudonymised" in done.stdout
    out = tmp_path / "providers"
    ok(
        tillit(
            "providers", "--data", "pseud", "--period", EXPORT_PERIOD, "--out", out,
            "--store", trained_export["store"], cwd=tmp_path,
        )
    )  # fmt: skip
    page = (out / "providers.html").read_text("utf-8")
    table = pd.read_parquet(out / "provider_risk.parquet")
    assert any(str(p).startswith("Omsorg PNR-") for p in table["provider_id"])
    shown = page + (out / "provider_risk.csv").read_text("utf-8")
    for secret in (OWNER, dashed(OWNER), OWNER[:6], second, dashed(second), "Olle Olsson"):
        assert secret not in shown, secret
