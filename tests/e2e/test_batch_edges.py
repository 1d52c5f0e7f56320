"""Batch edges of the real CLI: exit codes a payment-run job can act on, the period checked
before any work, messages naming the store used, the Makefile's variables, and MLflow hygiene."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests import REPO
from tests.cli import ok, refused, tillit
from tests.conftest import EXPORT_PERIOD

ROOT = REPO
SPECS = ROOT / "configs" / "tables"


def exits(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> str:
    """The command stopped with `code`, one message holding every phrase, no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    return result.stderr


# ---------------------------------------------------------------- exit 2: the period first


@pytest.mark.parametrize("period", ["12/2025", "2025-13", "2025-6", "2025-12-01"])
def test_a_bad_period_is_refused_before_the_data_is_read(tmp_path, period):
    broken = tmp_path / "broken"  # no table at all: reading it would fail validation
    broken.mkdir()
    (broken / "invoices.csv").write_text("not,a,contract\n1,2,3\n")
    for command in ("score", "providers", "drift", "features"):
        args = ["--data", broken, "--period", period, "--store", tmp_path / "store"]
        if command in ("score", "providers"):
            args += ["--out", tmp_path / f"out-{command}"]
        if command == "features":
            args = args[:4]
        message = refused(tillit(command, *args, cwd=tmp_path), repr(period), "YYYY-MM")
        assert "contract" not in message, (command, message)
        assert not (tmp_path / f"out-{command}").exists()
    assert not (tmp_path / "store").exists()  # not even the store was opened


def test_the_same_broken_folder_with_a_good_period_fails_on_the_data(trained_export, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "invoices.csv").write_text("not,a,contract\n1,2,3\n")
    refused(
        tillit(
            "score", "--data", broken, "--period", "2025-12", "--out", tmp_path / "o",
            "--store", trained_export["store"], cwd=tmp_path,
        ),
        "does not follow data contract",
    )  # fmt: skip


def test_table_mode_names_the_spec_period_format(tmp_path):
    for period, written in (("2026-13-01", "YYYY-MM-DD"), ("2026-02-30", "YYYY-MM-DD")):
        refused(
            tillit(
                "score", "--table", "missing.csv", "--spec", SPECS / "card-payments.yaml",
                "--period", period, "--out", "o", cwd=tmp_path,
            ),
            "expected one day like 2026-03-01 or FROM..TO",
            written,
        )  # fmt: skip
    refused(
        tillit(
            "score", "--table", "missing.csv", "--spec", SPECS / "transport-trips.yaml",
            "--period", "2026-W54", "--out", "o", cwd=tmp_path,
        ),
        "expected one week like 2026-W09",
    )  # fmt: skip


# ---------------------------------------------------------------- exit 3: no model in --store


def test_no_model_in_a_fresh_store_exits_3_naming_that_store(trained_export, tmp_path):
    data, fresh = trained_export["data"], tmp_path / "fresh-store"
    period = ("--period", EXPORT_PERIOD)
    runs = {
        "score": ("score", "--data", data, *period, "--out", tmp_path / "s"),
        "providers": ("providers", "--data", data, *period, "--out", tmp_path / "p"),
        "drift": ("drift", "--data", data, *period),
        "promote": ("promote",),
    }
    for name, args in runs.items():
        message = exits(tillit(*args, "--store", fresh, cwd=tmp_path), 3, "has the alias")
        assert str(fresh.resolve()) in message, (name, message)
        assert "models/mlflow.db" not in message.replace(str(fresh.resolve()), ""), message
    assert not (tmp_path / "s").exists() and not (tmp_path / "p").exists()


def test_table_mode_without_a_model_exits_3(tmp_path):
    from tillit.tables.simulate import simulate_table

    simulate_table("card-payments", 300, seed=1).to_csv(tmp_path / "t.csv", index=False)
    result = tillit(
        "score", "--table", "t.csv", "--spec", SPECS / "card-payments.yaml",
        "--period", "2026-01-02", "--out", "o", "--store", tmp_path / "empty", cwd=tmp_path,
    )  # fmt: skip
    assert str((tmp_path / "empty").resolve()) in exits(result, 3, "card-payments")


# ---------------------------------------------------------------- exit 4: nothing in the month


def test_a_month_without_invoices_exits_4_naming_the_months_present(trained_export, tmp_path):
    data, store = trained_export["data"], trained_export["store"]
    present = "2025-01 to 2025-06 (6 months)"
    for command, extra in (
        ("score", ("--out", tmp_path / "s", "--store", store)),
        ("providers", ("--out", tmp_path / "p", "--store", store)),
        ("drift", ("--store", store)),
        ("features", ("--out", tmp_path / "f.parquet")),
    ):
        result = tillit(command, "--data", data, "--period", "2031-01", *extra, cwd=tmp_path)
        exits(result, 4, "2031-01", "nothing to score", present)
    assert not any(tmp_path.iterdir())  # refused before writing anything


# ---------------------------------------------------------------- --help says the codes


@pytest.mark.parametrize("command", ["score", "providers", "drift", "promote", "features"])
def test_help_lists_the_exit_codes(tmp_path, command):
    text = " ".join(ok(tillit(command, "--help", cwd=tmp_path)).stdout.split())
    assert "Exit codes: 0 done" in text
    assert "2 bad input" in text
    if command != "features":
        assert "3 no" in text
    if command not in ("promote",):
        assert "4 nothing to score" in text


# ---------------------------------------------------------------- Makefile


def make_dry_run(*args: str) -> str:
    result = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if "tillit " in line)


def test_make_score_and_providers_take_data_period_store_and_never_overwrite_unasked():
    score = make_dry_run("score", "DATA=x", "PERIOD=2025-12", "STORE=s")
    assert "--data x --period 2025-12 --out runs/x/score-2025-12 " in score
    assert score.rstrip().endswith("--store s")
    assert "--overwrite" not in score
    providers = make_dry_run("providers", "DATA=exports/kommun/", "PERIOD=2025-11", "STORE=s")
    assert "--out runs/kommun/providers-2025-11 " in providers
    assert "--store s" in providers and "--overwrite" not in providers
    forced = make_dry_run("score", "DATA=x", "PERIOD=2025-12", "OVERWRITE=1")
    assert "--overwrite" in forced and "--store models" in forced
    for target in ("train", "promote", "retrain", "demo"):
        assert "--store s" in make_dry_run(target, "STORE=s"), target


# ---------------------------------------------------------------- MLflow hygiene


def test_drift_runs_have_their_own_experiment_and_every_run_name_is_unique(
    trained_export, tmp_path
):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "store"
    shutil.copytree(trained_export["store"], store)
    uri = f"sqlite:///{(store / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The fixture's own score logged one; other tests of the world may have scored too.
    earlier = client.get_experiment_by_name("tillit-drift")
    before = len(client.search_runs([earlier.experiment_id])) if earlier is not None else 0
    for name in ("again", "once-more"):  # the same month twice: two drift runs
        ok(
            tillit(
                "score", "--data", trained_export["data"], "--period", EXPORT_PERIOD,
                "--out", tmp_path / name, "--store", store, cwd=tmp_path,
            )
        )  # fmt: skip
    training = client.get_experiment_by_name("tillit")
    drifts = client.get_experiment_by_name("tillit-drift")
    assert drifts is not None and drifts.experiment_id != training.experiment_id
    drift_runs = client.search_runs([drifts.experiment_id])
    training_runs = client.search_runs([training.experiment_id])
    assert before >= 1 and len(drift_runs) == before + 2
    assert {run.data.tags["kind"] for run in drift_runs} == {"drift"}
    assert all(run.data.tags.get("kind") != "drift" for run in training_runs)
    names = [run.info.run_name for run in drift_runs + training_runs]
    assert len(names) == len(set(names)), names
    assert all(name.startswith(f"drift-{EXPORT_PERIOD}-") for name in names[: len(drift_runs)])


def test_the_provider_model_has_a_signature_and_its_card_counts_providers(trained_export):
    import mlflow

    from tillit.ops import tracking

    store = trained_export["store"]
    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, "tillit-provider-risk", "champion")
    info = mlflow.models.get_model_info(f"models:/{ref.name}/{ref.version}")
    assert info.signature is not None
    inputs = set(info.signature.inputs.input_names())
    assert {"n_invoices", "high_risk_invoice_share", "mean_invoice_risk"} <= inputs
    assert "irregular" not in inputs  # the label is no input
    assert "provider_id" not in inputs
    assert info.signature.outputs is not None
    card = (store / "model_cards" / f"{ref.name}-v{ref.version}.md").read_text("utf-8")
    assert "providers per period" in card and "invoices per period" not in card
