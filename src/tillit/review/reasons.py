"""Reasons in words: the top contributions of both scorers, stated so an auditor can check them.

A reason names the feature's value for this invoice and its norm among peers (the
same service type in the same month), in English or Swedish. Reasons speak of
invoices, providers and hours, never of a person.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tillit.features.catalog import LOWER_IS_RISKIER, MAD_TO_SD, feature_catalog
from tillit.features.schema import EVIDENCE_TEXT_SUFFIXES
from tillit.i18n import LANGS, Lang, check_lang, number, placeholders, share, text, words

Language = Lang

# Views of the i18n tables, for callers that want them whole.
SERVICE_NAMES: dict[str, dict[str, str]] = {lang: dict(words("service", lang)) for lang in LANGS}


def _num(value: float, digits: int = 1, language: str = "en") -> str:
    """A value as the language writes it, without trailing zeros below 1 000."""
    if type(value) in (float, np.float64) and not math.isnan(value):
        # A month's reasons write ~86,000 numbers, ~15,000 of them different: each float
        # once. The sign is in the key, since -0.0 == 0.0 (and each is written alone).
        return _float_text(float(value), math.copysign(1.0, value), digits, language)
    return _number_text(value, digits, language)


@lru_cache(maxsize=1 << 16)
def _float_text(value: float, sign: float, digits: int, language: str) -> str:
    return _number_text(value, digits, language)


def _number_text(value: float, digits: int, language: str) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) >= 1000:
        return number(value, language, 0)
    text = f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return number(float(text), language, len(text.partition(".")[2]))


def _pct(value: float, language: str = "en") -> str:
    return share(value, language)


# Features with a sentence of their own (`reason.<feature>` in tillit.i18n), and the
# condition under which the sentence's variant `<feature>.<variant>` is used instead.
_TEMPLATED = frozenset(
    {
        "billed_over_registered_hours",
        "billed_minus_registered_hours",
        "billed_beyond_provider_habit_hours",
        "billed_over_granted_hours",
        "amount_over_tariff_amount",
        "manual_registration_share",
        "round_start_time_share",
        "repeated_visit_times_share",
        "short_visit_share",
        "staff_overlap_minutes",
        "visit_hours_during_hospital_stay",
        "visit_hours_after_death",
        "visit_duration_cv",
        "has_no_registered_visits",
        "max_staff_day_hours_across_providers",
        "staff_manual_registration_share",
        "staff_only_by_hand_hours_share",
        "regular_staff_hours_share",
        "staff_elsewhere_hours_share",
        "carer_overlap_visit_share",
    }
)
# Windowed features whose sentence is the same for every window (`reason.<name without it>`).
_TEMPLATED_ANY_WINDOW = frozenset(
    {
        "billed_over_own_history_hours",
        "provider_billed_over_registered_change",
        "manual_share_rise_over_own_history",
        "provider_visit_length_change",
        "keytag_share_drop_over_own_history",
    }
)
_NO_VISITS: tuple[str, Callable[[Mapping[str, Any]], bool]] = (
    "no_visits",
    lambda r: r["registered_visit_hours"] == 0,
)
_VARIANTS: dict[str, tuple[str, Callable[[Mapping[str, Any]], bool]]] = {
    "billed_over_registered_hours": _NO_VISITS,
    "billed_beyond_provider_habit_hours": _NO_VISITS,
    "billed_over_granted_hours": ("no_grant", lambda r: r["granted_hours"] == 0),
}
# Sentences worded `<feature>.peers` where the comparison that stood was the service
# type's other providers', not the provider's own (1 in this column; a table without it,
# or 0: the plain sentence).
_OF_PEERS: dict[str, str] = {
    "billed_beyond_provider_habit_hours": "evidence_habit_of_peers",
}
# Ratios of billed hours whose denominator (this column) is floored at
# features.min_denominator_hours: under the floor the ratio divides by the floor, not by
# the hours the sentence shows, so the sentence says so (`<key>.floor`).
_FLOORED: dict[str, str] = {
    "billed_over_registered_hours": "registered_visit_hours",
    "billed_over_granted_hours": "granted_hours",
    "billed_over_own_history_hours": "evidence_history_billed",
}
# Comparisons beyond the invoice whose facts the feature stage keeps (`evidence_*` columns,
# features/queries.py comparison_evidence): the sentence `<feature>.evidence` names them when
# the column here is filled (a feature table from before them has none: the plain sentence).
_EVIDENCED: dict[str, str] = {
    "max_staff_day_hours_across_providers": "evidence_busy_day_staff",
    "staff_manual_registration_share": "evidence_manual_staff",
    "staff_only_by_hand_hours_share": "evidence_by_hand_staff",
    "regular_staff_hours_share": "evidence_regular_staff",
    "staff_elsewhere_hours_share": "evidence_elsewhere_staff",
    "carer_overlap_visit_share": "evidence_carer_overlap_date",
    "provider_visit_length_change": "evidence_provider_length_lowest_period",
    "keytag_share_drop_over_own_history": "evidence_keytag_highest_period",
    "billed_over_own_history_hours": "evidence_history_months",
    "provider_billed_over_registered_change": "evidence_provider_history_months",
}
# Sentences worded otherwise when a count is one (`.evidence.one`): one earlier month is
# no average; one visit is "visit", not "visits".
_ONE_MONTH: dict[str, str] = {
    "billed_over_own_history_hours": "evidence_history_months",
    "provider_billed_over_registered_change": "evidence_provider_history_months",
    "staff_elsewhere_hours_share": "evidence_elsewhere_visits",
}
EVIDENCE_PREFIX = "evidence_"
_EVIDENCE_COUNTS = ("_visits", "_count", "_providers", "_months", "_minutes")


def _filled(value: object) -> bool:
    # A row's cells are mostly floats and text: answered here without pandas' scalar
    # isna (60,000 calls a month); anything else (None, NA, NaT, ...) as pandas says.
    if type(value) in (float, np.float64):
        return value == value  # only NaN is not equal to itself
    if type(value) is str:
        return True
    return value is not None and not bool(pd.isna(value))


def _evidence(row: Mapping[str, Any], name: str, language: str) -> str:
    """One fact of an `evidence_*` column as the sentence shows it (by what the name holds)."""
    value: Any = row.get(name)
    if not _filled(value):
        return "–"
    if name.endswith(EVIDENCE_TEXT_SUFFIXES):
        return str(value)
    if name.endswith("_share"):
        return _pct(float(value), language)
    if name.endswith(_EVIDENCE_COUNTS):
        return number(round(float(value)), language, 0)
    return _num(float(value), 1, language)


def _span(row: Mapping[str, Any], prefix: str, language: str) -> str:
    """The months compared: `2026-04 to 2026-09`, or the one month."""
    first, last = row.get(f"{prefix}_first_period"), row.get(f"{prefix}_last_period")
    if not (_filled(first) and _filled(last)):
        return "–"
    if first == last:
        return str(first)
    return text("reason.span", language, first=str(first), last=str(last))


def _manual_others(row: Mapping[str, Any], language: str) -> str:
    """The provider's other carers' typed-in share, when it has other carers."""
    others: Any = row.get("evidence_manual_other_staff_share")
    if not _filled(others):
        return ""
    return text(
        "reason.staff_manual_registration_share.others",
        language,
        share=_pct(float(others), language),
    )


def _per_hour(row: Mapping[str, Any], billed: str, registered: str, language: str) -> str:
    """Billed hours per registered hour (two decimals), or a dash without registered hours."""
    over: Any = row.get(registered)
    if not (_filled(over) and float(over) > 0):
        return "–"
    return number(float(row[billed]) / float(over), language, 2)


def _over(row: Mapping[str, Any]) -> float:
    """Hours billed over the registered visits."""
    return float(row["billed_hours"]) - float(row["registered_visit_hours"])


def _divided_by(row: Mapping[str, Any], value: float) -> float:
    """What a ratio of billed hours divided by: billed hours over the ratio (NaN when 0)."""
    billed, value = float(row["billed_hours"]), float(value)
    return billed / value if billed > 0 and value > 0 else np.nan


def _under_floor(row: Mapping[str, Any], denominator: str, value: float) -> bool:
    """Whether the ratio `value` divided by more than `denominator`'s hours: by the floor.

    Read from the figures themselves (billed / ratio), so it holds whatever floor the
    features were built with.
    """
    shown: Any = row.get(denominator)
    divided = _divided_by(row, value)
    if not _filled(shown) or np.isnan(divided):
        return False
    return divided > float(shown) * (1 + 1e-6) + 1e-9


def _manual_staff_share(row: Mapping[str, Any], language: str) -> str:
    visits: Any = row.get("evidence_manual_staff_visits")
    if not _filled(visits) or float(visits) <= 0:
        return "–"
    return _pct(float(row["evidence_manual_staff_manual_visits"]) / float(visits), language)


def _elsewhere_keytag(row: Mapping[str, Any], language: str) -> str:
    """Whether a key-tag showed the carer at the other client (the stronger evidence)."""
    keytag: Any = row.get("evidence_elsewhere_other_keytag")
    if not (_filled(keytag) and float(keytag) > 0):
        return ""
    return text("reason.staff_elsewhere_hours_share.keytag", language)


# How each field a reason template may name is formatted from (row, value, median,
# service, language).
_FIELDS: dict[str, Callable[[Mapping[str, Any], float, float, str, str], str]] = {
    "service": lambda r, v, m, s, lang: s,
    "billed": lambda r, v, m, s, lang: _num(r["billed_hours"], 1, lang),
    "registered": lambda r, v, m, s, lang: _num(r["registered_visit_hours"], 1, lang),
    "granted": lambda r, v, m, s, lang: _num(r["granted_hours"], 1, lang),
    # Billed over registered hours, and the part of it the provider's habit explains (two
    # decimals: a small invoice's 0.68 h over is not "0.7 h", its 0.04 h habit not "0 h");
    # the habit is the difference of the two shown figures, so over = habit + beyond as read.
    "over": lambda r, v, m, s, lang: _num(_over(r), 2, lang),
    "habit": lambda r, v, m, s, lang: _num(round(_over(r), 2) - round(float(v), 2), 2, lang),
    # Under a floor two decimals, so 0.46 h is not shown as the 0.5 h it was floored to.
    "registered_2": lambda r, v, m, s, lang: _num(r["registered_visit_hours"], 2, lang),
    "granted_2": lambda r, v, m, s, lang: _num(r["granted_hours"], 2, lang),
    "history_billed_2": lambda r, v, m, s, lang: _num(float(r["evidence_history_billed"]), 2, lang),
    "floor": lambda r, v, m, s, lang: _num(_divided_by(r, v), 2, lang),
    "amount": lambda r, v, m, s, lang: _num(r["amount_sek"], 1, lang),
    "value": lambda r, v, m, s, lang: _num(v, 1, lang),
    "value_0": lambda r, v, m, s, lang: _num(v, 0, lang),
    "value_2": lambda r, v, m, s, lang: _num(v, 2, lang),
    "value_3": lambda r, v, m, s, lang: _num(v, 3, lang),
    "value_pct": lambda r, v, m, s, lang: _pct(v, lang),
    "typical": lambda r, v, m, s, lang: _num(m, 1, lang),
    "typical_2": lambda r, v, m, s, lang: _num(m, 2, lang),
    "typical_3": lambda r, v, m, s, lang: _num(m, 3, lang),
    "typical_pct": lambda r, v, m, s, lang: _pct(m, lang),
    "period": lambda r, v, m, s, lang: str(r["period"]),
    "history_span": lambda r, v, m, s, lang: _span(r, "evidence_history", lang),
    "provider_span": lambda r, v, m, s, lang: _span(r, "evidence_provider_history", lang),
    "manual_others": lambda r, v, m, s, lang: _manual_others(r, lang),
    "provider_now": lambda r, v, m, s, lang: _per_hour(
        r, "evidence_provider_billed", "evidence_provider_registered", lang
    ),
    "provider_before": lambda r, v, m, s, lang: _per_hour(
        r, "evidence_provider_history_billed", "evidence_provider_history_registered", lang
    ),
    "manual_staff_share": lambda r, v, m, s, lang: _manual_staff_share(r, lang),
    "elsewhere_keytag": lambda r, v, m, s, lang: _elsewhere_keytag(r, lang),
}


@lru_cache(maxsize=256)
def _needs(key: str, language: str) -> tuple[str, ...]:
    """The formatted fields the reason template `key` names (others are not computed)."""
    template = words("reason", language)[key.removeprefix("reason.")]
    return tuple(
        name
        for name in sorted(placeholders(template))
        if name in _FIELDS or name.startswith(EVIDENCE_PREFIX)
    )


def _evidence_field(name: str) -> Callable[[Mapping[str, Any], float, float, str, str], str]:
    return lambda r, v, m, s, lang: _evidence(r, name, lang)


@lru_cache(maxsize=256)
def _formatters(
    key: str, language: str
) -> tuple[tuple[str, Callable[[Mapping[str, Any], float, float, str, str], str]], ...]:
    """Each field of `_needs` with the function that formats it, looked up once per template."""
    return tuple(
        (name, _evidence_field(name) if name.startswith(EVIDENCE_PREFIX) else _FIELDS[name])
        for name in _needs(key, language)
    )


def _fill(
    key: str, language: str, row: Mapping[str, Any], value: float, median: float, service: str
) -> dict[str, str]:
    return {
        name: field(row, value, median, service, language)
        for name, field in _formatters(key, language)
    }


def _templated(
    feature: str,
    row: Mapping[str, Any],
    language: Language,
    value: float,
    median: float,
    service: str,
) -> str:
    key = f"reason.{feature}"
    if feature in _VARIANTS:
        variant, applies = _VARIANTS[feature]
        key = f"reason.{feature}.{variant}" if applies(row) else key
    if feature in _OF_PEERS and key == f"reason.{feature}" and row.get(_OF_PEERS[feature]) == 1:
        key = f"reason.{feature}.peers"
    if feature in _EVIDENCED and _filled(row.get(_EVIDENCED[feature])):
        key = f"reason.{feature}.evidence"
        if feature in _ONE_MONTH and row[_ONE_MONTH[feature]] == 1:
            key = f"{key}.one"
    floored = feature in _FLOORED and _under_floor(row, _FLOORED[feature], value)
    if floored and f"{key}.floor" in _FLOOR_KEYS:  # a `no_visits` sentence has no ratio
        key = f"{key}.floor"
    return text(key, language, **_fill(key, language, row, value, median, service))


_FLOOR_KEYS = frozenset(f"reason.{key}" for key in words("reason", "en") if key.endswith(".floor"))
_WINDOW = re.compile(r"_\d+(m|d)$")
NOTHING_STANDS_OUT: dict[str, str] = {
    lang: text("reason.nothing_stands_out", lang) for lang in LANGS
}


# What each feature means, by name and language: `feature_catalog(config)` of the features' config.
Descriptions = Mapping[str, Mapping[str, str]]


def _generic(
    feature: str,
    language: Language,
    fields: dict[str, str],
    descriptions: Descriptions,
) -> str:
    description = descriptions.get(feature, {}).get(language, feature).rstrip(".")
    description = description[0].lower() + description[1:] if description else feature
    return text("reason.generic", language, description=description, **fields)


PEER_Z_SUFFIX = "_peer_z"


def peer_medians(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Each feature's median among invoices of the same service type and month."""
    return features.groupby(["period", "service_type"])[columns].transform("median")


def atypical(features: pd.DataFrame, columns: list[str], medians: pd.DataFrame) -> pd.DataFrame:
    """Whether each value stands out from its peers on the risky side: a reason to check.

    A value counts when it differs from the peer median by more than the peers' own
    spread (1.4826 x MAD, at least 1 % of the median's size), above the median (below
    it for LOWER_IS_RISKIER features). A model may give weight to an ordinary value,
    or to an unusually harmless one, but neither is a reason to review an invoice.
    """
    values = features[columns]
    signed = values - medians
    deviation = signed.abs()
    grouped = deviation.groupby([features["period"], features["service_type"]])
    spread = MAD_TO_SD * grouped.transform("median")
    floor = 0.01 * medians.abs()
    # A z-score is already in units of the peers' spread: it must reach 1 to count.
    floor[[c for c in columns if c.endswith(PEER_Z_SUFFIX)]] = 1.0
    stands_out = deviation > np.maximum(spread, floor).where(lambda f: f > 0, 1e-9)
    lower = [c for c in columns if c.removesuffix(PEER_Z_SUFFIX) in LOWER_IS_RISKIER]
    riskier_side = signed > 0
    riskier_side[lower] = signed[lower] < 0
    return stands_out & riskier_side


def reason_sentence(
    feature: str,
    row: Mapping[str, Any],
    median: float,
    language: Language = "en",
    base_median: float = np.nan,
    descriptions: Descriptions | None = None,
) -> str:
    """One checkable sentence about a feature of one invoice.

    A peer z-score is stated through its base feature (with `base_median`, the base
    feature's peer norm), whose value the auditor can check. A feature without a
    template of its own is described from `descriptions` (default: the default
    feature config's catalog; pass the catalog of the config the features were built with).
    """
    language = check_lang(language)
    service = SERVICE_NAMES[language].get(row["service_type"], str(row["service_type"]))
    base = feature.removesuffix(PEER_Z_SUFFIX)
    if base != feature and base in row:
        z = float(row[feature])
        sentence = reason_sentence(base, row, base_median, language, descriptions=descriptions)
        # The distance in spreads is for the model; the auditor checks the value and the norm.
        side = "above" if z > 0 else "below"
        return text(f"reason.peer_z.{side}", language, sentence=sentence)
    value = float(row[feature])
    if feature in _TEMPLATED:
        return _templated(feature, row, language, value, median, service)
    if (family := _WINDOW.sub("", feature)) in _TEMPLATED_ANY_WINDOW:
        return _templated(family, row, language, value, median, service)
    if descriptions is None:
        descriptions = feature_catalog()
    fields = _fill("reason.generic", language, row, value, median, service)
    return _generic(feature, language, fields, descriptions)


def combine_contributions(
    contributions: Mapping[str, pd.DataFrame], weights: Mapping[str, float | pd.Series]
) -> pd.DataFrame:
    """One contribution per feature across scorers, each scorer's row scaled to unit mass.

    The scorers speak different units (log-odds, path length), so each row is divided
    by its total absolute contribution before the scorer's weight is applied: one number
    per scorer, or one per row (a Series holding the rows' index: each scorer's share of
    what ranked the invoice, `RiskModel.reason_weights`).
    """
    combined = None
    for name, values in contributions.items():
        mass = values.abs().sum(axis=1).replace(0.0, 1.0)
        weight = weights[name]
        if isinstance(weight, pd.Series):
            part = values.div(mass, axis=0).mul(weight.loc[values.index].to_numpy(), axis=0)
        else:
            part = values.div(mass, axis=0) * weight
        combined = part if combined is None else combined.add(part, fill_value=0.0)
    assert combined is not None
    return combined


class _Row(Mapping[str, Any]):
    """One invoice's values, read from column arrays: a cheap stand-in for a pandas row."""

    def __init__(self, columns: dict[str, np.ndarray], position: int) -> None:
        self._columns = columns
        self._position = position

    def __getitem__(self, name: str) -> Any:
        return self._columns[name][self._position]

    # `get` and `in` straight from the columns (Mapping's own go through __getitem__ and
    # a KeyError): a month's reasons ask a row about 200,000 times.
    def get(self, name: str, default: Any = None) -> Any:
        column = self._columns.get(name)
        return default if column is None else column[self._position]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def top_reasons(
    features: pd.DataFrame,
    combined: pd.DataFrame,
    medians: pd.DataFrame,
    n_reasons: int = 3,
    language: Language = "en",
    exclude: tuple[str, ...] = (),
    min_share: float = 0.03,
    descriptions: Descriptions | None = None,
) -> pd.Series:
    """The n features that raise each invoice's risk most, as sentences joined by ' | '.

    Only positive contributions of at least `min_share` of the row's explanation
    (the combined contributions have unit mass) from atypical values count (see
    `atypical`), and a feature, its windows and its peer z-score make one reason.
    """
    style = ReasonStyle(n_reasons, language, exclude, min_share, descriptions)
    writer = ReasonWriter(
        features.loc[combined.index], list(combined.columns), medians.loc[combined.index], style
    )
    return writer.reasons(combined)


@dataclass(frozen=True)
class ReasonStyle:
    """How many reasons, in which language, from which features (see `top_reasons`)."""

    n_reasons: int = 3
    language: Language = "en"
    exclude: tuple[str, ...] = ()
    min_share: float = 0.03
    descriptions: Descriptions | None = None


class ReasonWriter:
    """`top_reasons` in parts: what the features alone decide once, then any rows' reasons.

    Why: which values stand out among their peers (`atypical`) needs every invoice of the
    month, but an invoice's reasons need only its own contributions. The scoring writes
    the reasons of the invoices explained by the fast attributions while the flagged
    ones' exact TreeSHAP still runs, then theirs; each row's sentences are the ones
    `top_reasons` gives it over all rows at once.
    """

    def __init__(
        self,
        features: pd.DataFrame,
        columns: list[str],
        medians: pd.DataFrame,
        style: ReasonStyle | None = None,
    ) -> None:
        """`features` and `medians`: every invoice (same index); `columns`: the contributions'."""
        style = style or ReasonStyle()
        self._columns = [c for c in columns if c not in style.exclude]
        self._index = features.index
        self._stands_out = atypical(features, self._columns, medians[self._columns]).to_numpy()
        self._families = [_WINDOW.sub("", c.removesuffix(PEER_Z_SUFFIX)) for c in self._columns]
        self._arrays = {c: features[c].to_numpy() for c in features.columns}
        self._medians = {c: medians[c].to_numpy() for c in medians.columns}
        self._n_reasons = style.n_reasons
        self._language = style.language
        self._min_share = style.min_share
        self._descriptions = feature_catalog() if style.descriptions is None else style.descriptions

    def reasons(self, combined: pd.DataFrame) -> pd.Series:
        """The reasons of `combined`'s rows (any of the invoices, by index), in its order."""
        positions = self._index.get_indexer(combined.index)
        if (positions < 0).any():
            raise KeyError("contributions of invoices the reasons were not prepared for")
        candidates = combined[self._columns]
        values = candidates.where(self._stands_out[positions], 0.0).to_numpy(
            dtype="float64", copy=True
        )
        values[values <= max(self._min_share, 0.0)] = 0.0
        order = np.argsort(-values, axis=1, kind="stable")
        # Each row's candidates as Python ints, in that order, up to its first zero: the
        # positives sort first, then the zeros (a row without a zero goes to its end).
        ends = np.where(
            (values == 0.0).any(axis=1), (values > 0.0).sum(axis=1), values.shape[1]
        ).tolist()
        columns, families, medians = self._columns, self._families, self._medians
        nan = np.full(len(self._index), np.nan)
        out = []
        for row_order, end, position in zip(order, ends, positions.tolist(), strict=True):
            row = _Row(self._arrays, position)
            sentences: list[str] = []
            seen: set[str] = set()
            for j in row_order[:end].tolist():
                if len(sentences) == self._n_reasons:
                    break
                if families[j] in seen:
                    continue
                seen.add(families[j])
                name = columns[j]
                base = name.removesuffix(PEER_Z_SUFFIX)
                sentences.append(
                    reason_sentence(
                        name,
                        row,
                        float(medians[name][position]),
                        self._language,
                        float(medians.get(base, nan)[position]),
                        self._descriptions,
                    )
                )
            out.append(" | ".join(sentences) or NOTHING_STANDS_OUT[self._language])
        return pd.Series(out, index=combined.index, dtype="str")
