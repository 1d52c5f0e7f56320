"""`tillit providers` end to end in a temporary folder, after `tillit train` and `tillit promote`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.cli import ok, refused, tillit
from tests.conftest import EXPORT_PERIOD

LAST = EXPORT_PERIOD


@pytest.fixture(scope="session")  # built once even when xdist interleaves modules
def world(
    trained_export: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """`tillit providers` on the session's trained world, beside its last month's risk list.

    That world's `train` registered both models and its `promote` made both champion.
    """
    root = tmp_path_factory.mktemp("providers")
    data, store = trained_export["data"], trained_export["store"]
    runs = root / "runs"
    shutil.copytree(trained_export["reference"], runs / f"score-{LAST}")
    ok(
        tillit(
            "providers", "--period", LAST, "--out", runs / f"providers-{LAST}", "--data", data,
            "--store", store, cwd=root,
        )
    )  # fmt: skip
    return {"root": root, "data": data, "store": store, "out": runs / f"providers-{LAST}"}


def test_train_and_promote_name_the_provider_model(trained_export):
    assert "registered tillit-provider-risk version 1" in trained_export["said"]["train"]
    promoted = trained_export["said"]["promote"]
    assert "provider model: no champion yet: version 1 becomes champion" in promoted


def test_scorecard_ranks_every_active_provider_and_lists_applicants(world):
    out = world["out"]
    table = pd.read_parquet(out / "provider_risk.parquet")
    invoices = pd.read_parquet(world["data"] / "invoices.parquet")
    providers = pd.read_parquet(world["data"] / "providers.parquet")
    active = set(invoices.loc[invoices["period"] == LAST, "provider_id"])
    applicants = set(providers.loc[providers["approved_on"].isna(), "provider_id"])
    assert applicants, "the simulator adds applicants"
    part = table.groupby("part")["provider_id"].apply(set).to_dict()
    assert part == {"invoices_and_register": active, "register_only": applicants}
    assert table["risk_score"].between(0, 1).all()
    for rows in table.groupby("part"):
        ranked = rows[1].sort_values("rank")
        assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
        assert ranked["risk_score"].is_monotonic_decreasing
    billed = invoices[invoices["period"] == LAST].groupby("provider_id")["amount_sek"].sum()
    got = table.set_index("provider_id")
    for provider, amount in billed.items():
        assert got.loc[provider, "amount_sek"] == pytest.approx(amount, abs=0.01)
        assert (
            got.loc[provider, "n_invoices"]
            == ((invoices["period"] == LAST) & (invoices["provider_id"] == provider)).sum()
        )
    assert (got.loc[list(applicants), "n_invoices"] == 0).all()
    assert table.loc[table["rank"] == 1, "reasons"].str.len().min() > 0


def test_manifest_counts_and_hashes_and_a_link_to_the_months_risk_list(world):
    out = world["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    table = pd.read_parquet(out / "provider_risk.parquet")
    assert manifest["counts"]["providers_listed"] == len(table)
    assert manifest["counts"]["applicants"] == int((table["part"] == "register_only").sum())
    assert manifest["model_name"] == "tillit-provider-risk" and manifest["model_version"] == "1"
    assert len(manifest["config_hash"]) == 12 and manifest["data_fingerprint"]
    for name in ("provider_risk.parquet", "provider_risk.csv", "providers.html"):
        assert manifest["outputs"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert manifest["risk_list"] == f"../score-{LAST}/report.html"
    assert manifest["invoice_scores_reused_from_score_runs"] == [LAST]
    page = (out / "providers.html").read_text()
    assert f'href="../score-{LAST}/report.html#provider-' in page or (
        f"href='../score-{LAST}/report.html#provider-" in page
    )
    assert "<script" not in page and "http" not in page


def test_an_applicant_led_by_a_person_from_a_sanctioned_company_is_shown_with_the_org_number(
    world, tmp_path
):
    out = tmp_path / "applicants"
    ok(tillit("providers", "--data", world["data"], "--period", LAST, "--out", out,
              "--applicants", "--lang", "sv", "--store", world["store"], cwd=tmp_path))  # fmt: skip
    table = pd.read_parquet(out / "provider_risk.parquet")
    assert set(table["part"]) == {"register_only"}
    truth = pd.read_parquet(world["data"] / "provider_truth.parquet")
    linked = set(truth.loc[truth["applicant"] & truth["irregular"], "provider_id"])
    assert linked
    persons = pd.read_parquet(world["data"] / "provider_persons.parquet")
    providers = pd.read_parquet(world["data"] / "providers.parquet").set_index("provider_id")
    for applicant in linked:
        row = table.set_index("provider_id").loc[applicant]
        person = persons.loc[persons["provider_id"] == applicant, "person_id"]
        earlier = persons[persons["person_id"].isin(person) & (persons["provider_id"] != applicant)]
        orgs = providers.loc[earlier["provider_id"], "org_number"]
        assert any(org in row["facts"] for org in orgs), row["facts"]
        assert "inte godkänd (sökande)" in row["facts"]
        assert row["rank"] <= len(linked)  # linked applicants come first
    assert "Sökande att granska före godkännande" in (out / "providers.html").read_text()


def test_same_inputs_give_byte_identical_scorecards(world, tmp_path):
    # Beside the month's score run, as the first scorecard: it reads the report's counts too.
    again = world["out"].parent / "providers-again"
    ok(tillit("providers", "--data", world["data"], "--period", LAST, "--out", again,
              "--store", world["store"], cwd=tmp_path))  # fmt: skip
    assert (again / "provider_risk.csv").read_bytes() == (
        world["out"] / "provider_risk.csv"
    ).read_bytes()


def test_refusals_are_one_clear_message(world, tmp_path):
    data = world["data"]
    no_model = tillit(
        "providers", "--data", data, "--period", LAST, "--out", tmp_path / "x",
        "--store", tmp_path / "empty", cwd=tmp_path,
    )  # fmt: skip
    assert no_model.returncode == 3, no_model.stderr  # no usable model (was 2 before exit codes)
    for phrase in ("tillit-provider-risk", "tillit train", str((tmp_path / "empty").resolve())):
        assert phrase in no_model.stderr
    refused(
        tillit(
            "providers",
            "--data",
            data,
            "--period",
            "2025-5",
            "--out",
            tmp_path / "y",
            "--store",
            world["store"],
            cwd=tmp_path,
        ),
        "YYYY-MM",
    )
    refused(
        tillit(
            "providers",
            "--data",
            data,
            "--period",
            LAST,
            "--out",
            world["out"],
            "--store",
            world["store"],
            cwd=tmp_path,
        ),
        "--overwrite",
    )


def test_provider_model_is_registered_with_card_fairness_audit_and_audit_records(world):
    from tillit.ops.auditlog import read_log

    store = world["store"]
    card = (store / "model_cards" / "tillit-provider-risk-v1.md").read_text()
    for phrase in ("provider size", "provider age", "provider legal form", "Rule baseline"):
        assert phrase in card, phrase
    records = read_log(store / "audit_log.jsonl")
    mine = records[records["model_name"] == "tillit-provider-risk"]
    assert mine["command"].tolist()[:3] == ["train", "promote", "providers"]
    trained = mine.iloc[0]
    assert trained["details"]["eval_combined_average_precision"] >= 0
    assert trained["details"]["method"] in ("weighted", "logistic")
    assert "tillit-provider-risk-v1.md" in trained["output_hashes"]
