"""Schema tests: every rule of data contract v1 quarantines the row that breaks it, by name."""

from __future__ import annotations

import pandas as pd
import pytest

from tillit.data.contract import TABLES, luhn_valid
from tillit.data.io import read_raw_tables, write_tables
from tillit.data.validate import (
    QuarantineLimitError,
    ValidationConfig,
    check_quarantine_limit,
    validate_tables,
)
from tillit.errors import ContractError

T = pd.Timestamp

# (table, row, column, bad value, expected rule)
CELL_RULES = [
    ("providers", 0, "provider_id", None, "provider_id must not be empty"),
    ("providers", 0, "org_number", "5566778899", r"org_number must match ^\d{6}-\d{4}$"),
    ("providers", 0, "org_number", "556677-8898", "valid_luhn_check_digit"),
    ("providers", 0, "legal_form", "LLC", "legal_form must be one of AB, HB, KB, EF, EK, other"),
    ("providers", 0, "registered_on", "2015-13-01", "type: date YYYY-MM-DD"),
    ("providers", 0, "approved_on", T("2014-01-01"), "approved_on_not_before_registered_on"),
    ("providers", 0, "terminated_on", T("2015-06-01"), "terminated_on_not_before_approved_on"),
    ("provider_events", 0, "event_type", "bankrupt", "event_type must be one of"),
    ("provider_events", 1, "amount_sek", -5.0, "amount_sek >= 0"),
    ("provider_events", 0, "event_date", None, "event_date must not be empty"),
    (
        "provider_events",
        0,
        "provider_id",
        "P404",
        "provider_id must refer to a valid row of providers",
    ),
    ("provider_persons", 0, "role", "chairman", "role must be one of"),
    ("provider_persons", 0, "to_date", T("2014-01-01"), "to_date_not_before_from_date"),
    ("provider_persons", 1, "provider_id", "P404", "provider_id must refer to a valid row"),
    ("clients", 0, "birth_year", 1899, "birth_year >= 1900"),
    ("clients", 0, "birth_year", 2999, "birth_year_not_after_current_year"),
    ("clients", 0, "birth_year", "nineteen", "type: int"),
    ("clients", 0, "district", None, "district must not be empty"),
    ("grants", 0, "service_type", "gardening", "service_type must be one of"),
    ("grants", 0, "hours_per_month", 0.0, "hours_per_month > 0"),
    ("grants", 0, "hours_per_month", 745.0, "hours_per_month <= 744"),
    ("grants", 0, "valid_to", T("2023-01-01"), "valid_to_not_before_valid_from"),
    ("grants", 0, "client_id", "C404", "client_id must refer to a valid row of clients"),
    ("grants", 0, "provider_id", "P404", "provider_id must refer to a valid row of providers"),
    ("hospital_stays", 0, "discharged_on", T("2025-01-01"), "discharged_on_not_before_admitted"),
    ("hospital_stays", 0, "client_id", "C404", "client_id must refer to a valid row of clients"),
    ("visits", 0, "end_at", T("2025-01-02 07:59"), "end_at_after_start_at"),
    ("visits", 0, "end_at", T("2025-01-03 08:01"), "visit_at_most_24_hours"),
    ("visits", 0, "method", "fax", "method must be one of nfc, app, manual"),
    ("visits", 0, "start_at", "yesterday", "type: timestamp"),
    ("visits", 0, "staff_id", None, "staff_id must not be empty"),
    ("visits", 0, "client_id", "C404", "client_id must refer to a valid row of clients"),
    ("invoices", 0, "period", "2025-13", "period must match"),
    ("invoices", 0, "billed_hours", -1.0, "billed_hours >= 0"),
    ("invoices", 0, "billed_hours", 800.0, "billed_hours <= 744"),
    ("invoices", 0, "billed_hours", "ten", "type: float"),
    ("invoices", 0, "amount_sek", -0.01, "amount_sek >= 0"),
    ("invoices", 0, "submitted_on", T("2024-12-31"), "submitted_on_not_before_first_day_of_period"),
    ("invoices", 0, "provider_id", "P404", "provider_id must refer to a valid row of providers"),
    ("tariffs", 0, "rate_sek", 0.0, "rate_sek > 0"),
    ("tariffs", 0, "year", 2025.5, "type: int"),
    ("audit_outcomes", 0, "outcome", "maybe", "outcome must be one of confirmed, cleared"),
    ("audit_outcomes", 0, "recovered_sek", -1.0, "recovered_sek >= 0"),
    ("audit_outcomes", 0, "invoice_id", "I404", "invoice_id must refer to a valid row of invoices"),
    ("audit_outcomes", 0, "selection", "lottery", "selection must be one of random_check"),
]


def test_clean_tables_pass_with_nothing_quarantined(tables):
    result = validate_tables(tables)
    assert result.quarantine.empty
    for name, frame in tables.items():
        assert result.summary[name]["rows_quarantined"] == 0
        assert len(result.tables[name]) == len(frame)
        assert list(result.tables[name].columns) == list(TABLES[name].columns)


@pytest.mark.parametrize(("table", "row", "column", "value", "rule"), CELL_RULES)
def test_each_rule_quarantines_exactly_the_breaking_row(tables, table, row, column, value, rule):
    frame = tables[table].astype({column: "object"})
    frame.loc[row, column] = value
    tables[table] = frame
    result = validate_tables(tables)
    records = result.quarantine[result.quarantine["table"] == table]
    assert set(records["row_number"]) == {row}
    assert (records["column"] == column).any()
    assert records["rule"].str.contains(rule, regex=False).any(), records["rule"].tolist()
    assert result.summary[table]["rows_quarantined"] == 1
    assert len(result.tables[table]) == len(tables[table]) - 1


@pytest.mark.parametrize(
    ("table", "key"),
    [("providers", "provider_id"), ("clients", "client_id"), ("grants", "grant_id"),
     ("visits", "visit_id"), ("invoices", "invoice_id")],
)  # fmt: skip
def test_duplicate_keys_quarantine_both_rows(tables, table, key):
    frame = tables[table]
    duplicate = frame.iloc[[0]].copy()
    tables[table] = pd.concat([frame, duplicate], ignore_index=True)
    result = validate_tables(tables)
    records = result.quarantine[result.quarantine["table"] == table]
    assert set(records["row_number"]) == {0, len(frame)}
    assert (records["rule"] == f"{key} must be unique").all()


def test_duplicate_tariff_service_and_year_is_quarantined(tables):
    tariffs = tables["tariffs"]
    tables["tariffs"] = pd.concat([tariffs, tariffs.iloc[[1]]], ignore_index=True)
    result = validate_tables(tables)
    records = result.quarantine[result.quarantine["table"] == "tariffs"]
    assert set(records["row_number"]) == {1, 2}
    assert set(records["rule"]) == {"service_type_and_year_unique"}


def test_rows_referring_to_a_quarantined_row_are_quarantined_too(tables):
    tables["providers"].loc[1, "legal_form"] = "LLC"
    result = validate_tables(tables)
    invoices = result.quarantine[result.quarantine["table"] == "invoices"]
    assert invoices["row_key"].tolist() == ["invoice_id=I3"]
    assert result.tables["invoices"]["invoice_id"].tolist() == ["I1", "I2"]


def test_quarantine_record_names_table_key_column_rule_and_value(tables):
    tables["invoices"].loc[1, "billed_hours"] = -2.0
    record = validate_tables(tables).quarantine.iloc[0]
    assert record.to_dict() == {
        "table": "invoices",
        "row_number": 1,
        "row_key": "invoice_id=I2",
        "column": "billed_hours",
        "rule": "billed_hours >= 0",
        "value": "-2.0",
    }


def test_quarantine_limit_stops_with_every_table_over_it(tables):
    tables["visits"].loc[0, "method"] = "fax"
    tables["tariffs"].loc[1, "rate_sek"] = -400.0
    result = validate_tables(tables)
    with pytest.raises(QuarantineLimitError) as caught:
        check_quarantine_limit(result, ValidationConfig(max_quarantine_share=0.01))
    message = str(caught.value)
    assert "visits: 1 of 3 rows quarantined" in message
    assert "tariffs: 1 of 2 rows quarantined (50.0%)" in message
    assert "providers" not in message
    check_quarantine_limit(result, ValidationConfig(max_quarantine_share=0.5))


def test_csv_and_parquet_give_the_same_validated_tables(tables, tmp_path):
    write_tables(tables, tmp_path / "pq", "parquet")
    write_tables(tables, tmp_path / "csv", "csv")
    from_parquet = validate_tables(read_raw_tables(tmp_path / "pq"))
    from_csv = validate_tables(read_raw_tables(tmp_path / "csv"))
    for name in tables:
        pd.testing.assert_frame_equal(from_parquet.tables[name], from_csv.tables[name])
        pd.testing.assert_frame_equal(
            from_parquet.tables[name], validate_tables(tables).tables[name]
        )


@pytest.mark.parametrize(
    ("org_number", "valid"),
    [("556677-8899", True), ("556677-8898", False), ("212000-0142", True), ("12345", False)],
)
def test_luhn_check_digit(org_number, valid):
    assert luhn_valid(org_number) is valid


def test_a_v1_0_folder_without_the_optional_selection_column_still_reads(tables, tmp_path):
    tables["audit_outcomes"] = tables["audit_outcomes"].drop(columns="selection")
    write_tables(tables, tmp_path, "csv")
    result = validate_tables(read_raw_tables(tmp_path))
    assert result.quarantine.empty
    assert result.tables["audit_outcomes"]["selection"].isna().all()


def test_missing_tables_and_columns_are_named_in_one_message(tables, tmp_path):
    del tables["visits"]
    tables["invoices"] = tables["invoices"].drop(columns=["amount_sek", "period"])
    del tables["hospital_stays"]  # optional: not a problem
    write_tables(tables, tmp_path, "parquet")
    with pytest.raises(ContractError) as caught:
        read_raw_tables(tmp_path)
    message = str(caught.value)
    assert "visits.parquet|.csv: required table is missing" in message
    assert "invoices.parquet: missing column(s) period, amount_sek" in message
    assert "hospital_stays" not in message


def test_v1_2_an_applicant_without_an_approval_date_passes(tables, tmp_path):
    applicant = pd.DataFrame(
        {
            "provider_id": ["P3"],
            "org_number": ["212000-0142"],
            "legal_form": ["AB"],
            "registered_on": pd.to_datetime(["2024-05-01"]),
            "approved_on": pd.Series([pd.NaT], dtype="datetime64[ns]"),
            "terminated_on": pd.Series([pd.NaT], dtype="datetime64[ns]"),
        }
    )
    tables["providers"] = pd.concat([tables["providers"], applicant], ignore_index=True)
    write_tables(tables, tmp_path, "csv")  # an empty cell in the CSV export
    result = validate_tables(read_raw_tables(tmp_path))
    assert result.quarantine.empty
    providers = result.tables["providers"].set_index("provider_id")
    assert pd.isna(providers.loc["P3", "approved_on"])
    assert providers.loc["P1", "approved_on"] == T("2016-01-01")


def test_v1_2_an_applicant_cannot_have_a_terminated_contract(tables):
    tables["providers"]["approved_on"] = tables["providers"]["approved_on"].astype("object")
    tables["providers"].loc[1, "approved_on"] = None
    tables["providers"].loc[1, "terminated_on"] = T("2024-01-01")
    result = validate_tables(tables)
    records = result.quarantine[result.quarantine["table"] == "providers"]
    assert set(records["row_number"]) == {1}
    assert set(records["rule"]) == {"terminated_on_not_before_approved_on"}


def test_v1_2_an_invoice_of_an_applicant_is_billing_outside_any_contract(tables):
    from tillit.features import build_features

    tables["providers"]["approved_on"] = tables["providers"]["approved_on"].astype("object")
    tables["providers"].loc[1, "approved_on"] = None
    valid = validate_tables(tables)
    assert valid.quarantine.empty
    feature_set = build_features(valid.tables, "2025-01")
    features = feature_set.features.set_index("invoice_id")
    assert features.loc["I3", "finding_billing_outside_contract"] == 1.0
    assert features.loc["I3", "provider_approval_age_years"] == 0.0
    assert features.loc["I1", "finding_billing_outside_contract"] == 0.0
    finding = feature_set.findings[
        (feature_set.findings["invoice_id"] == "I3")
        & (feature_set.findings["finding"] == "billing_outside_contract")
    ]
    assert "no approval date" in finding["evidence"].iloc[0]
