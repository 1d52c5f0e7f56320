"""Reasons in words: exact sentences, who counts as atypical, blending, picking the top reasons."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tillit.config import FeatureConfig, SimulationConfig
from tillit.data.validate import validate_tables
from tillit.features import FEATURE_DESCRIPTIONS, build_features, feature_columns
from tillit.features.catalog import FINDING_COLUMNS
from tillit.modelling.risk_model import scorer_weights, supervised_share
from tillit.review.reasons import (
    LOWER_IS_RISKIER,
    NOTHING_STANDS_OUT,
    ReasonStyle,
    ReasonWriter,
    atypical,
    combine_contributions,
    peer_medians,
    reason_sentence,
    top_reasons,
)
from tillit.simulate import simulate

# ------------------------------------------------------------------ reason_sentence


def invoice_row(**overrides: object) -> pd.Series:
    """One personal-care invoice: billed 212 h against 131 h of registered visits."""
    row = {
        "invoice_id": "I-7",
        "provider_id": "P-3",
        "client_id": "C-SECRET-1",
        "period": "2025-03",
        "service_type": "personal_care",
        "billed_hours": 212.0,
        "registered_visit_hours": 131.0,
        "granted_hours": 200.0,
        "amount_sek": 97520.0,
        "billed_over_registered_hours": 212.0 / 131.0,
        "billed_minus_registered_hours": 81.0,
        "billed_over_granted_hours": 1.06,
        "amount_over_tariff_amount": 1.0,
        "manual_registration_share": 0.42,
        "round_start_time_share": 0.53,
        "repeated_visit_times_share": 0.25,
        "short_visit_share": 0.3,
        "staff_overlap_minutes": 37.4,
        "visit_hours_during_hospital_stay": 6.5,
        "visit_hours_after_death": 3.0,
        "visit_duration_cv": 0.02,
        "has_no_registered_visits": 1.0,
        "billed_over_registered_hours_peer_z": 4.26,
        "visit_duration_cv_peer_z": -3.1,
        "provider_tax_debt_registered_sek_365d": 512584.0,
        "provider_sanctions_365d": 2.0,
    }
    row.update(overrides)
    return pd.Series(row, dtype=object)


SENTENCES = [
    (
        "billed_over_registered_hours",
        1.0,
        "billed 212 h, registered visits 131 h: 1.62 times the visits; typical for personal care is 1",
        "fakturerat 212 h, registrerade besök 131 h: 1,62 gånger besöken; typiskt för personlig omvårdnad är 1",
    ),
    (
        "billed_minus_registered_hours",
        0.0,
        "81 h billed beyond the registered visits; typical for personal care is 0 h",
        "81 h fakturerade utöver registrerade besök; typiskt för personlig omvårdnad är 0 h",
    ),
    (
        "billed_over_granted_hours",
        0.95,
        "billed 212 h against 200 h granted: 1.06 times the grant; typical for personal care is 0.95",
        "fakturerat 212 h mot 200 h beviljade: 1,06 gånger beslutet; typiskt för personlig omvårdnad är 0,95",
    ),
    (
        "amount_over_tariff_amount",
        1.0,
        "amount 97,520 SEK is 1 times billed hours × tariff; typical is 1",
        "beloppet 97\u00a0520 kr är 1 gånger timmar × timersättning; typiskt är 1",
    ),
    (
        "manual_registration_share",
        0.05,
        "42% of the visits were typed in by hand beyond the provider's share at its other "
        "clients; typical for personal care is 5%",
        "42\u00a0% av besöken registrerades manuellt i efterhand utöver utförarens andel hos "
        "dess övriga brukare; typiskt för personlig omvårdnad är 5\u00a0%",
    ),
    (
        "round_start_time_share",
        0.0,
        "53% of the visits started exactly on the hour or half hour beyond the provider's share "
        "at its other clients; typical for personal care is 0%",
        "53\u00a0% av besöken började exakt på hel- eller halvtimme utöver utförarens andel hos "
        "dess övriga brukare; typiskt för personlig omvårdnad är 0\u00a0%",
    ),
    (
        "repeated_visit_times_share",
        0.0,
        "25% of the visits, typed in or made in the app, repeat their start minute and length on "
        "another day beyond the provider's share at its other clients; typical for personal care "
        "is 0%",
        "25\u00a0% av besöken, inskrivna i efterhand eller gjorda i appen, upprepar startminut och "
        "längd en annan dag utöver utförarens andel hos dess övriga brukare; typiskt för personlig "
        "omvårdnad är 0\u00a0%",
    ),
    (
        "short_visit_share",
        0.0,
        "30% of the visits were short day visits (06:00-21:59) beyond the provider's share at its "
        "other clients; typical for personal care is 0%",
        "30\u00a0% av besöken var korta dagbesök (06:00-21:59) utöver utförarens andel hos dess "
        "övriga brukare; typiskt för personlig omvårdnad är 0\u00a0%",
    ),
    (
        "staff_overlap_minutes",
        0.0,
        "staff registered at two clients at the same time for 37 minutes in the month",
        "personal registrerad hos två brukare samtidigt i 37 minuter under månaden",
    ),
    (
        "visit_hours_during_hospital_stay",
        0.0,
        "6.5 h of visits registered while the client was in hospital",
        "6,5 h besök registrerade medan brukaren låg på sjukhus",
    ),
    (
        "visit_hours_after_death",
        0.0,
        "3 h of visits registered after the client's date of death",
        "3 h besök registrerade efter brukarens dödsdatum",
    ),
    (
        "visit_duration_cv",
        0.31,
        "visit durations vary by 2% (coefficient of variation); typical for personal care is 31% "
        "(near-identical visits can be copied registrations)",
        "besökens längd varierar 2\u00a0% (variationskoefficient); typiskt för personlig omvårdnad är 31\u00a0% "
        "(nästan identiska besök kan vara kopierade registreringar)",
    ),
    (
        "has_no_registered_visits",
        0.0,
        "212 h billed with no registered visit of this service type",
        "212 h fakturerade utan något registrerat besök av insatstypen",
    ),
    (
        "billed_over_registered_hours_peer_z",
        0.0,
        "billed 212 h, registered visits 131 h: 1.62 times the visits; typical for personal care is 1"
        ": far above comparable invoices",
        "fakturerat 212 h, registrerade besök 131 h: 1,62 gånger besöken; typiskt för personlig "
        "omvårdnad är 1: långt över jämförbara fakturor",
    ),
    (
        "visit_duration_cv_peer_z",
        0.0,
        "visit durations vary by 2% (coefficient of variation); typical for personal care is 31% "
        "(near-identical visits can be copied registrations): far below comparable invoices",
        "besökens längd varierar 2\u00a0% (variationskoefficient); typiskt för personlig omvårdnad är 31\u00a0% "
        "(nästan identiska besök kan vara kopierade registreringar): långt under jämförbara fakturor",
    ),
    (
        "provider_tax_debt_registered_sek_365d",
        0.0,
        "tax debts registered for the provider in the last 365 days, in SEK: 512,584 "
        "(typical for personal care: 0)",
        "skatteskulder registrerade för utföraren de senaste 365 dagarna, i kronor: 512\u00a0584 "
        "(typiskt för personlig omvårdnad: 0)",
    ),
    (
        "provider_sanctions_365d",
        0.0,
        "number of sanctions for the provider in the last 365 days: 2 (typical for personal care: 0)",
        "antal sanktioner för utföraren de senaste 365 dagarna: 2 (typiskt för personlig omvårdnad: 0)",
    ),
]


# The peer norm of a peer z-score's base feature, which the sentence states.
BASE_MEDIANS = {"billed_over_registered_hours": 1.0, "visit_duration_cv": 0.31}


@pytest.mark.parametrize(
    ("feature", "median", "english", "swedish"), SENTENCES, ids=[s[0] for s in SENTENCES]
)
def test_reason_sentence_states_value_and_norm_in_english_and_swedish(
    feature, median, english, swedish
):
    row = invoice_row()
    base_median = BASE_MEDIANS.get(feature.removesuffix("_peer_z"), np.nan)
    assert reason_sentence(feature, row, median, "en", base_median) == english
    assert reason_sentence(feature, row, median, "sv", base_median) == swedish
    # Reasons speak of invoices and hours, never of the person.
    assert "C-SECRET-1" not in english + swedish


def test_generic_sentence_is_the_feature_description_with_value_and_peer_median():
    row = invoice_row(provider_complaints_365d=4.0)
    description = FEATURE_DESCRIPTIONS["provider_complaints_365d"]["en"]
    assert description == "Number of complaints for the provider in the last 365 days."
    assert (
        reason_sentence("provider_complaints_365d", row, 0.5)
        == "number of complaints for the provider in the last 365 days: 4 "
        "(typical for personal care: 0.5)"
    )


def test_peer_z_without_its_base_in_the_row_falls_back_to_its_own_description():
    row = invoice_row(billed_over_granted_hours_peer_z=2.5).drop("billed_over_granted_hours")
    assert reason_sentence("billed_over_granted_hours_peer_z", row, 0.0) == (
        "billed hours divided by granted hours, compared with all invoices of the service type "
        "this month (distance from their median in robust standard deviations: median and "
        "MAD): 2.5 (typical for personal care: 0)"
    )


def test_unknown_service_type_is_named_as_is_and_missing_median_shows_a_dash():
    row = invoice_row(service_type="respite_care")
    assert reason_sentence("billed_minus_registered_hours", row, np.nan) == (
        "81 h billed beyond the registered visits; typical for respite_care is – h"
    )


def assert_habit_says(row: pd.Series, expected: dict[str, str]) -> None:
    for language, sentence in expected.items():
        said = reason_sentence("billed_beyond_provider_habit_hours", row, 0.0, language)
        assert said == sentence


def test_hours_beyond_the_providers_habit_in_words():
    # 212 h billed against 131 h of visits, 80.5 h beyond the provider's habit and step:
    # the habit explains the other 0.5 h of the 81 h over.
    row = invoice_row(billed_beyond_provider_habit_hours=80.5)
    expected = {
        "en": "billed 81 h over 131 h of registered visits; this provider's usual and billing "
        "step explain 0.5 h, 80.5 h lie beyond them",
        "sv": "fakturerat 81 h över 131 h registrerade besök; utförarens vanliga överskott och "
        "faktureringssteg förklarar 0,5 h, 80,5 h ligger utöver dem",
    }
    assert_habit_says(row, expected)
    # Each figure rounded from its own value said 0.67 = 0.34 + 0.34: the habit is the
    # difference of the two shown.
    close = invoice_row(billed_hours=131.674, billed_beyond_provider_habit_hours=0.336)
    assert reason_sentence("billed_beyond_provider_habit_hours", close, 0.0) == (
        "billed 0.67 h over 131 h of registered visits; this provider's usual and billing "
        "step explain 0.33 h, 0.34 h lie beyond them"
    )
    # The usual or the step was the other providers' (too few invoices of its own).
    peers = invoice_row(billed_beyond_provider_habit_hours=80.5, evidence_habit_of_peers=1.0)
    expected = {
        "en": "billed 81 h over 131 h of registered visits; the usual and billing step of this "
        "service type's other providers (where this provider has too few invoices or theirs is "
        "larger) explain 0.5 h, 80.5 h lie beyond them",
        "sv": "fakturerat 81 h över 131 h registrerade besök; insatstypens övriga utförares "
        "vanliga överskott och faktureringssteg (där utföraren har för få fakturor eller deras "
        "är större) förklarar 0,5 h, 80,5 h ligger utöver dem",
    }
    assert_habit_says(peers, expected)
    none = invoice_row(registered_visit_hours=0.0, billed_beyond_provider_habit_hours=212.0)
    assert reason_sentence("billed_beyond_provider_habit_hours", none, 0.0) == (
        "billed 212 h with no registered visit of this service type"
    )


def test_reason_sentence_refuses_an_unknown_language():
    with pytest.raises(ValueError, match="language must be en or sv, not 'de'"):
        reason_sentence("billed_over_registered_hours", invoice_row(), 1.0, "de")


# ------------------------------------------------------------------ peers and atypical values


def month() -> pd.DataFrame:
    """Six personal-care invoices of one month; row 4 bills three times its visits.

    Row 5 has near-identical visit durations and a sanctioned provider; row 0 is ordinary.
    """
    return pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(6)],
            "client_id": [f"C-SECRET-{i}" for i in range(6)],
            "period": "2025-01",
            "service_type": "personal_care",
            "billed_hours": [10.0, 10.0, 11.0, 9.0, 30.0, 2.0],
            "registered_visit_hours": 10.0,
            "amount_sek": [4600.0, 4600.0, 5060.0, 4140.0, 13869.0, 938.4],
            "billed_over_registered_hours": [1.0, 1.0, 1.1, 0.9, 3.0, 0.2],
            "billed_over_registered_hours_peer_z": [0.0, 0.0, 0.67, -0.67, 13.5, -5.4],
            "visit_duration_cv": [0.3, 0.3, 0.35, 0.25, 0.9, 0.02],
            "provider_sanctions_365d": [0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
            "amount_over_tariff_amount": [1.0, 1.0, 1.0, 1.0, 1.005, 1.02],
            "finding_billing_after_death": [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        }
    )


COLUMNS = [
    "billed_over_registered_hours",
    "billed_over_registered_hours_peer_z",
    "visit_duration_cv",
    "provider_sanctions_365d",
    "amount_over_tariff_amount",
    "finding_billing_after_death",
]


def test_peer_medians_are_taken_within_service_type_and_month():
    features = pd.DataFrame(
        {
            "period": ["2025-01", "2025-01", "2025-01", "2025-02", "2025-02"],
            "service_type": ["personal_care", "personal_care", "home_service"]
            + ["personal_care"] * 2,
            "x": [1.0, 3.0, 10.0, 5.0, 7.0],
        }
    )
    assert peer_medians(features, ["x"])["x"].tolist() == [2.0, 2.0, 10.0, 6.0, 6.0]


def test_atypical_needs_more_than_the_peers_spread_on_the_risky_side():
    features = month()
    flags = atypical(features, COLUMNS, peer_medians(features, COLUMNS))
    expected = pd.DataFrame(
        {
            # median 1, MAD 0.1: only 3.0 is far enough; 0.2 is far but on the harmless side.
            "billed_over_registered_hours": [False, False, False, False, True, False],
            "billed_over_registered_hours_peer_z": [False, False, False, False, True, False],
            # Lower is riskier: 0.02 counts, 0.9 does not.
            "visit_duration_cv": [False, False, False, False, False, True],
            # MAD 0 and median 0: any value above counts.
            "provider_sanctions_365d": [False, False, False, False, False, True],
            # MAD 0: at least 1 % of the median is needed; 1.005 is not enough, 1.02 is.
            "amount_over_tariff_amount": [False, False, False, False, False, True],
            "finding_billing_after_death": [False, False, False, False, True, False],
        }
    )
    pd.testing.assert_frame_equal(flags, expected)


def test_lower_is_riskier_covers_copied_registrations_and_young_companies():
    assert {
        "visit_duration_cv",
        "visit_start_time_spread_minutes",
        "provider_age_years",
        "provider_approval_age_years",
    } == LOWER_IS_RISKIER


def test_atypical_treats_a_peer_z_of_a_lower_is_riskier_feature_as_lower_is_riskier():
    features = pd.DataFrame(
        {
            "period": "2025-01",
            "service_type": "night_care",
            "visit_duration_cv_peer_z": [0.0, 0.1, -0.1, 0.0, -6.0, 6.0],
        }
    )
    columns = ["visit_duration_cv_peer_z"]
    flags = atypical(features, columns, peer_medians(features, columns))
    assert flags["visit_duration_cv_peer_z"].tolist() == [False] * 4 + [True, False]


# ------------------------------------------------------------------ combine_contributions


def test_combine_contributions_scales_each_scorer_to_unit_mass_then_weighs():
    lightgbm = pd.DataFrame({"x": [1.0, 0.0], "y": [-3.0, 0.0]}, index=["a", "b"])
    forest = pd.DataFrame({"x": [2.0, 4.0], "z": [2.0, -4.0]}, index=["a", "b"])
    combined = combine_contributions(
        {"lightgbm": lightgbm, "isolation_forest": forest},
        {"lightgbm": 0.25, "isolation_forest": 0.75},
    )
    expected = pd.DataFrame(
        {
            # a: lightgbm 0.25 * (1/4, -3/4); forest 0.75 * (1/2, 1/2).
            # b: lightgbm has no mass and adds nothing; forest 0.75 * (1/2, -1/2).
            "x": [0.25 * 0.25 + 0.75 * 0.5, 0.375],
            "y": [0.25 * -0.75, 0.0],
            "z": [0.375, -0.375],
        },
        index=["a", "b"],
    )
    pd.testing.assert_frame_equal(combined[["x", "y", "z"]], expected)
    # The blend's mass per invoice is at most the sum of the weights.
    assert combined.abs().sum(axis=1).tolist() == pytest.approx([1.0, 0.75])


def test_combine_contributions_weighs_each_row_by_its_sides_share_of_the_noisy_or():
    """Two scorers, w 0.5: row a at LightGBM 0.75 / label-free 0.5, row b at 0.5 / 0.9375."""
    lightgbm = pd.DataFrame({"x": [1.0, 0.0], "y": [-3.0, 0.0]}, index=["a", "b"])
    forest = pd.DataFrame({"x": [2.0, 4.0], "z": [2.0, -4.0]}, index=["a", "b"])
    # -log(1 - p): 2 ln 2 and ln 2 (row a), ln 2 and 4 ln 2 (row b): LightGBM's share 2/3, 1/5
    share = supervised_share(np.array([0.75, 0.5]), np.array([0.5, 0.9375]), 0.5, "noisy_or")
    assert share.tolist() == pytest.approx([2 / 3, 1 / 5], abs=1e-6)
    weights = {
        name: pd.Series(value, index=["a", "b"])
        for name, value in scorer_weights(share, {"isolation_forest": 1.0}).items()
    }
    # the rows in another order than the weights': each row reads its own weight
    combined = combine_contributions(
        {"lightgbm": lightgbm.iloc[::-1], "isolation_forest": forest.iloc[::-1]}, weights
    )
    expected = pd.DataFrame(
        {
            # a: lightgbm 2/3 * (1/4, -3/4); forest 1/3 * (1/2, 1/2).
            # b: lightgbm has no mass; forest 4/5 * (1/2, -1/2).
            "x": [2 / 3 * 0.25 + 1 / 3 * 0.5, 0.4],
            "y": [-0.5, 0.0],
            "z": [1 / 6, -0.4],
        },
        index=["a", "b"],
    )
    pd.testing.assert_frame_equal(
        combined.loc[["a", "b"], ["x", "y", "z"]], expected, check_exact=False, atol=1e-6
    )
    # a number per scorer still weighs every row alike, as before
    fixed = combine_contributions(
        {"lightgbm": lightgbm, "isolation_forest": forest},
        {"lightgbm": 0.5, "isolation_forest": 0.5},
    )
    assert fixed["y"].tolist() == [-0.375, 0.0]


@pytest.mark.parametrize(
    ("supervised", "label_free", "first"),
    [(0.5, 0.999, "copied"), (0.999, 0.5, "sanctions"), (0.9, 0.9, "sanctions")],
)
def test_an_invoice_deep_in_one_sides_tail_gets_that_sides_reasons(
    supervised: float, label_free: float, first: str
):
    """LightGBM reads the sanctions, the tail scorer the copied visits and the amount.

    Under the blend's fixed weights (0.45 / 0.55) the sanctions came first whatever ranked
    the invoice; now the side deeper in its tail leads (at equal percentiles: the weights).
    """
    lightgbm = combined_for({5: {"provider_sanctions_365d": 1.0}})
    tail = combined_for({5: {"visit_duration_cv": 0.6, "amount_over_tariff_amount": 0.4}})
    a, b = np.full(6, supervised), np.full(6, label_free)
    weights = {
        name: pd.Series(value, index=lightgbm.index)
        for name, value in scorer_weights(
            supervised_share(a, b, 0.45, "noisy_or"), {"tail_probability": 1.0}
        ).items()
    }
    got = reasons(combine_contributions({"lightgbm": lightgbm, "tail_probability": tail}, weights))
    amount = "amount 938.4 SEK is 1.02 times billed hours × tariff; typical is 1"
    fixed = reasons(
        combine_contributions(
            {"lightgbm": lightgbm, "tail_probability": tail},
            {"lightgbm": 0.45, "tail_probability": 0.55},
        )
    )
    assert fixed[5] == f"{SANCTIONS} | {COPIED} | {amount}"
    if first == "copied":  # 0.076 LightGBM: 0.076, 0.555, 0.370
        assert got[5] == f"{COPIED} | {amount} | {SANCTIONS}"
    else:
        assert got[5] == fixed[5]


# ------------------------------------------------------------------ top_reasons


def combined_for(rows: dict[int, dict[str, float]]) -> pd.DataFrame:
    combined = pd.DataFrame(0.0, index=range(6), columns=COLUMNS)
    for row, values in rows.items():
        for column, value in values.items():
            combined.loc[row, column] = value
    return combined


BASE_Z = (
    "billed 30 h, registered visits 10 h: 3 times the visits; typical for personal care is 1"
    ": far above comparable invoices"
)
SANCTIONS = (
    "number of sanctions for the provider in the last 365 days: 2 (typical for personal care: 0)"
)
COPIED = (
    "visit durations vary by 2% (coefficient of variation); typical for personal care is 30% "
    "(near-identical visits can be copied registrations)"
)


def reasons(combined: pd.DataFrame, **kwargs: object) -> pd.Series:
    features = month()
    return top_reasons(features, combined, peer_medians(features, COLUMNS), **kwargs)


def test_top_reasons_orders_by_contribution_and_skips_ordinary_values():
    combined = combined_for(
        {
            0: {"billed_over_registered_hours": 0.6, "visit_duration_cv": 0.4},  # nothing atypical
            4: {
                "billed_over_registered_hours_peer_z": 0.4,
                "billed_over_registered_hours": 0.3,  # same reason as its peer z
                "visit_duration_cv": 0.2,  # 0.9 is high, harmless for this feature
                "provider_sanctions_365d": 0.1,  # 0, ordinary
            },
            5: {
                "provider_sanctions_365d": 0.5,
                "visit_duration_cv": 0.3,
                "amount_over_tariff_amount": 0.2,
            },
        }
    )
    got = reasons(combined, exclude=tuple(FINDING_COLUMNS))
    assert got[0] == NOTHING_STANDS_OUT["en"] == "no feature stands out from comparable invoices"
    assert got[4] == BASE_Z
    assert got[5] == (
        f"{SANCTIONS} | {COPIED} | amount 938.4 SEK is 1.02 times billed hours × tariff; typical is 1"
    )
    swapped = combined_for({5: {"provider_sanctions_365d": 0.3, "visit_duration_cv": 0.5}})
    assert reasons(swapped)[5] == f"{COPIED} | {SANCTIONS}"


def test_top_reasons_keeps_at_most_n_and_only_shares_above_min_share():
    combined = combined_for(
        {
            5: {
                "provider_sanctions_365d": 0.5,
                "visit_duration_cv": 0.3,
                "amount_over_tariff_amount": 0.02,
            }
        }
    )
    assert reasons(combined)[5] == f"{SANCTIONS} | {COPIED}"  # 0.02 is below the 3 % default
    assert reasons(combined, n_reasons=1)[5] == SANCTIONS
    assert reasons(combined, min_share=0.4)[5] == SANCTIONS
    assert reasons(combined, min_share=0.6)[5] == NOTHING_STANDS_OUT["en"]


def test_a_feature_and_its_peer_z_make_one_reason_whichever_weighs_more():
    base_first = combined_for(
        {4: {"billed_over_registered_hours": 0.5, "billed_over_registered_hours_peer_z": 0.4}}
    )
    assert reasons(base_first)[4] == (
        "billed 30 h, registered visits 10 h: 3 times the visits; typical for personal care is 1"
    )
    z_first = combined_for(
        {4: {"billed_over_registered_hours": 0.4, "billed_over_registered_hours_peer_z": 0.5}}
    )
    assert reasons(z_first)[4] == BASE_Z


def test_excluded_finding_columns_never_become_reasons():
    combined = combined_for(
        {4: {"finding_billing_after_death": 0.6, "billed_over_registered_hours_peer_z": 0.3}}
    )
    assert reasons(combined)[4].startswith("1 if the invoice has this finding: the client died")
    assert reasons(combined, exclude=tuple(FINDING_COLUMNS))[4] == BASE_Z


def test_risk_lowering_contributions_are_not_reasons_and_swedish_fallback():
    combined = combined_for({4: {"billed_over_registered_hours_peer_z": -0.9}})
    got = reasons(combined, language="sv")
    assert got[4] == "inget sticker ut jämfört med liknande fakturor"
    assert got.index.tolist() == list(range(6))
    assert str(got.dtype) == "str"


def test_top_reasons_in_swedish():
    combined = combined_for({5: {"provider_sanctions_365d": 0.5, "visit_duration_cv": 0.3}})
    assert reasons(combined, language="sv")[5] == (
        "antal sanktioner för utföraren de senaste 365 dagarna: 2 (typiskt för personlig "
        "omvårdnad: 0) | besökens längd varierar 2\u00a0% (variationskoefficient); typiskt för "
        "personlig omvårdnad är 30\u00a0% "
        "(nästan identiska besök kan vara kopierade registreringar)"
    )


def test_a_peer_z_near_zero_is_not_a_reason_even_when_its_peers_are_all_near_zero():
    # Amounts rounded to öre: every ratio is 1 within 1e-6, so the z-scores are tiny too.
    features = pd.DataFrame(
        {
            "period": "2025-01",
            "service_type": "home_service",
            "amount_sek": [400.0, 400.0, 800.0, 800.0, 1751.0, 400.0],
            "amount_over_tariff_amount": [1.0, 1.0, 1.0000002, 0.9999998, 1.0000005, 1.0],
            "amount_over_tariff_amount_peer_z": [0.0, 0.0, 2e-5, -2e-5, 5e-5, 0.0],
        }
    )
    columns = ["amount_over_tariff_amount", "amount_over_tariff_amount_peer_z"]
    combined = pd.DataFrame(0.0, index=features.index, columns=columns)
    combined.loc[4, "amount_over_tariff_amount_peer_z"] = 0.5
    got = top_reasons(features, combined, peer_medians(features, columns))
    assert got[4] == NOTHING_STANDS_OUT["en"], got[4]


# ------------------------------------------------------------------ no reason names a person


@pytest.fixture(scope="module")
def simulated_month() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    sim = simulate(SimulationConfig(clients=200, months=6, seed=5))
    tables = validate_tables(sim.tables).tables
    return tables, build_features(tables, "2025-04", FeatureConfig()).features


@pytest.mark.parametrize("language", ["en", "sv"])
def test_no_reason_for_a_simulated_month_names_a_person(simulated_month, language):
    tables, features = simulated_month
    columns = [c for c in feature_columns(FeatureConfig()) if c not in FINDING_COLUMNS]
    # Every feature weighs the same, so every atypical value of every invoice is stated.
    combined = pd.DataFrame(1.0, index=features.index, columns=columns)
    got = top_reasons(
        features,
        combined,
        peer_medians(features, columns),
        n_reasons=len(columns),
        language=language,
        min_share=0.5,
    )
    sentences = {s for text in got for s in text.split(" | ")}
    assert len(got) == len(features) and len(sentences) > 200  # many features were stated
    people = set(tables["clients"]["client_id"]) | set(tables["provider_persons"]["person_id"])
    tokens = {token for text in got for token in re.findall(r"[A-Za-z]+\d+", text)}
    assert not tokens & people
    assert not {token for token in tokens if re.fullmatch(r"[CR]\d{5}", token)}
    # A carer is named only by the contract's pseudonymous staff id, as the carer of a
    # comparison ("carer S00012 registered ..."), like the findings' evidence does.
    carer = "carer" if language == "en" else "personal"
    staff = set(tables["visits"]["staff_id"])
    named = {t for text in got for t in re.findall(r"(\S+) (S\d{5})\b", text)}
    assert {word for word, _ in named} <= {carer}
    assert {token for _, token in named} <= staff


def test_zero_registered_or_granted_hours_are_said_in_words_not_as_a_floored_ratio():
    row = invoice_row(registered_visit_hours=0.0, granted_hours=0.0)
    assert reason_sentence("billed_over_registered_hours", row, 1.0) == (
        "billed 212 h with no registered visit of this service type"
    )
    assert reason_sentence("billed_over_granted_hours", row, 0.9, "sv") == (
        "fakturerat 212 h utan beviljade timmar för insatstypen"
    )


def test_reasons_describe_features_of_a_non_default_window_from_its_config():
    """A 12-month window is named in words from the config's catalog, not as a raw column name."""
    from tillit.features import feature_catalog
    from tillit.review.reasons import reason_sentence

    feature = "months_billed_exactly_at_grant_12m"
    row = {"service_type": "personal_care", feature: 9.0}
    catalog = feature_catalog(FeatureConfig(history_windows_months=(3, 12)))
    assert reason_sentence(feature, row, 1.0, "en", descriptions=catalog) == (
        "months out of the last 12 in which the billed hours equalled the granted hours: "
        "9 (typical for personal care: 1)"
    )
    assert reason_sentence(feature, row, 1.0, "sv", descriptions=catalog).startswith(
        "antal av de senaste 12 månaderna"
    )


def test_a_ratio_over_a_denominator_under_the_floor_says_it_divided_by_the_floor():
    """0.2 h of visits: the feature is 3 h / 0.5 h (features.min_denominator_hours) = 6, not
    3 / 0.2 = 15; the sentence names the floor so its hours and its ratio agree."""
    row = invoice_row(
        billed_hours=3.0,
        registered_visit_hours=0.2,
        granted_hours=0.25,
        billed_over_registered_hours=3.0 / 0.5,
        billed_over_granted_hours=3.0 / 0.5,
    )
    assert reason_sentence("billed_over_registered_hours", row, 1.1) == (
        "billed 3 h, registered visits 0.2 h, under the floor of 0.5 h a ratio divides by: "
        "6 times the floor; typical for personal care is 1.1"
    )
    assert reason_sentence("billed_over_granted_hours", row, 1.0, "sv") == (
        "fakturerat 3 h mot 0,25 h beviljade, under golvet på 0,5 h som en kvot delar med: "
        "6 gånger golvet; typiskt för personlig omvårdnad är 1"
    )
    history = invoice_row(
        billed_hours=3.0,
        billed_over_own_history_hours_6m=3.0 / 0.5,
        evidence_history_billed=0.3,
        evidence_history_months=1,
        evidence_history_first_period="2025-02",
        evidence_history_last_period="2025-02",
    )
    assert reason_sentence("billed_over_own_history_hours_6m", history, 1.0) == (
        "billed 3 h in 2025-03 against 0.3 h in 2025-02, this client's one earlier month "
        "with this provider, under the floor of 0.5 h a ratio divides by: 6 times the floor; "
        "typical for personal care is 1"
    )
    # At or above the floor the plain sentence: its hours give its ratio.
    above = invoice_row(billed_hours=3.0, registered_visit_hours=0.6)
    above["billed_over_registered_hours"] = 3.0 / 0.6
    assert reason_sentence("billed_over_registered_hours", above, 1.1) == (
        "billed 3 h, registered visits 0.6 h: 5 times the visits; typical for personal care is 1.1"
    )


def test_numbers_written_once_per_float_read_as_each_time() -> None:
    """`_num` keeps each float's text (a month writes ~86,000, ~15,000 different)."""
    from tillit.review.reasons import _num, _number_text

    values = [0.0, -0.0, -0.04, 0.05, 0.46, 1.25, 999.95, 1000.0, -1234.5, 1e6, float("inf")]
    values += [np.float64(v) for v in values] + [3, np.int64(7), float("nan"), np.nan]
    for language in ("en", "sv"):
        for digits in (0, 1, 2, 3):
            for value in values:
                assert _num(value, digits, language) == _number_text(value, digits, language)
                assert _num(value, digits, language) == _number_text(value, digits, language)
    assert _num(-0.0, 1, "en") == _number_text(-0.0, 1, "en") == "0"


def test_a_row_of_column_arrays_reads_like_the_dict_of_its_values() -> None:
    """`get` and `in` of the reasons' row stand-in answer as a dict of the row would."""
    import numpy as np

    from tillit.review.reasons import _Row

    def same(x: object, y: object) -> bool:
        return repr(x) == repr(y) and type(x) is type(y)

    columns = {"a": np.array([1.5, np.nan]), "b": np.array(["x", None], dtype=object)}
    for position in (0, 1):
        row = _Row(columns, position)
        plain = {name: values[position] for name, values in columns.items()}
        for name in ("a", "b", "missing"):
            assert (name in row) == (name in plain)
            assert same(row.get(name), plain.get(name))
            assert same(row.get(name, "–"), plain.get(name, "–"))
    assert _Row(columns, 1).get("b") is None
    assert _Row(columns, 0).get("missing", 0.0) == 0.0


def test_filled_answers_floats_and_text_as_pandas_isna_does() -> None:
    """The fast path for floats and text gives pandas' answer; other values go to pandas."""
    from tillit.review.reasons import _filled

    cells = [1.5, float("nan"), np.float64(0.0), np.float64("nan"), "", "S1", None, pd.NA, pd.NaT]
    assert [_filled(cell) for cell in cells] == [True, False, True, False, True, True] + [False] * 3


# ------------------------------------------------------------------ reasons in parts


def test_reasons_written_in_parts_are_the_reasons_of_all_rows_at_once(simulated_month):
    """The score writes the reasons of the rows not flagged, then the flagged ones': the same."""
    _, features = simulated_month
    columns = [c for c in feature_columns(FeatureConfig()) if c not in FINDING_COLUMNS]
    rng = np.random.default_rng(3)
    combined = pd.DataFrame(
        rng.normal(0.02, 0.05, size=(len(features), len(columns))),
        index=features.index,
        columns=columns,
    )
    medians = peer_medians(features, columns)
    whole = top_reasons(features, combined, medians, n_reasons=4, language="sv")
    assert whole.nunique() > len(features) // 2  # the rows differ: a mix-up would show
    writer = ReasonWriter(features, columns, medians, ReasonStyle(n_reasons=4, language="sv"))
    positions = rng.permutation(len(features))
    first, second = positions[:7], positions[7:]
    parts = pd.concat([writer.reasons(combined.iloc[first]), writer.reasons(combined.iloc[second])])
    pd.testing.assert_series_equal(parts.loc[whole.index], whole)
    assert writer.reasons(combined.iloc[first]).index.tolist() == features.index[first].tolist()


def test_reasons_of_some_rows_judge_atypical_values_among_all_of_them():
    """Whether a value stands out is decided among every invoice, whatever rows are asked."""
    features = month()
    medians = peer_medians(features, COLUMNS)
    combined = combined_for({5: {"provider_sanctions_365d": 0.5, "visit_duration_cv": 0.3}})
    writer = ReasonWriter(features, COLUMNS, medians)
    assert writer.reasons(combined.iloc[[5]]).tolist() == [f"{SANCTIONS} | {COPIED}"]
    assert writer.reasons(combined.iloc[[5, 4]]).tolist() == [
        f"{SANCTIONS} | {COPIED}",
        NOTHING_STANDS_OUT["en"],
    ]
    with pytest.raises(KeyError, match="not prepared"):
        writer.reasons(combined.set_axis(range(10, 16)))
