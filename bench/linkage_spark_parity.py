"""Splink on Spark gives the pairs and probabilities it gives on DuckDB, with the same settings.

Simulates one small municipality (contract v1.3 contact facts and person name tokens),
links it with `link.backend` duckdb and spark (`local[1]`), and prints the number of
pairs on each and the largest difference in match probability.

Usage: ``python bench/linkage_spark_parity.py [--seed 11] [--clients 300] [--months 6]``
"""

from __future__ import annotations

import argparse
import json
import time

from tillit.config import LinkConfig, SimulationConfig
from tillit.data.linkage import link_registers
from tillit.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--months", type=int, default=6)
    args = parser.parse_args()
    sim = simulate(
        SimulationConfig(
            seed=args.seed, clients=args.clients, months=args.months, contact_phoenix_share=1.0
        )
    )
    result: dict[str, object] = {}
    linked = {}
    for backend in ("duckdb", "spark"):
        began = time.perf_counter()
        config = LinkConfig(method="splink", backend=backend, evidence_min_probability=0.001)
        linked[backend] = link_registers(sim.tables, config)
        result[f"{backend}_seconds"] = round(time.perf_counter() - began, 1)
    for kind in ("provider_links", "person_links"):
        duck, spark = getattr(linked["duckdb"], kind), getattr(linked["spark"], kind)
        keys = [*duck.columns[:2], "shared_facts"]
        both = duck.merge(spark, on=keys, suffixes=("_duckdb", "_spark"))
        diff = (both["match_probability_duckdb"] - both["match_probability_spark"]).abs()
        result[kind] = {
            "duckdb": len(duck),
            "spark": len(spark),
            "matched": len(both),
            "max_abs_difference": float(diff.max()) if len(both) else 0.0,
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
