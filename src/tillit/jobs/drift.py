"""`tillit drift`: how far a month has moved from the model's training months, without scoring.

`tillit score` runs the same comparison and writes it as drift.json; see review/drift.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tillit.config import TillitConfig
from tillit.errors import NothingToScoreError

if TYPE_CHECKING:
    from tillit.modelling.risk_model import RiskModel
    from tillit.review.drift import DriftReport


@dataclass(frozen=True)
class DriftOutcome:
    """The month's drift report (None when the model keeps no reference), and the model used."""

    report: DriftReport | None
    model_version: str
    note: str


def month_drift(
    model: RiskModel,
    features: pd.DataFrame,
    risk: np.ndarray,
    period: str,
    config: TillitConfig,
) -> tuple[DriftReport | None, str]:
    """The month against the model's training months: (report, note when there is none)."""
    from tillit.review.drift import compare

    reference = getattr(model, "drift_reference_", None)
    if reference is None:
        return None, (
            "the model was trained before drift was watched (no reference of its training "
            "months): retrain to compare months"
        )
    has_finding = features["hard_finding_count"].to_numpy() > 0
    report = compare(
        reference,
        period,
        model.matrix(features),
        np.asarray(risk, dtype="float64"),
        has_finding,
        config.review,
        config.drift,
    )
    return report, ""


def drift_payload(report: DriftReport | None, note: str, model_version: str) -> dict[str, object]:
    """drift.json's content."""
    if report is None:
        return {"available": False, "model_version": model_version, "note": note}
    return {"available": True, "model_version": model_version, **report.to_dict()}


def run_drift(
    data_dir: Path, period: str, config: TillitConfig, alias: str, store: Path
) -> DriftOutcome:
    """Build the month's features, score them in memory (nothing written) and compare."""
    from tillit.features import build_features
    from tillit.jobs.common import load_data
    from tillit.ops import tracking

    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, config.training.model_name, alias)
    model = tracking.load_risk_model(client, ref, store)
    loaded = load_data(data_dir, config)
    features = build_features(loaded.validation.tables, period, config.features).features
    if features.empty:
        raise NothingToScoreError(
            f"period {period} has no invoice that can be described in {data_dir}"
        )
    model.check_features(features)
    report, note = month_drift(model, features, model.risk(features), period, config)
    return DriftOutcome(report=report, model_version=ref.version, note=note)
