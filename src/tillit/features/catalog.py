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
from tillit.i18n import text

# The version of what the feature columns mean. A model remembers the version it was
# trained on; scoring with another one is said in the month's drift warnings, because a
# column whose name stayed but whose value changed feeds the model numbers it never saw.
# Bump it (and name the columns) whenever a feature's value changes for the same input;
# tests/unit/test_feature_definitions.py pins every column's values on a small world and
# fails until the version or the pins are updated.
FEATURE_DEFINITIONS_VERSION = 7
FEATURES_REDEFINED: dict[int, tuple[str, ...]] = {
    # Judged against the provider's own habit at its other clients (docs/bench-family.md).
    2: (
        "manual_registration_share",
        "manual_registration_share_peer_z",
        "round_start_time_share",
        "repeated_visit_times_share",
        "short_visit_share",
    ),
    # Version 3 (issue 21): double booking is a finding from two pairs in a month, no
    # longer three (a small invoice copied twice was never found;
    # features.double_booking_min_pairs); honest care that looks odd
    # (docs/bench-family.md): the habit is also the provider's typical other client
    # (`provider_habit_client_quantile`), an amount within `amount_tolerance_sek` of the
    # tariff or the norm is at it, a short check of a service given in rounds
    # (`round_service_types`) is no short visit, and billing's growth over the client's
    # own months is net of the grant's growth.
    3: (
        "finding_staff_double_booked",
        "hard_finding_count",
        "billed_over_own_history_hours_6m",
        "manual_registration_share",
        "manual_registration_share_peer_z",
        "round_start_time_share",
        "repeated_visit_times_share",
        "short_visit_share",
        "amount_over_tariff_amount",
        "amount_over_tariff_amount_peer_z",
        "amount_minus_tariff_amount_sek",
        "amount_per_billed_hour_over_provider_norm_6m",
        "amount_per_billed_hour_over_municipality_norm",
    ),
    # Version 4: in the month of the death an invoice bills after it only beyond the
    # visits registered up to the day of death (`features.death_month_margin_hours`), not
    # because the client died that month (issue 21); the grant that billing's growth is
    # measured net of is averaged over the earlier months that had a grant (a month
    # without a grant row no longer counts as a grant of 0).
    4: (
        "billed_after_death",
        "billed_over_own_history_hours_6m",
        "period_share_after_death",
    ),
    # Version 5 (issue 21) added a column, the share of the invoice's visits overlapping
    # the same carer's previous or next visit by five minutes or more
    # (`carer_overlap_visit_share`), and redefined none: a v4 model never read the new
    # column, so no refusal or drift warning may tell it that the column changed meaning.
    5: (),
    # Version 6 (issue 21, branch honest31): an amount at the month's prevailing rate of its
    # service type (the rate the mismatch finding accepts: most of at least 20 invoices bill
    # it) is at a price too, like one at the tariff: after a mid-year change every provider
    # bills a rate the exported tariff table lacks, and the kronor rounding around that rate
    # was read as far into the tail.
    6: (
        "amount_over_tariff_amount",
        "amount_over_tariff_amount_peer_z",
        "amount_minus_tariff_amount_sek",
    ),
    # Version 7 (issue 21, branch step32) added `billed_beyond_provider_habit_hours`, the
    # hours billed over the registered visits beyond the provider's own usual excess (or
    # its peers') and its billing step; none redefined.
    7: (),
}


def redefined_since(version: int, upto: int = FEATURE_DEFINITIONS_VERSION) -> tuple[str, ...]:
    """The feature columns whose meaning changed after `version`, up to `upto` (sorted, once)."""
    changed = {
        c for v, columns in FEATURES_REDEFINED.items() if version < v <= upto for c in columns
    }
    return tuple(sorted(changed))


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


# Each hard finding and what it means (the words live in tillit.i18n, `finding.<code>`).
FINDING_CODES: dict[str, str] = {
    code: text(f"finding.{code}", "en") + "."
    for code in (
        "billing_after_death",
        "visits_after_death",
        "visits_during_hospital_stay",
        "billed_during_hospital_stay",
        "staff_double_booked",
        "service_without_grant",
        "amount_mismatch_tariff",
        "billing_outside_contract",
        "duplicate_invoice",
    )
}

FINDING_COLUMNS: tuple[str, ...] = tuple(f"finding_{code}" for code in FINDING_CODES)

PEER_Z_BASES: tuple[str, ...] = (
    "billed_over_registered_hours",
    "billed_over_granted_hours",
    "amount_over_tariff_amount",
    "manual_registration_share",
    "visit_duration_cv",
)

# Peer z-scores within service type, month and provider size band: behaviour whose norm
# differs with a provider's size (a large provider's carers register through other systems),
# so a large provider is not unusual for being large.
SIZE_PEER_Z_BASES: tuple[str, ...] = ("staff_manual_registration_share",)


def feature_catalog(config: FeatureConfig | None = None) -> dict[str, dict[str, str]]:
    """Every model input column, in output order, with its meaning in English and Swedish.

    The words are the `feature.*` templates of tillit.i18n; the windows and thresholds
    come from `config`, so a 12-month window is described as one.
    """
    config = config or FeatureConfig()
    h = config.longest_window_months
    d = config.provider_event_window_days
    g = config.client_growth_window_months
    lb = config.takeover_lookback_months
    windows: dict[str, object] = {
        "floor": config.min_denominator_hours,
        "short": config.short_visit_minutes,
        "plausible": config.max_plausible_staff_hours_per_day,
        "h": h,
        "d": d,
        "g": g,
        "lb": lb,
        "regular_n": config.regular_staff_min_visits,
        "regular_cv": round(100 * config.regular_staff_max_duration_cv, 1),
        "gap": round(config.same_time_max_start_gap_minutes),
        "habit_n": config.provider_habit_min_visits,
        "step_share": round(100 * config.billing_step_share),
        "billing_n": config.billing_habit_min_invoices,
    }

    c: dict[str, dict[str, str]] = {}

    def rounds(lang: str) -> str:
        """The services given in rounds (`round_service_types`), named in `lang`."""
        named = [text(f"service.{s}", lang) for s in config.round_service_types]
        return ", ".join(named) or text("feature.no_round_services", lang)

    def add(name: str, key: str, **fields: object) -> None:
        c[name] = {
            lang: text(f"feature.{key}", lang, **windows, rounds=rounds(lang), **fields)
            for lang in ("en", "sv")
        }

    # Hours: billed against registered visits and against the grant.
    for name in (
        "registered_visit_hours",
        "registered_visit_count",
        "has_no_registered_visits",
        "has_only_other_service_type_visits",
        "billed_over_registered_hours",
        "billed_minus_registered_hours",
        "billed_beyond_provider_habit_hours",
        "granted_hours",
        "has_no_matching_grant",
        "billed_over_granted_hours",
    ):
        add(name, name)
    for base in ("billed_over_registered_hours", "billed_over_granted_hours"):
        for w in config.history_windows_months:
            add(f"{base}_{w}m", f"{base}_Wm", w=w)
    add(f"months_billed_exactly_at_grant_{h}m", "months_billed_exactly_at_grant_Hm")
    add(f"billed_over_own_history_hours_{h}m", "billed_over_own_history_hours_Hm")
    add(f"manual_share_rise_over_own_history_{h}m", "manual_share_rise_over_own_history_Hm")
    add(f"keytag_share_drop_over_own_history_{h}m", "keytag_share_drop_over_own_history_Hm")

    # Money.
    add("amount_over_tariff_amount", "amount_over_tariff_amount")
    add("amount_minus_tariff_amount_sek", "amount_minus_tariff_amount_sek")
    add(
        f"amount_per_billed_hour_over_provider_norm_{h}m",
        "amount_per_billed_hour_over_provider_norm_Hm",
    )
    add(
        "amount_per_billed_hour_over_municipality_norm",
        "amount_per_billed_hour_over_municipality_norm",
    )

    # Visit evidence, staff, provider.
    for name in (
        "manual_registration_share",
        "visit_duration_cv",
        "visit_start_time_spread_minutes",
        "repeated_visit_times_share",
        "round_start_time_share",
        "short_visit_share",
        "visit_hours_during_hospital_stay",
        "visit_hours_after_death",
        "billed_after_death",
        "period_share_after_death",
        "staff_overlap_minutes",
        "max_staff_hours_per_day",
        "staff_hours_over_plausible_per_day",
        "share_staff_at_other_providers",
        "distinct_staff_per_visit_hour",
        "max_staff_day_hours_across_providers",
        "staff_manual_registration_share",
        "staff_only_by_hand_hours_share",
        "regular_staff_hours_share",
        "staff_elsewhere_hours_share",
        "carer_overlap_visit_share",
        "provider_age_years",
        "provider_approval_age_years",
        "provider_outside_contract_period",
    ):
        add(name, name)
    add(f"provider_tax_debt_registered_sek_{d}d", "provider_tax_debt_registered_sek_Dd")
    add(f"provider_f_tax_revoked_{d}d", "provider_f_tax_revoked_Dd")
    add("provider_f_tax_currently_revoked", "provider_f_tax_currently_revoked")
    for event in PROVIDER_EVENT_COUNTS:
        c[f"provider_{event}_{d}d"] = {
            lang: text(
                "feature.provider_EVENT_Dd",
                lang,
                d=d,
                event_words=text(f"feature.event_words.{event}", lang),
            )
            for lang in ("en", "sv")
        }
    add(
        f"provider_billed_over_registered_change_{h}m",
        "provider_billed_over_registered_change_Hm",
    )
    add(f"provider_visit_length_change_{h}m", "provider_visit_length_change_Hm")
    add(f"provider_client_growth_{g}m", "provider_client_growth_Gm")
    add(
        f"provider_clients_from_terminated_providers_share_{lb}m",
        "provider_clients_from_terminated_providers_share_LBm",
    )
    for name in (
        "provider_persons_linked_to_sanctioned_or_terminated",
        "provider_clients_billed_log",
        "provider_staff_per_client",
    ):
        add(name, name)

    # Peer context.
    for base in PEER_Z_BASES:
        # The base feature in words (its description up to the first sentence or bracket).
        c[f"{base}_peer_z"] = {
            lang: text("feature.BASE_peer_z", lang, base=short_description(c[base][lang]))
            for lang in ("en", "sv")
        }

    for base in SIZE_PEER_Z_BASES:
        c[f"{base}_peer_z"] = {
            lang: text("feature.BASE_size_peer_z", lang, base=short_description(c[base][lang]))
            for lang in ("en", "sv")
        }

    # Hard findings.
    for code in FINDING_CODES:
        c[f"finding_{code}"] = {
            lang: text("feature.finding_CODE", lang, label=_label(code, lang))
            for lang in ("en", "sv")
        }
    add("hard_finding_count", "hard_finding_count")
    return c


def short_description(description: str) -> str:
    """A description's first clause: a chart label or the subject of a longer sentence."""
    cut = len(description)
    for stop in (" (", ". ", ": "):
        at = description.find(stop)
        if 0 < at < cut:
            cut = at
    return description[:cut].rstrip(".")


def _label(code: str, lang: str) -> str:
    label = text(f"finding.{code}", lang)
    return label[0].lower() + label[1:]


def provider_level(columns: Iterable[str]) -> tuple[str, ...]:
    """The columns that are facts of the whole provider: one value on all its invoices.

    The `provider_*` features (registry events, age, growth, its own history); the
    tail scorer counts at most `training.tail_probability.max_provider_terms` of them.
    """
    return tuple(c for c in columns if c.startswith("provider_"))


# Columns that show one fact of an invoice, each group named by the fact (prefixes of the
# column names, whose windows follow the config). Visits typed in by hand afterwards show
# as a high manual share, its peer z-score, its rise over the client's own months, and
# round and repeated start times: the label-free tail scorer counts such a group once
# (`training.tail_probability.max_terms_per_fact`), as an auditor reads it once. The
# repeated start times also count visits made in the app whose times repeat (a copied
# schedule): an invoice with both typed-in and copied app visits gets one term of the
# group, its largest; the columns stay whole in LightGBM, the forest and the reasons.
ONE_FACT_GROUPS: dict[str, tuple[str, ...]] = {
    "typed_in_afterwards": (
        "manual_registration_share",
        "manual_share_rise_over_own_history_",
        "round_start_time_share",
        "repeated_visit_times_share",
    ),
}


def one_fact_groups(columns: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Of `columns`, those of each ONE_FACT_GROUPS group (by prefix), groups of 2 or more."""
    columns = tuple(columns)
    groups = (
        tuple(c for c in columns if c.startswith(prefixes)) for prefixes in ONE_FACT_GROUPS.values()
    )
    return tuple(group for group in groups if len(group) > 1)


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
# Features whose low values are the suspicious ones (copied registrations vary little,
# new companies are young); for every other feature high values are. Reasons need a
# value on this side of the peers, and the tail probability scorer reads this tail.
LOWER_IS_RISKIER: frozenset[str] = frozenset(
    {
        "visit_duration_cv",
        "visit_start_time_spread_minutes",
        "provider_age_years",
        "provider_approval_age_years",
    }
)
# Columns that may be negative (differences and z-scores); all others are >= 0.
SIGNED_FEATURES: tuple[str, ...] = (
    "billed_minus_registered_hours",
    "amount_minus_tariff_amount_sek",
    *(f"{base}_peer_z" for base in PEER_Z_BASES + SIZE_PEER_Z_BASES),
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
