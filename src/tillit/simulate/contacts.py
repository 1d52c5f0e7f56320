"""Provider contact facts and person names (contract v1.3), with the truth about who is who.

Why: linking companies and people across registers without a shared id (`tillit
link`) must be judged on data whose answers are known, and the signal must not be
trivially clean. Honest providers share a lot: an office building (one street
address, different floors), a factoring company's bank giro that many small firms
pay into, webmail domains. Registers spell one fact many ways, mistype street
names and leave fields empty. A person appears in the board register once with a
personal number and once without (under a local id), with a name token and a
birth year that may be missing or mistyped.

Planted: a share of the phoenix successors (`contact_phoenix_share`, rounded down:
none in a world with one successor at the default 0.5) shares no person with its
terminated predecessor, only the old street address and the old bank giro
(spelled differently). Other successors keep the predecessor's people and, half
of the time each, its phone or e-mail domain.

Kept apart from the rest of the simulator: one call at the end of `simulate`, with
its own random stream, so invoices and their truth do not change with it. Local
person ids are only given at providers that are neither phoenix nor applicant, so
the person links the register already shows by id stay as they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tillit.data.contract import TABLES
from tillit.data.pseudonymise import name_token

_STREETS = (
    "Storgatan", "Kungsgatan", "Drottninggatan", "Vasagatan", "Sveavägen", "Hornsgatan",
    "Götgatan", "Ringvägen", "Järnvägsgatan", "Skolgatan", "Kyrkogatan", "Nygatan",
    "Tullgatan", "Parkvägen", "Industrivägen", "Björkvägen", "Ekvägen", "Lönnvägen",
    "Granvägen", "Tallvägen", "Sjövägen", "Strandvägen", "Bergsgatan", "Ängsvägen",
    "Hamngatan", "Torggatan", "Slottsgatan", "Kvarngatan", "Smedjegatan", "Trädgårdsgatan",
    "Mejerivägen", "Skogsvägen", "Linnégatan", "Fabriksgatan", "Östra vägen", "Västra vägen",
)  # fmt: skip
_FAMILY = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
    "Persson", "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson",
    "Bengtsson", "Jönsson", "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Olofsson",
    "Lindqvist", "Lindgren", "Berg", "Axelsson", "Bergström", "Lundberg", "Lind", "Lundgren",
    "Mattsson", "Berglund", "Fredriksson", "Sandberg", "Henriksson", "Ali", "Mohammed",
    "Ahmed", "Hassan", "Nguyen", "Yilmaz", "Kaya", "Nowak", "Korhonen", "Virtanen",
)  # fmt: skip
_GIVEN = (
    "Anna", "Eva", "Maria", "Karin", "Sara", "Lena", "Emma", "Kerstin", "Fatima", "Elin",
    "Lars", "Mikael", "Johan", "Anders", "Per", "Erik", "Karl", "Peter", "Thomas", "Ahmed",
    "Daniel", "Hans", "Mohammad", "Fredrik", "Jonas", "Marcus", "Ali", "Omar", "Nina", "Sofia",
)  # fmt: skip
_WEBMAIL = ("gmail.com", "hotmail.com", "outlook.com", "telia.com", "icloud.com")
_UNITS = ("", ", 2 tr", " vån 3", ", 1 tr", " lgh 1101", ", 4 tr", " vån 2")

# Shares and rates, chosen to look like a municipality's register.
_BUILDING_SHARE = 0.25  # providers in an office building with other providers
_FACTORING_SHARE = 0.15  # providers paid through a factoring company's bank giro
_PLUSGIRO_SHARE = 0.2
_LOCAL_ID_SHARE = 0.15  # board persons also listed without a personal number
_MISSING = {
    "street_address": 0.05,
    "postcode": 0.10,
    "phone_number": 0.10,
    "bankgiro": 0.08,
    "plusgiro": 0.0,
    "email_domain": 0.15,
}
_TYPO_RATE = 0.03
LINK_TRUTH_COLUMNS = ("record_table", "record_id", "entity_id", "note")


def _zipf(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 0.9
    return rng.choice(n, size=size, p=weights / weights.sum())


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 2))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _spell_address(rng: np.random.Generator, street: str, number: str, unit: str) -> str:
    """One address as some register writes it: case, abbreviations, spacing, a floor."""
    name = street
    style = rng.random()
    if style < 0.15 and name.endswith("gatan"):
        name = name[: -len("gatan")] + "g."
    elif style < 0.25 and name.endswith("vägen"):
        name = name[: -len("vägen")] + "v."
    elif style < 0.35:
        name = name.upper()
    if rng.random() < _TYPO_RATE:
        name = _typo(rng, name)
    spaced = (
        number[:-1] + " " + number[-1] if number[-1].isalpha() and rng.random() < 0.5 else number
    )
    return f"{name} {spaced}{unit}"


def _spell_phone(rng: np.random.Generator, digits: str) -> str:
    style = int(rng.integers(4))
    if style == 0:
        return digits
    if style == 1:
        return "+46 " + digits[1:2] + " " + digits[2:]
    if style == 2:
        return digits[:2] + "-" + digits[2:5] + " " + digits[5:7] + " " + digits[7:]
    return digits[:3] + "-" + digits[3:]


def _spell_giro(rng: np.random.Generator, digits: str) -> str:
    return digits[:-4] + "-" + digits[-4:] if rng.random() < 0.6 else digits


def _simulation_key(seed: int) -> bytes:
    """A stand-in for a municipality's pseudonymisation key: simulated names as tokens."""
    return hashlib.sha256(f"tillit simulated register {seed}".encode()).digest()


def add_contacts(
    seed: int,
    tables: Mapping[str, pd.DataFrame],
    phoenix_pairs: Mapping[str, str],
    contact_phoenix_share: float = 0.5,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Add provider_contacts and person names; return the tables and the linkage truth.

    Args:
        seed: the simulation's seed (a separate stream is drawn from it).
        tables: the simulated contract tables (not changed; new frames are returned).
        phoenix_pairs: successor provider_id -> its terminated predecessor's provider_id.
        contact_phoenix_share: the share of successors, rounded down, that share no
            person with the predecessor, only its last address and its bank giro.

    Returns:
        The tables with `provider_contacts` and `provider_persons.name_token/birth_year`,
        and the truth: one row per provider and per listed person id, with the entity
        it belongs to (a successor belongs to its predecessor's entity) and a note
        ("contact_phoenix", "person_phoenix", "local_id", "").
    """
    rng = np.random.default_rng([seed, 15])
    out = dict(tables)
    providers = tables["providers"]
    ids = providers["provider_id"].astype("str").tolist()
    successors = list(rng.permutation(sorted(phoenix_pairs))) if phoenix_pairs else []
    n_contact = int(np.floor(contact_phoenix_share * len(successors) + 1e-9))
    contact_phoenix = {str(s) for s in successors[:n_contact]}
    persons = _strip_shared_people(tables["provider_persons"], contact_phoenix)
    contacts = _contacts(rng, providers, tables["provider_events"], phoenix_pairs, contact_phoenix)
    applicants = set(providers.loc[providers["approved_on"].isna(), "provider_id"])
    excluded = set(phoenix_pairs) | set(phoenix_pairs.values()) | applicants
    persons, person_truth = _names(rng, persons, seed, excluded)
    out["provider_persons"] = persons
    out["provider_contacts"] = contacts
    provider_truth = pd.DataFrame(
        {
            "record_table": "providers",
            "record_id": ids,
            "entity_id": [phoenix_pairs.get(p, p) for p in ids],
            "note": [
                ("contact_phoenix" if p in contact_phoenix else "person_phoenix")
                if p in phoenix_pairs
                else ""
                for p in ids
            ],
        }
    )
    truth = pd.concat([provider_truth, person_truth], ignore_index=True)
    return out, truth.astype("str").loc[:, list(LINK_TRUTH_COLUMNS)]


def _strip_shared_people(persons: pd.DataFrame, successors: set[str]) -> pd.DataFrame:
    """A contact phoenix: the successor's people get new ids (a new board, no shared person)."""
    persons = persons.copy()
    at_successor = persons["provider_id"].isin(successors)
    elsewhere = set(persons.loc[~at_successor, "person_id"])
    shared = at_successor & persons["person_id"].isin(elsewhere)
    fresh = {
        (prov, person): f"RN{i + 1:05d}"
        for i, (prov, person) in enumerate(
            sorted(
                set(
                    zip(
                        persons.loc[shared, "provider_id"],
                        persons.loc[shared, "person_id"],
                        strict=True,
                    )
                )
            )
        )
    }
    persons.loc[shared, "person_id"] = [
        fresh[(prov, person)]
        for prov, person in zip(
            persons.loc[shared, "provider_id"], persons.loc[shared, "person_id"], strict=True
        )
    ]
    return persons


def _contacts(
    rng: np.random.Generator,
    providers: pd.DataFrame,
    events: pd.DataFrame,
    phoenix_pairs: Mapping[str, str],
    contact_phoenix: set[str],
) -> pd.DataFrame:
    ids = providers["provider_id"].astype("str").tolist()
    n = len(ids)
    forms = dict(zip(ids, providers["legal_form"], strict=True))
    used_numbers: set[tuple[str, str]] = set()

    def new_address() -> tuple[str, str, str]:
        while True:
            street = _STREETS[int(_zipf(rng, len(_STREETS), 1)[0])]
            number = str(int(rng.integers(1, 120))) + (
                "AB"[int(rng.integers(2))] if rng.random() < 0.2 else ""
            )
            if (street, number) not in used_numbers:
                used_numbers.add((street, number))
                area = 100 + _STREETS.index(street) * 7 % 90
                return street, number, f"{area} {int(rng.integers(10, 100)):02d}"

    def digits(first: str, length: int) -> str:
        return first + "".join(str(d) for d in rng.integers(0, 10, length - len(first)))

    # Office buildings: a few addresses each shared by several honest tenants (and
    # whoever else rents there, terminated companies included).
    in_building = rng.random(n) < _BUILDING_SHARE
    n_buildings = max(2, round(_BUILDING_SHARE * n / 4))
    buildings = [new_address() for _ in range(n_buildings)]
    factoring = [digits("5", 8) for _ in range(2)]
    facts: dict[str, dict[str, object]] = {}
    for i, p in enumerate(ids):
        building = int(rng.integers(n_buildings)) if in_building[i] else -1
        address = buildings[building] if building >= 0 else new_address()
        small = forms[p] in ("EF", "HB", "KB")
        facts[p] = {
            "address": address,
            "unit": _UNITS[int(rng.integers(1, len(_UNITS)))] if building >= 0 else "",
            "phone": digits("07", 10) if small and rng.random() < 0.6 else digits("08", 10),
            "bankgiro": factoring[int(rng.integers(2))]
            if rng.random() < _FACTORING_SHARE
            else digits(str(int(rng.integers(1, 10))), int(rng.choice([7, 8]))),
            "plusgiro": digits(str(int(rng.integers(1, 10))), int(rng.integers(6, 9)))
            if rng.random() < _PLUSGIRO_SHARE
            else None,
            "domain": _WEBMAIL[int(rng.integers(len(_WEBMAIL)))]
            if small and rng.random() < 0.5
            else f"{p.lower()}{_STREETS[i % len(_STREETS)].lower()[:4]}omsorg.se",
        }
    moves = events[events["event_type"] == "address_change"]
    moves_by = moves.groupby("provider_id")["event_date"].apply(sorted).to_dict()
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, tuple[str, str, str]]]] = {}
    for p, start, end in zip(
        ids, providers["registered_on"], providers["terminated_on"], strict=True
    ):
        dates = [d for d in moves_by.get(p, []) if d > start and (pd.isna(end) or d < end)]
        if p in contact_phoenix:
            dates = []  # it keeps the address it took over
        ends = [*[d - pd.Timedelta(days=1) for d in dates], end]
        places = [facts[p]["address"]] + [new_address() for _ in dates]
        spans[p] = list(zip([start, *dates], ends, places, strict=True))  # type: ignore[arg-type]
    for succ, pred in phoenix_pairs.items():
        old, new = facts[pred], facts[succ]
        if succ in contact_phoenix:  # the premises it left last, same account, nothing else
            start, end, _ = spans[succ][0]
            spans[succ] = [(start, end, spans[pred][-1][2])]
            new["unit"], new["bankgiro"] = "", old["bankgiro"]
        else:  # same people; sometimes the old phone or domain
            if rng.random() < 0.5:
                new["phone"] = old["phone"]
            if rng.random() < 0.5:
                new["domain"] = old["domain"]

    rows = []
    for p in ids:
        f = facts[p]
        for valid_from, valid_to, address in spans[p]:
            row = {
                "provider_id": p,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "street_address": _spell_address(rng, address[0], address[1], str(f["unit"])),
                "postcode": address[2] if rng.random() < 0.7 else address[2].replace(" ", ""),
                "phone_number": _spell_phone(rng, str(f["phone"])),
                "bankgiro": _spell_giro(rng, str(f["bankgiro"])),
                "plusgiro": _spell_giro(rng, str(f["plusgiro"])) if f["plusgiro"] else None,
                "email_domain": ("info@" if rng.random() < 0.3 else "") + str(f["domain"]),
            }
            for column, share in _MISSING.items():
                if rng.random() < share and not (
                    p in contact_phoenix and column in ("street_address", "bankgiro")
                ):
                    row[column] = None
            if all(row[c] is None for c in _MISSING):
                row["street_address"] = _spell_address(rng, address[0], address[1], "")
            rows.append(row)
    frame = pd.DataFrame(rows)
    spec = TABLES["provider_contacts"]
    typed = {
        column: (
            frame[column].astype("datetime64[ns]")
            if kind == "date"
            else frame[column].astype("str").where(frame[column].notna())
        )
        for column, kind in spec.dtypes().items()
    }
    result = pd.DataFrame(typed).loc[:, list(spec.columns)]
    return result.sort_values(["provider_id", "valid_from"], kind="stable").reset_index(drop=True)


def _names(
    rng: np.random.Generator, persons: pd.DataFrame, seed: int, excluded: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Name tokens and birth years; some persons listed at one provider under a local id."""
    key = _simulation_key(seed)
    people = sorted(set(persons["person_id"]))
    family = np.array(_FAMILY, dtype=object)[_zipf(rng, len(_FAMILY), len(people))]
    given = np.array(_GIVEN, dtype=object)[_zipf(rng, len(_GIVEN), len(people))]
    born = rng.integers(1950, 2001, len(people))
    who = {
        p: (str(f), str(g), int(b)) for p, f, g, b in zip(people, family, given, born, strict=True)
    }
    persons = persons.copy()
    ids = persons["person_id"].astype("str").to_numpy(dtype=object)
    provider = persons["provider_id"].astype("str").to_numpy(dtype=object)
    role = persons["role"].astype("str").to_numpy(dtype=object)
    # A person's role at a provider that is no phoenix or applicant may come from a register
    # without personal numbers: a local id for that role's rows (the same person, two ids).
    eligible = ~np.isin(provider, sorted(excluded))
    keys = sorted(
        {
            (prov, pid, r)
            for prov, pid, r, ok in zip(provider, ids, role, eligible, strict=True)
            if ok
        }
    )
    local: dict[tuple[str, str, str], str] = {}
    for k in keys:
        if rng.random() < _LOCAL_ID_SHARE:
            local[k] = f"L{len(local) + 1:05d}"
    true_id = ids.copy()
    listed = np.array(
        [local.get((prov, pid, r), pid) for prov, pid, r in zip(provider, ids, role, strict=True)],
        dtype=object,
    )
    tokens, years = [], []
    for pid, lid in zip(true_id, listed, strict=True):
        f, g, b = who[pid]
        year: float = float(b)
        if lid != pid:  # the other register: sometimes no birth year, sometimes a typo
            if rng.random() < 0.3:
                year = float("nan")
            if rng.random() < _TYPO_RATE * 3:
                f = _typo(rng, f)
        tokens.append(name_token(f, g, key))
        years.append(year)
    persons["person_id"] = pd.Series(listed, index=persons.index, dtype="str")
    persons["name_token"] = pd.Series(tokens, index=persons.index, dtype="str")
    persons["birth_year"] = pd.Series(years, index=persons.index, dtype="float64")
    truth = (
        pd.DataFrame({"record_id": listed, "entity_id": true_id})
        .drop_duplicates()
        .sort_values("record_id", kind="stable")
    )
    truth.insert(0, "record_table", "provider_persons")
    truth["note"] = np.where(truth["record_id"] != truth["entity_id"], "local_id", "")
    return persons.loc[:, list(TABLES["provider_persons"].columns)], truth.reset_index(drop=True)


__all__ = ["LINK_TRUTH_COLUMNS", "add_contacts"]
