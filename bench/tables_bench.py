"""Bench of the table mode (issue 13): any payment stream through `--table --spec`.

Three parts, each printing its figures and writing them to one JSON file:

- ``features``: derived entity-history features of a simulated card-payment table
  (default 1.8 M rows): seconds and peak memory of a child process that reads the
  table, checks it at the door and derives the features (2 cores).
- ``cards``: a card-payment table (default 1.5 M rows) through the real CLI,
  `tillit train` then `tillit score` of the last days: seconds, and the held-out
  AP, ROC-AUC, precision and recall at capacity and money caught of the combined
  risk, each scorer, and the one-line baseline (largest amount first).
- ``adbench``: the 14 ADBench datasets, each as a table with a spec and no time
  column, through the table mode's training stage (stratified 5-fold
  cross-validation, every row scored by a model that never saw it), beside the
  paper's IForest (label-free) and LightGBM (supervised) ROC-AUC. The label-free
  scorer is measured twice: as the table mode fits it (rows confirmed irregular
  left out of its training) and with no label at all, the paper's setting.

- ``protocol``: the Fraud Detection Handbook's protocol on the project's own simulated
  card stream (default 5,000 cards): one week of training, a 7-day label delay,
  judged on the following week, with 30 days of history before the training week
  for the entity features. Average precision, precision at the spec's capacity (k =
  1 % of each day's payments) and card precision@100 (per day, the share of the 100
  riskiest cards that are compromised, cards found on earlier test days left out,
  averaged over the test days) for the table mode's combined risk (its weight chosen
  from data), each of its scorers alone, and a logistic regression (standardised
  features, balanced classes) on the same feature frame. Writes
  ``bench/cards_short_window.json`` unless ``--out`` says otherwise.

Nothing is tuned per dataset: every table runs with tillit's default training
config (the same scorer parameters as home care) and a spec that only names the
id and the label; the numbers are what a user would get on a table tillit never saw.

Usage: ``python bench/tables_bench.py {features,cards,adbench,protocol,all} [--rows N] [--out FILE]``
(``protocol`` takes ``--cards N`` instead of ``--rows``.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ADBENCH = Path("/work/shared/external/adbench")
CARD_SPEC = ROOT / "configs" / "tables" / "card-payments.yaml"
RANKINGS = ("combined", "lightgbm", "isolation_forest", "baseline_amount")
METRICS = ("average_precision", "roc_auc", "precision_at_k", "recall_at_k", "money_caught_at_k")


def _child(code: str, *args: str) -> tuple[float, float, str]:
    """Run python code in a child; return its seconds, peak RSS in GB and stdout."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - began
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return seconds, peak_gb, done.stdout


FEATURES_CODE = """
import sys, time, resource
import pandas as pd
from tillit.config import ValidationConfig
from tillit.tables.features import entity_history
from tillit.tables.spec import check_table, load_spec
spec = load_spec(sys.argv[2])
raw = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
table = check_table(raw, spec, ValidationConfig()).tables[spec.name]
t1 = time.perf_counter()
history = entity_history(table, spec)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {history.shape[1] - 1}")
"""


def bench_features(rows: int, folder: Path) -> dict[str, object]:
    from tillit.tables.simulate import simulate_table

    path = folder / f"cards_{rows}.parquet"
    simulate_table("card-payments", rows, seed=7).to_parquet(path, index=False)
    seconds, peak_gb, out = _child(FEATURES_CODE, str(path), str(CARD_SPEC))
    check_s, features_s, n_features = out.split()
    figures = {
        "rows": rows,
        "check_seconds": float(check_s),
        "features_seconds": float(features_s),
        "derived_features": int(n_features),
        "child_seconds_with_reading": round(seconds, 2),
        "peak_gb": round(peak_gb, 2),
        "target": "features <= 30 s, peak <= 4 GB",
    }
    print(json.dumps(figures, indent=2))
    return figures


def _tillit(*args: str | Path, cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tillit", *map(str, args)], cwd=cwd, check=True, capture_output=True
    )
    return round(time.perf_counter() - began, 1)


def bench_cards(rows: int, folder: Path) -> dict[str, object]:
    from tillit.ops import tracking
    from tillit.tables.simulate import simulate_table

    frame = simulate_table("card-payments", rows, seed=7)
    path = folder / "cards.parquet"
    frame.to_parquet(path, index=False)
    last = frame["TX_DATETIME"].max().normalize()
    selection = f"{(last - pd.Timedelta(days=6)):%Y-%m-%d}..{last:%Y-%m-%d}"
    store = folder / "models"
    train_s = _tillit("train", "--table", path, "--spec", CARD_SPEC, "--store", store, cwd=folder)
    _tillit("promote", "--spec", CARD_SPEC, "--store", store, cwd=folder)
    score_s = _tillit(
        "score", "--table", path, "--spec", CARD_SPEC, "--period", selection,
        "--out", folder / "out", "--store", store, cwd=folder,
    )  # fmt: skip
    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, "card-payments", "champion")
    run = client.get_run(ref.run_id)
    metrics = {
        ranking: {
            m: round(run.data.metrics.get(f"eval_{ranking}_{m}", float("nan")), 3) for m in METRICS
        }
        for ranking in RANKINGS
    }
    manifest = json.loads((folder / "out" / "manifest.json").read_text())
    figures = {
        "rows": len(frame),
        "fraud_share": round(float(frame["TX_FRAUD"].mean()), 4),
        "evaluation": run.data.tags.get("evaluation_basis"),
        "blend_weight": run.data.params.get("blend.supervised_weight_basis"),
        "train_seconds": train_s,
        "score_seconds": score_s,
        "scored_period": selection,
        "score_counts": manifest["counts"],
        "held_out": metrics,
    }
    print(json.dumps(figures, indent=2))
    return figures


def _adbench_table(path: Path, seed: int) -> pd.DataFrame:
    """ADBench's size rule (resample under 1,000 rows, subsample over 10,000), as a table."""
    data = np.load(path, allow_pickle=True)
    X = np.asarray(data["X"], dtype=np.float64)
    y = np.asarray(data["y"]).astype(np.int64)
    rng = np.random.default_rng(seed)
    if len(y) < 1_000:
        keep = rng.choice(len(y), 1_000, replace=True)
        X, y = X[keep], y[keep]
    elif len(y) > 10_000:
        keep = rng.choice(len(y), 10_000, replace=False)
        X, y = X[keep], y[keep]
    table = pd.DataFrame(X, columns=[f"x{i:03d}" for i in range(X.shape[1])])
    table.insert(0, "row_id", [f"r{i}" for i in range(len(y))])
    table["label"] = y
    return table


def _forest_without_labels(clean: pd.DataFrame, spec: object, seed: int) -> float:
    """ROC-AUC of the label-free scorer fitted with no label at all (the paper's setting).

    The same folds as the table mode's cross-validation; the forest of each fold is
    fitted on every training row, the confirmed ones included, as a table without a
    label column would give.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from tillit.config import TrainingConfig
    from tillit.tables.model import fit_table_model
    from tillit.tables.spec import TableSpecFile, feature_columns

    assert isinstance(spec, TableSpecFile)
    X = clean.loc[:, feature_columns(spec, clean)].astype("float64")
    y = clean["label"].to_numpy(dtype=np.float64)
    scores = np.zeros(len(y))
    folds = StratifiedKFold(spec.cv_folds, shuffle=True, random_state=seed)
    for fit_part, test_part in folds.split(X, y):
        model = fit_table_model(
            X.iloc[fit_part],
            np.full(len(fit_part), np.nan),
            TrainingConfig(seed=seed),
            spec_name=spec.name,
            spec_hash="",
            descriptions={},
            trained_periods=["all"],
        )
        scores[test_part] = model.isolation_forest.risk_score(model.matrix(X.iloc[test_part]))
    return float(100 * roc_auc_score(y, scores))


def bench_adbench(
    data_dir: Path = ADBENCH, seeds: tuple[int, ...] = (1, 2, 3)
) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "bench"))
    from adbench import published

    from tillit.config import TrainingConfig, ValidationConfig
    from tillit.tables.features import entity_history
    from tillit.tables.spec import check_table, parse_spec
    from tillit.tables.train import train_table

    paper = published(data_dir).reset_index()
    rows = []
    for path in sorted(data_dir.glob("*.npz")):
        for seed in seeds:
            table = _adbench_table(path, seed)
            spec = parse_spec(
                {"name": path.stem.replace("_", "-"), "id": "row_id", "label": "label"}
            )
            clean = check_table(table, spec, ValidationConfig()).tables[spec.name]
            began = time.perf_counter()
            history = entity_history(clean, spec)
            result = train_table(clean, history, spec, TrainingConfig(seed=seed))
            m = result.evaluation.metrics
            rows.append(
                {
                    "file": path.name,
                    "rows": len(clean),
                    "iforest_ours": 100 * m["isolation_forest_roc_auc"],
                    "iforest_no_labels_ours": _forest_without_labels(clean, spec, seed),
                    "lgb_ours": 100 * m["lightgbm_roc_auc"],
                    "combined_ours": 100 * m["combined_roc_auc"],
                    "seconds": time.perf_counter() - began,
                }
            )
    ours = pd.DataFrame(rows).groupby("file", as_index=False).mean()
    for model, column in (("IForest", "iforest_paper"), ("LGB", "lgb_paper")):
        part = paper[paper["model"] == model].set_index("file")["aucroc_published"]
        ours[column] = ours["file"].map(part)
    ours["iforest_at_or_above"] = ours["iforest_ours"] >= ours["iforest_paper"]
    ours["iforest_no_labels_at_or_above"] = ours["iforest_no_labels_ours"] >= ours["iforest_paper"]
    print(ours.round(1).to_string(index=False))
    summary = {
        "datasets": len(ours),
        "iforest_mean_ours": round(float(ours["iforest_ours"].mean()), 2),
        "iforest_mean_paper": round(float(ours["iforest_paper"].mean()), 2),
        "iforest_at_or_above_paper": int(ours["iforest_at_or_above"].sum()),
        "iforest_no_labels_mean_ours": round(float(ours["iforest_no_labels_ours"].mean()), 2),
        "iforest_no_labels_at_or_above_paper": int(ours["iforest_no_labels_at_or_above"].sum()),
        "lgb_mean_ours": round(float(ours["lgb_ours"].mean()), 2),
        "lgb_mean_paper": round(float(ours["lgb_paper"].mean()), 2),
        "combined_mean_ours": round(float(ours["combined_ours"].mean()), 2),
        "protocol": "table mode, no time column: stratified 5-fold cross-validation on "
        f"ADBench's resampled table, mean of seeds {seeds}; paper: 70/30 split, mean of 3 seeds; "
        "iforest_ours: the table mode's forest (confirmed rows left out of its training), "
        "iforest_no_labels_ours: fitted on every row with no label (the paper's setting)",
        "per_dataset": ours.round(2).to_dict("records"),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_dataset"}, indent=2))
    return summary


# 44 days before the training week: the purged folds that choose the blend weight learn
# from as far back as 14 days before it (7 days fitted, 7 purged), and every row any
# model learns from then has a full 30-day history window, as in the handbook (whose
# features use every earlier day of the stream).
HISTORY_DAYS, TRAIN_DAYS, DELAY_DAYS, TEST_DAYS = 44, 7, 7, 7
CARD_PRECISION_TOP = 100


def card_precision_at(
    cards: pd.Series, days: pd.Series, labels: np.ndarray, scores: np.ndarray, top: int
) -> float:
    """The Fraud Detection Handbook's card precision@top, averaged over the days.

    Per day, a card's risk is its riskiest payment and it counts as compromised when
    any of its payments that day is fraud; the share of compromised cards among the
    `top` riskiest is that day's figure. A card found compromised on an earlier day
    is left out of later days (it would be blocked), as in the handbook.
    """
    frame = pd.DataFrame(
        {"card": cards.to_numpy(), "day": days.to_numpy(), "y": labels, "score": scores}
    )
    found: set[object] = set()
    per_day = []
    for _, rows in frame.groupby("day", sort=True):
        rows = rows[~rows["card"].isin(found)]
        by_card = rows.groupby("card")[["score", "y"]].max()
        top_cards = by_card.sort_values("score", ascending=False, kind="stable").head(top)
        compromised = top_cards.index[top_cards["y"] == 1]
        found.update(compromised)
        per_day.append(len(compromised) / top)
    return float(np.mean(per_day))


def bench_protocol(cards: int) -> dict[str, object]:
    """One week of training, a 7-day label delay, judged on the following week."""
    import os

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    from tillit.config import TrainingConfig, ValidationConfig
    from tillit.tables.features import entity_history
    from tillit.tables.simulate import simulate_table
    from tillit.tables.spec import check_table, load_spec, parse_spec
    from tillit.tables.train import capacity_metrics, model_inputs, train_table

    days = HISTORY_DAYS + TRAIN_DAYS + DELAY_DAYS + TEST_DAYS
    rows = int(cards * days * 2.0 / 1.04)  # simulate_table's payments per card and day
    began = time.perf_counter()
    frame = simulate_table("card-payments", rows, seed=7, days=days)
    first = frame["TX_DATETIME"].min().normalize()
    train_from = first + pd.Timedelta(days=HISTORY_DAYS)
    train_to = train_from + pd.Timedelta(days=TRAIN_DAYS - 1)
    base = load_spec(CARD_SPEC).model_dump(mode="json", by_alias=True)
    spec = parse_spec(
        {**base, "train": {"from": f"{train_from:%Y-%m-%d}", "to": f"{train_to:%Y-%m-%d}"}}
    )
    table = check_table(frame, spec, ValidationConfig()).tables[spec.name]
    history = entity_history(table, spec)
    training = TrainingConfig()
    result = train_table(table, history, spec, training)
    held = result.held_out
    test = table.loc[held.index]
    y = held["label"].to_numpy(dtype=np.float64)

    # The logistic regression: the same feature frame, the same training rows and labels.
    X = model_inputs(table, history, spec)
    times = table[spec.time]
    in_train = (times >= train_from) & (times < train_to + pd.Timedelta(days=1))
    fill = X.loc[in_train].median()
    scaler = StandardScaler().fit(X.loc[in_train].fillna(fill))
    logistic = LogisticRegression(class_weight="balanced", max_iter=2000).fit(
        scaler.transform(X.loc[in_train].fillna(fill)),
        table.loc[in_train, spec.label].to_numpy(dtype=np.int64),
    )
    held["logistic_regression_score"] = logistic.predict_proba(
        scaler.transform(X.loc[held.index].fillna(fill))
    )[:, 1]

    day = test[spec.time].dt.normalize()
    rankings = {
        "table_mode_combined": "combined_score",
        "supervised_alone": "lightgbm_score",
        "label_free_alone": "isolation_forest_score",
        "logistic_regression": "logistic_regression_score",
        "baseline_amount": "baseline_amount_score",
    }
    figures: dict[str, dict[str, float]] = {}
    unrounded_ap: dict[str, float] = {}
    for name, column in rankings.items():
        scores = held[column].to_numpy(dtype=np.float64)
        unrounded_ap[name] = float(average_precision_score(y, scores))
        at_k, _ = capacity_metrics(y, scores, day.to_numpy(), None, spec.capacity)
        figures[name] = {
            "average_precision": round(unrounded_ap[name], 4),
            "precision_at_k": round(at_k["precision_at_k"], 3),
            "card_precision_at_100": round(
                card_precision_at(test["CUSTOMER_ID"], day, y, scores, CARD_PRECISION_TOP), 3
            ),
        }
    out = {
        "protocol": (
            f"simulated card stream (tables/simulate.py, seed 7): {cards:,} cards, "
            f"{len(table):,} payments over {days} days; features from the spec "
            f"configs/tables/card-payments.yaml; trained on {train_from:%Y-%m-%d}.."
            f"{train_to:%Y-%m-%d} (one week), {DELAY_DAYS}-day label delay, judged on "
            f"{result.evaluation.period} ({len(test):,} payments, "
            f"{int(np.nansum(y)):,} fraudulent); {HISTORY_DAYS} days before the training "
            "week give the entity history; every model fitted with tillit's default "
            "training config"
        ),
        "k": f"{spec.capacity.capacity_share:.0%} of each day's payments "
        f"(mean {np.mean([spec.capacity.k(n) for n in day.value_counts()]):.0f} a day)",
        "card_precision": f"card precision@{CARD_PRECISION_TOP}: per day, compromised share of "
        "the riskiest cards (a card's riskiest payment), cards found on earlier test days "
        "left out, averaged over the test days (Fraud Detection Handbook)",
        "supervised_weight": result.blend.weight,
        "supervised_weight_basis": result.blend.basis,
        "figures": figures,
        "combined_reaches_supervised_average_precision": bool(
            unrounded_ap["table_mode_combined"] >= unrounded_ap["supervised_alone"]
        ),
        "seconds": round(time.perf_counter() - began, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("features", "cards", "adbench", "protocol", "all"))
    parser.add_argument("--rows", type=int, help="rows of the simulated card table")
    parser.add_argument("--cards", type=int, default=5_000, help="cards of the protocol's stream")
    parser.add_argument("--out", type=Path, help="JSON file the figures are added to")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1], help="ADBench resampling and model seeds"
    )
    args = parser.parse_args(argv)
    if args.part == "protocol":
        out = args.out or ROOT / "bench" / "cards_short_window.json"
        out.write_text(json.dumps(bench_protocol(args.cards), indent=2, default=str) + "\n")
        return 0
    args.out = args.out or ROOT / "bench" / "tables_results.json"
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if args.part in ("features", "all"):
            results["features"] = bench_features(args.rows or 1_800_000, folder)
        if args.part in ("cards", "all"):
            results["cards"] = bench_cards(args.rows or 1_500_000, folder)
        if args.part in ("adbench", "all"):
            results["adbench"] = bench_adbench(seeds=tuple(args.seeds))
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
