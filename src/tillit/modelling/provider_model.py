"""Provider risk: which providers to look into this month, from their invoices and their register.

A provider-month is described by evidence, each item a number in [0, 1]:

- from its invoices that month, scored by the invoice model: the share of its
  invoices that are high-risk, the share of its money on them, the mean invoice
  risk, the share with a hard finding, and the rise of the high-risk share
  against its own previous months;
- from the register at the end of the month (`tillit.features.providers`): board
  persons who sat on a sanctioned or terminated company, tax debts, F-skatt or
  employer registration revoked, sanctions, contract warnings, complaints,
  inspection remarks, board and owner changes, fast client growth, clients taken
  over from terminated providers, a young company; and (contract v1.3) an address,
  bank account, phone, e-mail domain or person shared with a sanctioned or
  terminated company, found by linking the registers (`tillit.data.linkage`).

Two ways to turn evidence into a risk, with the same inputs:

- `weighted` (default): the weighted mean of the evidence, weights set by hand and
  written below. Every provider's risk is the sum of its reasons' shares, so the
  page can say exactly why; applicants (no invoices) get the register part alone.
- `logistic`: a logistic regression on the same evidence, fitted on earlier
  provider-months labelled irregular or not (simulated truth or audit outcomes).

`tillit train` evaluates both on the held-out month and registers the configured
one; the README says which won and by how much. The risk ranks; it is not a probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import ProviderConfig
from tillit.features.catalog import PROVIDER_EVENT_COUNTS
from tillit.features.providers import SHARED_FACTS_COLUMN

# Evidence and its weight in the weighted score. Invoice evidence first.
INVOICE_WEIGHTS: dict[str, float] = {
    "high_risk_invoice_share": 3.0,
    "high_risk_amount_share": 2.0,
    "mean_invoice_risk": 1.0,
    "hard_finding_share": 1.0,
    "high_risk_share_rise": 0.5,
}
REGISTER_WEIGHTS: dict[str, float] = {
    "linked_to_sanctioned_or_terminated": 3.0,
    "tax_debt": 1.0,
    "f_tax_revoked": 1.0,
    "employer_registration_revoked": 0.5,
    "sanctioned": 1.0,
    "contract_warnings": 1.0,
    "complaints": 0.5,
    "inspection_remarks": 0.5,
    "board_or_owner_changes": 0.5,
    "fast_client_growth": 0.5,
    "clients_from_terminated_providers": 1.0,
    "young_company": 0.5,
    # Contract v1.3: an address, bank account, phone, e-mail domain or person (under another
    # id) shared with a sanctioned or terminated company, by match probability (`tillit link`).
    "shares_facts_with_sanctioned_or_terminated": 3.0,
}
# The match probability at which the shared-facts evidence is full.
SHARED_FACTS_FULL = 0.5
EVIDENCE = tuple(INVOICE_WEIGHTS) + tuple(REGISTER_WEIGHTS)
# Register measure keys, in the order of `features.providers.register_columns`.
REGISTER_KEYS = (
    "tax_debt_sek",
    "f_tax_revoked_window",
    "f_tax_revoked_now",
    *PROVIDER_EVENT_COUNTS,
    "linked_persons",
    "client_growth",
    "taken_over_share",
    "age_years",
    "approval_age_years",
)
MONTH_COLUMNS = (
    "n_invoices",
    "amount_sek",
    "n_high_risk",
    "high_risk_amount_sek",
    "n_hard_finding",
    "high_risk_invoice_share",
    "high_risk_amount_share",
    "mean_invoice_risk",
    "hard_finding_share",
    "high_risk_share_before",
    "high_risk_share_rise",
    "amount_in_dispute_sek",
)


def _month_number(period: str) -> int:
    year, month = period.split("-")
    return int(year) * 12 + int(month) - 1


def provider_months(
    invoices: pd.DataFrame,
    profile: pd.DataFrame,
    periods: Sequence[str],
    config: ProviderConfig,
) -> pd.DataFrame:
    """One row per provider and period: billing providers and applicants, invoice part and register.

    Args:
        invoices: one row per scored invoice of the periods and the `trend_months`
            before them: invoice_id, provider_id, period, amount_sek, risk_score,
            has_hard_finding.
        profile: `RegisterProfile.profile` of the periods.
        periods: the months to describe.
        config: the high-risk threshold and the trend window.
    """
    inv = invoices.assign(
        high=invoices["risk_score"].to_numpy() >= config.high_risk_invoice_score,
        finding=invoices["has_hard_finding"].astype(bool).to_numpy(),
    )
    inv["high_amount"] = np.where(inv["high"], inv["amount_sek"], 0.0)
    if "amount_in_dispute_sek" not in inv:
        inv["amount_in_dispute_sek"] = 0.0
    per = (
        inv.groupby(["provider_id", "period"], sort=True)
        .agg(
            n_invoices=("invoice_id", "size"),
            amount_sek=("amount_sek", "sum"),
            n_high_risk=("high", "sum"),
            high_risk_amount_sek=("high_amount", "sum"),
            n_hard_finding=("finding", "sum"),
            mean_invoice_risk=("risk_score", "mean"),
            amount_in_dispute_sek=("amount_in_dispute_sek", "sum"),
        )
        .reset_index()
    )
    per["high_risk_invoice_share"] = per["n_high_risk"] / per["n_invoices"]
    per["high_risk_amount_share"] = np.where(
        per["amount_sek"] > 0, per["high_risk_amount_sek"] / per["amount_sek"].clip(lower=1e-9), 0.0
    )
    per["hard_finding_share"] = per["n_hard_finding"] / per["n_invoices"]
    per["m"] = [_month_number(p) for p in per["period"]]
    pairs = per[["provider_id", "m"]].merge(
        per[["provider_id", "m", "high_risk_invoice_share"]], on="provider_id", suffixes=("", "_e")
    )
    gap = pairs["m"] - pairs["m_e"]
    pairs = pairs[(gap > 0) & (gap <= config.trend_months)]
    before = pairs.groupby(["provider_id", "m"])["high_risk_invoice_share"].mean()
    per = per.merge(
        before.rename("high_risk_share_before").reset_index(), on=["provider_id", "m"], how="left"
    ).drop(columns="m")
    per["high_risk_share_rise"] = (
        per["high_risk_invoice_share"] - per["high_risk_share_before"]
    ).fillna(0.0)
    target = profile[profile["period"].isin(list(periods))]
    months = target.merge(per, on=["provider_id", "period"], how="left")
    for column in MONTH_COLUMNS:
        if column != "high_risk_share_before":
            months[column] = months[column].astype("float64").fillna(0.0)
    months["active"] = months["n_invoices"] > 0
    months = months[months["active"] | months["is_applicant"]]
    return months.sort_values(["period", "provider_id"], kind="stable").reset_index(drop=True)


def _sat(values: np.ndarray, full: float) -> np.ndarray:
    """0 at 0, 1 at `full` and beyond: a count that says more up to a point."""
    return np.clip(np.asarray(values, dtype="float64") / full, 0.0, 1.0)


def evidence(months: pd.DataFrame, register_columns: Sequence[str]) -> pd.DataFrame:
    """Each item of evidence in [0, 1], one row per provider-month."""
    reg = dict(zip(REGISTER_KEYS, register_columns, strict=True))

    def r(key: str) -> np.ndarray:
        return months[reg[key]].astype("float64").fillna(0.0).to_numpy()

    e = pd.DataFrame(index=months.index)
    e["high_risk_invoice_share"] = months["high_risk_invoice_share"].to_numpy()
    e["high_risk_amount_share"] = months["high_risk_amount_share"].to_numpy()
    e["mean_invoice_risk"] = months["mean_invoice_risk"].to_numpy()
    e["hard_finding_share"] = _sat(months["hard_finding_share"].to_numpy(), 0.5)
    e["high_risk_share_rise"] = _sat(months["high_risk_share_rise"].to_numpy(), 0.5)
    e["linked_to_sanctioned_or_terminated"] = _sat(r("linked_persons"), 1.0)
    e["tax_debt"] = _sat(r("tax_debt_sek"), 100_000.0)
    e["f_tax_revoked"] = np.maximum(r("f_tax_revoked_now"), _sat(r("f_tax_revoked_window"), 2.0))
    e["employer_registration_revoked"] = _sat(r("employer_registration_revoked"), 1.0)
    e["sanctioned"] = _sat(r("sanctions"), 1.0)
    e["contract_warnings"] = _sat(r("contract_warnings"), 2.0)
    e["complaints"] = _sat(r("complaints"), 4.0)
    e["inspection_remarks"] = _sat(r("inspection_remarks"), 2.0)
    e["board_or_owner_changes"] = _sat(r("board_changes") + r("owner_changes"), 3.0)
    e["fast_client_growth"] = _sat(r("client_growth") - 1.5, 1.5)
    e["clients_from_terminated_providers"] = _sat(r("taken_over_share"), 0.5)
    e["young_company"] = _sat(2.0 - r("age_years"), 2.0)
    shared = months.get(SHARED_FACTS_COLUMN, pd.Series(0.0, index=months.index))
    e["shares_facts_with_sanctioned_or_terminated"] = _sat(
        shared.astype("float64").fillna(0.0).to_numpy(), SHARED_FACTS_FULL
    )
    return e.loc[:, list(EVIDENCE)]


@dataclass
class ProviderRiskModel:
    """How a provider-month's evidence becomes its risk; what `tillit train` registers."""

    method: str
    register_columns: tuple[str, ...]
    high_risk_invoice_score: float
    trend_months: int
    trained_periods: tuple[str, ...]
    contract_version: str
    weights: dict[str, float] = field(
        default_factory=lambda: {**INVOICE_WEIGHTS, **REGISTER_WEIGHTS}
    )
    logistic_: Any = field(default=None, repr=False)

    @property
    def evidence_names(self) -> list[str]:
        """The evidence this model weighs: a model registered before an item existed skips it."""
        return [name for name in EVIDENCE if name in self.weights]

    def evidence(self, months: pd.DataFrame) -> pd.DataFrame:
        return evidence(months, self.register_columns).loc[:, self.evidence_names]

    def contributions(self, months: pd.DataFrame) -> pd.DataFrame:
        """Each evidence item's share of the weighted score; a row sums to that score.

        Applicants have no invoices: their score is the register part alone, so the
        weights are those of the register evidence.
        """
        e = self.evidence(months)
        names = self.evidence_names
        applicant = months["is_applicant"].to_numpy(bool) & (months["n_invoices"].to_numpy() == 0)
        weights = np.array([self.weights[name] for name in names])
        register_only = np.array([name in REGISTER_WEIGHTS for name in names], dtype=float)
        full = e.to_numpy() * weights / weights.sum()
        part = e.to_numpy() * weights * register_only / (weights * register_only).sum()
        return pd.DataFrame(
            np.where(applicant[:, None], part, full), index=months.index, columns=names
        )

    def reason_contributions(self, months: pd.DataFrame) -> pd.DataFrame:
        """How much each evidence item raises this provider's risk, for the reasons.

        Weighted: its share of the score. Logistic: its term of the linear predictor
        (coefficient times the standardised value), above what a provider without
        that evidence gets; applicants always by the weighted register part.
        """
        shares = self.contributions(months)
        if self.method != "logistic" or self.logistic_ is None:
            return shares
        scaler, regression = self.logistic_[0], self.logistic_[-1]
        e = self.evidence(months).to_numpy()
        terms = regression.coef_[0] * e / scaler.scale_
        applicant = months["is_applicant"].to_numpy(bool) & (months["n_invoices"].to_numpy() == 0)
        return pd.DataFrame(
            np.where(applicant[:, None], shares.to_numpy(), terms),
            index=months.index,
            columns=self.evidence_names,
        )

    def weighted_score(self, months: pd.DataFrame) -> np.ndarray:
        return self.contributions(months).sum(axis=1).to_numpy()

    def risk(self, months: pd.DataFrame) -> np.ndarray:
        """Risk in [0, 1], higher = look first; applicants always by the weighted register part."""
        weighted = self.weighted_score(months)
        if self.method != "logistic" or self.logistic_ is None:
            return np.round(weighted, 12)
        applicant = months["is_applicant"].to_numpy(bool) & (months["n_invoices"].to_numpy() == 0)
        fitted = self.logistic_.predict_proba(self.evidence(months).to_numpy())[:, 1]
        return np.round(np.where(applicant, weighted, fitted), 12)


# How the page orders providers (the ranking rule; the model's risk is not changed by it).
# What the invoice review found: invoices with a hard finding, full at this many...
FINDINGS_FULL = 5.0
# ... and money in dispute (review/dispute.py), full at this many SEK.
DISPUTE_FULL_SEK = 50_000.0
# The model's share of the blend within a group; the invoice side has the rest.
MODEL_SHARE = 0.5


# The register's evidence that counts as found on the page, like an invoice's hard finding.
REGISTER_FINDINGS = (
    "linked_to_sanctioned_or_terminated",
    "shares_facts_with_sanctioned_or_terminated",
)


def register_findings(months: pd.DataFrame, register_columns: Sequence[str]) -> pd.DataFrame:
    """Per provider-month, in [0, 1]: a current board person who also led a sanctioned or
    terminated company, and contact facts or a person shared with such a
    company at the evidence floor (the pair the page shows). > 0: found in the register."""
    return evidence(months, register_columns).loc[:, list(REGISTER_FINDINGS)]


def invoice_side_priority(
    months: pd.DataFrame, model_risk: np.ndarray, in_register: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The page's order: (group, priority in [0, 1]), from the model's risk and what was found.

    Why: the provider model learns from few labelled months and can rank a provider low
    whose invoices the same month's review found billing after death on. The auditors'
    two pages must tell one story, so what was found decides the group and the model
    orders within it; the model's own risk stays as it is (`model_risk`). A phoenix bills
    cleanly at first: what is found on it is in the register (`in_register`, the
    strongest of `register_findings` per row); without it one finding on one of 400
    invoices outranks the successor of a sanctioned company.

    Group 2: the provider opens the month's report as a case (`is_case`); group 1: at
    least one invoice with a hard finding, or found in the register (`in_register` > 0);
    group 0: nothing found. Within a group the priority blends the model's risk
    (MODEL_SHARE) with what was found: the invoice side (half invoices with a finding,
    full at FINDINGS_FULL, half money in dispute, full at DISPUTE_FULL_SEK) or the
    register's finding when that is stronger. Priority = (group + blend) / 3, so it
    orders like the groups. Applicants (no invoices) keep the model's register risk.
    """
    risk = np.asarray(model_risk, dtype="float64")
    findings = months["n_hard_finding"].astype("float64").fillna(0.0).to_numpy()
    dispute = months["amount_in_dispute_sek"].astype("float64").fillna(0.0).to_numpy()
    register = (
        np.zeros(len(months))
        if in_register is None
        else np.clip(np.asarray(in_register, dtype="float64"), 0.0, 1.0)
    )
    is_case = months.get("is_case", pd.Series(False, index=months.index))
    case = is_case.astype(bool).to_numpy()
    group = np.where(case, 2, np.where((findings > 0) | (register > 0), 1, 0)).astype("int64")
    on_invoices = 0.5 * _sat(findings, FINDINGS_FULL) + 0.5 * _sat(dispute, DISPUTE_FULL_SEK)
    found = np.maximum(on_invoices, register)
    blend = MODEL_SHARE * risk + (1.0 - MODEL_SHARE) * found
    priority = (group + blend) / 3.0
    applicant = months["n_invoices"].to_numpy() == 0
    return np.where(applicant, 0, group), np.round(np.where(applicant, risk, priority), 12)


def fit_logistic(e: pd.DataFrame, labels: np.ndarray, seed: int = 0) -> Any:
    """A balanced, standardised logistic regression on the evidence (the data-driven alternative)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed),
    )
    model.fit(e.to_numpy(), labels.astype("int64"))
    return model


def single_rule_scores(months: pd.DataFrame, register_columns: Sequence[str]) -> pd.DataFrame:
    """Each register measure alone as a ranking: the one-line rules the model must beat."""
    reg = dict(zip(REGISTER_KEYS, register_columns, strict=True))
    out = pd.DataFrame(index=months.index)
    for key in REGISTER_KEYS:
        values = months[reg[key]].astype("float64").fillna(0.0).to_numpy()
        # Younger is riskier for the age measures.
        out[f"rule_{key}"] = -values if key in ("age_years", "approval_age_years") else values
    return out


def labels_from_reviews(invoices: pd.DataFrame, review_labels: pd.DataFrame) -> pd.DataFrame:
    """Provider-month labels from audit outcomes: irregular when most of its reviews were confirmed.

    Months without a review have no label. Biased by how reviews were picked.
    """
    reviewed = invoices[["invoice_id", "provider_id", "period"]].merge(
        review_labels[["invoice_id", "label"]], on="invoice_id"
    )
    grouped = reviewed.groupby(["provider_id", "period"])["label"].mean().reset_index()
    grouped["irregular"] = grouped["label"] > 0.5
    return grouped[["provider_id", "period", "irregular"]]


@dataclass(frozen=True)
class ProviderTraining:
    """The provider model to register and how it ranked the held-out month.

    `metrics` holds, for the held-out month's active providers, the metrics of
    each ranking (`weighted_*`, `logistic_*`, every single register rule
    `rule_<measure>_*`, the best rule again as `rule_best_*`) and of the
    registered one as `combined_*`, so promotion compares like with like.
    """

    model: ProviderRiskModel
    eval_period: str
    basis: str
    k: int
    metrics: dict[str, float]
    best_rule: str
    scored: pd.DataFrame = field(repr=False)
    label_counts: dict[str, int] = field(default_factory=dict)


def train_provider_model(
    months: pd.DataFrame,
    eval_period: str,
    config: ProviderConfig,
    register_columns: Sequence[str],
    contract_version: str,
    basis: str,
    seed: int = 0,
) -> ProviderTraining:
    """Judge both methods on the held-out month, then fit the configured one on every month.

    Args:
        months: `provider_months` of the training and held-out months with a column
            `irregular` (1, 0, or NaN where nobody knows).
        eval_period: the held-out month; the logistic regression learns from earlier months.
        basis: "truth" or "audit_outcomes", for the model card.
    """
    from tillit.errors import TillitError
    from tillit.modelling.evaluate import ranking_metrics

    active = months[months["n_invoices"] > 0]
    labelled = active[active["irregular"].notna()]
    before = labelled[labelled["period"] < eval_period]
    held = labelled[labelled["period"] == eval_period].reset_index(drop=True)
    y_held = held["irregular"].astype("int64").to_numpy()
    if held.empty or len(np.unique(y_held)) < 2:
        raise TillitError(
            f"the provider model needs irregular and regular providers in {eval_period} to be judged"
        )
    model = ProviderRiskModel(
        method="weighted",
        register_columns=tuple(register_columns),
        high_risk_invoice_score=config.high_risk_invoice_score,
        trend_months=config.trend_months,
        trained_periods=tuple(sorted(months["period"].unique())),
        contract_version=contract_version,
    )
    scored = held[["provider_id", "period", "legal_form", "n_clients", "provider_age_years"]].copy()
    scored["label"] = y_held
    scored["weighted"] = model.risk(held)
    y_before = before["irregular"].astype("int64").to_numpy()
    logistic = None
    if len(np.unique(y_before)) == 2:
        logistic = fit_logistic(model.evidence(before), y_before, seed)
        scored["logistic"] = logistic.predict_proba(model.evidence(held).to_numpy())[:, 1]
    rules = single_rule_scores(held, register_columns)
    k = min(config.review_count, len(held))
    metrics: dict[str, float] = {}
    rankings = ["weighted"] + (["logistic"] if logistic is not None else [])
    for name in rankings + list(rules.columns):
        values = scored[name] if name in scored else rules[name]
        for metric, value in ranking_metrics(y_held, values.to_numpy(), k).items():
            metrics[f"{name}_{metric}"] = float(value)
    rule_ap = {c: metrics[f"{c}_average_precision"] for c in rules.columns}
    best_rule = max(rule_ap, key=lambda c: (np.nan_to_num(rule_ap[c], nan=-1.0), c))
    for metric in ("precision_at_k", "recall_at_k", "average_precision", "roc_auc"):
        metrics[f"rule_best_{metric}"] = metrics[f"{best_rule}_{metric}"]
    if config.method == "auto":
        # The data-driven model only when labels are not thin and it wins on the held-out month.
        enough = int(y_before.sum()) >= config.min_irregular_labels
        better = logistic is not None and (
            metrics["logistic_average_precision"] > metrics["weighted_average_precision"]
        )
        chosen = "logistic" if enough and better else "weighted"
    else:
        chosen = config.method if config.method in rankings else "weighted"
    for metric in ("precision_at_k", "recall_at_k", "average_precision", "roc_auc", "n", "k"):
        metrics[f"combined_{metric}"] = metrics[f"{chosen}_{metric}"]
    metrics["n_positive"] = float(y_held.sum())
    scored["risk_score"] = scored[chosen]
    if chosen == "logistic":
        y_all = labelled["irregular"].astype("int64").to_numpy()
        model = ProviderRiskModel(
            method="logistic",
            register_columns=model.register_columns,
            high_risk_invoice_score=model.high_risk_invoice_score,
            trend_months=model.trend_months,
            trained_periods=model.trained_periods,
            contract_version=contract_version,
            logistic_=fit_logistic(model.evidence(labelled), y_all, seed),
        )
    counts = {
        "provider_months": len(active),
        "labelled": len(labelled),
        "irregular": int(labelled["irregular"].astype(bool).sum()),
    }
    return ProviderTraining(
        model=model,
        eval_period=eval_period,
        basis=basis,
        k=k,
        metrics=metrics,
        best_rule=best_rule.removeprefix("rule_"),
        scored=scored,
        label_counts=counts,
    )


__all__ = [
    "EVIDENCE",
    "INVOICE_WEIGHTS",
    "REGISTER_FINDINGS",
    "REGISTER_KEYS",
    "REGISTER_WEIGHTS",
    "ProviderRiskModel",
    "ProviderTraining",
    "evidence",
    "fit_logistic",
    "invoice_side_priority",
    "labels_from_reviews",
    "provider_months",
    "register_findings",
    "single_rule_scores",
    "train_provider_model",
]
