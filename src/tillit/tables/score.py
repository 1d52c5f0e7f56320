"""Scoring a table's rows: a bounded, explained risk list per period.

Who is flagged, in each period: the review capacity of highest risk, and a random
check sample drawn from the rest (the capacity's `random_check_share`, seeded by
the period), so the list's precision can be measured without the model's own bias.
Flagged rows carry reasons in words and additive explanations of both scorers
(TreeSHAP): base value + contributions = the scorer's output, checked before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tillit.core.risk_list import WHY_CAPACITY, WHY_RANDOM, risk_list_schema
from tillit.errors import TillitError
from tillit.i18n import number, text
from tillit.modelling.evaluate import random_check_seed, top_k_mask
from tillit.modelling.explain import Attribution, explain
from tillit.review.reasons import combine_contributions
from tillit.tables.features import history_feature_descriptions
from tillit.tables.model import TableRiskModel
from tillit.tables.spec import TableSpecFile

ADDITIVITY_TOLERANCE = 1e-6


class ExplanationError(TillitError):
    """An explanation does not add up to the model output: nothing is written."""


@dataclass(frozen=True)
class ScoredTable:
    """The risk list, the long explanations of flagged rows, and counts."""

    risk_list: pd.DataFrame
    explanations: pd.DataFrame
    counts: dict[str, int]


def _number(value: float, lang: str) -> str:
    if not np.isfinite(value):
        return text("table.not_available", lang)
    return number(value, lang, 0 if abs(value) >= 100 or float(value).is_integer() else 2)


def reason_text(description: str, value: float, typical: float, lang: str = "en") -> str:
    """One reason in words: what the feature holds, its value and the training median."""
    return text(
        "table.reason",
        lang,
        description=description,
        value=_number(value, lang),
        typical=_number(typical, lang),
    )


def _random_checks(
    periods: np.ndarray, already: np.ndarray, spec: TableSpecFile, n_per_period: dict[str, int]
) -> np.ndarray:
    chosen = np.zeros(len(periods), dtype=bool)
    for period, n in n_per_period.items():
        pool = np.flatnonzero((periods == period) & ~already)
        n = min(spec.capacity.random_checks(n), len(pool))
        if n:
            rng = np.random.default_rng(random_check_seed(f"{spec.name}/{period}"))
            chosen[rng.choice(pool, n, replace=False)] = True
    return chosen


def _checked(attribution: Attribution, scorer: str) -> Attribution:
    error = attribution.max_additivity_error()
    if error > ADDITIVITY_TOLERANCE:
        raise ExplanationError(
            f"the {scorer} explanation does not add up to its output (off by {error:.2e})"
        )
    return attribution


def score_rows(
    model: TableRiskModel,
    rows: pd.DataFrame,
    X: pd.DataFrame,
    periods: np.ndarray,
    spec: TableSpecFile,
    identity: dict[str, str],
    n_reasons: int = 3,
    lang: str = "en",
) -> ScoredTable:
    """Risk, rank within the period, flags, reasons and explanations for `rows`.

    Args:
        model: the registered table model.
        rows: the checked table rows to score (id, time, amount columns used).
        X: their model inputs (same index).
        periods: each row's period.
        spec: the table spec (capacity, names).
        identity: model_name, model_version and run_id, copied onto every row.
        n_reasons: reasons per flagged row.
        lang: the language of the reasons (the spec's own column names stay as they are).
    """
    parts = model.components(X)
    risk = parts["risk_score"].to_numpy()
    n = len(rows)
    rank = np.zeros(n, dtype=np.int64)
    by_capacity = np.zeros(n, dtype=bool)
    sizes: dict[str, int] = {}
    for period, index in pd.Series(np.arange(n)).groupby(periods, sort=True):
        at = index.to_numpy()
        order = np.argsort(-risk[at], kind="stable")
        rank[at[order]] = np.arange(1, len(at) + 1)
        by_capacity[at[top_k_mask(risk[at], spec.capacity.k(len(at)))]] = True
        sizes[str(period)] = len(at)
    by_random = _random_checks(periods, by_capacity, spec, sizes)
    flagged = by_capacity | by_random
    why = np.where(by_capacity, WHY_CAPACITY, np.where(by_random, WHY_RANDOM, ""))

    matrix = model.matrix(X)
    flagged_X = matrix.loc[flagged]
    attributions = {
        "isolation_forest": _checked(
            explain(model.isolation_forest, flagged_X, method="exact"), "isolation_forest"
        )
    }
    if model.lightgbm is not None:
        attributions["lightgbm"] = _checked(
            explain(model.lightgbm, flagged_X, method="exact"), "lightgbm"
        )
    combined = combine_contributions(
        {name: a.values for name, a in attributions.items()}, model.weights
    )
    reasons = pd.Series("", index=rows.index, dtype=object)
    values = flagged_X.to_numpy()
    contributions = combined.to_numpy()
    columns = list(combined.columns)
    descriptions = {**model.descriptions, **history_feature_descriptions(spec, lang)}
    for i, index in enumerate(flagged_X.index):
        top = np.argsort(-contributions[i], kind="stable")[:n_reasons]
        lines = [
            reason_text(
                descriptions.get(columns[j], columns[j]),
                float(values[i, j]),
                model.typical.get(columns[j], float("nan")),
                lang,
            )
            for j in top
            if contributions[i, j] > 0
        ]
        reasons[index] = "; ".join(lines) or text("table.no_single_reason", lang)

    risk_list = pd.DataFrame(
        {
            spec.id: rows[spec.id].astype("str").to_numpy(),
            "period": periods,
        }
    )
    if spec.time:
        risk_list[spec.time] = rows[spec.time].to_numpy()
    if spec.amount:
        risk_list[spec.amount] = rows[spec.amount].to_numpy()
    risk_list["status"] = "scored"
    risk_list["risk_score"] = risk
    risk_list["rank"] = pd.array(rank, dtype="Int64")  # empty for rows held at the door
    risk_list["flagged"] = flagged
    risk_list["why_flagged"] = why
    risk_list["reasons"] = reasons.to_numpy()
    risk_list["isolation_forest_score"] = parts["isolation_forest_score"].to_numpy()
    risk_list["lightgbm_score"] = parts["lightgbm_score"].to_numpy()
    for key in ("model_name", "model_version", "run_id"):
        risk_list[key] = identity[key]
    risk_list = risk_list.sort_values(["period", "rank"], kind="stable").reset_index(drop=True)
    risk_list_schema(spec.id).validate(risk_list)

    ids = rows[spec.id].astype("str")
    long_parts = []
    for name, attribution in attributions.items():
        frame = attribution.values.stack().rename("contribution").reset_index()
        frame.columns = ["row", "feature", "contribution"]
        frame["value"] = flagged_X.stack().to_numpy()
        frame.insert(0, spec.id, ids.loc[frame["row"]].to_numpy())
        frame.insert(1, "scorer", name)
        frame["base_value"] = attribution.base_value
        frame["output"] = np.repeat(attribution.output, attribution.values.shape[1])
        frame["output_name"] = attribution.output_name
        long_parts.append(frame.drop(columns="row"))
    explanations = pd.concat(long_parts, ignore_index=True) if long_parts else pd.DataFrame()
    counts = {
        "scored": n,
        "flagged": int(flagged.sum()),
        "flagged_by_capacity": int(by_capacity.sum()),
        "random_checks": int(by_random.sum()),
        "periods": len(sizes),
    }
    return ScoredTable(risk_list=risk_list, explanations=explanations, counts=counts)
