"""Linking precision and recall on simulated registers (contract v1.3), written as JSON.

For each seed a municipality is simulated (every phoenix successor shares only an
address and a bank giro with its predecessor: `contact_phoenix_share` 1.0, unless
given) and `tillit.data.linkage.link_registers` links its providers by contact facts
and its persons by name token, birth year and company, with Splink (DuckDB) and with
the exact rule. Truth is the simulator's `link_truth`: two provider ids are one
entity when one is the other's phoenix successor; two person ids when they are one
person listed with and without a personal number.

Pairwise precision and recall over pairs of distinct ids, at each threshold, summed
over the seeds; plus the share of honest providers (not a phoenix, not sanctioned or
terminated) linked at or above the evidence floor to a sanctioned or terminated
company: what would flag an honest firm by the contact evidence.

Usage: ``python bench/linkage_bench.py [--seeds 1 2 3] [--clients 3000] [--months 12]
[--profile tidy|messy] [--out bench/linkage.json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import pandas as pd

from tillit.config import LinkConfig, SimulationConfig
from tillit.data.linkage import link_registers, splink_available
from tillit.simulate import simulate

THRESHOLDS = (0.05, 0.5, 0.9)  # the evidence floor, more likely than not, an entity


def _true_pairs(truth: pd.DataFrame, table: str) -> set[tuple[str, str]]:
    rows = truth[truth["record_table"] == table]
    pairs: set[tuple[str, str]] = set()
    for _, group in rows.groupby("entity_id"):
        ids = sorted(set(group["record_id"]))
        pairs |= set(itertools.combinations(ids, 2))
    return pairs


def _found(links: pd.DataFrame, left: str, right: str, threshold: float) -> set[tuple[str, str]]:
    kept = links[links["match_probability"] >= threshold]
    return {(a, b) for a, b in zip(kept[left], kept[right], strict=True) if a < b}


def _bad_providers(tables: dict[str, pd.DataFrame]) -> set[str]:
    providers, events = tables["providers"], tables["provider_events"]
    sanctioned = set(events.loc[events["event_type"] == "sanction", "provider_id"])
    return set(providers.loc[providers["terminated_on"].notna(), "provider_id"]) | sanctioned


def run(
    seeds: list[int], clients: int, months: int, share: float, profile: str
) -> dict[str, object]:
    methods = ["splink", "exact"] if splink_available() else ["exact"]
    counts: dict[str, dict[str, dict[str, int]]] = {}
    honest: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
    sizes = []
    for seed in seeds:
        sim = simulate(
            SimulationConfig(seed=seed, clients=clients, months=months, contact_phoenix_share=share)
        )
        tables, truth = sim.tables, sim.link_truth
        assert truth is not None
        sizes.append(
            {
                "seed": seed,
                "providers": len(tables["providers"]),
                "contact_rows": len(tables["provider_contacts"]),
                "person_ids": int(tables["provider_persons"]["person_id"].nunique()),
            }
        )
        bad = _bad_providers(tables)
        phoenix = set(truth.loc[truth["note"].str.endswith("phoenix"), "record_id"])
        honest_ids = set(tables["providers"]["provider_id"]) - bad - phoenix
        for method in methods:
            began = time.perf_counter()
            linkage = link_registers(tables, LinkConfig(method=method, min_probability=0.001))
            seconds[method] += time.perf_counter() - began
            for kind, table, links, left, right in (
                ("providers", "providers", linkage.provider_links, "provider_id", "linked_provider_id"),
                ("persons", "provider_persons", linkage.person_links, "person_id", "linked_person_id"),
            ):  # fmt: skip
                true = _true_pairs(truth, table)
                for threshold in THRESHOLDS:
                    found = _found(links, left, right, threshold)
                    c = counts.setdefault(
                        f"{method}/{kind}/{threshold}", {"tp": 0, "fp": 0, "fn": 0}
                    )
                    c["tp"] += len(found & true)
                    c["fp"] += len(found - true)
                    c["fn"] += len(true - found)
            for threshold in THRESHOLDS:
                links = linkage.provider_links
                links = links[links["match_probability"] >= threshold]
                flagged = set(links.loc[links["linked_provider_id"].isin(bad), "provider_id"])
                h = honest.setdefault(f"{method}/{threshold}", {"flagged": 0, "honest": 0})
                h["flagged"] += len(flagged & honest_ids)
                h["honest"] += len(honest_ids)
    result: dict[str, object] = {
        "command": "python " + " ".join(sys.argv),
        "seeds": seeds,
        "clients": clients,
        "months": months,
        "contact_phoenix_share": share,
        "profile": profile,
        "worlds": sizes,
        "link_seconds": {m: round(s, 2) for m, s in seconds.items()},
        "pairwise": {
            key: {
                **c,
                "precision": round(c["tp"] / (c["tp"] + c["fp"]), 4) if c["tp"] + c["fp"] else None,
                "recall": round(c["tp"] / (c["tp"] + c["fn"]), 4) if c["tp"] + c["fn"] else None,
            }
            for key, c in counts.items()
        },
        "honest_providers_linked_to_sanctioned_or_terminated": {
            key: {**h, "share": round(h["flagged"] / h["honest"], 4) if h["honest"] else None}
            for key, h in honest.items()
        },
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--contact-phoenix-share", type=float, default=1.0)
    parser.add_argument("--profile", choices=["tidy", "messy"], default="tidy")
    parser.add_argument("--out", type=Path, default=Path("bench/linkage.json"))
    args = parser.parse_args()
    result = run(args.seeds, args.clients, args.months, args.contact_phoenix_share, args.profile)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(result["pairwise"], indent=1))
    print(json.dumps(result["honest_providers_linked_to_sanctioned_or_terminated"], indent=1))


if __name__ == "__main__":
    main()
