"""The rules a row can break at the door, as validation records them, and in Swedish.

The English templates are the stored text: `tillit.data.validate`, the feature
stage and the score job build every quarantine `rule` from them (`text("rule.<shape>",
"en", ...)`), so the table and the records cannot drift apart. `tillit.i18n.rule_in`
reads a stored rule back against these templates and says it in the chosen language.
Column and table names stay as they are: they are the export's own names.
"""

from __future__ import annotations

from tillit.i18n.types import Tables

# Pandera checks of the contract that have a name of their own (custom checks): their
# English template is the name itself, which is what validation has always recorded.
CHECK_NAMES: tuple[str, ...] = (
    "valid_luhn_check_digit",
    "approved_on_not_before_registered_on",
    "terminated_on_not_before_approved_on",
    "to_date_not_before_from_date",
    "birth_year_not_after_current_year",
    "valid_to_not_before_valid_from",
    "discharged_on_not_before_admitted_on",
    "end_at_after_start_at",
    "visit_at_most_24_hours",
    "submitted_on_not_before_first_day_of_period",
    "service_type_and_year_unique",
    "at_least_one_contact_fact",
)

# Notes added after an invoice's rules (one space before them) about its period.
NOTE_NAMES: tuple[str, ...] = ("period_read_as", "period_unplaceable")

# Pandera's comparison checks and the rule shape each one is worded with.
COMPARISONS: dict[str, str] = {
    "greater_than_or_equal_to": "at_least",
    "greater_than": "above",
    "less_than_or_equal_to": "at_most",
    "less_than": "below",
}

RULES: Tables = {
    "en": {
        "not_empty": "{column} must not be empty",
        "unique": "{column} must be unique",
        "at_least": "{column} >= {bound}",
        "above": "{column} > {bound}",
        "at_most": "{column} <= {bound}",
        "below": "{column} < {bound}",
        "one_of": "{column} must be one of {allowed}",
        "matches": "{column} must match {pattern}",
        "finite": "{column} must be a finite number",
        "type_float": "type: float",
        "type_int": "type: int",
        "type_date": "type: date YYYY-MM-DD",
        "type_timestamp": "type: timestamp YYYY-MM-DDTHH:MM:SS",
        "refers": "{column} must refer to a valid row of {table}",
        "provider_unknown": (
            "provider {provider_id} is not in the providers table: the invoice cannot be described"
        ),
        "client_unknown": (
            "the client_id is not in the clients table: the invoice cannot be described"
        ),
        "no_tariff": "no tariff for {service_type} in {year}: the amount cannot be checked",
        "period_read_as": "(period read as {period})",
        "period_unplaceable": "(period cannot be placed in a month: listed in every month's run)",
        **{name: name for name in CHECK_NAMES},
    },
    "sv": {
        "not_empty": "{column} får inte vara tom",
        "unique": "{column} måste vara unik",
        "at_least": "{column} måste vara minst {bound}",
        "above": "{column} måste vara större än {bound}",
        "at_most": "{column} får vara högst {bound}",
        "below": "{column} måste vara mindre än {bound}",
        "one_of": "{column} måste vara något av {allowed}",
        "matches": "{column} måste följa mönstret {pattern}",
        "finite": "{column} måste vara ett ändligt tal",
        "type_float": "typ: decimaltal",
        "type_int": "typ: heltal",
        "type_date": "typ: datum ÅÅÅÅ-MM-DD",
        "type_timestamp": "typ: tidpunkt ÅÅÅÅ-MM-DDTtt:mm:ss",
        "refers": "{column} måste hänvisa till en giltig rad i tabellen {table}",
        "provider_unknown": (
            "utföraren {provider_id} finns inte i tabellen providers: fakturan kan inte beskrivas"
        ),
        "client_unknown": (
            "brukarens client_id finns inte i tabellen clients: fakturan kan inte beskrivas"
        ),
        "no_tariff": "ingen taxa för {service_type} år {year}: beloppet kan inte kontrolleras",
        "period_read_as": "(perioden lästes som {period})",
        "period_unplaceable": (
            "(perioden kan inte placeras i en månad: listas i varje månads körning)"
        ),
        "valid_luhn_check_digit": "kontrollsiffran (Luhn) måste vara giltig",
        "approved_on_not_before_registered_on": "approved_on får inte vara före registered_on",
        "terminated_on_not_before_approved_on": "terminated_on får inte vara före approved_on",
        "to_date_not_before_from_date": "to_date får inte vara före from_date",
        "birth_year_not_after_current_year": "birth_year får inte vara efter innevarande år",
        "valid_to_not_before_valid_from": "valid_to får inte vara före valid_from",
        "at_least_one_contact_fact": "raden måste ha minst en kontaktuppgift",
        "discharged_on_not_before_admitted_on": "discharged_on får inte vara före admitted_on",
        "end_at_after_start_at": "end_at måste vara efter start_at",
        "visit_at_most_24_hours": "ett besök får vara högst 24 timmar",
        "submitted_on_not_before_first_day_of_period": (
            "submitted_on får inte vara före periodens första dag"
        ),
        "service_type_and_year_unique": "kombinationen service_type och year måste vara unik",
    },
}
