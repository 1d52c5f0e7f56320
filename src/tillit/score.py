"""Score one month: rank every invoice, flag for review, explain each flagged one.

Who is flagged: the review capacity of highest risk, every invoice with a hard
finding, and a small random check sample (seeded by the period) so precision can
later be measured without the model's own bias. Invoices that cannot be scored
are listed too, as quarantined with the reason: nothing is silently left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tillit.capacity import ReviewConfig
from tillit.explain import Attribution, explain, top_k_agreement
from tillit.features.catalog import _SV_FINDINGS, FINDING_CODES, FINDING_COLUMNS
from tillit.model import RiskModel
from tillit.reasons import combine_contributions, peer_medians, top_reasons
from tillit.strict import StrictModel

WHY_CAPACITY = "capacity"
WHY_FINDING = "hard finding"
WHY_RANDOM = "random check"
WHY_QUARANTINE = "quarantined"

RISK_LIST_COLUMNS = (
    "invoice_id",
    "provider_id",
    "client_id",
    "period",
    "service_type",
    "amount_sek",
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


class ScoringConfig(StrictModel):
    """How reasons are written."""

    n_reasons: int = Field(default=3, ge=1)
    language: Literal["en", "sv"] = "en"


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class ScoredMonth:
    risk_list: pd.DataFrame
    explanations: pd.DataFrame
    summary: dict[str, object]


def _random_seed(period: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"tillit-random-check-{period}".encode()).digest()[:8], "big"
    )


def _findings_text(findings: pd.DataFrame, invoice_ids: pd.Series, language: str) -> pd.Series:
    if findings.empty:
        return pd.Series("", index=invoice_ids.index, dtype="str")
    lines = findings.sort_values(["invoice_id", "finding"]).assign(
        line=lambda f: f["finding"].map(_finding_label(language)) + ": " + f["evidence"]
    )
    joined = lines.groupby("invoice_id")["line"].agg(" | ".join)
    return invoice_ids.map(joined).fillna("").astype("str")


def _finding_label(language: str) -> dict[str, str]:
    if language == "sv":
        return dict(_SV_FINDINGS)
    return {code: text.rstrip(".") for code, text in FINDING_CODES.items()}


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
        return pd.DataFrame(columns=columns)
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
) -> ScoredMonth:
    """Rank, flag and explain one month's invoices.

    Args:
        model: the registered risk model.
        features: the month's feature table (one row per scorable invoice).
        findings: hard findings with evidence (invoice_id, finding, evidence).
        quarantined: invoices that could not be scored: invoice_id, provider_id,
            client_id, period, service_type, amount_sek (may be null), reason.
        review: the review capacity and random check share.
        identity: which registered model version scores.
        config: reasons' language and number.
    """
    config = config or ScoringConfig()
    features = features.sort_values("invoice_id", kind="stable").reset_index(drop=True)
    parts = model.components(features)
    risk = parts["risk_score"]
    order = np.lexsort((features["invoice_id"].to_numpy(), -risk.to_numpy()))
    rank = np.empty(len(features), dtype="int64")
    rank[order] = np.arange(1, len(features) + 1)
    k = review.k(len(features))
    by_capacity = rank <= k
    by_finding = parts["has_hard_finding"].to_numpy()
    rng = np.random.default_rng(_random_seed(str(features["period"].iloc[0])))
    eligible = np.flatnonzero(~by_capacity & ~by_finding)
    n_random = min(review.random_checks(len(features)), len(eligible))
    by_random = np.zeros(len(features), dtype=bool)
    by_random[rng.choice(eligible, size=n_random, replace=False)] = True
    why = [
        "; ".join(
            label for label, hit in ((WHY_CAPACITY, c), (WHY_FINDING, f), (WHY_RANDOM, r)) if hit
        )
        for c, f, r in zip(by_capacity, by_finding, by_random, strict=True)
    ]
    flagged = by_capacity | by_finding | by_random

    X = model.matrix(features)
    iso_X = model.isolation_forest_matrix(X)
    # Reasons for every invoice from fast, exactly additive attributions...
    fast = {
        "lightgbm": explain(model.lightgbm, X, method="exact"),
        "isolation_forest": explain(model.isolation_forest, iso_X, method="fast"),
    }
    # ...and exact TreeSHAP for the flagged ones, which auditors read.
    flagged_rows = np.flatnonzero(flagged)
    exact_iso = explain(model.isolation_forest, iso_X.iloc[flagged_rows], method="exact")
    agreement = (
        top_k_agreement(exact_iso, _subset(fast["isolation_forest"], X.index[flagged_rows]), k=3)
        if len(flagged_rows)
        else float("nan")
    )
    exact = {
        "lightgbm": _subset(fast["lightgbm"], X.index[flagged_rows]),
        "isolation_forest": exact_iso,
    }
    weight = model.blend.supervised_weight
    weights = {"lightgbm": weight, "isolation_forest": 1.0 - weight}
    contributions = {name: a.values for name, a in fast.items()}
    for name, attribution in exact.items():
        contributions[name] = contributions[name].copy()
        contributions[name].loc[attribution.values.index] = attribution.values
    combined = combine_contributions(contributions, weights)
    medians = peer_medians(features, list(model.feature_columns))
    reasons = top_reasons(
        features,
        combined,
        medians,
        config.n_reasons,
        config.language,
        exclude=(*FINDING_COLUMNS, "hard_finding_count"),
    )
    scored = pd.DataFrame(
        {
            "invoice_id": features["invoice_id"],
            "provider_id": features["provider_id"],
            "client_id": features["client_id"],
            "period": features["period"],
            "service_type": features["service_type"],
            "amount_sek": features["amount_sek"].astype("float64"),
            "status": "scored",
            "risk_score": risk.astype("float64"),
            "rank": pd.array(rank, dtype="Int64"),
            "flagged": flagged,
            "why_flagged": pd.Series(why, dtype="str"),
            "findings": _findings_text(findings, features["invoice_id"], config.language),
            "reasons": reasons.to_numpy(),
        }
    )
    held = pd.DataFrame(
        {
            "invoice_id": quarantined["invoice_id"].astype("str"),
            "provider_id": quarantined["provider_id"].astype("str"),
            "client_id": quarantined["client_id"].astype("str"),
            "period": quarantined["period"].astype("str"),
            "service_type": quarantined["service_type"].astype("str"),
            "amount_sek": pd.to_numeric(quarantined["amount_sek"], errors="coerce").astype(
                "float64"
            ),
            "status": "quarantined",
            "risk_score": np.nan,
            "rank": pd.array([pd.NA] * len(quarantined), dtype="Int64"),
            "flagged": True,
            "why_flagged": WHY_QUARANTINE,
            "findings": "",
            "reasons": ("cannot be scored: " + quarantined["reason"].astype("str")).to_numpy(),
        }
    )
    risk_list = pd.concat([scored, held], ignore_index=True) if len(held) else scored
    risk_list["model_name"] = identity.name
    risk_list["model_version"] = identity.version
    risk_list["run_id"] = identity.run_id
    risk_list = risk_list.sort_values(["rank", "invoice_id"], na_position="last", kind="stable")
    risk_list = risk_list.loc[:, list(RISK_LIST_COLUMNS)].reset_index(drop=True)

    explanations = _long_explanations(exact, X, features["invoice_id"])
    at_stake = risk_list.loc[risk_list["flagged"], "amount_sek"].sum()
    summary = {
        "invoices_scored": len(features),
        "invoices_quarantined": len(held),
        "invoices_received": len(features) + len(held),
        "flagged": int(flagged.sum()) + len(held),
        "flagged_by_capacity": int(by_capacity.sum()),
        "flagged_by_hard_finding": int(by_finding.sum()),
        "flagged_by_random_check": int(by_random.sum()),
        "flagged_quarantined": len(held),
        "capacity_k": k,
        "amount_flagged_sek": round(float(at_stake), 2),
        "amount_total_sek": round(float(risk_list["amount_sek"].sum()), 2),
        "isolation_forest_top3_agreement_fast_vs_treeshap": round(agreement, 4),
    }
    return ScoredMonth(risk_list=risk_list, explanations=explanations, summary=summary)


def _subset(attribution: Attribution, index: pd.Index) -> Attribution:
    positions = attribution.values.index.get_indexer(index)
    return Attribution(
        values=attribution.values.loc[index],
        base_value=attribution.base_value,
        output=np.asarray(attribution.output)[positions],
        output_name=attribution.output_name,
        method=attribution.method,
    )
