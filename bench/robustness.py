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

The family (`--family`, docs/bench-family.md): messy worlds whose noise, honest-but-odd care
and size are drawn by seed, plus worlds of another shape (many tiny providers, few huge
ones, a bigger town, carers shared widely between providers, UTC timestamp exports). Per
world at 10 % review capacity on the last month, trained on the town's own history: AP,
recall@k, flagged share, never-labelled recall, every scheme's recall with its labels
withheld, and the false-positive rate of honest invoices per honest-odd pattern. The worst
world is the figure to quote:
    python bench/robustness.py --family --out bench/family.json          (about 20 min)
    python bench/robustness.py --family --quick --out /tmp/family.json   (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig, TillitConfig
from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.features.catalog import feature_columns
from tillit.modelling.evaluate import top_k_mask
from tillit.modelling.train import (
    _reviewed_before,
    evaluate_period,
    fit_model,
    review_labels,
)
from tillit.review.score import ModelIdentity, score_month
from tillit.simulate import HONEST_PATTERNS, simulate

IDENTITY = ModelIdentity("bench", "0", "bench")


# The held-back frame score_month takes: here nothing is held back.
_HELD_COLUMNS = (
    "invoice_id",
    "provider_id",
    "client_id",
    "period",
    "service_type",
    "amount_sek",
    "reason",
)


def _nothing_held() -> pd.DataFrame:
    return pd.DataFrame(columns=list(_HELD_COLUMNS))


def prepare(
    profile: str,
    seed: int,
    clients: int,
    months: int,
    config: TillitConfig,
    settings: dict[str, Any] | None = None,
    levels: dict[str, float] | None = None,
    utc_export: bool = False,
) -> dict[str, Any]:
    """Simulate, validate and describe every month of one municipality."""
    world = simulate(
        SimulationConfig.model_validate(
            {
                "seed": seed,
                "clients": clients,
                "months": months,
                "profile": profile,
                **(settings or {}),
            }
        ),
        levels,
    )
    tables = _as_utc_export(world.tables) if utc_export else world.tables
    validated = validate_tables(tables)
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
        "honest_patterns": world.honest_patterns,
    }


def _as_utc_export(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Visit times as a system exporting UTC writes them (time-zone-aware, UTC)."""
    visits = tables["visits"].copy()
    for column in ("start_at", "end_at"):
        local = visits[column].dt.tz_localize(
            "Europe/Stockholm",
            ambiguous=np.zeros(len(visits), dtype=bool),
            nonexistent="shift_forward",
        )
        visits[column] = local.dt.tz_convert("UTC")
    return {**tables, "visits": visits}


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
    held = _nothing_held()
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
    world: dict[str, Any], config: TillitConfig, full: dict[str, float] | None = None
) -> dict[str, dict[str, float]]:
    """For every scheme in the last month: its recall@k with and without its labels."""
    last = world["periods"][-1]
    month_ids = world["features"].loc[world["features"]["period"] == last, "invoice_id"]
    schemes = sorted(
        world["truth"].loc[world["truth"]["invoice_id"].isin(month_ids), "scheme"].dropna().unique()
    )
    if full is None:
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


# ---------------------------------------------------------------------------
# The bench family: messy worlds drawn by seed and worlds of other shapes

FAMILY_CAPACITY = 0.10


@dataclass(frozen=True)
class WorldSpec:
    """One municipality of the family: its name, seed, size and what makes its shape."""

    name: str
    seed: int
    clients: int
    months: int
    start: str
    profile: str = "messy"
    settings: dict[str, Any] = field(default_factory=dict)  # SimulationConfig fields
    levels: dict[str, float] = field(default_factory=dict)  # drawn messy levels overridden
    utc_export: bool = False


def draw_world(seed: int, quick: bool = False) -> WorldSpec:
    """A messy world of the family: size, window and start drawn by seed (levels by simulate)."""
    rng = np.random.default_rng([seed, 2121])
    clients = int(rng.integers(350, 451)) if quick else int(rng.integers(1000, 1401))
    months = int(rng.integers(6, 8)) if quick else int(rng.integers(9, 12))
    # The window ends between June and December: summer and Christmas cover fall inside.
    last = int(rng.integers(6, 13))
    first = last - months + 1
    start = f"{2025 + (first - 1) // 12}-{(first - 1) % 12 + 1:02d}"
    return WorldSpec(f"messy-s{seed}", seed, clients, months, start)


def family_worlds(quick: bool = False) -> list[WorldSpec]:
    """Five messy worlds drawn by seed plus the shapes unlike the default (two of each in quick)."""
    seeds = (31, 32) if quick else (31, 32, 33, 34, 35)
    worlds = [draw_world(seed, quick) for seed in seeds]
    n, m = (400, 6) if quick else (1200, 10)
    shapes = [
        WorldSpec(
            "many-tiny-providers",
            41,
            n,
            m,
            "2025-03",
            settings={"providers_per_1000_clients": 90.0},
        ),
        WorldSpec(
            "few-huge-providers", 42, n, m, "2025-03", settings={"providers_per_1000_clients": 5.0}
        ),
        WorldSpec("bigger-town", 43, 2 * n, m - 2, "2025-05"),
        WorldSpec(
            "shared-staff-pools",
            44,
            n,
            m,
            "2025-03",
            levels={
                "shared_staff_pairs_per_provider": 3.0,
                "holiday_cover_pairs_per_provider": 3.0,
                "overlap_share": 0.3,
            },
        ),
        WorldSpec("utc-exports", 45, n, m, "2025-03", utc_export=True),
        WorldSpec("tidy-default-shape", 7, n, m, "2025-03", profile="tidy"),
    ]
    return worlds + (shapes[:2] if quick else shapes)


def family_config() -> TillitConfig:
    """The default configuration at the family's review capacity (10 % of a month)."""
    config = TillitConfig()
    review = config.review.model_copy(update={"capacity_share": FAMILY_CAPACITY})
    return config.model_copy(update={"review": review})


def _highest_clean_provider_rates(worlds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pattern, the world with the highest capacity share at providers with no scheme."""
    highest: dict[str, dict[str, Any]] = {}
    for w in worlds:
        for pattern, row in w["honest_false_positives"].items():
            n = row.get("honest_invoices_clean_provider", 0)
            rate = row.get("in_capacity_rate_clean_provider", float("nan"))
            if n and (pattern not in highest or rate > highest[pattern]["value"]):
                highest[pattern] = {"value": rate, "world": w["world"], "invoices": n}
    return highest


def _honest_false_positives(
    world: dict[str, Any], month: pd.DataFrame, in_capacity: np.ndarray, flagged: pd.Series
) -> dict[str, dict[str, float]]:
    """Per honest-odd pattern: share of its honest invoices of the month in the capacity/flagged.

    Also the capacity share among the pattern's honest invoices at providers with no irregular
    invoice that month (`..._clean_provider`): an honest invoice of a provider that carries a
    scheme the same month can rank high on the provider's facts (a phoenix's people, its
    billing that month), which is the provider's truth showing, not the honest pattern.
    """
    truth = world["truth"].set_index("invoice_id")["irregular"]
    ids = month["invoice_id"].to_numpy()
    honest = ~truth.reindex(ids).fillna(False).to_numpy(bool)
    carries_scheme = pd.Series(~honest).groupby(month["provider_id"].astype("str").to_numpy())
    clean_provider = ~carries_scheme.transform("max").to_numpy(bool)
    flagged_of = flagged.reindex(ids).fillna(False).to_numpy(bool)
    touched = world["honest_patterns"]
    rows: dict[str, dict[str, float]] = {}
    groups: dict[str, np.ndarray] = {}
    if touched is not None:
        for pattern in HONEST_PATTERNS:
            members = set(touched.loc[touched["pattern"] == pattern, "invoice_id"])
            groups[pattern] = honest & np.fromiter((i in members for i in ids), bool, ids.size)
        groups["no_pattern"] = honest & ~np.fromiter(
            (i in set(touched["invoice_id"]) for i in ids), bool, ids.size
        )
    groups["all_honest"] = honest
    for pattern, mask in groups.items():
        n = int(mask.sum())
        clean = mask & clean_provider
        n_clean = int(clean.sum())
        rows[pattern] = {
            "honest_invoices": n,
            "in_capacity_rate": round(float(in_capacity[mask].mean()), 4) if n else float("nan"),
            "flagged_rate": round(float(flagged_of[mask].mean()), 4) if n else float("nan"),
            "honest_invoices_clean_provider": n_clean,
            "in_capacity_rate_clean_provider": (
                round(float(in_capacity[clean].mean()), 4) if n_clean else float("nan")
            ),
        }
    return rows


def prepare_world(spec: WorldSpec, config: TillitConfig) -> dict[str, Any]:
    """Simulate, validate and describe every month of one world of the family."""
    return prepare(
        spec.profile,
        spec.seed,
        spec.clients,
        spec.months,
        config,
        {"start": spec.start, **spec.settings},
        spec.levels or None,
        spec.utc_export,
    )


def family_world_run(spec: WorldSpec, loso: bool = True, echo: bool = True) -> dict[str, Any]:
    """Every family figure for one world (see the module docstring)."""
    config = family_config()
    began = time.perf_counter()
    world = prepare_world(spec, config)
    prepared = time.perf_counter() - began
    result = world_figures(spec, world, config, loso)
    result["seconds"] = {
        "simulate_and_features": round(prepared, 1),
        "total": round(time.perf_counter() - began, 1),
    }
    if echo:
        print(json.dumps({key: result[key] for key in _ECHOED}, default=str), flush=True)
    return result


def world_figures(
    spec: WorldSpec, world: dict[str, Any], config: TillitConfig, loso: bool = True
) -> dict[str, Any]:
    """The family figures of one prepared world under `config` (bench/loso_sweep.py reuses
    it on cached worlds under changed training settings)."""
    last = world["periods"][-1]
    features = world["features"]
    month = features[features["period"] == last].reset_index(drop=True)
    model = _fit_before_last(world, config)
    metrics = _evaluate(model, world, config)
    k = config.review.k(len(month))
    risk = model.components(month)["risk_score"].to_numpy()
    in_capacity = top_k_mask(risk, k)
    findings = world["findings"][world["findings"]["invoice_id"].isin(month["invoice_id"])]
    held = _nothing_held()
    scored = score_month(model, month, findings, held, config.review, IDENTITY)
    flagged = scored.risk_list.set_index("invoice_id")["flagged"].astype(bool)

    truth = world["truth"].set_index("invoice_id")
    scheme = truth["scheme"].reindex(month["invoice_id"]).to_numpy(object)
    irregular = truth["irregular"].reindex(month["invoice_id"]).fillna(False).to_numpy(bool)
    trained_on = review_labels(_reviewed_before(world["outcomes"], last))
    labelled = set(
        truth["scheme"].reindex(trained_on.loc[trained_on["label"] == 1, "invoice_id"]).dropna()
    )
    present = sorted({str(x) for x in scheme[irregular]})
    never = [x for x in present if x not in labelled]
    never_mask = irregular & np.isin(scheme.astype(str), never)
    result: dict[str, Any] = {
        "world": spec.name,
        "seed": spec.seed,
        "profile": spec.profile,
        "clients": spec.clients,
        "months": spec.months,
        "start": spec.start,
        "shape": {
            **spec.settings,
            **spec.levels,
            **({"utc_export": True} if spec.utc_export else {}),
        },
        "period": last,
        "invoices": len(month),
        "irregular": int(irregular.sum()),
        "k": k,
        "average_precision": round(metrics["combined_average_precision"], 4),
        "recall_at_k": round(metrics["combined_recall_at_k"], 4),
        "precision_at_k": round(metrics["combined_precision_at_k"], 4),
        "isolation_forest_average_precision": round(
            metrics["isolation_forest_average_precision"], 4
        ),
        "flagged_share": round(float(scored.risk_list["flagged"].mean()), 4),
        "recall_at_k_per_scheme": {
            key.removeprefix("combined_recall_at_k_"): round(value, 3)
            for key, value in metrics.items()
            if key.startswith("combined_recall_at_k_") and not np.isnan(value)
        },
        "never_labelled_schemes": never,
        "never_labelled_invoices": int(never_mask.sum()),
        "never_labelled_recall_at_k": (
            round(float(in_capacity[never_mask].mean()), 4) if never_mask.any() else None
        ),
        "honest_false_positives": _honest_false_positives(world, month, in_capacity, flagged),
        "parameters": world["parameters"],
    }
    if loso:
        result["leave_one_scheme_out"] = leave_one_scheme_out(world, config, metrics)
    return result


_ECHOED = (
    "world",
    "invoices",
    "average_precision",
    "recall_at_k",
    "flagged_share",
    "never_labelled_recall_at_k",
    "seconds",
)


def worst_of(worlds: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst world (lowest AP) and the worst value of every figure with where it was."""

    def low(key: str) -> dict[str, Any]:
        known = [w for w in worlds if w.get(key) is not None and not np.isnan(w[key])]
        if not known:
            return {"value": None, "world": None}
        w = min(known, key=lambda w: w[key])
        return {"value": w[key], "world": w["world"]}

    worst: dict[str, Any] = {
        "world": low("average_precision")["world"],
        "average_precision": low("average_precision"),
        "recall_at_k": low("recall_at_k"),
        "never_labelled_recall_at_k": low("never_labelled_recall_at_k"),
    }
    highest = max(worlds, key=lambda w: w["flagged_share"])
    worst["flagged_share"] = {"value": highest["flagged_share"], "world": highest["world"]}
    loso = [
        (row["without_its_labels"], w["world"], scheme)
        for w in worlds
        for scheme, row in w.get("leave_one_scheme_out", {}).items()
        if not np.isnan(row["without_its_labels"])
    ]
    if loso:
        value, where, scheme = min(loso)
        worst["leave_one_scheme_out_recall"] = {"value": value, "world": where, "scheme": scheme}
        per_scheme: dict[str, dict[str, Any]] = {}
        for value, where, scheme in sorted(loso):
            per_scheme.setdefault(scheme, {"value": value, "world": where})
        worst["leave_one_scheme_out_recall_per_scheme"] = per_scheme
    patterns: dict[str, dict[str, Any]] = {}
    for w in worlds:
        for pattern, row in w["honest_false_positives"].items():
            rate = row["in_capacity_rate"]
            if row["honest_invoices"] and (
                pattern not in patterns or rate > patterns[pattern]["value"]
            ):
                patterns[pattern] = {
                    "value": rate,
                    "world": w["world"],
                    "invoices": row["honest_invoices"],
                }
    worst["honest_in_capacity_rate_per_pattern"] = patterns
    pooled: dict[str, dict[str, float]] = {}
    for w in worlds:
        for pattern, row in w["honest_false_positives"].items():
            if row["honest_invoices"]:
                into = pooled.setdefault(pattern, {"invoices": 0, "in_capacity": 0.0})
                into["invoices"] += row["honest_invoices"]
                into["in_capacity"] += row["in_capacity_rate"] * row["honest_invoices"]
    worst["honest_in_capacity_rate_pooled"] = {
        pattern: {
            "value": round(row["in_capacity"] / row["invoices"], 4),
            "invoices": row["invoices"],
        }
        for pattern, row in pooled.items()
    }
    worst["honest_in_capacity_rate_per_pattern_clean_provider"] = _highest_clean_provider_rates(
        worlds
    )
    worst["capacity_share"] = FAMILY_CAPACITY
    return worst


def run_family(
    quick: bool = False, loso: bool = True, echo: bool = True, only: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The whole family (or the worlds named in `only`), world after world, with the worst."""
    began = time.perf_counter()
    specs = [spec for spec in family_worlds(quick) if not only or spec.name in only]
    if not specs:
        names = ", ".join(spec.name for spec in family_worlds(quick))
        raise SystemExit(f"no world of the family is named {', '.join(only)}; there are: {names}")
    worlds = [family_world_run(spec, loso, echo) for spec in specs]
    return {
        "family": "quick" if quick else "full",
        "capacity_share": FAMILY_CAPACITY,
        "worst": worst_of(worlds),
        "worlds": worlds,
        "seconds": round(time.perf_counter() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=600)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--tidy-seed", type=int, default=7)
    parser.add_argument("--messy-seeds", default="11,12")
    parser.add_argument("--no-loso", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/robustness.json"))
    parser.add_argument(
        "--family", action="store_true", help="run the bench family (docs/bench-family.md)"
    )
    parser.add_argument("--quick", action="store_true", help="with --family: small, few worlds")
    parser.add_argument("--worlds", default="", help="with --family: only these, comma-separated")
    args = parser.parse_args()
    if args.family:
        only = tuple(name for name in args.worlds.split(",") if name)
        family = run_family(args.quick, not args.no_loso, only=only)
        args.out.write_text(json.dumps(family, indent=2, default=str) + "\n")
        print(json.dumps(family["worst"], indent=2, default=str))
        print(f"written {args.out} in {family['seconds']} s")
        return
    seeds = tuple(int(s) for s in args.messy_seeds.split(","))
    results = run(args.clients, args.months, args.tidy_seed, seeds, not args.no_loso)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.out} in {results['seconds']} s")


if __name__ == "__main__":
    main()
