"""Contact facts and names in one canonical spelling, then as keyed tokens (contract v1.3).

Why: registers write one address as "Storgatan 12 B, 2 tr" and "STORG. 12B", one
phone as "08-123 456 78" and "+46812345678". Linking compares facts, so every fact
is first brought to one spelling (`normalise_fact`); at the edge (`tillit
pseudonymise`) the canonical spelling is replaced by a keyed token, so the same
fact gives the same token in every table and every month while nobody can read
it back. A token passes through normalisation unchanged, so linking works on raw
and on pseudonymised folders alike (though not on a mix of both).

What normalisation cannot mend (a typo in a street name) becomes a different
token: after pseudonymisation only exact agreement of the canonical spelling is
seen, and the linkage model weighs the other facts.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

# Fact column -> token prefix (what a pseudonymised value starts with).
FACT_PREFIX: dict[str, str] = {
    "street_address": "ADR-",
    "phone_number": "TEL-",
    "bankgiro": "BG-",
    "plusgiro": "PG-",
    "email_domain": "DOM-",
}
NAME_PREFIX = "NM-"
TOKEN_HEX_CHARS = 20
_TOKEN = re.compile(r"^(ADR|TEL|BG|PG|DOM|NM)-[0-9a-f]{8,64}$")

# Street abbreviations as registers write them, and what they stand for.
_STREET_WORDS = {
    "g": "gatan",
    "gt": "gatan",
    "v": "vägen",
    "vg": "vägen",
    "pl": "platsen",
    "str": "stråket",
    "gränd": "gränd",
}
# Where in a building, not which building: floor, flat, box, c/o.
_UNIT = re.compile(
    r"(,.*$)|(\b(\d+\s*tr|tr\s*\d+|vån(ing)?\s*\d+|lgh\s*\d+|box\s*\d+|c/o.*)\b.*$)", re.IGNORECASE
)


def is_token(value: str) -> bool:
    """Whether a value is already a keyed token (pseudonymised at the edge)."""
    return bool(_TOKEN.match(value))


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def normalise_address(value: str) -> str:
    """Street name, number and entrance letter: `Storg. 12 B, 2 tr` -> `storgatan 12b`."""
    text = _UNIT.sub("", _plain(value))
    text = re.sub(r"(\d+)\s+([a-z])\b", r"\1\2", text)  # 12 B -> 12b
    words: list[str] = []
    for word in re.findall(r"[a-zåäöéü]+\.?|\d+[a-z]?", text):
        bare = word.rstrip(".")
        if word.endswith(".") and bare.endswith(("g", "v")) and len(bare) > 2:
            bare = bare[:-1] + _STREET_WORDS[bare[-1]]  # storg. -> storgatan
        else:
            bare = _STREET_WORDS.get(bare, bare) if len(bare) <= 3 and words else bare
        words.append(bare)
    joined = " ".join(words)
    return re.sub(r"\s+(gatan|vägen|platsen|stråket)\b", r"\1", joined)  # stor gatan -> storgatan


def normalise_phone(value: str) -> str:
    """Digits only, in the national form: `+46 8-123 456 78` -> `0812345678`."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+46") or digits.startswith("0046"):
        digits = "0" + digits.removeprefix("00").removeprefix("46").lstrip("0")
    return digits


def normalise_giro(value: str) -> str:
    """A bank giro or plus giro number as its digits: `123-4567` -> `1234567`."""
    return re.sub(r"\D", "", value)


def normalise_domain(value: str) -> str:
    """An e-mail domain in lower case: `Info@Omsorg.SE` -> `omsorg.se`."""
    text = _plain(value).rsplit("@", 1)[-1]
    return text.removeprefix("www.").strip(". ")


def coarse_postcode(value: str) -> str:
    """The three-digit postal area of a postcode: `113 45` -> `113` (what the edge keeps)."""
    return re.sub(r"\D", "", value)[:3]


def normalise_name(family_name: str, given_name: str) -> str:
    """Family name and first given name, lower case, hyphens as spaces: one spelling per name."""
    family = re.sub(r"[\s\-]+", " ", _plain(family_name))
    given = re.sub(r"[\s\-]+", " ", _plain(given_name)).split(" ")[0]
    return f"{family}|{given}"


_NORMALISERS = {
    "street_address": normalise_address,
    "postcode": coarse_postcode,
    "phone_number": normalise_phone,
    "bankgiro": normalise_giro,
    "plusgiro": normalise_giro,
    "email_domain": normalise_domain,
}


def normalise_fact(column: str, value: object) -> str | None:
    """One fact in its canonical spelling (a token unchanged); None when nothing is left."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text:
        return None
    if is_token(text):
        return text
    canonical = _NORMALISERS[column](text)
    return canonical or None


def normalise_facts(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The fact columns of a frame in their canonical spelling (each distinct value once)."""
    out = frame.copy()
    for column in columns:
        values = out[column]
        mapping = {v: normalise_fact(column, v) for v in pd.unique(values.dropna())}
        out[column] = values.map(mapping).astype("str").where(values.map(mapping).notna())
    return out


__all__ = [
    "FACT_PREFIX",
    "NAME_PREFIX",
    "TOKEN_HEX_CHARS",
    "coarse_postcode",
    "is_token",
    "normalise_address",
    "normalise_domain",
    "normalise_fact",
    "normalise_facts",
    "normalise_giro",
    "normalise_name",
    "normalise_phone",
]
