"""Typed configuration: YAML in `configs/`, loaded into frozen pydantic models.

Every section forbids unknown keys, so a typo is an error naming the file and
the key instead of a silently ignored setting. This module owns every section
and depends on no pipeline stage: the stages import their section from here.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from tillit.data.vocabulary import PERIOD_PATTERN, SERVICE_TYPES
from tillit.errors import ConfigError

# Never part of a domain name, so a pseudonym's domain and value cannot blur.
PSEUDONYM_SEPARATOR = "\x1f"
# The simulator has this many district names.
SIMULATED_DISTRICTS = 12


class StrictModel(BaseModel):
    """A frozen pydantic model that rejects keys it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ValidationConfig(StrictModel):
    """How much bad input a run tolerates before it refuses to go on."""

    max_quarantine_share: float = Field(default=0.01, ge=0, le=1)


class InputConfig(StrictModel):
    """How CSV files in the input folder are read; `auto` detects, and stops when unsure.

    Swedish Excel saves `;`-separated, decimal-comma, Windows-1252 files; most
    other systems comma-separated UTF-8. The CLI flags `--csv-sep`, `--decimal`
    and `--encoding` override these.
    """

    csv_sep: Literal["auto", ",", ";", "tab"] = "auto"
    decimal: Literal["auto", ".", ","] = "auto"
    encoding: Literal["auto", "utf-8", "cp1252", "latin-1"] = "auto"


class SimulationConfig(StrictModel):
    """Size, seed and knobs of the simulated municipality."""

    seed: int = 7
    clients: int = Field(3000, ge=20, le=200_000)
    months: int = Field(12, ge=1, le=60)
    start: str = Field("2025-01", pattern=PERIOD_PATTERN)  # first period
    # Share of (pre-scheme) invoices made irregular, all schemes together.
    irregular_share: float = Field(0.03, ge=0.0, le=0.3)
    # Share of past invoices reviewed (audit_outcomes), and of those the share picked at random
    # rather than by the rule "billed hours above granted hours".
    review_share: float = Field(0.04, ge=0.0, le=1.0)
    random_review_share: float = Field(0.25, ge=0.0, le=1.0)
    providers_per_1000_clients: float = Field(28.0, gt=0.0, le=500.0)
    # Share of providers that commit fraud (phoenix pairs come on top).
    fraud_provider_share: float = Field(0.15, ge=0.0, le=1.0)
    # Share of the irregular invoices placed at honest providers (isolated cases).
    isolated_irregular_share: float = Field(0.15, ge=0.0, le=1.0)
    # Phoenix pairs per 1000 clients (at least one when months >= 3 and this is > 0).
    phoenix_per_1000_clients: float = Field(0.67, ge=0.0, le=20.0)
    # Share of phoenix successors (rounded down) that share no person with their predecessor,
    # only its address and bank giro (contract v1.3 contact facts; tillit.simulate.contacts).
    contact_phoenix_share: float = Field(0.5, ge=0.0, le=1.0)
    annual_mortality: float = Field(0.18, ge=0.0, le=0.9)
    # Share of clients with at least one hospital stay in the window.
    hospital_client_share: float = Field(0.16, ge=0.0, le=1.0)
    districts: int = Field(10, ge=1, le=SIMULATED_DISTRICTS)
    # Reviewers clear this share of the irregular invoices they review ...
    review_miss_rate: float = Field(0.10, ge=0.0, le=1.0)
    # ... and confirm this share of the regular ones (e.g. documentation deficiencies).
    review_false_confirm_rate: float = Field(0.01, ge=0.0, le=1.0)
    # Spread (lognormal sigma) of provider sizes; the messy profile draws a wider one.
    provider_size_sigma: float = Field(1.2, gt=0.0, le=4.0)
    # tidy: the world tillit was built on; messy: honest noise of real exports laid over it,
    # its levels drawn from the seed (tillit.simulate.messy).
    profile: Literal["tidy", "messy"] = "tidy"


class FeatureConfig(StrictModel):
    """Windows and thresholds of the feature stage.

    Windows appear in the feature names (`billed_over_registered_hours_3m`,
    `provider_sanctions_365d`), so a changed window gives differently named
    columns instead of silently changing what a name means.
    """

    history_windows_months: tuple[int, ...] = Field(default=(3, 6), min_length=1)
    provider_event_window_days: int = Field(default=365, gt=0)
    client_growth_window_months: int = Field(default=3, gt=0)
    takeover_lookback_months: int = Field(default=12, gt=0)
    short_visit_minutes: float = Field(default=10.0, gt=0)
    max_plausible_staff_hours_per_day: float = Field(default=16.0, gt=0, le=24)
    # |amount - billed_hours * rate| above this is a tariff mismatch finding.
    amount_tolerance_sek: float = Field(default=10.0, ge=0)
    # An amount matching the month's prevailing rate of the service (billed by most of
    # at least this many invoices) is not a tariff mismatch: rates change mid-year.
    tariff_prevailing_min_invoices: int = Field(default=20, ge=1)
    # Ratios divide by at least this many hours, so an empty month gives a large,
    # finite ratio instead of infinity (the has_no_* flags say why it is large).
    min_denominator_hours: float = Field(default=0.5, gt=0)
    # A provider's own billing habit (billed_beyond_provider_habit_hours): the steps its
    # billed hours may be rounded to, the share of its invoices that must sit on a step,
    # and the invoices it needs that month for a step and a usual excess of its own
    # (fewer: the service type's peers stand in).
    billing_steps_hours: tuple[float, ...] = (0.25, 0.5, 1.0)
    billing_step_share: float = Field(default=0.75, gt=0, le=1)
    billing_habit_min_invoices: int = Field(default=5, ge=1)
    # |billed - granted| at or below this counts as billing exactly the grant.
    exact_grant_tolerance_hours: float = Field(default=0.01, ge=0)
    # Overlaps shorter than this are clock noise, not a double booking finding;
    # the staff_overlap_minutes feature still counts every minute.
    # Billing for hospital days: with at least this many full days in hospital in the
    # month, hours billed above the grant for the days at home (plus the margins) are a
    # finding, whether or not visits were registered during the stay.
    hospital_billing_min_days: int = Field(default=5, ge=1)
    hospital_billing_margin_share: float = Field(default=0.25, ge=0)
    hospital_billing_margin_hours: float = Field(default=2.0, ge=0)
    # In the month a client dies, the invoice bills after the death (billed_after_death,
    # period_share_after_death) only when it bills more than this many hours beyond the
    # visits registered up to the end of the day of death: an end-of-life invoice billing
    # the care given until the death is not billing after it (issue 21,
    # docs/bench-family.md). Finite: an infinite margin would switch the check off.
    death_month_margin_hours: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    double_booking_min_minutes: float = Field(default=5.0, ge=0)
    # A double booking finding needs this many overlapping pairs on the invoice in
    # the month: one can be a forgotten check-out, a repeat is a pattern. Each pair
    # already covers most of both visits or was key-tagged at both doors. 3 until
    # issue 21: a small invoice (4-10 h a month) copied twice never reached 3 pairs
    # (utc-exports: 5 of 11 scheme invoices found; with 2: 8 of 11, no honest invoice
    # in 9 months of three messy worlds).
    double_booking_min_pairs: int = Field(default=2, ge=1)
    # A pair not checked in with the key tag at both doors counts only when the overlap
    # covers at least this share of the longer visit: a late or forgotten check-out
    # overlaps part of a visit, a double booking most of both.
    double_booking_min_longer_share: float = Field(default=0.5, ge=0, le=1)
    # A pair does not count for an invoice whose partner invoice has more than this many
    # times as many overlapping pairs (the partner is the one whose visits were copied).
    double_booking_partner_ratio: float = Field(default=2.0, ge=1)
    # Peer z-scores divide by max(1.4826 * MAD, this): a peer group where
    # everyone bills alike must not turn a tiny deviation into a huge score.
    peer_mad_floor: float = Field(default=0.05, gt=0)
    # A carer's visits in a month are too regular to be real care when they are at least
    # this many and their lengths vary by at most this share of their mean (standard
    # deviation over mean): care plans differ between clients, copied visits do not.
    regular_staff_min_visits: int = Field(default=8, ge=2)
    regular_staff_max_duration_cv: float = Field(default=0.05, ge=0)
    # Visits of a carer at two clients at once (`staff_elsewhere_hours_share`): they began
    # within this many minutes of each other (a late check-out starts a visit earlier).
    same_time_max_start_gap_minutes: float = Field(default=15.0, ge=0)
    # A key-tag check-in at another client counts as where the carer was during a visit
    # here only if it was read at most this long before the visit began (or during it): a
    # tag read hours earlier whose check-out was forgotten shows nothing about now.
    keytag_max_lead_minutes: float = Field(default=30.0, ge=0)
    # Visit length and typed-in share against the key's or provider's own earlier months
    # only count months with at least this many visits (a mean of two says little).
    own_history_min_visits: int = Field(default=4, ge=1)
    # The invoice's typed-in, round-start, repeated-time and short-visit shares are judged
    # against the provider's visits at its other clients when they are at least this many
    # (features/queries.py provider_registration_habits): a habit of the whole provider.
    provider_habit_min_visits: int = Field(default=10, ge=1)
    # ... and against the provider's typical other client of the service type (this
    # quantile of their shares) when it has at least `provider_habit_min_clients` of them:
    # a provider that types in and rounds nearly everything does so at most clients, and
    # one client above the pooled share is no sign; a scheme at one client still stands out.
    provider_habit_min_clients: int = Field(default=4, ge=1)
    # A client counts as one of those others only with this many visits that month: a
    # handful of one-visit clients (a provider controls its own registrations) must not
    # set the typical client's share.
    provider_habit_client_min_visits: int = Field(default=4, ge=1)
    provider_habit_client_quantile: float = Field(default=0.75, ge=0.5, le=1.0)
    # Care given in rounds of short checks (a night patrol): for these contract service
    # types a short visit is the norm, not a sign (`short_visit_share` leaves them out,
    # whatever the hour: a round that began in the night may end after 06:00).
    round_service_types: tuple[str, ...] = ("night_care",)
    # Evidence texts list at most this many visit ids or pairs, then "and N more".
    evidence_max_items: int = Field(default=5, gt=0)

    @field_validator("history_windows_months")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w <= 0 for w in value):
            raise ValueError("history windows must be positive numbers of months")
        return tuple(sorted(set(value)))

    @field_validator("billing_steps_hours")
    @classmethod
    def _whole_hundredths(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        # billing_step_hours divides billed hundredths by the step's: a step of 0 would divide
        # by zero, a negative one be subtracted from the allowance (an honest invoice beyond
        # it), and one between hundredths (a 5-minute 1/12 h) never match a billed figure.
        wrong = [s for s in value if not (math.isfinite(s) and s > 0)]
        wrong += [s for s in value if s not in wrong and abs(s * 100 - round(s * 100)) > 1e-9]
        if wrong:
            raise ValueError(
                "billing steps must be positive whole hundredths of an hour (0.25, 0.5, 1), "
                f"not {', '.join(map(str, wrong))}"
            )
        return value

    @field_validator("round_service_types")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(SERVICE_TYPES))
        if unknown:
            raise ValueError(
                f"unknown service type(s) {', '.join(unknown)}; known: {', '.join(SERVICE_TYPES)}"
            )
        return tuple(sorted(set(value)))

    @property
    def longest_window_months(self) -> int:
        """The longest history window: used for the 'exactly at grant' count and norms."""
        return max(self.history_windows_months)


class ReviewConfig(StrictModel):
    """The review capacity, as a share of the month's invoices or a fixed count."""

    capacity_share: float | None = 0.05
    capacity_count: int | None = None
    random_check_share: float = 0.10  # of the capacity, drawn at random for unbiased precision
    # Invoices flagged for a hard finding beyond the capacity: at most this share of the
    # capacity again (ranked by severity, then amount); the rest are listed, not flagged.
    findings_bound_share_of_capacity: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _one_capacity(self) -> ReviewConfig:
        if (self.capacity_share is None) == (self.capacity_count is None):
            raise ValueError("set exactly one of capacity_share and capacity_count")
        if self.capacity_share is not None and not 0 < self.capacity_share <= 1:
            raise ValueError("capacity_share must be in (0, 1]")
        if self.capacity_count is not None and self.capacity_count < 1:
            raise ValueError("capacity_count must be at least 1")
        if not 0 <= self.random_check_share <= 1:
            raise ValueError("random_check_share must be in [0, 1]")
        return self

    def k(self, n_invoices: int) -> int:
        """Invoices reviewable out of `n_invoices` (at least 1 when there are any)."""
        if n_invoices <= 0:
            return 0
        if self.capacity_count is not None:
            return min(self.capacity_count, n_invoices)
        share = self.capacity_share or 0.0  # exactly one of the two is set (validated)
        # The tolerance keeps 0.07 * 100 (= 7.000000000000001) at 7 invoices.
        return max(1, min(n_invoices, math.ceil(share * n_invoices - 1e-9)))

    def findings_bound(self, n_invoices: int) -> int:
        """How many invoices a hard finding may flag beyond the capacity."""
        return math.floor(self.findings_bound_share_of_capacity * self.k(n_invoices) + 1e-9)

    def random_checks(self, n_invoices: int) -> int:
        """How many extra invoices to draw at random for the unbiased sample."""
        if self.random_check_share == 0:
            return 0
        return max(1, round(self.random_check_share * self.k(n_invoices)))


class BlendConfig(StrictModel):
    """How the two scorers and the hard findings make one risk in [0, 1]."""

    # How the LightGBM percentile `a` and the label-free percentile `b` make one blend:
    # "mean" is w a + (1 - w) b with w = `supervised_weight`; "noisy_or" is
    # 1 - (1 - a)^w (1 - b)^(1 - w) with w = `noisy_or_supervised_weight`, the weighted mean
    # of each side's -log(1 - percentile) (how far into its tail the invoice is), so an
    # invoice in one side's top 1 % and the other's top 20 % outranks one at the top 10 %
    # of both. A scheme nobody has labelled sits far out on the label-free side while
    # LightGBM sees little: chosen on the bench family with every scheme's labels withheld
    # in turn (issue 21, branch worst30, docs/label-free.md; bench/blend.py `nor.45`).
    # Models pickled before the rule read "mean" (`__setstate__`). Table mode blends by the
    # mean and falls back to `supervised_weight` (docs/table-mode-weight.md).
    blend_rule: Literal["mean", "noisy_or"] = "noisy_or"
    supervised_weight: float = Field(default=0.5, ge=0, le=1)
    noisy_or_supervised_weight: float = Field(default=0.45, ge=0, le=1)
    finding_floor: float = Field(default=0.9, gt=0, lt=1)
    # The label-free side is the forest and the tail probability scorer combined by rank:
    # this weight on the forest's percentile, the rest on the tail scorer's. Chosen with
    # leave-one-scheme-out on the bench family's worlds (bench/blend.py, docs/label-free.md):
    # the forest ranks irregular invoices worse than the tail scorer in every world.
    label_free_isolation_forest_weight: float = Field(default=0.1, ge=0, le=1)
    # A finding type is demoted to a pattern (a feature, stated in the report, not a hard
    # finding) in a month where it fires on more than this share of the invoices (judged
    # from `finding_min_month_invoices` invoices on) ...
    finding_max_month_share: float = Field(default=0.05, gt=0, le=1)
    finding_min_month_invoices: int = Field(default=100, ge=1)
    # ... or when past reviews cleared more than this share of at least
    # `finding_min_reviews` invoices that had it.
    finding_max_cleared_share: float = Field(default=0.5, ge=0, le=1)
    finding_min_reviews: int = Field(default=10, ge=1)

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """A blend pickled before its rule fields reads what it scored by, not today's defaults.

        Before `blend_rule` every blend was the mean (noisy-or is today's default, so an
        old model would re-rank); before `noisy_or_supervised_weight` (2f0dce3..99b4113)
        a noisy-or blend weighted LightGBM by `supervised_weight`.
        """
        fields = dict(state.get("__dict__", {}))
        fields.setdefault("blend_rule", "mean")
        if "supervised_weight" in fields:
            fields.setdefault("noisy_or_supervised_weight", fields["supervised_weight"])
        super().__setstate__({**state, "__dict__": fields})

    def rule_and_weight(self) -> tuple[str, float]:
        """The blend rule and LightGBM's weight in it."""
        if self.blend_rule == "noisy_or":
            return self.blend_rule, self.noisy_or_supervised_weight
        return self.blend_rule, self.supervised_weight


class IsolationForestParams(StrictModel):
    """IsolationForestScorer's parameters, passed as they are (names match its __init__)."""

    n_estimators: int = 200
    max_samples: int = 256
    max_features: float = 1.0


class TailProbabilityParams(StrictModel):
    """The per-feature tail probability scorer (TailProbabilityScorer) beside the forest."""

    enabled: bool = True
    max_reference: int = Field(default=4096, ge=16)
    # The score sums an invoice's this many largest per-feature terms (0: all of them, as
    # before): many mildly odd correlated features no longer outrank one far-out feature.
    # Chosen on the bench family's worlds and withheld schemes (docs/label-free.md).
    top_k: int = Field(default=8, ge=0)
    # Of the provider's facts (the provider_* features, one value for all its invoices)
    # at most this many terms count per invoice (0: all): a provider with many registry
    # events no longer lifts every one of its honest invoices by each of them (issue 21,
    # docs/label-free.md: 2 against 1 and 0 on the whole bench family).
    max_provider_terms: int = Field(default=2, ge=0)
    # Columns that show one fact of the invoice (features.catalog.ONE_FACT_GROUPS: visits
    # typed in by hand afterwards, seen as manual share, its peer z-score, its rise, round
    # and repeated times) count at most this many terms per invoice (0: all); issue 21,
    # docs/bench-family.md.
    max_terms_per_fact: int = Field(default=1, ge=0)


class LightGBMParams(StrictModel):
    """LightGBMScorer's parameters, passed as they are (names match its __init__)."""

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 20
    subsample: float = Field(default=1.0, gt=0, le=1)
    # Half the features per tree, chosen with lightgbm_without_findings on the bench family
    # (in-sample; docs/bench-family.md, 2026-12-07 evening): worst-world AP 0.827 -> 0.829,
    # leave-one-scheme-out minima fabricated 0.200 -> 0.400, padded 0.538 -> 0.625.
    colsample_bytree: float = 0.5
    reg_lambda: float = 1.0
    # Boosters averaged (raw log-odds), seeded seed, seed + 1, ...: one booster's chance
    # split on a single invoice counts 1/n. Costs n times LightGBM's score and SHAP time.
    n_seeds: int = Field(default=1, ge=1)
    # Columns whose higher value can never make an invoice less suspicious to an auditor:
    # with `monotone_increasing_on`, LightGBM's log-odds may only rise with each of them
    # (LightGBM's `monotone_constraints`, +1; others unconstrained). Without it, the labels
    # of the other schemes teach it that some "more billed than delivered" regions are
    # honest, and a scheme nobody labelled lives there (issue 21, branch mono32,
    # docs/label-free.md). A name absent from the table is skipped (table mode shares this
    # section); home-care training refuses a name that is no feature column.
    # The grant and the tariff (billed_over_granted_hours, amount_over_tariff_amount, their
    # peer z and differences) read the same way, but constraining them too cost messy-s31
    # fabricated visits one invoice of 9 (docs/label-free.md, mono32): not in the list.
    monotone_increasing: tuple[str, ...] = (
        "billed_over_registered_hours",  # more billed per registered visit hour
        "billed_minus_registered_hours",  # more hours billed beyond the visits
        "billed_over_registered_hours_peer_z",  # further over the visits than the service's peers
        "billed_over_registered_hours_3m",  # the client's last 3 months further over the visits
        "billed_over_registered_hours_6m",  # the client's last 6 months further over the visits
    )
    # On, on main 871a3ec: the bench family's leave-one-scheme-out minima overbilling 0.556 ->
    # 0.667, fabricated 0.600 -> 0.667 (in-sample, LightGBM seed 0; over seeds 0-2 messy-s34's
    # overbilling lowest and mean unchanged). Off by default: beside
    # `billed_beyond_provider_habit_hours` (step32) it took messy-s31's fabricated visits
    # 0.667 -> 0.556 (docs/label-free.md, "merge32").
    monotone_increasing_on: bool = False
    # How LightGBM keeps the constraint (its `monotone_constraints_method`): "basic" is
    # the fastest and most restrictive; "intermediate" and "advanced" let more splits through.
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"] = "basic"

    @field_validator("monotone_increasing")
    @classmethod
    def _each_column_once(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"a column named more than once: {', '.join(repeated)}")
        return names


class LabelWeighting(StrictModel):
    """How labels from biased past reviews are weighed."""

    method: Literal["propensity", "none"] = "propensity"
    # Clip, so one review cannot dominate: at most 10 times the weight of the most
    # likely review. Measured on the default simulated municipality (truth on the
    # held-out month): clipping at 0.02 gave the LightGBM scorer AP 0.73, at 0.1 0.82,
    # no weighting 0.81.
    min_propensity: float = Field(default=0.1, gt=0, le=1)
    balance_classes: bool = True


class TrainingConfig(StrictModel):
    """Everything `tillit train` decides besides features and capacity."""

    model_name: str = "tillit-invoice-risk"
    seed: int = 0
    # Default: the latest month with audit outcomes.
    eval_period: str | None = Field(default=None, pattern=PERIOD_PATTERN)
    # Also evaluate on this many earlier months, each held out.
    rolling_eval_months: int = Field(default=0, ge=0)
    primary_metric: Literal[
        "average_precision", "recall_at_k", "precision_at_k", "money_caught_at_k", "roc_auc"
    ] = "average_precision"
    # `tillit promote`: a challenger within this distance of the champion on the primary
    # metric (one month's figure moves this much by chance) replaces it only when it
    # learned from more decisions; better by more always replaces, worse by more never.
    promotion_tolerance: float = Field(default=0.01, ge=0, le=1)
    isolation_forest: IsolationForestParams = IsolationForestParams()
    tail_probability: TailProbabilityParams = TailProbabilityParams()
    lightgbm: LightGBMParams = LightGBMParams()
    # LightGBM learns without the hard-finding columns (flags and count): findings rank
    # first through the finding floor anyway, and "no finding" otherwise reads as honest
    # to a model whose confirmed reviews mostly carry one (issue 21, docs/label-free.md).
    lightgbm_without_findings: bool = True
    labels: LabelWeighting = LabelWeighting()
    blend: BlendConfig = BlendConfig()


class DriftConfig(StrictModel):
    """When a scored month counts as moved from the training months (it never stops a run)."""

    bins: int = Field(default=10, ge=2)  # reference quantile bins per feature and for the score
    # Population stability index above which a feature (or the risk score) has moved:
    # by convention below 0.1 is stable, 0.1-0.25 moderate, above 0.25 large.
    psi_warn: float = Field(default=0.25, gt=0)
    # ...in at least this many invoice-level features: one alone crosses it by chance.
    features_warn: int = Field(default=3, ge=1)
    # Reported, never warned on: one value per provider, moved by any single company.
    report_only_prefixes: tuple[str, ...] = ("provider_",)
    # A hard finding's share of invoices that changes improbably (binomial p below this)
    # and by more than this many points (0.005 = half a percentage point).
    finding_rate_p_value: float = Field(default=0.001, gt=0, lt=1)
    finding_rate_warn_points: float = Field(default=0.005, gt=0, le=1)
    # The share flagged by capacity or finding, above or below the training months' by this factor.
    flagged_share_warn_ratio: float = Field(default=1.5, gt=1)
    report_features: int = Field(default=5, ge=1)  # features named in the report


class ScoringConfig(StrictModel):
    """How reasons are written."""

    n_reasons: int = Field(default=3, ge=1)
    language: Literal["en", "sv"] = "en"
    # The report shows charts and details for the first this many flagged invoices; the
    # rest are in risk_list.parquet/.csv and a per-provider appendix (keeps it small).
    report_detailed_invoices: int = Field(default=100, ge=0)
    # A provider with at least this many flagged invoices, and this share of them, opens
    # the report as one case.
    case_min_flagged: int = Field(default=10, ge=1)
    case_min_share_of_flagged: float = Field(default=0.03, ge=0, le=1)


class ProviderConfig(StrictModel):
    """The provider scorecard (`tillit providers`) and its model, registered beside the invoice model."""

    model_name: str = "tillit-provider-risk"
    # weighted: a transparent weighted score of evidence; logistic: a logistic regression on
    # the same evidence, fitted on earlier provider-months; auto: the logistic regression when
    # it had at least min_irregular_labels irregular provider-months to learn from and beats
    # the weighted score on the held-out month, else the weighted score. See the README.
    method: Literal["auto", "weighted", "logistic"] = "auto"
    min_irregular_labels: int = Field(default=10, ge=1)
    # An invoice counts as high-risk at or above this combined risk (hard findings score >= 0.9).
    high_risk_invoice_score: float = Field(default=0.85, gt=0, lt=1)
    # The trend compares the month's high-risk share with this many earlier months.
    trend_months: int = Field(default=3, ge=1, le=12)
    # Providers a follow-up team can look into in a month: k of the held-out metrics.
    review_count: int = Field(default=10, ge=1)
    n_reasons: int = Field(default=3, ge=1)
    # Fewer providers than this in a group: marked small in the fairness audit.
    fairness_min_group_size: int = Field(default=5, ge=1)


class PseudonymiseConfig(StrictModel):
    """Which columns hold people, which are dropped, and how pseudonyms look.

    A column named in ``domains`` is pseudonymised in *every* table where it
    occurs, even a table not listed in ``id_columns``, so a new table cannot
    carry identifiers through by accident. ``id_columns`` lists where the
    contract expects them; a listed column that a table lacks is skipped (the
    contract check reports missing columns).
    """

    id_columns: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {
            "clients": ("client_id",),
            "grants": ("client_id",),
            "hospital_stays": ("client_id",),
            "visits": ("client_id", "staff_id"),
            "invoices": ("client_id",),
            "provider_persons": ("person_id",),
        }
    )
    # Names, personal identity numbers and contact details are never needed:
    # dropped from any table that has them, not hashed.
    drop_columns: tuple[str, ...] = (
        "name",
        "first_name",
        "last_name",
        "personal_identity_number",
        "personnummer",
        "pnr",
        "address",
        "phone",
        "email",
        # The same in Swedish; names are matched without regard to case.
        "namn",
        "fornamn",
        "förnamn",
        "efternamn",
        "adress",
        "telefon",
        "epost",
        "e_post",
    )
    # Column -> kind of person. Columns sharing a domain share pseudonyms.
    domains: dict[str, str] = Field(
        default_factory=lambda: {"client_id": "client", "staff_id": "staff", "person_id": "person"}
    )
    prefix: dict[str, str] = Field(
        default_factory=lambda: {"client_id": "C-", "staff_id": "S-", "person_id": "X-"}
    )

    @model_validator(mode="after")
    def _consistent(self) -> PseudonymiseConfig:
        listed = {column for columns in self.id_columns.values() for column in columns}
        no_domain = sorted(listed - set(self.domains))
        if no_domain:
            raise ValueError(f"id columns without a domain: {', '.join(no_domain)}")
        no_prefix = sorted(set(self.domains) - set(self.prefix))
        if no_prefix:
            raise ValueError(f"id columns without a prefix: {', '.join(no_prefix)}")
        by_domain: dict[str, set[str]] = {}
        for column, domain in self.domains.items():
            if not domain or PSEUDONYM_SEPARATOR in domain:
                raise ValueError(f"domain of {column} must be a non-empty name")
            by_domain.setdefault(domain, set()).add(self.prefix[column])
        mixed = sorted(domain for domain, prefixes in by_domain.items() if len(prefixes) > 1)
        if mixed:
            # One person must get one string, not the same hash behind two prefixes.
            raise ValueError(f"columns in one domain must share a prefix: {', '.join(mixed)}")
        overlap = sorted(listed & set(self.drop_columns))
        if overlap:
            raise ValueError(f"columns both pseudonymised and dropped: {', '.join(overlap)}")
        return self


class LinkConfig(StrictModel):
    """How providers and persons are linked across registers (`tillit.data.linkage`).

    `auto` uses Splink when it is installed (the `link` extra) and the exact rule
    otherwise; `splink` without Splink installed is refused, never silently replaced.
    """

    method: Literal["auto", "splink", "exact"] = "auto"
    backend: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[1]"
    # Two ids are resolved to one entity from this match probability on ...
    min_probability: float = Field(0.9, gt=0.0, le=1.0)
    # ... and a pair is kept as evidence (the provider page's "shares ... with") from this one.
    evidence_min_probability: float = Field(0.05, gt=0.0, le=1.0)
    # Share of providers (person ids) expected to have a twin in the register: the prior
    # that two records are one entity is this over (n - 1), before any fact is seen.
    provider_twin_share: float = Field(0.05, gt=0.0, le=1.0)
    person_twin_share: float = Field(0.10, gt=0.0, le=1.0)
    # Expectation maximisation rounds refining the prior m probabilities (0: priors kept).
    em_iterations: int = Field(0, ge=0, le=100)


class TillitConfig(StrictModel):
    """The whole configuration of a run, one section per pipeline stage."""

    validation: ValidationConfig = ValidationConfig()
    input: InputConfig = InputConfig()
    simulation: SimulationConfig = SimulationConfig()
    features: FeatureConfig = FeatureConfig()
    review: ReviewConfig = ReviewConfig()
    training: TrainingConfig = TrainingConfig()
    scoring: ScoringConfig = ScoringConfig()
    drift: DriftConfig = DriftConfig()
    pseudonymise: PseudonymiseConfig = PseudonymiseConfig()
    providers: ProviderConfig = ProviderConfig()
    link: LinkConfig = LinkConfig()

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults included: what a run logs."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """A short stable hash of the resolved config, to tell runs apart."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _error_location(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def load_config(path: Path | str | None = None) -> TillitConfig:
    """Load a YAML config; with no path, the built-in defaults.

    Raises:
        ConfigError: a one-line message naming the file and the offending key.
    """
    if path is None:
        return TillitConfig()
    path = Path(path)
    try:
        payload = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        return TillitConfig.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _error_location(first)
        if first["type"] == "extra_forbidden":
            message = f"{path}: unknown key '{key}'"
        else:
            message = f"{path}: bad value for '{key}': {first['msg']}"
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(message) from None
