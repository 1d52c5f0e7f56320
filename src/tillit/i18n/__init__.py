"""Every Swedish and English string a user reads, and one way to fetch it: `text(key, lang)`.

A key is `namespace.name` (for example `report.title`, `reason.visit_duration_cv`,
`evidence.duplicate_invoice`); each namespace is a table per language in the
modules beside this one. Templates use `str.format` placeholders, and a key has
the same placeholders in both languages (tests/unit/test_i18n.py checks). The package
imports nothing from tillit, so features and review can both use it.
"""

from __future__ import annotations

import math
import numbers
import re
import string
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from tillit.i18n.drift import DRIFT
from tillit.i18n.evidence import EVIDENCE
from tillit.i18n.features import FEATURES
from tillit.i18n.providers import EVENTS, PROVIDERS, ROLES
from tillit.i18n.reasons import FINDINGS, REASONS, SERVICES
from tillit.i18n.report import CASE_REPORT, COLUMNS, PATTERNS, REPORT, TAGS
from tillit.i18n.rules import NOTE_NAMES, RULES
from tillit.i18n.tables import TABLE
from tillit.i18n.types import LANGS, Lang, Tables

__all__ = [
    "LANGS",
    "NAMESPACES",
    "NBSP",
    "Lang",
    "check_lang",
    "count",
    "fill",
    "keys",
    "listing",
    "money",
    "number",
    "placeholders",
    "render_parts",
    "rule_in",
    "share",
    "table_rules_in",
    "text",
    "words",
]

NAMESPACES: dict[str, Tables] = {
    "report": REPORT,
    "tag": TAGS,
    "case": CASE_REPORT,
    "pattern": PATTERNS,
    "drift": DRIFT,
    "provider": PROVIDERS,
    "event": EVENTS,
    "role": ROLES,
    "service": SERVICES,
    "reason": REASONS,
    "finding": FINDINGS,
    "evidence": EVIDENCE,
    "feature": FEATURES,
    "rule": RULES,
    "column": COLUMNS,
    "table": TABLE,
}


def check_lang(lang: str) -> Lang:
    """`lang` as a `Lang`, or a ValueError that names the languages there are."""
    for known in LANGS:
        if lang == known:
            return known
    raise ValueError(f"language must be {' or '.join(sorted(LANGS))}, not {lang!r}")


# Swedish groups thousands with a space that never breaks a number over two lines.
NBSP = "\u00a0"
_SWEDISH_DIGITS = str.maketrans({",": NBSP, ".": ","})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | numbers.Real) and not isinstance(value, bool)


def number(value: object, lang: str, digits: int = 0) -> str:
    """A number as the language writes it: `12,345.6` in English, `12 345,6` in Swedish.

    The one place numbers become text on a page (money and shares build on it);
    a missing value is a dash.
    """
    if value is None or not _is_number(value) or math.isnan(float(value)):  # type: ignore[arg-type]
        return "–"
    out = f"{float(value):,.{digits}f}"  # type: ignore[arg-type]
    if out.startswith("-") and not out.strip("-0.,"):
        out = out[1:]  # no "-0"
    return out.translate(_SWEDISH_DIGITS) if check_lang(lang) == "sv" else out


def money(value: object, lang: str, digits: int = 0) -> str:
    """An amount with its unit: `12,345 SEK`, `12 345 kr` (the unit never on a line of its own)."""
    unit = "kr" if check_lang(lang) == "sv" else "SEK"
    return f"{number(value, lang, digits)}{NBSP}{unit}"


def share(value: object, lang: str, digits: int = 0) -> str:
    """A fraction as a percentage: `45%` in English, `45 %` in Swedish."""
    if value is None or not _is_number(value) or math.isnan(float(value)):  # type: ignore[arg-type]
        return "–"
    percent = number(100 * float(value), lang, digits)  # type: ignore[arg-type]
    return f"{percent}{NBSP}%" if check_lang(lang) == "sv" else f"{percent}%"


def count(n: int, key: str, lang: str, **fields: Any) -> str:
    """`text(key + ".one")` when n is 1, else `text(key)`: "1 flagged invoice", "2 flagged invoices"."""
    name = f"{key}.one" if n == 1 else key
    return text(name, lang, n=n, **fields)


class _SwedishFormatter(string.Formatter):
    """`str.format` whose numbers come out in Swedish: decimal comma, no-break space thousands."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if not _is_number(value) or (isinstance(value, int) and not format_spec):
            return super().format_field(value, format_spec)
        if format_spec[-1:] in ("f", "%", "g") and "," not in format_spec:
            # Group thousands even where the template did not ask: "13 683,90 kr".
            cut = format_spec.find(".") if "." in format_spec else len(format_spec) - 1
            format_spec = format_spec[:cut] + "," + format_spec[cut:]
        out = super().format_field(value, format_spec)
        if format_spec.endswith("%"):
            return out[:-1].translate(_SWEDISH_DIGITS) + NBSP + "%"
        return out.translate(_SWEDISH_DIGITS)


_SV = _SwedishFormatter()


def fill(template: str, lang: str, **fields: Any) -> str:
    """`template.format(**fields)` with numbers written as `lang` writes them."""
    if check_lang(lang) == "sv":
        return _SV.format(template, **fields)
    return template.format(**fields)


def _split(key: str) -> tuple[str, str]:
    namespace, dot, name = key.partition(".")
    if not dot or namespace not in NAMESPACES:
        raise KeyError(
            f"unknown text key {key!r}: a key is namespace.name, namespaces "
            f"{', '.join(sorted(NAMESPACES))}"
        )
    return namespace, name


def words(namespace: str, lang: str) -> Mapping[str, str]:
    """A namespace's templates in one language, unformatted (for modules that format later)."""
    if namespace not in NAMESPACES:
        raise KeyError(f"unknown text namespace {namespace!r}")
    return NAMESPACES[namespace][check_lang(lang)]


def text(key: str, lang: str, **fields: Any) -> str:
    """The text of `key` in `lang`, its placeholders filled from `fields`.

    Raises ValueError for an unknown language and KeyError for an unknown key or a
    placeholder without a field, each naming what is missing.
    """
    namespace, name = _split(key)
    table = words(namespace, lang)
    if name not in table:
        raise KeyError(f"no text {key!r} in {lang!r}")
    try:
        return fill(table[name], lang, **fields)
    except KeyError as missing:
        raise KeyError(f"text {key!r} needs the field {missing.args[0]!r}") from None


def keys() -> list[str]:
    """Every key of every namespace, in either language."""
    return sorted(
        f"{namespace}.{name}"
        for namespace, tables in NAMESPACES.items()
        for lang in tables
        for name in tables[lang]
    )


def placeholders(template: str) -> set[str]:
    """The field names a template fills (`{n:.0f}` -> `n`)."""
    return {
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(template)
        if field
    }


def listing(items: Sequence[object], total: int, lang: str) -> str:
    """`a, b, c` plus `and N more` (`och N till`) when the list was cut short."""
    out = ", ".join(str(item) for item in items)
    if total > len(items):
        out += text("evidence.more", lang, more=total - len(items))
    return out


def render_parts(parts: Sequence[Sequence[Any]], lang: str) -> str:
    """Facts as `[key, fields]` parts (see features/evidence.py) in words of `lang`."""
    out = []
    for key, fields in parts:
        filled = {name: _field(_coded(name, value, lang), lang) for name, value in fields.items()}
        out.append(text(key, lang, **filled))
    return "".join(out)


def _coded(name: str, value: Any, lang: str) -> Any:
    """A vocabulary code among the facts in words of `lang` (Swedish; English keeps the code)."""
    if check_lang(lang) == "en" or not isinstance(value, str):
        return value
    if name == "service":
        return words("service", lang).get(value, value)
    if name.startswith("method"):
        return words("evidence", lang).get(f"method.{value}", value)
    if re.fullmatch(r"-?\d+\.\d+", value):  # a number kept as text (minutes of a pair)
        return value.replace(".", ",")
    return value


def _field(value: Any, lang: str) -> Any:
    """A list cut short (`items`, `total`) or a list of parts (`parts`) in words; else as is."""
    if not isinstance(value, Mapping):
        return value
    if "parts" in value:
        return "; ".join(render_parts([part], lang) for part in value["parts"])
    return listing(value["items"], int(value["total"]), lang)


def rule_in(lang: str, rule: str) -> str:
    """A stored (English) quarantine rule said in `lang`.

    A rule may be several rules joined by "; " with a note about the period after
    them (see jobs/score.py). The note is read first, then each "; " piece: a piece
    with the shape of an English `rule.*` template is said in `lang` with the same
    fields, and a piece of no known shape is kept as it is, so nothing an auditor
    should read is ever lost. English is returned unchanged: it is the stored text.
    """
    if check_lang(lang) == "en" or not rule:
        return rule
    body, note = rule, ""
    for name in NOTE_NAMES:
        found = _note_pattern(name).fullmatch(rule)
        if found:
            body = found.group("rule_body")
            note = " " + text(f"rule.{name}", lang, **_fields(found, name))
            break
    pieces = body.split("; ") if body else []
    return "; ".join(_rule_said(piece, lang) or piece for piece in pieces) + note


def table_rules_in(lang: str, rules: str) -> str:
    """The risk list's `quarantine_rules` (`table: rule; table: rule`) in `lang`."""
    if check_lang(lang) == "en" or not rules:
        return rules
    out = []
    for piece in rules.split("; "):
        table, colon, rule = piece.partition(": ")
        out.append(table + colon + rule_in(lang, rule) if colon else rule_in(lang, piece))
    return "; ".join(out)


def _rule_said(rule: str, lang: str) -> str | None:
    """One rule in `lang` when it has a known English shape, else None."""
    for name in _rule_names():
        found = _rule_pattern(name).fullmatch(rule)
        if found:
            return text(f"rule.{name}", lang, **_fields(found, name))
    return None


def _fields(found: re.Match[str], name: str) -> dict[str, str]:
    return {field: found.group(field) for field in placeholders(RULES["en"][name])}


@cache
def _rule_names() -> tuple[str, ...]:
    """Rule shapes, the most literal text first: the most specific shape wins."""

    def literal_length(name: str) -> int:
        parsed = string.Formatter().parse(RULES["en"][name])
        return sum(len(literal) for literal, *_ in parsed)

    return tuple(sorted(RULES["en"], key=lambda name: (-literal_length(name), name)))


@cache
def _rule_pattern(name: str) -> re.Pattern[str]:
    """The English template `rule.<name>` as a regex: literals as they are, fields as groups."""
    return re.compile(_template_regex(RULES["en"][name]), re.DOTALL)


@cache
def _note_pattern(name: str) -> re.Pattern[str]:
    """Rules followed by the note `rule.<name>` after one space."""
    return re.compile(r"(?P<rule_body>.*?) " + _template_regex(RULES["en"][name]), re.DOTALL)


def _template_regex(template: str) -> str:
    out, seen = [], set()
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if field is None:
            continue
        # A field never holds "; ": that joins one rule to the next.
        out.append(f"(?P={field})" if field in seen else f"(?P<{field}>(?:(?!; ).)+?)")
        seen.add(field)
    return "".join(out)
