"""The real CLI, end to end, in a temporary folder: simulate, validate, train, promote, score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import ok, refused, tillit, tillit_here
from tests.conftest import EXPORT_PERIOD

LAST = EXPORT_PERIOD


@pytest.fixture(scope="module")
def world(trained_export: dict[str, Path]) -> dict[str, Path]:
    """The session's municipality (`simulate`, `train`, `promote`, `score` of its last month).

    Only read here: what a test writes goes to its own folder.
    """
    return {**trained_export, "score": trained_export["reference"]}


def test_simulated_data_validates_with_nothing_quarantined(world, tmp_path):
    result = ok(
        tillit("validate", "--data", world["data"], "--out", tmp_path / "val", cwd=tmp_path)
    )
    report = json.loads((tmp_path / "val" / "validation.json").read_text())
    assert report["rows_quarantined"] == 0
    assert report["usable"] is True
    assert "invoices" in result.stdout


def test_hand_broken_rows_are_quarantined_exactly_with_their_rule(world, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in world["data"].glob("*.parquet"):
        (broken / path.name).write_bytes(path.read_bytes())
    visits = pd.read_parquet(broken / "visits.parquet")
    visits.loc[5, "end_at"] = visits.loc[5, "start_at"] - pd.Timedelta(minutes=10)
    visits.loc[9, "method"] = "fax"
    visits.to_parquet(broken / "visits.parquet", index=False)
    invoices = pd.read_parquet(broken / "invoices.parquet")
    invoices.loc[3, "billed_hours"] = -4.0
    invoices.to_parquet(broken / "invoices.parquet", index=False)
    ok(tillit("validate", "--data", broken, "--out", tmp_path / "out", cwd=tmp_path))
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    got = set(zip(quarantine["table"], quarantine["row_number"], quarantine["rule"], strict=True))
    assert got == {
        ("visits", 5, "end_at_after_start_at"),
        ("visits", 9, "method must be one of nfc, app, manual"),
        ("invoices", 3, "billed_hours >= 0"),
    }
    assert (broken / "visits.parquet").exists() and not (broken / "quarantine.parquet").exists()


def test_missing_column_and_over_limit_stop_with_exit_2(world, tmp_path):
    missing = tmp_path / "missing"
    missing.mkdir()
    for path in world["data"].glob("*.parquet"):
        (missing / path.name).write_bytes(path.read_bytes())
    pd.read_parquet(missing / "grants.parquet").drop(
        columns=["hours_per_month", "valid_to"]
    ).to_parquet(missing / "grants.parquet")
    refused(
        tillit("validate", "--data", missing, "--out", tmp_path / "o1", cwd=tmp_path),
        "grants.parquet: missing column(s) hours_per_month, valid_to",
    )
    over = tmp_path / "over"
    over.mkdir()
    for path in world["data"].glob("*.parquet"):
        (over / path.name).write_bytes(path.read_bytes())
    invoices = pd.read_parquet(over / "invoices.parquet")
    invoices.loc[: len(invoices) // 50, "amount_sek"] = -1.0  # 2 %: above the 1 % limit
    invoices.to_parquet(over / "invoices.parquet", index=False)
    refused(
        tillit("validate", "--data", over, "--out", tmp_path / "o2", cwd=tmp_path),
        "invoices:",
        "above the limit",
    )
    assert (tmp_path / "o2" / "quarantine.parquet").exists()
    refused(
        tillit(
            "score",
            "--data",
            over,
            "--period",
            LAST,
            "--out",
            tmp_path / "o3",
            "--store",
            world["store"],
            cwd=tmp_path,
        ),
        "nothing is scored",
    )


def test_score_writes_every_output_and_the_counts_add_up(world):
    out = world["score"]
    for name in (
        "risk_list.parquet",
        "risk_list.csv",
        "explanations.parquet",
        "report.html",
        "manifest.json",
    ):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    invoices = pd.read_parquet(world["data"] / "invoices.parquet")
    assert counts["received"] == int((invoices["period"] == LAST).sum())
    assert counts["scored"] + counts["quarantined"] == counts["received"]
    for key in (
        "model_name",
        "model_version",
        "run_id",
        "config_hash",
        "data_fingerprint",
        "contract_version",
    ):
        assert manifest[key]
    risk_list = pd.read_parquet(out / "risk_list.parquet")
    assert len(risk_list) == counts["received"]
    assert risk_list["invoice_id"].is_unique
    scored = risk_list[risk_list["status"] == "scored"]
    assert sorted(scored["rank"].tolist()) == list(range(1, len(scored) + 1))
    assert scored["risk_score"].between(0, 1).all()
    assert (scored.sort_values("rank")["risk_score"].diff().dropna() <= 0).all()
    flagged = risk_list[risk_list["flagged"]]
    assert (flagged["why_flagged"].str.len() > 0).all()
    assert flagged["reasons"].str.len().gt(0).all()
    for why in ("capacity", "random check"):
        assert flagged["why_flagged"].str.contains(why).any()
    assert manifest["outputs"]["risk_list.parquet"]
    # The log's newest record before the run (train and promote came first) is kept outside it.
    head = manifest["audit_log_head"]
    assert head["seq"] >= 2 and len(head["record_hash"]) == 64


def test_explanations_add_up_to_each_scorers_output(world):
    explanations = pd.read_parquet(world["score"] / "explanations.parquet")
    risk_list = pd.read_parquet(world["score"] / "risk_list.parquet")
    flagged = set(
        risk_list.loc[risk_list["flagged"] & (risk_list["status"] == "scored"), "invoice_id"]
    )
    assert set(explanations["invoice_id"]) == flagged
    assert set(explanations["scorer"]) == {"lightgbm", "isolation_forest", "tail_probability"}
    totals = explanations.groupby(["invoice_id", "scorer"]).agg(
        contributions=("contribution", "sum"),
        base=("base_value", "first"),
        output=("output", "first"),
    )
    np.testing.assert_allclose(
        totals["base"] + totals["contributions"], totals["output"], atol=1e-6
    )


def test_report_lists_every_flagged_invoice_and_needs_no_network(world):
    html = (world["score"] / "report.html").read_text("utf-8")
    risk_list = pd.read_parquet(world["score"] / "risk_list.parquet")
    for invoice_id in risk_list.loc[risk_list["flagged"], "invoice_id"]:
        assert invoice_id in html
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_same_inputs_give_byte_identical_risk_lists_and_no_silent_overwrite(world, tmp_path):
    args = ("--data", world["data"], "--period", LAST, "--store", world["store"])
    refused(
        tillit("score", *args, "--out", world["score"], cwd=tmp_path),
        "already holds an earlier run",
    )
    again = tmp_path / "score-again"
    ok(tillit("score", *args, "--out", again, cwd=tmp_path))
    for name in ("risk_list.parquet", "risk_list.csv", "explanations.parquet"):
        assert (again / name).read_bytes() == (world["score"] / name).read_bytes(), name


def test_scoring_refuses_a_month_without_invoices_and_features_unlike_training(world, tmp_path):
    args = ("--data", world["data"], "--store", world["store"])
    empty = tillit("score", *args, "--period", "2031-01", "--out", tmp_path / "a", cwd=tmp_path)
    assert empty.returncode == 4, empty.stderr  # nothing to score (was 2 before exit codes)
    assert "has no invoices" in empty.stderr and "2025-01 to 2025-06" in empty.stderr
    config = tmp_path / "windows.yaml"
    config.write_text("features:\n  history_windows_months: [2, 4]\n")
    refused(
        tillit(
            "score",
            *args,
            "--period",
            LAST,
            "--out",
            tmp_path / "b",
            "--config",
            config,
            cwd=tmp_path,
        ),
        "features differ from those the model was trained on",
    )


def test_registered_pyfunc_predicts_the_risk_the_cli_wrote(world, monkeypatch, tmp_path):
    import mlflow

    features_file = tmp_path / "features.parquet"
    ok(
        tillit(
            "features",
            "--data",
            world["data"],
            "--period",
            LAST,
            "--out",
            features_file,
            cwd=tmp_path,
        )
    )
    features = pd.read_parquet(features_file)
    uri = f"sqlite:///{world['store'] / 'mlflow.db'}"
    # set_*_uri write these variables too: set through monkeypatch, they are removed afterwards.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # another test of this process may have pointed it elsewhere
    model = mlflow.pyfunc.load_model("models:/tillit-invoice-risk@champion")
    predicted = pd.Series(np.asarray(model.predict(features)), index=features["invoice_id"])
    risk_list = pd.read_parquet(world["score"] / "risk_list.parquet").set_index("invoice_id")
    np.testing.assert_allclose(
        predicted.to_numpy(), risk_list.loc[predicted.index, "risk_score"].to_numpy(), atol=1e-12
    )


def test_promote_refuses_a_worse_challenger_and_accepts_a_better_one(world_copy, tmp_path):
    # The copy's champion is version 1, trained with the default config (the session's
    # world; its first promote, "no champion yet", is in tests/e2e/test_retrain_cycle.py).
    # The challengers are trained in this process; every promote that decides runs as a new
    # process (the refusal of --force without --reason runs here).
    data, store = world_copy["data"], world_copy["store"]
    weak = tmp_path / "weak.yaml"
    weak.write_text(
        "training:\n  lightgbm:\n    n_estimators: 1\n    num_leaves: 2\n"
        "  isolation_forest:\n    n_estimators: 1\n    max_samples: 16\n"
        "  blend:\n    supervised_weight: 0.0\n"
    )
    ok(tillit_here("train", "--data", data, "--store", store, "--config", weak, "--quiet"))
    worse = tillit("promote", "--store", store, cwd=tmp_path)
    assert worse.returncode == 1
    assert "refused: worse by" in worse.stdout
    assert "challenger version 2" in worse.stdout and "champion version 1" in worse.stdout
    refused(tillit_here("promote", "--store", store, "--force"), "--force needs --reason")
    ok(tillit("promote", "--store", store, "--force", "--reason", "test override", cwd=tmp_path))
    ok(tillit_here("train", "--data", data, "--store", store, "--quiet"))
    better = ok(tillit("promote", "--store", store, cwd=tmp_path))
    # Same data, same held-out month: the training runs' held-out figures compare.
    assert "promoted: better by" in better.stdout
    assert "held-out figures of two training runs on the same data and month" in better.stdout
    assert "challenger version 3" in better.stdout and "champion version 2" in better.stdout


def test_promote_refuses_a_challenger_of_other_feature_definitions(world_copy, tmp_path):
    """A challenger trained on older definitions than this tillit's is refused (it would read
    redefined columns as champion) unless promoted on purpose; its held-out figure is not
    compared with the champion's, computed on other features."""
    from mlflow.tracking import MlflowClient

    from tillit.features import FEATURE_DEFINITIONS_VERSION, redefined_since
    from tillit.ops import tracking
    from tillit.ops.auditlog import read_log

    store = world_copy["store"]
    ok(tillit_here("train", "--data", world_copy["data"], "--store", store, "--quiet"))
    client = tracking.connect(store)
    name = "tillit-invoice-risk"
    challenger = tracking.resolve_alias(client, name, tracking.CHALLENGER)
    champion = tracking.resolve_alias(client, name, tracking.CHAMPION)
    older = FEATURE_DEFINITIONS_VERSION - 1  # as if trained by the tillit before the last change
    run = client.get_run(challenger.run_id)
    assert run.data.tags["feature_definitions"] == str(FEATURE_DEFINITIONS_VERSION)
    MlflowClient(client.tracking_uri).set_tag(challenger.run_id, "feature_definitions", str(older))
    now = f"v{FEATURE_DEFINITIONS_VERSION}"

    said = refused(tillit_here("promote", "--store", store))
    assert f"was trained on feature definitions v{older}, older than the {now}" in said
    assert ", ".join(redefined_since(older)) in said and "--other-definitions --reason" in said
    record = read_log(store / "audit_log.jsonl").iloc[-1]
    assert record["command"] == "promote" and record["details"]["promoted"] is False
    assert record["details"]["feature_definitions"] == {
        "challenger": older, "champion": FEATURE_DEFINITIONS_VERSION,
        "tillit": FEATURE_DEFINITIONS_VERSION,
    }  # fmt: skip
    refused(tillit_here("promote", "--store", store, "--force", "--reason", "r"), "v" + str(older))
    refused(tillit_here("promote", "--store", store, "--other-definitions"), "needs --reason")
    # On purpose: the same data and held-out month, but the held-out figures are not compared.
    across = refused(
        tillit_here("promote", "--store", store, "--other-definitions", "--reason", "r")
    )
    assert "cannot compare like with like" in across
    assert "held-out figures were computed on different features" in across
    assert tracking.resolve_alias(client, name, tracking.CHAMPION).version == champion.version
    forced = ok(
        tillit_here(
            "promote", "--store", store, "--other-definitions", "--force", "--reason", "urgent"
        )
    )
    assert "promoted with --other-definitions (urgent)" in forced.stdout
    assert tracking.resolve_alias(client, name, tracking.CHAMPION).version == challenger.version
    tags = client.get_model_version(name, challenger.version).tags
    assert tags["promotion_other_definitions"] == "urgent"


def test_features_on_a_hand_broken_folder_records_everything_it_leaves_out(world, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in world["data"].glob("*.parquet"):
        (broken / path.name).write_bytes(path.read_bytes())
    tariffs = pd.read_parquet(broken / "tariffs.parquet")
    tariffs = tariffs[~((tariffs["service_type"] == "home_service") & (tariffs["year"] == 2025))]
    tariffs.to_parquet(broken / "tariffs.parquet", index=False)
    visits = pd.read_parquet(broken / "visits.parquet")
    visits.loc[7, "method"] = "fax"
    visits.to_parquet(broken / "visits.parquet", index=False)
    out = tmp_path / "f.parquet"
    result = ok(tillit("features", "--data", broken, "--period", LAST, "--out", out, cwd=tmp_path))
    assert "1 input rows broke the contract" in result.stdout
    invoices = pd.read_parquet(world["data"] / "invoices.parquet")
    month = invoices[invoices["period"] == LAST]
    home = set(month.loc[month["service_type"] == "home_service", "invoice_id"])
    held = pd.read_parquet(tmp_path / "f_quarantine.parquet")
    assert set(held["invoice_id"]) == home
    assert (
        held["reason"] == "no tariff for home_service in 2025: the amount cannot be checked"
    ).all()
    described = pd.read_parquet(out)
    assert len(described) + len(held) == len(month)
    validation = pd.read_parquet(tmp_path / "f_validation_quarantine.parquet")
    assert validation[["table", "row_number"]].values.tolist() == [["visits", 7]]
