"""`tillit train --table FILE --spec SPEC`: check, derive, train, evaluate, log, register.

The table-mode twin of `jobs/train.py`, sharing its stages: the contract's
quarantine rules, the scorers, the percentile blend, the ranking metrics, the
fairness audit, MLflow tracking with registry aliases under the spec's name, the
model card and the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import file_sha256, read_frame, write_frame
from tillit.data.validate import ValidationResult, check_quarantine_limit
from tillit.errors import TillitError
from tillit.jobs.common import publish_model_card, record_promotion, record_training
from tillit.tables.spec import TableSpecFile, check_table, load_spec

if TYPE_CHECKING:
    from tillit.ops.tracking import ModelRef, PromotionDecision
    from tillit.tables.model import TableRiskModel
    from tillit.tables.train import TableTrainingResult

TABLE_INTENDED_USE = (
    "Ranks the rows of one table of payments or claims, described by a table spec, by the "
    "risk of an irregularity, so that reviewers can choose which rows to examine within a "
    "fixed capacity per period. Each flagged row comes with reasons and additive "
    "explanations.\n\nThe model flags; people decide. A flag is a reason to look, not a finding."
)
TABLE_OUT_OF_SCOPE = (
    "- Automatic decisions: refusing, stopping or delaying a payment on the score alone.\n"
    "- Scoring people by who they are: protected columns are used only for the fairness audit.\n"
    "- Use on another table, or the same table after its meaning changed, without a new "
    "evaluation there.\n"
    "- Reading a score as a probability or an amount of money at stake."
)
TABLE_KNOWN_LIMITS = (
    "Labels exist only for rows someone reviewed; figures computed on them inherit how those "
    "rows were picked, and unreviewed rows count as not confirmed.",
    "Entity history needs history: an entity's first rows are described by little.",
    "The model learns from the past: new kinds of irregularity may rank low until labelled.",
    "Scores rank rows within a period; they are not calibrated probabilities.",
)


@dataclass(frozen=True)
class LoadedTable:
    """A table as checked at the door, its fingerprint and where its quarantine went."""

    spec: TableSpecFile
    table: pd.DataFrame
    validation: ValidationResult
    fingerprint: str
    quarantine_file: Path | None
    # The rows the door quarantined, as read, by row number: listed on the risk list.
    quarantined_raw: pd.DataFrame | None = None


@dataclass(frozen=True)
class TableTrainOutcome:
    """The registered model, what training measured, and where the model card went."""

    model: ModelRef
    result: TableTrainingResult
    model_card: list[Path]
    loaded: LoadedTable
    total_seconds: float


def load_table(
    table_path: Path, spec_path: Path, config: TillitConfig, quarantine_dir: Path
) -> LoadedTable:
    """Read the spec and the table, check the table at the door, stop when it is unusable.

    The quarantine is written to `quarantine_dir` before the limit is checked, so a
    refused run still leaves the record of why.
    """
    spec = load_spec(spec_path)
    raw = read_frame(Path(table_path))
    validation = check_table(raw, spec, config.validation)
    quarantine_file = None
    if not validation.quarantine.empty:
        quarantine_file = write_frame(validation.quarantine, quarantine_dir / "quarantine.parquet")
    check_quarantine_limit(validation, config.validation)
    table = validation.tables[spec.name]
    from tillit.core.feedback import read_decision_log
    from tillit.jobs.table_feedback import decisions_log_path
    from tillit.tables.held import quarantined_rows

    log = read_decision_log(decisions_log_path(Path(table_path)))
    if spec.label is not None and log is not None:
        from tillit.tables.feedback import apply_decisions

        # Reviewers' decisions fed back with `tillit feedback --table` are labels too.
        table = apply_decisions(table, log, spec)
    if table.empty:
        raise TillitError(f"the table {table_path} has no valid rows")
    return LoadedTable(
        spec=spec,
        table=table,
        validation=validation,
        fingerprint=file_sha256(Path(table_path))[:16],
        quarantine_file=quarantine_file,
        quarantined_raw=quarantined_rows(raw, validation.quarantine),
    )


def _check_features(names: list[str]) -> None:
    from tillit.features.catalog import protected_features

    if found := protected_features(names):
        raise TillitError(
            f"these feature columns look like attributes of people: {', '.join(found)}; "
            "list them under `protected` (fairness audit only) or name them in `features`"
            " under a name that says what they measure"
        )


def run_table_train(
    table_path: Path,
    spec_path: Path,
    config: TillitConfig,
    store: Path,
    runs_dir: Path = Path("runs"),
) -> TableTrainOutcome:
    """Train on a table, evaluate held out, log to MLflow and register the challenger."""
    from tillit.core.registry import ModelRun, register, standard_tags
    from tillit.ops import tracking
    from tillit.tables.features import entity_history
    from tillit.tables.train import feature_descriptions, train_table

    began = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    spec = load_spec(spec_path)
    loaded = load_table(table_path, spec_path, config, runs_dir / f"train-{spec.name}-{stamp}")
    _check_features(list(feature_descriptions(spec, loaded.table)))
    history = entity_history(loaded.table, spec)
    result = train_table(loaded.table, history, spec, config.training)
    evaluation = result.evaluation

    def carry_card(run_id: str) -> None:
        # The card travels with the model, so each risk list can carry it (version set there).
        result.model.card = table_model_card(
            result, spec.name, None, run_id, spec, config, loaded.fingerprint
        )

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "spec").mkdir()
        (folder / "evaluation").mkdir()
        shutil.copy(spec_path, folder / "spec" / "table_spec.yaml")
        (folder / "evaluation" / "evaluation.json").write_text(
            json.dumps(result.model.evaluation, indent=2, sort_keys=True, default=str), "utf-8"
        )
        entry = ModelRun(
            model_name=spec.name,
            run_name=tracking.run_name(f"train-{spec.name}"),
            model=result.model,
            artifact="risk_model",
            tags={
                **standard_tags(config.hash(), loaded.fingerprint),
                "spec_hash": spec.hash(),
                "feature_schema": result.model.feature_schema,
                "eval_period": evaluation.period,
                "evaluation_basis": evaluation.basis,
                "trained_periods": ",".join(result.model.trained_periods),
                "table_mode": "true",
            },
            params={
                "spec": json.dumps(spec.model_dump(mode="json", by_alias=True))[:6000],
                "training.seed": config.training.seed,
                "blend.supervised_weight": result.blend.weight,
                "blend.supervised_weight_basis": result.blend.basis[:500],
                "has_supervised_scorer": result.model.lightgbm is not None,
                **{f"labels_{k}": v for k, v in result.label_counts.items()},
            },
            metrics={
                **{f"eval_{k}": v for k, v in evaluation.metrics.items()},
                **(result.fairness.summary_metrics() if result.fairness is not None else {}),
            },
            artifacts={"spec": folder / "spec", "evaluation": folder / "evaluation"},
            signature_input=signature_input(result.model, result.held_out),
            on_run=carry_card,
        )
        ref = register(entry, store)
    card_paths = write_table_model_card(result, ref, spec, config, loaded.fingerprint, store)
    record_training(
        store,
        ref,
        config.hash(),
        loaded.fingerprint,
        {
            "rows": int(loaded.validation.summary[spec.name]["rows_read"]),
            "quarantined": int(loaded.validation.summary[spec.name]["rows_quarantined"]),
            **result.label_counts,
        },
        card_paths,
        {
            "table_spec": spec.name,
            "spec_hash": spec.hash(),
            "eval_period": evaluation.period,
            "evaluation_basis": evaluation.basis,
            "eval_combined_average_precision": evaluation.metrics.get("combined_average_precision"),
        },
    )
    return TableTrainOutcome(
        model=ref,
        result=result,
        model_card=card_paths,
        loaded=loaded,
        total_seconds=round(time.perf_counter() - began, 2),
    )


def signature_input(model: TableRiskModel, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The model's inputs as float64 (for the registered signature), if the rows hold them all."""
    columns = list(model.feature_columns)
    if rows.empty or not set(columns) <= set(rows.columns):
        return None
    return rows.loc[:, columns].head(5).astype("float64")


def table_model_card(
    result: TableTrainingResult,
    name: str,
    version: str | None,
    run_id: str,
    spec: TableSpecFile,
    config: TillitConfig,
    fingerprint: str,
) -> object:
    """The model card data of a registered table model (rendered by review/modelcard.py)."""
    from tillit.ops import tracking
    from tillit.review.modelcard import ModelCardData

    metrics = result.evaluation.metrics

    def strip(prefix: str) -> dict[str, float]:
        return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}

    model = result.model
    return ModelCardData(
        model_name=name,
        model_version=version,
        run_id=run_id,
        created_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        intended_use=TABLE_INTENDED_USE,
        out_of_scope=TABLE_OUT_OF_SCOPE,
        training_data={
            "table spec": spec.name,
            "periods": f"{model.trained_periods[0]} to {model.trained_periods[-1]}",
            "rows": result.rows_trained,
            "labels": result.label_counts,
            "supervised scorer": "LightGBM"
            if model.lightgbm is not None
            else "none (no labels of both kinds)",
            "weight of the supervised scorer in the blend": result.blend.basis
            if model.lightgbm is not None
            else "none",
        },
        features=[(c, model.descriptions.get(c, "")) for c in model.feature_columns],
        evaluation=strip("combined_"),
        evaluation_basis=result.evaluation.basis,
        eval_period=result.evaluation.period,
        capacity_k=int(metrics.get("combined_k", 0)),
        row_unit="rows",
        capacity_rule=result.evaluation.capacity,
        no_evaluation_reason=no_evaluation_reason(result),
        baseline=strip("baseline_amount_"),
        fairness=result.fairness,
        known_limits=list(TABLE_KNOWN_LIMITS),
        config_hash=config.hash(),
        data_fingerprint=fingerprint,
        git_commit=tracking.git_commit(),
        contract_version=f"table spec {spec.name} ({spec.hash()})",
        feature_schema=model.feature_schema,
    )


def no_evaluation_reason(result: TableTrainingResult) -> str:
    """Why a table model has no held-out figures, in words ("" when it has them)."""
    evaluation = result.evaluation
    if evaluation.metrics:
        return ""
    if evaluation.n_rows == 0:
        return evaluation.basis.removeprefix("no evaluation: ")
    return (
        f"none of the {evaluation.n_rows:,} held-out rows ({evaluation.period}) is confirmed "
        "irregular, so there is nothing to find and precision and recall are undefined"
    )


def write_table_model_card(
    result: TableTrainingResult,
    ref: ModelRef,
    spec: TableSpecFile,
    config: TillitConfig,
    fingerprint: str,
    store: Path,
) -> list[Path]:
    """Render the card, keep it with the model (for score outputs), the run and the store."""
    from tillit.review.modelcard import ModelCardData

    card = table_model_card(result, ref.name, ref.version, ref.run_id, spec, config, fingerprint)
    assert isinstance(card, ModelCardData)
    return publish_model_card(card, ref, store)


def run_table_promote(
    spec_path: Path, config: TillitConfig, store: Path, force: bool, reason: str | None
) -> PromotionDecision:
    """`tillit promote --spec SPEC`: the same rule as home care, under the spec's name."""
    from tillit.ops.tracking import promote

    spec = load_spec(spec_path)
    decision = promote(
        spec.name,
        config.training.primary_metric,
        force,
        reason,
        store,
        tolerance=config.training.promotion_tolerance,
    )
    record_promotion(store, decision, config.hash(), force, reason, table_spec=spec.name)
    return decision
