"""The same data, config and seed give the same features, the same model and the same scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.config import FeatureConfig, ReviewConfig, SimulationConfig, TrainingConfig
from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.modelling.train import train
from tillit.simulate import simulate


def test_features_and_training_are_identical_bit_for_bit():
    world = simulate(SimulationConfig(clients=800, months=6, seed=21))
    tables = validate_tables(world.tables).tables
    periods = sorted(tables["invoices"]["period"].unique())
    first = build_features(tables, periods).features
    second = build_features(tables, periods).features
    pd.testing.assert_frame_equal(first, second, check_exact=True)

    runs = [
        train(tables, TrainingConfig(), FeatureConfig(), ReviewConfig(), world.truth)
        for _ in range(2)
    ]
    assert runs[0].evaluation.metrics == runs[1].evaluation.metrics
    last = first[first["period"] == periods[-1]]
    np.testing.assert_array_equal(runs[0].model.risk(last), runs[1].model.risk(last))
