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

from tillit.modelling.provider_model import REGISTER_KEYS

# Every Swedish and English string of the scorecard, in one place.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Providers to look into",
        "applicants_title": "Applicants to look into before approval",
        "intro": (
            "Providers ranked by how much evidence points to irregular billing or an unserious "
            "company, from their invoices this month and the register. A high rank is a reason "
            "to look, not a finding: check each fact in the source named beside it."
        ),
        "applicants_intro": (
            "Applicants (no approval date) are screened on the register alone: what to look "
            "into before a decision on approval. The decision is made by a person."
        ),
        "rank": "Rank",
        "provider": "Provider",
        "risk": "Risk",
        "invoices": "Invoices",
        "amount": "Amount (SEK)",
        "high_risk": "High-risk invoices",
        "reasons": "Why look",
        "facts": "Facts to check",
        "no_reasons": "nothing stands out",
        "no_facts": "no register facts in the window",
        "see_invoices": "its invoices in the month's risk list",
        "none": "No providers in this list.",
        "applicant": "applicant",
        "model": "Model",
        # Reasons, by evidence item.
        "high_risk_invoice_share": "{n_high:.0f} of {n_invoices:.0f} invoices ({share:.0%}) are high-risk this month",
        "high_risk_amount_share": "{amount_high:,.0f} SEK ({amount_share:.0%} of its billing) is on high-risk invoices",
        "mean_invoice_risk": "its invoices' mean risk is {mean_risk:.2f}",
        "hard_finding_share": "{n_finding:.0f} invoice(s) with a hard finding (e.g. billing after death)",
        "high_risk_share_rise": "high-risk share rose to {share:.0%} from {before:.0%} in the previous months",
        "linked_to_sanctioned_or_terminated": "{linked:.0f} current board person(s) also led a sanctioned or terminated company",
        "tax_debt": "tax debt of {tax:,.0f} SEK registered in the last {days} days",
        "f_tax_revoked": "F-skatt revoked ({f_tax:.0f} time(s) in the last {days} days{now})",
        "employer_registration_revoked": "employer registration revoked in the last {days} days",
        "sanctioned": "{sanctions:.0f} sanction(s) in the last {days} days",
        "contract_warnings": "{warnings:.0f} contract warning(s) in the last {days} days",
        "complaints": "{complaints:.0f} complaint(s) in the last {days} days",
        "inspection_remarks": "{remarks:.0f} inspection remark(s) in the last {days} days",
        "board_or_owner_changes": "{changes:.0f} board or owner change(s) in the last {days} days",
        "fast_client_growth": "clients grew {growth:.1f} times in {growth_months} months",
        "clients_from_terminated_providers": "{taken:.0f} client(s) ({taken_share:.0%}) came from providers whose contract was terminated",
        "young_company": "the company was registered {age:.1f} years ago",
        "now_revoked": ", revoked now",
        # Facts.
        "fact_link": (
            "person {person} ({role} here) was {linked_role} of {org} ({linked_id}) from {start}"
            "{end}; that company was {fate} (provider_persons, providers, provider_events)"
        ),
        "fact_until": " to {date}",
        "fact_sanctioned": "sanctioned on {date}",
        "fact_terminated": "terminated on {date}",
        "fact_and": " and ",
        "fact_event": "{date}: {event}{amount} (provider_events)",
        "fact_invoices": "{n:.0f} invoices this month, {amount:,.0f} SEK; {n_high:.0f} high-risk ({amount_high:,.0f} SEK)",
        "fact_approved": "registered {registered}, approved {approved}",
        "fact_not_approved": "registered {registered}, not approved (an applicant)",
    },
    "sv": {
        "title": "Utförare att granska",
        "applicants_title": "Sökande att granska före godkännande",
        "intro": (
            "Utförarna rangordnade efter hur mycket som pekar på oriktig fakturering eller ett "
            "oseriöst företag, utifrån månadens fakturor och registret. En hög placering är skäl "
            "att titta, inte ett konstaterande: kontrollera varje uppgift i källan som anges."
        ),
        "applicants_intro": (
            "Sökande (inget godkännandedatum) granskas enbart på registret: vad som bör utredas "
            "före beslut om godkännande. Beslutet fattas av en människa."
        ),
        "rank": "Plats",
        "provider": "Utförare",
        "risk": "Risk",
        "invoices": "Fakturor",
        "amount": "Belopp (kr)",
        "high_risk": "Fakturor med hög risk",
        "reasons": "Varför titta",
        "facts": "Uppgifter att kontrollera",
        "no_reasons": "inget sticker ut",
        "no_facts": "inga registerhändelser i perioden",
        "see_invoices": "dess fakturor i månadens risklista",
        "none": "Inga utförare i listan.",
        "applicant": "sökande",
        "model": "Modell",
        "high_risk_invoice_share": "{n_high:.0f} av {n_invoices:.0f} fakturor ({share:.0%}) har hög risk denna månad",
        "high_risk_amount_share": "{amount_high:,.0f} kr ({amount_share:.0%} av faktureringen) gäller fakturor med hög risk",
        "mean_invoice_risk": "fakturornas medelrisk är {mean_risk:.2f}",
        "hard_finding_share": "{n_finding:.0f} faktura/fakturor med ett fast fynd (t.ex. fakturering efter dödsfall)",
        "high_risk_share_rise": "andelen med hög risk steg till {share:.0%} från {before:.0%} månaderna innan",
        "linked_to_sanctioned_or_terminated": "{linked:.0f} nuvarande styrelseperson(er) har lett ett företag som fått sanktion eller avslutat avtal",
        "tax_debt": "skatteskuld på {tax:,.0f} kr registrerad de senaste {days} dagarna",
        "f_tax_revoked": "F-skatt återkallad ({f_tax:.0f} gång(er) de senaste {days} dagarna{now})",
        "employer_registration_revoked": "arbetsgivarregistrering avregistrerad de senaste {days} dagarna",
        "sanctioned": "{sanctions:.0f} sanktion(er) de senaste {days} dagarna",
        "contract_warnings": "{warnings:.0f} avtalsvarning(ar) de senaste {days} dagarna",
        "complaints": "{complaints:.0f} klagomål de senaste {days} dagarna",
        "inspection_remarks": "{remarks:.0f} anmärkning(ar) vid inspektion de senaste {days} dagarna",
        "board_or_owner_changes": "{changes:.0f} byte(n) av styrelse eller ägare de senaste {days} dagarna",
        "fast_client_growth": "antalet kunder växte {growth:.1f} gånger på {growth_months} månader",
        "clients_from_terminated_providers": "{taken:.0f} kund(er) ({taken_share:.0%}) kom från utförare vars avtal avslutats",
        "young_company": "företaget registrerades för {age:.1f} år sedan",
        "now_revoked": ", återkallad nu",
        "fact_link": (
            "person {person} ({role} här) var {linked_role} i {org} ({linked_id}) från {start}"
            "{end}; det företaget fick {fate} (provider_persons, providers, provider_events)"
        ),
        "fact_until": " till {date}",
        "fact_sanctioned": "sanktion {date}",
        "fact_terminated": "avtalet avslutat {date}",
        "fact_and": " och ",
        "fact_event": "{date}: {event}{amount} (provider_events)",
        "fact_invoices": "{n:.0f} fakturor denna månad, {amount:,.0f} kr; {n_high:.0f} med hög risk ({amount_high:,.0f} kr)",
        "fact_approved": "registrerad {registered}, godkänd {approved}",
        "fact_not_approved": "registrerad {registered}, inte godkänd (sökande)",
    },
}
EVENT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "tax_debt_registered": "tax debt registered",
        "tax_debt_cleared": "tax debt cleared",
        "f_tax_revoked": "F-skatt revoked",
        "f_tax_restored": "F-skatt restored",
        "employer_registration_revoked": "employer registration revoked",
        "sanction": "sanction",
        "contract_warning": "contract warning",
        "inspection_remark": "inspection remark",
        "complaint": "complaint",
        "board_change": "board change",
        "owner_change": "owner change",
    },
    "sv": {
        "tax_debt_registered": "skatteskuld registrerad",
        "tax_debt_cleared": "skatteskuld betald",
        "f_tax_revoked": "F-skatt återkallad",
        "f_tax_restored": "F-skatt återställd",
        "employer_registration_revoked": "arbetsgivarregistrering avregistrerad",
        "sanction": "sanktion",
        "contract_warning": "avtalsvarning",
        "inspection_remark": "anmärkning vid inspektion",
        "complaint": "klagomål",
        "board_change": "styrelsebyte",
        "owner_change": "ägarbyte",
    },
}
ROLE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "owner": "owner",
        "board_member": "board member",
        "ceo": "CEO",
        "signatory": "signatory",
    },
    "sv": {
        "owner": "ägare",
        "board_member": "styrelseledamot",
        "ceo": "vd",
        "signatory": "firmatecknare",
    },
}
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
