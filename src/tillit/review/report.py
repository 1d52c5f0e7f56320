"""The auditors' page: one self-contained HTML file (no network, no scripts), readable printed."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd

from tillit.i18n import table_rules_in, words
from tillit.review.casereport import appendix, opening_sections

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1a1a1a;max-width:1100px}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #ddd}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem;background:#f3f3f3;padding:.3rem .5rem}
.meta{color:#555;font-size:.85rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.6rem .9rem;min-width:150px}
.card b{display:block;font-size:1.35rem}
table{border-collapse:collapse;width:100%;font-size:.85rem} th,td{border:1px solid #ddd;padding:.3rem .45rem;vertical-align:top;text-align:left}
th{background:#fafafa} td.num{text-align:right;white-space:nowrap}
.invoice{border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem;margin:.6rem 0;page-break-inside:avoid;break-inside:avoid}
.invoice .head{display:flex;gap:1.2rem;flex-wrap:wrap;font-size:.9rem}
.tag{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.8rem;margin-right:.3rem;border:1px solid #999}
.tag.finding{background:#fde2e1;border-color:#c0392b} .tag.random{background:#e8f0fe;border-color:#3461c1}
.tag.capacity{background:#fff4d6;border-color:#b7950b} .tag.quarantined{background:#eee}
ul{margin:.3rem 0 .3rem 1.1rem;padding:0} li{margin:.15rem 0}
.finding-list li{color:#8e1f14}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .charts div{flex:1;min-width:300px}
.charts p{font-size:.8rem;margin:.2rem 0;color:#444}
@media print{body{margin:0;max-width:none} h2{page-break-after:avoid} .invoice{border-color:#999}}
"""


def _money(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:,.0f}".replace(",", " ")


_TAG_CLASSES = {
    "capacity": "capacity",
    "hard finding": "finding",
    "random check": "random",
    "list check": "random",
}


def _service(code: object, language: str) -> str:
    return words("service", language).get(str(code), str(code))


def _tags(why: str, language: str = "en") -> str:
    """The why-flagged labels as coloured tags, in the page's language."""
    tags = words("tag", language)
    out = []
    for part in [p.strip() for p in str(why).split(";") if p.strip()]:
        css = _TAG_CLASSES.get(part, "quarantined")
        out.append(f'<span class="tag {css}">{escape(tags.get(part, part))}</span>')
    return "".join(out)


def _bullets(text: str, css: str = "") -> str:
    items = [t.strip() for t in str(text).split(" | ") if t.strip()]
    if not items:
        return ""
    cls = f' class="{css}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def contribution_chart(contributions: pd.Series, width: int = 420, bar_height: int = 16) -> str:
    """An inline SVG bar chart of signed contributions (largest magnitude first)."""
    if contributions.empty:
        return ""
    top = contributions.reindex(contributions.abs().sort_values(ascending=False).index)
    label_width = 230
    scale = max(float(top.abs().max()), 1e-12)
    half = (width - label_width) / 2
    rows = []
    for i, (feature, value) in enumerate(top.items()):
        y = i * (bar_height + 4)
        length = abs(float(value)) / scale * (half - 4)
        x = label_width + half if value >= 0 else label_width + half - length
        color = "#c0392b" if value > 0 else "#3461c1"
        rows.append(
            f'<text x="0" y="{y + bar_height - 4}" font-size="11">{escape(str(feature)[:38])}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(length, 0.5):.1f}" height="{bar_height}" fill="{color}">'
            f"<title>{escape(str(feature))}: {float(value):+.4f}</title></rect>"
        )
    height = len(top) * (bar_height + 4)
    axis = label_width + half
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<line x1="{axis}" y1="0" x2="{axis}" y2="{height}" stroke="#888"/>'
        + "".join(rows)
        + "</svg>"
    )


def render_report(
    risk_list: pd.DataFrame,
    explanations: pd.DataFrame,
    summary: Mapping[str, Any],
    run_info: dict[str, str],
    language: str = "en",
    finding_floor: float = 0.9,
    chart_features: int = 6,
    drift_section: str = "",
    detailed_invoices: int | None = None,
) -> str:
    """The whole HTML page as a string; `drift_section` (HTML) follows the reading guide.

    Only the first `detailed_invoices` flagged invoices (by rank; all when None) get
    details and charts; the rest are listed in a per-provider appendix, so the page
    stays small however many invoices a month flags.
    """
    t = words("report", language)
    flagged = risk_list[risk_list["flagged"] & (risk_list["status"] == "scored")]
    all_flagged = flagged
    if detailed_invoices is not None:
        flagged = flagged.sort_values("rank", kind="stable").head(detailed_invoices)
    held = risk_list[risk_list["status"] == "quarantined"]
    period = str(run_info.get("period", ""))
    cards = [
        (t["received"], f"{summary['invoices_received']:,}".replace(",", " ")),
        (t["scored"], f"{summary['invoices_scored']:,}".replace(",", " ")),
        (t["quarantined"], str(summary["invoices_quarantined"])),
        (t["flagged"], str(summary["flagged"])),
        (
            t["at_stake"],
            _money(float(summary["amount_flagged_sek"])) + t["currency"],
        ),
    ]
    html = [
        "<!DOCTYPE html>",
        f'<html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{escape(t['title'])} – {escape(period)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(t['title'])}</h1>",
        f'<p class="meta">{escape(t["period"])}: <b>{escape(period)}</b> · {escape(t["model"])}: '
        f"{escape(run_info.get('model_name', ''))} v{escape(str(run_info.get('model_version', '')))} "
        f"(run {escape(str(run_info.get('run_id', ''))[:12])}) · config {escape(run_info.get('config_hash', ''))} · "
        f"{escape(t['generated'])} {escape(run_info.get('data_fingerprint', ''))}</p>",
        '<div class="cards">'
        + "".join(
            f'<div class="card">{escape(label)}<b>{escape(value)}</b></div>'
            for label, value in cards
        )
        + "</div>",
        f"<h2>{escape(t['how'])}</h2><p>{t['how_text'].format(k=summary['capacity_k'], floor=finding_floor)}</p>",
    ]
    html += opening_sections(summary, language)
    if "evidence_incomplete" in risk_list and risk_list["evidence_incomplete"].any():
        n_incomplete = int(risk_list["evidence_incomplete"].sum())
        html.append(
            f"<h2>{escape(t['incomplete'])}</h2><p>{escape(t['incomplete_text'].format(n=n_incomplete))}</p>"
        )
    if drift_section:
        html.append(drift_section)
    html.append(f"<h2>{escape(t['first'])}</h2>")
    html.append(_first_table(flagged.head(15), t, language))
    html.append(f"<h2>{escape(t['by_provider'])}</h2>")
    if flagged.empty:
        html.append(f"<p>{escape(t['none'])}</p>")
    providers = (
        flagged.groupby("provider_id")
        .agg(best_rank=("rank", "min"), total=("amount_sek", "sum"), n=("invoice_id", "size"))
        .sort_values(["best_rank"])
    )
    # Each invoice's contributions per scorer, split once rather than filtered per invoice.
    contributions = {
        (str(invoice_id), str(scorer)): part.set_index("feature")["contribution"]
        for (invoice_id, scorer), part in explanations.groupby(["invoice_id", "scorer"], sort=False)
    }
    for provider_id, row in providers.iterrows():
        html.append(
            f'<h3 id="provider-{escape(str(provider_id))}">{escape(t["provider"])} {escape(str(provider_id))} · '
            f"{int(row['n'])} {escape(t['invoices'])} · {escape(t['total'])} {_money(row['total'])}</h3>"
        )
        for _, invoice in flagged[flagged["provider_id"] == provider_id].iterrows():
            html.append(_invoice_block(invoice, contributions, t, chart_features, language))
    rest = all_flagged[~all_flagged["invoice_id"].isin(flagged["invoice_id"])]
    html += appendix(rest, len(flagged), language)
    html.append(f"<h2>{escape(t['held'])}</h2>")
    if held.empty:
        html.append(f"<p>{escape(t['none'])}</p>")
    else:
        html.append(
            "<table><tr>"
            + "".join(
                f"<th>{escape(t[c])}</th>"
                for c in ("invoice", "provider", "client", "amount", "reasons")
            )
            + "</tr>"
            + "".join(
                f"<tr><td>{escape(str(r.invoice_id))}</td><td>{escape(str(r.provider_id))}</td>"
                f"<td>{escape(str(r.client_id))}</td><td class='num'>{_money(r.amount_sek)}</td>"
                f"<td>{escape(str(r.reasons))}</td></tr>"
                for r in held.itertuples()
            )
            + "</table>"
        )
    html.append("</body></html>")
    return "\n".join(html) + "\n"


def _first_table(rows: pd.DataFrame, t: Mapping[str, str], language: str) -> str:
    head = "".join(
        f"<th>{escape(t[c])}</th>"
        for c in ("rank", "invoice", "provider", "service", "amount", "risk", "why")
    )
    body = "".join(
        f"<tr><td class='num'>{int(r.rank)}</td><td><a href='#inv-{escape(str(r.invoice_id))}'>"
        f"{escape(str(r.invoice_id))}</a></td><td>{escape(str(r.provider_id))}</td>"
        f"<td>{escape(_service(r.service_type, language))}</td><td class='num'>{_money(r.amount_sek)}</td>"
        f"<td class='num'>{r.risk_score:.3f}</td><td>{_tags(r.why_flagged, language)}</td></tr>"
        for r in rows.itertuples()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _invoice_block(
    invoice: pd.Series,
    explanations: dict[tuple[str, str], pd.Series],
    t: Mapping[str, str],
    n_features: int,
    language: str,
) -> str:
    invoice_id = str(invoice["invoice_id"])
    charts = []
    for scorer in ("lightgbm", "isolation_forest"):
        top = explanations.get((invoice_id, scorer))
        if top is None or top.empty:
            continue
        top = top.reindex(top.abs().sort_values(ascending=False).index[:n_features])
        charts.append(f"<div><p>{escape(t[scorer])}</p>{contribution_chart(top)}</div>")
    findings = _bullets(invoice["findings"], "finding-list")
    reasons = _bullets(invoice["reasons"])
    return (
        f'<div class="invoice" id="inv-{escape(invoice_id)}"><div class="head">'
        f"<span>{escape(t['rank'])} <b>{int(invoice['rank'])}</b></span>"
        f"<span>{escape(t['invoice'])} <b>{escape(invoice_id)}</b></span>"
        f"<span>{escape(t['client'])} {escape(str(invoice['client_id']))}</span>"
        f"<span>{escape(t['service'])} {escape(_service(invoice['service_type'], language))}</span>"
        f"<span>{escape(t['amount'])} <b>{_money(invoice['amount_sek'])}</b></span>"
        f"<span>{escape(t['risk'])} <b>{invoice['risk_score']:.3f}</b></span>"
        f"<span>{_tags(invoice['why_flagged'], language)}</span></div>"
        + (f"<b>{escape(t['findings'])}</b>{findings}" if findings else "")
        + (f"<b>{escape(t['reasons'])}</b>{reasons}" if reasons else "")
        + (
            f"<p><b>{escape(t['incomplete'])}</b>: "
            f"{escape(table_rules_in(language, str(invoice['quarantine_rules'])))}</p>"
            if bool(invoice.get("evidence_incomplete", False))
            else ""
        )
        + (
            f"<p class='meta'>{escape(t['chart'])}</p><div class='charts'>{''.join(charts)}</div>"
            if charts
            else ""
        )
        + "</div>"
    )
