"""Choose the label-free mix by leave-one-scheme-out on several worlds, and show what it gives.

For each world (tidy and messy seeds) and each scheme S of its last month, the model is
trained without S's labels and ranks the last month; S's recall at the review capacity is
what an auditor gets for a scheme nobody has labelled. The scorers are fitted once per
(world, withheld scheme); every weight of the forest in the label-free mix
(`blend.label_free_isolation_forest_weight`) is then read off the same fits. Reported per
weight: the worst and mean withheld-scheme recall over all worlds and schemes, and each
world's AP and recall@k with all labels.

Usage:
    python bench/label_free.py --clients 1000 --months 8 --out /tmp/label_free.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from robustness import _fit_before_last, prepare  # type: ignore[import-not-found]

from tillit.config import TillitConfig
from tillit.modelling.evaluate import ranking_metrics

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _month(world: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = world["features"]
    month = features[features["period"] == world["periods"][-1]]
    truth = month[["invoice_id"]].merge(world["truth"], on="invoice_id", how="left")
    return month, truth


def _metrics(model: Any, month: pd.DataFrame, truth: pd.DataFrame, k: int) -> dict[str, float]:
    parts = model.components(month)
    label = truth["irregular"].fillna(False).astype("int64").to_numpy()
    scheme = truth["scheme"].where(label == 1)
    out = ranking_metrics(label, parts["risk_score"].to_numpy(), k, groups=scheme)
    # Models from before the second label-free scorer: the forest is the label-free side.
    free_column = next(
        c for c in ("label_free_percentile", "isolation_forest_percentile") if c in parts
    )
    free = ranking_metrics(label, parts[free_column].to_numpy(), k)
    out["label_free_average_precision"] = free["average_precision"]
    return out


def run(
    clients: int, months: int, worlds: list[tuple[str, int]], capacity: float
) -> dict[str, Any]:
    config = TillitConfig().model_copy(
        update={"review": TillitConfig().review.model_copy(update={"capacity_share": capacity})}
    )
    table: dict[str, Any] = {"capacity_share": capacity, "weights": {}}
    rows = []
    for profile, seed in worlds:
        world = prepare(profile, seed, clients, months, config)
        month, truth = _month(world)
        k = config.review.k(len(month))
        schemes = sorted(truth["scheme"].dropna().unique())
        fits = {"": _fit_before_last(world, config)}
        for scheme in schemes:
            fits[scheme] = _fit_before_last(world, config, frozenset({scheme}))
        has_tail = getattr(fits[""], "tail_probability", None) is not None
        for weight in WEIGHTS if has_tail else (1.0,):
            for withheld, model in fits.items():
                if has_tail:  # the mix's reference depends on the weight
                    model = copy.copy(model)
                    model.blend = model.blend.model_copy(
                        update={"label_free_isolation_forest_weight": weight}
                    )
                    model = _rereference(model, world, weight)
                m = _metrics(model, month, truth, k)
                if withheld:
                    rows.append(
                        {
                            "world": f"{profile}{seed}",
                            "weight": weight,
                            "scheme": withheld,
                            "recall": m.get(f"recall_at_k_{withheld}", np.nan),
                            "invoices": int((truth["scheme"] == withheld).sum()),
                        }
                    )
                else:
                    table["weights"].setdefault(str(weight), {})[f"{profile}{seed}"] = {
                        "average_precision": round(m["average_precision"], 4),
                        "recall_at_k": round(m["recall_at_k"], 4),
                        "label_free_average_precision": round(m["label_free_average_precision"], 4),
                    }
    loso = pd.DataFrame(rows)
    for weight, part in loso.groupby("weight"):
        entry = table["weights"][str(weight)]
        entry["loso_worst_recall"] = round(float(part["recall"].min()), 3)
        entry["loso_mean_recall"] = round(float(part["recall"].mean()), 3)
        entry["loso"] = {
            f"{r.world}:{r.scheme}": round(float(r.recall), 3) for r in part.itertuples()
        }
    return table


def _rereference(model: Any, world: dict[str, Any], weight: float) -> Any:
    """The label-free mix's reference for another weight, from the same training months."""
    from tillit.modelling.risk_model import percentile_rank

    features = world["features"]
    before = features[features["period"] < world["periods"][-1]]
    X = model.isolation_forest_matrix(model.matrix(before))
    iso = percentile_rank(model.reference_isolation_forest_, model.isolation_forest.risk_score(X))
    tail = percentile_rank(model.reference_tail_probability_, model.tail_probability.risk_score(X))
    model.reference_label_free_ = np.sort(weight * iso + (1.0 - weight) * tail)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--months", type=int, default=8)
    parser.add_argument("--worlds", default="tidy:7,messy:11,messy:12,messy:13")
    parser.add_argument("--capacity", type=float, default=0.10)
    parser.add_argument("--out", type=Path, default=Path("bench/label_free.json"))
    args = parser.parse_args()
    worlds = [(p, int(s)) for p, s in (w.split(":") for w in args.worlds.split(","))]
    began = time.perf_counter()
    table = run(args.clients, args.months, worlds, args.capacity)
    table["seconds"] = round(time.perf_counter() - began, 1)
    args.out.write_text(json.dumps(table, indent=2) + "\n")
    for weight, entry in table["weights"].items():
        summary = {k: v for k, v in entry.items() if k != "loso"}
        print(weight, json.dumps(summary))


if __name__ == "__main__":
    main()
