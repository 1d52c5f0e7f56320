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
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from tillit.config import PSEUDONYM_SEPARATOR, PseudonymiseConfig
from tillit.data.contract import luhn_valid
from tillit.errors import TillitError

KEY_BYTES = 32
PSEUDONYM_HEX_CHARS = 20

_PERSONNUMMER = re.compile(r"^(?:(18|19|20)?)(\d{6})[-+ ]?(\d{4})$")


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
    if len(key) < KEY_BYTES:
        raise TillitError(
            f"pseudonymisation key file {key_file} holds {len(key)} bytes; at least "
            f"{KEY_BYTES} random bytes are needed so pseudonyms cannot be guessed"
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
    tables: Mapping[str, pd.DataFrame], key: bytes, config: PseudonymiseConfig | None = None
) -> dict[str, pd.DataFrame]:
    """Replace every identifier of a person with its pseudonym and drop direct identifiers.

    Inputs are not modified. Nulls stay null. Tables without people pass
    through unchanged (as copies).
    """
    config = config or PseudonymiseConfig()
    if len(key) < KEY_BYTES:
        raise ValueError(f"key must hold at least {KEY_BYTES} bytes")
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
            elif _looks_like_personnummer(result[column]):
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
