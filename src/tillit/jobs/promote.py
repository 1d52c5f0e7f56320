"""`tillit promote`: the challenger replaces the champion when it does as well on invoices neither saw.

Both registered models are loaded and scored on the latest month with audit
outcomes that neither learned from, on the same data and truth basis (see
modelling/promotion.py for the month and the rule); the decision, both figures,
the month and the rule go to the output, the audit log and the model version's tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tillit.config import TillitConfig
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
) -> PromotionDecision:
    """Compare champion and challenger like with like, promote or refuse, record the decision."""
    from tillit.ops import tracking

    training = config.training
    comparison, missing = None, None
    client = tracking.connect(store)
    challenger = tracking.resolve_alias(client, training.model_name, tracking.CHALLENGER)
    try:
        champion = tracking.resolve_alias(client, training.model_name, tracking.CHAMPION)
    except tracking.RegistryError:
        champion = None
    if champion is not None and champion.version != challenger.version:
        if data_dir is None:
            missing = (
                "pass --data DIR: the champion and the challenger are scored on a month of that "
                "data that neither learned from"
            )
        else:
            comparison, missing = compare_registered(config, store, data_dir, champion, challenger)
    try:
        decision = tracking.promote(
            training.model_name,
            training.primary_metric,
            force,
            reason,
            store,
            comparison=comparison,
            tolerance=training.promotion_tolerance,
            missing=missing,
        )
    except tracking.RegistryError as exc:
        # A refusal for what is missing is a decision too: on record, then said.
        record_run(
            store,
            "promote",
            model_name=challenger.name,
            model_version=challenger.version,
            run_id=challenger.run_id,
            config_hash=config.hash(),
            details={"promoted": False, "message": str(exc), "forced": force, "reason": reason},
        )
        raise
    record_promotion(
        store,
        decision,
        config.hash(),
        force,
        reason,
        comparison=decision.comparison.record() if decision.comparison else None,
        data=str(data_dir) if data_dir is not None else None,
    )
    return decision


def compare_registered(
    config: TillitConfig,
    store: Path,
    data_dir: Path,
    champion: ModelRef,
    challenger: ModelRef,
) -> tuple[Comparison | None, str | None]:
    """Both models scored on the latest month neither learned from: (comparison, what is missing).

    Without such a month, the training runs' held-out figures are compared when both
    used the same data and month (the comparison is then left to `tracking.promote`).
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
        held_out = promotion.compare_held_out_runs(
            facts[0], facts[1], training.primary_metric, training.promotion_tolerance
        )
        missing = promotion.missing_month_message(facts[0], facts[1], reviewed_periods)
        return held_out, missing
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
