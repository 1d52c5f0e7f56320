"""Quarantine rules in Swedish: every rule validation can write, read back by `i18n.rule_in`."""

from __future__ import annotations

import re
import string

import numpy as np
import pytest

from tillit.data.contract import TABLES
from tillit.data.validate import rule_text
from tillit.i18n import rule_in, table_rules_in, text
from tillit.i18n.rules import CHECK_NAMES, NOTE_NAMES, RULES

# A value for every field a rule template fills.
SAMPLE = {
    "column": "billed_hours",
    "bound": "744.0",
    "allowed": "personal_care, home_service",
    "pattern": r"^\d{4}-(0[1-9]|1[0-2])$",
    "table": "providers",
    "provider_id": "P0042",
    "client_id": "C0007",
    "service_type": "night_care",
    "year": "2025",
    "period": "2025-06",
}


@pytest.mark.parametrize(
    ("english", "swedish"),
    [
        (rule_text("client_id", "not_nullable"), "client_id får inte vara tom"),
        (rule_text("invoice_id", "field_uniqueness"), "invoice_id måste vara unik"),
        (
            rule_text("billed_hours", "greater_than_or_equal_to(0)"),
            "billed_hours måste vara minst 0",
        ),
        (
            rule_text("amount_sek", "less_than_or_equal_to(10000000.0)"),
            "amount_sek får vara högst 10000000.0",
        ),
        (
            rule_text("method", "isin(('nfc', 'app', 'manual'))"),
            "method måste vara något av nfc, app, manual",
        ),
        ("amount_sek must be a finite number", "amount_sek måste vara ett ändligt tal"),
        ("type: date YYYY-MM-DD", "typ: datum ÅÅÅÅ-MM-DD"),
        (
            "provider_id must refer to a valid row of providers",
            "provider_id måste hänvisa till en giltig rad i tabellen providers",
        ),
        (
            r"period must match ^\d{4}-(0[1-9]|1[0-2])$ (period read as 2025-06)",
            r"period måste följa mönstret ^\d{4}-(0[1-9]|1[0-2])$ (perioden lästes som 2025-06)",
        ),
        (
            "billed_hours >= 0; client_id must not be empty (period cannot be placed in a "
            "month: listed in every month's run)",
            "billed_hours måste vara minst 0; client_id får inte vara tom (perioden kan inte "
            "placeras i en månad: listas i varje månads körning)",
        ),
        (
            "no tariff for night_care in 2031: the amount cannot be checked; "
            "the client_id is not in the clients table: the invoice cannot be described",
            "ingen taxa för night_care år 2031: beloppet kan inte kontrolleras; "
            "brukarens client_id finns inte i tabellen clients: fakturan kan inte beskrivas",
        ),
        (rule_text("end_at", "visit_at_most_24_hours"), "ett besök får vara högst 24 timmar"),
    ],
)
def test_representative_rules_in_swedish(english: str, swedish: str) -> None:
    assert rule_in("sv", english) == swedish
    assert rule_in("en", english) == english


def test_validation_still_stores_the_english_it_always_did() -> None:
    assert rule_text("billed_hours", "greater_than_or_equal_to(0)") == "billed_hours >= 0"
    assert rule_text("hours_per_month", "greater_than(0)") == "hours_per_month > 0"
    assert rule_text("rate_sek", "less_than(5)") == "rate_sek < 5"
    assert rule_text("outcome", "isin(('confirmed', 'cleared'))") == (
        "outcome must be one of confirmed, cleared"
    )
    assert rule_text("org_number", "str_matches('^x$')") == "org_number must match ^x$"
    assert rule_text("x", "valid_luhn_check_digit") == "valid_luhn_check_digit"
    assert rule_text("x", "a_check_nobody_wrote") == "a_check_nobody_wrote"


def _english_words(template: str) -> set[str]:
    """The template's own English words (not its fields), apart from the export's names."""
    names = set(TABLES) | {c for spec in TABLES.values() for c in spec.columns}
    found = set()
    for literal, *_ in string.Formatter().parse(template):
        for word in re.findall(r"[A-Za-z_]+", literal or ""):
            if word not in names and len(word) >= 3:  # not the MM of YYYY-MM-DD
                found.add(word)
    return found


@pytest.mark.parametrize("name", sorted(RULES["en"]))
def test_every_rule_shape_round_trips_into_swedish(name: str) -> None:
    fields = {field: SAMPLE[field] for field in re.findall(r"{(\w+)}", RULES["en"][name])}
    english = text(f"rule.{name}", "en", **fields)
    swedish = rule_in("sv", english)
    assert swedish == text(f"rule.{name}", "sv", **fields)
    left = {w for w in _english_words(RULES["en"][name]) if re.search(rf"\b{w}\b", swedish)}
    assert not left, (english, swedish)


def test_all_rules_joined_with_a_note_round_trip() -> None:
    shapes = [n for n in sorted(RULES["en"]) if n not in NOTE_NAMES]
    for note in NOTE_NAMES:
        english = "; ".join(text(f"rule.{n}", "en", **SAMPLE) for n in shapes)
        english += " " + text(f"rule.{note}", "en", **SAMPLE)
        expected = "; ".join(text(f"rule.{n}", "sv", **SAMPLE) for n in shapes)
        expected += " " + text(f"rule.{note}", "sv", **SAMPLE)
        assert rule_in("sv", english) == expected


def test_every_check_of_the_contract_has_a_swedish_rule() -> None:
    seen = 0
    for spec in TABLES.values():
        schema = spec.model.to_schema()
        checks = [
            (c, ch.error or ch.name) for c, col in schema.columns.items() for ch in col.checks
        ]
        checks += [(dict(spec.row_rule_columns)[ch.name], ch.name) for ch in schema.checks]
        checks += [(c, "not_nullable") for c in schema.columns]
        checks += [(c, "field_uniqueness") for c, col in schema.columns.items() if col.unique]
        for column, check in checks:
            english = rule_text(column, check)
            swedish = rule_in("sv", english)
            assert swedish != english, (column, check)
            seen += 1
    assert seen > 80
    assert {ch.name for s in TABLES.values() for ch in s.model.to_schema().checks} <= set(
        CHECK_NAMES
    )


@pytest.mark.parametrize(
    "odd",
    [
        "",
        "something nobody wrote a template for",
        "billed_hours is purple; or green",
        "a; ; b",
        "(period read as",
    ],
)
def test_a_rule_of_no_known_shape_is_kept_as_it_is(odd: str) -> None:
    assert rule_in("sv", odd) == odd


def test_known_pieces_are_said_and_unknown_pieces_kept() -> None:
    assert rule_in("sv", "gremlins in row 7; client_id must not be empty") == (
        "gremlins in row 7; client_id får inte vara tom"
    )
    with pytest.raises(ValueError, match="not 'de'"):
        rule_in("de", "client_id must not be empty")


def test_rules_of_other_tables_behind_an_invoice_are_said_per_table() -> None:
    rules = "providers: valid_luhn_check_digit; visits: type: timestamp YYYY-MM-DDTHH:MM:SS"
    assert table_rules_in("sv", rules) == (
        "providers: kontrollsiffran (Luhn) måste vara giltig; "
        "visits: typ: tidpunkt ÅÅÅÅ-MM-DDTtt:mm:ss"
    )
    assert table_rules_in("en", rules) == rules
    assert table_rules_in("sv", "") == ""
    assert table_rules_in("sv", "odd; visits: odd too") == "odd; visits: odd too"


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("sv", "Ofullständigt underlag</b>: visits: client_id får inte vara tom</p>"),
        ("en", "Evidence incomplete</b>: visits: client_id must not be empty</p>"),
    ],
)
def test_the_report_says_the_rules_behind_incomplete_evidence_in_its_language(
    lang: str, said: str
) -> None:
    from tests.unit.test_report import RUN_INFO, explanations, risk_list, summary
    from tillit.review.report import render_report

    risks = risk_list()
    incomplete = risks["invoice_id"] == "I-1"
    risks = risks.assign(
        evidence_incomplete=incomplete,
        quarantine_rules=np.where(incomplete, "visits: client_id must not be empty", ""),
    )
    page = render_report(risks, explanations(), summary(), RUN_INFO, language=lang)
    assert said in page
