"""Reasons and findings in the risk list: service names, reason templates, finding labels.

Reason templates get their numbers already formatted (review/reasons.py): `value`,
`value_0`, `value_2`, `value_3`, `value_pct` (the invoice's value with 1, 0, 2, 3
decimals or as a percentage), `typical...` likewise for the peer median, and
`billed`, `registered`, `granted`, `amount`, `service`.
"""

from __future__ import annotations

from tillit.i18n.types import Tables

SERVICES: Tables = {
    "en": {
        "personal_care": "personal care",
        "home_service": "home service",
        "double_staffing": "double staffing",
        "night_care": "night care",
    },
    "sv": {
        "personal_care": "personlig omvårdnad",
        "home_service": "serviceinsatser",
        "double_staffing": "dubbelbemanning",
        "night_care": "nattinsatser",
    },
}

REASONS: Tables = {
    "en": {
        "billed_over_registered_hours.no_visits": (
            "billed {billed} h with no registered visit of this service type"
        ),
        "billed_over_registered_hours": (
            "billed {billed} h, registered visits {registered} h: "
            "{value_2} times the visits; typical for {service} is {typical_2}"
        ),
        # The denominator under features.min_denominator_hours: the ratio divided by the floor.
        "billed_over_registered_hours.floor": (
            "billed {billed} h, registered visits {registered_2} h, under the floor of {floor} h "
            "a ratio divides by: {value_2} times the floor; typical for {service} is {typical_2}"
        ),
        "billed_minus_registered_hours": (
            "{value} h billed beyond the registered visits; typical for {service} is {typical} h"
        ),
        # Beyond the provider's own habit and billing step (features/build.py
        # billed_beyond_provider_habit): the habit is what the sentence's two hours differ by.
        "billed_beyond_provider_habit_hours": (
            "billed {over} h over {registered_2} h of registered visits; this provider's usual "
            "and billing step explain {habit} h, {value_2} h lie beyond them"
        ),
        # ... when the usual or the step was the other providers' (evidence_habit_of_peers).
        "billed_beyond_provider_habit_hours.peers": (
            "billed {over} h over {registered_2} h of registered visits; the usual and billing "
            "step of this service type's other providers (where this provider has too few "
            "invoices or theirs is larger) explain {habit} h, {value_2} h lie beyond them"
        ),
        "billed_beyond_provider_habit_hours.no_visits": (
            "billed {billed} h with no registered visit of this service type"
        ),
        "billed_over_granted_hours.no_grant": (
            "billed {billed} h with no hours granted for this service type"
        ),
        "billed_over_granted_hours": (
            "billed {billed} h against {granted} h granted: "
            "{value_2} times the grant; typical for {service} is {typical_2}"
        ),
        "billed_over_granted_hours.floor": (
            "billed {billed} h against {granted_2} h granted, under the floor of {floor} h a "
            "ratio divides by: {value_2} times the floor; typical for {service} is {typical_2}"
        ),
        "amount_over_tariff_amount": (
            "amount {amount} SEK is {value_3} times billed hours × tariff; typical is {typical_3}"
        ),
        "manual_registration_share": (
            "{value_pct} of the visits were typed in by hand beyond the provider's share at its "
            "other clients; typical for {service} is {typical_pct}"
        ),
        # Registration shares beyond the provider's own at its other clients (the habit).
        "round_start_time_share": (
            "{value_pct} of the visits started exactly on the hour or half hour beyond the "
            "provider's share at its other clients; typical for {service} is {typical_pct}"
        ),
        "repeated_visit_times_share": (
            "{value_pct} of the visits, typed in or made in the app, repeat their start minute "
            "and length on another day beyond the provider's share at its other clients; "
            "typical for {service} is {typical_pct}"
        ),
        "short_visit_share": (
            "{value_pct} of the visits were short day visits (06:00-21:59) beyond the provider's "
            "share at its other clients; typical for {service} is {typical_pct}"
        ),
        "staff_overlap_minutes": (
            "staff registered at two clients at the same time for {value_0} minutes in the month"
        ),
        "visit_hours_during_hospital_stay": (
            "{value} h of visits registered while the client was in hospital"
        ),
        "visit_hours_after_death": "{value} h of visits registered after the client's date of death",
        "visit_duration_cv": (
            "visit durations vary by {value_pct} (coefficient of variation); typical for "
            "{service} is {typical_pct} (near-identical visits can be copied registrations)"
        ),
        "has_no_registered_visits": (
            "{billed} h billed with no registered visit of this service type"
        ),
        # Comparisons beyond the invoice: the carers' whole days and months, the
        # client's and the provider's own earlier months.
        "max_staff_day_hours_across_providers": (
            "a carer on this invoice registered {value} h in one day across two or more "
            "providers, on a day of visits to this client"
        ),
        "staff_manual_registration_share": (
            "this invoice's carers typed in {value_pct} of all their visits afterwards, at every "
            "client and provider; typical for {service} is {typical_pct}"
        ),
        "staff_only_by_hand_hours_share": (
            "{value_pct} of the registered hours were done by carers with no key-tag or app "
            "check-in at this provider all month"
        ),
        "regular_staff_hours_share": (
            "{value_pct} of the registered hours were done by carers whose visit lengths barely "
            "vary all month (too regular for real care)"
        ),
        "staff_elsewhere_hours_share": (
            "{value_pct} of the registered hours are visits during most of which the same carer "
            "was registered at another client"
        ),
        "staff_elsewhere_hours_share.evidence": (
            "carer {evidence_elsewhere_staff} was registered here on {evidence_elsewhere_date} "
            "and at another client on "
            "{evidence_elsewhere_other_date}{elsewhere_keytag}; {evidence_elsewhere_visits} such "
            "visits on this invoice, {evidence_elsewhere_hours} of {evidence_key_hours} h "
            "({value_pct})"
        ),
        "staff_elsewhere_hours_share.evidence.one": (
            "carer {evidence_elsewhere_staff} was registered here on {evidence_elsewhere_date} "
            "and at another client on "
            "{evidence_elsewhere_other_date}{elsewhere_keytag}; {evidence_elsewhere_visits} such "
            "visit on this invoice, {evidence_elsewhere_hours} of {evidence_key_hours} h "
            "({value_pct})"
        ),
        "staff_elsewhere_hours_share.keytag": " (checked in there by key-tag)",
        "carer_overlap_visit_share": (
            "{value_pct} of the visits overlapped another visit of the same carer"
        ),
        "carer_overlap_visit_share.evidence": (
            "a carer was registered here on {evidence_carer_overlap_date} and at another visit, "
            "for provider {evidence_carer_overlap_other_provider}, on "
            "{evidence_carer_overlap_other_date}: {evidence_carer_overlap_minutes} minutes at "
            "two visits at once; {evidence_carer_overlap_visits} of the invoice's "
            "{evidence_carer_overlap_key_visits} visits overlapped another visit of the same "
            "carer ({value_pct})"
        ),
        "billed_over_own_history_hours": (
            "billed {billed} h, {value_2} times the same client's earlier months; typical for "
            "{service} is {typical_2}"
        ),
        "provider_billed_over_registered_change": (
            "the provider's billed over registered hours is {value_2} times its own earlier "
            "months; typical is {typical_2}"
        ),
        # The same comparisons with their facts (features/queries.py comparison_evidence):
        # the carer (pseudonymous id), the day, the hours, the months compared.
        "max_staff_day_hours_across_providers.evidence": (
            "carer {evidence_busy_day_staff} registered {value} h on {evidence_busy_day_date} "
            "across {evidence_busy_day_providers} providers (this invoice: "
            "{evidence_busy_day_key_hours} h)"
        ),
        "staff_manual_registration_share.evidence": (
            "carer {evidence_manual_staff} typed in {evidence_manual_staff_manual_visits} of "
            "their {evidence_manual_staff_visits} visits in {period} afterwards "
            "({manual_staff_share}, at every client and provider){manual_others}; this "
            "invoice's carers: {value_pct}, typical for {service} is {typical_pct}"
        ),
        "staff_manual_registration_share.others": "; the provider's other carers: {share}",
        "staff_only_by_hand_hours_share.evidence": (
            "{value_pct} of the registered hours ({evidence_by_hand_hours} of "
            "{evidence_key_hours} h) were done by {evidence_by_hand_staff_count} carer(s) with "
            "no key-tag or app check-in at this provider in {period}; carer "
            "{evidence_by_hand_staff}: {evidence_by_hand_staff_visits} visit(s) here, all typed in"
        ),
        "regular_staff_hours_share.evidence": (
            "carer {evidence_regular_staff}: visit lengths identical to the minute "
            "({evidence_regular_staff_mode_minutes} min) on {evidence_regular_staff_mode_visits} "
            "of {evidence_regular_staff_visits} visits in {period}; such carers did {value_pct} "
            "of the registered hours ({evidence_regular_hours} of {evidence_key_hours} h)"
        ),
        "billed_over_own_history_hours.evidence": (
            "billed {billed} h in {period} against {evidence_history_billed} h a month on "
            "average over this client's {evidence_history_months} earlier month(s) with this "
            "provider ({history_span}): {value_2} times; typical for {service} is {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.floor": (
            "billed {billed} h in {period} against {history_billed_2} h a month on average over "
            "this client's {evidence_history_months} earlier month(s) with this provider "
            "({history_span}), under the floor of {floor} h a ratio divides by: {value_2} times "
            "the floor; typical for {service} is {typical_2}"
        ),
        "provider_billed_over_registered_change.evidence": (
            "the provider billed {evidence_provider_billed} h against "
            "{evidence_provider_registered} h of registered visits in {period} ({provider_now} h "
            "per registered hour), against {provider_before} over its "
            "{evidence_provider_history_months} earlier month(s) ({provider_span}: "
            "{evidence_provider_history_billed} h against {evidence_provider_history_registered} "
            "h): {value_2} times its own past; typical is {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.one": (
            "billed {billed} h in {period} against {evidence_history_billed} h in "
            "{history_span}, this client's one earlier month with this provider: {value_2} "
            "times; typical for {service} is {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.one.floor": (
            "billed {billed} h in {period} against {history_billed_2} h in {history_span}, "
            "this client's one earlier month with this provider, under the floor of {floor} h "
            "a ratio divides by: {value_2} times the floor; typical for {service} is {typical_2}"
        ),
        "provider_billed_over_registered_change.evidence.one": (
            "the provider billed {evidence_provider_billed} h against "
            "{evidence_provider_registered} h of registered visits in {period} ({provider_now} h "
            "per registered hour), against {provider_before} in {provider_span}, its one earlier "
            "month ({evidence_provider_history_billed} h against "
            "{evidence_provider_history_registered} h): {value_2} times its own past; typical is "
            "{typical_2}"
        ),
        "span": "{first} to {last}",
        "provider_visit_length_change.evidence": (
            "the provider's {service} visits lasted {evidence_provider_length_minutes} min on "
            "average in {period} against {evidence_provider_length_lowest_minutes} min in "
            "{evidence_provider_length_lowest_period}, its shortest earlier month: {value_2} "
            "times; typical is {typical_2}"
        ),
        "manual_share_rise_over_own_history": (
            "{value_pct} more of the visits typed in afterwards than in the same client's "
            "earlier months"
        ),
        "keytag_share_drop_over_own_history": (
            "{value_pct} fewer of the visits registered at the time checked in at the door by "
            "key tag than in the same client's earlier months"
        ),
        "keytag_share_drop_over_own_history.evidence": (
            "{evidence_keytag_now_share} of the visits registered at the time were checked in "
            "at the client's door by key tag in {period} against "
            "{evidence_keytag_highest_share} in {evidence_keytag_highest_period}, this "
            "client's highest earlier month with the provider: the app replaced the door tag"
        ),
        "provider_visit_length_change": (
            "the provider's {service} visits are {value_2} times as long as in its shortest "
            "earlier month; typical is {typical_2}"
        ),
        # Any feature without a template of its own, from its description.
        "generic": "{description}: {value_2} (typical for {service}: {typical_2})",
        # A peer z-score, after the sentence of its base feature.
        "peer_z.above": "{sentence}: far above comparable invoices",
        "peer_z.below": "{sentence}: far below comparable invoices",
        "nothing_stands_out": "no feature stands out from comparable invoices",
        # A quarantined invoice; the reason is the data contract's rule (in English).
        "cannot_be_scored": "cannot be scored: {reason}",
    },
    "sv": {
        "billed_over_registered_hours.no_visits": (
            "fakturerat {billed} h utan något registrerat besök av insatstypen"
        ),
        "billed_over_registered_hours": (
            "fakturerat {billed} h, registrerade besök {registered} h: "
            "{value_2} gånger besöken; typiskt för {service} är {typical_2}"
        ),
        "billed_over_registered_hours.floor": (
            "fakturerat {billed} h, registrerade besök {registered_2} h, under golvet på {floor} h "
            "som en kvot delar med: {value_2} gånger golvet; typiskt för {service} är {typical_2}"
        ),
        "billed_minus_registered_hours": (
            "{value} h fakturerade utöver registrerade besök; typiskt för {service} är {typical} h"
        ),
        "billed_beyond_provider_habit_hours": (
            "fakturerat {over} h över {registered_2} h registrerade besök; utförarens vanliga "
            "överskott och faktureringssteg förklarar {habit} h, {value_2} h ligger utöver dem"
        ),
        "billed_beyond_provider_habit_hours.peers": (
            "fakturerat {over} h över {registered_2} h registrerade besök; insatstypens övriga "
            "utförares vanliga överskott och faktureringssteg (där utföraren har för få fakturor "
            "eller deras är större) förklarar {habit} h, {value_2} h ligger utöver dem"
        ),
        "billed_beyond_provider_habit_hours.no_visits": (
            "fakturerat {billed} h utan något registrerat besök av insatstypen"
        ),
        "billed_over_granted_hours.no_grant": (
            "fakturerat {billed} h utan beviljade timmar för insatstypen"
        ),
        "billed_over_granted_hours": (
            "fakturerat {billed} h mot {granted} h beviljade: "
            "{value_2} gånger beslutet; typiskt för {service} är {typical_2}"
        ),
        "billed_over_granted_hours.floor": (
            "fakturerat {billed} h mot {granted_2} h beviljade, under golvet på {floor} h som en "
            "kvot delar med: {value_2} gånger golvet; typiskt för {service} är {typical_2}"
        ),
        "amount_over_tariff_amount": (
            "beloppet {amount} kr är {value_3} gånger timmar × timersättning; typiskt är "
            "{typical_3}"
        ),
        "manual_registration_share": (
            "{value_pct} av besöken registrerades manuellt i efterhand utöver utförarens andel hos "
            "dess övriga brukare; typiskt för {service} är {typical_pct}"
        ),
        "round_start_time_share": (
            "{value_pct} av besöken började exakt på hel- eller halvtimme utöver utförarens "
            "andel hos dess övriga brukare; typiskt för {service} är {typical_pct}"
        ),
        "repeated_visit_times_share": (
            "{value_pct} av besöken, inskrivna i efterhand eller gjorda i appen, upprepar "
            "startminut och längd en annan dag utöver utförarens andel hos dess övriga "
            "brukare; typiskt för {service} är {typical_pct}"
        ),
        "short_visit_share": (
            "{value_pct} av besöken var korta dagbesök (06:00-21:59) utöver utförarens andel hos "
            "dess övriga brukare; typiskt för {service} är {typical_pct}"
        ),
        "staff_overlap_minutes": (
            "personal registrerad hos två brukare samtidigt i {value_0} minuter under månaden"
        ),
        "visit_hours_during_hospital_stay": (
            "{value} h besök registrerade medan brukaren låg på sjukhus"
        ),
        "visit_hours_after_death": "{value} h besök registrerade efter brukarens dödsdatum",
        "visit_duration_cv": (
            "besökens längd varierar {value_pct} (variationskoefficient); typiskt för {service} "
            "är {typical_pct} (nästan identiska besök kan vara kopierade registreringar)"
        ),
        "has_no_registered_visits": (
            "{billed} h fakturerade utan något registrerat besök av insatstypen"
        ),
        "max_staff_day_hours_across_providers": (
            "en av fakturans personal registrerade {value} h under en dag hos två eller fler "
            "utförare, en dag med besök hos denna brukare"
        ),
        "staff_manual_registration_share": (
            "fakturans personal skrev in {value_pct} av alla sina besök i efterhand, hos alla "
            "brukare och utförare; typiskt för {service} är {typical_pct}"
        ),
        "staff_only_by_hand_hours_share": (
            "{value_pct} av de registrerade timmarna utfördes av personal utan någon in-/"
            "utcheckning med nyckelbricka eller app hos utföraren under hela månaden"
        ),
        "regular_staff_hours_share": (
            "{value_pct} av de registrerade timmarna utfördes av personal vars besökslängd knappt "
            "varierar under månaden (för regelbundet för verklig omsorg)"
        ),
        "staff_elsewhere_hours_share": (
            "{value_pct} av de registrerade timmarna är besök under vilka samma personal till "
            "största delen var registrerad hos en annan brukare"
        ),
        "staff_elsewhere_hours_share.evidence": (
            "personal {evidence_elsewhere_staff} var registrerad här {evidence_elsewhere_date} "
            "och hos en annan brukare {evidence_elsewhere_other_date}"
            "{elsewhere_keytag}; {evidence_elsewhere_visits} sådana besök på fakturan, "
            "{evidence_elsewhere_hours} av {evidence_key_hours} h ({value_pct})"
        ),
        "staff_elsewhere_hours_share.evidence.one": (
            "personal {evidence_elsewhere_staff} var registrerad här {evidence_elsewhere_date} "
            "och hos en annan brukare {evidence_elsewhere_other_date}"
            "{elsewhere_keytag}; {evidence_elsewhere_visits} sådant besök på fakturan, "
            "{evidence_elsewhere_hours} av {evidence_key_hours} h ({value_pct})"
        ),
        "staff_elsewhere_hours_share.keytag": " (incheckad där med nyckelbricka)",
        "carer_overlap_visit_share": (
            "{value_pct} av besöken överlappade ett annat besök av samma personal"
        ),
        "carer_overlap_visit_share.evidence": (
            "en personal var registrerad här {evidence_carer_overlap_date} och vid ett annat "
            "besök, för utförare {evidence_carer_overlap_other_provider}, "
            "{evidence_carer_overlap_other_date}: {evidence_carer_overlap_minutes} minuter vid "
            "två besök samtidigt; {evidence_carer_overlap_visits} av fakturans "
            "{evidence_carer_overlap_key_visits} besök överlappade ett annat besök av samma "
            "personal ({value_pct})"
        ),
        "billed_over_own_history_hours": (
            "fakturerat {billed} h, {value_2} gånger samma brukares tidigare månader; typiskt för "
            "{service} är {typical_2}"
        ),
        "provider_billed_over_registered_change": (
            "utförarens fakturerade genom registrerade timmar är {value_2} gånger dess egna "
            "tidigare månader; typiskt är {typical_2}"
        ),
        "max_staff_day_hours_across_providers.evidence": (
            "personal {evidence_busy_day_staff} registrerade {value} h den "
            "{evidence_busy_day_date} hos {evidence_busy_day_providers} utförare (på denna "
            "faktura: {evidence_busy_day_key_hours} h)"
        ),
        "staff_manual_registration_share.evidence": (
            "personal {evidence_manual_staff} skrev in {evidence_manual_staff_manual_visits} av "
            "sina {evidence_manual_staff_visits} besök under {period} i efterhand "
            "({manual_staff_share}, hos alla brukare och utförare){manual_others}; fakturans "
            "personal: {value_pct}, typiskt för {service} är {typical_pct}"
        ),
        "staff_manual_registration_share.others": "; utförarens övriga personal: {share}",
        "staff_only_by_hand_hours_share.evidence": (
            "{value_pct} av de registrerade timmarna ({evidence_by_hand_hours} av "
            "{evidence_key_hours} h) utfördes av {evidence_by_hand_staff_count} ur personalen utan "
            "någon in-/utcheckning med nyckelbricka eller app hos utföraren under {period}; "
            "personal {evidence_by_hand_staff}: {evidence_by_hand_staff_visits} besök här, alla "
            "inskrivna i efterhand"
        ),
        "regular_staff_hours_share.evidence": (
            "personal {evidence_regular_staff}: besökslängden var identisk på minuten "
            "({evidence_regular_staff_mode_minutes} min) vid {evidence_regular_staff_mode_visits} "
            "av {evidence_regular_staff_visits} besök under {period}; sådan personal utförde "
            "{value_pct} av de registrerade timmarna ({evidence_regular_hours} av "
            "{evidence_key_hours} h)"
        ),
        "billed_over_own_history_hours.evidence": (
            "fakturerat {billed} h under {period} mot i genomsnitt {evidence_history_billed} h "
            "i månaden under brukarens {evidence_history_months} tidigare månad(er) hos denna "
            "utförare ({history_span}): {value_2} gånger; typiskt för {service} är {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.floor": (
            "fakturerat {billed} h under {period} mot i genomsnitt {history_billed_2} h i "
            "månaden under brukarens {evidence_history_months} tidigare månad(er) hos denna "
            "utförare ({history_span}), under golvet på {floor} h som en kvot delar med: "
            "{value_2} gånger golvet; typiskt för {service} är {typical_2}"
        ),
        "provider_billed_over_registered_change.evidence": (
            "utföraren fakturerade {evidence_provider_billed} h mot "
            "{evidence_provider_registered} h registrerade besök under {period} ({provider_now} h "
            "per registrerad timme), mot {provider_before} under sina "
            "{evidence_provider_history_months} tidigare månad(er) ({provider_span}: "
            "{evidence_provider_history_billed} h mot {evidence_provider_history_registered} h): "
            "{value_2} gånger den egna historiken; typiskt är {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.one": (
            "fakturerat {billed} h under {period} mot {evidence_history_billed} h under "
            "{history_span}, brukarens enda tidigare månad hos denna utförare: {value_2} gånger; "
            "typiskt för {service} är {typical_2}"
        ),
        "billed_over_own_history_hours.evidence.one.floor": (
            "fakturerat {billed} h under {period} mot {history_billed_2} h under {history_span}, "
            "brukarens enda tidigare månad hos denna utförare, under golvet på {floor} h som en "
            "kvot delar med: {value_2} gånger golvet; typiskt för {service} är {typical_2}"
        ),
        "provider_billed_over_registered_change.evidence.one": (
            "utföraren fakturerade {evidence_provider_billed} h mot "
            "{evidence_provider_registered} h registrerade besök under {period} ({provider_now} h "
            "per registrerad timme), mot {provider_before} under {provider_span}, dess enda "
            "tidigare månad ({evidence_provider_history_billed} h mot "
            "{evidence_provider_history_registered} h): {value_2} gånger den egna historiken; "
            "typiskt är {typical_2}"
        ),
        "span": "{first} till {last}",
        "provider_visit_length_change.evidence": (
            "utförarens besök inom {service} varade i genomsnitt "
            "{evidence_provider_length_minutes} min under {period} mot "
            "{evidence_provider_length_lowest_minutes} min under "
            "{evidence_provider_length_lowest_period}, dess kortaste tidigare månad: {value_2} "
            "gånger; typiskt är {typical_2}"
        ),
        "manual_share_rise_over_own_history": (
            "{value_pct} fler av besöken registrerade i efterhand än under samma brukares "
            "tidigare månader"
        ),
        "keytag_share_drop_over_own_history": (
            "{value_pct} färre av besöken registrerade i stunden incheckade med nyckelbricka "
            "vid dörren än under samma brukares tidigare månader"
        ),
        "keytag_share_drop_over_own_history.evidence": (
            "{evidence_keytag_now_share} av besöken registrerade i stunden checkades in med "
            "nyckelbricka vid brukarens dörr under {period} mot "
            "{evidence_keytag_highest_share} under {evidence_keytag_highest_period}, brukarens "
            "högsta tidigare månad hos utföraren: appen har ersatt dörrens nyckelbricka"
        ),
        "provider_visit_length_change": (
            "utförarens besök inom {service} är {value_2} gånger så långa som under dess "
            "kortaste tidigare månad; typiskt är {typical_2}"
        ),
        "generic": "{description}: {value_2} (typiskt för {service}: {typical_2})",
        "peer_z.above": "{sentence}: långt över jämförbara fakturor",
        "peer_z.below": "{sentence}: långt under jämförbara fakturor",
        "nothing_stands_out": "inget sticker ut jämfört med liknande fakturor",
        "cannot_be_scored": "kan inte bedömas: {reason}",
    },
}

# A hard finding's label in the risk list's `findings` column and the feature descriptions.
FINDINGS: Tables = {
    "en": {
        "billing_after_death": "The client died before the billed month began",
        "visits_after_death": "Visits are registered after the day the client died",
        "visits_during_hospital_stay": "Visits are registered while the client was in hospital",
        "billed_during_hospital_stay": "The hours billed exceed the grant for the days the "
        "client was at home: the client spent days of the month in hospital",
        "staff_double_booked": "Staff are registered at two clients at the same time, "
        "repeatedly in the month, in a way registration noise does not explain (key-tag "
        "check-ins at both doors, or an overlap covering most of both visits; a visit checked "
        "in with the key tag counts as evidence of presence, so its partner is the doubtful one)",
        "service_without_grant": "The service type is billed without a grant for it in the month",
        "amount_mismatch_tariff": "The amount differs from billed hours times the tariff",
        "billing_outside_contract": "The provider was not approved, or already terminated, "
        "in the billed month",
        "duplicate_invoice": "The provider sent more than one invoice for the same client, "
        "service type and month",
        # After the label of a finding type demoted to a pattern this month.
        "demoted_note": " (pattern this month, not a finding)",
    },
    "sv": {
        "billing_after_death": "brukaren avled före den fakturerade månaden",
        "visits_after_death": "besök registrerade efter brukarens dödsdag",
        "visits_during_hospital_stay": "besök registrerade under sjukhusvistelse",
        "billed_during_hospital_stay": "fakturerade timmar över beslutet för dagarna brukaren "
        "var hemma (sjukhusvistelse under månaden)",
        "staff_double_booked": "samma personal registrerad hos två brukare samtidigt, "
        "upprepade gånger",
        "service_without_grant": "insatstypen fakturerad utan beslut för månaden",
        "amount_mismatch_tariff": "beloppet stämmer inte med timmar gånger timersättning",
        "billing_outside_contract": "utföraren var inte godkänd, eller redan avslutad, den månaden",
        "duplicate_invoice": "mer än en faktura för samma brukare, insatstyp och månad",
        "demoted_note": " (mönster denna månad, inget fynd)",
    },
}
