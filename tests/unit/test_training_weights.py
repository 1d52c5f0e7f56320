"""Class balancing of the supervised scorer's sample weights, on exact numbers."""

from __future__ import annotations

import numpy as np

from tillit.modelling.scorers import balance_classes


def test_an_80_20_split_ends_at_equal_class_totals() -> None:
    y = np.array([0] * 8 + [1] * 2)
    balanced = balance_classes(np.ones(10), y)
    # Total weight 10 stays 10: each class carries 5 (not 5 and 3.5, as rescaling
    # class 0 before taking class 1's share gave).
    assert balanced[y == 0].sum() == 5.0
    assert balanced[y == 1].sum() == 5.0
    np.testing.assert_array_equal(balanced, [0.625] * 8 + [2.5] * 2)


def test_unequal_weights_keep_their_ratio_within_a_class() -> None:
    weights = np.array([1.0, 3.0, 2.0, 2.0])
    y = np.array([0, 0, 1, 0])
    balanced = balance_classes(weights, y)
    # Total 8: class 0 (1 + 3 + 2 = 6) scaled by 4/6, class 1 (2) by 4/2.
    np.testing.assert_allclose(balanced, [4 / 6, 2.0, 4.0, 4 / 3])
    assert balanced[y == 0].sum() == balanced[y == 1].sum() == 4.0
    np.testing.assert_array_equal(weights, [1.0, 3.0, 2.0, 2.0])  # input untouched
