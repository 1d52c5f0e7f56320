"""Does tillit hold on municipalities it was not built on? Profiles, unlabelled schemes, A -> B.

For each profile (tidy, messy) and seed: train on every month before the last (labels
known before it), rank the last month at the review capacity, and report what an
auditor gets: flagged share of the month (capacity + random checks + bounded findings),
AP, recall@k and recall@k per scheme, with the finding types demoted to patterns.

Leave-one-scheme-out: for every scheme S, S's labels are removed from training (its
reviewed invoices are treated as never reviewed), and S's recall@k on the last month is
reported: how well tillit finds a scheme nobody has labelled. Train on town A / score
town B: a model trained on one messy municipality ranks the last month of another drawn
with different parameters; its AP is compared with B's own model.

Usage (small sizes finish in a minute; 3,000 clients x 12 months takes several):
    python bench/robustness.py --clients 600 --months 8 --out bench/robustness.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig, TillitConfig
from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.features.catalog import feature_columns
from tillit.modelling.train import (
    _reviewed_before,
    evaluate_period,
    fit_model,
    review_labels,
)
from tillit.review.score import ModelIdentity, score_month
from tillit.simulate import simulate

IDENTITY = ModelIdentity("bench", "0", "bench")


def prepare(
    profile: str, seed: int, clients: int, months: int, config: TillitConfig
) -> dict[str, Any]:
    """Simulate, validate and describe every month of one municipality."""
    world = simulate(
        SimulationConfig.model_validate(
            {"seed": seed, "clients": clients, "months": months, "profile": profile}
        )
    )
    validated = validate_tables(world.tables)
    periods = sorted(world.tables["invoices"]["period"].unique())
    feature_set = build_features(validated.tables, periods, config.features)
    return {
        "profile": profile,
        "seed": seed,
        "truth": world.truth,
        "outcomes": validated.tables.get("audit_outcomes"),
        "features": feature_set.features,
        "findings": feature_set.findings,
        "periods": periods,
        "parameters": world.parameters,
    }


def _fit_before_last(
    world: dict[str, Any], config: TillitConfig, drop: frozenset[str] = frozenset()
) -> Any:
    features = world["features"]
    last = world["periods"][-1]
    before = features[features["period"] < last]
    labels = review_labels(_reviewed_before(world["outcomes"], last))
    if drop:
        truth = world["truth"].set_index("invoice_id")["scheme"]
        labels = labels[~labels["invoice_id"].map(truth).isin(drop)]
    model, _ = fit_model(before, feature_columns(config.features), labels, config.training)
    return model


def _evaluate(model: Any, world: dict[str, Any], config: TillitConfig) -> dict[str, float]:
    features = world["features"]
    month = features[features["period"] == world["periods"][-1]]
    labels = review_labels(world["outcomes"])
    return evaluate_period(model, month, labels, world["truth"], config.review).metrics


def profile_run(world: dict[str, Any], config: TillitConfig) -> dict[str, Any]:
    """Flagged share, AP, recall@k, per-scheme recall and patterns on the last month."""
    model = _fit_before_last(world, config)
    metrics = _evaluate(model, world, config)
    features = world["features"]
    last = world["periods"][-1]
    month = features[features["period"] == last]
    findings = world["findings"][world["findings"]["invoice_id"].isin(month["invoice_id"])]
    held = pd.DataFrame(
        columns=[
            "invoice_id",
            "provider_id",
            "client_id",
            "period",
            "service_type",
            "amount_sek",
            "reason",
        ]
    )
    began = time.perf_counter()
    scored = score_month(model, month, findings, held, config.review, IDENTITY)
    seconds = time.perf_counter() - began
    risk = scored.risk_list.merge(world["truth"], on="invoice_id", how="left")
    honest = ~risk["irregular"].fillna(False).astype(bool)
    double_booked = risk["findings"].str.contains(
        "Staff are registered at two clients", regex=False
    )
    return {
        "profile": world["profile"],
        "seed": world["seed"],
        "period": last,
        "invoices": len(month),
        "irregular": int((~honest).sum()),
        "flagged": int(scored.risk_list["flagged"].sum()),
        "flagged_share": round(float(scored.risk_list["flagged"].mean()), 4),
        "findings_beyond_bound": scored.summary["findings_beyond_bound"],
        "honest_with_double_booking_finding": int((honest & double_booked).sum()),
        "average_precision": round(metrics["combined_average_precision"], 4),
        "recall_at_k": round(metrics["combined_recall_at_k"], 4),
        "precision_at_k": round(metrics["combined_precision_at_k"], 4),
        "isolation_forest_average_precision": round(
            metrics["isolation_forest_average_precision"], 4
        ),
        "recall_at_k_per_scheme": {
            key.removeprefix("combined_recall_at_k_"): round(value, 3)
            for key, value in metrics.items()
            if key.startswith("combined_recall_at_k_") and not np.isnan(value)
        },
        "patterns": scored.triage["patterns"],
        "cases": len(scored.triage["cases"]),
        "score_month_seconds": round(seconds, 2),
        "parameters": world["parameters"],
    }


def leave_one_scheme_out(
    world: dict[str, Any], config: TillitConfig
) -> dict[str, dict[str, float]]:
    """For every scheme in the last month: its recall@k with and without its labels."""
    last = world["periods"][-1]
    month_ids = world["features"].loc[world["features"]["period"] == last, "invoice_id"]
    schemes = sorted(
        world["truth"].loc[world["truth"]["invoice_id"].isin(month_ids), "scheme"].dropna().unique()
    )
    full = _evaluate(_fit_before_last(world, config), world, config)
    table = {}
    for scheme in schemes:
        metrics = _evaluate(_fit_before_last(world, config, frozenset({scheme})), world, config)
        table[scheme] = {
            "with_labels": round(full.get(f"combined_recall_at_k_{scheme}", float("nan")), 3),
            "without_its_labels": round(
                metrics.get(f"combined_recall_at_k_{scheme}", float("nan")), 3
            ),
            "invoices": int(
                world["truth"]
                .loc[world["truth"]["invoice_id"].isin(month_ids), "scheme"]
                .eq(scheme)
                .sum()
            ),
        }
    return table


def town_a_to_b(a: dict[str, Any], b: dict[str, Any], config: TillitConfig) -> dict[str, float]:
    """AP on B's last month of a model trained on A, against B's own model."""
    own = _evaluate(_fit_before_last(b, config), b, config)["combined_average_precision"]
    foreign = _evaluate(_fit_before_last(a, config), b, config)["combined_average_precision"]
    return {
        "town_a_seed": a["seed"],
        "town_b_seed": b["seed"],
        "b_own_model_ap": round(own, 4),
        "a_model_on_b_ap": round(foreign, 4),
        "difference": round(own - foreign, 4),
    }


def run(
    clients: int,
    months: int,
    tidy_seed: int = 7,
    messy_seeds: tuple[int, ...] = (11, 12),
    loso: bool = True,
    echo: bool = True,
) -> dict[str, Any]:
    """Every robustness figure for one size; what `bench/run.py --stages robustness` records."""
    config = TillitConfig()
    results: dict[str, Any] = {"clients": clients, "months": months}
    began = time.perf_counter()

    def show(value: object) -> None:
        if echo:
            print(json.dumps(value, default=str), flush=True)

    tidy = prepare("tidy", tidy_seed, clients, months, config)
    results["tidy"] = profile_run(tidy, config)
    show(results["tidy"])
    del tidy
    towns = [prepare("messy", seed, clients, months, config) for seed in messy_seeds]
    results["messy"] = [profile_run(town, config) for town in towns]
    for one in results["messy"]:
        show(one)
    if loso:
        results["leave_one_scheme_out"] = leave_one_scheme_out(towns[0], config)
        show(results["leave_one_scheme_out"])
    if len(towns) > 1:
        results["train_a_score_b"] = town_a_to_b(towns[0], towns[1], config)
        show(results["train_a_score_b"])
    results["seconds"] = round(time.perf_counter() - began, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=600)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--tidy-seed", type=int, default=7)
    parser.add_argument("--messy-seeds", default="11,12")
    parser.add_argument("--no-loso", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/robustness.json"))
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.messy_seeds.split(","))
    results = run(args.clients, args.months, args.tidy_seed, seeds, not args.no_loso)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.out} in {results['seconds']} s")


if __name__ == "__main__":
    main()
