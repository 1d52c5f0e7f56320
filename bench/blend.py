"""Compare ways of combining the detectors on the same fits: the blend rule and the tail aggregation.

For each world of the bench family (bench/robustness.py --family) the scorers are fitted
once with all labels and once per scheme of the last month with that scheme's labels
withheld, as the family does. Every fit's raw parts are kept: the forest's and LightGBM's
scores and the tail probability scorer's per-feature terms, on the training months and on
the scored month. Each rule (how the tail terms add up, how the forest and tail
percentiles mix, how the supervised and label-free percentiles blend) is then read off
the same fits, so rules are compared on equal terms and cheaply.

Reported per rule: per world AP, recall@k, never-labelled recall, every scheme's recall
with its labels withheld, honest invoices in the capacity per honest-odd pattern; and the
worst of each over the worlds (the figure to choose by, never one world).

The raw parts of each world's fits are cached in --cache (one pickle per world, written
and read by this script only); delete it after changing features or training.

Usage:
    python bench/blend.py --worlds bigger-town,messy-s31 --cache /tmp/blend-cache --out /tmp/b.json
    python bench/blend.py --rules sum/mean/mean,top8/f.1/mean    (all 11 worlds)
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from robustness import (  # type: ignore[import-not-found]
    FAMILY_CAPACITY,
    _fit_before_last,
    family_config,
    family_worlds,
    prepare_world,
)
from sklearn.metrics import average_precision_score

from tillit.modelling.evaluate import top_k_mask
from tillit.modelling.risk_model import percentile_rank
from tillit.modelling.train import _reviewed_before, review_labels
from tillit.simulate import HONEST_PATTERNS


def _parts(model: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    X = model.matrix(frame)
    iso_X = model.isolation_forest_matrix(X)
    every_term = copy.copy(model.tail_probability)
    every_term.top_k = 0  # every feature's term: the aggregations are the rules' business
    return {
        "iso": np.asarray(model.isolation_forest.risk_score(iso_X), dtype="float64"),
        "gbm": np.asarray(model.lightgbm.risk_score(model.lightgbm_matrix(X)), dtype="float64"),
        "terms": every_term.feature_terms(iso_X),
    }


def collect(spec: Any) -> dict[str, Any]:
    """One world: its month's truth and every fit's raw parts (training months and month)."""
    config = family_config()
    world = prepare_world(spec, config)
    last = world["periods"][-1]
    features = world["features"]
    before = features[features["period"] < last]
    month = features[features["period"] == last].reset_index(drop=True)
    truth = world["truth"].set_index("invoice_id")
    ids = month["invoice_id"]
    scheme = truth["scheme"].reindex(ids).to_numpy(object)
    irregular = truth["irregular"].reindex(ids).fillna(False).to_numpy(bool)
    trained_on = review_labels(_reviewed_before(world["outcomes"], last))
    labelled = set(
        truth["scheme"].reindex(trained_on.loc[trained_on["label"] == 1, "invoice_id"]).dropna()
    )
    touched = world["honest_patterns"]
    patterns = (
        {}
        if touched is None
        else {
            p: np.isin(ids, touched.loc[touched["pattern"] == p, "invoice_id"]) & ~irregular
            for p in HONEST_PATTERNS
        }
    )
    schemes = sorted({str(x) for x in scheme[irregular]})
    fits = {}
    for withheld in ["", *schemes]:
        model = _fit_before_last(world, config, frozenset({withheld}) if withheld else frozenset())
        fits[withheld] = {
            "train": _parts(model, before),
            "month": _parts(model, month),
            "finding": model.components(month)["has_hard_finding"].to_numpy(bool),
            "risk": model.components(month)["risk_score"].to_numpy(),
        }
    tail_columns = list(model.tail_probability.feature_names_in_)
    return {
        "world": spec.name,
        "k": config.review.k(len(month)),
        "scheme": scheme,
        "irregular": irregular,
        "never": [s for s in schemes if s not in labelled],
        "patterns": patterns,
        "fits": fits,
        "tail_columns": tail_columns,
        "train_features": before.loc[:, tail_columns].astype("float32").to_numpy(),
    }


# --------------------------------------------------------------------------- rules

Aggregate = Callable[[np.ndarray, dict[str, Any]], np.ndarray]
Mix = Callable[[np.ndarray, np.ndarray], np.ndarray]


def tail_sum(terms: np.ndarray, _: dict[str, Any]) -> np.ndarray:
    return terms.sum(axis=1)


def tail_top(k: int) -> Aggregate:
    def aggregate(terms: np.ndarray, _: dict[str, Any]) -> np.ndarray:
        return -np.sort(-terms, axis=1)[:, :k].sum(axis=1)

    return aggregate


def tail_capped(cap: float) -> Aggregate:
    def aggregate(terms: np.ndarray, _: dict[str, Any]) -> np.ndarray:
        return np.minimum(terms, cap).sum(axis=1)

    return aggregate


def tail_groups(threshold: float) -> Aggregate:
    """Sum over groups of correlated features of the group's largest term."""

    def aggregate(terms: np.ndarray, world: dict[str, Any]) -> np.ndarray:
        groups = world.setdefault("_groups", {}).get(threshold)
        if groups is None:
            groups = correlated_groups(world["train_features"], threshold)
            world["_groups"][threshold] = groups
        return sum(terms[:, g].max(axis=1) for g in groups)

    return aggregate


def correlated_groups(matrix: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Connected components of features whose |Spearman correlation| reaches the threshold."""
    ranks = pd.DataFrame(matrix).rank().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(ranks, rowvar=False))
    n = corr.shape[0]
    label = np.arange(n)
    for i in range(n):
        for j in range(i + 1, n):
            if abs(corr[i, j]) >= threshold:
                old, new = label[j], label[i]
                label[label == old] = new
    return [np.flatnonzero(label == g) for g in np.unique(label)]


def mean_mix(w: float) -> Mix:
    return lambda a, b: w * a + (1 - w) * b


def power_mix(w: float, p: float) -> Mix:
    return lambda a, b: (w * a**p + (1 - w) * b**p) ** (1 / p)


def noisy_or(w: float) -> Mix:
    """1 - (1-a)^w (1-b)^(1-w): the weighted mean of -log(1 - percentile), on [0, 1]."""
    return lambda a, b: 1 - (1 - a) ** w * (1 - b) ** (1 - w)


def max_mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(a, b)


def _pct_half(reference: np.ndarray, x: np.ndarray) -> np.ndarray:
    return percentile_rank(reference, x)


def risk_of(
    world: dict[str, Any], fit: dict[str, Any], aggregate: Aggregate, lf_mix: Mix, blend: Mix
) -> np.ndarray:
    train, month = fit["train"], fit["month"]
    ref_iso, ref_gbm = np.sort(train["iso"]), np.sort(train["gbm"])
    tail_train = aggregate(train["terms"].astype("float64"), world)
    tail_month = aggregate(month["terms"].astype("float64"), world)
    ref_tail = np.sort(tail_train)
    lf_train = lf_mix(percentile_rank(ref_iso, train["iso"]), percentile_rank(ref_tail, tail_train))
    lf_month = lf_mix(percentile_rank(ref_iso, month["iso"]), percentile_rank(ref_tail, tail_month))
    label_free = percentile_rank(np.sort(lf_train), lf_month)
    gbm = percentile_rank(ref_gbm, month["gbm"])
    value = np.clip(blend(gbm, label_free), 0, 1 - 1e-9)
    return np.where(fit["finding"], 0.9 + 0.1 * value, 0.9 * value)


def evaluate(world: dict[str, Any], aggregate: Aggregate, lf_mix: Mix, blend: Mix) -> dict:
    k = world["k"]
    irregular, scheme = world["irregular"], world["scheme"]
    risk = risk_of(world, world["fits"][""], aggregate, lf_mix, blend)
    top = top_k_mask(risk, k)
    never = irregular & np.isin(scheme.astype(str), world["never"])
    out: dict[str, Any] = {
        "ap": float(average_precision_score(irregular, risk)),
        "recall": float(top[irregular].mean()),
        "never": float(top[never].mean()) if never.any() else None,
        "honest": {p: [int(m.sum()), float(top[m].mean())] for p, m in world["patterns"].items()},
        "all_honest": float(top[~irregular].mean()),
        "loso": {},
    }
    for withheld, fit in world["fits"].items():
        if withheld:
            mask = scheme == withheld
            r = risk_of(world, fit, aggregate, lf_mix, blend)
            out["loso"][withheld] = [int(mask.sum()), float(top_k_mask(r, k)[mask].mean())]
    return out


def summary(results: dict[str, dict]) -> dict[str, Any]:
    aps = {w: r["ap"] for w, r in results.items()}
    loso: dict[str, float] = {}
    for r in results.values():
        for s, (_, v) in r["loso"].items():
            loso[s] = min(loso.get(s, 1.0), v)
    pooled: dict[str, list[float]] = {}
    for r in results.values():
        for p, (n, v) in r["honest"].items():
            if n:
                acc = pooled.setdefault(p, [0, 0.0])
                acc[0] += n
                acc[1] += n * v
    nevers = [r["never"] for r in results.values() if r["never"] is not None]
    return {
        "worst_ap": round(min(aps.values()), 3),
        "mean_ap": round(float(np.mean(list(aps.values()))), 3),
        "worst_recall": round(min(r["recall"] for r in results.values()), 3),
        "worst_never": round(min(nevers), 3) if nevers else None,
        "loso_worst": {s: round(v, 2) for s, v in sorted(loso.items())},
        "loso_mean": round(
            float(np.mean([v for r in results.values() for _, v in r["loso"].values()])), 3
        ),
        "honest_pooled": {p: round(v / n, 3) for p, (n, v) in pooled.items()},
        "ap": {w: round(v, 3) for w, v in aps.items()},
    }


def rules(names: str = "") -> dict[str, tuple[Aggregate, Mix, Mix]]:
    """The rules compared: tail aggregation x label-free mix x blend, by name."""
    aggregates: dict[str, Aggregate] = {
        "sum": tail_sum,
        "top3": tail_top(3),
        "top5": tail_top(5),
        "top8": tail_top(8),
        "top6": tail_top(6),
        "top12": tail_top(12),
        "top16": tail_top(16),
        "top10": tail_top(10),
        "cap3": tail_capped(3.0),
        "cap2": tail_capped(2.0),
        "grp0.5": tail_groups(0.5),
        "grp0.7": tail_groups(0.7),
    }
    mixes: dict[str, Mix] = {
        "mean": mean_mix(0.5),
        "f.25": mean_mix(0.25),
        "f0": mean_mix(0.0),
        "f.1": mean_mix(0.1),
        "f.15": mean_mix(0.15),
        "sw.3": mean_mix(0.3),
        "sw.4": mean_mix(0.4),
        "sw.45": mean_mix(0.45),
        "f.25pow4": power_mix(0.25, 4.0),
        "max": max_mix,
        "pow2": power_mix(0.5, 2.0),
        "pow4": power_mix(0.5, 4.0),
        "pow8": power_mix(0.5, 8.0),
        "nor": noisy_or(0.5),
        "nor.45": noisy_or(0.45),
        "nor.4": noisy_or(0.4),
        "sw.5": mean_mix(0.5),
        "sw.35": mean_mix(0.35),
        "sw.65": mean_mix(0.65),
        "sw.35pow4": power_mix(0.35, 4.0),
        "sw.65pow4": power_mix(0.65, 4.0),
    }
    out: dict[str, tuple[Aggregate, Mix, Mix]] = {}
    for name in (names or DEFAULT_RULES).split(","):
        agg, lf, bl = name.split("/")
        out[name] = (aggregates[agg], mixes[lf], mixes[bl])
    return out


def configured_rule() -> tuple[Aggregate, Mix, Mix]:
    """The rule the configuration trains: tail top_k, forest weight, supervised weight."""
    training = family_config().training
    k = training.tail_probability.top_k
    rule, weight = training.blend.rule_and_weight()
    return (
        tail_top(k) if k else tail_sum,
        mean_mix(training.blend.label_free_isolation_forest_weight),
        (noisy_or if rule == "noisy_or" else mean_mix)(weight),
    )


DEFAULT_RULES = (
    "sum/mean/mean,top5/mean/mean,top10/mean/mean,cap3/mean/mean,cap2/mean/mean,"
    "grp0.5/mean/mean,grp0.7/mean/mean,sum/mean/max,sum/mean/pow2,sum/mean/pow4,"
    "sum/mean/pow8,sum/mean/nor,sum/max/max,sum/pow4/pow4,sum/nor/nor,sum/mean/sw.35,"
    "sum/mean/sw.65,sum/mean/sw.35pow4,sum/mean/sw.65pow4,grp0.7/mean/pow4"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worlds", default="", help="comma-separated family worlds (all)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/blend-cache"))
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--rules", default="", help="comma-separated tail/mix/blend names")
    parser.add_argument("--out", type=Path, default=Path("/tmp/blend.json"))
    args = parser.parse_args()
    only = {w for w in args.worlds.split(",") if w}
    args.cache.mkdir(parents=True, exist_ok=True)
    worlds = []
    for spec in family_worlds(args.quick):
        if only and spec.name not in only:
            continue
        path = args.cache / f"{spec.name}{'-quick' if args.quick else ''}.pkl"
        if not path.exists():
            began = time.perf_counter()
            path.write_bytes(pickle.dumps(collect(spec)))
            print(f"collected {spec.name} in {time.perf_counter() - began:.0f} s", flush=True)
        if not args.collect_only:
            worlds.append(pickle.loads(path.read_bytes()))
    if args.collect_only:
        return
    for w in worlds:  # the harness reproduces the model's own risk for the configured rule
        same = risk_of(w, w["fits"][""], *configured_rule())
        assert np.allclose(same, w["fits"][""]["risk"], atol=1e-9), w["world"]
    table = {}
    for name, (agg, lf, bl) in rules(args.rules).items():
        results = {w["world"]: evaluate(w, agg, lf, bl) for w in worlds}
        table[name] = {"summary": summary(results), "worlds": results}
        s = table[name]["summary"]
        short = {k[:6]: v for k, v in s["loso_worst"].items() if v < 1.0}
        honest = {k[:6]: v for k, v in s["honest_pooled"].items()}
        print(
            f"{name:22s} AP {s['worst_ap']:.3f}/{s['mean_ap']:.3f} rec {s['worst_recall']:.3f} "
            f"never {s['worst_never']} loso {s['loso_mean']:.3f} {short} honest {honest}",
            flush=True,
        )
    args.out.write_text(json.dumps(table, indent=1, default=str) + "\n")
    assert FAMILY_CAPACITY


if __name__ == "__main__":
    main()
