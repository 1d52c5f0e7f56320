"""The auditors' page: one self-contained HTML file (no network, no scripts), readable printed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from tillit.core.html import page
from tillit.features.catalog import feature_catalog, short_description
from tillit.i18n import count, fill, money, number, share, table_rules_in, text, words
from tillit.review.casereport import appendix, opening_sections
from tillit.review.triage import flagged_per_provider

# What each feature means, by name and language (`feature_catalog(config)`).
Descriptions = Mapping[str, Mapping[str, str]]
# Look first and the case list cut a finding or a reason to one line of this many characters.
ONE_LINE = 160


def _money(value: float, language: str = "en") -> str:
    return "–" if pd.isna(value) else money(value, language)


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


def one_line(text: object, limit: int = ONE_LINE) -> str:
    """The first item of a ` | `-joined list, cut to one line (`…` when cut)."""
    first = str(text).split(" | ")[0].strip() if pd.notna(text) else ""
    first = first[:1].upper() + first[1:]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def chart_label(feature: str, language: str, descriptions: Descriptions | None = None) -> str:
    """A feature in words for a chart: its catalog description's first clause."""
    if feature.startswith("finding_"):
        return text(f"finding.{feature.removeprefix('finding_')}", language)
    catalog = descriptions if descriptions is not None else _default_catalog()
    described = catalog.get(feature, {}).get(language)
    return short_description(described) if described else feature


def _default_catalog() -> Descriptions:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = feature_catalog()
    return _CATALOG


_CATALOG: Descriptions | None = None


# Characters of a chart label's line: what fits left of the bars at 11 px.
LABEL_LINE_CHARS = 46


def contribution_chart(
    contributions: pd.Series,
    width: int = 560,
    bar_height: int = 16,
    labels: Mapping[str, str] | None = None,
    language: str = "en",
    values: Mapping[str, float] | None = None,
) -> str:
    """An inline SVG bar chart of signed contributions (largest magnitude first).

    Each bar is labelled in words (`labels`, by feature; the name when missing) and
    carries its contribution as a number, so the chart reads printed in black and white.
    A long label wraps onto up to three lines rather than being cut after a few words:
    two features that begin alike ("billed hours divided by granted hours" over this
    month and over 12 months) must not look the same on paper, where no tooltip shows.
    """
    if contributions.empty:
        return ""
    top = contributions.reindex(contributions.abs().sort_values(ascending=False).index)
    label_width = 320
    line_height = 12
    scale = max(float(top.abs().max()), 1e-12)
    half = (width - label_width) / 2
    rows = []
    y = 0
    for feature, value in top.items():
        length = abs(float(value)) / scale * (half - 40)
        x = label_width + half if value >= 0 else label_width + half - length
        color = "#c0392b" if value > 0 else "#3461c1"
        label = (labels or {}).get(str(feature), str(feature))
        lines = textwrap.wrap(label, LABEL_LINE_CHARS, max_lines=3, placeholder=" …") or [label]
        if values is not None and feature in values:
            # The invoice's own value after the words, never cut off.
            lines[-1] += ": " + number(float(values[feature]), language, 2)
        figure = number(float(value), language, 2)
        figure = f"+{figure}" if float(value) > 0 else figure
        text_x = x + length + 3 if value >= 0 else x - 3
        anchor = "start" if value >= 0 else "end"
        rows.append(
            "".join(
                f'<text x="0" y="{y + bar_height - 4 + n * line_height}" font-size="11">'
                f"{escape(line)}</text>"
                for n, line in enumerate(lines)
            )
            + f'<rect x="{x:.1f}" y="{y}" width="{max(length, 0.5):.1f}" height="{bar_height}" fill="{color}">'
            f"<title>{escape(label)}: {escape(figure)}</title></rect>"
            f'<text x="{text_x:.1f}" y="{y + bar_height - 4}" font-size="10" '
            f'text-anchor="{anchor}">{escape(figure)}</text>'
        )
        y += bar_height + 4 + (len(lines) - 1) * line_height
    height = y
    axis = label_width + half
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img">'
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
    descriptions: Descriptions | None = None,
) -> str:
    """The whole HTML page as a string; `drift_section` (HTML) follows the reading guide.

    Only the first `detailed_invoices` flagged invoices (by rank; all when None) get
    details and charts; the rest are listed in the appendix, which has a row (and an
    anchor `provider-<id>`) for every provider with an invoice on the list, so every
    link from the provider page lands, and says where each provider's flagged invoices are.
    """
    t = words("report", language)
    flagged = risk_list[risk_list["flagged"] & (risk_list["status"] == "scored")]
    all_flagged = flagged
    if detailed_invoices is not None:
        flagged = flagged.sort_values("rank", kind="stable").head(detailed_invoices)
    held = risk_list[risk_list["status"] == "quarantined"]
    period = str(run_info.get("period", ""))
    per_provider = flagged_per_provider(risk_list)
    dispute = float(summary.get("amount_in_dispute_flagged_sek", 0.0) or 0.0)
    flagged_amount = float(summary["amount_flagged_sek"])
    cards = [
        (t["received"], number(summary["invoices_received"], language)),
        (t["scored"], number(summary["invoices_scored"], language)),
        (t["quarantined"], number(summary["invoices_quarantined"], language)),
        (t["flagged"], number(summary["flagged"], language)),
        (t["at_stake"], _money(flagged_amount, language)),
        (t["in_dispute_card"], _money(dispute, language)),
    ]
    dispute_line = text(
        "report.dispute_line",
        language,
        dispute=_money(dispute, language),
        amount=_money(flagged_amount, language),
        flagged=count(int(summary["flagged"]), "report.flagged_n", language),
        share=share(dispute / flagged_amount if flagged_amount > 0 else 0.0, language),
    )
    how = fill(t["how_text"], language, k=summary["capacity_k"], floor=finding_floor)
    html = [
        f"<h1>{escape(t['title'])}</h1>",
        f'<p class="meta">{escape(t["period"])}: <b>{escape(period)}</b> · {escape(t["model"])}: '
        f"{escape(run_info.get('model_name', ''))} v{escape(str(run_info.get('model_version', '')))} "
        f"({escape(t['run'])} {escape(str(run_info.get('run_id', ''))[:12])}) · "
        f"{escape(t['config'])} {escape(run_info.get('config_hash', ''))} · "
        f"{escape(t['generated'])} {escape(run_info.get('data_fingerprint', ''))}</p>",
        '<div class="cards">'
        + "".join(
            f'<div class="card">{escape(label)}<b>{escape(value)}</b></div>'
            for label, value in cards
        )
        + "</div>",
        f'<p class="lead">{escape(dispute_line)}</p>',
        f"<h2>{escape(t['how'])}</h2><p>{how}</p>",
    ]
    html += opening_sections(summary, language)
    if "evidence_incomplete" in risk_list and risk_list["evidence_incomplete"].any():
        n_incomplete = int(risk_list["evidence_incomplete"].sum())
        html.append(
            f"<h2>{escape(t['incomplete'])}</h2>"
            f"<p>{escape(count(n_incomplete, 'report.incomplete_text', language))}</p>"
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
        .agg(best_rank=("rank", "min"), n=("invoice_id", "size"))
        .sort_values(["best_rank"])
    )
    counts = per_provider.set_index("provider_id")
    # Each invoice's contributions per scorer, split once rather than filtered per invoice.
    contributions = _ContributionsByInvoice(explanations)
    labels = {
        str(feature): chart_label(str(feature), language, descriptions)
        for feature in explanations["feature"].unique()
    }
    for provider_id, row in providers.iterrows():
        c = counts.loc[provider_id]
        n_all, n_shown = int(c["flagged_invoices"]), int(row["n"])
        how_many = count(n_all, "report.flagged_n", language)
        if n_shown < n_all:
            how_many += (
                " (" + text("report.split", language, shown=n_shown, rest=n_all - n_shown) + ")"
            )
        html.append(
            f'<h3 class="case" id="provider-{escape(str(provider_id))}">{escape(t["provider"])} '
            f"{escape(str(provider_id))} · {escape(how_many)} · "
            f"{escape(_money(c['amount_sek'], language))} {escape(t['invoiced'])} · "
            f"{escape(_money(c['amount_in_dispute_sek'], language))} "
            f"{escape(t['in_dispute'].lower())}</h3>"
        )
        for _, invoice in flagged[flagged["provider_id"] == provider_id].iterrows():
            html.append(_invoice_block(invoice, contributions, t, chart_features, language, labels))
    rest = all_flagged[~all_flagged["invoice_id"].isin(flagged["invoice_id"])]
    detailed = set(providers.index.astype("str"))
    html += appendix(per_provider, rest, len(flagged), language, detailed)
    html.append(f"<h2>{escape(t['held'])}</h2>")
    if held.empty:
        html.append(f"<p>{escape(t['none'])}</p>")
    else:
        html.append(
            "<table><thead><tr>"
            + "".join(
                f"<th>{escape(t[c])}</th>"
                for c in ("invoice", "provider", "client", "amount", "reasons")
            )
            + "</tr></thead><tbody>"
            + "".join(
                f"<tr><td>{escape(str(r.invoice_id))}</td><td>{escape(str(r.provider_id))}</td>"
                f"<td>{escape(str(r.client_id))}</td><td class='num'>{_money(r.amount_sek, language)}</td>"
                f"<td>{escape(str(r.reasons))}</td></tr>"
                for r in held.itertuples()
            )
            + "</tbody></table>"
        )
    return page(f"{t['title']} – {period}", html, language)


def _found(row: Any, t: Mapping[str, str]) -> str:
    """The finding in one line, and the top reason in one line under it."""
    parts = []
    if str(row.findings or "").strip():
        parts.append(f"<span>{escape(one_line(row.findings))}</span>")
    if str(row.reasons or "").strip():
        parts.append(
            f"<span class='sub'>{escape(t['top_reason'])}: {escape(one_line(row.reasons))}</span>"
        )
    return "".join(parts)


def _first_table(rows: pd.DataFrame, t: Mapping[str, str], language: str) -> str:
    head = "".join(
        f"<th class='num'>{escape(t[c])}</th>"
        if c in ("rank", "amount", "in_dispute")
        else f"<th>{escape(t[c])}</th>"
        for c in ("rank", "invoice", "provider", "amount", "in_dispute", "found", "why")
    )
    body = "".join(
        f"<tr><td class='num'>{int(r.rank)}</td><td class='id'><a href='#inv-{escape(str(r.invoice_id))}'>"
        f"{escape(str(r.invoice_id))}</a></td><td>{escape(str(r.provider_id))}<span class='sub'>"
        f"{escape(_service(r.service_type, language))}</span></td>"
        f"<td class='num'>{_money(r.amount_sek, language)}</td>"
        f"<td class='num'>{_money(r.amount_in_dispute_sek, language)}</td>"
        f"<td>{_found(r, t)}</td><td>{_tags(r.why_flagged, language)}</td></tr>"
        for r in rows.itertuples()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _ContributionsByInvoice(Mapping[tuple[str, str], pd.DataFrame]):
    """Each (invoice_id, scorer)'s explanation rows indexed by feature, cut out when asked.

    Why: the report details only the flagged invoices of its top providers, while the
    explanations cover every flagged invoice; indexing all of them up front cost seconds.
    Rows that follow each other (the explanations come invoice by invoice) are cut out as
    a slice: a list of positions makes Arrow's `take` go over each whole text column of
    the explanations (about 1 s of a month's report for 200 cuts), a slice only views it.
    """

    def __init__(self, explanations: pd.DataFrame) -> None:
        self._frame = explanations
        groups = explanations.groupby(["invoice_id", "scorer"], sort=False).indices
        self._rows = {(str(i), str(s)): _as_slice(rows) for (i, s), rows in groups.items()}

    def __getitem__(self, key: tuple[str, str]) -> pd.DataFrame:
        return self._frame.iloc[self._rows[key]].set_index("feature")

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _as_slice(rows: np.ndarray) -> slice | np.ndarray:
    """Increasing positions without a gap as the slice over them; any others as they are."""
    if len(rows) and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _invoice_block(
    invoice: pd.Series,
    explanations: Mapping[tuple[str, str], pd.DataFrame],
    t: Mapping[str, str],
    n_features: int,
    language: str,
    labels: Mapping[str, str] | None = None,
) -> str:
    invoice_id = str(invoice["invoice_id"])
    charts = []
    # Every scorer whose contributions make the reasons: the tail scorer carries most of
    # the label-free weight, so an auditor must see its chart beside the other two.
    for scorer in ("lightgbm", "isolation_forest", "tail_probability"):
        part = explanations.get((invoice_id, scorer))
        if part is None or part.empty:
            continue
        top = part["contribution"]
        top = top.reindex(top.abs().sort_values(ascending=False).index[:n_features])
        values = part["feature_value"].to_dict()
        chart = contribution_chart(top, labels=labels, language=language, values=values)
        charts.append(f"<div><p>{escape(t[scorer])}</p>{chart}</div>")
    findings = _bullets(invoice["findings"], "finding-list")
    reasons = _bullets(invoice["reasons"])
    return (
        f'<div class="invoice" id="inv-{escape(invoice_id)}"><div class="head">'
        f"<span>{escape(t['rank'])} <b>{int(invoice['rank'])}</b></span>"
        f"<span>{escape(t['invoice'])} <b>{escape(invoice_id)}</b></span>"
        f"<span>{escape(t['client'])} {escape(str(invoice['client_id']))}</span>"
        f"<span>{escape(t['service'])} {escape(_service(invoice['service_type'], language))}</span>"
        f"<span>{escape(t['amount'])} <b>{_money(invoice['amount_sek'], language)}</b></span>"
        f"<span>{escape(t['in_dispute'])} <b>{_money(invoice.get('amount_in_dispute_sek'), language)}</b></span>"
        f"<span>{escape(t['risk'])} <b>{number(invoice['risk_score'], language, 3)}</b></span>"
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
