"""`tillit retrain`: the monthly loop after auditors' decisions come back.

1. Validate the data (a folder that fails the contract stops here).
2. Judge the challenger waiting since last month against the champion, on the
   month whose decisions just came back (neither learned from it), and promote it
   or refuse with the figures and the rule (`tillit promote --data`).
3. Train a new challenger on everything, decisions included; it is judged the
   same way next month. Without any champion yet it becomes champion at once.
4. Write a short summary (Markdown) beside the run outputs and into the new
   challenger's MLflow run: the decision, new decisions used since the champion,
   both models' figures, the features whose importance moved most.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import file_sha256, write_json
from tillit.jobs.common import (
    MANIFEST,
    load_data,
    refuse_existing_output,
    refuse_unlisted_files,
    refuse_unsafe_output,
    staged_output,
)

if TYPE_CHECKING:
    from tillit.jobs.train import TrainOutcome
    from tillit.ops.tracking import ModelRef, PromotionDecision

SUMMARY_METRICS = ("average_precision", "precision_at_k", "recall_at_k", "money_caught_at_k")


@dataclass(frozen=True)
class RetrainOutcome:
    """The judged challenger's decision, the new challenger, and the summary written."""

    judged: PromotionDecision | None
    trained: TrainOutcome
    first_champion: PromotionDecision | None
    summary_path: Path
    summary: str


def run_retrain(
    data_dir: Path,
    config: TillitConfig,
    config_path: Path | None,
    store: Path,
    out: Path,
    overwrite: bool = False,
) -> RetrainOutcome:
    """Validate, judge the waiting challenger, train a new one, summarise (see the module doc).

    An earlier run's summary in `out` is replaced only with `overwrite` (checked first).
    """
    from tillit.jobs.promote import run_promote
    from tillit.jobs.train import run_train
    from tillit.ops import tracking
    from tillit.review.plots import feature_importance
    from tillit.review.retrain_summary import RetrainFacts, importance_moves, render_summary

    refuse_unsafe_output(
        out, {"--data": data_dir, "--config": config_path}, store=store, writes=[out / "summary.md"]
    )
    refuse_existing_output(out, overwrite)
    refuse_unlisted_files(out, ["summary.md", MANIFEST], overwrite)
    loaded = load_data(data_dir, config)
    training = config.training
    client = tracking.connect(store)
    champion = _alias(client, training.model_name, tracking.CHAMPION)
    waiting = _alias(client, training.model_name, tracking.CHALLENGER)
    judged = None
    if champion is not None and waiting is not None and waiting.version != champion.version:
        try:
            judged = run_promote(config, store, data_dir=data_dir)
        except tracking.RegistryError as exc:
            # Nothing to compare on yet (no month neither learned from): said in the summary.
            judged_text = f"Challenger version {waiting.version} not judged: {exc}"
        else:
            judged_text = judged.message
    else:
        judged_text = ""
    champion = _alias(client, training.model_name, tracking.CHAMPION)
    trained = run_train(data_dir, config, config_path, store)
    first = None
    if champion is None:
        first = run_promote(config, store, data_dir=data_dir)
    new_metrics = _headline(trained.result.evaluation.metrics)
    champion_metrics: dict[str, float] = {}
    labelled_champion, labels_until, moves = None, None, pd.DataFrame()
    decisions_since = int(trained.result.label_counts.get("labelled", 0))
    if champion is not None:
        facts = tracking.model_facts(client, champion, training.primary_metric)
        run = client.get_run(champion.run_id)
        champion_metrics = _headline(
            {k.removeprefix("eval_"): v for k, v in run.data.metrics.items()}
        )
        labelled_champion, labels_until = facts.labelled, facts.labels_reviewed_until
        decisions_since = _decisions_after(loaded.validation.tables, trained, labels_until)
        champion_model = tracking.load_risk_model(client, champion, store)
        features = trained.result.features
        common = [c for c in champion_model.feature_columns if c in features.columns]
        if len(common) == len(champion_model.feature_columns):
            moves = importance_moves(
                feature_importance(champion_model, features),
                feature_importance(trained.result.model, features),
            )
    comparison = judged.comparison if judged is not None else None
    judged_rows = []
    if comparison is not None and judged is not None and judged.champion is not None:
        judged_rows = [
            ("version", judged.champion.version, judged.challenger.version),
            (
                f"{comparison.metric} on {comparison.period} ({comparison.basis})",
                f"{comparison.champion_value:.4f}",
                f"{comparison.challenger_value:.4f}",
            ),
        ]
    evaluation = trained.result.evaluation
    now = dt.datetime.now(dt.UTC)
    summary = render_summary(
        RetrainFacts(
            date=now.strftime("%Y-%m-%d %H:%M UTC"),
            data=str(data_dir),
            data_fingerprint=loaded.fingerprint,
            judged=judged_text,
            judged_rows=judged_rows,
            new_version=trained.model.version,
            new_trained_periods=(
                f"{trained.result.model.trained_periods[0]} to "
                f"{trained.result.model.trained_periods[-1]}"
            ),
            new_eval_period=evaluation.period,
            new_eval_basis=evaluation.basis,
            new_metrics=new_metrics,
            champion_version=champion.version if champion is not None else None,
            champion_metrics=champion_metrics,
            labelled_new=int(trained.result.label_counts.get("labelled", 0)),
            labelled_champion=labelled_champion,
            decisions_since_champion=decisions_since,
            champion_labels_until=labels_until,
            moves=moves,
            next_step=(
                f"Version {trained.model.version} became champion (there was none)."
                if first is not None and first.promoted
                else f"Version {trained.model.version} waits as challenger: after the next "
                "month's decisions are fed back, `make retrain` judges it on that month."
            ),
        )
    )
    with staged_output(out, overwrite) as work:
        written = work / "summary.md"
        written.write_text(summary, "utf-8")
        # What `--overwrite` may replace next time: only the files listed here.
        outputs = {written.name: file_sha256(written)}
        write_json({"command": "retrain", "outputs": outputs}, work / MANIFEST)
    summary_path = out / "summary.md"
    client.log_text(trained.model.run_id, summary, "retrain/summary.md")
    if comparison is not None:
        client.log_metric(
            trained.model.run_id, "retrain_judged_champion", comparison.champion_value
        )
        client.log_metric(
            trained.model.run_id, "retrain_judged_challenger", comparison.challenger_value
        )
    client.log_metric(trained.model.run_id, "retrain_decisions_since_champion", decisions_since)
    return RetrainOutcome(
        judged=judged,
        trained=trained,
        first_champion=first,
        summary_path=summary_path,
        summary=summary,
    )


def _alias(client: object, name: str, alias: str) -> ModelRef | None:
    from tillit.ops import tracking

    try:
        return tracking.resolve_alias(client, name, alias)
    except tracking.RegistryError:
        return None


def _headline(metrics: dict[str, float]) -> dict[str, float]:
    return {
        name: float(metrics[f"combined_{name}"])
        for name in SUMMARY_METRICS
        if f"combined_{name}" in metrics
    }


def _decisions_after(
    tables: Mapping[str, pd.DataFrame], trained: TrainOutcome, cut_off: str | None
) -> int:
    """Decisions the new challenger learned from that were reviewed after the champion's cut-off."""
    outcomes = tables.get("audit_outcomes")
    if outcomes is None or outcomes.empty:
        return 0
    learned = outcomes[outcomes["invoice_id"].isin(trained.result.features["invoice_id"])]
    if cut_off is None:
        return int(learned["invoice_id"].nunique())
    later = learned[learned["reviewed_on"] > pd.Timestamp(cut_off)]
    return int(later["invoice_id"].nunique())
