"""Whether a challenger should replace the champion: like compared with like, one explicit rule.

Two models are compared only on invoices neither of them learned from, with the
same data and the same truth basis:

1. **A month neither learned from.** The latest month that has audit outcomes and
   lies after every month either model was trained on. Both registered models
   score it; both are judged on the same invoices (every invoice with
   `truth.parquet`, else the month's reviewed invoices, a basis biased by how
   reviews were picked but the same for both). In the monthly loop this is the
   month whose decisions came back after the challenger was trained: each
   challenger is judged on the next month's decisions before it replaces the
   champion, as it would be used.
2. **The same data and the same held-out month.** When no such month exists but
   both were trained on the same data (same fingerprint, same held-out month and
   basis), each training run's held-out figure is like with like: both held-out
   models learned from the same months and reviews and were judged on the same
   invoices. Typical when a data scientist changes the configuration.

Otherwise the comparison is refused, saying what is missing.

**Feature definitions.** A model remembers the version of the feature definitions it
learned from (`features.FEATURE_DEFINITIONS_VERSION`). A challenger trained on other
definitions than this tillit computes would be fed columns whose meaning changed:
it is refused (`definitions_refusal`) unless promoted on purpose
(`--other-definitions --reason`). When the champion and the challenger learned from
different definitions, their training runs' held-out figures were computed on
different features and are not compared (2. above); scored on a month (1. above) both
read this tillit's features, and the comparison says that the two differ
(`definitions_note`).

The rule (`decide`): one month's figure on a few hundred invoices moves by a
hundredth or two by chance, so "strictly greater" would keep a champion forever on
a tie, and a required margin would refuse a model that learned from a month more
of the auditors' decisions for noise. So: better by more than the tolerance
promotes; within the tolerance promotes only a challenger trained on more
decisions than the champion; worse by more than the tolerance never does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from tillit.config import FeatureConfig, ReviewConfig
from tillit.errors import TillitError
from tillit.features.catalog import FEATURE_DEFINITIONS_VERSION, redefined_since
from tillit.modelling.risk_model import RiskModel

SCORED_BOTH = "scored both models on a month neither learned from"
SAME_DATA = "held-out figures of two training runs on the same data and month"


class ComparisonError(TillitError):
    """The champion and the challenger cannot be compared like with like."""


@dataclass(frozen=True)
class ModelFacts:
    """What a registered version learned from, read from its training run."""

    version: str
    trained_periods: tuple[str, ...]
    labelled: int | None  # decisions (labelled invoices) it learned from
    labels_reviewed_until: str | None
    eval_period: str | None
    evaluation_basis: str | None
    data_fingerprint: str | None
    held_out_value: float | None  # the training run's held-out primary metric

    @property
    def last_trained(self) -> str:
        return max(self.trained_periods) if self.trained_periods else ""


@dataclass(frozen=True)
class Comparison:
    """Both figures on the same invoices, the month, the rule and the verdict."""

    period: str
    basis: str
    how: str
    metric: str
    champion_value: float
    challenger_value: float
    tolerance: float
    judged_invoices: int | None
    promote: bool
    verdict: str
    note: str = ""  # what the figures do not say by themselves (definitions_note)

    def rule(self) -> str:
        """The rule in words, with the tolerance."""
        return rule_text(self.tolerance)

    def figures(self, champion: str, challenger: str) -> str:
        """One line with both figures and the month."""
        return (
            f"{self.metric} on {self.period} ({self.basis}): challenger version {challenger} "
            f"{self.challenger_value:.4f}, champion version {champion} {self.champion_value:.4f}"
        )

    def tags(self) -> dict[str, str]:
        """What is written on the challenger's model version."""
        return {
            "promotion_period": self.period,
            "promotion_basis": self.basis,
            "promotion_how": self.how,
            "promotion_metric": self.metric,
            "promotion_champion_value": f"{self.champion_value:.6f}",
            "promotion_challenger_value": f"{self.challenger_value:.6f}",
            "promotion_rule": self.rule(),
            "promotion_verdict": self.verdict,
            **({"promotion_note": self.note} if self.note else {}),
        }

    def record(self) -> dict[str, object]:
        """What goes into the audit log."""
        return {
            "period": self.period,
            "basis": self.basis,
            "how": self.how,
            "metric": self.metric,
            "champion_value": round(self.champion_value, 6),
            "challenger_value": round(self.challenger_value, 6),
            "tolerance": self.tolerance,
            "judged_invoices": self.judged_invoices,
            "rule": self.rule(),
            "verdict": self.verdict,
            **({"note": self.note} if self.note else {}),
        }


def rule_text(tolerance: float) -> str:
    return (
        f"promote when the challenger is better by more than {tolerance:g}, or within {tolerance:g} "
        f"and trained on more decisions; refuse when worse by more than {tolerance:g}"
    )


def definitions_refusal(
    version: str, trained: int, now: int = FEATURE_DEFINITIONS_VERSION
) -> str | None:
    """Why a challenger trained on other feature definitions than `now` is not promoted.

    None when they are the same. A champion scores every month with this tillit's
    features; a model that learned from other definitions finds its columns by name
    and reads numbers of another kind, which no figure of its own training shows.
    """
    if trained == now:
        return None
    changed = redefined_since(trained, upto=now) if trained < now else ()
    which = f" (changed since: {', '.join(changed)})" if changed else ""
    age = "older" if trained < now else "newer"
    return (
        f"the challenger (version {version}) was trained on feature definitions v{trained}, "
        f"{age} than the v{now} this tillit computes{which}: as champion it would read "
        "columns whose meaning is not what it learned; retrain it with this tillit "
        "(`tillit train`), or promote it on purpose with --other-definitions --reason WHY"
    )


def definitions_note(champion: int, challenger: int, now: int = FEATURE_DEFINITIONS_VERSION) -> str:
    """What a comparison of two models trained on different feature definitions must say.

    Empty when both learned from the same ones. Scored on one month, both read this
    tillit's features: each figure is what that model would do from now on, and the one
    trained on other definitions is judged on columns it did not learn.
    """
    if champion == challenger:
        return ""
    return (
        f"feature definitions differ: the champion was trained on v{champion}, the challenger "
        f"on v{challenger}; both were scored on this tillit's v{now} features, so a model "
        "trained on other definitions is judged on columns whose meaning changed"
    )


def held_out_definitions(champion: int, challenger: int) -> str:
    """Why two training runs' held-out figures do not compare across feature definitions."""
    return (
        f"the champion was trained on feature definitions v{champion} and the challenger on "
        f"v{challenger}: their training runs' held-out figures were computed on different "
        "features, so they do not compare; with --data DIR both are scored on this "
        "tillit's features on a month neither learned from"
    )


def decide(
    champion_value: float,
    challenger_value: float,
    tolerance: float,
    champion_labelled: int | None,
    challenger_labelled: int | None,
) -> tuple[bool, str]:
    """The promotion rule: (promote?, why in words)."""
    difference = challenger_value - champion_value
    if difference > tolerance:
        return True, f"better by {difference:.4f}, more than the tolerance {tolerance:g}"
    if difference < -tolerance:
        return False, f"worse by {-difference:.4f}, more than the tolerance {tolerance:g}"
    more = (
        challenger_labelled is not None
        and champion_labelled is not None
        and challenger_labelled > champion_labelled
    )
    within = f"within the tolerance {tolerance:g} ({difference:+.4f})"
    learned = f"{challenger_labelled} decisions against the champion's {champion_labelled}"
    if more:
        return True, f"{within} and trained on more decisions ({learned})"
    return False, f"{within} but not trained on more decisions ({learned})"


def comparison_month(
    champion: ModelFacts, challenger: ModelFacts, reviewed_periods: Iterable[str]
) -> str | None:
    """The latest month with audit outcomes after every month either model learned from."""
    after = max(champion.last_trained, challenger.last_trained)
    later = sorted(p for p in set(reviewed_periods) if p > after)
    return later[-1] if later else None


def missing_month_message(
    champion: ModelFacts, challenger: ModelFacts, reviewed_periods: Iterable[str]
) -> str:
    """What is missing to compare, in words."""
    after = max(champion.last_trained, challenger.last_trained)
    latest = max(reviewed_periods, default=None)
    return (
        f"no month with audit outcomes that neither model learned from: the challenger "
        f"(version {challenger.version}) was trained on months up to {challenger.last_trained}, "
        f"the champion (version {champion.version}) up to {champion.last_trained}, and the data's "
        f"audit outcomes reach {latest or 'no month'}; feed back the decisions on a month after "
        f"{after} (`tillit feedback`) and promote again, or --force --reason"
    )


def compare_held_out_runs(
    champion: ModelFacts, challenger: ModelFacts, metric: str, tolerance: float
) -> Comparison | None:
    """Compare the training runs' held-out figures, when both are on the same data and month."""
    same = (
        champion.eval_period is not None
        and champion.eval_period == challenger.eval_period
        and champion.evaluation_basis == challenger.evaluation_basis
        and champion.data_fingerprint is not None
        and champion.data_fingerprint == challenger.data_fingerprint
        and champion.held_out_value is not None
        and challenger.held_out_value is not None
    )
    if not same:
        return None
    assert champion.held_out_value is not None and challenger.held_out_value is not None
    promote, verdict = decide(
        champion.held_out_value,
        challenger.held_out_value,
        tolerance,
        champion.labelled,
        challenger.labelled,
    )
    return Comparison(
        period=str(champion.eval_period),
        basis=str(champion.evaluation_basis),
        how=SAME_DATA,
        metric=metric,
        champion_value=champion.held_out_value,
        challenger_value=challenger.held_out_value,
        tolerance=tolerance,
        judged_invoices=None,
        promote=promote,
        verdict=verdict,
    )


def compare_on_month(
    champion_model: RiskModel,
    challenger_model: RiskModel,
    champion: ModelFacts,
    challenger: ModelFacts,
    tables: Mapping[str, pd.DataFrame],
    period: str,
    truth: pd.DataFrame | None,
    metric: str,
    tolerance: float,
    features_config: FeatureConfig,
    review: ReviewConfig,
) -> Comparison:
    """Score both models on one month neither learned from and decide.

    Raises:
        ComparisonError: the month cannot judge (no invoices described, one class only).
    """
    from tillit.features import build_features
    from tillit.modelling.train import TrainingError, evaluate_period, review_labels

    features = build_features(tables, period, features_config).features
    if features.empty:
        raise ComparisonError(f"month {period}: no invoice could be described to compare on")
    labels = review_labels(tables.get("audit_outcomes"))
    figures = []
    for model in (champion_model, challenger_model):
        try:
            evaluation = evaluate_period(model, features, labels, truth, review)
        except TrainingError as exc:
            raise ComparisonError(
                f"month {period} cannot compare the models: {exc}"
                + ("" if truth is not None else " among its reviewed invoices")
            ) from None
        figures.append(evaluation)
    key = f"combined_{metric}"
    champion_value = float(figures[0].metrics[key])
    challenger_value = float(figures[1].metrics[key])
    promote, verdict = decide(
        champion_value, challenger_value, tolerance, champion.labelled, challenger.labelled
    )
    return Comparison(
        period=period,
        basis=figures[0].basis,
        how=SCORED_BOTH,
        metric=metric,
        champion_value=champion_value,
        challenger_value=challenger_value,
        tolerance=tolerance,
        judged_invoices=len(figures[0].scored),
        promote=promote,
        verdict=verdict,
    )
