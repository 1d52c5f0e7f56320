"""bench/loso_sweep.py's `--set`: several keys at once, a comma inside a value kept whole."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

from tests import REPO
from tillit.config import TillitConfig


@pytest.fixture(scope="module")
def sweep() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))  # loso_sweep imports its neighbour robustness
    try:
        return importlib.import_module("loso_sweep")
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_one_setting_may_set_several_keys_and_a_list_keeps_its_commas(sweep) -> None:
    # The old form, one key and several keys joined by commas, reads as before.
    assert sweep.settings_of("training.lightgbm.colsample_bytree=0.5") == [
        ("training.lightgbm.colsample_bytree", 0.5)
    ]
    assert sweep.settings_of(
        "training.lightgbm_without_findings=true,training.lightgbm.n_seeds=5"
    ) == [("training.lightgbm_without_findings", True), ("training.lightgbm.n_seeds", 5)]
    # A list or a string with commas is one value (split on "," it was "[3" and " 12]").
    assert sweep.settings_of(
        'features.history_windows_months=[3, 12],a.b={"x": 1, "y": 2}, c="p,q=r"'
    ) == [
        ("features.history_windows_months", [3, 12]),
        ("a.b", {"x": 1, "y": 2}),
        ("c", "p,q=r"),
    ]
    config = sweep.with_setting(TillitConfig(), "features.history_windows_months", [3, 12])
    assert config.features.history_windows_months == (3, 12)


@pytest.mark.parametrize("bad", ["a.b", "a.b=[3, 12", "a.b=1 c=2", "=1", "", " "])
def test_a_setting_that_is_not_key_equals_json_is_refused(sweep, bad: str) -> None:
    with pytest.raises(SystemExit, match="--set"):
        sweep.settings_of(bad)


@pytest.mark.parametrize("trailing", ["a.b=1,", "a.b=1 , ", "a.b=[3, 12],c=2,"])
def test_a_trailing_comma_is_refused_not_dropped(sweep, trailing: str) -> None:
    # Read before as the setting without it: a half-typed second key went unnoticed.
    with pytest.raises(SystemExit, match=r"',' after the value of (a\.b|c) but no key"):
        sweep.settings_of(trailing)


@pytest.mark.parametrize("doubled", ["a=1,,c=2", "a=1, ,c=2", "a=[1, 2],,c=2"])
def test_an_empty_item_between_two_commas_is_refused_at_once(sweep, doubled: str) -> None:
    # Read before as the key ',c', refused only when the config had no such key.
    with pytest.raises(SystemExit, match=r"an empty item after the value of a$"):
        sweep.settings_of(doubled)


def test_a_lightgbm_seed_offset_moves_lightgbm_alone_and_only_while_inside(sweep) -> None:
    from tillit.modelling import scorers

    training = TillitConfig().training.model_copy(update={"seed": 4})
    with sweep.lightgbm_seed_offset(2):
        assert scorers.lightgbm_scorer(training).random_state == 6
        assert scorers.isolation_forest_scorer(training).random_state == 4
    assert scorers.lightgbm_scorer(training).random_state == 4
