"""Data contract v1 (../shared/data-contract.md) as Pandera models, one per table.

v1.1 adds one optional column, `audit_outcomes.selection` (how a review was
picked), so that decisions on random checks can be told apart; v1.0 folders
without it read unchanged. v1.2 widens the file formats (CSV dialects, time
zones; see `tillit.data.io`) and bounds every number by what is plausible: no
number is infinite, and the upper bounds below are far beyond any real value,
so a value above one is a broken export, not a large invoice. v1.2 also lets
`providers.approved_on` be empty: an applicant not yet approved (it has no
invoices; one that bills is billing outside any contract, a finding).

The models check one table at a time: types, nulls, allowed values, ranges,
uniqueness and the order of dates within a row. References between tables
need the other tables, so `tillit.data.validate` checks those after the models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tillit import CONTRACT_VERSION
from tillit.data.vocabulary import (
    AUDIT_OUTCOMES,
    EVENT_TYPES,
    LEGAL_FORMS,
    MAX_HOURS_PER_MONTH,
    ORG_NUMBER_PATTERN,
    PERIOD_PATTERN,
    PERSON_ROLES,
    POSTCODE_PATTERN,
    REVIEW_SELECTIONS,
    SERVICE_TYPES,
    VISIT_METHODS,
)

# Plausibility bounds (v1.2): each is far above anything a real export holds.
MAX_INVOICE_AMOUNT_SEK = 10_000_000.0  # one client's month of one service: 744 h x 10,000 SEK/h
MAX_RATE_SEK_PER_HOUR = 10_000.0  # home-care tariffs are about 300-700 SEK/h
MAX_REGISTER_AMOUNT_SEK = 1_000_000_000.0  # a tax debt registered with Kronofogden
MIN_YEAR, MAX_YEAR = 1900, 2100  # tariff years


def luhn_valid(number: str) -> bool:
    """Whether ten digits (`NNNNNN-NNNN` or without the dash) end in a valid Luhn check digit.

    Organisation numbers and personal identity numbers share the rule.
    """
    digits = number.replace("-", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(digits):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _period_start(period: pd.Series) -> pd.Series:
    return pd.to_datetime(period.astype("str") + "-01", format="%Y-%m-%d", errors="coerce")


class _Contract(pa.DataFrameModel):
    class Config:
        strict = False  # extra columns are dropped by the loader, not treated as errors
        coerce = False  # the loader coerces types and quarantines what does not parse


class Providers(_Contract):
    provider_id: Series[str] = pa.Field(unique=True)
    org_number: Series[str] = pa.Field(str_matches=ORG_NUMBER_PATTERN)
    legal_form: Series[str] = pa.Field(isin=LEGAL_FORMS)
    registered_on: Series[pd.Timestamp]
    approved_on: Series[pd.Timestamp] = pa.Field(nullable=True)  # empty: an applicant (v1.2)
    terminated_on: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.check("org_number", name="valid_luhn_check_digit", element_wise=True)
    def _luhn(cls, org_number: str) -> bool:
        return luhn_valid(org_number)

    @pa.dataframe_check(name="approved_on_not_before_registered_on")
    def _approved_after_registered(cls, df: pd.DataFrame) -> pd.Series:
        return df["approved_on"].isna() | (df["approved_on"] >= df["registered_on"])

    @pa.dataframe_check(name="terminated_on_not_before_approved_on")
    def _terminated_after_approved(cls, df: pd.DataFrame) -> pd.Series:
        # An applicant (approved_on empty) has no contract that could have ended.
        return df["terminated_on"].isna() | (df["terminated_on"] >= df["approved_on"])


class ProviderEvents(_Contract):
    provider_id: Series[str]
    event_date: Series[pd.Timestamp]
    event_type: Series[str] = pa.Field(isin=EVENT_TYPES)
    amount_sek: Series[float] = pa.Field(nullable=True, ge=0, le=MAX_REGISTER_AMOUNT_SEK)


class ProviderPersons(_Contract):
    provider_id: Series[str]
    person_id: Series[str]
    role: Series[str] = pa.Field(isin=PERSON_ROLES)
    from_date: Series[pd.Timestamp]
    to_date: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check(name="to_date_not_before_from_date")
    def _to_after_from(cls, df: pd.DataFrame) -> pd.Series:
        return df["to_date"].isna() | (df["to_date"] >= df["from_date"])

    # v1.3, optional: a keyed token of the person's name and the birth year, so that one
    # person listed under two ids (with and without a personal number) can be linked.
    name_token: Series[str] = pa.Field(nullable=True)
    birth_year: Series[float] = pa.Field(nullable=True, ge=MIN_YEAR, le=MAX_YEAR)


# The facts of a provider_contacts row; a row must hold at least one of them.
CONTACT_FACTS = (
    "street_address",
    "postcode",
    "phone_number",
    "bankgiro",
    "plusgiro",
    "email_domain",
)


class ProviderContacts(_Contract):
    """v1.3, optional: a provider's contact facts from `valid_from` (to `valid_to`, if ended).

    Facts are text as the register wrote them or keyed tokens (`tillit pseudonymise`);
    `tillit.data.linkage` compares them after the same normalisation either way.
    """

    provider_id: Series[str]
    valid_from: Series[pd.Timestamp]
    valid_to: Series[pd.Timestamp] = pa.Field(nullable=True)
    street_address: Series[str] = pa.Field(nullable=True)
    postcode: Series[str] = pa.Field(nullable=True, str_matches=POSTCODE_PATTERN)
    phone_number: Series[str] = pa.Field(nullable=True)
    bankgiro: Series[str] = pa.Field(nullable=True)
    plusgiro: Series[str] = pa.Field(nullable=True)
    email_domain: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="valid_to_not_before_valid_from")
    def _valid_to_after_from(cls, df: pd.DataFrame) -> pd.Series:
        return df["valid_to"].isna() | (df["valid_to"] >= df["valid_from"])

    @pa.dataframe_check(name="at_least_one_contact_fact")
    def _some_fact(cls, df: pd.DataFrame) -> pd.Series:
        return df[list(CONTACT_FACTS)].notna().any(axis=1)


class Clients(_Contract):
    client_id: Series[str] = pa.Field(unique=True)
    birth_year: Series[int] = pa.Field(ge=1900)
    district: Series[str]
    deceased_on: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.check("birth_year", name="birth_year_not_after_current_year")
    def _birth_year_not_future(cls, birth_year: pd.Series) -> pd.Series:
        return birth_year <= dt.date.today().year


class Grants(_Contract):
    grant_id: Series[str] = pa.Field(unique=True)
    client_id: Series[str]
    provider_id: Series[str]
    service_type: Series[str] = pa.Field(isin=SERVICE_TYPES)
    hours_per_month: Series[float] = pa.Field(gt=0, le=MAX_HOURS_PER_MONTH)
    valid_from: Series[pd.Timestamp]
    valid_to: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check(name="valid_to_not_before_valid_from")
    def _valid_to_after_from(cls, df: pd.DataFrame) -> pd.Series:
        return df["valid_to"].isna() | (df["valid_to"] >= df["valid_from"])


class HospitalStays(_Contract):
    client_id: Series[str]
    admitted_on: Series[pd.Timestamp]
    discharged_on: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check(name="discharged_on_not_before_admitted_on")
    def _discharged_after_admitted(cls, df: pd.DataFrame) -> pd.Series:
        return df["discharged_on"].isna() | (df["discharged_on"] >= df["admitted_on"])


class Visits(_Contract):
    visit_id: Series[str] = pa.Field(unique=True)
    provider_id: Series[str]
    client_id: Series[str]
    staff_id: Series[str]
    service_type: Series[str] = pa.Field(isin=SERVICE_TYPES)
    start_at: Series[pd.Timestamp]
    end_at: Series[pd.Timestamp]
    method: Series[str] = pa.Field(isin=VISIT_METHODS)

    @pa.dataframe_check(name="end_at_after_start_at")
    def _end_after_start(cls, df: pd.DataFrame) -> pd.Series:
        return df["end_at"] > df["start_at"]

    @pa.dataframe_check(name="visit_at_most_24_hours")
    def _at_most_a_day(cls, df: pd.DataFrame) -> pd.Series:
        return (df["end_at"] - df["start_at"]) <= pd.Timedelta(hours=24)


class Invoices(_Contract):
    invoice_id: Series[str] = pa.Field(unique=True)
    provider_id: Series[str]
    client_id: Series[str]
    period: Series[str] = pa.Field(str_matches=PERIOD_PATTERN)
    service_type: Series[str] = pa.Field(isin=SERVICE_TYPES)
    billed_hours: Series[float] = pa.Field(ge=0, le=MAX_HOURS_PER_MONTH)
    amount_sek: Series[float] = pa.Field(ge=0, le=MAX_INVOICE_AMOUNT_SEK)
    submitted_on: Series[pd.Timestamp]
    # v1.3, optional: the municipality that pays, in a pooled export (a national body's).
    municipality: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="submitted_on_not_before_first_day_of_period")
    def _submitted_after_period_start(cls, df: pd.DataFrame) -> pd.Series:
        start = _period_start(df["period"])
        return start.isna() | (df["submitted_on"] >= start)


class Tariffs(_Contract):
    service_type: Series[str] = pa.Field(isin=SERVICE_TYPES)
    year: Series[int] = pa.Field(ge=MIN_YEAR, le=MAX_YEAR)
    rate_sek: Series[float] = pa.Field(gt=0, le=MAX_RATE_SEK_PER_HOUR)
    # v1.3, optional: whose rate it is, in a pooled export; invoices then join their own.
    municipality: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="service_type_and_year_unique")
    def _unique_service_year(cls, df: pd.DataFrame) -> pd.Series:
        key = ["service_type", "year", *(["municipality"] if "municipality" in df else [])]
        return ~df.duplicated(key, keep=False)


class AuditOutcomes(_Contract):
    invoice_id: Series[str]
    reviewed_on: Series[pd.Timestamp]
    outcome: Series[str] = pa.Field(isin=AUDIT_OUTCOMES)
    recovered_sek: Series[float] = pa.Field(nullable=True, ge=0, le=MAX_INVOICE_AMOUNT_SEK)
    scheme: Series[str] = pa.Field(nullable=True)
    selection: Series[str] = pa.Field(nullable=True, isin=REVIEW_SELECTIONS)


@dataclass(frozen=True)
class Reference:
    """A column whose values must exist as keys of another table."""

    column: str
    table: str
    key: str


@dataclass(frozen=True)
class TableSpec:
    """What the loader and validator need to know about one contract table."""

    name: str
    model: type[_Contract]
    required: bool
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    # Which column a row-level (dataframe) rule is about, for the quarantine record.
    row_rule_columns: tuple[tuple[str, str], ...] = ()
    # Columns added in a minor contract version: a v1.0 file without them still reads (as nulls).
    optional_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.to_schema().columns)

    def dtypes(self) -> dict[str, str]:
        """Column name to a plain kind: str, float, int, date or timestamp."""
        kinds = {}
        for name, column in self.model.to_schema().columns.items():
            text = str(column.dtype)
            if "datetime" in text:
                kinds[name] = "timestamp" if name in TIMESTAMP_COLUMNS else "date"
            elif "float" in text:
                kinds[name] = "float"
            elif "int" in text:
                kinds[name] = "int"
            else:
                kinds[name] = "str"
        return kinds


TIMESTAMP_COLUMNS = frozenset({"start_at", "end_at"})

_P = Reference("provider_id", "providers", "provider_id")
_C = Reference("client_id", "clients", "client_id")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "providers",
            Providers,
            True,
            ("provider_id",),
            row_rule_columns=(
                ("approved_on_not_before_registered_on", "approved_on"),
                ("terminated_on_not_before_approved_on", "terminated_on"),
            ),
        ),
        TableSpec("provider_events", ProviderEvents, True, (), (_P,)),
        TableSpec(
            "provider_persons",
            ProviderPersons,
            True,
            (),
            (_P,),
            (("to_date_not_before_from_date", "to_date"),),
            optional_columns=("name_token", "birth_year"),  # v1.3
        ),
        TableSpec(
            "provider_contacts",  # v1.3, optional
            ProviderContacts,
            False,
            (),
            (_P,),
            (
                ("valid_to_not_before_valid_from", "valid_to"),
                ("at_least_one_contact_fact", "street_address"),
            ),
        ),
        TableSpec("clients", Clients, True, ("client_id",)),
        TableSpec(
            "grants",
            Grants,
            True,
            ("grant_id",),
            (_C, _P),
            (("valid_to_not_before_valid_from", "valid_to"),),
        ),
        TableSpec(
            "hospital_stays",
            HospitalStays,
            False,
            (),
            (_C,),
            (("discharged_on_not_before_admitted_on", "discharged_on"),),
        ),
        TableSpec(
            "visits",
            Visits,
            True,
            ("visit_id",),
            (_P, _C),
            (("end_at_after_start_at", "end_at"), ("visit_at_most_24_hours", "end_at")),
        ),
        TableSpec(
            "invoices",
            Invoices,
            True,
            ("invoice_id",),
            (_P, _C),
            (("submitted_on_not_before_first_day_of_period", "submitted_on"),),
            optional_columns=("municipality",),  # v1.3
        ),
        TableSpec(
            "tariffs",
            Tariffs,
            True,
            ("service_type", "year"),
            row_rule_columns=(("service_type_and_year_unique", "year"),),
            optional_columns=("municipality",),  # v1.3
        ),
        TableSpec(
            "audit_outcomes",
            AuditOutcomes,
            False,
            (),
            (Reference("invoice_id", "invoices", "invoice_id"),),
            optional_columns=("selection",),
        ),
    )
}

__all__ = ["CONTACT_FACTS", "CONTRACT_VERSION", "TABLES", "TableSpec", "luhn_valid"]
