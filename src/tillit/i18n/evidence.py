"""Evidence of hard findings (features/evidence.py gives the facts, these the words).

The words name no client: the invoice's own is "the client" (its id is the risk list's
`client_id`), another one "another client" (its visit id finds it).

A finding's evidence is a list of parts, each a key of this table and its fields;
a field given as `{"items": [...], "total": n}` is a list cut short, rendered
with `listing` ("a, b and 3 more"), and one given as `{"parts": [...]}` is a list of
parts of its own, each worded and joined by "; ".
"""

from __future__ import annotations

from tillit.i18n.types import Tables

EVIDENCE: Tables = {
    "en": {
        "billing_after_death": (
            "the client died on {died} (clients.deceased_on), before billed period {period} "
            "began; the invoice bills {billed_hours:.2f} h, {amount_sek:.2f} SEK"
        ),
        "visits_after_death": (
            "the client died on {died} (clients.deceased_on); {n} visit(s) of this invoice "
            "start after that day: {visits}"
        ),
        "visits_during_hospital_stay": (
            "{n} visit(s) registered on full days the client was in hospital "
            "({stays}, hospital_stays): {visits}"
        ),
        "billed_during_hospital_stay": (
            "the client was in hospital {hospital_days} full day(s) of {days} in {period} "
            "(hospital_stays); granted {granted_hours:.2f} h for the month, {home_hours:.2f} h "
            "for the {home_days} day(s) at home; the invoice bills {billed_hours:.2f} h"
        ),
        "staff_double_booked": "{n} overlapping pair(s) of at least {min_minutes:g} min: {pairs}",
        "staff_double_booked.more": " and {more} more pairs",
        "service_without_grant": (
            "no grant for {service} to the client with provider {provider} valid in "
            "{period} (grants)"
        ),
        "service_without_grant.others": (
            "; the client's grant for {service} that month is with provider(s) {others}"
        ),
        "amount_mismatch_tariff": (
            "amount {amount_sek:.2f} SEK; billed {billed_hours:.2f} h x rate {rate:.2f} SEK/h "
            "({service}, {tariff_year}) = {expected:.2f} SEK; difference {difference:+.2f} SEK"
        ),
        "amount_mismatch_tariff.prevailing": (
            "; most invoices of {service} this month bill {rate:.2f} SEK/h, which gives "
            "{expected:.2f} SEK ({difference:+.2f} SEK)"
        ),
        "billing_outside_contract.applicant": (
            "provider {provider} has no approval date (providers.approved_on is empty: an "
            "applicant) but billed period {period}"
        ),
        "billing_outside_contract.approved_later": (
            "provider {provider} was approved on {approved} (providers.approved_on), after "
            "billed period {period} ended"
        ),
        "billing_outside_contract.terminated": (
            "provider {provider} was terminated on {terminated} (providers.terminated_on), "
            "before billed period {period} began"
        ),
        "duplicate_invoice": (
            "{n} invoices from provider {provider} for the client, {service}, {period}; "
            "the other(s): {others}"
        ),
        # A list cut short.
        "more": " and {more} more",
        "pair": (
            "carer {staff}: visit {visit} ({time}, {method}) and visit {other_visit} at another "
            "client ({other_time}, {method_other}) overlap {minutes} min"
        ),
        "stay.closed": "admitted {admitted}, discharged {until}",
        "stay.open": "admitted {admitted}, not discharged by {until}",
        # How a visit was registered (visits.method).
        "method.nfc": "key tag",
        "method.app": "app",
        "method.manual": "typed in",
    },
    "sv": {
        "billing_after_death": (
            "brukaren avled {died} (enligt brukarregistret), före den fakturerade perioden "
            "{period}; fakturan gäller {billed_hours:.2f} h, {amount_sek:.2f} kr"
        ),
        "visits_after_death": (
            "brukaren avled {died} (enligt brukarregistret); {n} besök på fakturan börjar "
            "efter den dagen: {visits}"
        ),
        "visits_during_hospital_stay": (
            "{n} besök registrerade under hela dagar då brukaren låg på sjukhus "
            "({stays}, enligt sjukhusvistelserna): {visits}"
        ),
        "billed_during_hospital_stay": (
            "brukaren låg på sjukhus {hospital_days} hela dag(ar) av {days} under "
            "{period} (enligt sjukhusvistelserna); beviljat {granted_hours:.2f} h för månaden, "
            "{home_hours:.2f} h för de {home_days} dag(ar)na hemma; fakturan gäller "
            "{billed_hours:.2f} h"
        ),
        "staff_double_booked": ("{n} överlappande par om minst {min_minutes:g} min: {pairs}"),
        "staff_double_booked.more": " och {more} par till",
        "service_without_grant": (
            "inget beslut om {service} för brukaren hos utförare {provider} som gäller "
            "{period} (enligt biståndsbesluten)"
        ),
        "service_without_grant.others": (
            "; brukarens beslut om {service} den månaden gäller utförare {others}"
        ),
        "amount_mismatch_tariff": (
            "belopp {amount_sek:.2f} kr; fakturerat {billed_hours:.2f} h x timersättning "
            "{rate:.2f} kr/h ({service}, {tariff_year}) = {expected:.2f} kr; skillnad "
            "{difference:+.2f} kr"
        ),
        "amount_mismatch_tariff.prevailing": (
            "; de flesta fakturor för {service} denna månad har {rate:.2f} kr/h, vilket ger "
            "{expected:.2f} kr ({difference:+.2f} kr)"
        ),
        "billing_outside_contract.applicant": (
            "utförare {provider} saknar godkännandedatum (inget godkännandedatum i utförarregistret: "
            "sökande) men fakturerade perioden {period}"
        ),
        "billing_outside_contract.approved_later": (
            "utförare {provider} godkändes {approved} (enligt utförarregistret), efter att den "
            "fakturerade perioden {period} slutat"
        ),
        "billing_outside_contract.terminated": (
            "utförare {provider} avslutades {terminated} (enligt utförarregistret), före den "
            "fakturerade perioden {period}"
        ),
        "duplicate_invoice": (
            "{n} fakturor från utförare {provider} för brukaren, {service}, {period}; "
            "de övriga: {others}"
        ),
        "more": " och {more} till",
        "pair": (
            "personal {staff}: besök {visit} ({time}, {method}) och besök {other_visit} hos en "
            "annan brukare ({other_time}, {method_other}) överlappar {minutes} min"
        ),
        "stay.closed": "inskriven {admitted}, utskriven {until}",
        "stay.open": "inskriven {admitted}, inte utskriven {until}",
        "method.nfc": "nyckeltagg",
        "method.app": "app",
        "method.manual": "inskrivet i efterhand",
    },
}
