"""Bench of the provider scorecard (`tillit providers`): ranking quality and time.

Quality, on a simulated municipality (default: 3,000 clients x 12 months, seed 7):
train and promote both models, rank the last month's providers, and judge the
ranking on `provider_truth.parquet` against every single register rule (e.g.
"has a tax debt"): average precision of each, and the rank of every phoenix, on the
page's order (`risk_score`, `rank`) and by the provider model's own risk (`model_risk`).
The truth's majority rule counts a provider with, say, 40 % of its month irregular as
honest; the page is also judged with that grey band (GREY_BAND) left out of both sides,
and the grey providers' ranks are listed.

Time (`--stockholm`): a Stockholm-size month (9,200 clients x 4 months, seed 7),
the whole `tillit providers` command timed from outside, once cold (it builds the
features of the month and the trend months itself) and once after `tillit score`
has scored those months beside OUT (the scorecard then reads their risk lists).

Usage:
    python bench/providers_bench.py --work /tmp/providers-bench [--clients 3000 --months 12]
    python bench/providers_bench.py --work /tmp/providers-bench-sthlm --stockholm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Providers that are not irregular by the truth (no majority of irregular invoices, no
# phoenix) but have more than a fifth of their month's invoices irregular.
GREY_BAND = (0.2, 0.5)


def _simulate(data: Path, clients: int, months: int, seed: int) -> None:
    from tillit.config import SimulationConfig
    from tillit.data.io import write_frame, write_tables
    from tillit.simulate import simulate

    if (data / "provider_truth.parquet").is_file():
        return
    sim = simulate(SimulationConfig(clients=clients, months=months, seed=seed))
    write_tables(sim.tables, data, "parquet")
    write_frame(sim.truth, data / "truth.parquet")
    assert sim.provider_truth is not None
    write_frame(sim.provider_truth, data / "provider_truth.parquet")


def _train(data: Path, store: Path) -> dict[str, Any]:
    from tillit.config import load_config
    from tillit.jobs import run_promote, run_train
    from tillit.jobs.providers import promote_providers

    config = load_config(None)
    began = time.perf_counter()
    outcome = run_train(data, config, None, store)
    seconds = time.perf_counter() - began
    run_promote(config, store, force=True, reason="bench")
    promote_providers(config, store, force=True, reason="bench")
    training = outcome.providers.training if outcome.providers else None
    return {
        "train_seconds": round(seconds, 1),
        "provider_model": outcome.providers.message if outcome.providers else None,
        "held_out": {k: v for k, v in training.metrics.items() if "average_precision" in k}
        if training
        else None,
    }


def _tillit(*args: str, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tillit", *args], cwd=cwd, env=env, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - began


def quality(work: Path, clients: int, months: int, seed: int) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    from tillit.config import load_config
    from tillit.data.io import read_frame
    from tillit.features.providers import register_columns, register_profile
    from tillit.jobs.common import load_data
    from tillit.modelling.provider_model import single_rule_scores

    data, store = work / "data", work / "models"
    _simulate(data, clients, months, seed)
    trained = _train(data, store)
    period = str(read_frame(data / "invoices.parquet")["period"].max())
    out = work / "runs" / f"providers-{period}"
    seconds = _tillit("providers", "--data", str(data), "--period", period, "--out", str(out),
                      "--overwrite", "--store", str(store), cwd=work)  # fmt: skip
    ranked = read_frame(out / "provider_risk.parquet")
    truth = read_frame(data / "provider_truth.parquet")
    truth = truth[truth["period"] == period]
    active = ranked[ranked["part"] == "invoices_and_register"].merge(
        truth[["provider_id", "irregular", "phoenix", "irregular_invoice_share"]],
        on="provider_id",
        how="left",
    )
    active[["irregular", "phoenix"]] = active[["irregular", "phoenix"]].fillna(False).astype(bool)
    y = active["irregular"].astype(int).to_numpy()
    # The truth calls a provider irregular on a majority of irregular invoices (or as a
    # phoenix), so one with 40 % of its month irregular counts as honest: the grey band
    # is neither, and the page is also judged without it.
    share = active["irregular_invoice_share"].fillna(0.0)
    grey = (~active["irregular"]) & (share > GREY_BAND[0]) & (share <= GREY_BAND[1])
    config = load_config(None)
    tables = load_data(data, config).validation.tables
    profile = register_profile(tables, period, config.features).profile
    merged = active[["provider_id"]].merge(profile, on="provider_id", how="left")
    rules = single_rule_scores(merged, register_columns(config.features))
    rule_ap = {c: float(average_precision_score(y, rules[c])) for c in rules.columns}
    best_rule = max(rule_ap, key=lambda c: rule_ap[c])
    # The page's order (`risk_score`, `rank`: what the auditor reads) and the provider
    # model's own risk (`model_risk`), which the page blends with what was found.
    model_ap = float(average_precision_score(y, active["risk_score"]))
    phoenix_ranks = active.loc[active["phoenix"], "rank"].astype(int).tolist()
    own_ap = float(average_precision_score(y, active["model_risk"]))
    own_rank = active["model_risk"].rank(ascending=False, method="min").astype(int)
    applicants = ranked[ranked["part"] == "register_only"].merge(
        truth[["provider_id", "irregular"]], on="provider_id", how="left"
    )
    linked = applicants["irregular"].fillna(False).astype(int).to_numpy()
    return {
        "period": period,
        "providers_active": len(active),
        "irregular": int(y.sum()),
        "provider_ranking_average_precision": round(model_ap, 3),
        "best_single_register_rule": best_rule.removeprefix("rule_"),
        "best_single_register_rule_average_precision": round(rule_ap[best_rule], 3),
        "margin_over_best_rule": round(model_ap - rule_ap[best_rule], 3),
        "provider_ranking_average_precision_grey_band_excluded": round(
            float(average_precision_score(y[~grey], active.loc[~grey, "risk_score"])), 3
        ),
        "grey_band_irregular_invoice_share": list(GREY_BAND),
        "grey_band_providers_rank_and_share": [
            [int(r), round(float(s), 3)]
            for r, s in sorted(zip(active.loc[grey, "rank"], share[grey], strict=True))
        ],
        "phoenix_ranks": phoenix_ranks,
        "every_phoenix_in_top_10": all(r <= 10 for r in phoenix_ranks),
        "every_phoenix_in_top_5": all(r <= 5 for r in phoenix_ranks),
        "provider_model_risk_average_precision": round(own_ap, 3),
        "phoenix_ranks_by_model_risk": own_rank[active["phoenix"]].tolist(),
        "applicants": len(applicants),
        "applicants_linked": int(linked.sum()),
        "applicant_ranks_of_linked": applicants.loc[linked == 1, "rank"].astype(int).tolist(),
        "providers_seconds_whole_command": round(seconds, 2),
        **trained,
    }


def stockholm(work: Path) -> dict[str, Any]:
    from tillit.data.io import read_frame
    from tillit.features.queries import month_index, period_of

    data, store = work / "data", work / "models"
    _simulate(data, 9200, 4, 7)
    trained = _train(data, store)
    invoices = read_frame(data / "invoices.parquet")
    period = str(invoices["period"].max())
    n_invoices = int((invoices["period"] == period).sum())
    runs = work / "runs"
    out = runs / f"providers-{period}"
    common = ("--data", str(data), "--store", str(store), "--overwrite")
    cold = _tillit("providers", "--period", period, "--out", str(out), *common, cwd=work)
    score_seconds = {}
    for back in range(3, -1, -1):
        month = period_of(month_index(period) - back)
        if (invoices["period"] == month).any():
            score_seconds[month] = round(
                _tillit("score", "--period", month, "--out", str(runs / f"score-{month}"),
                        *common, cwd=work), 2)  # fmt: skip
    warm = _tillit("providers", "--period", period, "--out", str(out), *common, cwd=work)
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "period": period,
        "invoices_in_month": n_invoices,
        "providers_cold_seconds_whole_command": round(cold, 2),
        "score_seconds_per_month": score_seconds,
        "providers_after_score_seconds_whole_command": round(warm, 2),
        "providers_after_score_timings": manifest["timings_seconds"],
        "reused": manifest["invoice_scores_reused_from_score_runs"],
        "train_seconds": trained["train_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stockholm", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = (
        f"sqlite:///{(args.work / 'models' / 'mlflow.db').resolve()}"
    )
    (args.work / "models").mkdir(exist_ok=True)
    pd.set_option("display.width", 200)
    np.set_printoptions(linewidth=200)
    result = (
        stockholm(args.work)
        if args.stockholm
        else quality(args.work, args.clients, args.months, args.seed)
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
