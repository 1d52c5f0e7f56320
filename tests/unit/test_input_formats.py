"""Reading exports as they arrive: CSV dialects, time zones, implausible values, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_tables
from tillit.config import InputConfig
from tillit.data.io import read_raw_tables, write_tables
from tillit.data.validate import validate_tables
from tillit.errors import ContractError


def _valid(folder: Path, settings: InputConfig | None = None) -> dict[str, pd.DataFrame]:
    result = validate_tables(read_raw_tables(folder, settings))
    assert result.quarantine.empty, result.quarantine
    return result.tables


def _excel(tables: dict[str, pd.DataFrame], folder: Path, **options: object) -> Path:
    """Tables as Swedish Excel saves them: `;`, decimal comma, Windows-1252."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"sep": ";", "decimal": ",", "encoding": "cp1252", **options}
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, **settings)  # type: ignore[arg-type]
    return folder


def _assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        pd.testing.assert_frame_equal(
            left[name].astype(object).where(left[name].notna(), None),
            right[name].astype(object).where(right[name].notna(), None),
            check_dtype=False,
            obj=name,
        )


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, pd.DataFrame]:
    folder = tmp_path / "parquet"
    tables = tiny_tables()
    tables["clients"].loc[0, "district"] = "Västra Åkermyra"
    tables["invoices"].loc[0, "amount_sek"] = 1234.5
    tables["invoices"].loc[0, "billed_hours"] = 2.6836
    write_tables(tables, folder)
    return _valid(folder)


def test_swedish_excel_csv_reads_like_parquet(reference, tmp_path):
    tables = tiny_tables()
    tables["clients"].loc[0, "district"] = "Västra Åkermyra"
    tables["invoices"].loc[0, "amount_sek"] = 1234.5
    tables["invoices"].loc[0, "billed_hours"] = 2.6836
    folder = _excel(tables, tmp_path / "excel", lineterminator="\r\n")
    assert b"V\xe4stra \xc5kermyra" in (folder / "clients.csv").read_bytes()
    assert b"1234,5;" in (folder / "invoices.csv").read_bytes()
    _assert_same(_valid(folder), reference)


def test_thousands_spaces_bom_and_crlf(reference, tmp_path):
    tables = tiny_tables()
    tables["clients"].loc[0, "district"] = "Västra Åkermyra"
    tables["invoices"].loc[0, "billed_hours"] = 2.6836
    folder = _excel(tables, tmp_path / "bom", encoding="utf-8-sig", lineterminator="\r\n")
    text = (folder / "invoices.csv").read_text("utf-8-sig")
    # 1 234,50 with a no-break space as thousands separator, as Excel formats money
    text = text.replace(";460,0;", ";1\u00a0234,50;", 1)
    (folder / "invoices.csv").write_text("\ufeff" + text, "utf-8")
    got = _valid(folder)
    assert got["invoices"]["amount_sek"].tolist()[0] == 1234.5
    assert got["clients"]["district"].tolist()[0] == "Västra Åkermyra"


def test_mixed_decimal_marks_stop_and_name_the_setting(tmp_path):
    folder = _excel(tiny_tables(), tmp_path / "mixed")
    text = (folder / "invoices.csv").read_text("cp1252").replace("460,0", "460.5", 1)
    (folder / "invoices.csv").write_text(text, "cp1252")
    with pytest.raises(ContractError, match="--decimal"):
        read_raw_tables(folder)
    got = validate_tables(read_raw_tables(folder, InputConfig(decimal=",")))
    assert got.summary["invoices"]["rows_quarantined"] == 0


def test_explicit_settings_read_a_tab_separated_latin_1_file(reference, tmp_path):
    tables = tiny_tables()
    tables["clients"].loc[0, "district"] = "Västra Åkermyra"
    tables["invoices"].loc[0, "amount_sek"] = 1234.5
    tables["invoices"].loc[0, "billed_hours"] = 2.6836
    folder = _excel(tables, tmp_path / "tab", sep="\t", decimal=".", encoding="latin-1")
    settings = InputConfig(csv_sep="tab", decimal=".", encoding="latin-1")
    _assert_same(_valid(folder, settings), reference)


def test_time_zones_become_stockholm_local_time(tmp_path):
    naive = tiny_tables()
    write_tables(naive, tmp_path / "naive")
    aware = tiny_tables()
    for column in ("start_at", "end_at"):
        aware["visits"][column] = aware["visits"][column].dt.tz_localize("Europe/Stockholm")
        aware["visits"][column] = aware["visits"][column].dt.tz_convert("UTC")
    write_tables(aware, tmp_path / "aware")
    assert "UTC" in str(pd.read_parquet(tmp_path / "aware" / "visits.parquet")["start_at"].dtype)
    offsets = tmp_path / "offsets"
    write_tables(naive, offsets, "csv")
    text = (offsets / "visits.csv").read_text()
    # January is +01:00; the first visit in UTC with Z, the second with an offset, the third naive
    text = text.replace("2025-01-02T08:00:00", "2025-01-02T07:00:00Z")
    text = text.replace("2025-01-02T10:00:00", "2025-01-02T10:00:00+01:00")
    (offsets / "visits.csv").write_text(text)
    expected = _valid(tmp_path / "naive")
    _assert_same(_valid(tmp_path / "aware"), expected)
    _assert_same(_valid(offsets), expected)


@pytest.mark.parametrize(
    ("table", "column", "value", "rule"),
    [
        ("invoices", "amount_sek", np.inf, "amount_sek must be a finite number"),
        ("invoices", "amount_sek", 1e300, "amount_sek <= 10000000.0"),
        ("tariffs", "rate_sek", -np.inf, "rate_sek must be a finite number"),
        ("tariffs", "rate_sek", 25_000.0, "rate_sek <= 10000.0"),
        ("provider_events", "amount_sek", np.inf, "amount_sek must be a finite number"),
        ("audit_outcomes", "recovered_sek", np.inf, "recovered_sek must be a finite number"),
        ("grants", "hours_per_month", 745.0, "hours_per_month <= 744.0"),
        ("invoices", "billed_hours", 800.0, "billed_hours <= 744.0"),
        ("tariffs", "year", None, "year must not be empty"),
        ("clients", "birth_year", None, "birth_year must not be empty"),
        ("tariffs", "year", 1e300, "type: int"),
    ],
)
def test_implausible_values_are_quarantined_with_their_rule(tmp_path, table, column, value, rule):
    tables = tiny_tables()
    frame = tables[table]
    if value is None or frame[column].dtype.kind == "i":
        frame[column] = frame[column].astype("float64")
    frame.loc[0, column] = value
    write_tables(tables, tmp_path / "p")
    quarantine = validate_tables(read_raw_tables(tmp_path / "p")).quarantine
    got = quarantine[quarantine["table"] == table]
    assert got[["row_number", "column", "rule"]].values.tolist() == [[0, column, rule]]


@pytest.mark.parametrize("text", ["inf", "Infinity", "-inf", "NaN"])
def test_non_finite_text_in_a_csv_is_quarantined(tmp_path, text):
    write_tables(tiny_tables(), tmp_path / "c", "csv")
    path = tmp_path / "c" / "invoices.csv"
    path.write_text(path.read_text().replace(",460.0,", f",{text},", 1))
    quarantine = validate_tables(read_raw_tables(tmp_path / "c")).quarantine
    # the audit outcome of that invoice goes with it: it refers to a quarantined row
    assert quarantine[["table", "row_number", "column"]].values.tolist() == [
        ["invoices", 0, "amount_sek"],
        ["audit_outcomes", 0, "invoice_id"],
    ]


def test_blank_integer_in_a_csv_is_quarantined(tmp_path):
    write_tables(tiny_tables(), tmp_path / "c", "csv")
    path = tmp_path / "c" / "tariffs.csv"
    path.write_text(path.read_text().replace(",2025,", ",,", 1))
    quarantine = validate_tables(read_raw_tables(tmp_path / "c")).quarantine
    assert quarantine[["table", "column", "rule"]].values.tolist() == [
        ["tariffs", "year", "year must not be empty"]
    ]


def _broken(tmp_path: Path, fmt: str = "parquet") -> Path:
    folder = tmp_path / "broken"
    write_tables(tiny_tables(), folder, fmt)
    return folder


def test_a_required_table_without_rows_is_refused_by_name(tmp_path):
    folder = _broken(tmp_path)
    visits = pd.read_parquet(folder / "visits.parquet")
    visits.iloc[:0].to_parquet(folder / "visits.parquet")
    with pytest.raises(ContractError, match=r"visits.parquet: required table has no rows"):
        read_raw_tables(folder)


@pytest.mark.parametrize("kind", ["folder", "broken link", "garbage"])
def test_an_optional_table_present_but_unreadable_is_refused(tmp_path, kind):
    folder = _broken(tmp_path)
    path = folder / "hospital_stays.parquet"
    path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "broken link":
        path.symlink_to(folder / "nowhere.parquet")
    else:
        path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ContractError, match=r"hospital_stays\.parquet"):
        read_raw_tables(folder)


@pytest.mark.parametrize("change", ["drop last field", "extra field"])
def test_ragged_csv_rows_are_refused(tmp_path, change):
    folder = _broken(tmp_path, "csv")
    path = folder / "hospital_stays.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] if change == "drop last field" else lines[1] + ",x"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ContractError, match=r"hospital_stays\.csv: 1 row"):
        read_raw_tables(folder)


def test_a_table_given_twice_is_refused(tmp_path):
    folder = _broken(tmp_path)
    write_tables({"invoices": tiny_tables()["invoices"]}, folder, "csv")
    with pytest.raises(ContractError, match="which one is the export"):
        read_raw_tables(folder)


def test_validated_tables_do_not_depend_on_row_order(tmp_path):
    write_tables(tiny_tables(), tmp_path / "a")
    shuffled = {
        name: frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
        for name, frame in tiny_tables().items()
    }
    write_tables(shuffled, tmp_path / "b")
    _assert_same(_valid(tmp_path / "b"), _valid(tmp_path / "a"))


def test_rows_appended_to_a_swedish_excel_table_keep_its_dialect(tmp_path):
    from tillit.data.io import append_table_rows, read_csv_table

    tables = tiny_tables()
    tables["audit_outcomes"].loc[0, "recovered_sek"] = 1234.5
    tables["audit_outcomes"].loc[0, "scheme"] = "överdebitering"
    folder = _excel(tables, tmp_path / "excel", lineterminator="\r\n")
    path = folder / "audit_outcomes.csv"
    before = path.read_bytes()
    existing, dialect = read_csv_table(path, "audit_outcomes")
    assert (dialect.sep, dialect.decimal, dialect.encoding, dialect.line_end) == (
        ";", ",", "cp1252", "\r\n",
    )  # fmt: skip
    new = pd.DataFrame(
        {
            "invoice_id": ["I2"],
            "reviewed_on": pd.to_datetime(["2025-03-02"]),
            "outcome": ["confirmed"],
            "recovered_sek": [99.5],
            "scheme": ["åter"],
            "selection": ["flagged"],
        }
    )
    append_table_rows(path, "audit_outcomes", pd.concat([existing, new]), existing, dialect)
    after = path.read_bytes()
    assert after.startswith(before)
    assert after[len(before) :] == "I2;2025-03-02;confirmed;99,5;åter;flagged\r\n".encode("cp1252")
    outcomes = _valid(folder)["audit_outcomes"]
    assert outcomes["recovered_sek"].tolist() == [1234.5, 99.5]


def test_feedback_reads_a_swedish_excel_decisions_file_into_a_swedish_excel_folder(tmp_path):
    from tillit.config import TillitConfig
    from tillit.jobs.feedback import run_feedback

    folder = _excel(tiny_tables(), tmp_path / "excel")
    before = (folder / "audit_outcomes.csv").read_bytes()
    decisions = pd.DataFrame(
        {
            "invoice_id": ["I3"],
            "decision": ["confirmed"],
            "recovered_sek": [1234.5],
            "reviewer": ["Åsa"],
            "decided_on": ["2025-03-01"],
            "note": ["timmar ej utförda, se brukarens dagbok"],
        }
    )
    decisions_file = tmp_path / "beslut.csv"
    decisions.to_csv(decisions_file, index=False, sep=";", decimal=",", encoding="cp1252")
    outcome = run_feedback(folder, decisions_file, None, TillitConfig(), tmp_path / "models")
    assert (outcome.accepted, outcome.rejected) == (1, 0)
    after = (folder / "audit_outcomes.csv").read_bytes()
    assert after.startswith(before) and after[len(before) :].decode("cp1252").count(";1234,5;") == 1
    outcomes = _valid(folder)["audit_outcomes"]
    assert outcomes["recovered_sek"].tolist()[-1] == 1234.5
