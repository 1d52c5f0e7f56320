"""`tillit train`: fit, evaluate on the held-out month, log to MLflow, register, write the model card."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tillit.config import TillitConfig
from tillit.data.io import write_frame
from tillit.jobs.common import load_data, publish_model_card, read_truth, record_training
from tillit.ops import progress

if TYPE_CHECKING:
    from tillit.jobs.providers import ProviderTrainOutcome
    from tillit.modelling.train import TrainingResult
    from tillit.ops.tracking import ModelRef
    from tillit.review.drift import DriftReference
    from tillit.review.fairness import FairnessAudit


@dataclass(frozen=True)
class TrainOutcome:
    """The registered model, what training measured, and where the model card went."""

    model: ModelRef
    result: TrainingResult
    fairness: FairnessAudit
    model_card: list[Path]
    train_seconds: float
    total_seconds: float
    fingerprint: str
    providers: ProviderTrainOutcome | None = None


def run_train(
    data_dir: Path, config: TillitConfig, config_path: Path | None, store: Path
) -> TrainOutcome:
    """Train, evaluate on the held-out month, log to MLflow, register the challenger.

    The fairness audit of the held-out month and the model card go with the run
    and are written beside the registry in `<store>/model_cards/`; the audit log
    gets a record.
    """
    from tillit.features import feature_catalog, wait_for_closes_aside
    from tillit.modelling.train import train
    from tillit.ops import tracking
    from tillit.review import plots
    from tillit.review.fairness import fairness_audit

    began = time.perf_counter()
    loaded = load_data(data_dir, config)
    truth = read_truth(data_dir)
    progress.lap("validate", "features")
    result = train(loaded.validation.tables, config.training, config.features, config.review, truth)
    result.model.drift_reference_ = drift_reference(result, config)
    train_seconds = time.perf_counter() - began
    fairness = fairness_audit(result.evaluation.fairness_frame, "label", "flagged")
    progress.lap("drift reference and fairness audit", "log to MLflow")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        artifacts = plots.training_artifacts(result, folder, feature_catalog(config.features))
        write_frame(fairness.by_group, folder / "fairness" / "by_group.csv")
        write_frame(fairness.disparity, folder / "fairness" / "disparity.csv")
        artifacts["fairness"] = folder / "fairness"
        if config_path is not None:
            shutil.copy(config_path, folder / "config.yaml")
            artifacts["config"] = folder / "config.yaml"
        wait_for_closes_aside()  # a failed close fails the run before the model is registered
        ref = tracking.log_training(
            result, config, loaded.fingerprint, artifacts, store, fairness.summary_metrics()
        )
    progress.lap("log to MLflow", "model card")
    card_paths = write_model_card(result, ref, fairness, config, loaded.fingerprint, store)
    progress.lap("model card")
    record_training(
        store,
        ref,
        config.hash(),
        loaded.fingerprint,
        {
            "invoices": int(sum(result.invoices_per_period.values())),
            "quarantined_invoices": result.quarantined_invoices,
            **result.label_counts,
        },
        card_paths,
        {
            "eval_period": result.evaluation.period,
            "evaluation_basis": result.evaluation.basis,
            "eval_combined_average_precision": result.evaluation.metrics.get(
                "combined_average_precision"
            ),
            "eval_combined_recall_at_k": result.evaluation.metrics.get("combined_recall_at_k"),
        },
    )
    from tillit.jobs.providers import train_providers

    providers = train_providers(loaded, result, data_dir, config, store)
    return TrainOutcome(
        providers=providers,
        model=ref,
        result=result,
        fairness=fairness,
        model_card=card_paths,
        train_seconds=round(train_seconds, 2),
        total_seconds=round(time.perf_counter() - began, 2),
        fingerprint=loaded.fingerprint,
    )


def drift_reference(result: TrainingResult, config: TillitConfig) -> DriftReference:
    """The training months' distributions, kept with the model so each scored month is compared.

    The first months of an export are a warm-up for every history feature (a client's own
    earlier months, the 3- and 6-month windows): they hold neutral values no later month
    has, so a reference that includes them calls every warmed-up month drifted. The
    reference is the training months after the longest window has filled, or, in a
    shorter history, the later half of them.
    """
    from tillit.modelling.train import settled_periods
    from tillit.review.drift import build_reference

    model, features = result.model, result.features
    kept = settled_periods(features["period"].unique(), config.features.longest_window_months)
    features = features[features["period"].isin(kept)]
    parts = model.components(features)
    return build_reference(
        model.matrix(features),
        features["period"],
        parts["risk_score"].to_numpy(),
        parts["has_hard_finding"].to_numpy(),
        config.review,
        config.drift.bins,
    )


def write_model_card(
    result: TrainingResult,
    ref: ModelRef,
    fairness: FairnessAudit,
    config: TillitConfig,
    fingerprint: str,
    store: Path,
) -> list[Path]:
    """Render the model card of a registered version, log it to its run, write it beside the model."""
    import datetime as dt

    from tillit.features import feature_catalog
    from tillit.ops import tracking
    from tillit.review.modelcard import ModelCardData

    evaluation = result.evaluation
    model = result.model
    descriptions = feature_catalog(config.features)
    metrics = evaluation.metrics

    def strip(prefix: str) -> dict[str, float]:
        """The metrics of one ranking, without the per-scheme recalls."""
        return {
            k.removeprefix(prefix): v
            for k, v in metrics.items()
            if k.startswith(prefix) and not k.startswith(f"{prefix}recall_at_k_")
        }

    card = ModelCardData(
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        created_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        training_data={
            "periods": f"{model.trained_periods[0]} to {model.trained_periods[-1]}",
            "invoices_per_period": result.invoices_per_period,
            "labels": result.label_counts,
            "quarantined_invoices": result.quarantined_invoices,
        },
        features=[(c, descriptions.get(c, {}).get("en", "")) for c in model.feature_columns],
        evaluation=strip("combined_"),
        evaluation_basis=evaluation.basis,
        eval_period=evaluation.period,
        capacity_k=evaluation.k,
        per_scheme_recall={
            k.removeprefix("combined_recall_at_k_"): v
            for k, v in metrics.items()
            if k.startswith("combined_recall_at_k_")
        },
        baseline=strip("rule_billed_over_registered_"),
        fairness=fairness,
        config_hash=config.hash(),
        data_fingerprint=fingerprint,
        git_commit=tracking.git_commit(),
        contract_version=model.contract_version,
        feature_schema=model.feature_schema,
    )
    return publish_model_card(card, ref, store)
