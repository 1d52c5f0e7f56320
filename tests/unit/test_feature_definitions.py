"""A feature whose value changes must say so: the version a model remembers moves with it.

A model finds its columns by name, so a column that kept its name but changed what it
holds would feed an old model numbers it never saw, silently. Every model input's values
on a small messy world are pinned here (tests/data/feature_definitions.json, one digest
per column). A change to a pinned column fails until `FEATURE_DEFINITIONS_VERSION` is
bumped, the column named in `FEATURES_REDEFINED` and the pins written again:

    PYTHONPATH=src python tests/unit/test_feature_definitions.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tillit.config import FeatureConfig, SimulationConfig
from tillit.data.validate import validate_tables
from tillit.features import (
    FEATURE_DEFINITIONS_VERSION,
    build_features,
    feature_columns,
    redefined_since,
)
from tillit.jobs.drift import redefined_features
from tillit.modelling.promotion import definitions_refusal
from tillit.simulate import simulate

PINS = Path(__file__).resolve().parents[1] / "data" / "feature_definitions.json"
WORLD = {"seed": 5, "clients": 150, "months": 4, "profile": "messy"}
PERIODS = ["2025-03", "2025-04"]


def column_digests() -> dict[str, str]:
    """Per model input column, a digest of its values (9 significant digits) on the world."""
    world = simulate(SimulationConfig(**WORLD))  # type: ignore[arg-type]
    tables = dict(validate_tables(world.tables).tables)
    features = build_features(tables, PERIODS, FeatureConfig()).features
    features = features.sort_values("invoice_id").reset_index(drop=True)
    digests = {}
    for column in feature_columns(FeatureConfig()):
        values = pd.to_numeric(features[column]).to_numpy(dtype="float64")
        text = ",".join("nan" if np.isnan(v) else f"{v:.9g}" for v in values)
        digests[column] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digests


@pytest.fixture(scope="module")
def current() -> dict[str, str]:
    return column_digests()


def test_a_changed_feature_value_comes_with_a_new_definitions_version(
    current: dict[str, str],
) -> None:
    pins = json.loads(PINS.read_text())
    assert pins["version"] == FEATURE_DEFINITIONS_VERSION, (
        f"FEATURE_DEFINITIONS_VERSION is {FEATURE_DEFINITIONS_VERSION}, the pins are for "
        f"{pins['version']}: write them again ({__doc__.splitlines()[-2].strip()})"
    )
    changed = sorted(c for c, d in pins["columns"].items() if current.get(c, d) != d)
    assert not changed, (
        f"the values of {changed} changed without a new FEATURE_DEFINITIONS_VERSION: bump it, "
        "name the columns in FEATURES_REDEFINED (features/catalog.py) and write the pins again"
    )
    removed = sorted(set(pins["columns"]) - set(current))
    assert not removed, f"{removed} left the feature table: a new definitions version too"
    added = sorted(set(current) - set(pins["columns"]))
    assert not added, f"new columns {added}: write the pins again (the version may stay)"


def test_a_model_of_older_definitions_gets_a_drift_warning_naming_what_changed() -> None:
    older = SimpleNamespace(
        feature_definitions=1,
        feature_columns=("manual_registration_share", "billed_over_registered_hours"),
    )
    key, fields = redefined_features(older)  # type: ignore[arg-type,misc]
    assert key == "drift.warn_definitions"
    assert fields == {
        "trained": 1,
        "now": FEATURE_DEFINITIONS_VERSION,
        "names": "manual_registration_share",
    }
    # A model pickled before the version was kept reads as version 1.
    assert redefined_features(SimpleNamespace(feature_columns=older.feature_columns)) == (  # type: ignore[arg-type]
        key,
        fields,
    )
    same = SimpleNamespace(feature_definitions=FEATURE_DEFINITIONS_VERSION, feature_columns=())
    assert redefined_features(same) is None  # type: ignore[arg-type]


def test_redefined_since_lists_each_changed_column_once() -> None:
    assert redefined_since(FEATURE_DEFINITIONS_VERSION) == ()
    assert "short_visit_share" in redefined_since(1)
    assert list(redefined_since(1)) == sorted(set(redefined_since(1)))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    PINS.write_text(
        json.dumps(
            {"version": FEATURE_DEFINITIONS_VERSION, "world": WORLD, "columns": column_digests()},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    print(f"wrote {PINS}")


def test_a_column_added_in_version_5_is_not_named_as_changed_to_a_v4_model() -> None:
    # Version 5 only added carer_overlap_visit_share, which a v4 model never read.
    assert redefined_since(4, upto=5) == ()
    # Version 6 redefined the amounts against the price (the tariff or the month's rate):
    # a v4 model is told of those, never of the column it did not read.
    assert redefined_since(4) == (
        "amount_minus_tariff_amount_sek",
        "amount_over_tariff_amount",
        "amount_over_tariff_amount_peer_z",
    )
    refusal = definitions_refusal("7", trained=4)
    assert refusal is not None and "amount_over_tariff_amount" in refusal
    assert "carer_overlap_visit_share" not in refusal
