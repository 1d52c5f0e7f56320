"""Report sections for a month unlike the ones tillit was built on: patterns, cases, bounds.

Kept apart from report.py so the page's main layout stays one module; these sections
come first on the page (what the month looks like, which providers to review as one
case) and last (the per-provider appendix of flagged invoices shown without details).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any, cast

import pandas as pd

from tillit.review.triage import pattern_sentence

_WORDS = {
    "en": {
        "patterns": "Patterns this month (not findings)",
        "cases": "Review as one case per provider",
        "case": "provider {p}: {n} flagged invoices, {sek} SEK ({share:.0%} of the flagged); "
        "findings: {findings}; review as one case",
        "no_findings": "none (ranked by risk)",
        "bound": "{n} more invoices have a hard finding but are beyond the bound of {b} "
        "findings flagged beyond the capacity ({sek} SEK): they are listed in risk_list.csv "
        "with the finding and 'finding beyond the bound (not flagged)'.",
        "appendix": "Appendix: flagged invoices shown without details, per provider",
        "appendix_text": "Details and charts are shown for the first {n} flagged invoices; "
        "these are in risk_list.parquet / risk_list.csv and explanations.parquet.",
        "provider": "Provider",
        "invoices": "Invoices",
        "amount": "Amount (SEK)",
        "ids": "Invoices (by rank)",
    },
    "sv": {
        "patterns": "Mönster denna månad (inte fynd)",
        "cases": "Granska som ett ärende per utförare",
        "case": "utförare {p}: {n} flaggade fakturor, {sek} kr ({share:.0%} av de flaggade); "
        "fynd: {findings}; granska som ett ärende",
        "no_findings": "inga (rangordnade efter risk)",
        "bound": "{n} fakturor till har ett fynd men ligger utanför gränsen på {b} fynd "
        "utöver kapaciteten ({sek} kr): de finns i risk_list.csv med fyndet och "
        "'finding beyond the bound (not flagged)'.",
        "appendix": "Bilaga: flaggade fakturor utan detaljer, per utförare",
        "appendix_text": "Detaljer och diagram visas för de första {n} flaggade fakturorna; "
        "dessa finns i risk_list.parquet / risk_list.csv och explanations.parquet.",
        "provider": "Utförare",
        "invoices": "Fakturor",
        "amount": "Belopp (kr)",
        "ids": "Fakturor (i rangordning)",
    },
}


def _money(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def opening_sections(summary: Mapping[str, Any], language: str) -> list[str]:
    """Patterns stated in words, the bound on findings, and the cases per provider."""
    w = _WORDS.get(language, _WORDS["en"])
    html: list[str] = []
    patterns = cast("list[dict[str, object]]", summary.get("patterns") or [])
    if patterns:
        html.append(f"<h2>{escape(w['patterns'])}</h2><ul>")
        html += [f"<li>{escape(pattern_sentence(p, language))}</li>" for p in patterns]
        html.append("</ul>")
    beyond = int(summary.get("findings_beyond_bound", 0) or 0)
    if beyond:
        html.append(
            "<p>"
            + escape(
                w["bound"].format(
                    n=beyond,
                    b=summary.get("findings_bound", 0),
                    sek=_money(float(summary.get("amount_findings_beyond_bound_sek", 0.0))),
                )
            )
            + "</p>"
        )
    cases = cast("list[dict[str, Any]]", summary.get("cases") or [])
    if cases:
        html.append(f"<h2>{escape(w['cases'])}</h2><ul>")
        for case in cases:
            found = case["findings"]
            text = ", ".join(f"{code} ({n})" for code, n in found.items()) or w["no_findings"]
            line = w["case"].format(
                p=case["provider_id"],
                n=case["flagged_invoices"],
                sek=_money(float(case["amount_sek"])),
                share=float(case["share_of_flagged"]),
                findings=text,
            )
            provider = escape(str(case["provider_id"]))
            head, _, rest = escape(line).partition(provider)
            html.append(f"<li>{head}<a href='#provider-{provider}'>{provider}</a>{rest}</li>")
        html.append("</ul>")
    return html


def appendix(rest: pd.DataFrame, detailed: int, language: str) -> list[str]:
    """One row per provider for the flagged invoices shown without details."""
    if rest.empty:
        return []
    w = _WORDS.get(language, _WORDS["en"])
    rest = rest.sort_values("rank", kind="stable")
    grouped = rest.groupby("provider_id", sort=False)
    rows = []
    for provider_id, part in grouped:
        ids = part["invoice_id"].astype("str").tolist()
        shown = ", ".join(ids[:12]) + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")
        rows.append(
            f"<tr><td>{escape(str(provider_id))}</td><td class='num'>{len(part)}</td>"
            f"<td class='num'>{_money(float(part['amount_sek'].sum()))}</td>"
            f"<td>{escape(shown)}</td></tr>"
        )
    return [
        f"<h2>{escape(w['appendix'])}</h2><p>{escape(w['appendix_text'].format(n=detailed))}</p>",
        "<table><tr>"
        + "".join(f"<th>{escape(w[c])}</th>" for c in ("provider", "invoices", "amount", "ids"))
        + "</tr>"
        + "".join(rows)
        + "</table>",
    ]
