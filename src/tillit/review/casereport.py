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

from tillit.i18n import listing, words
from tillit.review.triage import pattern_sentence


def _money(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def opening_sections(summary: Mapping[str, Any], language: str) -> list[str]:
    """Patterns stated in words, the bound on findings, and the cases per provider."""
    w = words("case", language)
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
            # Finding types in the report's words (their pattern names), not their codes.
            short = words("pattern", language)
            text = (
                ", ".join(f"{short.get(code, code)} ({n})" for code, n in found.items())
                or w["no_findings"]
            )
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
    w = words("case", language)
    rest = rest.sort_values("rank", kind="stable")
    grouped = rest.groupby("provider_id", sort=False)
    rows = []
    for provider_id, part in grouped:
        ids = part["invoice_id"].astype("str").tolist()
        shown = listing(ids[:12], len(ids), language)
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
