"""`tillit promote`: the challenger becomes champion when it beats it; the decision is logged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tillit.config import TillitConfig
from tillit.jobs.common import record_run

if TYPE_CHECKING:
    from tillit.ops.tracking import PromotionDecision


def run_promote(
    config: TillitConfig, store: Path, force: bool = False, reason: str | None = None
) -> PromotionDecision:
    """Promote the challenger if it beats the champion, and record the decision in the audit log."""
    from tillit.ops.tracking import promote

    decision = promote(
        config.training.model_name, config.training.primary_metric, force, reason, store
    )
    record_run(
        store,
        "promote",
        model_name=decision.challenger.name,
        model_version=decision.challenger.version,
        run_id=decision.challenger.run_id,
        config_hash=config.hash(),
        details={
            "promoted": decision.promoted,
            "message": decision.message,
            "forced": force,
            "reason": reason,
            "previous_champion": decision.champion.version if decision.champion else None,
        },
    )
    return decision
