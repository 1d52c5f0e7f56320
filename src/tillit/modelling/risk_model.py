"""The risk model a registered version holds: both scorers, the blend and the feature schema.

The combined risk is designed for ranking with a fixed review capacity:

1. Each scorer's output is turned into its percentile among *all* invoices of
   the training months (`reference_*_`), so the scales are comparable and a
   value reads as "riskier than this share of ordinary invoices".
2. The label-free side is two detectors of different families, the isolation
   forest and the per-feature tail probability scorer, combined by rank: a
   weighted mean of their percentiles (`blend.label_free_isolation_forest_weight`),
   itself put back on the percentile scale of the training invoices.
3. The blend combines the supervised and the label-free percentiles (a noisy-or,
   `blend.blend_rule`; or the weighted mean): the supervised scorer knows the schemes
   reviewers have confirmed, the label-free side covers what nobody has labelled yet,
   and an invoice far into either side's tail ranks high.
4. A hard finding (a certain fact such as billing after death) lifts the risk
   into [finding_floor, 1]; every other invoice stays in [0, finding_floor).
   So findings always rank first, and within each band the blend orders. A
   finding type demoted to a pattern in a month (it fires on a large share of the
   month's invoices, or past reviews mostly cleared it; see base_rates.py) does
   not lift: it stays a model feature and the report states it as a pattern.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tillit.config import BlendConfig
from tillit.core.findings import FINDING_PREFIX, codes_in
from tillit.errors import TillitError
from tillit.features.catalog import FEATURE_DEFINITIONS_VERSION
from tillit.modelling.base_rates import (
    demoted_in_every_period,
    finding_patterns,
    hard_finding_mask,
)
from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer, TailProbabilityScorer

if TYPE_CHECKING:
    from tillit.review.drift import DriftReference


class FeatureMismatchError(TillitError):
    """The features given to a model are not the ones it was trained on."""


def feature_schema_hash(columns: Sequence[str]) -> str:
    """A short hash of the ordered feature names, stored beside the model."""
    return hashlib.sha256(json.dumps(list(columns)).encode()).hexdigest()[:12]


def percentile_rank(
    reference: np.ndarray,
    scores: np.ndarray,
    interpolate: bool = False,
    score_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Share of reference scores at or below each score (mid-rank for ties), in [0, 1].

    The one percentile of the package: the risk model puts each scorer's output
    on this scale ("riskier than this share of the training months' invoices").
    `reference` must be sorted. With `interpolate`, a score between two reference
    values gets the straight line between their mid-ranks instead of one step, so
    distinct scores inside the reference's range keep their order: at the top of a
    supervised scorer the training rows are few (its own confirmed rows), and steps
    there would tie new rows that the scorer tells apart. `score_range`, the bounds
    the scores cannot leave, extends the lines to 0 and 1 at those bounds, so scores
    beyond every training row keep their order too.
    """
    scores = np.asarray(scores, dtype="float64")
    below = np.searchsorted(reference, scores, side="left")
    at_or_below = np.searchsorted(reference, scores, side="right")
    ranks = (below + at_or_below) / (2.0 * len(reference))
    if interpolate and len(reference):
        values, first, counts = np.unique(reference, return_index=True, return_counts=True)
        inside = (scores >= values[0]) & (scores <= values[-1])
        mid = (2 * first + counts) / (2.0 * len(reference))
        if score_range is not None:
            low, high = score_range
            if low < values[0]:
                values, mid = np.r_[low, values], np.r_[0.0, mid]
            if high > values[-1]:
                values, mid = np.r_[values, high], np.r_[mid, 1.0]
            inside = (scores >= values[0]) & (scores <= values[-1])
        ranks[inside] = np.interp(scores[inside], values, mid)
    return ranks


# How far below 1 the noisy-or squeezes each side's percentile (`blend_percentiles`).
NOISY_OR_TOP_GAP = 1e-6


def _squeezed(percentile: np.ndarray) -> np.ndarray:
    """A percentile just below 1 (order kept), as the noisy-or and its reasons' shares read it.

    A percentile of exactly 1, a score beyond every training invoice, would make the blend 1
    whatever the other side says (such invoices would tie and rank by their ids) and its
    side's term in the reasons' shares infinite.
    """
    return percentile * (1.0 - NOISY_OR_TOP_GAP)


def blend_percentiles(
    supervised: np.ndarray, label_free: np.ndarray, weight: float, rule: str
) -> np.ndarray:
    """The blend of the LightGBM and label-free percentiles (`training.blend.blend_rule`).

    "mean": the weighted mean. "noisy_or": ``1 - (1 - a)^w (1 - b)^(1 - w)``, the weighted
    mean of each side's ``-log(1 - percentile)`` mapped back to [0, 1]: far into one side's
    tail counts more than a little way into both (`BlendConfig.__setstate__`: a blend
    pickled before the rule existed is read as "mean", so its scores stay as they were).
    """
    if rule == "mean":
        return weight * supervised + (1.0 - weight) * label_free
    if rule == "noisy_or":
        a, b = _squeezed(supervised), _squeezed(label_free)
        return 1.0 - (1.0 - a) ** weight * (1.0 - b) ** (1.0 - weight)
    raise ValueError(f"unknown blend rule {rule!r}")


def supervised_share(
    supervised: np.ndarray, label_free: np.ndarray, weight: float, rule: str
) -> np.ndarray | float:
    """LightGBM's share of what ranked each invoice in `blend_percentiles` (its reasons' weight).

    The noisy-or is a weighted sum of how far each side has the invoice into its tail,
    ``-log(1 - blend) = w (-log(1 - a)) + (1 - w) (-log(1 - b))``, so LightGBM's share is
    its term over the sum: an invoice deep in the label-free tail and middling on LightGBM
    gets reasons from the label-free side. A row with blend 0 (neither side's term) keeps
    the weight. The mean keeps its weight for every row: the reasons of table mode and of
    models pickled before the noisy-or stay as they were.
    """
    if rule == "mean":
        return weight
    if rule == "noisy_or":
        supervised_term = weight * -np.log1p(-_squeezed(supervised))
        label_free_term = (1.0 - weight) * -np.log1p(-_squeezed(label_free))
        total = supervised_term + label_free_term
        with np.errstate(divide="ignore", invalid="ignore"):
            share = supervised_term / total
        return np.where(total > 0.0, share, weight)
    raise ValueError(f"unknown blend rule {rule!r}")


def scorer_weights(
    share: np.ndarray | float, label_free_mix: dict[str, float]
) -> dict[str, np.ndarray | float]:
    """Each scorer's weight in the reasons: LightGBM's `share`, the rest split as the label-free mix."""
    return {"lightgbm": share, **{name: (1.0 - share) * w for name, w in label_free_mix.items()}}


@dataclass
class RiskModel:
    """Both fitted scorers plus what is needed to score a new month the same way."""

    isolation_forest: IsolationForestScorer
    lightgbm: LightGBMScorer
    feature_columns: tuple[str, ...]
    isolation_forest_columns: tuple[str, ...]
    blend: BlendConfig
    trained_periods: tuple[str, ...]
    contract_version: str
    reference_isolation_forest_: np.ndarray = field(repr=False)
    reference_lightgbm_: np.ndarray = field(repr=False)
    # What the training months looked like (review/drift.py), set by `tillit train`;
    # None on models trained before drift was watched.
    drift_reference_: DriftReference | None = field(default=None, repr=False)
    # How often each finding type fired in training and what reviews decided
    # (tillit.modelling.base_rates); empty for models trained before base rates.
    finding_base_rates: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    # The second label-free detector and the references of its percentile and of the
    # label-free mix; None on models trained before it (their label-free side is the forest).
    tail_probability: TailProbabilityScorer | None = field(default=None, repr=False)
    reference_tail_probability_: np.ndarray | None = field(default=None, repr=False)
    reference_label_free_: np.ndarray | None = field(default=None, repr=False)
    # The stream's finding types (core/findings.py), set by its training; read back from
    # the finding feature columns on models trained before they were kept.
    finding_codes: tuple[str, ...] | None = field(default=None, repr=False)
    # What the feature columns meant when it was trained (features.FEATURE_DEFINITIONS_VERSION);
    # models pickled before the version was kept read the class default, 1.
    feature_definitions: int = field(default=1, repr=False)
    # The supervised scorer's columns when they are fewer than `feature_columns`
    # (`training.lightgbm_without_findings`); None: all of them, as on older models.
    lightgbm_columns: tuple[str, ...] | None = field(default=None, repr=False)

    @property
    def feature_schema(self) -> str:
        return feature_schema_hash(self.feature_columns)

    def check_features(self, features: pd.DataFrame) -> None:
        """Refuse features that differ from training: a silent mismatch would mis-rank.

        Raises:
            FeatureMismatchError: naming the missing and unexpected feature columns.
        """
        present = [c for c in features.columns if c in self.feature_columns]
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise FeatureMismatchError(
                f"the features differ from those the model was trained on "
                f"(schema {self.feature_schema}): missing {', '.join(missing)}"
            )
        if len(present) != len(self.feature_columns):
            raise FeatureMismatchError("the feature table repeats a feature column")

    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, in training order, as float64."""
        self.check_features(features)
        return features.loc[:, list(self.feature_columns)].astype("float64")

    def lightgbm_matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        """The supervised scorer's inputs: every feature, or its own subset (see train.py)."""
        columns = getattr(self, "lightgbm_columns", None)
        return X if columns is None else X.loc[:, list(columns)]

    def isolation_forest_matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        """The unsupervised scorer's inputs: a subset of the features (see train.py)."""
        return X.loc[:, list(self.isolation_forest_columns)]

    def components(
        self, features: pd.DataFrame, demoted: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Every step from the scorers' outputs to the combined risk, row by row.

        `demoted`: the finding types the whole month demotes, when `features` is only a
        batch of it (scoring on Spark executors); default: judged on `features` itself.
        """
        X = self.matrix(features)
        iso_X = self.isolation_forest_matrix(X)
        iso = np.asarray(self.isolation_forest.risk_score(iso_X), dtype="float64")
        gbm = np.asarray(self.lightgbm.risk_score(self.lightgbm_matrix(X)), dtype="float64")
        iso_pct = percentile_rank(self.reference_isolation_forest_, iso)
        gbm_pct = percentile_rank(self.reference_lightgbm_, gbm)
        tail, tail_pct, label_free = self.label_free(iso_X, iso_pct)
        rule, weight = self.blend.rule_and_weight()
        blend = blend_percentiles(gbm_pct, label_free, weight, rule)
        has_finding = self.hard_findings(features, demoted)
        floor = self.blend.finding_floor
        # Blend < 1 keeps non-findings strictly below the floor.
        risk = np.where(
            has_finding, floor + (1.0 - floor) * blend, floor * np.minimum(blend, 1.0 - 1e-9)
        )
        return pd.DataFrame(
            {
                "isolation_forest_score": iso,
                "lightgbm_score": gbm,
                "isolation_forest_percentile": iso_pct,
                "lightgbm_percentile": gbm_pct,
                "tail_probability_score": tail,
                "tail_probability_percentile": tail_pct,
                "label_free_percentile": label_free,
                "blend": blend,
                "has_hard_finding": has_finding,
                "risk_score": np.round(risk, 12),
            },
            index=features.index,
        )

    def hard_findings(
        self, features: pd.DataFrame, demoted: Sequence[str] | None = None
    ) -> np.ndarray:
        """Which rows have a hard finding that is not demoted (`demoted`: see `components`)."""
        if any(column.startswith(FINDING_PREFIX) for column in features.columns):
            patterns = (
                self.finding_patterns(features)
                if demoted is None
                else demoted_in_every_period(features, demoted)
            )
            return hard_finding_mask(features, patterns, self.findings())
        # A frame with the count only (no per-type flags): every finding counts.
        return features["hard_finding_count"].to_numpy() > 0

    def reason_weights(self, parts: pd.DataFrame) -> dict[str, pd.Series | float]:
        """Each scorer's weight in the reasons of the rows of `parts` (`components`' frame).

        A number per scorer under the mean, a Series on `parts`' index under the noisy-or
        (`supervised_share`).
        """
        rule, weight = self.blend.rule_and_weight()
        share = supervised_share(
            parts["lightgbm_percentile"].to_numpy(),
            parts["label_free_percentile"].to_numpy(),
            weight,
            rule,
        )
        return {
            name: pd.Series(value, index=parts.index) if isinstance(value, np.ndarray) else value
            for name, value in scorer_weights(share, self.label_free_weights()).items()
        }

    def label_free_weights(self) -> dict[str, float]:
        """Each label-free scorer's weight in the label-free mix (the forest alone on old models)."""
        if getattr(self, "tail_probability", None) is None:
            return {"isolation_forest": 1.0}
        forest = self.blend.label_free_isolation_forest_weight
        return {"isolation_forest": forest, "tail_probability": 1.0 - forest}

    def label_free(
        self, iso_X: pd.DataFrame, iso_pct: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tail scorer's score and percentile, and the label-free percentile (rank mix)."""
        tail_scorer = getattr(self, "tail_probability", None)
        if tail_scorer is None or self.reference_tail_probability_ is None:
            nothing = np.full(len(iso_X), np.nan)
            return nothing, nothing, iso_pct
        tail = np.asarray(tail_scorer.risk_score(iso_X), dtype="float64")
        tail_pct = percentile_rank(self.reference_tail_probability_, tail)
        forest = self.blend.label_free_isolation_forest_weight
        mix = forest * iso_pct + (1.0 - forest) * tail_pct
        assert self.reference_label_free_ is not None
        return tail, tail_pct, percentile_rank(self.reference_label_free_, mix)

    def finding_patterns(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per period and finding type: how often it fires, and whether it is demoted."""
        rates = getattr(self, "finding_base_rates", {})
        return finding_patterns(features, rates, self.blend, self.findings())

    def findings(self) -> tuple[str, ...]:
        """The finding types this model's blend knows (its stream's vocabulary)."""
        codes = getattr(self, "finding_codes", None)
        return tuple(codes) if codes is not None else codes_in(self.feature_columns)

    def risk(self, features: pd.DataFrame, demoted: Sequence[str] | None = None) -> np.ndarray:
        """The combined risk in [0, 1], higher = look first (`demoted`: see `components`)."""
        return self.components(features, demoted)["risk_score"].to_numpy()

    def demoted_findings(self, features: pd.DataFrame) -> list[str]:
        """The finding types demoted in the month of `features` (one period)."""
        patterns = self.finding_patterns(features)
        return sorted(set(patterns.loc[patterns["demoted"], "finding"].astype("str")))


def fit_risk_model(
    isolation_forest: IsolationForestScorer,
    lightgbm: LightGBMScorer,
    all_features: pd.DataFrame,
    feature_columns: Sequence[str],
    isolation_forest_columns: Sequence[str],
    blend: BlendConfig,
    trained_periods: Sequence[str],
    contract_version: str,
    tail_probability: TailProbabilityScorer | None = None,
    lightgbm_columns: Sequence[str] | None = None,
) -> RiskModel:
    """Wrap the fitted scorers with the reference distributions of all training invoices.

    The tail probability scorer, when given, sees the forest's columns; LightGBM sees
    `lightgbm_columns` when given (kept on the model only when fewer than all).
    """
    X = all_features.loc[:, list(feature_columns)].astype("float64")
    iso_X = X.loc[:, list(isolation_forest_columns)]
    iso = np.asarray(isolation_forest.risk_score(iso_X))
    own_columns = (
        tuple(lightgbm_columns)
        if lightgbm_columns is not None and tuple(lightgbm_columns) != tuple(feature_columns)
        else None
    )
    gbm_X = X if own_columns is None else X.loc[:, list(own_columns)]
    model = RiskModel(
        isolation_forest=isolation_forest,
        lightgbm=lightgbm,
        feature_columns=tuple(feature_columns),
        isolation_forest_columns=tuple(isolation_forest_columns),
        blend=blend,
        trained_periods=tuple(trained_periods),
        contract_version=contract_version,
        reference_isolation_forest_=np.sort(iso),
        reference_lightgbm_=np.sort(np.asarray(lightgbm.risk_score(gbm_X))),
        feature_definitions=FEATURE_DEFINITIONS_VERSION,
        lightgbm_columns=own_columns,
    )
    if tail_probability is not None:
        tail = np.asarray(tail_probability.risk_score(iso_X), dtype="float64")
        model.tail_probability = tail_probability
        model.reference_tail_probability_ = np.sort(tail)
        forest = blend.label_free_isolation_forest_weight
        mix = forest * percentile_rank(model.reference_isolation_forest_, iso) + (
            1.0 - forest
        ) * percentile_rank(model.reference_tail_probability_, tail)
        model.reference_label_free_ = np.sort(mix)
    return model
