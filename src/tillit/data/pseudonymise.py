"""Pseudonymisation at the municipality's edge: personal data never reaches tillit.

The municipality's export names people by their personal identity number
(personnummer) or by an employee number. Before anything else reads the
tables, every identifier of a person is replaced with a keyed pseudonym and
direct identifiers (names, addresses, phone numbers) are dropped outright.

How a pseudonym is made:
    ``prefix + HMAC-SHA-256(key, domain + "\\x1f" + normalised value)[:20 hex]``

- The key is a 32-byte secret that the municipality keeps; without it nobody
  can recompute or reverse the mapping by trying all personnummer (there are
  only about 10^10 of them, so a plain hash would be reversible in hours).
  Keep the same key for as long as history must link: a new key gives every
  person a new pseudonym, and last year's invoices no longer match this year's.
- 20 hex characters are 80 bits: collisions are out of reach for any
  municipality (about 10^-12 for a million people).
- The *domain* is the kind of person the column holds: ``client``, ``staff``
  or ``person`` (owners and board members). The same value in different
  domains gives unrelated pseudonyms, on purpose: no feature needs to know
  that an employee is also a care recipient, and keeping the domains apart
  means a leaked mapping for one kind of person says nothing about another
  (data minimisation). A municipality that does want a link, say owners who
  also work as staff, maps both columns to one domain (and one prefix) in
  ``PseudonymiseConfig.domains``.
- Within a domain the mapping is the same in every table, so ``client_id``
  in invoices still matches ``client_id`` in clients, grants, visits and
  hospital stays.

Personal identity numbers are normalised before hashing, so one person written
two ways gets one pseudonym: ``19380101-1234``, ``193801011234``,
``380101-1234``, ``3801011234`` and ``380101+1234`` all become ``3801011234``.
The canonical form is the ten-digit number without the century: inferring the
century of a ten-digit number needs today's date (the ``+`` sign marks people
aged 100 or more), and a date-dependent guess would silently give a person a
new pseudonym when their number flips from ``-`` to ``+`` or when an old
export is pseudonymised again. The price is that two people with the same
ten digits born exactly a hundred years apart would share a pseudonym, which
the check digit cannot tell apart either; in home care this is negligible.
Only values with a valid date part and Luhn check digit are treated as
personal identity numbers (coordination numbers, day + 60, included); every
other identifier is only stripped of surrounding whitespace.

At the edge (`pseudonymise_export`, what `tillit pseudonymise` runs) three more
guards hold, because a provider writes its own ids and an export carries more
than the contract asks for:

- **Allow-list.** Only the contract's tables and columns are copied; any other
  table or column (a name, a note, a register's extra field) is dropped, and the
  drop is said, never silent.
- **Personal numbers in text.** Every kept text cell is scanned for personnummer
  and samordningsnummer spellings (YYMMDD-NNNN, YYYYMMDDNNNN, with ``-``, ``+`` or
  nothing between). A match with a valid date part is replaced by a keyed token
  (``PNR-`` and 12 hex characters), so the same number gives the same token in
  every table and joins survive. The check digit is *not* required: a mistyped
  personnummer is still personal data, and a false hit costs only a changed id.
- **Contact facts and names (contract v1.3).** Every fact of ``provider_contacts``
  (street address, phone, bank giro, plus giro, e-mail domain) is brought to one
  spelling (`tillit.data.contacts`) and replaced by a keyed token (``ADR-``,
  ``TEL-``, ``BG-``, ``PG-``, ``DOM-`` and 20 hex characters); the postcode is cut
  to its three-digit postal area. A sole trader's address and phone are the
  owner's, so no fact passes in clear. A register's ``family_name`` and
  ``given_name`` of ``provider_persons`` become one ``name_token`` (``NM-``), and
  the names themselves are dropped: a person listed with and without a personal
  number can still be linked, by token and birth year, never by name.
- **Sole traders.** The org number of an enskild firma (legal form ``EF``) is
  its owner's personnummer, and so is any org number whose digits form a valid
  personnummer (a company's has a third digit of 2 or more, a person's a month
  there). It is replaced by a keyed pseudo org number ``00Xnnn-nnnC``: digits 1-2
  ``00`` (no real organisation number starts so, so it reads as a pseudonym), a
  third digit of 2-9 (so it is no personnummer), a valid Luhn digit (so it passes
  the contract). Seven free digits: two sole traders of one municipality share a
  pseudo number with a chance of about n^2 / 16,000,000.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tillit.config import PSEUDONYM_SEPARATOR, PseudonymiseConfig
from tillit.core.keys import KEY_BYTES, key_weakness
from tillit.data.contacts import (
    FACT_PREFIX,
    NAME_PREFIX,
    TOKEN_HEX_CHARS,
    is_token,
    normalise_fact,
    normalise_name,
)
from tillit.data.contract import CONTACT_FACTS, luhn_valid
from tillit.errors import TillitError

PSEUDONYM_HEX_CHARS = 20
TEXT_TOKEN_PREFIX = "PNR-"
TEXT_TOKEN_HEX_CHARS = 12
SOLE_TRADER_FORMS = frozenset({"EF"})

_PERSONNUMMER = re.compile(r"^(?:(18|19|20)?)(\d{6})[-+ ]?(\d{4})$")
# A personnummer anywhere in a text: six or eight date digits, an optional sign, four digits.
_PERSONNUMMER_IN_TEXT = re.compile(r"(?<!\d)(?:18|19|20)?(\d{2})(\d{2})(\d{2})[-+]?(\d{4})(?!\d)")


def generate_key() -> bytes:
    """A new random 32-byte key (for ``--new-key``); store it as raw bytes, keep it secret."""
    return secrets.token_bytes(KEY_BYTES)


def load_key(key_file: Path) -> bytes:
    """Read the pseudonymisation key, refusing a missing, empty or short one.

    The file holds raw bytes and is used exactly as stored (no stripping): an
    editor adding a newline would otherwise be indistinguishable from a
    different key.
    """
    key_file = Path(key_file)
    if not key_file.is_file():
        raise TillitError(
            f"pseudonymisation key file {key_file} not found: create one with --new-key "
            "and keep it outside the data folder (without it pseudonyms cannot be reproduced)"
        )
    key = key_file.read_bytes()
    if not key:
        raise TillitError(f"pseudonymisation key file {key_file} is empty")
    problem = key_weakness(key)
    if problem:
        raise TillitError(
            f"pseudonymisation key file {key_file} {problem}; create one with --new-key"
        )
    return key


def _personnummer_core(value: object) -> str | None:
    """The ten digits YYMMDDNNNN of a valid personnummer (date and check digit), else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number column read as float: 3801011234.0 -> 3801011234
    match = _PERSONNUMMER.match(str(value).strip())
    if not match:
        return None
    core = match.group(2) + match.group(3)
    month, day = int(core[2:4]), int(core[4:6])
    # Day + 60 marks a coordination number (samordningsnummer).
    day_ok = 1 <= day <= 31 or 61 <= day <= 91
    return core if 1 <= month <= 12 and day_ok and luhn_valid(core) else None


def normalise_identifier(value: object) -> str:
    """Canonical text of an identifier: a personnummer as ten digits, anything else stripped."""
    core = _personnummer_core(value)
    if core is not None:
        return core
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def pseudonym(value: str, key: bytes, domain: str, prefix: str = "") -> str:
    """Keyed pseudonym of one identifier, stable across tables and runs for the same key."""
    if len(key) < KEY_BYTES:
        raise ValueError(f"key must hold at least {KEY_BYTES} bytes")
    message = f"{domain}{PSEUDONYM_SEPARATOR}{normalise_identifier(value)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return prefix + digest[:PSEUDONYM_HEX_CHARS]


def _pseudonymise_column(values: pd.Series, key: bytes, domain: str, prefix: str) -> pd.Series:
    # Hash each distinct value once: visits repeat the same client thousands of times.
    present = values.dropna()
    mapping = {v: pseudonym(v, key, domain, prefix) for v in pd.unique(present)}
    out = present.map(mapping).reindex(values.index)
    return out.astype("str")


def pseudonymise_tables(
    tables: Mapping[str, pd.DataFrame],
    key: bytes,
    config: PseudonymiseConfig | None = None,
    refuse_unlisted_numbers: bool = True,
) -> dict[str, pd.DataFrame]:
    """Replace every identifier of a person with its pseudonym and drop direct identifiers.

    Inputs are not modified. Nulls stay null. Tables without people pass
    through unchanged (as copies). A column of personal identity numbers that no
    setting names stops the run, unless `refuse_unlisted_numbers` is off because the
    caller masks them (`pseudonymise_export`).
    """
    config = config or PseudonymiseConfig()
    problem = key_weakness(key)
    if problem:
        raise ValueError(f"key {problem}")
    dropped = {c.lower() for c in config.drop_columns}
    out: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        kept = [c for c in frame.columns if str(c).lower() not in dropped]
        result = frame.loc[:, kept].copy()
        listed = set(config.id_columns.get(name, ()))
        for column in result.columns:
            if column in listed or column in config.domains:
                result[column] = _pseudonymise_column(
                    result[column], key, config.domains[column], config.prefix[column]
                )
            elif refuse_unlisted_numbers and _looks_like_personnummer(result[column]):
                raise TillitError(
                    f"{name}.{column} holds personal identity numbers but is neither "
                    "pseudonymised nor dropped: add it to pseudonymise.domains or drop_columns"
                )
        out[name] = result
    return out


def _looks_like_personnummer(values: pd.Series, share: float = 0.5) -> bool:
    """Whether most of a column's values (first 200) are valid personal identity numbers."""
    sample = values.dropna().head(200)
    if sample.empty:
        return False
    hits = sum(_personnummer_core(v) is not None for v in sample)
    return hits >= share * len(sample)


def _date_part_valid(month: str, day: str) -> bool:
    """Whether MM and DD can be a personnummer's (DD + 60 for a samordningsnummer)."""
    m, d = int(month), int(day)
    return 1 <= m <= 12 and (1 <= d <= 31 or 61 <= d <= 91)


def _keyed_hex(key: bytes, domain: str, value: str, chars: int) -> str:
    message = f"{domain}{PSEUDONYM_SEPARATOR}{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:chars]


def mask_personal_numbers(text: str, key: bytes) -> tuple[str, int]:
    """The text with every personnummer-like number replaced by a keyed token, and how many.

    Ten digits without the century are hashed, so every spelling of one number gives
    one token (and a value masked in invoices still matches it masked in visits).
    """
    count = 0

    def token(match: re.Match[str]) -> str:
        nonlocal count
        yy, mm, dd, tail = match.groups()
        if not _date_part_valid(mm, dd):
            return match.group(0)
        count += 1
        return TEXT_TOKEN_PREFIX + _keyed_hex(
            key, "text", yy + mm + dd + tail, TEXT_TOKEN_HEX_CHARS
        )

    return _PERSONNUMMER_IN_TEXT.sub(token, text), count


def fact_token(column: str, value: object, key: bytes) -> str | None:
    """A contact fact as its keyed token (its canonical spelling hashed); a token stays as it is."""
    canonical = normalise_fact(column, value)
    if canonical is None or column == "postcode" or is_token(canonical):
        return canonical
    return FACT_PREFIX[column] + _keyed_hex(key, column, canonical, TOKEN_HEX_CHARS)


def name_token(family_name: object, given_name: object, key: bytes) -> str | None:
    """A person's name as a keyed token, or None when a part is missing."""
    if pd.isna(family_name) or pd.isna(given_name):
        return None
    canonical = normalise_name(str(family_name), str(given_name))
    return NAME_PREFIX + _keyed_hex(key, "name", canonical, TOKEN_HEX_CHARS)


def pseudonymise_contacts(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Contact facts as keyed tokens and postcodes as postal areas (each distinct value once)."""
    out = frame.copy()
    for column in CONTACT_FACTS:
        if column not in out.columns:
            continue
        values = out[column]
        mapping = {v: fact_token(column, v, key) for v in pd.unique(values.dropna())}
        mapped = values.map(mapping)
        out[column] = mapped.astype("str").where(mapped.notna())
    return out


def _with_name_tokens(persons: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """`name_token` from a register's family and given names (which the allow-list then drops)."""
    if not {"family_name", "given_name"} <= set(persons.columns):
        return persons
    tokens = [
        name_token(family, given, key)
        for family, given in zip(persons["family_name"], persons["given_name"], strict=True)
    ]
    out = persons.copy()
    out["name_token"] = pd.Series(tokens, index=out.index, dtype="str")
    return out


def is_personal_org_number(org_number: object, legal_form: object) -> bool:
    """Whether an org number is a person's: a sole trader's, or one that is a valid personnummer."""
    if str(legal_form).strip().upper() in SOLE_TRADER_FORMS:
        return True
    return _personnummer_core(org_number) is not None


def pseudo_org_number(org_number: object, key: bytes) -> str:
    """A keyed stand-in for a personal org number that still passes the contract (`00Xnnn-nnnC`)."""
    digits = int(_keyed_hex(key, "org_number", normalise_identifier(org_number), 16), 16)
    third = 2 + digits % 8  # 2-9: the month place of a personnummer, never a month
    body = f"00{third}{(digits // 8) % 10**6:06d}"
    for check in "0123456789":
        if luhn_valid(body + check):
            return f"{body[:6]}-{body[6:]}{check}"
    raise AssertionError("a Luhn check digit always exists")  # pragma: no cover


@dataclass(frozen=True)
class PseudonymisedExport:
    """Contract tables with people's identifiers replaced, and notes on what was removed."""

    tables: dict[str, pd.DataFrame]
    dropped_tables: tuple[str, ...]
    dropped_columns: tuple[str, ...]  # "table.column"
    masked_cells: dict[str, int]  # "table.column" -> cells with a personal number masked
    org_numbers_pseudonymised: int

    def notes(self) -> list[str]:
        """One sentence per kind of removal, for the command's output and the manifest."""
        notes: list[str] = []
        if self.dropped_tables:
            notes.append("not in the data contract, not copied: " + ", ".join(self.dropped_tables))
        if self.dropped_columns:
            notes.append(
                "columns not in the data contract, dropped: " + ", ".join(self.dropped_columns)
            )
        for column, cells in sorted(self.masked_cells.items()):
            notes.append(f"{column}: a personal identity number masked in {cells} cell(s)")
        if self.org_numbers_pseudonymised:
            notes.append(
                f"providers.org_number: {self.org_numbers_pseudonymised} sole trader / personal "
                "org number(s) pseudonymised"
            )
        return notes


def pseudonymise_export(
    tables: Mapping[str, pd.DataFrame], key: bytes, config: PseudonymiseConfig | None = None
) -> PseudonymisedExport:
    """An export made safe to hand to tillit: allow-listed, pseudonymised, scanned.

    Tables and columns outside the contract are dropped; identifier columns get keyed
    pseudonyms (`pseudonymise_tables`); personal org numbers get pseudo org numbers;
    every other text cell of the contract is scanned and personal numbers in it masked.
    """
    from tillit.data.contract import TABLES

    config = config or PseudonymiseConfig()
    tables = dict(tables)
    if "provider_persons" in tables:
        tables["provider_persons"] = _with_name_tokens(tables["provider_persons"], key)
    dropped_tables = tuple(sorted(name for name in tables if name not in TABLES))
    dropped_columns: list[str] = []
    allowed: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        if name not in TABLES:
            continue
        contract_columns = TABLES[name].columns
        extra = [str(c) for c in frame.columns if c not in contract_columns]
        dropped_columns += [f"{name}.{c}" for c in extra]
        allowed[name] = frame.loc[:, [c for c in frame.columns if c in contract_columns]]
    cleaned = pseudonymise_tables(allowed, key, config, refuse_unlisted_numbers=False)
    org_count = 0
    providers = cleaned.get("providers")
    if providers is not None and {"org_number", "legal_form"} <= set(providers.columns):
        personal = [
            pd.notna(org) and is_personal_org_number(org, form)
            for org, form in zip(providers["org_number"], providers["legal_form"], strict=True)
        ]
        if any(personal):
            providers = providers.copy()
            providers.loc[personal, "org_number"] = [
                pseudo_org_number(org, key) for org in providers.loc[personal, "org_number"]
            ]
            cleaned["providers"] = providers
            org_count = int(sum(personal))
    if "provider_contacts" in cleaned:
        cleaned["provider_contacts"] = pseudonymise_contacts(cleaned["provider_contacts"], key)
    masked: dict[str, int] = {}
    tokens = {*CONTACT_FACTS, "name_token"}
    for name, frame in cleaned.items():
        kinds = TABLES[name].dtypes()
        hashed = set(config.id_columns.get(name, ())) | set(config.domains) | tokens
        for column in frame.columns:
            if kinds.get(column) != "str" or column in hashed:
                continue
            values = frame[column]
            present = values.dropna()
            mapping = {v: mask_personal_numbers(str(v), key) for v in pd.unique(present)}
            cells = int(sum(mapping[v][1] > 0 for v in present))
            if cells:
                masked_text = {v: text for v, (text, _) in mapping.items()}
                frame[column] = present.map(masked_text).reindex(values.index)
                masked[f"{name}.{column}"] = cells
        cleaned[name] = frame
    return PseudonymisedExport(
        tables=cleaned,
        dropped_tables=dropped_tables,
        dropped_columns=tuple(dropped_columns),
        masked_cells=masked,
        org_numbers_pseudonymised=org_count,
    )
