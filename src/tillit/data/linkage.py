"""Entities resolved at the edge: which providers and which persons are one and the same.

Why: registers and municipal systems share no clean ids. A phoenix comes back as a
new company at the old address paying into the old bank giro; a board person is
listed once with a personal number and once without. Exact joins on ids miss both.

Two linkages, each a Fellegi-Sunter model in Splink (DuckDB by default; Spark with
the same settings when asked and pyspark is installed):

- **providers** by their contact facts (`provider_contacts`, contract v1.3): street
  address, postcode area, phone, bank giro, plus giro and e-mail domain, each
  compared exactly on its canonical spelling or keyed token (`tillit.data.contacts`),
  with term-frequency adjustment, so that an office building's address or a
  factoring company's bank giro, shared by many honest firms, says little;
- **persons** of `provider_persons` by name token, birth year and company.

The model is not trained by sampling: m probabilities (how often a fact agrees for
one and the same entity) are the priors written below; u probabilities (how often
it agrees by chance) and each value's term frequency are counted exactly from the
data, over distinct providers or person ids (a provider's repeated rows are not
chance); the prior that two records are one entity is `*_twin_share / (n - 1)`.
With `em_iterations` > 0 the m probabilities are refined by expectation
maximisation on a fixed blocking rule (u kept). No random draw anywhere: same data,
same settings, the same probabilities, on DuckDB and on Spark.

Without Splink (`pip install tillit` without the `link` extra) the same pairs are
linked by a deterministic rule with probability 1: two providers agreeing on at
least two facts other than the postcode, two person ids with the same name token
and birth year. Splink is imported only inside `link_registers` with method splink.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import LinkConfig
from tillit.data.contacts import normalise_facts
from tillit.data.contract import CONTACT_FACTS
from tillit.errors import TillitError

# Facts compared for providers; the postcode area only supports the address.
PROVIDER_FACTS = CONTACT_FACTS
STRONG_FACTS = tuple(f for f in CONTACT_FACTS if f != "postcode")
assert STRONG_FACTS[0] == "street_address"
# Prior m probabilities: P(fact agrees | same entity), for facts present on both sides.
# A successor or a second register keeps an address or a giro more often than a phone.
PROVIDER_M = {
    "street_address": 0.75,
    "postcode": 0.15,  # the same postal area but not the same address (a typo, a gap)
    "phone_number": 0.35,
    "bankgiro": 0.75,
    "plusgiro": 0.75,
    "email_domain": 0.35,
}
PERSON_M = {"name_token": 0.90, "provider_id": 0.60}
# Birth year: the same year, a year apart (a typo, a register's rounding).
PERSON_YEAR_M = (0.85, 0.10)
PROVIDER_LINK_COLUMNS = (
    "provider_id",
    "linked_provider_id",
    "match_probability",
    "shared_facts",
    "valid_from",
    "linked_valid_from",
)
PERSON_LINK_COLUMNS = ("person_id", "linked_person_id", "match_probability", "shared_facts")
ENTITY_COLUMNS = ("record_table", "record_id", "entity_id", "match_probability")


def splink_available() -> bool:
    """Whether Splink can be imported (the `link` extra is installed)."""
    return importlib.util.find_spec("splink") is not None


@dataclass(frozen=True)
class Linkage:
    """Linked pairs with their evidence, and the resolved entity of every record.

    Attributes:
        provider_links: one row per pair of contact rows of two providers at or above
            the lower of `min_probability` and `evidence_min_probability` (both directions): provider_id, linked_provider_id,
            match_probability, shared_facts (comma-separated fact names),
            valid_from and linked_valid_from (from when each side's facts held).
        person_links: one row per pair of person ids (both directions): person_id,
            linked_person_id, match_probability, shared_facts.
        entities: record_table ("providers" or "provider_persons"), record_id,
            entity_id (the smallest id of its group, linked at `min_probability` or
            more), match_probability
            (its strongest link into the group; 1.0 alone).
        method: "splink" or "exact".
    """

    provider_links: pd.DataFrame
    person_links: pd.DataFrame
    entities: pd.DataFrame
    method: str


def link_registers(tables: Mapping[str, pd.DataFrame], config: LinkConfig | None = None) -> Linkage:
    """Link providers by contact facts and persons by name token, birth year and company.

    Args:
        tables: validated contract tables; `providers`, `provider_persons` and the
            optional `provider_contacts` are read. Without contacts or name tokens the
            corresponding links are empty and every record is its own entity.
        config: method (auto, splink, exact), backend (duckdb, spark), threshold, seed.
    """
    config = config or LinkConfig()
    method = config.method
    if method == "auto":
        method = "splink" if splink_available() else "exact"
    if method == "splink" and not splink_available():
        raise TillitError(
            "link.method is splink but Splink is not installed: pip install 'tillit[link]', "
            "or set link.method to exact (a deterministic rule) or auto"
        )
    providers = tables["providers"]["provider_id"].astype("str")
    contacts = tables.get("provider_contacts")
    provider_records = _provider_records(contacts) if contacts is not None else None
    person_records = _person_records(tables["provider_persons"])
    if method == "splink":
        provider_pairs = _splink_pairs(provider_records, "providers", config)
        person_pairs = _splink_pairs(person_records, "persons", config)
    else:
        provider_pairs = _exact_provider_pairs(provider_records)
        person_pairs = _exact_person_pairs(person_records)
    keep = min(config.min_probability, config.evidence_min_probability)
    provider_links = _provider_links(provider_pairs, provider_records, keep)
    person_links = _person_links(person_pairs, person_records, keep)

    def sure(links: pd.DataFrame) -> pd.DataFrame:
        return links[links["match_probability"] >= config.min_probability]

    entities = pd.concat(
        [
            _entities(
                "providers", providers, sure(provider_links), "provider_id", "linked_provider_id"
            ),
            _entities(
                "provider_persons",
                tables["provider_persons"]["person_id"].astype("str"),
                sure(person_links),
                "person_id",
                "linked_person_id",
            ),
        ],
        ignore_index=True,
    )
    return Linkage(provider_links, person_links, entities, method)


# -- records -------------------------------------------------------------------------


def _provider_records(contacts: pd.DataFrame) -> pd.DataFrame | None:
    """One row per contact row, facts canonical; None when there is nothing to compare."""
    if contacts.empty:
        return None
    frame = normalise_facts(contacts, PROVIDER_FACTS)
    frame = frame.sort_values(["provider_id", "valid_from"], kind="stable").reset_index(drop=True)
    frame["unique_id"] = frame["provider_id"].astype("str") + "#" + frame.index.astype("str")
    return frame.loc[:, ["unique_id", "provider_id", "valid_from", *PROVIDER_FACTS]]


def _person_records(persons: pd.DataFrame) -> pd.DataFrame | None:
    """One row per person id and company, with its name token and birth year."""
    if "name_token" not in persons or persons["name_token"].isna().all():
        return None
    frame = persons.assign(
        person_id=persons["person_id"].astype("str"),
        provider_id=persons["provider_id"].astype("str"),
    )
    frame = (
        frame.groupby(["person_id", "provider_id"], sort=True)
        .agg(name_token=("name_token", "first"), birth_year=("birth_year", "max"))
        .reset_index()
    )
    frame["unique_id"] = frame["person_id"] + "@" + frame["provider_id"]
    return frame.loc[:, ["unique_id", "person_id", "provider_id", "name_token", "birth_year"]]


# -- Splink ----------------------------------------------------------------------------


def _chance_of_agreement(
    holders: pd.DataFrame, entity: str, column: str
) -> tuple[float, pd.DataFrame]:
    """u for an exact match, and each value's term frequency, counted over entities.

    Counted over distinct entities (providers, person ids), not rows: a provider's
    three contact rows repeat its bank giro, which says nothing about chance.
    `u` is the chance that two different random entities share a value; a value's
    term frequency is the chance that another entity holds it, (holders - 1) / (n - 1),
    so a fact only two providers share weighs as much as chance allows.
    """
    distinct = holders.dropna(subset=[column]).drop_duplicates([entity, column])
    n = distinct[entity].nunique()
    counts = distinct.groupby(column, sort=True)[entity].nunique()
    if n < 2:
        return 0.5, pd.DataFrame({column: [], f"tf_{column}": []})
    u = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    chance = np.maximum(counts.to_numpy() - 1, 1) / (n - 1)
    tf = pd.DataFrame({column: counts.index.astype("str"), f"tf_{column}": chance})
    return float(np.clip(u, 1e-6, 0.5)), tf


def _year_chances(records: pd.DataFrame) -> tuple[float, float]:
    """u of the same birth year and of a year apart, over distinct person ids."""
    years = records.dropna(subset=["birth_year"]).drop_duplicates("person_id")["birth_year"]
    shares = years.value_counts(normalize=True)
    exact = float((shares**2).sum())
    near = float(sum(shares.get(y, 0.0) * shares.get(y + 1, 0.0) * 2 for y in shares.index))
    return float(np.clip(exact, 1e-6, 0.5)), float(np.clip(near, 1e-6, 0.5))


def _splink_model(
    records: pd.DataFrame, kind: str, config: LinkConfig
) -> tuple[Any, list[pd.DataFrame]]:
    """Splink settings (priors for m, u counted from the data) and the term-frequency tables."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    tables = []
    if kind == "providers":
        # The address and its postal area are one comparison: the area says little once the
        # address agrees, and something when the address is missing or mistyped.
        u_address, tf = _chance_of_agreement(records, "provider_id", "street_address")
        tables.append(tf)
        u_area, _ = _chance_of_agreement(records, "provider_id", "postcode")
        u_area = float(np.clip(u_area - u_address, 1e-6, 0.5))
        m_address, m_area = PROVIDER_M["street_address"], PROVIDER_M["postcode"]
        comparisons = [
            cl.CustomComparison(
                [
                    cll.CustomLevel(
                        "(street_address_l IS NULL OR street_address_r IS NULL) "
                        "AND (postcode_l IS NULL OR postcode_r IS NULL)"
                    ).configure(is_null_level=True),
                    cll.ExactMatchLevel("street_address", term_frequency_adjustments=True),
                    cll.ExactMatchLevel("postcode"),
                    cll.ElseLevel(),
                ],
                output_column_name="street_address",
            ).configure(
                m_probabilities=[m_address, m_area, 1.0 - m_address - m_area],
                u_probabilities=[u_address, u_area, 1.0 - u_address - u_area],
            )
        ]
        for fact in STRONG_FACTS[1:]:
            u, tf = _chance_of_agreement(records, "provider_id", fact)
            tables.append(tf)
            m = PROVIDER_M[fact]
            comparisons.append(
                cl.ExactMatch(fact).configure(
                    term_frequency_adjustments=True,
                    m_probabilities=[m, 1.0 - m],
                    u_probabilities=[u, 1.0 - u],
                )
            )
        rules = [f"l.{fact} = r.{fact} AND l.provider_id <> r.provider_id" for fact in STRONG_FACTS]
        n = records["provider_id"].nunique()
        prior = config.provider_twin_share / max(n - 1, 1)
        keep = ["provider_id"]
    else:
        u_name, tf = _chance_of_agreement(records, "person_id", "name_token")
        tables.append(tf)
        u_company, _ = _chance_of_agreement(records, "person_id", "provider_id")
        u_exact, u_near = _year_chances(records)
        m_exact, m_near = PERSON_YEAR_M
        comparisons = [
            cl.ExactMatch("name_token").configure(
                term_frequency_adjustments=True,
                m_probabilities=[PERSON_M["name_token"], 1.0 - PERSON_M["name_token"]],
                u_probabilities=[u_name, 1.0 - u_name],
            ),
            cl.CustomComparison(
                [
                    cll.NullLevel("birth_year"),
                    cll.ExactMatchLevel("birth_year"),
                    cll.CustomLevel("abs(birth_year_l - birth_year_r) <= 1"),
                    cll.ElseLevel(),
                ],
                output_column_name="birth_year",
            ).configure(
                m_probabilities=[m_exact, m_near, 1.0 - m_exact - m_near],
                u_probabilities=[u_exact, u_near, 1.0 - u_exact - u_near],
            ),
            cl.ExactMatch("provider_id").configure(
                m_probabilities=[PERSON_M["provider_id"], 1.0 - PERSON_M["provider_id"]],
                u_probabilities=[u_company, 1.0 - u_company],
            ),
        ]
        rules = [
            "l.name_token = r.name_token AND l.person_id <> r.person_id",
            "l.provider_id = r.provider_id AND l.birth_year = r.birth_year "
            "AND l.person_id <> r.person_id",
        ]
        n = records["person_id"].nunique()
        prior = config.person_twin_share / max(n - 1, 1)
        keep = ["person_id"]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=list[Any](comparisons),
        blocking_rules_to_generate_predictions=list[Any](rules),
        probability_two_random_records_match=float(np.clip(prior, 1e-9, 0.5)),
        retain_matching_columns=True,
        additional_columns_to_retain=keep,
        max_iterations=max(config.em_iterations, 1),
    )
    return settings, [t for t in tables if not t.empty]


def _db_api(config: LinkConfig) -> Any:
    if config.backend == "spark":
        if importlib.util.find_spec("pyspark") is None:
            raise TillitError("link.backend is spark but pyspark is not installed")
        from pyspark.sql import SparkSession
        from splink import SparkAPI

        spark = SparkSession.builder.master(config.spark_master).getOrCreate()
        if spark.sparkContext.getCheckpointDir() is None:  # Splink checkpoints between steps
            import tempfile

            spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="tillit-splink-"))
        return SparkAPI(spark_session=spark)
    from splink import DuckDBAPI

    return DuckDBAPI()


def _splink_pairs(records: pd.DataFrame | None, kind: str, config: LinkConfig) -> pd.DataFrame:
    """Scored pairs of records: unique_id_l, unique_id_r, match_probability, gamma_<fact>."""
    if records is None or len(records) < 2:
        return _no_pairs()
    from splink import Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = _db_api(config)
    frame = records.copy()
    if kind == "persons":
        frame["birth_year"] = frame["birth_year"].astype("float64")
    settings, tf_tables = _splink_model(frame, kind, config)

    def registered(table: pd.DataFrame) -> Any:
        if config.backend == "spark":
            clean = table.astype(object).where(table.notna(), None)
            return db_api.register(db_api.spark.createDataFrame(clean))
        return db_api.register(table)

    linker = Linker(registered(frame), settings, log_level=logging.ERROR)
    for table in tf_tables:
        column = str(table.columns[0])
        linker.table_management.register_term_frequency_lookup(registered(table), column)
    if config.em_iterations > 0:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rules_for_em(kind), fix_u_probabilities=True
        )
    predictions = linker.inference.predict().as_pandas_dataframe()
    if predictions.empty:
        return _no_pairs()
    gammas = [c for c in predictions.columns if c.startswith("gamma_")]
    out = predictions.loc[:, ["unique_id_l", "unique_id_r", "match_probability", *gammas]]
    return out.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


def rules_for_em(kind: str) -> str:
    """The blocking rule expectation maximisation learns on (the postcode area / the company)."""
    return "l.postcode = r.postcode" if kind == "providers" else "l.provider_id = r.provider_id"


def _no_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id_l": pd.Series(dtype="str"),
            "unique_id_r": pd.Series(dtype="str"),
            "match_probability": pd.Series(dtype="float64"),
        }
    )


# -- the rule without Splink -----------------------------------------------------------


def _self_join(records: pd.DataFrame, on: str, apart: str) -> pd.DataFrame:
    present = records.dropna(subset=[on])
    pairs = present.merge(present, on=on, suffixes=("_l", "_r"))
    pairs = pairs[
        (pairs[f"{apart}_l"] != pairs[f"{apart}_r"]) & (pairs["unique_id_l"] < pairs["unique_id_r"])
    ]
    return pairs[["unique_id_l", "unique_id_r"]]


def _exact_provider_pairs(records: pd.DataFrame | None) -> pd.DataFrame:
    """Pairs of contact rows of two providers agreeing on at least two strong facts."""
    if records is None:
        return _no_pairs()
    candidates = pd.concat(
        [_self_join(records, fact, "provider_id") for fact in STRONG_FACTS], ignore_index=True
    ).drop_duplicates()
    facts = _agreements(candidates, records, STRONG_FACTS)
    keep = facts.sum(axis=1).to_numpy() >= 2
    out = candidates[keep].assign(match_probability=1.0)
    return out.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


def _exact_person_pairs(records: pd.DataFrame | None) -> pd.DataFrame:
    """Pairs of person ids with the same name token and the same birth year."""
    if records is None:
        return _no_pairs()
    candidates = _self_join(records, "name_token", "person_id")
    year = records.set_index("unique_id")["birth_year"]
    same = (
        year.reindex(candidates["unique_id_l"]).to_numpy()
        == year.reindex(candidates["unique_id_r"]).to_numpy()
    )
    out = candidates[same].assign(match_probability=1.0)
    return out.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


# -- links and entities ----------------------------------------------------------------


def _agreements(pairs: pd.DataFrame, records: pd.DataFrame, facts: Sequence[str]) -> pd.DataFrame:
    """Whether each fact agrees (present on both sides and equal) for each pair."""
    indexed = records.set_index("unique_id")
    left = indexed.reindex(pairs["unique_id_l"])
    right = indexed.reindex(pairs["unique_id_r"])
    return pd.DataFrame(
        {
            fact: (
                left[fact].notna().to_numpy() & (left[fact].to_numpy() == right[fact].to_numpy())
            )
            for fact in facts
        },
        index=pairs.index,
    )


def _shared(agree: pd.DataFrame) -> list[str]:
    names = np.array(agree.columns, dtype=object)
    return [", ".join(names[row]) for row in agree.to_numpy(bool)]


def _provider_links(
    pairs: pd.DataFrame, records: pd.DataFrame | None, min_probability: float
) -> pd.DataFrame:
    if records is None or pairs.empty:
        return _empty(PROVIDER_LINK_COLUMNS)
    pairs = pairs[pairs["match_probability"] >= min_probability].reset_index(drop=True)
    indexed = records.set_index("unique_id")
    shared = _shared(_agreements(pairs, records, PROVIDER_FACTS))
    one_way = pd.DataFrame(
        {
            "provider_id": indexed["provider_id"].reindex(pairs["unique_id_l"]).to_numpy(),
            "linked_provider_id": indexed["provider_id"].reindex(pairs["unique_id_r"]).to_numpy(),
            "match_probability": np.round(pairs["match_probability"].to_numpy(), 6),
            "shared_facts": shared,
            "valid_from": indexed["valid_from"].reindex(pairs["unique_id_l"]).to_numpy(),
            "linked_valid_from": indexed["valid_from"].reindex(pairs["unique_id_r"]).to_numpy(),
        }
    )
    return _both_ways(
        one_way, "provider_id", "linked_provider_id", ("valid_from", "linked_valid_from")
    )


def _person_links(
    pairs: pd.DataFrame, records: pd.DataFrame | None, min_probability: float
) -> pd.DataFrame:
    if records is None or pairs.empty:
        return _empty(PERSON_LINK_COLUMNS)
    pairs = pairs[pairs["match_probability"] >= min_probability].reset_index(drop=True)
    indexed = records.set_index("unique_id")
    agree = _agreements(pairs, records, ("name_token", "birth_year", "provider_id"))
    one_way = pd.DataFrame(
        {
            "person_id": indexed["person_id"].reindex(pairs["unique_id_l"]).to_numpy(),
            "linked_person_id": indexed["person_id"].reindex(pairs["unique_id_r"]).to_numpy(),
            "match_probability": np.round(pairs["match_probability"].to_numpy(), 6),
            "shared_facts": _shared(agree),
        }
    )
    # One row per pair of person ids: the strongest of their records' pairs.
    one_way = one_way.sort_values(
        ["person_id", "linked_person_id", "match_probability"],
        ascending=[True, True, False],
        kind="stable",
    ).drop_duplicates(["person_id", "linked_person_id"])
    return _both_ways(one_way, "person_id", "linked_person_id", ())


def _both_ways(frame: pd.DataFrame, left: str, right: str, paired: tuple[str, ...]) -> pd.DataFrame:
    swapped = frame.rename(columns={left: right, right: left})
    if paired:
        swapped = swapped.rename(columns={paired[0]: paired[1], paired[1]: paired[0]})
    both = pd.concat([frame, swapped.loc[:, list(frame.columns)]], ignore_index=True)
    both = both.sort_values(
        [left, right, "match_probability"], ascending=[True, True, False], kind="stable"
    )
    both = both.drop_duplicates(list(both.columns))
    return both.reset_index(drop=True)


def _entities(
    table: str, ids: pd.Series, links: pd.DataFrame, left: str, right: str
) -> pd.DataFrame:
    """Connected groups of linked ids; each named by its smallest id (a union-find)."""
    parent = {i: i for i in sorted(set(ids))}
    strongest: dict[str, float] = {}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, p in zip(links[left], links[right], links["match_probability"], strict=True):
        if a not in parent or b not in parent:
            continue
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
        strongest[a] = max(strongest.get(a, 0.0), float(p))
    records = sorted(parent)
    return pd.DataFrame(
        {
            "record_table": table,
            "record_id": records,
            "entity_id": [find(i) for i in records],
            "match_probability": [strongest.get(i, 1.0) for i in records],
        }
    ).astype({"record_table": "str", "record_id": "str", "entity_id": "str"})


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    kinds = {"match_probability": "float64", "valid_from": "datetime64[ns]"}
    kinds["linked_valid_from"] = "datetime64[ns]"
    return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, "str")) for c in columns})


__all__ = [
    "ENTITY_COLUMNS",
    "PERSON_LINK_COLUMNS",
    "PROVIDER_LINK_COLUMNS",
    "Linkage",
    "link_registers",
    "splink_available",
]
