"""How many invoices auditors can review a month: the k of every metric and of flagging."""

from __future__ import annotations

import math

from pydantic import model_validator

from tillit.strict import StrictModel


class ReviewConfig(StrictModel):
    """The review capacity, as a share of the month's invoices or a fixed count."""

    capacity_share: float | None = 0.05
    capacity_count: int | None = None
    random_check_share: float = 0.10  # of the capacity, drawn at random for unbiased precision

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
        # The tolerance keeps 0.07 * 100 (= 7.000000000000001) at 7 invoices.
        return max(1, min(n_invoices, math.ceil(self.capacity_share * n_invoices - 1e-9)))

    def random_checks(self, n_invoices: int) -> int:
        """How many extra invoices to draw at random for the unbiased sample."""
        if self.random_check_share == 0:
            return 0
        return max(1, round(self.random_check_share * self.k(n_invoices)))
