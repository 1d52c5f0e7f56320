"""`tillit drift`: how far a month has moved from the model's training months, without scoring.

`tillit score` runs the same comparison and writes it as drift.json; see review/drift.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tillit.config import TillitConfig
from tillit.errors import NothingToScoreError
from tillit.i18n import text

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
    redefined = redefined_features(model)
    if reference is None:
        note = (
            "the model was trained before drift was watched (no reference of its training "
            "months): retrain to compare months"
        )
        if redefined is not None:
            key, fields = redefined
            note += "; " + text(key, "en", **fields)
        return None, note
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
    if redefined is not None:
        key, fields = redefined
        report = replace(
            report,
            warnings=[*report.warnings, text(key, "en", **fields)],
            warning_parts=[*report.warning_parts, redefined],
        )
    return report, ""


def redefined_features(model: RiskModel) -> tuple[str, dict[str, Any]] | None:
    """The drift warning (i18n key, fields) when the model's features meant something else.

    A model trained before a feature's value was redefined still finds its columns by
    name, so nothing else would say that it now reads numbers of another kind.
    """
    from tillit.features import FEATURE_DEFINITIONS_VERSION, redefined_since

    trained = int(getattr(model, "feature_definitions", 1))
    if trained == FEATURE_DEFINITIONS_VERSION:
        return None
    used = set(model.feature_columns)
    names = (
        [c for c in redefined_since(trained) if c in used]
        if trained < FEATURE_DEFINITIONS_VERSION
        else []
    )
    fields = {
        "trained": trained,
        "now": FEATURE_DEFINITIONS_VERSION,
        "names": ", ".join(names) if names else "-",
    }
    return "drift.warn_definitions", fields


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
