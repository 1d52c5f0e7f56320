"""Score one month: rank every invoice, flag for review, explain each flagged one.

Who is flagged: the review capacity of highest risk, invoices with a hard finding
up to a bound beyond it (most severe and most money first; the rest stay listed
with their finding, unflagged, and are counted), and a random check sample drawn
by lot outside the list (seeded by the period): its confirmed share estimates how
much irregular billing the list misses. Within the capacity list a second sample
of the same size is drawn by lot and marked "list check": reviewed whatever else
the auditors get to, its confirmed share estimates the list's precision without
the auditors' own choice of order. Invoices that cannot be scored are listed too,
as quarantined with the reason: nothing is silently left out.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tillit.config import ReviewConfig, ScoringConfig
from tillit.core.risk_list import (
    WHY_CAPACITY,
    WHY_FINDING,
    WHY_LIST_CHECK,
    WHY_QUARANTINE,
    WHY_RANDOM,
    risk_list_schema,
    spreadsheet,
)
from tillit.features.catalog import FINDING_CODES, FINDING_COLUMNS
from tillit.i18n import render_parts, rule_in, text, words
from tillit.modelling.evaluate import random_check_seed
from tillit.modelling.risk_model import RiskModel
from tillit.review.dispute import hours_and_money_in_dispute
from tillit.review.reasons import (
    Descriptions,
    ReasonStyle,
    ReasonWriter,
    combine_contributions,
    peer_medians,
)
from tillit.review.triage import (
    WHY_BEYOND_BOUND,
    bounded_findings,
    pattern_records,
    provider_cases,
)

if TYPE_CHECKING:
    from tillit.modelling.explain import Attribution


# What identifies an invoice to an auditor, at the head of every list of invoices.
INVOICE_COLUMNS = ("invoice_id", "provider_id", "client_id", "period", "service_type", "amount_sek")
# An invoice that cannot be scored, as `score_month` takes it: the invoice and why.
HELD_COLUMNS = (*INVOICE_COLUMNS, "reason")
RISK_LIST_COLUMNS = (
    *INVOICE_COLUMNS,
    # The estimate of the amount not backed by visits, grant or tariff (review/dispute.py).
    "hours_in_dispute",
    "amount_in_dispute_sek",
    "status",
    "risk_score",
    "rank",
    "flagged",
    "why_flagged",
    "findings",
    "reasons",
    "model_name",
    "model_version",
    "run_id",
)


def _incomplete_named(df: pd.DataFrame) -> pd.Series:
    if "evidence_incomplete" not in df:
        return pd.Series(True, index=df.index)
    return df["evidence_incomplete"] == (df["quarantine_rules"].fillna("") != "")


# The risk list on the way out (core/risk_list.py), named by invoice, with home care's
# money in dispute and, added by `tillit score` (quarantine lineage), whether rows of
# other tables that were this invoice's evidence broke the contract (which rules, as
# `table: rule; ...`).
RiskList = risk_list_schema(
    "invoice_id",
    extra_columns={
        "amount_in_dispute_sek": pa.Column(float, pa.Check.ge(0), nullable=True),
        "evidence_incomplete": pa.Column(bool, required=False),
        "quarantine_rules": pa.Column(str, nullable=True, required=False),
    },
    extra_checks=[pa.Check(_incomplete_named, name="incomplete_evidence_names_its_rules")],
)


class Explanations(pa.DataFrameModel):
    """Explanations on the way out: one row per flagged invoice, scorer and feature."""

    invoice_id: Series[str]
    scorer: Series[str] = pa.Field(isin=["lightgbm", "isolation_forest", "tail_probability"])
    method: Series[str] = pa.Field(isin=["treeshap", "additive"])
    feature: Series[str]
    feature_value: Series[float]
    contribution: Series[float]
    base_value: Series[float]
    output: Series[float]
    output_name: Series[str]

    @pa.dataframe_check(name="base_value_plus_contributions_equal_the_output")
    def _additive(cls, df: pd.DataFrame) -> pd.Series:
        grouped = df.groupby(["invoice_id", "scorer"])
        total = grouped["contribution"].transform("sum") + df["base_value"]
        return (total - df["output"]).abs() <= ADDITIVITY_TOLERANCE

    class Config:
        unique = ("invoice_id", "scorer", "feature")


ADDITIVITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ModelIdentity:
    """Which registered model version scored: written on every row of the risk list."""

    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class ScoredMonth:
    """A month's risk list, the flagged invoices' explanations, and the counts."""

    risk_list: pd.DataFrame
    explanations: pd.DataFrame
    summary: dict[str, float]
    # Demoted finding types stated as patterns, and providers to review as one case.
    triage: dict[str, list[dict[str, object]]] = field(default_factory=dict)


def spreadsheet_risk_list(risk_list: pd.DataFrame, language: str) -> pd.DataFrame:
    """The risk list as a spreadsheet in `language` shows it (core/risk_list.py), its service
    types in words too. Written with the Swedish Excel dialect, numbers get a decimal comma.
    """
    if language == "en":
        return risk_list
    services = words("service", language)
    out = risk_list.assign(
        service_type=risk_list["service_type"].map(lambda v: services.get(str(v), v))
    )
    return spreadsheet(out, language)


def _findings_text(
    findings: pd.DataFrame,
    invoice_ids: pd.Series,
    language: str,
    demoted: set[str] | frozenset[str] = frozenset(),
) -> pd.Series:
    if findings.empty:
        return pd.Series("", index=invoice_ids.index, dtype="str")
    note = text("finding.demoted_note", language)
    labels = {
        code: text(f"finding.{code}", language) + (note if code in demoted else "")
        for code in FINDING_CODES
    }
    evidence = _evidence_words(findings, language)
    lines = findings.sort_values(["invoice_id", "finding"]).assign(
        line=lambda f: f["finding"].map(labels) + ": " + evidence.loc[f.index]
    )
    joined = lines.groupby("invoice_id")["line"].agg(" | ".join)
    return invoice_ids.map(joined).fillna("").astype("str")


def _evidence_words(findings: pd.DataFrame, language: str) -> pd.Series:
    """Each finding's evidence in `language`, from its facts (the English text without them)."""
    if "evidence_facts" not in findings or language == "en":
        return findings["evidence"].astype("str")
    return findings["evidence_facts"].map(lambda facts: render_parts(json.loads(facts), language))


def _long_explanations(
    attributions: dict[str, Attribution], X: pd.DataFrame, invoice_ids: pd.Series
) -> pd.DataFrame:
    parts = []
    for scorer, attribution in attributions.items():
        values = attribution.values
        long = values.stack().rename("contribution").reset_index()
        long.columns = ["row", "feature", "contribution"]
        long["feature_value"] = X.loc[values.index, values.columns].stack().to_numpy()
        long["invoice_id"] = invoice_ids.loc[long["row"]].to_numpy()
        long["scorer"] = scorer
        output = pd.Series(attribution.output, index=values.index)
        long["base_value"] = float(attribution.base_value)
        long["output"] = output.loc[long["row"]].to_numpy()
        long["output_name"] = attribution.output_name
        long["method"] = attribution.method
        parts.append(long.drop(columns="row"))
    columns = [
        "invoice_id",
        "scorer",
        "method",
        "feature",
        "feature_value",
        "contribution",
        "base_value",
        "output",
        "output_name",
    ]
    if not parts:
        texts = ("invoice_id", "scorer", "method", "feature", "output_name")
        return pd.DataFrame(
            {c: pd.Series(dtype="str" if c in texts else "float64") for c in columns}
        )
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.sort_values(["invoice_id", "scorer", "feature"], kind="stable").reset_index(
        drop=True
    )


def score_month(
    model: RiskModel,
    features: pd.DataFrame,
    findings: pd.DataFrame,
    quarantined: pd.DataFrame,
    review: ReviewConfig,
    identity: ModelIdentity,
    config: ScoringConfig | None = None,
    descriptions: Descriptions | None = None,
    risk_scores: pd.Series | None = None,
) -> ScoredMonth:
    """Rank, flag and explain one month's invoices.

    Args:
        model: the registered risk model.
        features: the month's feature table (one row per scorable invoice; may be
            empty when every invoice of the month is quarantined).
        findings: hard findings with evidence (invoice_id, finding, evidence).
        quarantined: invoices that could not be scored: invoice_id, provider_id,
            client_id, period, service_type, amount_sek (may be null), reason.
        review: the review capacity and random check share.
        identity: which registered model version scores.
        config: reasons' language and number.
        descriptions: what each feature means (`feature_catalog` of the features'
            config), so reasons name windows as configured; default: the default config's.
        risk_scores: the model's risk by invoice_id, computed elsewhere (on the Spark
            executors, `review.spark_scores`); default: computed here.
    """
    config = config or ScoringConfig()
    features = features.sort_values("invoice_id", kind="stable").reset_index(drop=True)
    n = len(features)
    parts: pd.DataFrame | None = None
    if risk_scores is not None:
        risk = risk_scores.reindex(features["invoice_id"].to_numpy()).to_numpy(dtype="float64")
        if np.isnan(risk).any():
            raise ValueError("risk_scores lacks some of the month's invoices")
        has_finding = model.hard_findings(features) if n else np.zeros(0, bool)
    else:
        parts = model.components(features) if n else None
        risk = parts["risk_score"].to_numpy() if parts is not None else np.zeros(0)
        has_finding = (
            parts["has_hard_finding"].to_numpy() if parts is not None else np.zeros(0, bool)
        )
    order = np.lexsort((features["invoice_id"].to_numpy(), -risk))
    rank = np.empty(n, dtype="int64")
    rank[order] = np.arange(1, n + 1)
    k = review.k(n)
    by_capacity = rank <= k
    # Findings beyond the capacity are flagged up to a bound, most severe and most money first.
    extra, beyond = bounded_findings(features, has_finding, by_capacity, review.findings_bound(n))
    by_finding = has_finding & (by_capacity | extra)
    by_random = _random_checks(features, by_capacity | by_finding, review)
    by_list_check = _list_checks(features, by_capacity, review)
    flagged = by_capacity | by_finding | by_random
    why = [
        "; ".join(
            label
            for label, hit in (
                (WHY_CAPACITY, c),
                (WHY_FINDING, f),
                (WHY_RANDOM, r),
                (WHY_LIST_CHECK, lc),
                (WHY_BEYOND_BOUND, b and not r),
            )
            if hit
        )
        for c, f, r, lc, b in zip(
            by_capacity, by_finding, by_random, by_list_check, beyond, strict=True
        )
    ]
    patterns = model.finding_patterns(features) if n else None
    pattern_list = pattern_records(patterns) if patterns is not None else []
    demoted = {str(p["finding"]) for p in pattern_list}
    X = model.matrix(features)
    dispute = hours_and_money_in_dispute(features, findings)
    if n:
        # Each scorer's weight in an invoice's reasons follows its share of the blend; on the
        # executors' path only the risk came back, so the blend's parts are computed here.
        blend_parts = parts if parts is not None else model.components(features)
        weights = model.reason_weights(blend_parts)
        exact, reasons, agreement = _explain(
            model, features, X, flagged, weights, config, descriptions
        )
    else:
        exact, reasons, agreement = {}, pd.Series(dtype="str"), {}
    scored = pd.DataFrame(
        {
            "invoice_id": features["invoice_id"],
            "provider_id": features["provider_id"],
            "client_id": features["client_id"],
            "period": features["period"],
            "service_type": features["service_type"],
            "amount_sek": features["amount_sek"].astype("float64"),
            "hours_in_dispute": dispute["hours_in_dispute"].to_numpy(dtype="float64"),
            "amount_in_dispute_sek": dispute["amount_in_dispute_sek"].to_numpy(dtype="float64"),
            "status": "scored",
            "risk_score": risk.astype("float64"),
            "rank": pd.array(rank, dtype="Int64"),
            "flagged": flagged,
            "why_flagged": pd.Series(why, dtype="str"),
            "findings": _findings_text(findings, features["invoice_id"], config.language, demoted),
            "reasons": reasons.to_numpy(),
        }
    )
    held = _held_rows(quarantined, config.language)
    risk_list = pd.concat([scored, held], ignore_index=True) if len(held) else scored
    risk_list["model_name"] = identity.name
    risk_list["model_version"] = identity.version
    risk_list["run_id"] = identity.run_id
    risk_list = risk_list.sort_values(["rank", "invoice_id"], na_position="last", kind="stable")
    risk_list = risk_list.loc[:, list(RISK_LIST_COLUMNS)].reset_index(drop=True)
    RiskList.validate(risk_list)

    at_stake = risk_list.loc[risk_list["flagged"], "amount_sek"].sum()
    summary = {
        "invoices_scored": n,
        "invoices_quarantined": len(held),
        "invoices_received": n + len(held),
        "flagged": int(flagged.sum()) + len(held),
        "flagged_by_capacity": int(by_capacity.sum()),
        "flagged_by_hard_finding": int(by_finding.sum()),
        "flagged_by_random_check": int(by_random.sum()),
        "list_checks": int(by_list_check.sum()),
        "invoices_with_hard_finding": int(has_finding.sum()),
        "findings_bound": review.findings_bound(n),
        "findings_beyond_bound": int((beyond & ~by_random).sum()),
        "amount_findings_beyond_bound_sek": round(
            float(features["amount_sek"].to_numpy()[beyond & ~by_random].sum()), 2
        ),
        "flagged_quarantined": len(held),
        "capacity_k": k,
        "amount_flagged_sek": round(float(at_stake), 2),
        "amount_in_dispute_flagged_sek": round(
            float(risk_list.loc[risk_list["flagged"], "amount_in_dispute_sek"].sum()), 2
        ),
        "amount_total_sek": round(float(risk_list["amount_sek"].sum()), 2),
        **{
            f"{name}_top3_agreement_fast_vs_treeshap": round(agreement.get(name, np.nan), 4)
            for name in ("lightgbm", "isolation_forest")
        },
    }
    explanations = Explanations.validate(_long_explanations(exact, X, features["invoice_id"]))
    triage = {
        "patterns": pattern_list,
        "cases": provider_cases(
            risk_list, features, config.case_min_flagged, config.case_min_share_of_flagged
        ),
    }
    return ScoredMonth(
        risk_list=risk_list, explanations=explanations, summary=summary, triage=triage
    )


def _list_checks(features: pd.DataFrame, in_list: np.ndarray, review: ReviewConfig) -> np.ndarray:
    """The list check sample: as many as the random checks, drawn by lot within the capacity list.

    Its confirmed share is an unbiased estimate of the list's precision even when
    auditors do not get through the whole list. It costs no extra review: these
    invoices are flagged by capacity anyway. Seeded by month, apart from the
    random checks, so adding it leaves their draw unchanged.
    """
    drawn = np.zeros(len(features), dtype=bool)
    eligible = np.flatnonzero(in_list)
    n_checks = min(review.random_checks(len(features)), len(eligible))
    if n_checks:
        rng = np.random.default_rng(random_check_seed(f"list-{features['period'].iloc[0]}"))
        drawn[rng.choice(eligible, size=n_checks, replace=False)] = True
    return drawn


def _random_checks(features: pd.DataFrame, already: np.ndarray, review: ReviewConfig) -> np.ndarray:
    """The random check sample: drawn by lot among invoices not flagged otherwise, seeded by month.

    It estimates what the list misses (the confirmed share among unflagged
    invoices), not the list's precision: that is the list checks' job.
    """
    drawn = np.zeros(len(features), dtype=bool)
    eligible = np.flatnonzero(~already)
    n_random = min(review.random_checks(len(features)), len(eligible))
    if n_random:
        rng = np.random.default_rng(random_check_seed(str(features["period"].iloc[0])))
        drawn[rng.choice(eligible, size=n_random, replace=False)] = True
    return drawn


def _explain(
    model: RiskModel,
    features: pd.DataFrame,
    X: pd.DataFrame,
    flagged: np.ndarray,
    weights: dict[str, pd.Series | float],
    config: ScoringConfig,
    descriptions: Descriptions | None,
) -> tuple[dict[str, Attribution], pd.Series, dict[str, float]]:
    """Exact attributions of the flagged invoices, reasons for all, and the fast path's agreement.

    Reasons for every invoice come from fast, exactly additive path attributions of
    both scorers; flagged invoices, which auditors read, get exact TreeSHAP for both,
    and the share of them whose top 3 features the two methods agree on is reported.
    `weights`: each scorer's weight in the reasons (`RiskModel.reason_weights`).
    """
    from tillit.modelling.explain import (
        explain,
        lightgbm_path_contributions,
        top_k_agreement_of,
    )

    iso_X = model.isolation_forest_matrix(X)
    rows = np.flatnonzero(flagged)
    gbm_X = model.lightgbm_matrix(X)

    def explain_lightgbm_exactly(fast: Future[pd.DataFrame]) -> Attribution:
        fast.result()  # one LightGBM call at a time, the fast one first (the reasons wait)
        return explain(model.lightgbm, gbm_X.iloc[rows], method="exact")

    # Three threads beside this one, each explaining one scorer's rows in a fixed order,
    # so every value is what a serial run gives: the forest's exact TreeSHAP (shap's C++
    # kernel, run without the interpreter lock over the flagged rows split between the
    # cores: `_path_dependent_treeshap`) starts first, as the longest; LightGBM's fast then
    # exact attributions (C, called without the lock) one after the other. Here, the
    # forest's fast attribution, then the reasons of the invoices not flagged, which need
    # no exact attribution, while the exact ones are still computed.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="tillit-explain") as pool:
        iso_exact_job = pool.submit(
            explain, model.isolation_forest, iso_X.iloc[rows], method="exact"
        )
        lgb_fast_job = pool.submit(lightgbm_path_contributions, model.lightgbm, gbm_X)
        lgb_exact_job = pool.submit(explain_lightgbm_exactly, lgb_fast_job)
        iso_fast = explain(model.isolation_forest, iso_X, method="fast")
        fast = {"lightgbm": lgb_fast_job.result(), "isolation_forest": iso_fast.values}
        tail_exact = None
        if model.tail_probability is not None:  # exact by construction: one computation for all
            tail = explain(model.tail_probability, iso_X)
            fast["tail_probability"] = tail.values
            tail_exact = tail.rows(X.index[rows])
        # The same combination as below, over every row: a row's values depend on its
        # own contributions only, so the rows not flagged are the same bits in both.
        combined_fast = combine_contributions(fast, weights)
        style = ReasonStyle(
            config.n_reasons,
            config.language,
            exclude=(*FINDING_COLUMNS, "hard_finding_count"),
            descriptions=descriptions,
        )
        medians = peer_medians(features, list(model.feature_columns))
        writer = ReasonWriter(features, list(combined_fast.columns), medians, style)
        not_flagged = writer.reasons(combined_fast.iloc[np.flatnonzero(~flagged)])
        exact = {"lightgbm": lgb_exact_job.result(), "isolation_forest": iso_exact_job.result()}
    if tail_exact is not None:
        exact["tail_probability"] = tail_exact
    agreement = {
        name: top_k_agreement_of(exact[name].values, fast[name].loc[X.index[rows]], k=3)
        if len(rows)
        else float("nan")
        for name in ("lightgbm", "isolation_forest")
    }
    for name, attribution in exact.items():
        error = attribution.max_additivity_error()
        if error > ADDITIVITY_TOLERANCE:  # an explanation that does not add up is not shown
            raise RuntimeError(f"{name} explanation is off its output by {error:g}")
    # The flagged rows' reasons from their exact attributions (a row's combination reads
    # only its own contributions, so only those rows are combined again).
    flagged_index = X.index[rows]
    contributions = {name: values.loc[flagged_index].copy() for name, values in fast.items()}
    for name, attribution in exact.items():
        contributions[name].loc[attribution.values.index] = attribution.values
    flagged_reasons = writer.reasons(combine_contributions(contributions, weights))
    reasons = pd.concat([not_flagged, flagged_reasons]).loc[combined_fast.index]
    return exact, reasons, agreement


def _held_rows(quarantined: pd.DataFrame, language: str = "en") -> pd.DataFrame:
    """Invoices that cannot be scored, as risk list rows: flagged, with the reason."""
    return pd.DataFrame(
        {
            "invoice_id": quarantined["invoice_id"].astype("str"),
            "provider_id": quarantined["provider_id"].astype("str"),
            "client_id": quarantined["client_id"].astype("str"),
            "period": quarantined["period"].astype("str"),
            "service_type": quarantined["service_type"].astype("str"),
            "amount_sek": pd.to_numeric(quarantined["amount_sek"], errors="coerce").astype(
                "float64"
            ),
            "hours_in_dispute": np.nan,
            "amount_in_dispute_sek": np.nan,
            "status": "quarantined",
            "risk_score": np.nan,
            "rank": pd.array([pd.NA] * len(quarantined), dtype="Int64"),
            "flagged": True,
            "why_flagged": WHY_QUARANTINE,
            "findings": "",
            "reasons": [
                text("reason.cannot_be_scored", language, reason=rule_in(language, reason))
                for reason in quarantined["reason"].astype("str")
            ],
        }
    )
