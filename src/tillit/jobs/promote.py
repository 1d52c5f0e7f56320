"""`tillit promote`: the challenger replaces the champion when it does as well on invoices neither saw.

Both registered models are loaded and scored on the latest month with audit
outcomes that neither learned from, on the same data and truth basis (see
modelling/promotion.py for the month and the rule); the decision, both figures,
the month and the rule go to the output, the audit log and the model version's tags.
A challenger trained on other feature definitions than this tillit computes is
refused unless promoted on purpose (`other_definitions` with a reason), and a
comparison of models trained on different definitions says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tillit.config import TillitConfig
from tillit.errors import ModelUnavailableError
from tillit.jobs.common import record_promotion, record_run

if TYPE_CHECKING:
    from tillit.modelling.promotion import Comparison
    from tillit.ops.tracking import ModelRef, PromotionDecision


def run_promote(
    config: TillitConfig,
    store: Path,
    force: bool = False,
    reason: str | None = None,
    data_dir: Path | None = None,
    other_definitions: bool = False,
) -> PromotionDecision:
    """Compare champion and challenger like with like, promote or refuse, record the decision.

    Raises:
        RegistryError: no challenger, a refusal for what is missing, or a challenger
            trained on other feature definitions (without `other_definitions` and a reason).
        ModelUnavailableError: a model that fails verification (on record as a refusal).
        Other errors (a broken `--data` folder) are not decisions and are not recorded.
    """
    from tillit.features import FEATURE_DEFINITIONS_VERSION
    from tillit.modelling import promotion
    from tillit.ops import tracking

    training = config.training
    comparison, missing = None, None
    client = tracking.connect(store)
    challenger = tracking.resolve_alias(client, training.model_name, tracking.CHALLENGER)
    try:
        champion = tracking.resolve_alias(client, training.model_name, tracking.CHAMPION)
    except tracking.RegistryError:
        champion = None
    deciding = champion is None or champion.version != challenger.version
    definitions: dict[str, int | None] = {
        "challenger": None,
        "champion": None,
        "tillit": FEATURE_DEFINITIONS_VERSION,
    }
    try:
        # Reading what a model learned from may load it (verified): a model that fails
        # verification here is a refusal on record like any other.
        trained = tracking.trained_definitions(client, challenger, store)
        definitions["challenger"] = trained
        champion_trained = (
            tracking.trained_definitions(client, champion, store) if champion else None
        )
        definitions["champion"] = champion_trained
        stale = promotion.definitions_refusal(challenger.version, trained)
        # Held-out figures of models trained on different definitions were computed on
        # different features: not compared, and the scored comparison says they differ.
        across = None
        if champion_trained is not None and champion_trained != trained:
            across = promotion.held_out_definitions(champion_trained, trained)
        if deciding and stale is not None and not (other_definitions and reason):
            need = "--other-definitions needs --reason: " if other_definitions else ""
            raise tracking.RegistryError(f"not promoted: {need}{stale}")
        if champion is not None and deciding:
            if data_dir is None:
                missing = (
                    "pass --data DIR: the champion and the challenger are scored on a month of "
                    "that data that neither learned from"
                )
                if across is not None:
                    missing += f" ({across})"
            else:
                comparison, missing = compare_registered(
                    config, store, data_dir, champion, challenger, held_out=across is None
                )
                if across is not None and comparison is None:
                    missing = f"{missing}; {across}"
        if comparison is not None and champion_trained is not None:
            note = promotion.definitions_note(champion_trained, trained)
            comparison = replace(comparison, note=note) if note else comparison
        decision = tracking.promote(
            training.model_name,
            training.primary_metric,
            force,
            reason,
            store,
            comparison=comparison,
            tolerance=training.promotion_tolerance,
            missing=missing,
            held_out=across is None,
        )
    except (tracking.RegistryError, ModelUnavailableError) as exc:
        # A refusal (for what is missing, or a model that fails verification) is a
        # decision too: on record, then said.
        record_run(
            store,
            "promote",
            model_name=challenger.name,
            model_version=challenger.version,
            run_id=challenger.run_id,
            config_hash=config.hash(),
            details={
                "promoted": False,
                "message": str(exc),
                "forced": force,
                "reason": reason,
                "feature_definitions": definitions,
            },
        )
        raise
    if stale is not None and deciding and decision.promoted:
        # On purpose, and said: the champion now reads columns it did not learn.
        client.set_model_version_tag(
            training.model_name, challenger.version, "promotion_other_definitions", str(reason)
        )
        decision = replace(
            decision,
            message=f"{decision.message}; promoted with --other-definitions ({reason}): {stale}",
        )
    record_promotion(
        store,
        decision,
        config.hash(),
        force,
        reason,
        comparison=decision.comparison.record() if decision.comparison else None,
        data=str(data_dir) if data_dir is not None else None,
        feature_definitions=definitions,
        other_definitions=other_definitions,
    )
    return decision


def compare_registered(
    config: TillitConfig,
    store: Path,
    data_dir: Path,
    champion: ModelRef,
    challenger: ModelRef,
    held_out: bool = True,
) -> tuple[Comparison | None, str | None]:
    """Both models scored on the latest month neither learned from: (comparison, what is missing).

    Without such a month, the training runs' held-out figures are compared when both
    used the same data and month and `held_out` allows (the comparison is then left
    to `tracking.promote`).
    """
    from tillit.jobs.common import load_data, read_truth
    from tillit.modelling import promotion
    from tillit.ops import tracking

    training = config.training
    client = tracking.connect(store)
    facts = [
        tracking.model_facts(client, ref, training.primary_metric) for ref in (champion, challenger)
    ]
    loaded = load_data(data_dir, config)
    tables = loaded.validation.tables
    outcomes = tables.get("audit_outcomes")
    invoices = tables["invoices"]
    reviewed_ids = set(outcomes["invoice_id"]) if outcomes is not None else set()
    reviewed_periods = set(invoices.loc[invoices["invoice_id"].isin(reviewed_ids), "period"])
    month = promotion.comparison_month(facts[0], facts[1], reviewed_periods)
    if month is None:
        runs = (
            promotion.compare_held_out_runs(
                facts[0], facts[1], training.primary_metric, training.promotion_tolerance
            )
            if held_out
            else None
        )
        missing = promotion.missing_month_message(facts[0], facts[1], reviewed_periods)
        return runs, missing
    try:
        comparison = promotion.compare_on_month(
            tracking.load_risk_model(client, champion, store),
            tracking.load_risk_model(client, challenger, store),
            facts[0],
            facts[1],
            tables,
            month,
            read_truth(data_dir),
            training.primary_metric,
            training.promotion_tolerance,
            config.features,
            config.review,
        )
    except promotion.ComparisonError as exc:
        return None, str(exc)
    return comparison, None
