"""Training artifacts for MLflow: precision-recall curves, feature importance, tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tillit.data.io import write_frame


def _figure(width: float, height: float) -> Any:
    """A figure drawn off-screen, without touching pyplot's global backend or state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def precision_recall_figure(scored: pd.DataFrame, k: int, title: str) -> Any:
    """PR curves of every ranking on the held-out month, with the capacity marked."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _figure(6.5, 5)
    ax = fig.subplots()
    for ranking in ("combined", "lightgbm", "isolation_forest", "rule_billed_over_registered"):
        precision, recall, _ = precision_recall_curve(scored["label"], scored[ranking])
        ap = average_precision_score(scored["label"], scored[ranking])
        ax.plot(recall, precision, label=f"{ranking} (AP {ap:.3f})")
    top = scored.nlargest(k, "combined")
    ax.scatter(
        [top["label"].sum() / max(scored["label"].sum(), 1)],
        [top["label"].mean()],
        color="black",
        zorder=5,
        label=f"combined at capacity k={k}",
    )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> Any:
    """Horizontal bars of the features that matter most to each scorer."""
    fig = _figure(12, 6.5)
    axes = fig.subplots(1, 2)
    for ax, column in zip(
        axes, ("lightgbm_gain_share", "isolation_forest_mean_abs_contribution_share"), strict=True
    ):
        part = importance[column].sort_values(ascending=True).tail(top)
        ax.barh(part.index, part.to_numpy(), color="#3461c1")
        ax.set_title(column.replace("_", " "), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_importance(
    model: Any, features: pd.DataFrame, sample: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """LightGBM gain shares and the IsolationForest's mean |path-length contribution| shares."""
    from tillit.modelling.explain import explain

    X = model.matrix(features)
    if len(X) > sample:
        X = X.sample(sample, random_state=seed)
    # A bag's gain is its boosters' summed gain; features LightGBM does not see have none.
    scorer = model.lightgbm
    gain = pd.Series(
        sum(booster.feature_importance("gain") for booster in scorer.boosters()),
        index=list(scorer.feature_names_in_),
        dtype="float64",
    ).reindex(list(model.feature_columns), fill_value=0.0)
    iso = explain(model.isolation_forest, model.isolation_forest_matrix(X), method="fast").values
    iso = iso.abs().mean().reindex(gain.index, fill_value=0.0)
    frame = pd.DataFrame(
        {
            "lightgbm_gain_share": gain / max(gain.sum(), 1e-12),
            "isolation_forest_mean_abs_contribution_share": iso / max(iso.sum(), 1e-12),
        }
    )
    return frame.sort_values("lightgbm_gain_share", ascending=False)


def training_artifacts(
    result: Any, folder: Path, descriptions: Mapping[str, Mapping[str, str]]
) -> dict[str, Path]:
    """Write the plots and tables of a training run into `folder`; name -> path."""

    folder.mkdir(parents=True, exist_ok=True)
    evaluation = result.evaluation
    paths: dict[str, Path] = {}
    fig = precision_recall_figure(
        evaluation.scored, evaluation.k, f"Held-out month {evaluation.period} ({evaluation.basis})"
    )
    paths["plots"] = folder / "plots"
    paths["plots"].mkdir()
    fig.savefig(paths["plots"] / "precision_recall.png", dpi=110)
    importance = feature_importance(result.model, result.features)
    fig = importance_figure(importance, "Feature importance (refit model)")
    fig.savefig(paths["plots"] / "feature_importance.png", dpi=110)
    tables = folder / "evaluation"
    tables.mkdir()
    write_frame(evaluation.scored, tables / f"held_out_{evaluation.period}.csv")
    write_frame(importance.rename_axis("feature").reset_index(), tables / "feature_importance.csv")
    (tables / "metrics.json").write_text(
        json.dumps(
            {
                "eval_period": evaluation.period,
                "basis": evaluation.basis,
                "k": evaluation.k,
                "metrics": {k: (None if np.isnan(v) else v) for k, v in evaluation.metrics.items()},
                "rolling": {r.period: r.metrics for r in result.rolling},
            },
            indent=2,
            sort_keys=True,
            default=str,
        )
    )
    paths["evaluation"] = tables
    schema = folder / "feature_schema.json"
    schema.write_text(
        json.dumps(
            {
                "feature_schema": result.model.feature_schema,
                "contract_version": result.model.contract_version,
                "columns": [
                    {"name": c, "meaning": descriptions.get(c, {}).get("en", "")}
                    for c in result.model.feature_columns
                ],
            },
            indent=2,
        )
    )
    paths["feature_schema"] = schema
    return paths
