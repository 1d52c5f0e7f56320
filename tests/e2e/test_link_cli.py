"""Entities resolved at the edge, end to end: `tillit link` and the provider page (contract v1.3).

A small world whose phoenix successor shares no person with its terminated
predecessor, only the last street address and the bank giro (`contact_phoenix_share`
1.0): the provider page must rank it among the top five with the evidence pair, in
English and Swedish, and honest providers must not be flagged by a shared address.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from tests.cli import ok, refused, tillit_here

SEED, CLIENTS, MONTHS, PERIOD = 11, 300, 6, "2025-06"


@pytest.fixture(scope="module")
def contact_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("contact_world")
    config = root / "config.yaml"
    config.write_text("simulation:\n  contact_phoenix_share: 1.0\n", "utf-8")
    data, store = root / "data", root / "models"
    ok(
        tillit_here(
            "simulate", "--out", data, "--seed", SEED, "--clients", CLIENTS, "--months", MONTHS,
            "--config", config, "--quiet",
        )
    )  # fmt: skip
    ok(tillit_here("train", "--data", data, "--store", store, "--config", config, "--quiet"))
    ok(tillit_here("promote", "--store", store))
    truth = pd.read_parquet(data / "link_truth.parquet")
    phoenix = truth.loc[truth["note"] == "contact_phoenix"]
    assert len(phoenix) == 1
    return {
        "root": root,
        "data": data,
        "store": store,
        "config": config,
        "successor": phoenix["record_id"].iloc[0],
        "predecessor": phoenix["entity_id"].iloc[0],
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("shares the street address and the bank giro with", "match probability")),
        ("sv", ("delar gatuadressen och bankgirot med", "matchningssannolikhet")),
    ],
)
def test_the_page_ranks_the_contact_phoenix_in_the_top_five_with_the_evidence_pair(
    contact_world, language, words
):
    w = contact_world
    out = w["root"] / f"providers-{language}"
    ok(
        tillit_here(
            "providers", "--period", PERIOD, "--data", w["data"], "--store", w["store"],
            "--out", out, "--config", w["config"], "--lang", language,
        )
    )  # fmt: skip
    table = pd.read_parquet(out / "provider_risk.parquet")
    active = table[table["part"] == "invoices_and_register"].set_index("provider_id")
    successor = active.loc[w["successor"]]
    assert successor["rank"] <= 5
    providers = pd.read_parquet(w["data"] / "providers.parquet").set_index("provider_id")
    org = providers.loc[w["predecessor"], "org_number"]
    pair = [f for f in successor["facts"].split(" | ") if words[0] in f]
    assert len(pair) == 1 and org in pair[0] and w["predecessor"] in pair[0]
    assert words[1] in pair[0]
    assert any(
        words[0].split(" med")[0].split(" with")[0] in r for r in successor["reasons"].split(" | ")
    )
    page = (out / "providers.html").read_text("utf-8")
    assert words[0] in page
    assert json.loads((out / "manifest.json").read_text())["linkage"] == "splink"
    # No honest provider is flagged by the contact evidence (shared buildings, factoring giros).
    truth = pd.read_parquet(w["data"] / "provider_truth.parquet")
    honest = set(truth.loc[(truth["period"] == PERIOD) & ~truth["irregular"], "provider_id"])
    flagged = table[table["facts"].str.contains(words[0], regex=False)]["provider_id"]
    assert not set(flagged) & honest


@pytest.mark.slow
def test_link_writes_pairs_and_entities_beside_the_data_never_over_it(contact_world, tmp_path):
    w = contact_world
    out = tmp_path / "links"
    said = ok(tillit_here("link", "--data", w["data"], "--out", out)).stdout
    assert said.startswith("splink: 1 provider pair(s)")
    links = pd.read_parquet(out / "provider_links.parquet")
    pair = links[links["provider_id"] == w["successor"]]
    assert set(pair["linked_provider_id"]) == {w["predecessor"]}
    assert set(pair["shared_facts"]) == {"street_address, bankgiro"}
    entities = pd.read_parquet(out / "entities.parquet")
    persons = entities[entities["record_table"] == "provider_persons"]
    truth = pd.read_parquet(w["data"] / "link_truth.parquet")
    truth = truth[truth["record_table"] == "provider_persons"].set_index("record_id")["entity_id"]
    # Every resolved group is one true person (precision of the merges).
    merged = persons[persons["record_id"] != persons["entity_id"]]
    assert len(merged) >= 1
    for entity, group in persons[persons["entity_id"].isin(merged["entity_id"])].groupby(
        "entity_id"
    ):
        assert truth.reindex(group["record_id"]).nunique() == 1, entity
    exact = ok(
        tillit_here("link", "--data", w["data"], "--out", tmp_path / "exact", "--method", "exact")
    )
    assert exact.stdout.startswith("exact: 1 provider pair(s)")
    refused(tillit_here("link", "--data", w["data"], "--out", w["data"]), "--data")
    inside_store = w["store"] / "links"
    refused(
        tillit_here("link", "--data", w["data"], "--out", inside_store, "--store", w["store"]),
        "store",
    )
    assert not inside_store.exists()
