"""The auditors' page: chrome, reading guide, tags, case sections and patterns."""

from __future__ import annotations

from tillit.i18n.types import Tables

REPORT: Tables = {
    "en": {
        "title": "Invoices to review before payment",
        "period": "Billing month",
        "model": "Model",
        "run": "run",
        "config": "config",
        "generated": "Data fingerprint",
        "received": "Invoices received",
        "scored": "Scored",
        "quarantined": "Quarantined (cannot be scored)",
        "flagged": "Flagged for review",
        "at_stake": "Invoiced on the flagged",
        "in_dispute_card": "In dispute on the flagged",
        "dispute_line": "{dispute} in dispute on {amount} invoiced on the {flagged} ({share} "
        "of that money). In dispute is an estimate of the amount not backed by registered "
        "visits, the grant or the tariff: hours beyond what visits, grant and days at home "
        "back, times the tariff.",
        "flagged_n": "{n} flagged invoices",
        "flagged_n.one": "{n} flagged invoice",
        "split": "{shown} shown here, {rest} in the appendix",
        "invoiced": "invoiced",
        "in_dispute": "In dispute",
        "found": "What was found",
        "top_reason": "Top reason",
        "how": "How to read this list",
        "how_text": (
            "Every invoice of the month was scored. The risk score (0–1) ranks invoices: "
            "higher means look first; it is not a probability of fraud and not a decision. "
            "<b>Findings</b> are facts found in the source data (with the evidence to check). "
            "<b>Reasons</b> are what made the models rank the invoice high, compared with "
            "invoices of the same service type this month. An invoice is flagged because it is "
            "within the review capacity (the {k} highest risks), because it has a finding, or as "
            "a <b>random check</b>, drawn by lot among the other invoices: their confirmed share "
            "estimates what the list misses. A <b>list check</b> is drawn by lot within the list: "
            "review those whatever else you get to, their confirmed share estimates the list's "
            "precision. "
            "Scores at or above {floor} mean a hard finding. tillit flags; people decide."
        ),
        "first": "Look first",
        "by_provider": "Flagged invoices by provider",
        "provider": "Provider",
        "invoices": "flagged invoices",
        "total": "total",
        "rank": "Rank",
        "invoice": "Invoice",
        "client": "Client (pseudonym)",
        "service": "Service",
        "amount": "Amount",
        "risk": "Risk",
        "why": "Why flagged",
        "findings": "Findings",
        "reasons": "Reasons",
        "chart": (
            "What moved the score, per model: red raises the risk, blue lowers it; after each "
            "label the invoice's value, on each bar its contribution"
        ),
        "held": "Quarantined invoices: check by hand before payment",
        "none": "None.",
        "isolation_forest": "Unusualness model (IsolationForest)",
        "tail_probability": "Far out in a feature's own tail (tail probabilities)",
        "lightgbm": "Learned from past reviews (LightGBM)",
        "incomplete": "Evidence incomplete",
        "incomplete_text": (
            "{n} invoices were scored with incomplete evidence: rows of other tables that "
            "belong to them (visits, grants, clients, providers, ...) broke the data contract and "
            'were quarantined, so a finding or reason such as "no registered visit" may reflect '
            "the quarantine rather than the facts. They are marked in the risk list "
            "(columns evidence_incomplete, quarantine_rules) and below; check the source rows "
            "first."
        ),
        "incomplete_text.one": (
            "{n} invoice was scored with incomplete evidence: rows of other tables that "
            "belong to it (visits, grants, clients, providers, ...) broke the data contract and "
            'were quarantined, so a finding or reason such as "no registered visit" may reflect '
            "the quarantine rather than the facts. It is marked in the risk list "
            "(columns evidence_incomplete, quarantine_rules) and below; check the source rows "
            "first."
        ),
    },
    "sv": {
        "title": "Fakturor att granska före utbetalning",
        "period": "Fakturamånad",
        "model": "Modell",
        "run": "körning",
        "config": "konfiguration",
        "generated": "Dataets fingeravtryck",
        "received": "Mottagna fakturor",
        "scored": "Bedömda",
        "quarantined": "I karantän (kan inte bedömas)",
        "flagged": "Flaggade för granskning",
        "at_stake": "Fakturerat på de flaggade",
        "in_dispute_card": "Ifrågasatt på de flaggade",
        "dispute_line": "{dispute} ifrågasatt av {amount} fakturerat på {flagged} ({share} av "
        "beloppet). Ifrågasatt är en uppskattning av den del av beloppet som inte täcks av "
        "registrerade besök, beslutet eller timersättningen: timmar utöver vad besök, beslut "
        "och dagar hemma täcker, gånger timersättningen.",
        "flagged_n": "{n} flaggade fakturor",
        "flagged_n.one": "{n} flaggad faktura",
        "split": "{shown} visas här, {rest} i bilagan",
        "invoiced": "fakturerat",
        "in_dispute": "Ifrågasatt",
        "found": "Vad som hittades",
        "top_reason": "Främsta skäl",
        "how": "Så läser du listan",
        "how_text": (
            "Alla månadens fakturor har bedömts. Riskpoängen (0–1) rangordnar fakturorna: "
            "högre betyder granska först; den är ingen sannolikhet för fusk och inget beslut. "
            "<b>Fynd</b> är fakta i källdata (med underlag att kontrollera). "
            "<b>Skäl</b> är det som fick modellerna att rangordna fakturan högt, jämfört med "
            "fakturor för samma insatstyp denna månad. En faktura flaggas för att den ryms i "
            "granskningskapaciteten (de {k} högsta riskerna), för att den har ett fynd, eller som "
            "<b>stickprov</b>, lottat bland övriga fakturor: andelen bekräftade bland dem skattar "
            "vad listan missar. En <b>listkontroll</b> lottas inom listan: granska dem oavsett vad "
            "mer ni hinner, andelen bekräftade bland dem skattar listans träffsäkerhet. "
            "Poäng på {floor} eller mer betyder ett fynd. "
            "tillit flaggar; människor beslutar."
        ),
        "first": "Granska först",
        "by_provider": "Flaggade fakturor per utförare",
        "provider": "Utförare",
        "invoices": "flaggade fakturor",
        "total": "totalt",
        "rank": "Plats",
        "invoice": "Faktura",
        "client": "Brukare (pseudonym)",
        "service": "Insats",
        "amount": "Belopp",
        "risk": "Risk",
        "why": "Varför flaggad",
        "findings": "Fynd",
        "reasons": "Skäl",
        "chart": (
            "Vad som påverkade poängen, per modell: rött höjer risken, blått sänker den; efter "
            "varje etikett fakturans värde, på varje stapel dess bidrag"
        ),
        "held": "Fakturor i karantän: kontrollera manuellt före utbetalning",
        "none": "Inga.",
        "isolation_forest": "Avvikelsemodell (IsolationForest)",
        "tail_probability": "Långt ut i en egenskaps egen svans (svanssannolikheter)",
        "lightgbm": "Lärd av tidigare granskningar (LightGBM)",
        "incomplete": "Ofullständigt underlag",
        "incomplete_text": (
            "{n} fakturor bedömdes med ofullständigt underlag: rader i andra tabeller som "
            "hör till dem (besök, beslut, brukare, utförare, ...) bröt mot datakontraktet och "
            'lades i karantän, så ett fynd eller skäl som "inga registrerade besök" kan bero på '
            "karantänen och inte på verkligheten. De är markerade i risklistan och nedan; "
            "kontrollera källraderna först."
        ),
        "incomplete_text.one": (
            "{n} faktura bedömdes med ofullständigt underlag: rader i andra tabeller som "
            "hör till den (besök, beslut, brukare, utförare, ...) bröt mot datakontraktet och "
            'lades i karantän, så ett fynd eller skäl som "inga registrerade besök" kan bero på '
            "karantänen och inte på verkligheten. Den är markerad i risklistan och nedan; "
            "kontrollera källraderna först."
        ),
    },
}

# The why-flagged labels as tags (the risk list keeps the English codes).
TAGS: Tables = {
    "en": {
        "capacity": "capacity",
        "hard finding": "hard finding",
        "random check": "random check",
        "list check": "list check",
        "quarantined": "quarantined",
        "finding beyond the bound (not flagged)": "finding beyond the bound (not flagged)",
    },
    "sv": {
        "capacity": "kapacitet",
        "hard finding": "fynd",
        "random check": "stickprov",
        "list check": "listkontroll",
        "quarantined": "karantän",
        "finding beyond the bound (not flagged)": "fynd utanför gränsen (inte flaggad)",
    },
}

# The case sections and appendix of the report (review/casereport.py).
CASE_REPORT: Tables = {
    "en": {
        "patterns": "Patterns this month (not findings)",
        "cases": "Review as one case per provider",
        "case": "provider {p}: {flagged}, {sek} invoiced, {dispute} in dispute ({share} of the "
        "flagged amount); findings: {findings}; review as one case",
        "no_findings": "none (ranked by risk)",
        "bound": "{n} more invoices have a hard finding but are beyond the bound of {b} "
        "findings flagged beyond the capacity ({sek}): they are listed in risk_list.csv "
        "with the finding and 'finding beyond the bound (not flagged)'.",
        "appendix": "Appendix: every provider with an invoice this month",
        "appendix_text": "The counts are the provider page's. Details and charts are shown "
        "for the first {n} flagged invoices by rank; the other flagged invoices are listed "
        "here by id. Every invoice is in risk_list.parquet / risk_list.csv.",
        "provider": "Provider",
        "invoices": "Invoices",
        "amount": "Invoiced",
        "flagged": "Flagged",
        "with_finding": "Flagged with a finding",
        "in_dispute": "In dispute (flagged)",
        "ids": "Flagged, not shown in detail (by rank)",
        "see_above": "details above",
    },
    "sv": {
        "patterns": "Mönster denna månad (inte fynd)",
        "cases": "Granska som ett ärende per utförare",
        "case": "utförare {p}: {flagged}, {sek} fakturerat, {dispute} ifrågasatt ({share} av "
        "det flaggade beloppet); fynd: {findings}; granska som ett ärende",
        "no_findings": "inga (rangordnade efter risk)",
        "bound": "{n} fakturor till har ett fynd men ligger utanför gränsen på {b} fynd "
        "utöver kapaciteten ({sek}): de finns i risklistan (risk_list.csv) med fyndet och "
        "markeringen att de ligger utanför gränsen.",
        "appendix": "Bilaga: alla utförare med en faktura denna månad",
        "appendix_text": "Antalen är desamma som på utförarsidan. Detaljer och diagram visas "
        "för de första {n} flaggade fakturorna i rangordning; övriga flaggade fakturor listas "
        "här med nummer. Alla fakturor finns i risklistan (risk_list.parquet / risk_list.csv).",
        "provider": "Utförare",
        "invoices": "Fakturor",
        "amount": "Fakturerat",
        "flagged": "Flaggade",
        "with_finding": "Flaggade med fynd",
        "in_dispute": "Ifrågasatt (flaggade)",
        "ids": "Flaggade, inte visade i detalj (i rangordning)",
        "see_above": "detaljer ovan",
    },
}

# How a demoted finding type reads as a pattern (review/triage.py).
PATTERNS: Tables = {
    "en": {
        "billing_after_death": "billing after the client's death",
        "visits_after_death": "visits after the client's death",
        "visits_during_hospital_stay": "visits during hospital stays",
        "billed_during_hospital_stay": "billing above the grant for days at home",
        "staff_double_booked": "staff overlaps",
        "service_without_grant": "services billed without a grant",
        "amount_mismatch_tariff": "amounts that differ from hours x tariff",
        "billing_outside_contract": "billing outside the contract period",
        "duplicate_invoice": "duplicate invoices",
        "sentence": (
            "{words} are registered on {share:.0%} of this month's invoices ({n}){past}; {why}: "
            "treated as a recording habit, not a finding; invoices are ranked by how far they "
            "are from their peers."
        ),
        "past": " (in the training months: {history:.0%})",
        "why_common": "fires on {share:.0%} of the month's invoices",
        "why_cleared": "past reviews cleared {cleared:.0%} of {reviews:.0f} invoices with it",
    },
    "sv": {
        "billing_after_death": "fakturering efter brukarens död",
        "visits_after_death": "besök efter brukarens död",
        "visits_during_hospital_stay": "besök under sjukhusvistelser",
        "billed_during_hospital_stay": "fakturering över beslutet för dagarna hemma",
        "staff_double_booked": "överlappande personalregistreringar",
        "service_without_grant": "insatser fakturerade utan beslut",
        "amount_mismatch_tariff": "belopp som avviker från timmar x timersättning",
        "billing_outside_contract": "fakturering utanför avtalsperioden",
        "duplicate_invoice": "dubbla fakturor",
        "sentence": (
            "{words} finns på {share:.0%} av månadens fakturor ({n} st{past}; {why}); behandlas "
            "som ett registreringsmönster, inte som ett fynd: fakturorna rangordnas efter hur "
            "långt de ligger från sina jämförbara."
        ),
        "past": "; under träningsmånaderna {history:.0%}",
        "why_common": "finns på {share:.0%} av månadens fakturor",
        "why_cleared": (
            "tidigare granskningar friade {cleared:.0%} av {reviews:.0f} fakturor med fyndet"
        ),
    },
}

# The risk list's columns and coded values as a Swedish spreadsheet shows them
# (review/score.py `spreadsheet_risk_list`; the English CSV keeps the codes, as the
# Parquet does in both languages).
COLUMNS: Tables = {
    "en": {
        "invoice_id": "Invoice",
        "provider_id": "Provider",
        "client_id": "Client (pseudonym)",
        "period": "Billing month",
        "service_type": "Service",
        "amount_sek": "Amount (SEK)",
        "hours_in_dispute": "Hours in dispute",
        "amount_in_dispute_sek": "Amount in dispute (SEK)",
        "status": "Status",
        "risk_score": "Risk score",
        "rank": "Rank",
        "flagged": "Flagged",
        "why_flagged": "Why flagged",
        "findings": "Findings",
        "reasons": "Reasons",
        "model_name": "Model",
        "model_version": "Model version",
        "run_id": "Run",
        "evidence_incomplete": "Evidence incomplete",
        "quarantine_rules": "Quarantine rules of the evidence",
        "status.scored": "scored",
        "status.quarantined": "quarantined",
        "yes": "yes",
        "no": "no",
    },
    "sv": {
        "invoice_id": "Faktura",
        "provider_id": "Utförare",
        "client_id": "Brukare (pseudonym)",
        "period": "Fakturamånad",
        "service_type": "Insats",
        "amount_sek": "Belopp (kr)",
        "hours_in_dispute": "Ifrågasatta timmar",
        "amount_in_dispute_sek": "Ifrågasatt belopp (kr)",
        "status": "Status",
        "risk_score": "Riskpoäng",
        "rank": "Plats",
        "flagged": "Flaggad",
        "why_flagged": "Varför flaggad",
        "findings": "Fynd",
        "reasons": "Skäl",
        "model_name": "Modell",
        "model_version": "Modellversion",
        "run_id": "Körning",
        "evidence_incomplete": "Ofullständigt underlag",
        "quarantine_rules": "Karantänregler för underlaget",
        "status.scored": "bedömd",
        "status.quarantined": "i karantän",
        "yes": "ja",
        "no": "nej",
    },
}
