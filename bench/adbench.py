"""Sanity benchmark outside home care: tillit's scorers on ADBench classical datasets.

Runs ADBench's own protocol (Han et al., NeurIPS 2022; github.com/Minqi824/ADBench,
``adbench/datasets/data_generator.py`` and ``adbench/run.py``) through tillit's
scorers and sets the result beside the paper's published figures:

- datasets under 1,000 rows are resampled with replacement up to 1,000 rows and
  datasets over 10,000 rows are subsampled to 10,000, both before the split (as
  ADBench does; the resampling puts copies of a row on both sides of the split);
- a 70/30 stratified train/test split, min-max scaling fitted on the train part;
- ``IsolationForestScorer`` fitted on the train features only (unsupervised, the
  anomalies included, as ADBench fits IForest); ``LightGBMScorer`` fitted on the
  train features and all train labels (ADBench's "100 % labelled anomalies");
- default hyperparameters (tillit's defaults), AUCROC and AUCPR (average precision)
  on the test part, in percent, mean of seeds 1, 2 and 3.

The published IForest figures are pyod's ``IForest()`` (100 trees), the LGB figures
``LGBMClassifier(random_state=seed)`` (100 rounds, 31 leaves, no class weights).
A gap far below the published figure for the same algorithm points at a defect in
how the scorer is wrapped, not at the data.

Usage: ``python bench/adbench.py [--out FILE.csv] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer

DATA_DIR = Path("/work/shared/external/adbench")
SEEDS = (1, 2, 3)
MIN_ROWS = 1_000
MAX_ROWS = 10_000
PUBLISHED_SETTING = {"IForest": "0% (unsupervised)", "LGB": "100%"}
GAP_ALERT_POINTS = -5.0


def adbench_split(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Resample or subsample, split 70/30 stratified, min-max scale on the train part."""
    rng = np.random.default_rng(seed)
    if len(y) < MIN_ROWS:
        keep = rng.choice(len(y), MIN_ROWS, replace=True)
        X, y = X[keep], y[keep]
    elif len(y) > MAX_ROWS:
        keep = rng.choice(len(y), MAX_ROWS, replace=False)
        X, y = X[keep], y[keep]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, shuffle=True, stratify=y, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    columns = [f"x{i:02d}" for i in range(X.shape[1])]
    return (
        pd.DataFrame(scaler.transform(X_train), columns=columns),
        pd.DataFrame(scaler.transform(X_test), columns=columns),
        y_train,
        y_test,
    )


def _one_run(path: Path, seed: int) -> list[dict[str, object]]:
    data = np.load(path, allow_pickle=True)
    X = np.asarray(data["X"], dtype=np.float64)
    y = np.asarray(data["y"]).astype(np.int64)
    X_train, X_test, y_train, y_test = adbench_split(X, y, seed)
    rows = []
    for model, scorer, labels in (
        ("IForest", IsolationForestScorer(random_state=seed), None),
        ("LGB", LightGBMScorer(random_state=seed), y_train),
    ):
        start = time.perf_counter()
        scores = scorer.fit(X_train, labels).risk_score(X_test)
        rows.append(
            {
                "file": path.name,
                "model": model,
                "seed": seed,
                "aucroc": 100 * roc_auc_score(y_test, scores),
                "aucpr": 100 * average_precision_score(y_test, scores),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def published(data_dir: Path) -> pd.DataFrame:
    """The paper's IForest (unsupervised) and LGB (100 % labels) figures, one row per pair."""
    table = pd.read_csv(data_dir / "published_results.csv")
    keep = pd.Series(False, index=table.index)
    for model, setting in PUBLISHED_SETTING.items():
        keep |= (table["model"] == model) & (table["labeled_anomaly_ratio"] == setting)
    wide = table[keep].pivot_table(
        index=["file", "dataset", "model"], columns="metric", values="value_pct"
    )
    return wide.rename(columns={"AUCROC": "aucroc_published", "AUCPR": "aucpr_published"})


def run(data_dir: Path = DATA_DIR, seeds: tuple[int, ...] = SEEDS) -> pd.DataFrame:
    """Run the protocol on every ``.npz`` in ``data_dir``; one row per dataset and model."""
    runs = pd.DataFrame(
        [
            row
            for path in sorted(data_dir.glob("*.npz"))
            for seed in seeds
            for row in _one_run(path, seed)
        ]
    )
    ours = runs.groupby(["file", "model"]).agg(
        aucroc_ours=("aucroc", "mean"),
        aucroc_sd=("aucroc", "std"),
        aucpr_ours=("aucpr", "mean"),
        aucpr_sd=("aucpr", "std"),
        seconds=("seconds", "mean"),
    )
    table = (
        published(data_dir)
        .reset_index()
        .merge(ours.reset_index(), on=["file", "model"], how="right")
    )
    table["aucroc_gap"] = table["aucroc_ours"] - table["aucroc_published"]
    table["aucpr_gap"] = table["aucpr_ours"] - table["aucpr_published"]
    table["check"] = np.where(
        (table["aucroc_gap"] < GAP_ALERT_POINTS) | (table["aucpr_gap"] < GAP_ALERT_POINTS),
        "CHECK",
        "",
    )
    columns = [
        "dataset",
        "model",
        "aucroc_ours",
        "aucroc_published",
        "aucroc_gap",
        "aucpr_ours",
        "aucpr_published",
        "aucpr_gap",
        "aucroc_sd",
        "aucpr_sd",
        "seconds",
        "check",
    ]
    return table.sort_values(["model", "dataset"]).reset_index(drop=True)[columns]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table as CSV to this file")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    table = run(args.data_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(2).to_string(index=False))
        means = table.groupby("model")[
            [
                "aucroc_ours",
                "aucroc_published",
                "aucroc_gap",
                "aucpr_ours",
                "aucpr_published",
                "aucpr_gap",
            ]
        ].mean()
        print("\nmean over datasets (percentage points):")
        print(means.round(2).to_string())
    if args.out is not None:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
