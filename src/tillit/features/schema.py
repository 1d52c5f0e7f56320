"""The feature table's schema: what later stages may rely on.

Fields for the windowed columns are regular expressions, so the same schema
checks the table for any window config (`_3m`, `_12m`, `_365d`, ...).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tillit.data.vocabulary import PERIOD_PATTERN
from tillit.features.catalog import (
    BINARY_FEATURES,
    FEATURE_COLUMNS,
    PROVIDER_AGE_BANDS,
    PROVIDER_SIZE_BANDS,
    SIGNED_FEATURES,
)


def _exact(names: tuple[str, ...]) -> str:
    return "|".join(re.escape(name) for name in names)


def _any_window(name: str) -> str:
    """A feature name as a pattern that accepts any window: `_3m` -> `_<digits>m`."""
    pattern, last = "", 0
    for match in re.finditer(r"_\d+(m|d)(?=_|$)", name):
        pattern += re.escape(name[last : match.start()]) + rf"_\d+{match.group(1)}"
        last = match.end()
    return pattern + re.escape(name[last:])


# The model inputs of any window config; with `strict`, any other column is an error.
_FEATURES = "|".join(dict.fromkeys(_any_window(name) for name in FEATURE_COLUMNS))
FEATURE_PATTERN = rf"^(?:{_FEATURES})$"
BINARY_PATTERN = rf"^(?=(?:{_exact(BINARY_FEATURES)}|finding_.+)$)(?:{_FEATURES})$"
SHARE_PATTERN = rf"^(?!.*_peer_z$)(?=.*share)(?:{_FEATURES})$"
NON_NEGATIVE_PATTERN = rf"^(?!(?:{_exact(SIGNED_FEATURES)})$)(?!.*_peer_z$)(?:{_FEATURES})$"

# The comparison evidence (features/queries.py COMPARISON_EVIDENCE_COLUMNS): ids, dates
# and periods as text, the rest numbers. One list for the schema, the feature stage's
# types and the reasons' formatting (review/reasons.py).
EVIDENCE_TEXT_SUFFIXES = ("_staff", "_date", "_period", "_client", "_provider")
_TEXT = "|".join(suffix.removeprefix("_") for suffix in EVIDENCE_TEXT_SUFFIXES)
EVIDENCE_TEXT_PATTERN = rf"^evidence_.+_(?:{_TEXT})$"
EVIDENCE_NUMBER_PATTERN = rf"^evidence_(?!.+_(?:{_TEXT})$).+$"


class InvoiceFeatures(pa.DataFrameModel):
    """One row per described invoice: keys, audit attributes and float64 model inputs."""

    invoice_id: Series[str] = pa.Field(unique=True)
    provider_id: Series[str]
    client_id: Series[str]
    period: Series[str] = pa.Field(str_matches=PERIOD_PATTERN)
    service_type: Series[str]
    billed_hours: Series[float] = pa.Field(ge=0)
    amount_sek: Series[float] = pa.Field(ge=0)
    provider_size_band: Series[str] = pa.Field(isin=[label for _, label in PROVIDER_SIZE_BANDS])
    provider_age_band: Series[str] = pa.Field(isin=[label for _, label in PROVIDER_AGE_BANDS])
    provider_legal_form: Series[str]
    client_district: Series[str]
    hard_finding_count: Series[float] = pa.Field(ge=0)

    features: Series[float] = pa.Field(alias=FEATURE_PATTERN, regex=True)
    binary_features: Series[float] = pa.Field(alias=BINARY_PATTERN, regex=True, isin=[0.0, 1.0])
    share_features: Series[float] = pa.Field(alias=SHARE_PATTERN, regex=True, ge=0, le=1)
    non_negative_features: Series[float] = pa.Field(alias=NON_NEGATIVE_PATTERN, regex=True, ge=0)

    # The facts behind the comparisons beyond the invoice, for the reasons (never model
    # inputs): optional, so a feature table written before them still passes.
    evidence_text: Series[str] | None = pa.Field(
        alias=EVIDENCE_TEXT_PATTERN, regex=True, nullable=True
    )
    evidence_numbers: Series[float] | None = pa.Field(
        alias=EVIDENCE_NUMBER_PATTERN, regex=True, nullable=True, ge=0
    )

    @pa.dataframe_check(name="features_finite")
    def _finite(cls, df: pd.DataFrame) -> pd.Series:
        numbers = df.filter(regex=FEATURE_PATTERN).to_numpy(dtype="float64")
        return pd.Series(np.isfinite(numbers).all(axis=1), index=df.index)

    @pa.dataframe_check(name="hard_finding_count_equals_finding_flags")
    def _count_matches_flags(cls, df: pd.DataFrame) -> pd.Series:
        flags = [column for column in df.columns if column.startswith("finding_")]
        return df["hard_finding_count"] == df[flags].sum(axis=1)

    class Config:
        strict = True
