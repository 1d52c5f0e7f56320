"""The provider scorecard: page words, reasons, facts, register events and roles."""

from __future__ import annotations

from tillit.i18n.types import Tables

PROVIDERS: Tables = {
    "en": {
        "title": "Providers to look into",
        "applicants_title": "Applicants to look into before approval",
        "intro": (
            "Providers ranked by how much evidence points to irregular billing or an unserious "
            "company, from their invoices this month and the register. A high rank is a reason "
            "to look, not a finding: check each fact in the source named beside it."
        ),
        "order": (
            "The order: providers that open the month's report as a case come first, then "
            "providers with a hard finding on an invoice or linked in the register to a "
            "sanctioned or terminated company (a board person, or shared contact facts), then "
            "the rest. Within each group the provider model's risk is blended half and half "
            "with what was found: what the invoices show (hard findings and money in dispute) "
            "or the register's link when that is stronger. So a provider something was found "
            "on is never ranked below one with nothing found. The model's own risk is kept "
            "beside the blended one in provider_risk.csv. The counts of flagged invoices, "
            "findings and money in dispute are the report's."
        ),
        "no_report": (
            "The month has not been scored with `tillit score` beside this page: the counts of "
            "flagged invoices are not known (–)."
        ),
        "meta": (
            "Billing month {period} · provider model {model_name} version {model_version} "
            "({method}) · invoice model version {invoice_model_version} · config {config_hash} "
            "· data fingerprint {data_fingerprint}"
        ),
        "flagged": "Flagged",
        "with_finding": "Flagged with a finding",
        "in_dispute": "In dispute (flagged)",
        "see_report": "its case in the report",
        "case": "opens the month's report as a case ({flagged} flagged invoices, {dispute} in "
        "dispute on them)",
        "findings_on_invoices": "{n:.0f} invoices with a hard finding this month",
        "findings_on_invoices.one": "{n:.0f} invoice with a hard finding this month",
        "dispute": "{dispute} of its billing this month is not backed by registered visits, "
        "the grant or the tariff",
        "applicants_intro": (
            "Applicants (no approval date) are screened on the register alone: what to look "
            "into before a decision on approval. The decision is made by a person."
        ),
        "rank": "Rank",
        "provider": "Provider",
        "risk": "Risk",
        "invoices": "Invoices",
        "amount": "Invoiced",
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
        "high_risk_invoice_share": "{n_high:.0f} of {n_invoices:.0f} invoices ({share:.0%}) have an invoice risk of 0.85 or more this month",
        "high_risk_amount_share": "{amount_high:,.0f} SEK ({amount_share:.0%} of its billing) is on invoices with a risk of 0.85 or more",
        "mean_invoice_risk": "its invoices' mean risk is {mean_risk:.2f}",
        "hard_finding_share": "{n_finding:.0f} invoices with a hard finding (e.g. billing after death)",
        "hard_finding_share.one": "{n_finding:.0f} invoice with a hard finding (e.g. billing after death)",
        "high_risk_share_rise": "high-risk share rose to {share:.0%} from {before:.0%} in the previous months",
        "linked_to_sanctioned_or_terminated": "{linked:.0f} current board persons also led a sanctioned or terminated company",
        "linked_to_sanctioned_or_terminated.one": "{linked:.0f} current board person also led a sanctioned or terminated company",
        "tax_debt": "tax debt of {tax:,.0f} SEK registered in the last {days} days",
        "f_tax_revoked": "F-skatt revoked ({f_tax:.0f} times in the last {days} days{now})",
        "f_tax_revoked.one": "F-skatt revoked (once in the last {days} days{now})",
        "employer_registration_revoked": "employer registration revoked in the last {days} days",
        "sanctioned": "{sanctions:.0f} sanctions in the last {days} days",
        "sanctioned.one": "{sanctions:.0f} sanction in the last {days} days",
        "contract_warnings": "{warnings:.0f} contract warnings in the last {days} days",
        "contract_warnings.one": "{warnings:.0f} contract warning in the last {days} days",
        "complaints": "{complaints:.0f} complaints in the last {days} days",
        "complaints.one": "{complaints:.0f} complaint in the last {days} days",
        "inspection_remarks": "{remarks:.0f} inspection remarks in the last {days} days",
        "inspection_remarks.one": "{remarks:.0f} inspection remark in the last {days} days",
        "board_or_owner_changes": "{changes:.0f} board or owner changes in the last {days} days",
        "board_or_owner_changes.one": "{changes:.0f} board or owner change in the last {days} days",
        "fast_client_growth": "clients grew {growth:.1f} times in {growth_months} months",
        "clients_from_terminated_providers": "{taken:.0f} clients ({taken_share:.0%}) came from providers whose contract was terminated",
        "clients_from_terminated_providers.one": "{taken:.0f} client ({taken_share:.0%}) came from a provider whose contract was terminated",
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
        "fact_invoices": "{n:.0f} invoices this month, {amount:,.0f} SEK (invoices)",
        "fact_approved": "registered {registered}, approved {approved}",
        "fact_not_approved": "registered {registered}, not approved (an applicant)",
        # Contract v1.3: facts shared with a sanctioned or terminated company (tillit link).
        "shares_facts_with_sanctioned_or_terminated": (
            "shares {shared_what} with a sanctioned or terminated company "
            "(match probability {shared:.2f})"
        ),
        "fact_shared": (
            "shares {what} with {org} ({linked_id}), match probability {p:.2f}; that company "
            "was {fate} (provider_contacts, provider_persons, providers, provider_events)"
        ),
        "shared_street_address": "the street address",
        "shared_postcode": "the postal area",
        "shared_phone_number": "the phone number",
        "shared_bankgiro": "the bank giro",
        "shared_plusgiro": "the plus giro",
        "shared_email_domain": "the e-mail domain",
        "shared_person": "a person (listed under another id)",
        "shared_facts": "facts",
    },
    "sv": {
        "title": "Utförare att granska",
        "applicants_title": "Sökande att granska före godkännande",
        "intro": (
            "Utförarna rangordnade efter hur mycket som pekar på oriktig fakturering eller ett "
            "oseriöst företag, utifrån månadens fakturor och registret. En hög placering är skäl "
            "att titta, inte ett konstaterande: kontrollera varje uppgift i källan som anges."
        ),
        "order": (
            "Ordningen: utförare som öppnar månadens rapport som ett ärende kommer först, sedan "
            "utförare med ett fynd på någon faktura eller som registret kopplar till ett "
            "företag som fått sanktion eller avslutat avtal (en styrelseperson eller delade "
            "kontaktuppgifter), sedan övriga. Inom varje grupp vägs utförarmodellens risk lika "
            "med det som hittats: vad fakturorna visar (fynd och ifrågasatt belopp) eller "
            "registrets koppling när den väger tyngre. Så hamnar en utförare där något hittats "
            "aldrig under en där inget hittats. Modellens egen risk sparas bredvid den "
            "sammanvägda i "
            "provider_risk.csv. Antalen flaggade fakturor, fynd och ifrågasatta belopp är "
            "rapportens."
        ),
        "no_report": (
            "Månaden har inte bedömts med `tillit score` bredvid den här sidan: antalet flaggade "
            "fakturor är inte känt (–)."
        ),
        "meta": (
            "Fakturamånad {period} · utförarmodell {model_name} version {model_version} "
            "({method}) · fakturamodell version {invoice_model_version} · konfiguration "
            "{config_hash} · dataets fingeravtryck {data_fingerprint}"
        ),
        "flagged": "Flaggade",
        "with_finding": "Flaggade med fynd",
        "in_dispute": "Ifrågasatt (flaggade)",
        "see_report": "ärendet i rapporten",
        "case": "öppnar månadens rapport som ett ärende ({flagged} flaggade fakturor, {dispute} "
        "ifrågasatt på dem)",
        "findings_on_invoices": "{n:.0f} fakturor med ett fynd denna månad",
        "findings_on_invoices.one": "{n:.0f} faktura med ett fynd denna månad",
        "dispute": "{dispute} av månadens fakturering täcks inte av registrerade besök, beslut "
        "eller timersättning",
        "applicants_intro": (
            "Sökande (inget godkännandedatum) granskas enbart på registret: vad som bör utredas "
            "före beslut om godkännande. Beslutet fattas av en människa."
        ),
        "rank": "Plats",
        "provider": "Utförare",
        "risk": "Risk",
        "invoices": "Fakturor",
        "amount": "Fakturerat",
        "high_risk": "Fakturor med hög risk",
        "reasons": "Varför titta",
        "facts": "Uppgifter att kontrollera",
        "no_reasons": "inget sticker ut",
        "no_facts": "inga registerhändelser i perioden",
        "see_invoices": "dess fakturor i månadens risklista",
        "none": "Inga utförare i listan.",
        "applicant": "sökande",
        "model": "Modell",
        "high_risk_invoice_share": "{n_high:.0f} av {n_invoices:.0f} fakturor ({share:.0%}) har en fakturarisk på 0,85 eller mer denna månad",
        "high_risk_amount_share": "{amount_high:,.0f} kr ({amount_share:.0%} av faktureringen) gäller fakturor med en risk på 0,85 eller mer",
        "mean_invoice_risk": "fakturornas medelrisk är {mean_risk:.2f}",
        "hard_finding_share": "{n_finding:.0f} fakturor med ett fast fynd (t.ex. fakturering efter dödsfall)",
        "hard_finding_share.one": "{n_finding:.0f} faktura med ett fast fynd (t.ex. fakturering efter dödsfall)",
        "high_risk_share_rise": "andelen med hög risk steg till {share:.0%} från {before:.0%} månaderna innan",
        "linked_to_sanctioned_or_terminated": "{linked:.0f} nuvarande styrelsepersoner har lett ett företag som fått sanktion eller avslutat avtal",
        "linked_to_sanctioned_or_terminated.one": "{linked:.0f} nuvarande styrelseperson har lett ett företag som fått sanktion eller avslutat avtal",
        "tax_debt": "skatteskuld på {tax:,.0f} kr registrerad de senaste {days} dagarna",
        "f_tax_revoked": "F-skatt återkallad ({f_tax:.0f} gånger de senaste {days} dagarna{now})",
        "f_tax_revoked.one": "F-skatt återkallad (en gång de senaste {days} dagarna{now})",
        "employer_registration_revoked": "arbetsgivarregistrering avregistrerad de senaste {days} dagarna",
        "sanctioned": "{sanctions:.0f} sanktioner de senaste {days} dagarna",
        "sanctioned.one": "{sanctions:.0f} sanktion de senaste {days} dagarna",
        "contract_warnings": "{warnings:.0f} avtalsvarningar de senaste {days} dagarna",
        "contract_warnings.one": "{warnings:.0f} avtalsvarning de senaste {days} dagarna",
        "complaints": "{complaints:.0f} klagomål de senaste {days} dagarna",
        "complaints.one": "{complaints:.0f} klagomål de senaste {days} dagarna",
        "inspection_remarks": "{remarks:.0f} anmärkningar vid inspektion de senaste {days} dagarna",
        "inspection_remarks.one": "{remarks:.0f} anmärkning vid inspektion de senaste {days} dagarna",
        "board_or_owner_changes": "{changes:.0f} byten av styrelse eller ägare de senaste {days} dagarna",
        "board_or_owner_changes.one": "{changes:.0f} byte av styrelse eller ägare de senaste {days} dagarna",
        "fast_client_growth": "antalet kunder växte {growth:.1f} gånger på {growth_months} månader",
        "clients_from_terminated_providers": "{taken:.0f} kunder ({taken_share:.0%}) kom från utförare vars avtal avslutats",
        "clients_from_terminated_providers.one": "{taken:.0f} kund ({taken_share:.0%}) kom från en utförare vars avtal avslutats",
        "young_company": "företaget registrerades för {age:.1f} år sedan",
        "now_revoked": ", återkallad nu",
        "fact_link": (
            "person {person} ({role} här) var {linked_role} i {org} ({linked_id}) från {start}"
            "{end}; det företaget fick {fate} (källa: ägar- och styrelseregistret, utförarregistret, registerhändelser)"
        ),
        "fact_until": " till {date}",
        "fact_sanctioned": "sanktion {date}",
        "fact_terminated": "avtalet avslutat {date}",
        "fact_and": " och ",
        "fact_event": "{date}: {event}{amount} (registerhändelser)",
        "fact_invoices": "{n:.0f} fakturor denna månad, {amount:,.0f} kr (fakturor)",
        "fact_approved": "registrerad {registered}, godkänd {approved}",
        "fact_not_approved": "registrerad {registered}, inte godkänd (sökande)",
        # Kontraktsversion 1.3: uppgifter gemensamma med ett företag med sanktion eller avslutat avtal.
        "shares_facts_with_sanctioned_or_terminated": (
            "delar {shared_what} med ett företag som fått sanktion eller avslutat avtal "
            "(matchningssannolikhet {shared:.2f})"
        ),
        "fact_shared": (
            "delar {what} med {org} ({linked_id}), matchningssannolikhet {p:.2f}; det företaget "
            "fick {fate} (källa: kontaktuppgifter, ägar- och styrelseregistret, "
            "utförarregistret, registerhändelser)"
        ),
        "shared_street_address": "gatuadressen",
        "shared_postcode": "postorten",
        "shared_phone_number": "telefonnumret",
        "shared_bankgiro": "bankgirot",
        "shared_plusgiro": "plusgirot",
        "shared_email_domain": "e-postdomänen",
        "shared_person": "en person (listad under ett annat id)",
        "shared_facts": "uppgifter",
    },
}
EVENTS: Tables = {
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
ROLES: Tables = {
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
