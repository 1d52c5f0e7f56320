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

from tillit.i18n import count, fill, listing, money, number, share, words
from tillit.review.triage import pattern_sentence


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
                fill(
                    w["bound"],
                    language,
                    n=beyond,
                    b=summary.get("findings_bound", 0),
                    sek=money(
                        float(summary.get("amount_findings_beyond_bound_sek", 0.0)), language
                    ),
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
            line = fill(
                w["case"],
                language,
                p=case["provider_id"],
                flagged=count(int(case["flagged_invoices"]), "report.flagged_n", language),
                sek=money(float(case["amount_sek"]), language),
                dispute=money(float(case.get("amount_in_dispute_sek", 0.0)), language),
                share=share(float(case.get("share_of_flagged_amount", 0.0)), language),
                findings=text,
            )
            provider = escape(str(case["provider_id"]))
            head, _, rest = escape(line).partition(provider)
            html.append(f"<li>{head}<a href='#provider-{provider}'>{provider}</a>{rest}</li>")
        html.append("</ul>")
    return html


def appendix(
    per_provider: pd.DataFrame,
    rest: pd.DataFrame,
    detailed: int,
    language: str,
    with_section: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """One row per provider with an invoice on the list: its counts and where its flagged are.

    A provider without a section of its own above gets its anchor `provider-<id>` here,
    so every link from the provider page lands on the provider's counts.
    """
    # Providers whose only invoices are quarantined are in the quarantine section.
    per_provider = per_provider[per_provider["invoices"] > 0]
    if per_provider.empty:
        return []
    w = words("case", language)
    order = per_provider.assign(
        _rank=per_provider["best_rank"].astype("float64").fillna(float("inf"))
    ).sort_values(["_rank", "amount_total_sek", "provider_id"], ascending=[True, False, True])
    rest = rest.sort_values("rank", kind="stable")
    rest_ids = {
        str(provider_id): part["invoice_id"].astype("str").tolist()
        for provider_id, part in rest.groupby("provider_id", sort=False)
    }
    rows = []
    for r in order.itertuples(index=False):
        provider = str(r.provider_id)
        ids = rest_ids.get(provider, [])
        where = listing(ids[:12], len(ids), language)
        if provider in with_section:
            link = f"<a href='#provider-{escape(provider)}'>{escape(w['see_above'])}</a>"
            where = f"{escape(where)}{'; ' if where else ''}{link}"
            anchor = ""
        else:
            where = escape(where)
            anchor = f" id='provider-{escape(provider)}'"
        rows.append(
            f"<tr{anchor}><td>{escape(provider)}</td>"
            f"<td class='num'>{number(r.invoices, language)}</td>"
            f"<td class='num'>{money(r.amount_total_sek, language)}</td>"
            f"<td class='num'>{number(r.flagged_invoices, language)}</td>"
            f"<td class='num'>{number(r.with_finding, language)}</td>"
            f"<td class='num'>{money(r.amount_in_dispute_sek, language)}</td>"
            f"<td>{where}</td></tr>"
        )
    columns = ("provider", "invoices", "amount", "flagged", "with_finding", "in_dispute", "ids")
    numeric = {"invoices", "amount", "flagged", "with_finding", "in_dispute"}
    return [
        f"<h2 id='appendix'>{escape(w['appendix'])}</h2>"
        f"<p>{escape(fill(w['appendix_text'], language, n=detailed))}</p>",
        "<table><thead><tr>"
        + "".join(f"<th{' class=num' if c in numeric else ''}>{escape(w[c])}</th>" for c in columns)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>",
    ]
