"""What the feature table holds: column names, plain-language meanings, finding codes.

The names carry their units and windows. Windows come from `FeatureConfig`, so
the module constants describe the default config and `feature_catalog(config)`
describes any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from tillit.config import FeatureConfig

KEY_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "provider_id",
    "client_id",
    "period",
    "service_type",
    "billed_hours",
    "amount_sek",
)

# For the fairness audit only: never a model input.
FAIRNESS_COLUMNS: tuple[str, ...] = (
    "provider_size_band",
    "provider_age_band",
    "provider_legal_form",
    "client_district",
)

# Clients billed by the provider in the period: (lower bound, label).
PROVIDER_SIZE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "1-19 clients"),
    (20, "20-99 clients"),
    (100, "100+ clients"),
)
# Years since company registration at the end of the period: (lower bound, label).
PROVIDER_AGE_BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "under 2 years"),
    (2.0, "2-5 years"),
    (5.0, "5+ years"),
)


# Register events counted per provider in a window (`provider_<name>_<days>d` features).
PROVIDER_EVENT_COUNTS: tuple[str, ...] = (
    "employer_registration_revoked",
    "sanctions",
    "complaints",
    "inspection_remarks",
    "contract_warnings",
    "board_changes",
    "owner_changes",
    "address_changes",
)

# The median absolute deviation of a normal distribution times this is its standard deviation.
MAD_TO_SD = 1.4826


def band_labels(values: np.ndarray, bands: tuple[tuple[float, str], ...]) -> np.ndarray:
    """The label of the highest band whose lower bound each value reaches."""
    out = np.full(len(values), bands[0][1], dtype=object)
    for lower, label in bands:
        out[np.asarray(values) >= lower] = label
    return out


FINDING_CODES: dict[str, str] = {
    "billing_after_death": "The client died before the billed month began.",
    "visits_after_death": "Visits are registered after the day the client died.",
    "visits_during_hospital_stay": "Visits are registered while the client was in hospital.",
    "billed_during_hospital_stay": "The hours billed exceed the grant for the days the "
    "client was at home: the client spent days of the month in hospital.",
    "staff_double_booked": "Staff are registered at two clients at the same time, "
    "repeatedly in the month, in a way registration noise does not explain (key-tag "
    "check-ins at both doors, or an overlap covering most of both visits; a visit checked "
    "in with the key tag counts as evidence of presence, so its partner is the doubtful one).",
    "service_without_grant": "The service type is billed without a grant for it in the month.",
    "amount_mismatch_tariff": "The amount differs from billed hours times the tariff.",
    "billing_outside_contract": "The provider was not approved, or already terminated, "
    "in the billed month.",
    "duplicate_invoice": "The provider sent more than one invoice for the same client, "
    "service type and month.",
}

FINDING_COLUMNS: tuple[str, ...] = tuple(f"finding_{code}" for code in FINDING_CODES)

PEER_Z_BASES: tuple[str, ...] = (
    "billed_over_registered_hours",
    "billed_over_granted_hours",
    "amount_over_tariff_amount",
    "manual_registration_share",
    "visit_duration_cv",
)

_SV_FINDINGS: dict[str, str] = {
    "billing_after_death": "brukaren avled före den fakturerade månaden",
    "visits_after_death": "besök registrerade efter brukarens dödsdag",
    "visits_during_hospital_stay": "besök registrerade under sjukhusvistelse",
    "billed_during_hospital_stay": "fakturerade timmar över beslutet för dagarna brukaren var hemma "
    "(sjukhusvistelse under månaden)",
    "staff_double_booked": "samma personal registrerad hos två brukare samtidigt, upprepade gånger",
    "service_without_grant": "insatstypen fakturerad utan beslut för månaden",
    "amount_mismatch_tariff": "beloppet stämmer inte med timmar gånger timersättning",
    "billing_outside_contract": "utföraren var inte godkänd, eller redan avslutad, den månaden",
    "duplicate_invoice": "mer än en faktura för samma brukare, insatstyp och månad",
}


def feature_catalog(config: FeatureConfig | None = None) -> dict[str, dict[str, str]]:
    """Every model input column, in output order, with its meaning in English and Swedish."""
    config = config or FeatureConfig()
    h = config.longest_window_months
    d = config.provider_event_window_days
    g = config.client_growth_window_months
    lb = config.takeover_lookback_months
    floor = config.min_denominator_hours
    short = config.short_visit_minutes
    plausible = config.max_plausible_staff_hours_per_day

    c: dict[str, dict[str, str]] = {}

    def add(name: str, en: str, sv: str) -> None:
        c[name] = {"en": en, "sv": sv}

    # Hours: billed against registered visits and against the grant.
    add(
        "registered_visit_hours",
        "Hours of visits the provider registered for this client and service type in the month.",
        "Timmar i besök som utföraren registrerat hos brukaren för insatstypen under månaden.",
    )
    add(
        "registered_visit_count",
        "Number of visits the provider registered for this client and service type in the month.",
        "Antal besök som utföraren registrerat hos brukaren för insatstypen under månaden.",
    )
    add(
        "has_no_registered_visits",
        "1 if no visit of the billed service type is registered for the client in the month.",
        "1 om inget besök av den fakturerade insatstypen är registrerat hos brukaren under månaden.",
    )
    add(
        "has_only_other_service_type_visits",
        "1 if the provider registered visits for the client in the month, "
        "but none of the billed service type.",
        "1 om utföraren registrerat besök hos brukaren under månaden, "
        "men inga av den fakturerade insatstypen.",
    )
    add(
        "billed_over_registered_hours",
        f"Billed hours divided by registered visit hours (at least {floor:g} h).",
        f"Fakturerade timmar delat med registrerade besökstimmar (minst {floor:g} h).",
    )
    add(
        "billed_minus_registered_hours",
        "Billed hours minus registered visit hours.",
        "Fakturerade timmar minus registrerade besökstimmar.",
    )
    add(
        "granted_hours",
        "Hours granted for the service type this month (by the days the grant was valid).",
        "Beviljade timmar för insatstypen denna månad (efter de dagar beslutet gällde).",
    )
    add(
        "has_no_matching_grant",
        "1 if the client has no grant for the billed service type with this provider this month.",
        "1 om brukaren saknar beslut om den fakturerade insatstypen hos utföraren denna månad.",
    )
    add(
        "billed_over_granted_hours",
        f"Billed hours divided by granted hours (at least {floor:g} h).",
        f"Fakturerade timmar delat med beviljade timmar (minst {floor:g} h).",
    )
    for w in config.history_windows_months:
        add(
            f"billed_over_registered_hours_{w}m",
            f"Billed over registered hours for this client and service type, "
            f"summed over the months billed among the last {w} (this one included).",
            f"Fakturerade delat med registrerade timmar för brukaren och insatstypen, "
            f"summerat över de fakturerade av de senaste {w} månaderna (denna inräknad).",
        )
    for w in config.history_windows_months:
        add(
            f"billed_over_granted_hours_{w}m",
            f"Billed over granted hours for this client and service type, "
            f"summed over the months billed among the last {w} (this one included).",
            f"Fakturerade delat med beviljade timmar för brukaren och insatstypen, "
            f"summerat över de fakturerade av de senaste {w} månaderna (denna inräknad).",
        )
    add(
        f"months_billed_exactly_at_grant_{h}m",
        f"Months out of the last {h} in which the billed hours equalled the granted hours.",
        f"Antal av de senaste {h} månaderna då fakturerade timmar var exakt de beviljade.",
    )

    # Money.
    add(
        "amount_over_tariff_amount",
        f"Invoiced amount divided by billed hours (at least {floor:g} h) times the tariff "
        "for the service type and year.",
        f"Fakturerat belopp delat med fakturerade timmar (minst {floor:g} h) gånger "
        "timersättningen för insatstypen och året.",
    )
    add(
        "amount_minus_tariff_amount_sek",
        "Invoiced amount minus billed hours times the tariff, in SEK.",
        "Fakturerat belopp minus fakturerade timmar gånger timersättningen, i kronor.",
    )
    add(
        f"amount_per_billed_hour_over_provider_norm_{h}m",
        f"Amount per billed hour divided by the provider's median for the service type "
        f"over the previous {h} months (the municipality's median if it has none).",
        f"Belopp per fakturerad timme delat med utförarens median för insatstypen "
        f"under de {h} föregående månaderna (kommunens median om sådan saknas).",
    )
    add(
        "amount_per_billed_hour_over_municipality_norm",
        "Amount per billed hour divided by the median of all providers for the service type "
        "this month.",
        "Belopp per fakturerad timme delat med medianen för alla utförare för insatstypen "
        "denna månad.",
    )

    # Visit evidence.
    add(
        "manual_registration_share",
        "Share of the month's visits typed in afterwards instead of checked in at the door.",
        "Andel av månadens besök som skrivits in i efterhand i stället för att registreras på plats.",
    )
    add(
        "visit_duration_cv",
        "Spread of visit durations (standard deviation over mean; 0 with fewer than 2 visits). "
        "Copied registrations have almost none.",
        "Spridning i besökens längd (standardavvikelse delat med medelvärde; 0 vid färre än "
        "2 besök). Kopierade registreringar har nästan ingen.",
    )
    add(
        "visit_start_time_spread_minutes",
        "Spread of the visits' start times of day, in minutes (circular standard deviation; "
        "0 with fewer than 2 visits).",
        "Spridning i besökens starttid på dygnet, i minuter (cirkulär standardavvikelse; "
        "0 vid färre än 2 besök).",
    )
    add(
        "repeated_visit_times_share",
        "Share of visits whose start minute and duration repeat exactly on another day.",
        "Andel besök vars startminut och längd upprepas exakt en annan dag.",
    )
    add(
        "round_start_time_share",
        "Share of visits starting exactly on the hour or half hour: times typed in "
        "afterwards are rounded, check-ins at the door are not.",
        "Andel besök som börjar exakt på hel- eller halvtimme: tider som skrivs in i "
        "efterhand avrundas, incheckningar vid dörren gör det inte.",
    )
    add(
        "short_visit_share",
        f"Share of visits shorter than {short:g} minutes.",
        f"Andel besök kortare än {short:g} minuter.",
    )
    add(
        "visit_hours_during_hospital_stay",
        "Visit hours registered on full days the client was admitted to hospital.",
        "Besökstimmar registrerade under hela dagar då brukaren var inskriven på sjukhus.",
    )
    add(
        "visit_hours_after_death",
        "Visit hours registered after the day the client died.",
        "Besökstimmar registrerade efter brukarens dödsdag.",
    )
    add(
        "billed_after_death",
        "1 if the client died before the end of the billed month (all or part of it after death).",
        "1 om brukaren avled före den fakturerade månadens slut (hela eller en del av den efter "
        "dödsfallet).",
    )
    add(
        "period_share_after_death",
        "Share of the billed month's days after the client's death.",
        "Andel av den fakturerade månadens dagar efter brukarens dödsfall.",
    )

    # Staff.
    add(
        "staff_overlap_minutes",
        "Minutes of this invoice's visits during which the same staff member was registered "
        "at another client.",
        "Minuter av fakturans besök då samma personal samtidigt var registrerad hos en annan brukare.",
    )
    add(
        "max_staff_hours_per_day",
        "Most visit hours any of this invoice's staff registered in one day this month, "
        "across all clients and providers.",
        "Flest besökstimmar någon av fakturans personal registrerat under en dag denna månad, "
        "hos alla brukare och utförare.",
    )
    add(
        "staff_hours_over_plausible_per_day",
        f"Hours by which that busiest day exceeds {plausible:g} hours (0 if it does not).",
        f"Timmar som den mest belagda dagen överstiger {plausible:g} timmar (0 om den inte gör det).",
    )
    add(
        "share_staff_at_other_providers",
        "Share of this invoice's staff who also have visits at another provider this month.",
        "Andel av fakturans personal som också har besök hos en annan utförare denna månad.",
    )
    add(
        "distinct_staff_per_visit_hour",
        f"Different staff members on the visits per registered visit hour (at least {floor:g} h).",
        f"Antal olika personer i besöken per registrerad besökstimme (minst {floor:g} h).",
    )

    # Provider.
    add(
        "provider_age_years",
        "Years since the provider's company was registered, at the end of the month.",
        "År sedan utförarens företag registrerades, vid månadens slut.",
    )
    add(
        "provider_approval_age_years",
        "Years since the municipality approved the provider, at the end of the month "
        "(0 if not yet approved).",
        "År sedan kommunen godkände utföraren, vid månadens slut (0 om ännu inte godkänd).",
    )
    add(
        "provider_outside_contract_period",
        "1 if the provider was not yet approved, or already terminated, in the billed month.",
        "1 om utföraren ännu inte var godkänd, eller redan avslutad, den fakturerade månaden.",
    )
    add(
        f"provider_tax_debt_registered_sek_{d}d",
        f"Tax debts registered for the provider in the last {d} days, in SEK.",
        f"Skatteskulder registrerade för utföraren de senaste {d} dagarna, i kronor.",
    )
    add(
        f"provider_f_tax_revoked_{d}d",
        f"Times the provider's F-tax registration was revoked in the last {d} days.",
        f"Antal gånger utförarens F-skatt återkallats de senaste {d} dagarna.",
    )
    add(
        "provider_f_tax_currently_revoked",
        "1 if the provider's F-tax registration was revoked and not restored by the month's end.",
        "1 om utförarens F-skatt var återkallad och inte återställd vid månadens slut.",
    )
    for event, en, sv in (
        (
            "employer_registration_revoked",
            "employer registration revocations",
            "återkallade arbetsgivarregistreringar",
        ),
        ("sanctions", "sanctions", "sanktioner"),
        ("complaints", "complaints", "klagomål"),
        ("inspection_remarks", "inspection remarks", "anmärkningar vid tillsyn"),
        (
            "contract_warnings",
            "contract warnings from the municipality",
            "varningar enligt avtalet från kommunen",
        ),
        ("board_changes", "board changes", "styrelseändringar"),
        ("owner_changes", "owner changes", "ägarbyten"),
        ("address_changes", "address changes", "adressändringar"),
    ):
        add(
            f"provider_{event}_{d}d",
            f"Number of {en} for the provider in the last {d} days.",
            f"Antal {sv} för utföraren de senaste {d} dagarna.",
        )
    add(
        f"provider_client_growth_{g}m",
        f"Clients the provider billed this month divided by those billed {g} months earlier "
        "(at least 1; 1 when the data does not reach that far back).",
        f"Brukare som utföraren fakturerat denna månad delat med dem för {g} månader sedan "
        "(minst 1; 1 när data inte sträcker sig så långt bakåt).",
    )
    add(
        f"provider_clients_from_terminated_providers_share_{lb}m",
        f"Share of the provider's clients this month who were billed in the previous {lb} months "
        "by another provider whose contract has since been terminated.",
        f"Andel av utförarens brukare denna månad som under de {lb} föregående månaderna "
        "fakturerats av en annan utförare vars avtal sedan avslutats.",
    )
    add(
        "provider_persons_linked_to_sanctioned_or_terminated",
        "Owners, board members, CEOs or signatories of the provider who have also held such a "
        "role at another provider that was sanctioned or terminated.",
        "Ägare, styrelseledamöter, vd eller firmatecknare hos utföraren som också haft en sådan "
        "roll hos en annan utförare som fått sanktion eller avslutats.",
    )
    add(
        "provider_clients_billed_log",
        "Natural log of 1 + the number of clients the provider billed this month (its size).",
        "Naturliga logaritmen av 1 + antalet brukare utföraren fakturerat denna månad (storlek).",
    )
    add(
        "provider_staff_per_client",
        "Different staff members in the provider's visits this month per client visited.",
        "Antal olika personal i utförarens besök denna månad per besökt brukare.",
    )

    # Peer context.
    for base in PEER_Z_BASES:
        add(
            f"{base}_peer_z",
            f"How far {base} lies from the median of all invoices for the service type this "
            "month, in robust standard deviations (median and MAD).",
            f"Hur långt {base} ligger från medianen för alla fakturor för insatstypen denna "
            "månad, i robusta standardavvikelser (median och MAD).",
        )

    # Hard findings.
    for code, text in FINDING_CODES.items():
        add(
            f"finding_{code}",
            f"1 if the invoice has the finding '{code}': {text[0].lower()}{text[1:]}",
            f"1 om fakturan har fyndet '{code}': {_SV_FINDINGS[code]}.",
        )
    add(
        "hard_finding_count",
        "Number of different hard findings on the invoice.",
        "Antal olika säkra fynd på fakturan.",
    )
    return c


def feature_columns(config: FeatureConfig | None = None) -> tuple[str, ...]:
    """The model input columns for a config, in output order."""
    return tuple(feature_catalog(config))


FEATURE_DESCRIPTIONS: dict[str, dict[str, str]] = feature_catalog()
FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURE_DESCRIPTIONS)

# Columns that may only be 0 or 1.
BINARY_FEATURES: tuple[str, ...] = (
    "has_no_registered_visits",
    "has_only_other_service_type_visits",
    "has_no_matching_grant",
    "billed_after_death",
    "provider_outside_contract_period",
    "provider_f_tax_currently_revoked",
    *FINDING_COLUMNS,
)
# Columns that may be negative (differences and z-scores); all others are >= 0.
SIGNED_FEATURES: tuple[str, ...] = (
    "billed_minus_registered_hours",
    "amount_minus_tariff_amount_sek",
    *(f"{base}_peer_z" for base in PEER_Z_BASES),
)


# Words in a feature name that mark an attribute of a person. Matched on whole
# words of the name (split at "_" and other non-letters), so "provider_age_years"
# (a company's age) passes while "client_age_years" and "age" do not.
PROTECTED_WORDS: frozenset[str] = frozenset(
    {
        "district",
        "birth",
        "birthyear",
        "born",
        "gender",
        "sex",
        "ethnicity",
        "ethnic",
        "nationality",
        "citizenship",
        "religion",
        "language",
        "disability",
        "diagnosis",
        "postcode",
        "zipcode",
        "postal",
        "personnummer",
    }
)
# "age" is a person's age unless the name says whose else it is.
_NOT_A_PERSON_WORDS = frozenset(
    {"provider", "company", "approval", "registration", "contract", "grant", "invoice"}
)


def protected_features(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are protected attributes or audit-only columns.

    A guard against the obvious mistakes, not a proof: a feature can still act
    as a proxy for a protected attribute, which is what the fairness audit is for.
    """
    found = []
    for name in names:
        words = set(re.split(r"[^a-z0-9]+", name.lower()))
        is_age_of_person = "age" in words and not words & _NOT_A_PERSON_WORDS
        if name in FAIRNESS_COLUMNS or words & PROTECTED_WORDS or is_age_of_person:
            found.append(name)
    return found


def check_no_protected_features(names: Iterable[str]) -> None:
    """Raise ``ValueError`` if any feature is a protected attribute (for training and cards)."""
    found = protected_features(names)
    if found:
        raise ValueError(
            f"protected attributes must not be features: {', '.join(found)}; they are for "
            "the fairness audit only"
        )
