"""Typed config: the shipped YAML is the defaults; typos and bad values are one-line errors."""

from __future__ import annotations

import pytest

from tests import REPO
from tillit.config import FeatureConfig, TillitConfig, load_config
from tillit.errors import ConfigError

DEFAULT_YAML = REPO / "configs" / "default.yaml"


def test_shipped_default_yaml_is_exactly_the_built_in_defaults():
    assert load_config(DEFAULT_YAML) == TillitConfig()


def test_no_path_gives_the_defaults_and_a_stable_hash():
    assert load_config(None).hash() == TillitConfig().hash()
    assert len(TillitConfig().hash()) == 12


def test_unknown_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("training:\n  lightgbm:\n    n_estimator: 10\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: unknown key 'training.lightgbm.n_estimator'"


def test_bad_value_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("review:\n  capacity_share: lots\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: bad value for 'review.capacity_share'")
    assert "\n" not in message


def test_a_changed_setting_changes_the_hash(tmp_path):
    path = tmp_path / "capacity.yaml"
    path.write_text("review:\n  capacity_share: 0.1\n")
    assert load_config(path).hash() != TillitConfig().hash()


def test_config_is_frozen():
    config = TillitConfig()
    with pytest.raises(ValueError):
        config.review.capacity_share = 0.5  # type: ignore[misc]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_scorer_parameter_sections_name_the_scorers_own_parameters():
    """The config passes its parameter sections straight to the scorers: names must match."""
    from tillit.config import IsolationForestParams, LightGBMParams
    from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer

    assert set(IsolationForestParams.model_fields) <= set(IsolationForestScorer().get_params())
    assert set(LightGBMParams.model_fields) <= set(LightGBMScorer().get_params())
    scorer = LightGBMScorer(**LightGBMParams(subsample=0.7).model_dump())
    assert scorer.get_params()["subsample"] == 0.7


def test_an_infinite_death_month_margin_is_refused():
    # An infinite margin would switch the death-month check off without a word.
    with pytest.raises(ValueError, match="death_month_margin_hours"):
        FeatureConfig(death_month_margin_hours=float("inf"))


def test_billing_steps_must_be_positive_whole_hundredths_of_an_hour():
    # 0 divided by zero, -0.5 was subtracted from the allowance, 1/12 h matched no billed figure.
    for steps, named in [((0.0, 0.5), "0.0"), ((-0.5,), "-0.5"), ((0.5, 1 / 12), "0.0833")]:
        with pytest.raises(ValueError, match=f"whole hundredths of an hour .*not {named}"):
            FeatureConfig(billing_steps_hours=steps)
    with pytest.raises(ValueError, match="not inf"):
        FeatureConfig(billing_steps_hours=(float("inf"),))
    assert FeatureConfig(billing_steps_hours=(0.01, 0.1, 0.25)).billing_steps_hours == (
        0.01,
        0.1,
        0.25,
    )


def test_a_monotone_column_named_twice_is_refused():
    from tillit.config import LightGBMParams

    with pytest.raises(ValueError, match="named more than once: amount_over_tariff_amount"):
        LightGBMParams(monotone_increasing=("amount_over_tariff_amount",) * 2)
    # Every default name is a home-care feature column (training refuses any other).
    from tillit.features import feature_columns

    assert set(LightGBMParams().monotone_increasing) <= set(feature_columns())
