"""Drift between a scored month and the training months: exact PSI, thresholds, the CLI."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.cli import ok, tillit_here
from tillit.config import DriftConfig, ReviewConfig
from tillit.review.drift import bin_edges, bin_shares, build_reference, compare, psi


def test_psi_on_a_hand_built_split_is_exact() -> None:
    edges = bin_edges(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    np.testing.assert_array_equal(edges, [2.5])
    reference = bin_shares(np.array([1.0, 2.0, 3.0, 4.0]), edges)
    np.testing.assert_array_equal(reference, [0.5, 0.5, 0.0])  # below, at or above, missing
    month = bin_shares(np.array([1.0, 1.0, 1.0, 4.0]), edges)
    np.testing.assert_array_equal(month, [0.75, 0.25, 0.0])
    # (0.75 - 0.5) ln(1.5) + (0.25 - 0.5) ln(0.5) = 0.25 ln 3; the empty bins add 0.
    assert psi(reference, month) == pytest.approx(0.25 * math.log(3), abs=1e-12)
    assert psi(reference, reference) == 0.0
    # A missing value lands in its own bin; the empty reference bin is floored at 1e-4.
    with_missing = bin_shares(np.array([1.0, np.nan, 3.0, 4.0]), edges)
    np.testing.assert_array_equal(with_missing, [0.25, 0.5, 0.25])
    expected = -0.25 * math.log(0.5) + (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    assert psi(reference, with_missing) == pytest.approx(expected, abs=1e-12)


def _month(rng: np.random.Generator, n: int, shift: float, period: str) -> pd.DataFrame:
    """Three billing features that move together when billing moves, one that does not."""
    billed = rng.normal(1.0 + shift, 0.1, n)
    return pd.DataFrame(
        {
            "billed_over_registered_hours": billed,
            "billed_over_registered_hours_3m": billed + rng.normal(0, 0.02, n),
            "billed_over_granted_hours": billed * rng.uniform(0.9, 1.0, n),
            "short_visit_share": rng.uniform(0, 1, n),
            "finding_billing_after_death": (rng.uniform(0, 1, n) < 0.01).astype(float),
            "period": period,
        }
    )


def test_a_shifted_month_warns_and_an_unshifted_one_does_not() -> None:
    rng = np.random.default_rng(0)
    training = pd.concat([_month(rng, 1000, 0.0, p) for p in ("2025-01", "2025-02")])
    X = training.drop(columns="period")
    risk = rng.uniform(0, 0.9, len(X))
    has_finding = X["finding_billing_after_death"].to_numpy() > 0
    review = ReviewConfig(capacity_share=0.05)
    reference = build_reference(X, training["period"], risk, has_finding, review, 10)
    config = DriftConfig()
    none = np.zeros(500, bool)

    same = _month(rng, 500, 0.0, "2025-03").drop(columns="period")
    report = compare(reference, "2025-03", same, rng.uniform(0, 0.9, 500), none, review, config)
    assert report.warnings == [] and not report.drifted
    assert report.max_feature_psi < 0.1

    shifted = _month(rng, 500, 0.15, "2025-04").drop(columns="period")
    moved = compare(reference, "2025-04", shifted, rng.uniform(0, 0.9, 500), none, review, config)
    assert moved.drifted
    assert set(moved.feature_psi["feature"].iloc[:3]) == {
        "billed_over_registered_hours",
        "billed_over_registered_hours_3m",
        "billed_over_granted_hours",
    }
    assert moved.feature_psi["psi"].iloc[2] > 1.0
    assert moved.warnings == [
        "3 features with PSI above 0.25: "
        + ", ".join(f"{r.feature} ({r.psi:.2f})" for r in moved.feature_psi.head(3).itertuples())
    ]
    assert moved.to_dict()["drifted"] is True

    # One feature alone does not make a month drift; a finding that turns common does.
    one = same.assign(short_visit_share=same["short_visit_share"] * 0.2)
    alone = compare(reference, "2025-05", one, rng.uniform(0, 0.9, 500), none, review, config)
    assert alone.feature_psi["feature"].iloc[0] == "short_visit_share"
    assert alone.feature_psi["psi"].iloc[0] > 1.0 and not alone.drifted
    deaths = same.assign(finding_billing_after_death=(np.arange(500) < 25).astype(float))
    found = compare(reference, "2025-06", deaths, rng.uniform(0, 0.9, 500), none, review, config)
    assert any(
        w.startswith("finding_billing_after_death: 5.0% of invoices") for w in found.warnings
    )


@pytest.mark.slow
def test_score_writes_drift_and_warns_on_a_shifted_month_without_refusing(tmp_path) -> None:
    """Its own world (seed 5), built in process: the session's world (seed 11) bills after a
    death on 0.9 % of June's invoices against none in training, a true drift."""
    from tests.conftest import trained_world

    # Every command in process (`tillit_here`): the same Typer app, options and messages,
    # without a new interpreter importing MLflow for each of the four runs.
    world = trained_world(tmp_path, seed=5, clients=300, months=6)
    data, store = world["data"], world["store"]
    out = tmp_path / "score"
    scored = ok(
        tillit_here(
            "score",
            "--data",
            data,
            "--period",
            "2025-06",
            "--out",
            out,
            "--store",
            store,
        )
    )
    assert "drift" not in scored.stderr
    drift = json.loads((out / "drift.json").read_text())
    assert drift["available"] and not drift["drifted"] and drift["warnings"] == []
    assert drift["training_periods"][-1] == "2025-05"
    manifest = json.loads((out / "manifest.json").read_text())
    assert "drift.json" in manifest["outputs"] and manifest["drift"]["drifted"] is False
    assert "Has this month moved from the training months?" in (out / "report.html").read_text()
    shown = ok(tillit_here("drift", "--data", data, "--period", "2025-06", "--store", store))
    assert "no drift above the thresholds" in shown.stdout

    # The same month billed at 1.6 times the hours (and money): the list is still written.
    shifted = tmp_path / "shifted"
    shutil.copytree(data, shifted)
    invoices = pd.read_parquet(shifted / "invoices.parquet")
    month = invoices["period"] == "2025-06"
    invoices.loc[month, "billed_hours"] = (invoices.loc[month, "billed_hours"] * 1.6).round(2)
    invoices.loc[month, "amount_sek"] = (invoices.loc[month, "amount_sek"] * 1.6).round(2)
    invoices.to_parquet(shifted / "invoices.parquet", index=False)
    moved = ok(tillit_here("drift", "--data", shifted, "--period", "2025-06", "--store", store))
    assert "warning: drift:" in moved.stderr
    out2 = tmp_path / "score-shifted"
    scored2 = ok(
        tillit_here(
            "score",
            "--data",
            shifted,
            "--period",
            "2025-06",
            "--out",
            out2,
            "--store",
            store,
            "--lang",
            "sv",
        )
    )
    assert "the list may be less reliable" in scored2.stderr
    assert json.loads((out2 / "drift.json").read_text())["drifted"] is True
    assert "Listan kan vara mindre tillförlitlig" in (out2 / "report.html").read_text()
    from tillit.ops import tracking

    client = tracking.connect(store)
    runs = client.search_runs(
        [client.get_experiment_by_name(tracking.DRIFT_EXPERIMENT_NAME).experiment_id],
        "tags.kind = 'drift'",
    )
    assert sorted(r.data.tags["drifted"] for r in runs) == ["false", "true"]
    assert all("drift_max_feature_psi" in r.data.metrics for r in runs)
