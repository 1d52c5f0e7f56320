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

from tillit.core.html import page
from tillit.features.providers import SHARED_FACTS_COLUMN
from tillit.i18n import LANGS, fill, money, number, words
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


# The field that counts what a reason names, for its singular wording (".one").
_COUNTED_BY = {
    "findings_on_invoices": "n",
    "hard_finding_share": "n_finding",
    "linked_to_sanctioned_or_terminated": "linked",
    "f_tax_revoked": "f_tax",
    "sanctioned": "sanctions",
    "contract_warnings": "warnings",
    "complaints": "complaints",
    "inspection_remarks": "remarks",
    "board_or_owner_changes": "changes",
    "clients_from_terminated_providers": "taken",
}


def _said(text: Mapping[str, str], name: str, values: Mapping[str, Any], language: str) -> str:
    """One reason in words: "1 sanction", "2 sanctions" (a count of exactly 1 is singular)."""
    counted = _COUNTED_BY.get(name)
    if counted is not None and f"{name}.one" in text and float(values[counted]) == 1.0:
        name = f"{name}.one"
    return fill(text[name], language, **values)


def reason_texts(
    months: pd.DataFrame,
    contributions: pd.DataFrame,
    register_columns: Sequence[str],
    language: str,
    n_reasons: int,
    event_window_days: int,
    growth_months: int,
    exclude: Sequence[str] = (),
    shared_facts: pd.DataFrame | None = None,
) -> list[list[str]]:
    """The top evidence items that raise each provider's risk, in words (`exclude`: unsaid).

    `shared_facts` (`RegisterProfile.shared_facts`) names what the strongest evidence pair
    shares, for the reason on facts shared with a sanctioned or terminated company.
    """
    text = TEXT[language]
    reg = dict(zip(REGISTER_KEYS, register_columns, strict=True))
    strongest = _strongest_pairs(shared_facts)
    out: list[list[str]] = []
    for i, (_, r) in enumerate(months.iterrows()):
        row = contributions.iloc[i]
        top = [
            name
            for name in row.sort_values(ascending=False).index
            if row[name] > 1e-9 and name not in exclude
        ]
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
            "shared": float(r.get(SHARED_FACTS_COLUMN, 0.0)),
            "shared_what": shared_words(
                strongest.get((r["provider_id"], r["period"]), "facts"), language
            ),
        }
        out.append([_said(text, name, values, language) for name in top[:n_reasons]])
    return out


def _strongest_pairs(shared_facts: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """(provider, period) -> the fact names of its strongest evidence pair."""
    if shared_facts is None or shared_facts.empty:
        return {}
    top = shared_facts.sort_values("match_probability", ascending=False, kind="stable")
    top = top.drop_duplicates(["provider_id", "period"])
    return {
        (p, period): facts
        for p, period, facts in zip(
            top["provider_id"], top["period"], top["shared_facts"], strict=True
        )
    }


def shared_words(facts: str, language: str) -> str:
    """`street_address, bankgiro` in words: `the street address and the bank giro`."""
    text = TEXT[language]
    names = [text.get(f"shared_{f.strip()}", f.strip()) for f in str(facts).split(",") if f.strip()]
    if len(names) <= 1:
        return names[0] if names else text["shared_facts"]
    return ", ".join(names[:-1]) + text["fact_and"] + names[-1]


def _fate(link: Any, language: str) -> str:
    """What became of a linked company: `sanctioned on ... and terminated on ...`."""
    text = TEXT[language]
    fates = []
    if pd.notna(link.linked_sanctioned_on):
        fates.append(fill(text["fact_sanctioned"], language, date=_day(link.linked_sanctioned_on)))
    if pd.notna(link.linked_terminated_on):
        fates.append(fill(text["fact_terminated"], language, date=_day(link.linked_terminated_on)))
    return text["fact_and"].join(fates)


def _shared_fact_texts(pairs: pd.DataFrame, language: str) -> list[str]:
    """The evidence pairs in words: which facts, which company, what became of it, how sure."""
    text = TEXT[language]
    said = []
    for pair in pairs.itertuples(index=False):
        said.append(
            fill(
                text["fact_shared"],
                language,
                what=shared_words(pair.shared_facts, language),
                org=pair.linked_org_number,
                linked_id=pair.linked_provider_id,
                p=float(pair.match_probability),
                fate=_fate(pair, language),
            )
        )
    return said


def fact_texts(
    months: pd.DataFrame,
    links: pd.DataFrame,
    events: pd.DataFrame,
    language: str,
    shared_facts: pd.DataFrame | None = None,
) -> list[list[str]]:
    """Checkable facts per provider: board links with org numbers, evidence pairs, events, invoices."""
    text = TEXT[language]
    names = EVENT_NAMES[language]
    links_of = {key: part for key, part in links.groupby(["provider_id", "period"])}
    shared_of = (
        {key: part for key, part in shared_facts.groupby(["provider_id", "period"])}
        if shared_facts is not None and not shared_facts.empty
        else {}
    )
    events_of = {key: part for key, part in events.groupby(["provider_id", "period"])}
    out: list[list[str]] = []
    for r in months.itertuples(index=False):
        facts: list[str] = []
        if bool(r.is_applicant):
            facts.append(
                fill(text["fact_not_approved"], language, registered=_day(r.registered_on))
            )
        else:
            facts.append(
                fill(
                    text["fact_approved"],
                    language,
                    registered=_day(r.registered_on),
                    approved=_day(r.approved_on),
                )
            )
        if r.n_invoices > 0:
            facts.append(fill(text["fact_invoices"], language, n=r.n_invoices, amount=r.amount_sek))
        for link in links_of.get((r.provider_id, r.period), pd.DataFrame()).itertuples(index=False):
            facts.append(
                fill(
                    text["fact_link"],
                    language,
                    person=link.person_id,
                    role=_roles(link.role, language),
                    linked_role=_roles(link.linked_role, language),
                    org=link.linked_org_number,
                    linked_id=link.linked_provider_id,
                    start=_day(link.linked_from),
                    end=fill(text["fact_until"], language, date=_day(link.linked_to))
                    if pd.notna(link.linked_to)
                    else "",
                    fate=_fate(link, language),
                )
            )
        pairs = shared_of.get((r.provider_id, r.period))
        if pairs is not None:
            facts += _shared_fact_texts(pairs, language)
        shown = events_of.get((r.provider_id, r.period), pd.DataFrame())
        for event in shown.head(MAX_EVENT_FACTS).itertuples(index=False):
            amount = f", {money(event.amount_sek, language)}" if pd.notna(event.amount_sek) else ""
            facts.append(
                fill(
                    text["fact_event"],
                    language,
                    date=_day(event.event_date),
                    event=names.get(event.event_type, event.event_type),
                    amount=amount,
                )
            )
        if len(shown) > MAX_EVENT_FACTS:
            facts.append(f"... +{len(shown) - MAX_EVENT_FACTS}")
        out.append(facts)
    return out


def invoice_side_reasons(months: pd.DataFrame, language: str) -> list[list[str]]:
    """What the invoice review found per provider, in words: the case, findings, money in dispute.

    Said first on the page because it decides the provider's group
    (`provider_model.invoice_side_priority`).
    """
    text = TEXT[language]
    out: list[list[str]] = []
    for r in months.itertuples(index=False):
        said: list[str] = []
        if bool(getattr(r, "is_case", False)):
            said.append(
                fill(
                    text["case"],
                    language,
                    flagged=number(r.n_flagged, language),
                    dispute=money(r.flagged_amount_in_dispute_sek, language),
                )
            )
        if r.n_hard_finding > 0:
            said.append(_said(text, "findings_on_invoices", {"n": r.n_hard_finding}, language))
        if r.amount_in_dispute_sek >= 0.5:
            said.append(
                fill(text["dispute"], language, dispute=money(r.amount_in_dispute_sek, language))
            )
        out.append(said)
    return out


def _list(items: Sequence[str], empty: str) -> str:
    if not items:
        return f"<em>{html.escape(empty)}</em>"
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _count(value: object, language: str) -> str:
    return "–" if pd.isna(value) else number(value, language)


def _rows(table: pd.DataFrame, language: str, risk_list_href: str | None) -> str:
    text = TEXT[language]
    rows = []
    for r in table.itertuples(index=False):
        name = (
            f"<b>{html.escape(r.provider_id)}</b><br><span class='meta'>{html.escape(r.org_number)}"
        )
        name += f", {html.escape(r.legal_form)}</span>"
        if risk_list_href and r.n_invoices > 0:
            anchor = f"#provider-{r.provider_id}" if risk_list_href.endswith(".html") else ""
            href = html.escape(f"{risk_list_href}{anchor}", quote=True)
            label = (
                text["see_report"] if bool(getattr(r, "is_case", False)) else text["see_invoices"]
            )
            name += f"<br><a href='{href}'>{html.escape(label)}</a>"
        dispute = getattr(r, "flagged_amount_in_dispute_sek", np.nan)
        rows.append(
            f"<tr id='provider-{html.escape(r.provider_id)}'>"
            f"<td class='num'>{int(r.rank)}</td><td>{name}</td>"
            f"<td class='num'>{number(r.risk_score, language, 3)}</td>"
            f"<td class='num'>{number(r.n_invoices, language)}</td>"
            f"<td class='num'>{money(r.amount_sek, language)}</td>"
            f"<td class='num'>{_count(getattr(r, 'n_flagged', np.nan), language)}</td>"
            f"<td class='num'>{_count(getattr(r, 'n_flagged_with_finding', np.nan), language)}</td>"
            f"<td class='num'>{'–' if pd.isna(dispute) else money(dispute, language)}</td>"
            f"<td class='reasons'>{_list(list(r.reasons_list), text['no_reasons'])}</td>"
            f"<td class='facts'>{_list(list(r.facts_list), text['no_facts'])}</td>"
            "</tr>"
        )
    return "".join(rows)


def render_providers_page(
    table: pd.DataFrame,
    run_info: Mapping[str, Any],
    language: str,
    risk_list_href: str | None,
    counted: bool = True,
) -> str:
    """One self-contained page: ranked providers, then applicants, each with reasons and facts.

    Args:
        table: the scorecard with `reasons_list` and `facts_list` (lists of strings).
        run_info: period, model name and version, config hash, data fingerprint.
        language: en or sv.
        risk_list_href: relative link to the month's invoice risk list, when one exists.
        counted: whether the flagged counts are the month's report's (else shown as –).
    """
    text = TEXT[language]
    numeric = ("rank", "risk", "invoices", "amount", "flagged", "with_finding", "in_dispute")
    head = "".join(
        f"<th class='num'>{html.escape(text[c])}</th>"
        if c in numeric
        else f"<th>{html.escape(text[c])}</th>"
        for c in (*numeric[:1], "provider", *numeric[1:], "reasons", "facts")
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
            f"<table class='providers'><thead><tr>{head}</tr></thead><tbody>"
            f"{_rows(rows, language, risk_list_href)}</tbody></table>"
            if len(rows)
            else f"<p>{html.escape(text['none'])}</p>"
        )
        notes = f"<p>{html.escape(text[intro])}</p>"
        if part == "invoices_and_register":
            notes += f"<p>{html.escape(text['order'])}</p>"
            if not counted:
                notes += f"<p>{html.escape(text['no_report'])}</p>"
        sections.append(f"<h2>{html.escape(text[title])}</h2>{notes}{body}")
    fields = {
        name: run_info.get(name, "")
        for name in (
            "period",
            "model_name",
            "model_version",
            "method",
            "invoice_model_version",
            "config_hash",
            "data_fingerprint",
        )
    }
    meta = fill(text["meta"], language, **{k: str(v) for k, v in fields.items()})
    title = f"{text['title']} {run_info.get('period', '')}"
    head = f"<h1>{html.escape(title)}</h1>\n<p class='meta'>{html.escape(meta)}</p>"
    return page(title, [head, *sections], language)


def rank_within_parts(table: pd.DataFrame) -> np.ndarray:
    """Rank 1 = look first, within billing providers and within applicants apart."""
    ranks = np.zeros(len(table), dtype="int64")
    for part in table["part"].unique():
        rows = np.flatnonzero(table["part"].to_numpy() == part)
        group = table["tier"].to_numpy()[rows] if "tier" in table else np.zeros(len(rows))
        order = np.lexsort(
            (
                table["provider_id"].to_numpy()[rows],
                -table["risk_score"].to_numpy()[rows],
                -group,
            )
        )
        ranks[rows[order]] = np.arange(1, len(rows) + 1)
    return ranks


__all__ = [
    "TEXT",
    "fact_texts",
    "invoice_side_reasons",
    "rank_within_parts",
    "reason_texts",
    "render_providers_page",
]
