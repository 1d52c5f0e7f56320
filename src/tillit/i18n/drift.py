"""The report's drift section (review/drift.py)."""

from __future__ import annotations

from tillit.i18n.types import Tables

DRIFT: Tables = {
    "en": {
        "title": "Has this month moved from the training months?",
        "stable": (
            "No: the month's invoices look like those the model learned from "
            "(largest PSI of an invoice feature {max_psi:.2f}, risk score PSI {score_psi:.2f})."
        ),
        "moved": (
            "Yes: this month differs from the months the model learned from ({training}). "
            "The list may be less reliable; review with that in mind and tell the data team."
        ),
        "features": "The features that moved most",
        "feature_line": (
            '<span title="{name}">{description}</span>: {range}: {ref:.0%} of invoices in the training '
            "months, {month:.0%} this month (PSI {psi:.2f})"
        ),
        "score": "Risk score distribution: PSI {psi:.2f}.",
        "flagged": (
            "Flagged by capacity or finding: {month:.1%} of the month's invoices "
            "({reference:.1%} in the training months)."
        ),
        "finding": "{finding}: {month:.1%} of invoices this month, {reference:.1%} in training",
        "range_missing": "missing",
        "range_any": "any value",
        "range_below": "below {high}",
        "range_above": "{low} or more",
        "range_between": "from {low} to {high}",
        "warn_features": "{n} features with PSI above {psi_warn:g}: {names}{more}",
        "warn_score": "the risk score distribution moved: PSI {psi:.2f}",
        "warn_definitions": (
            "the model was trained on feature definitions version {trained}; this tillit "
            "computes version {now} (changed since: {names}): retrain before relying on the "
            "ranking"
        ),
        "warn_finding": "{finding}: {month:.1%} of invoices against {reference:.1%} in training",
        "warn_flagged": (
            "flagged by capacity or finding: {month:.1%} of invoices against {reference:.1%} "
            "in training"
        ),
    },
    "sv": {
        "title": "Skiljer sig månaden från träningsmånaderna?",
        "stable": (
            "Nej: månadens fakturor liknar dem modellen lärde sig av "
            "(största PSI för en fakturavariabel {max_psi:.2f}, PSI för riskpoängen "
            "{score_psi:.2f})."
        ),
        "moved": (
            "Ja: månaden skiljer sig från månaderna modellen lärde sig av ({training}). "
            "Listan kan vara mindre tillförlitlig; granska med det i åtanke och säg till "
            "dataansvariga."
        ),
        "features": "Variablerna som rört sig mest",
        "feature_line": (
            '<span title="{name}">{description}</span>: {range}: {ref:.0%} av fakturorna under '
            "träningsmånaderna, {month:.0%} denna månad (PSI {psi:.2f})"
        ),
        "score": "Riskpoängens fördelning: PSI {psi:.2f}.",
        "flagged": (
            "Flaggade genom kapacitet eller fynd: {month:.1%} av månadens fakturor "
            "({reference:.1%} under träningsmånaderna)."
        ),
        "finding": "{finding}: {month:.1%} av fakturorna denna månad, {reference:.1%} i träningen",
        "range_missing": "saknas",
        "range_any": "alla värden",
        "range_below": "under {high}",
        "range_above": "{low} eller mer",
        "range_between": "från {low} till {high}",
        "warn_features": "{n} variabler med PSI över {psi_warn:g}: {names}{more}",
        "warn_score": "riskpoängens fördelning har flyttat sig: PSI {psi:.2f}",
        "warn_definitions": (
            "modellen tränades på variabeldefinitioner version {trained}; den här tillit "
            "beräknar version {now} (ändrade sedan dess: {names}): träna om innan rangordningen "
            "används"
        ),
        "warn_finding": (
            "{finding}: {month:.1%} av fakturorna mot {reference:.1%} under träningsmånaderna"
        ),
        "warn_flagged": (
            "flaggade genom kapacitet eller fynd: {month:.1%} av fakturorna mot {reference:.1%} "
            "under träningsmånaderna"
        ),
    },
}
