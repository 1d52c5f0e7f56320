"""Audit log: records come back in order, the chain holds, and tampering is found."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tillit.ops.auditlog import (
    GENESIS_HASH,
    append_record,
    audit_key,
    format_log,
    read_log,
    verify_log,
)

T0 = dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC)


def _three(path: Path) -> list:
    return [
        append_record(path, command="validate", counts={"invoices": 120}, user="anna", now=T0),
        append_record(
            path,
            command="train",
            model_name="tillit-lgbm",
            model_version="3",
            run_id="abcdef1234567890",
            config_hash="c" * 64,
            data_fingerprint="d" * 64,
            counts={"invoices": 1200, "labelled": 300},
            output_hashes={"model_card.html": "e" * 64},
            details={"auc": np.float64(0.81), "nan_metric": float("nan"), "periods": ("2025-01",)},
            user="anna",
            now=T0 + dt.timedelta(hours=1),
        ),
        append_record(
            path,
            command="score",
            model_name="tillit-lgbm",
            model_version="3",
            counts={"received": 130, "scored": 128, "quarantined": 2, "flagged": 13},
            user="bert",
            now=T0 + dt.timedelta(days=1),
        ),
    ]


def test_three_records_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "models" / "audit_log.jsonl"  # parent folder created on demand
    records = _three(path)
    frame = read_log(path)
    assert frame["seq"].tolist() == [1, 2, 3]
    assert frame["command"].tolist() == ["validate", "train", "score"]
    assert frame["user"].tolist() == ["anna", "anna", "bert"]
    assert frame["utc_time"].tolist() == [
        "2025-03-01T08:30:00Z",
        "2025-03-01T09:30:00Z",
        "2025-03-02T08:30:00Z",
    ]
    assert frame["counts"].iloc[2] == {
        "received": 130,
        "scored": 128,
        "quarantined": 2,
        "flagged": 13,
    }
    assert frame["details"].iloc[1] == {"auc": 0.81, "nan_metric": None, "periods": ["2025-01"]}
    assert frame["record_hash"].tolist() == [r.record_hash for r in records]
    assert records[0].prev_hash == GENESIS_HASH
    first_line = path.read_bytes().split(b"\n")[0]
    assert records[1].prev_hash == hashlib.sha256(first_line).hexdigest()


def test_intact_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    records = _three(path)
    assert verify_log(path) == []
    assert verify_log(path, known_hashes={r.seq: r.record_hash for r in records}) == []


def test_user_defaults_to_login_name_or_unknown(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "audit_log.jsonl"

    def no_login() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", no_login)
    assert append_record(path, command="log").user == "unknown"
    monkeypatch.setattr("getpass.getuser", lambda: "carin")
    assert append_record(path, command="log").user == "carin"


def test_editing_a_middle_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"invoices":1200', '"invoices":1100')
    path.write_text("".join(lines), encoding="utf-8")
    problems = verify_log(path)
    assert any(p.startswith("line 2: record was edited") for p in problems)
    assert any(p.startswith("line 3: chain broken") for p in problems)


def test_edit_that_recomputes_the_record_hash_still_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[1])
    obj["user"] = "mallory"
    obj["record_hash"] = _plain_hash(obj)
    lines[1] = _canonical(obj)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert verify_log(path) == [
        "line 2: HMAC does not match: the record was edited or forged "
        "(or signed with another audit key)",
        "line 3: chain broken: the line before it was changed, removed or inserted",
    ]


def _canonical(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain_hash(obj: dict) -> str:
    """What an attacker without the key can recompute: the record's plain SHA-256."""
    body = {k: v for k, v in obj.items() if k not in ("record_hash", "mac")}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def test_an_edit_with_the_whole_chain_recomputed_fails_the_hmac(tmp_path: Path) -> None:
    """The attacker edits a record and recomputes every hash after it; only the key is missing."""
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    objs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    objs[1]["counts"]["labelled"] = 0
    lines: list[str] = []
    for obj in objs:
        obj["prev_hash"] = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else GENESIS_HASH
        obj["record_hash"] = _plain_hash(obj)
        lines.append(_canonical(obj))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = verify_log(path)
    assert problems[:2] == [
        f"line {n}: HMAC does not match: the record was edited or forged "
        "(or signed with another audit key)"
        for n in (2, 3)
    ]
    # The newest record's hash kept beside the key no longer matches either.
    assert problems[2].startswith("record 3, the newest written")
    assert problems[2].endswith("differs: the log was cut or replaced")
    assert len(problems) == 3


def test_a_record_without_hmac_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    objs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    del objs[2]["mac"]
    path.write_text("\n".join(_canonical(o) for o in objs) + "\n", encoding="utf-8")
    assert verify_log(path) == [
        "line 3: record has no HMAC (written before the log was keyed, or forged)"
    ]


def test_another_key_fails_every_record(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    problems = verify_log(path, key=bytes(range(32)))
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 2", "line 3"]


def test_whitespace_edit_of_the_last_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    text = path.read_text(encoding="utf-8")
    head, last = text.rstrip("\n").rsplit("\n", 1)
    path.write_text(head + "\n" + last.replace(",", ", ") + "\n", encoding="utf-8")
    assert verify_log(path) == ["line 3: record was rewritten (not as it was appended)"]


def test_deleting_a_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + lines[2], encoding="utf-8")
    problems = verify_log(path)
    assert any(p.startswith("line 2: chain broken") for p in problems)
    assert any("sequence number 3 follows 1" in p for p in problems)


def test_deleting_the_first_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[1:]), encoding="utf-8")
    problems = verify_log(path)
    assert any(p.startswith("line 1: chain broken") for p in problems)


def test_cut_tail_is_detected_with_hashes_kept_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    records = _three(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:2]), encoding="utf-8")
    # The chain left is whole; the head kept beside the key shows the cut.
    cut = verify_log(path)
    assert len(cut) == 1
    assert cut[0].startswith("record 3, the newest written (at 2025-03-02T08:30:00Z, known from ")
    assert cut[0].endswith("audit-heads.json), is missing: the log was cut or replaced")
    known = {r.seq: r.record_hash for r in records}
    assert verify_log(path, known_hashes=known) == [
        "record 3 is missing (known from elsewhere): the log was cut",
        cut[0],
    ]


def test_bad_json_and_torn_last_line_are_reported_and_appending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    with path.open("ab") as handle:
        handle.write(b'{"seq": 4, "command": "sco')  # a crash mid-write
    problems = verify_log(path)
    assert "the last line is incomplete (no newline): a write was interrupted" in problems
    assert "line 4: not a JSON record" in problems
    record = append_record(path, command="score", user="bert", now=T0)
    assert record.seq == 5
    frame = read_log(path)
    assert frame["seq"].tolist() == [1, 2, 3, 5]
    problems = verify_log(path)
    assert problems == [
        "line 4: not a JSON record",
        "line 5: sequence number 5 follows 3: records are missing, inserted or reordered",
        # The torn line stood where the head kept beside the key should have been.
        "record 3 (written at 2025-03-02T08:30:00Z) was no longer the newest when record 5 "
        "was appended: the log had been cut, deleted or replaced before then",
    ]


def test_file_only_grows_and_earlier_bytes_never_change(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    before = b""
    for i in range(5):
        append_record(path, command=f"run{i}", user="anna", now=T0)
        now = path.read_bytes()
        assert len(now) > len(before)
        assert now.startswith(before)
        before = now


def test_concurrent_appends_from_threads_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"

    def worker(i: int) -> None:
        for j in range(10):
            append_record(path, command=f"w{i}-{j}", user="anna", now=T0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify_log(path) == []
    frame = read_log(path)
    assert frame["seq"].tolist() == list(range(1, 41))
    assert len(set(frame["command"])) == 40


def test_absent_log_reads_empty_and_verifies_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    assert read_log(path).empty
    assert verify_log(path) == [f"no audit log at {path}"]
    assert format_log(read_log(path)) == "(the audit log has no records)"


def test_format_log_shows_the_newest_records(tmp_path: Path) -> None:
    path = tmp_path / "audit_log.jsonl"
    _three(path)
    text = format_log(read_log(path), last=2)
    lines = text.splitlines()
    assert len(lines) == 3  # header + two records
    assert lines[0].split() == ["seq", "utc_time", "user", "command", "model", "run", "counts"]
    assert "validate" not in text
    assert "tillit-lgbm v3" in lines[1] and "abcdef12" in lines[1]
    # Keys come back sorted: the stored line is canonical JSON.
    assert "flagged=13, quarantined=2, received=130, scored=128" in lines[2]
    with pytest.raises(ValueError):
        format_log(read_log(path), last=-1)


@pytest.mark.slow  # runs the real command in a new process
def test_tillit_log_detects_a_log_cut_short_from_hashes_kept_in_mlflow(tmp_path):
    """The chain alone cannot show lost newest records; the copies on MLflow runs can."""
    from tests.cli import tillit
    from tillit.jobs.common import AUDIT_LOG, record_run
    from tillit.ops import tracking

    store = tmp_path / "models"
    client = tracking.connect(store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    run_id = client.create_run(experiment.experiment_id).info.run_id
    first = record_run(store, "train", run_id=run_id, counts={"invoices": 3})
    second = record_run(store, "score", run_id=run_id, counts={"scored": 3})
    assert tracking.audit_log_known_hashes(client) == {
        first.seq: first.record_hash,
        second.seq: second.record_hash,
    }
    intact = tillit("log", "--store", store, cwd=tmp_path)
    assert intact.returncode == 0, intact.stderr
    path = store / AUDIT_LOG
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])  # the newest record cut off
    assert verify_log(path, key=audit_key())[0].startswith("record 2, the newest written")
    cut = tillit("log", "--store", store, cwd=tmp_path)
    assert cut.returncode == 1
    assert "record 2 is missing (known from elsewhere): the log was cut" in cut.stderr


def test_connecting_to_a_store_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    """Processes started later must not inherit the last store this one opened."""
    import os

    from tillit.ops import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    tracking.connect(tmp_path / "models")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_a_store_mlflow_cannot_open_leaves_the_log_without_a_record(
    tmp_path: Path, own_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's record is appended only once its MLflow run can carry the record's hash:
    a store that fails to open fails the run before the log gains a record."""
    from tillit.jobs.common import AUDIT_LOG, record_run
    from tillit.ops import tracking

    store = tmp_path / "models"
    store.mkdir()
    record_run(store, "validate", counts={"invoices": 3})  # no run: MLflow is not opened
    before = (store / AUDIT_LOG).read_bytes()

    def refused(_store: Path) -> None:
        raise RuntimeError("the store cannot be opened")

    monkeypatch.setattr(tracking, "connect", refused)
    with pytest.raises(RuntimeError, match="cannot be opened"):
        record_run(store, "score", run_id="abc", counts={"scored": 3})
    assert (store / AUDIT_LOG).read_bytes() == before


def test_a_failed_connect_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    """MLflow writes the store's URI into the environment; an error on the way restores it too."""
    import os

    import mlflow

    from tillit.ops import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///elsewhere.db")

    def fails(uri: str) -> None:
        raise RuntimeError("registry refused")

    monkeypatch.setattr(mlflow, "set_registry_uri", fails)
    with pytest.raises(RuntimeError, match="registry refused"):
        tracking.connect(tmp_path / "models")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:///elsewhere.db"


# --- the audit key -------------------------------------------------------------------


@pytest.fixture
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key file (not yet made) and heads of this test alone."""
    key_file = tmp_path / "keys" / "audit.key"
    monkeypatch.setenv("TILLIT_AUDIT_KEY_FILE", str(key_file))
    return key_file


def test_the_key_is_made_on_first_use_0600_and_never_replaced(tmp_path: Path, own_key: Path):
    import stat

    append_record(tmp_path / "log.jsonl", command="train")
    assert stat.S_IMODE(own_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(own_key.parent.stat().st_mode) == 0o700
    assert (own_key.parent / "audit-heads.json").is_file()
    key = own_key.read_bytes()
    append_record(tmp_path / "log.jsonl", command="score")
    assert own_key.read_bytes() == key
    assert verify_log(tmp_path / "log.jsonl") == []


def test_a_lost_key_is_never_silently_replaced(tmp_path: Path, own_key: Path):
    from tillit.errors import TillitError

    log = tmp_path / "log.jsonl"
    append_record(log, command="train")
    own_key.unlink()
    with pytest.raises(TillitError, match="holds records signed with a key, but the key file"):
        append_record(log, command="score")
    assert not own_key.exists()
    problems = verify_log(log)
    assert problems[0].startswith("the records' HMAC cannot be checked: no audit key")


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (b"\x00" * 32, "not random enough"),
        (b"tillit" * 6, "not random enough"),
        (b"abcd" * 8, "not random enough"),
        (bytes(range(31)), "holds 31 bytes"),
    ],
)
def test_short_or_low_entropy_keys_are_refused(tmp_path: Path, own_key: Path, key, why):
    from tillit.errors import TillitError

    own_key.parent.mkdir(parents=True)
    own_key.write_bytes(key)
    own_key.chmod(0o600)
    with pytest.raises(TillitError, match=why) as refused:
        append_record(tmp_path / "log.jsonl", command="train")
    assert key.hex() not in str(refused.value)  # the key itself is never shown
    assert not (tmp_path / "log.jsonl").exists()


def test_a_key_from_the_environment_and_one_others_may_write_is_refused(
    tmp_path: Path, own_key: Path, monkeypatch: pytest.MonkeyPatch
):
    import secrets

    from tillit.errors import TillitError

    key = secrets.token_bytes(32)
    monkeypatch.setenv("TILLIT_AUDIT_KEY", key.hex())
    record = append_record(tmp_path / "log.jsonl", command="train")
    assert not own_key.exists()  # the variable wins; no file is made
    assert verify_log(tmp_path / "log.jsonl", key=key) == []
    assert verify_log(tmp_path / "log.jsonl", key=secrets.token_bytes(32))
    monkeypatch.delenv("TILLIT_AUDIT_KEY")
    own_key.parent.mkdir(parents=True, exist_ok=True)  # the heads were kept there
    own_key.write_bytes(secrets.token_bytes(32))
    own_key.chmod(0o666)
    with pytest.raises(TillitError, match="may be written by other users"):
        append_record(tmp_path / "other.jsonl", command="train")
    assert record.mac
