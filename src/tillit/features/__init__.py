"""Feature stage: describe each invoice for the scorers, with hard findings and a quarantine.

`build_features(tables, periods, config)` turns validated contract tables into
one row per invoice of the requested periods: keys, audit-only attributes and
float64 model inputs (see FEATURE_DESCRIPTIONS), the facts behind the comparisons
beyond the invoice for the reasons (EVIDENCE_COLUMNS, never model inputs), plus findings with checkable
evidence and the invoices that cannot be described, with the reason.
"""

from tillit.features.build import (
    EVIDENCE_COLUMNS,
    FINDINGS_COLUMNS,
    QUARANTINE_COLUMNS,
    CloseAsideError,
    FeatureSet,
    build_features,
    requested_months,
    wait_for_closes_aside,
)
from tillit.features.catalog import (
    FAIRNESS_COLUMNS,
    FEATURE_COLUMNS,
    FEATURE_DEFINITIONS_VERSION,
    FEATURE_DESCRIPTIONS,
    FINDING_CODES,
    KEY_COLUMNS,
    feature_catalog,
    feature_columns,
    redefined_since,
)
from tillit.features.schema import InvoiceFeatures

__all__ = [
    "EVIDENCE_COLUMNS",
    "FAIRNESS_COLUMNS",
    "FEATURE_COLUMNS",
    "FEATURE_DEFINITIONS_VERSION",
    "FEATURE_DESCRIPTIONS",
    "FINDINGS_COLUMNS",
    "FINDING_CODES",
    "KEY_COLUMNS",
    "QUARANTINE_COLUMNS",
    "CloseAsideError",
    "FeatureSet",
    "InvoiceFeatures",
    "build_features",
    "feature_catalog",
    "feature_columns",
    "redefined_since",
    "requested_months",
    "wait_for_closes_aside",
]
