"""Attacks on the model store and the audit log, through the CLI, each refused or detected.

One small world lives through an honest history (train -> promote -> score ->
feedback -> retrain); each test then tampers with the store as an insider would,
checks that tillit refuses (exit 3 for a model, exit 1 for the log) naming what
changed, and puts the store back as it was, so nothing is lost between tests.
Where an attack plants code, or removes the store's database, the command runs as a new
process (`tillit`); elsewhere its Typer app runs in this process (`tillit_here`: the same
options, messages and exit codes, without a new interpreter and MLflow's import each time).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest

from tests import REPO
from tests.cli import ok, tillit, tillit_here
from tests.conftest import copy_world

MONTH, NEXT_MONTH = "2025-05", "2025-06"
MODEL, PROVIDER_MODEL = "tillit-invoice-risk", "tillit-provider-risk"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")  # built once even when xdist interleaves modules
def world(
    trained_export: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A store with an honest history: train, promote, score, feedback, retrain.

    The session's trained world (simulated, trained, promoted) is copied, and the rest of
    the history is lived on the copy in this process: the attacks below go through the
    real command, the history only needs what the commands write. Its tests are in the
    trained world's xdist group (`WORLD_GROUPS` in conftest), so it is built on that worker.
    """
    root = tmp_path_factory.mktemp("integrity")
    copied = copy_world(trained_export, root)
    data, store = copied["data"], copied["store"]
    scored = root / f"score-{MONTH}"
    ok(
        tillit_here(
            "score", "--data", data, "--period", MONTH, "--out", scored, "--store", store, "--quiet"
        )
    )  # fmt: skip
    listed = pd.read_parquet(scored / "risk_list.parquet")
    flagged = listed[listed["flagged"] & (listed["status"] == "scored")]
    truth = pd.read_parquet(data / "truth.parquet").set_index("invoice_id")
    decided_on = pd.read_parquet(data / "audit_outcomes.parquet")["reviewed_on"].max()
    decided_on = max(decided_on, pd.read_parquet(data / "invoices.parquet")["submitted_on"].max())
    irregular = truth.loc[flagged["invoice_id"], "irregular"].to_numpy()
    pd.DataFrame(
        {
            "invoice_id": flagged["invoice_id"].to_numpy(),
            "decision": ["confirmed" if bad else "cleared" for bad in irregular],
            "recovered_sek": [None] * len(flagged),
            "reviewer": "auditor-1",
            "decided_on": (decided_on + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
        }
    ).to_csv(root / "decisions.csv", index=False)
    ok(
        tillit_here(
            "feedback", "--data", data, "--decisions", root / "decisions.csv",
            "--risk-list", scored / "risk_list.parquet", "--store", store,
        )
    )  # fmt: skip
    ok(tillit_here("retrain", "--data", data, "--store", store, "--out", root / "retrain"))
    return {"root": root, "data": data, "store": store}


def model_files(store: Path, name: str, version: str = "1") -> Path:
    """The folder of a registered version's files, as MLflow wrote them."""
    from tillit.ops import tracking
    from tillit.ops.integrity import model_folder

    return model_folder(tracking.connect(store), name, version)


@contextmanager
def kept(*paths: Path) -> Iterator[None]:
    """Put files (or folders) back exactly as they were after an attack."""
    saved = {p: p.read_bytes() for p in paths if p.is_file()}
    folders = [p for p in paths if p.is_dir()]
    backups = {p: p.with_name(p.name + ".kept") for p in folders}
    for folder, backup in backups.items():
        shutil.copytree(folder, backup, symlinks=True)
    try:
        yield
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
        for folder, backup in backups.items():
            shutil.rmtree(folder, ignore_errors=True)
            backup.rename(folder)


def score(world: dict[str, Path], out: str, *extra: str, new_process: bool = False) -> object:
    """`tillit score` of the next month: in this process, or as a new process where an
    attack plants code, so that nothing it could leave behind reaches the tests."""
    args = (
        "score", "--data", world["data"], "--period", NEXT_MONTH, "--out",
        world["root"] / out, "--store", world["store"], *extra,
    )  # fmt: skip
    return tillit(*args, cwd=world["root"]) if new_process else tillit_here(*args)


def refused_model(result: object, *phrases: str) -> str:
    """Exit 3 (no usable model), every phrase in the message, no traceback."""
    assert result.returncode == 3, result.stdout + result.stderr  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    for phrase in phrases:
        assert phrase in stderr, stderr
    return stderr


# --- models in the store -------------------------------------------------------------


def test_the_honest_store_scores_and_its_log_verifies(world):
    ok(score(world, "honest", new_process=True))
    verified = ok(tillit("log", "--verify", "--store", world["store"], cwd=world["root"]))
    assert "hash chain intact and every record's HMAC valid" in verified.stdout
    # Every registered version keeps the hash of each of its files, in the tag and the record.
    from tillit.ops import tracking
    from tillit.ops.auditlog import read_records
    from tillit.ops.integrity import ARTIFACT_HASHES_DETAIL, recorded_artifact_hashes

    client = tracking.connect(world["store"])
    trains = [
        r for r in read_records(world["store"] / "audit_log.jsonl") if r["command"] == "train"
    ]
    assert {r["model_name"] for r in trains} == {MODEL, PROVIDER_MODEL}
    for record in trains:
        tagged = recorded_artifact_hashes(client, record["model_name"], record["model_version"])
        assert record["details"][ARTIFACT_HASHES_DETAIL] == tagged
    files = set(trains[0]["details"][ARTIFACT_HASHES_DETAIL])
    assert {"MLmodel", "pyfunc_model.py", "artifacts/risk_model.joblib"} <= files
    assert {"requirements.txt", "python_env.yaml", "conda.yaml"} <= files


def test_code_appended_to_the_stored_model_code_is_refused_and_never_runs(world, tmp_path):
    marker = tmp_path / "ran"
    code = model_files(world["store"], MODEL) / "pyfunc_model.py"
    with kept(code):
        with code.open("a") as handle:
            handle.write(f"\nopen({str(marker)!r}, 'w').write('pwned')\n")
        result = score(world, "appended-code", new_process=True)
        refused_model(
            result, "tillit-invoice-risk version 1 failed verification: pyfunc_model.py was changed"
        )
        assert not marker.exists()
        assert not (world["root"] / "appended-code").exists()


class _Planted:
    """Unpickling this runs code: it opens (creates) a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.marker, "w")


def test_a_rewritten_pickle_is_refused_and_not_unpickled(world, tmp_path):
    marker = tmp_path / "unpickled"
    bundle = model_files(world["store"], MODEL) / "artifacts" / "risk_model.joblib"
    with kept(bundle):
        joblib.dump(_Planted(marker), bundle)
        refused_model(
            score(world, "pickle", new_process=True), "artifacts/risk_model.joblib was changed"
        )
        assert not marker.exists()


def test_a_model_saved_again_with_another_blend_weight_is_refused(world):
    bundle = model_files(world["store"], MODEL) / "artifacts" / "risk_model.joblib"
    with kept(bundle):
        model = joblib.load(bundle)
        model.blend = model.blend.model_copy(update={"supervised_weight": 0.05})
        joblib.dump(model, bundle)
        refused_model(score(world, "blend"), "artifacts/risk_model.joblib was changed")


def test_new_hashes_written_into_the_mlflow_tag_do_not_pass(world):
    """The insider also rewrites the version tag; the signed train record still disagrees."""
    from tillit.ops import tracking
    from tillit.ops.integrity import ARTIFACT_HASHES_TAG, MLFLOW_META, hash_folder

    folder = model_files(world["store"], MODEL)
    bundle = folder / "artifacts" / "risk_model.joblib"
    client = tracking.connect(world["store"])
    tag = client.get_model_version(MODEL, "1").tags[ARTIFACT_HASHES_TAG]
    with kept(bundle):
        model = joblib.load(bundle)
        model.blend = model.blend.model_copy(update={"supervised_weight": 0.05})
        joblib.dump(model, bundle)
        # Without the registered_model_meta MLflow writes on a pyfunc load (an earlier
        # test may have loaded this version): the forger hashes the model's own files.
        hashes = {k: v for k, v in hash_folder(folder).items() if k != MLFLOW_META}
        forged = json.dumps(hashes, sort_keys=True, separators=(",", ":"))
        client.set_model_version_tag(MODEL, "1", ARTIFACT_HASHES_TAG, forged)
        try:
            refused_model(
                score(world, "tag"),
                "the file hashes in its MLflow tag differ from its signed train record "
                "(artifacts/risk_model.joblib): the tag was edited",
            )
        finally:
            client.set_model_version_tag(MODEL, "1", ARTIFACT_HASHES_TAG, tag)


def test_an_added_or_removed_model_file_is_refused(world):
    folder = model_files(world["store"], MODEL)
    with kept(folder):
        (folder / "artifacts" / "helper.py").write_text("import os\n")
        refused_model(score(world, "added"), "artifacts/helper.py was added")
        (folder / "artifacts" / "helper.py").unlink()
        # MLflow's own pyfunc load writes this into a local model: allowed when it is exactly that.
        meta = folder / "registered_model_meta"
        meta.write_text(f"model_name: {MODEL}\nmodel_version: '1'\n")
        ok(score(world, "meta"))
        meta.write_text(f"model_name: {MODEL}\nmodel_version: '1'\nloader: evil\n")
        refused_model(score(world, "meta-changed"), "registered_model_meta was added")
        meta.unlink()
        (folder / "input_example.json").unlink()
        refused_model(score(world, "removed"), "input_example.json is missing")


def test_a_symlinked_model_folder_is_refused_as_a_link(world, tmp_path):
    """The folder itself a link to an honest copy: refused, and the message says why."""
    folder = model_files(world["store"], MODEL)
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    try:
        folder.symlink_to(moved, target_is_directory=True)
        stderr = refused_model(score(world, "symlinked"), "is a symbolic link: refused")
        assert "is missing" not in stderr
    finally:
        folder.unlink(missing_ok=True)
        shutil.move(moved, folder)


def test_a_version_registered_without_hashes_is_refused_with_retrain_advice(world):
    from tillit.ops import tracking
    from tillit.ops.integrity import ARTIFACT_HASHES_TAG

    client = tracking.connect(world["store"])
    tag = client.get_model_version(MODEL, "1").tags[ARTIFACT_HASHES_TAG]
    client.delete_model_version_tag(MODEL, "1", ARTIFACT_HASHES_TAG)
    try:
        refused_model(
            score(world, "old"),
            "tillit-invoice-risk version 1 was registered without the hashes of its files",
            "retrain with `tillit train`",
        )
    finally:
        client.set_model_version_tag(MODEL, "1", ARTIFACT_HASHES_TAG, tag)


def test_the_provider_model_and_promotion_are_verified_too(world, tmp_path):
    marker = tmp_path / "ran"
    code = model_files(world["store"], PROVIDER_MODEL) / "pyfunc_model.py"
    with kept(code):
        with code.open("a") as handle:
            handle.write(f"\nopen({str(marker)!r}, 'w')\n")
        result = tillit(
            "providers", "--data", world["data"], "--period", NEXT_MONTH, "--out",
            world["root"] / "providers", "--store", world["store"], cwd=world["root"],
        )  # fmt: skip
        refused_model(result, "tillit-provider-risk version 1 failed verification")
        assert not marker.exists()
    # The waiting challenger (version 2, from the retrain) changed: it never becomes champion.
    challenger = model_files(world["store"], MODEL, "2") / "MLmodel"
    with kept(challenger):
        challenger.write_text(challenger.read_text() + "\n# edited\n")
        promoted = tillit_here("promote", "--force", "--reason", "test", "--store", world["store"])
        refused_model(promoted, "tillit-invoice-risk version 2 failed verification: MLmodel")
    # The refusal is a decision on record, like a refusal for what is missing.
    from tillit.ops.auditlog import read_log

    record = read_log(world["store"] / "audit_log.jsonl").iloc[-1]
    assert record["command"] == "promote" and record["details"]["promoted"] is False
    assert "version 2 failed verification: MLmodel" in record["details"]["message"]
    from tillit.ops import tracking

    champion = tracking.connect(world["store"]).get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "1"


# --- the audit log -----------------------------------------------------------------------


def verify(world: dict[str, Path], *extra: object, new_process: bool = False) -> object:
    """`tillit log --verify`: in this process, or as a new process (no open database)."""
    args = ("log", "--verify", "--store", world["store"], *extra)
    return tillit(*args, cwd=world["root"]) if new_process else tillit_here(*args)


def alarm(result: object, *phrases: str) -> str:
    """Exit 1, every phrase in the message."""
    assert result.returncode == 1, result.stdout + result.stderr  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    for phrase in phrases:
        assert phrase in stderr, stderr
    return stderr


def _canonical(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_an_edited_record_is_detected(world):
    log = world["store"] / "audit_log.jsonl"
    with kept(log):
        lines = log.read_text("utf-8").splitlines()
        lines[2] = lines[2].replace('"user":"', '"user":"mallory-', 1)
        log.write_text("\n".join(lines) + "\n", "utf-8")
        alarm(verify(world), "line 3: record was edited", "line 3: HMAC does not match")


def test_a_chain_recomputed_without_the_key_is_detected(world):
    import hashlib

    log = world["store"] / "audit_log.jsonl"
    with kept(log):
        objs = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
        feedback = next(i for i, o in enumerate(objs) if o["command"] == "feedback")
        objs[feedback]["counts"] = {k: 0 for k in objs[feedback]["counts"]}
        lines: list[str] = []
        for obj in objs:
            obj["prev_hash"] = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else "0" * 64
            body = {k: v for k, v in obj.items() if k not in ("record_hash", "mac")}
            obj["record_hash"] = hashlib.sha256(_canonical(body).encode()).hexdigest()
            lines.append(_canonical(obj))
        log.write_text("\n".join(lines) + "\n", "utf-8")
        stderr = alarm(verify(world), f"line {feedback + 1}: HMAC does not match")
        assert "chain broken" not in stderr  # the plain chain is whole: only the key tells


def test_a_deleted_last_record_is_detected(world):
    """The newest records may have no MLflow copy (feedback); the head kept beside the key does."""
    log = world["store"] / "audit_log.jsonl"
    with kept(log):
        lines = log.read_text("utf-8").splitlines(keepends=True)
        log.write_text("".join(lines[:-1]), "utf-8")
        alarm(verify(world), f"record {len(lines)}, the newest written", "the log was cut")


def test_a_deleted_log_is_an_alarm_not_a_fresh_start(world):
    log = world["store"] / "audit_log.jsonl"
    with kept(log):
        log.unlink()
        alarm(
            verify(world),
            f"no audit log at {world['store'] / 'audit_log.jsonl'}, but the store's MLflow runs",
            "records were written to it",
        )


def test_a_removed_store_or_database_is_an_alarm(world):
    store = world["store"]
    with kept(store / "mlflow.db"):
        (store / "mlflow.db").unlink()
        alarm(verify(world, new_process=True), "mlflow.db is missing, but the audit log names")
    with kept(store):
        shutil.rmtree(store)
        alarm(verify(world, new_process=True), "no audit log at", "it was deleted or moved")
        assert not store.exists()  # verifying never creates a new store


def test_anchors_are_written_outside_the_store_and_checked(world, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    anchored = ok(verify(world, "--anchor", anchors))
    head = json.loads(anchors.read_text("utf-8"))
    assert f"anchored record {head['seq']}" in anchored.stdout
    assert "1 anchors in" in ok(verify(world, "--anchors", anchors)).stdout
    inside = tillit_here(
        "log", "--anchor", world["store"] / "anchors.jsonl", "--store", world["store"]
    )
    assert inside.returncode == 2 and "lies inside the --store folder" in inside.stderr
    log = world["store"] / "audit_log.jsonl"
    with kept(log):
        # The whole log replaced by an older copy: chain, HMAC and MLflow copies of the
        # earlier records all hold; the anchor does not.
        lines = log.read_text("utf-8").splitlines(keepends=True)
        log.write_text("".join(lines[:-1]), "utf-8")
        alarm(verify(world, "--anchors", anchors), f"record {head['seq']}, anchored at")
        failed = tillit_here("log", "--anchor", anchors, "--store", world["store"])
        assert failed.returncode == 1 and "nothing was anchored" in failed.stderr
    assert len(anchors.read_text("utf-8").splitlines()) == 1


def test_a_table_mode_model_is_verified_before_scoring(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # simulate, train and promote run in this process
    spec = REPO / "configs" / "tables" / "card-payments.yaml"
    ok(
        tillit_here(
            "simulate-table", "--kind", "card-payments", "--rows", "3000", "--out", "t.parquet"
        )
    )  # fmt: skip
    ok(tillit_here("train", "--table", "t.parquet", "--spec", spec))
    ok(tillit_here("promote", "--spec", spec))
    marker = tmp_path / "unpickled"
    bundle = model_files(tmp_path / "models", "card-payments") / "artifacts" / "risk_model.joblib"
    joblib.dump(_Planted(marker), bundle)
    result = tillit(
        "score", "--table", "t.parquet", "--spec", spec, "--period", "2026-01-20..2026-01-30",
        "--out", "out", cwd=tmp_path,
    )  # fmt: skip
    refused_model(result, "card-payments version 1 failed verification", "risk_model.joblib")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
