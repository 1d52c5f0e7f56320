"""The provider scorecard in words: facts with evidence, top reasons (sv/en), and one HTML page.

It never decides: every sentence says what was found and where to check it, and
the page says what to look into, not what to conclude. Persons appear only as
their pseudonyms, and only as evidence of a link between companies.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tillit.i18n import LANGS, words
from tillit.modelling.provider_model import REGISTER_KEYS

# The scorecard's words, register events and roles: views of tillit.i18n's
# `provider.*`, `event.*` and `role.*`, where every Swedish and English string lives.
TEXT: dict[str, dict[str, str]] = {lang: dict(words("provider", lang)) for lang in LANGS}
EVENT_NAMES: dict[str, dict[str, str]] = {lang: dict(words("event", lang)) for lang in LANGS}
ROLE_NAMES: dict[str, dict[str, str]] = {lang: dict(words("role", lang)) for lang in LANGS}
# At most this many register events per provider in its facts, newest first.
MAX_EVENT_FACTS = 8


def _roles(text: str, language: str) -> str:
    """`owner, signatory` in words of the language."""
    names = ROLE_NAMES[language]
    return ", ".join(names.get(role.strip(), role.strip()) for role in str(text).split(","))


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d") if pd.notna(value) else ""


def reason_texts(
    months: pd.DataFrame,
    contributions: pd.DataFrame,
    register_columns: Sequence[str],
    language: str,
    n_reasons: int,
    event_window_days: int,
    growth_months: int,
) -> list[list[str]]:
    """The top evidence items that raise each provider's risk, in words."""
    text = TEXT[language]
    reg = dict(zip(REGISTER_KEYS, register_columns, strict=True))
    out: list[list[str]] = []
    for i, (_, r) in enumerate(months.iterrows()):
        row = contributions.iloc[i]
        top = [name for name in row.sort_values(ascending=False).index if row[name] > 1e-9]
        values = {
            "n_high": r["n_high_risk"],
            "n_invoices": r["n_invoices"],
            "share": r["high_risk_invoice_share"],
            "amount_high": r["high_risk_amount_sek"],
            "amount_share": r["high_risk_amount_share"],
            "mean_risk": r["mean_invoice_risk"],
            "n_finding": r["n_hard_finding"],
            "before": 0.0 if pd.isna(r["high_risk_share_before"]) else r["high_risk_share_before"],
            "linked": r[reg["linked_persons"]],
            "tax": r[reg["tax_debt_sek"]],
            "f_tax": r[reg["f_tax_revoked_window"]],
            "now": text["now_revoked"] if r[reg["f_tax_revoked_now"]] > 0 else "",
            "sanctions": r[reg["sanctions"]],
            "warnings": r[reg["contract_warnings"]],
            "complaints": r[reg["complaints"]],
            "remarks": r[reg["inspection_remarks"]],
            "changes": r[reg["board_changes"]] + r[reg["owner_changes"]],
            "growth": r[reg["client_growth"]],
            "taken": r["n_taken_over"],
            "taken_share": r[reg["taken_over_share"]],
            "age": r[reg["age_years"]],
            "days": event_window_days,
            "growth_months": growth_months,
        }
        out.append([text[name].format(**values) for name in top[:n_reasons]])
    return out


def fact_texts(
    months: pd.DataFrame,
    links: pd.DataFrame,
    events: pd.DataFrame,
    language: str,
) -> list[list[str]]:
    """Checkable facts per provider: board links with org numbers, register events, invoices."""
    text = TEXT[language]
    names = EVENT_NAMES[language]
    links_of = {key: part for key, part in links.groupby(["provider_id", "period"])}
    events_of = {key: part for key, part in events.groupby(["provider_id", "period"])}
    out: list[list[str]] = []
    for r in months.itertuples(index=False):
        facts: list[str] = []
        if bool(r.is_applicant):
            facts.append(text["fact_not_approved"].format(registered=_day(r.registered_on)))
        else:
            facts.append(
                text["fact_approved"].format(
                    registered=_day(r.registered_on), approved=_day(r.approved_on)
                )
            )
        if r.n_invoices > 0:
            facts.append(
                text["fact_invoices"].format(
                    n=r.n_invoices,
                    amount=r.amount_sek,
                    n_high=r.n_high_risk,
                    amount_high=r.high_risk_amount_sek,
                )
            )
        for link in links_of.get((r.provider_id, r.period), pd.DataFrame()).itertuples(index=False):
            fates = []
            if pd.notna(link.linked_sanctioned_on):
                fates.append(text["fact_sanctioned"].format(date=_day(link.linked_sanctioned_on)))
            if pd.notna(link.linked_terminated_on):
                fates.append(text["fact_terminated"].format(date=_day(link.linked_terminated_on)))
            facts.append(
                text["fact_link"].format(
                    person=link.person_id,
                    role=_roles(link.role, language),
                    linked_role=_roles(link.linked_role, language),
                    org=link.linked_org_number,
                    linked_id=link.linked_provider_id,
                    start=_day(link.linked_from),
                    end=text["fact_until"].format(date=_day(link.linked_to))
                    if pd.notna(link.linked_to)
                    else "",
                    fate=text["fact_and"].join(fates),
                )
            )
        shown = events_of.get((r.provider_id, r.period), pd.DataFrame())
        for event in shown.head(MAX_EVENT_FACTS).itertuples(index=False):
            amount = f", {event.amount_sek:,.0f} SEK" if pd.notna(event.amount_sek) else ""
            facts.append(
                text["fact_event"].format(
                    date=_day(event.event_date),
                    event=names.get(event.event_type, event.event_type),
                    amount=amount,
                )
            )
        if len(shown) > MAX_EVENT_FACTS:
            facts.append(f"... +{len(shown) - MAX_EVENT_FACTS}")
        out.append(facts)
    return out


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.4em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; white-space: nowrap; }
ul { margin: 0; padding-left: 1.2em; }
.meta { color: #555; font-size: 0.9em; }
@media print { body { margin: 0; } a { color: inherit; } }
"""


def _list(items: Sequence[str], empty: str) -> str:
    if not items:
        return f"<em>{html.escape(empty)}</em>"
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _rows(table: pd.DataFrame, language: str, risk_list_href: str | None) -> str:
    text = TEXT[language]
    rows = []
    for r in table.itertuples(index=False):
        name = f"{html.escape(r.provider_id)}<br><span class='meta'>{html.escape(r.org_number)}"
        name += f", {html.escape(r.legal_form)}</span>"
        if risk_list_href and r.n_invoices > 0:
            anchor = f"#provider-{r.provider_id}" if risk_list_href.endswith(".html") else ""
            href = html.escape(f"{risk_list_href}{anchor}", quote=True)
            name += f"<br><a href='{href}'>{html.escape(text['see_invoices'])}</a>"
        rows.append(
            "<tr>"
            f"<td class='num'>{int(r.rank)}</td><td>{name}</td>"
            f"<td class='num'>{r.risk_score:.3f}</td>"
            f"<td class='num'>{int(r.n_invoices)}</td>"
            f"<td class='num'>{r.amount_sek:,.0f}</td>"
            f"<td class='num'>{int(r.n_high_risk)}</td>"
            f"<td>{_list(list(r.reasons_list), text['no_reasons'])}</td>"
            f"<td>{_list(list(r.facts_list), text['no_facts'])}</td>"
            "</tr>"
        )
    return "".join(rows)


def render_providers_page(
    table: pd.DataFrame,
    run_info: Mapping[str, Any],
    language: str,
    risk_list_href: str | None,
) -> str:
    """One self-contained page: ranked providers, then applicants, each with reasons and facts.

    Args:
        table: the scorecard with `reasons_list` and `facts_list` (lists of strings).
        run_info: period, model name and version, config hash, data fingerprint.
        language: en or sv.
        risk_list_href: relative link to the month's invoice risk list, when one exists.
    """
    text = TEXT[language]
    head = (
        f"<th>{text['rank']}</th><th>{text['provider']}</th><th>{text['risk']}</th>"
        f"<th>{text['invoices']}</th><th>{text['amount']}</th><th>{text['high_risk']}</th>"
        f"<th>{text['reasons']}</th><th>{text['facts']}</th>"
    )
    sections = []
    for part, title, intro in (
        ("invoices_and_register", "title", "intro"),
        ("register_only", "applicants_title", "applicants_intro"),
    ):
        rows = table[table["part"] == part]
        if rows.empty and (part == "register_only" or len(table)):
            continue  # no applicants, or only applicants were asked for
        body = (
            f"<table><thead><tr>{head}</tr></thead><tbody>"
            f"{_rows(rows, language, risk_list_href)}</tbody></table>"
            if len(rows)
            else f"<p>{html.escape(text['none'])}</p>"
        )
        sections.append(
            f"<h2>{html.escape(text[title])}</h2><p>{html.escape(text[intro])}</p>{body}"
        )
    meta = ", ".join(f"{k}: {v}" for k, v in run_info.items())
    title = f"{text['title']} {run_info.get('period', '')}"
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p class='meta'>{html.escape(meta)}</p>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def rank_within_parts(table: pd.DataFrame) -> np.ndarray:
    """Rank 1 = look first, within billing providers and within applicants apart."""
    ranks = np.zeros(len(table), dtype="int64")
    for part in table["part"].unique():
        rows = np.flatnonzero(table["part"].to_numpy() == part)
        order = np.lexsort(
            (table["provider_id"].to_numpy()[rows], -table["risk_score"].to_numpy()[rows])
        )
        ranks[rows[order]] = np.arange(1, len(rows) + 1)
    return ranks


__all__ = ["TEXT", "fact_texts", "rank_within_parts", "reason_texts", "render_providers_page"]
