"""Train both scorers with a time split, evaluate as auditors work, refit for production.

Split by time: the scorers learn from the months before the evaluation month and
are judged on it, at the review capacity. The model that is registered is then
refit on every month up to and including the evaluation month; the metrics that
go with it are the held-out ones.

Past reviews were mostly picked by a rule (billed over granted hours), so the
labelled invoices are not a random sample. The supervised scorer therefore
weighs each label by the inverse of its estimated chance of having been reviewed
(a cross-fitted propensity model over all invoices of the training months): the
few reviews of ordinary-looking invoices, most of them random checks, count for
more, and the model is not paid for relearning the old rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import FeatureConfig, ReviewConfig, TrainingConfig
from tillit.errors import TillitError
from tillit.features import (
    FAIRNESS_COLUMNS,
    FEATURE_COLUMNS,
    FINDING_CODES,
    build_features,
    feature_columns,
)
from tillit.modelling.base_rates import finding_base_rates
from tillit.modelling.risk_model import RiskModel, fit_risk_model
from tillit.ops import progress

if TYPE_CHECKING:
    from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer

BASELINE_FEATURE = "billed_over_registered_hours"

# The unsupervised scorer looks for unusual *billing*: features that measure size
# (a client with many hours, a large provider, an old company) make big honest
# invoices look unusual, and the hard findings are stated as facts on their own.
# Measured on the default simulated municipality (held-out month 2025-11), leaving
# them out raised the IsolationForest's average precision alone from 0.73 to 0.77
# without findings and the combined risk's from 0.80 to 0.84.
UNSUPERVISED_EXCLUDED = (
    "registered_visit_hours",
    "registered_visit_count",
    "granted_hours",
    "billed_minus_registered_hours",
    "amount_minus_tariff_amount_sek",
    "provider_clients_billed_log",
    "provider_staff_per_client",
    "provider_age_years",
    "provider_approval_age_years",
    "hard_finding_count",
)

# Habits honest providers and carers have as a whole are not unusual billing: a provider
# whose carers all type their visits in afterwards, carers who work mornings at one
# provider and evenings at another. Measured on the bench family (docs/label-free.md),
# these staff-level columns put honest invoices of such providers at the top of the
# label-free ranking; they stay inputs of the supervised scorer and of the reasons.
LABEL_FREE_EXCLUDED = (
    "staff_manual_registration_share",
    "staff_manual_registration_share_peer_z",
    "staff_only_by_hand_hours_share",
    "max_staff_day_hours_across_providers",
)


def lightgbm_columns(columns: tuple[str, ...], config: TrainingConfig) -> tuple[str, ...]:
    """The supervised scorer's features: all, or (`lightgbm_without_findings`) all but the
    hard-finding flags and count, which rank first through the finding floor anyway."""
    if not config.lightgbm_without_findings:
        return columns
    return tuple(c for c in columns if not c.startswith("finding_") and c != "hard_finding_count")


def isolation_forest_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The features the label-free scorers see: all but size measures, habits and finding flags."""
    return tuple(
        c
        for c in columns
        if c not in UNSUPERVISED_EXCLUDED
        and c not in LABEL_FREE_EXCLUDED
        and not c.startswith("finding_")
    )


class TrainingError(TillitError):
    """The data cannot train a model (no labels, no earlier months, ...)."""


@dataclass(frozen=True)
class Evaluation:
    """Held-out figures for one evaluation month."""

    period: str
    basis: str  # "truth" (simulated data) or "audit_outcomes" (biased by how reviews were picked)
    k: int
    metrics: dict[str, float]
    scored: pd.DataFrame  # invoice_id, label, excess_sek, scheme, one score column per ranking
    # Every invoice of the month: the audit-only group columns, flagged (capacity or
    # hard finding) and label (NaN where nobody knows), for the fairness audit.
    fairness_frame: pd.DataFrame


@dataclass(frozen=True)
class TrainingResult:
    """The refit model with the held-out evaluation and what it was trained on."""

    model: RiskModel
    evaluation: Evaluation
    rolling: list[Evaluation]
    label_counts: dict[str, int]
    invoices_per_period: dict[str, int]
    quarantined_invoices: int
    features: pd.DataFrame = field(repr=False)
    # The latest review date among the decisions the refit model learned from
    # (None without labels): what `tillit promote` reads as the model's label cut-off.
    labels_reviewed_until: str | None = None


def review_labels(audit_outcomes: pd.DataFrame | None) -> pd.DataFrame:
    """The latest decision per invoice as a label (confirmed = 1, cleared = 0), with how it was picked.

    A later decision supersedes an earlier one; both stay in audit_outcomes.
    """
    if audit_outcomes is None or audit_outcomes.empty:
        return pd.DataFrame(
            {
                "invoice_id": pd.Series(dtype="str"),
                "label": pd.Series(dtype="int64"),
                "selection": pd.Series(dtype="str"),
            }
        )
    ordered = audit_outcomes.reset_index(drop=True).reset_index(names="row")
    latest = ordered.sort_values(["invoice_id", "reviewed_on", "row"]).drop_duplicates(
        "invoice_id", keep="last"
    )
    labels = (latest["outcome"] == "confirmed").astype("int64")
    if "selection" in latest:
        selection = latest["selection"].astype("str").where(latest["selection"].notna(), "unknown")
    else:
        selection = pd.Series("unknown", index=latest.index)
    return pd.DataFrame(
        {
            "invoice_id": latest["invoice_id"].to_numpy(),
            "label": labels.to_numpy(),
            "selection": selection.to_numpy(),
        }
    )


def _reviewed_before(outcomes: pd.DataFrame | None, period: str) -> pd.DataFrame | None:
    """The reviews decided before the first day of `period`."""
    if outcomes is None or outcomes.empty:
        return outcomes
    return outcomes[outcomes["reviewed_on"] < pd.Timestamp(f"{period}-01")]


def _first_reason(quarantine: pd.DataFrame, period: str) -> str:
    reasons = quarantine.loc[quarantine["period"] == period, "reason"]
    return f"for example: {reasons.iloc[0]}" if len(reasons) else "no reason recorded"


def default_eval_period(invoices: pd.DataFrame, labels: pd.DataFrame) -> str:
    """The latest month that has audit outcomes."""
    reviewed = invoices.loc[invoices["invoice_id"].isin(labels["invoice_id"]), "period"]
    if reviewed.empty:
        raise TrainingError(
            "audit_outcomes has no reviewed invoices: the supervised scorer has no labels"
        )
    return str(reviewed.max())


def _fit_scorers(
    features: pd.DataFrame, columns: tuple[str, ...], labels: pd.DataFrame, config: TrainingConfig
) -> tuple[IsolationForestScorer, LightGBMScorer, dict[str, int]]:
    from tillit.modelling.scorers import isolation_forest_scorer, label_weights, lightgbm_scorer

    X = features.loc[:, list(columns)].astype("float64")
    iso_columns = isolation_forest_columns(columns)
    iso = isolation_forest_scorer(config).fit(X.loc[:, list(iso_columns)])
    label_by_invoice = labels.set_index("invoice_id")["label"]
    reviewed = features["invoice_id"].isin(label_by_invoice.index).to_numpy()
    y = features.loc[reviewed, "invoice_id"].map(label_by_invoice).to_numpy(dtype="int64")
    if len(np.unique(y)) < 2:
        raise TrainingError(
            f"the training months need both confirmed and cleared reviews; found {len(y)} reviews "
            f"with {int(y.sum())} confirmed"
        )
    weights = label_weights(X, reviewed, y, config)
    _check_monotone_columns(columns, config)
    gbm_X = X.loc[reviewed, list(lightgbm_columns(columns, config))]
    gbm = lightgbm_scorer(config).fit(gbm_X, y, sample_weight=weights)
    counts = {
        "labelled": int(reviewed.sum()),
        "confirmed": int(y.sum()),
        "cleared": int((y == 0).sum()),
    }
    selection = features.loc[reviewed, "invoice_id"].map(
        labels.set_index("invoice_id")["selection"]
    )
    counts.update(
        {f"labelled_{name}": int(n) for name, n in selection.value_counts().sort_index().items()}
    )
    return iso, gbm, counts


def _check_monotone_columns(columns: tuple[str, ...], config: TrainingConfig) -> None:
    """Refuse a constrained name that is no feature column: a typo would constrain nothing.

    A name of the feature catalog that this frame lacks (a subset of the columns, other
    history windows) is skipped by the scorer, as in table mode; a name that is neither
    in the frame nor in the catalog can only be a mistake.
    """
    params = config.lightgbm
    known = set(columns) | set(FEATURE_COLUMNS)
    unknown = [name for name in params.monotone_increasing if name not in known]
    if params.monotone_increasing_on and unknown:
        raise TrainingError(
            "training.lightgbm.monotone_increasing names no feature column: "
            f"{', '.join(unknown)} (the columns are in tillit.features.catalog)"
        )


def settled_periods(periods: Sequence[str], warm_up_months: int) -> list[str]:
    """The months whose history features have filled: after the warm-up, or the later half.

    The first months of an export are a warm-up for every history feature (a client's own
    earlier months, the 3- and 6-month windows): they hold neutral values no later month
    has. Distributions a later month is judged against are taken from the settled months.
    """
    months = sorted(periods)
    return months[warm_up_months:] if len(months) > warm_up_months else months[len(months) // 2 :]


def fit_model(
    features: pd.DataFrame, columns: tuple[str, ...], labels: pd.DataFrame, config: TrainingConfig
) -> tuple[RiskModel, dict[str, int]]:
    """Fit the scorers on the given months and wrap them as a RiskModel."""
    from tillit.features.catalog import LOWER_IS_RISKIER, one_fact_groups, provider_level
    from tillit.modelling.scorers import tail_probability_scorer

    iso, gbm, counts = _fit_scorers(features, columns, labels, config)
    iso_columns = isolation_forest_columns(columns)
    tail = None
    if config.tail_probability.enabled:
        lower = tuple(c for c in iso_columns if c in LOWER_IS_RISKIER)
        tail = tail_probability_scorer(
            config, lower, provider_level(iso_columns), one_fact_groups(iso_columns)
        ).fit(features.loc[:, list(iso_columns)].astype("float64"))
    model = fit_risk_model(
        iso,
        gbm,
        features,
        columns,
        iso_columns,
        config.blend,
        sorted(features["period"].unique()),
        CONTRACT_VERSION,
        tail_probability=tail,
        lightgbm_columns=lightgbm_columns(columns, config),
    )
    # The home-care stream's finding types: the blend is told them, it does not know them.
    model.finding_codes = tuple(FINDING_CODES)
    model.finding_base_rates = finding_base_rates(features, labels, model.finding_codes)
    return model, counts


def evaluate_period(
    model: RiskModel,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    truth: pd.DataFrame | None,
    review: ReviewConfig,
) -> Evaluation:
    """Rank one held-out month and measure it at the review capacity.

    With truth (simulated data) every invoice of the month is judged; otherwise
    only the reviewed ones, an estimate biased by how reviews were picked.
    """
    from tillit.modelling.evaluate import ranking_metrics, top_k_mask

    period = str(features["period"].iloc[0])
    parts = model.components(features)
    scored = pd.DataFrame(
        {
            "invoice_id": features["invoice_id"].to_numpy(),
            "amount_sek": features["amount_sek"].to_numpy(),
            "combined": parts["risk_score"].to_numpy(),
            "isolation_forest": parts["isolation_forest_score"].to_numpy(),
            "lightgbm": parts["lightgbm_score"].to_numpy(),
            "tail_probability": parts["tail_probability_score"].to_numpy(),
            "label_free": parts["label_free_percentile"].to_numpy(),
            "rule_billed_over_registered": features[BASELINE_FEATURE].to_numpy(),
        }
    )
    if truth is not None:
        basis = "truth"
        judged = scored.merge(truth, on="invoice_id", how="left", validate="one_to_one")
        judged["label"] = judged["irregular"].fillna(False).astype("int64")
        judged["excess_sek"] = judged["excess_sek"].fillna(0.0)
        judged["scheme"] = judged["scheme"].where(judged["label"] == 1)
    else:
        basis = "audit_outcomes"
        judged = scored.merge(labels, on="invoice_id", how="inner")
        judged["excess_sek"] = judged["amount_sek"] * judged["label"]
        judged["scheme"] = None
    if judged["label"].nunique() < 2:
        raise TrainingError(f"evaluation month {period} needs both irregular and regular invoices")
    k = review.k(len(features)) if basis == "truth" else review.k(len(judged))
    metrics: dict[str, float] = _review_precision(labels, features)
    rankings = ["combined", "isolation_forest", "lightgbm", "rule_billed_over_registered"]
    if judged["tail_probability"].notna().all():  # models with the second label-free scorer
        rankings += ["tail_probability", "label_free"]
    for ranking in rankings:
        groups = judged["scheme"] if ranking == "combined" and basis == "truth" else None
        values = ranking_metrics(
            judged["label"].to_numpy(),
            judged[ranking].to_numpy(),
            k,
            judged["excess_sek"].to_numpy(),
            groups,
        )
        metrics.update({f"{ranking}_{name}": float(value) for name, value in values.items()})
    flagged = top_k_mask(parts["risk_score"].to_numpy(), review.k(len(features)))
    fairness_frame = features.loc[:, list(FAIRNESS_COLUMNS)].reset_index(drop=True)
    fairness_frame["flagged"] = flagged | parts["has_hard_finding"].to_numpy()
    known = judged.set_index("invoice_id")["label"]
    fairness_frame["label"] = features["invoice_id"].map(known).astype("float64").to_numpy()
    return Evaluation(
        period=period,
        basis=basis,
        k=k,
        metrics=metrics,
        scored=judged,
        fairness_frame=fairness_frame,
    )


def _review_precision(labels: pd.DataFrame, features: pd.DataFrame) -> dict[str, float]:
    """Share confirmed among the month's reviews, by how they were picked.

    Each share estimates something else: among random checks (drawn by lot outside
    the list) it estimates how common irregular billing is among the invoices the
    list leaves out, i.e. what the list misses; among flagged invoices it is the
    list's precision (unbiased when every flagged invoice, or the list checks drawn
    by lot within it, was reviewed); among rule-picked reviews it describes the old
    rule. They are reported apart because mixing them would hide one behind another.
    """
    month = labels[labels["invoice_id"].isin(features["invoice_id"])]
    out = {}
    for selection in ("random_check", "flagged", "rule"):
        part = month.loc[month["selection"] == selection, "label"]
        if len(part):
            out[f"reviews_{selection}_n"] = float(len(part))
            out[f"reviews_{selection}_confirmed_share"] = float(part.mean())
    return out


def train(
    tables: Mapping[str, pd.DataFrame],
    config: TrainingConfig,
    features_config: FeatureConfig,
    review: ReviewConfig,
    truth: pd.DataFrame | None = None,
) -> TrainingResult:
    """Time split, fit, evaluate on the held-out month, then refit on all months up to it.

    The model held out for month M learns only from reviews dated before M began:
    a review of an earlier invoice that was decided later was not known then.
    """
    from tillit.features.catalog import protected_features

    outcomes = tables.get("audit_outcomes")
    labels = review_labels(outcomes)
    invoices = tables["invoices"]
    eval_period = config.eval_period or default_eval_period(invoices, labels)
    periods = sorted(p for p in invoices["period"].unique() if p <= eval_period)
    if eval_period not in periods:
        raise TrainingError(f"evaluation month {eval_period} has no invoices")
    if len(periods) < 2:
        raise TrainingError(f"no months before the evaluation month {eval_period} to train on")
    feature_set = build_features(tables, periods, features_config)
    features = feature_set.features
    progress.lap("features", "held-out model")
    columns = feature_columns(features_config)
    if protected := protected_features(columns):
        raise TrainingError(f"protected attributes must not be features: {', '.join(protected)}")
    eval_periods = periods[-(config.rolling_eval_months + 1) :][::-1]
    evaluations = []
    for period in eval_periods:
        month = features[features["period"] == period]
        if month.empty:
            raise TrainingError(
                f"evaluation month {period}: every invoice was quarantined by the feature stage "
                f"({_first_reason(feature_set.quarantine, period)})"
            )
        before = features[features["period"] < period]
        known_then = review_labels(_reviewed_before(outcomes, period))
        held_out_model, _ = fit_model(before, columns, known_then, config)
        evaluations.append(evaluate_period(held_out_model, month, labels, truth, review))
    progress.lap("held-out model and evaluation", "refit on every month")
    model, counts = fit_model(features, columns, labels, config)
    progress.lap("refit on every month")
    learned = (
        outcomes[outcomes["invoice_id"].isin(features["invoice_id"])]
        if outcomes is not None
        else None
    )
    return TrainingResult(
        labels_reviewed_until=(
            str(pd.Timestamp(learned["reviewed_on"].max()).date())
            if learned is not None and len(learned)
            else None
        ),
        model=model,
        evaluation=evaluations[0],
        rolling=evaluations[1:],
        label_counts=counts,
        invoices_per_period=features.groupby("period").size().astype(int).to_dict(),
        quarantined_invoices=len(feature_set.quarantine),
        features=features,
    )
