"""The feature stage's config section: windows, thresholds and floors, all with defaults."""

from __future__ import annotations

from pydantic import Field, field_validator

from tillit.strict import StrictModel


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
    # Ratios divide by at least this many hours, so an empty month gives a large,
    # finite ratio instead of infinity (the has_no_* flags say why it is large).
    min_denominator_hours: float = Field(default=0.5, gt=0)
    # |billed - granted| at or below this counts as billing exactly the grant.
    exact_grant_tolerance_hours: float = Field(default=0.01, ge=0)
    # Overlaps shorter than this are clock noise, not a double booking finding;
    # the staff_overlap_minutes feature still counts every minute.
    double_booking_min_minutes: float = Field(default=5.0, ge=0)
    # A double booking finding needs this many overlapping pairs on the invoice in
    # the month: one or two can be a forgotten check-out, a pattern is a fact.
    double_booking_min_pairs: int = Field(default=3, ge=1)
    # Peer z-scores divide by max(1.4826 * MAD, this): a peer group where
    # everyone bills alike must not turn a tiny deviation into a huge score.
    peer_mad_floor: float = Field(default=0.05, gt=0)
    # Evidence texts list at most this many visit ids or pairs, then "and N more".
    evidence_max_items: int = Field(default=5, gt=0)

    @field_validator("history_windows_months")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w <= 0 for w in value):
            raise ValueError("history windows must be positive numbers of months")
        return tuple(sorted(set(value)))

    @property
    def longest_window_months(self) -> int:
        """The longest history window: used for the 'exactly at grant' count and norms."""
        return max(self.history_windows_months)
