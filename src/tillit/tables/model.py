"""The risk model of a table: both scorers, the percentile blend and the feature list.

The same blend as home care (`tillit.modelling.risk_model`): each scorer's output
becomes its percentile among all training rows (`percentile_rank`, interpolated
between training rows so the blend keeps each scorer's order), and the risk is
the weighted mean of the two percentiles. A table has no hard findings, so the risk
spans [0, 1]. Without two classes of labels there is no supervised scorer and the
risk is the unsupervised percentile alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tillit.config import TrainingConfig
from tillit.modelling.risk_model import (
    FeatureMismatchError,
    feature_schema_hash,
    percentile_rank,
    scorer_weights,
)
from tillit.modelling.risk_model import blend_percentiles as home_care_blend
from tillit.modelling.scorers import (
    IsolationForestScorer,
    LightGBMScorer,
    isolation_forest_scorer,
    label_weights,
    lightgbm_scorer,
)

# Both scorers' risk_score lies in [0, 1] (an anomaly score, a probability).
SCORE_RANGE = (0.0, 1.0)


def blend_percentiles(
    unsupervised_percentile: np.ndarray, supervised_percentile: np.ndarray | None, weight: float
) -> np.ndarray:
    """The risk: the weighted mean of the two percentiles, or the label-free one alone.

    Home care's blend (`tillit.modelling.risk_model.blend_percentiles`) with its "mean"
    rule: table mode keeps the mean (docs/table-mode-weight.md; the noisy-or was chosen
    on the home-care family only).
    """
    if supervised_percentile is None:
        return np.round(unsupervised_percentile, 12)
    risk = home_care_blend(supervised_percentile, unsupervised_percentile, weight, "mean")
    return np.round(risk, 12)


@dataclass
class TableRiskModel:
    """What a registered table model holds; `risk(features)` is what the pyfunc returns."""

    spec_name: str
    spec_hash: str
    feature_columns: tuple[str, ...]
    fill_values: dict[str, float]
    typical: dict[str, float]
    descriptions: dict[str, str]
    isolation_forest: IsolationForestScorer
    lightgbm: LightGBMScorer | None
    supervised_weight: float
    trained_periods: tuple[str, ...]
    reference_isolation_forest_: np.ndarray = field(repr=False)
    reference_lightgbm_: np.ndarray | None = field(repr=False)
    evaluation: dict[str, Any] = field(default_factory=dict)
    card: Any = None  # ModelCardData of the training run, rendered again with the version

    @property
    def feature_schema(self) -> str:
        return feature_schema_hash(self.feature_columns)

    @property
    def weights(self) -> dict[str, float]:
        """Each scorer's weight in the reasons, the same for every row.

        LightGBM's is `supervised_weight`, the isolation forest's `1 - supervised_weight`
        (1.0 when no LightGBM was fitted): the two sides' weights in table mode's blend, the
        weighted mean of the percentiles (`blend_percentiles`). Home care's per-row
        `supervised_share` is this same constant under the mean rule.
        """
        if self.lightgbm is None:
            return {"isolation_forest": 1.0}
        weights = scorer_weights(self.supervised_weight, {"isolation_forest": 1.0})
        return {name: float(w) for name, w in weights.items()}

    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's inputs in training order, float64, gaps filled with training medians.

        Raises:
            FeatureMismatchError: naming the columns the model needs and does not get.
        """
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise FeatureMismatchError(
                f"the table lacks features the model {self.spec_name!r} was trained on "
                f"(schema {self.feature_schema}): {', '.join(missing)}"
            )
        X = features.loc[:, list(self.feature_columns)].astype("float64")
        X = X.replace([np.inf, -np.inf], np.nan)
        return X.fillna(self.fill_values)

    def components(self, features: pd.DataFrame) -> pd.DataFrame:
        """Each scorer's output, its percentile and the blended risk, row by row."""
        X = self.matrix(features)
        iso = np.asarray(self.isolation_forest.risk_score(X), dtype="float64")
        iso_pct = percentile_rank(
            self.reference_isolation_forest_, iso, interpolate=True, score_range=SCORE_RANGE
        )
        out = pd.DataFrame(
            {"isolation_forest_score": iso, "isolation_forest_percentile": iso_pct},
            index=features.index,
        )
        gbm_pct = None
        if self.lightgbm is None or self.reference_lightgbm_ is None:
            out["lightgbm_score"] = np.nan
            out["lightgbm_percentile"] = np.nan
        else:
            gbm = np.asarray(self.lightgbm.risk_score(X), dtype="float64")
            gbm_pct = percentile_rank(
                self.reference_lightgbm_, gbm, interpolate=True, score_range=SCORE_RANGE
            )
            out["lightgbm_score"] = gbm
            out["lightgbm_percentile"] = gbm_pct
        out["risk_score"] = blend_percentiles(iso_pct, gbm_pct, self.supervised_weight)
        return out

    def risk(self, features: pd.DataFrame) -> np.ndarray:
        """The blended risk in [0, 1], higher = look first."""
        return self.components(features)["risk_score"].to_numpy()


def fit_table_model(
    X: pd.DataFrame,
    y: np.ndarray,
    training: TrainingConfig,
    *,
    spec_name: str,
    spec_hash: str,
    descriptions: dict[str, str],
    trained_periods: Sequence[str],
    review_known: np.ndarray | None = None,
) -> TableRiskModel:
    """Fit both scorers on the rows of X (labels where y is 0/1; NaN = not reviewed).

    Both scorers are built from the config by the same functions as home care's
    (`tillit.modelling.scorers`), so every parameter of the `isolation_forest`,
    `lightgbm` and `labels` sections holds here too. The label-free scorer learns
    what is usual from every row except those confirmed irregular: a confirmed fraud
    must not teach it what normal looks like (with many of them, they would mask one
    another). It reads no label when it scores. The supervised scorer learns from
    the labelled rows, when both classes are present, weighed as `labels` says; the
    review propensity is learnt over the rows of `review_known` (default: all), the
    rows old enough for a review to be known: a younger row without a label was not
    passed over by reviewers, its label is only not in yet.
    """
    fill = {c: float(v) if pd.notna(v) else 0.0 for c, v in X.median().items()}
    matrix = X.astype("float64").replace([np.inf, -np.inf], np.nan).fillna(fill)
    not_confirmed = y != 1
    iso = isolation_forest_scorer(training).fit(
        matrix.loc[not_confirmed] if not_confirmed.any() else matrix
    )
    labelled = ~np.isnan(y)
    gbm: LightGBMScorer | None = None
    if labelled.any() and len(np.unique(y[labelled])) == 2:
        pool = np.ones(len(y), dtype=bool) if review_known is None else review_known | labelled
        labels = y[labelled].astype(np.int64)
        weights = label_weights(matrix.loc[pool], labelled[pool], labels, training)
        gbm = lightgbm_scorer(training).fit(matrix.loc[labelled], labels, sample_weight=weights)
    return TableRiskModel(
        spec_name=spec_name,
        spec_hash=spec_hash,
        feature_columns=tuple(str(c) for c in X.columns),
        fill_values=fill,
        typical=fill,
        descriptions=descriptions,
        isolation_forest=iso,
        lightgbm=gbm,
        supervised_weight=training.blend.supervised_weight,
        trained_periods=tuple(trained_periods),
        reference_isolation_forest_=np.sort(iso.risk_score(matrix)),
        reference_lightgbm_=None if gbm is None else np.sort(gbm.risk_score(matrix)),
    )
