"""The data contract's closed vocabularies and patterns: one owner, no imports.

The contract schemas, the simulator, the config and the feature stage all read
these, so a new service type or role is added in exactly one place.
"""

import re

SERVICE_TYPES: tuple[str, ...] = ("personal_care", "home_service", "double_staffing", "night_care")
LEGAL_FORMS: tuple[str, ...] = ("AB", "HB", "KB", "EF", "EK", "other")
EVENT_TYPES: tuple[str, ...] = (
    "owner_change",
    "board_change",
    "address_change",
    "f_tax_revoked",
    "f_tax_restored",
    "employer_registration_revoked",
    "tax_debt_registered",
    "tax_debt_cleared",
    "complaint",
    "inspection_remark",
    "sanction",
    "contract_warning",
)
PERSON_ROLES: tuple[str, ...] = ("owner", "board_member", "ceo", "signatory")
VISIT_METHODS: tuple[str, ...] = ("nfc", "app", "manual")
AUDIT_OUTCOMES: tuple[str, ...] = ("confirmed", "cleared")
# How a review was picked (optional column, contract v1.1): random checks are the unbiased sample.
REVIEW_SELECTIONS: tuple[str, ...] = ("random_check", "flagged", "rule", "other")
MAX_HOURS_PER_MONTH = 744.0  # 31 days x 24 h

ORG_NUMBER_PATTERN = r"^\d{6}-\d{4}$"
# A Swedish postcode (`NNN NN`, `NNNNN`) or its three-digit postal area, as pseudonymised (v1.3).
POSTCODE_PATTERN = r"^\d{3}(?: ?\d{2})?$"
# A billing period, `YYYY-MM`.
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
PERIOD_RE = re.compile(PERIOD_PATTERN)
