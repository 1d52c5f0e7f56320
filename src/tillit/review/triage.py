"""A list auditors can work: bounded findings, patterns stated in words, cases per provider.

Why: an auditor with capacity for 5 % of the month cannot use a list that flags
everything. Findings beyond the capacity are flagged only up to a bound, most severe
and most money first; the rest stay on the risk list with their finding but unflagged,
and are counted. A finding type demoted to a pattern is said in words, never dropped
silently. A provider with many flagged invoices is one case to review, not hundreds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tillit.core.risk_list import WHY_BEYOND_BOUND
from tillit.features.catalog import FINDING_CODES
from tillit.i18n import LANGS, check_lang, render_parts, text, words

# Lower = more severe: facts that cannot be honest first, then billing without a basis,
# then mismatches that can be a clerical error.
FINDING_SEVERITY: dict[str, int] = {
    "billing_after_death": 1,
    "visits_after_death": 1,
    "billing_outside_contract": 1,
    "duplicate_invoice": 2,
    "service_without_grant": 2,
    "billed_during_hospital_stay": 2,
    "visits_during_hospital_stay": 2,
    "staff_double_booked": 3,
    "amount_mismatch_tariff": 3,
}

# How a demoted finding type reads as a pattern (a view of tillit.i18n's `pattern.*`).
PATTERN_WORDS: dict[str, dict[str, str]] = {lang: dict(words("pattern", lang)) for lang in LANGS}


def bounded_findings(
    features: pd.DataFrame, has_finding: np.ndarray, already: np.ndarray, bound: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which invoices with a hard finding to flag beyond those already flagged, and which not.

    The invoices with a (non-demoted) finding not already flagged are ranked by the
    severity of their most severe finding, then by amount (largest first), then by
    invoice id; the first `bound` are flagged, the rest are returned as beyond the bound.
    """
    candidates = np.flatnonzero(has_finding & ~already)
    flagged = np.zeros(len(features), dtype=bool)
    beyond = np.zeros(len(features), dtype=bool)
    if candidates.size == 0:
        return flagged, beyond
    severity = np.full(len(features), 9, dtype=np.int64)
    for code, level in FINDING_SEVERITY.items():
        column = f"finding_{code}"
        if column in features:
            fired = features[column].to_numpy(dtype="float64") > 0
            severity = np.where(fired, np.minimum(severity, level), severity)
    amount = features["amount_sek"].to_numpy(dtype="float64")
    ids = features["invoice_id"].astype("str").to_numpy()
    order = candidates[np.lexsort((ids[candidates], -amount[candidates], severity[candidates]))]
    flagged[order[:bound]] = True
    beyond[order[bound:]] = True
    return flagged, beyond


def pattern_records(patterns: pd.DataFrame) -> list[dict[str, object]]:
    """The demoted finding types of a month, as plain records for the summary and report."""
    demoted = patterns[patterns["demoted"]]
    return [
        {
            "finding": str(r.finding),
            "invoices_with_it": int(r.fired),
            "month_share": round(float(r.month_share), 4),
            "history_month_share": None
            if pd.isna(r.history_month_share)
            else round(float(r.history_month_share), 4),
            "why": str(r.why),
            "why_facts": str(getattr(r, "why_facts", "[]")),
        }
        for r in demoted.itertuples()
    ]


def pattern_sentence(record: dict[str, object], language: str = "en") -> str:
    """ "staff overlaps are registered on 82 % of this month's invoices; treated as ..."."""
    code = str(record["finding"])
    name = PATTERN_WORDS[check_lang(language)].get(code, code)
    share = float(record["month_share"])  # type: ignore[arg-type]
    history = record.get("history_month_share")
    past = (
        text("pattern.past", language, history=float(history))  # type: ignore[arg-type]
        if history is not None
        else ""
    )
    return text(
        "pattern.sentence",
        language,
        words=name,
        share=share,
        n=record["invoices_with_it"],
        past=past,
        why=_why(record, language),
    )


def _why(record: dict[str, object], language: str) -> str:
    """Why the finding type was demoted, in `language` (the English text without facts)."""
    facts = json.loads(str(record.get("why_facts") or "[]"))
    if not facts:
        return str(record["why"])
    return "; ".join(render_parts([part], language) for part in facts)


def flagged_per_provider(risk_list: pd.DataFrame) -> pd.DataFrame:
    """Per provider with an invoice on the list: the counts both pages show, from one place.

    Columns: provider_id, invoices, amount_total_sek (scored invoices), flagged_invoices,
    amount_sek (on the flagged), with_finding (flagged invoices with a finding),
    amount_in_dispute_sek (on the flagged), best_rank (of its flagged; NA when none).
    """
    on_list = risk_list.assign(
        scored=risk_list["status"] == "scored",
        hit=risk_list["flagged"] & (risk_list["status"] == "scored"),
    )
    hit = on_list["hit"].to_numpy(bool)
    has_finding = on_list["findings"].fillna("").astype("str").str.len().to_numpy() > 0
    dispute = on_list.get("amount_in_dispute_sek", pd.Series(0.0, index=on_list.index))
    on_list = on_list.assign(
        scored_amount=np.where(on_list["scored"], on_list["amount_sek"].fillna(0.0), 0.0),
        flagged_amount=np.where(hit, on_list["amount_sek"].fillna(0.0), 0.0),
        flagged_finding=hit & has_finding,
        flagged_dispute=np.where(hit, dispute.fillna(0.0).to_numpy(dtype="float64"), 0.0),
        flagged_rank=on_list["rank"].where(hit),
    )
    table = (
        on_list.groupby("provider_id", sort=True)
        .agg(
            invoices=("scored", "sum"),
            amount_total_sek=("scored_amount", "sum"),
            flagged_invoices=("hit", "sum"),
            amount_sek=("flagged_amount", "sum"),
            with_finding=("flagged_finding", "sum"),
            amount_in_dispute_sek=("flagged_dispute", "sum"),
            best_rank=("flagged_rank", "min"),
        )
        .reset_index()
    )
    for column in ("invoices", "flagged_invoices", "with_finding"):
        table[column] = table[column].astype("int64")
    table["provider_id"] = table["provider_id"].astype("str")
    return table


def case_providers(
    per_provider: pd.DataFrame, min_flagged: int, min_share_of_flagged: float = 0.0
) -> set[str]:
    """Providers to review as one case: at least `min_flagged` flagged invoices and that share."""
    total = int(per_provider["flagged_invoices"].sum())
    if total == 0:
        return set()
    enough = max(min_flagged, min_share_of_flagged * total)
    many = per_provider[per_provider["flagged_invoices"] >= enough]
    return set(many["provider_id"].astype("str"))


def provider_cases(
    risk_list: pd.DataFrame,
    features: pd.DataFrame,
    min_flagged: int,
    min_share_of_flagged: float = 0.0,
) -> list[dict[str, object]]:
    """Providers with many flagged invoices: one case each, most money first.

    Many = at least `min_flagged` and at least `min_share_of_flagged` of the month's
    flagged invoices (so a large month does not turn every mid-size provider into a case).

    Each record: provider_id, flagged_invoices, amount_sek, amount_in_dispute_sek,
    share_of_flagged (by count), share_of_flagged_amount (by money), findings
    (invoices per finding type among the flagged, most frequent first), best_rank.
    """
    flagged = risk_list[risk_list["flagged"] & (risk_list["status"] == "scored")]
    if flagged.empty:
        return []
    table = flagged_per_provider(risk_list)
    cases = case_providers(table, min_flagged, min_share_of_flagged)
    table = table[table["provider_id"].isin(cases)]
    table = table.sort_values(["amount_sek", "provider_id"], ascending=[False, True])
    total_amount = float(flagged["amount_sek"].sum())
    codes = [c for c in FINDING_CODES if f"finding_{c}" in features]
    fired = features.set_index("invoice_id")[[f"finding_{c}" for c in codes]] > 0
    records = []
    for r in table.itertuples():
        ids = flagged.loc[flagged["provider_id"] == r.provider_id, "invoice_id"]
        counts = fired.reindex(ids).sum()
        found = sorted(
            ((code, int(counts[f"finding_{code}"])) for code in codes),
            key=lambda item: (-item[1], item[0]),
        )
        records.append(
            {
                "provider_id": str(r.provider_id),
                "flagged_invoices": int(r.flagged_invoices),
                "amount_sek": round(float(r.amount_sek), 2),
                "amount_in_dispute_sek": round(float(r.amount_in_dispute_sek), 2),
                "share_of_flagged": round(int(r.flagged_invoices) / len(flagged), 4),
                "share_of_flagged_amount": round(float(r.amount_sek) / total_amount, 4)
                if total_amount > 0
                else 0.0,
                "findings": {code: n for code, n in found if n},
                "best_rank": int(r.best_rank),
            }
        )
    return records


__all__ = [
    "FINDING_CODES",
    "FINDING_SEVERITY",
    "PATTERN_WORDS",
    "WHY_BEYOND_BOUND",
    "bounded_findings",
    "case_providers",
    "flagged_per_provider",
    "pattern_records",
    "pattern_sentence",
    "provider_cases",
]
