"""`tillit log --verify` and `--anchor`: the audit log checked against every copy kept outside it.

The log's own chain and HMAC show an edited or forged record (ops/auditlog.py).
What a file cannot show about itself, that it was cut, deleted or replaced as a
whole, is shown by copies kept elsewhere:

- the head kept beside the audit key after every append (outside the store);
- each record's hash on the MLflow run of the same command (inside the store);
- the ``audit_log_head`` in every run's ``manifest.json`` that can still be read;
- anchor files: ``tillit log --anchor FILE`` appends the head to a file the
  operator keeps elsewhere (another disk, a WORM share, a printed page).

A store that has runs but no log, or a log that names MLflow runs while the
store's database is gone, is an alarm, never a fresh start.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tillit.data.io import file_sha256
from tillit.errors import TillitError
from tillit.ops.auditlog import AUDIT_LOG, log_head, read_records, verify_log

MLFLOW_DB = "mlflow.db"


@dataclass(frozen=True)
class AuditCheck:
    """What `tillit log --verify` found: the problems (empty: intact) and what it checked against."""

    problems: list[str]
    records: int
    checked_against: list[str]


def _anchors(anchor_file: Path, log: Path) -> list[dict[str, object]]:
    """The anchors of ``log`` in an anchor file (one JSON object a line)."""
    if not anchor_file.is_file():
        raise TillitError(f"anchor file {anchor_file} not found")
    ident = str(log.resolve())
    found: list[dict[str, object]] = []
    for number, line in enumerate(anchor_file.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchor = json.loads(line)
        except ValueError:
            raise TillitError(f"{anchor_file} line {number} is not an anchor (JSON)") from None
        if isinstance(anchor, dict) and anchor.get("log") == ident:
            found.append({**anchor, "line": number})
    return found


def _manifest_problems(
    records: Sequence[Mapping[str, object]], hashes: Mapping[object, str]
) -> tuple[list[str], int]:
    """Each run's manifest that can still be read must be the one recorded and name a true head."""
    newest: dict[str, Mapping[str, object]] = {}
    for record in records:
        details, outputs = record.get("details"), record.get("output_hashes")
        if (
            isinstance(details, Mapping)
            and isinstance(outputs, Mapping)
            and details.get("out")
            and "manifest.json" in outputs
        ):
            newest[str(details["out"])] = record
    problems: list[str] = []
    checked = 0
    for out, record in newest.items():
        path = Path(out) / "manifest.json"
        if not path.is_file():
            continue  # moved, deleted or on another machine: nothing to compare
        checked += 1
        outputs = record["output_hashes"]
        assert isinstance(outputs, Mapping)
        if file_sha256(path) != outputs["manifest.json"]:
            problems.append(f"{path} is not the manifest recorded in record {record['seq']}")
            continue
        head = json.loads(path.read_text("utf-8")).get("audit_log_head", "absent")
        if head == "absent":
            continue  # a command whose manifest keeps no head
        if head is None:
            if record["seq"] != 1:
                problems.append(
                    f"{path} says the log was empty before record {record['seq']}: "
                    "the log before it was replaced"
                )
        elif not isinstance(head, Mapping) or hashes.get(head.get("seq")) != head.get(
            "record_hash"
        ):
            problems.append(
                f"{path} names record {head.get('seq') if isinstance(head, Mapping) else head} "
                f"as the log's head before record {record['seq']}, and the log does not hold "
                "it as it was: the log was rewritten"
            )
    return problems, checked


def check_audit_trail(store: Path, anchor_file: Path | None = None) -> AuditCheck:
    """Verify the store's audit log against every copy of it kept elsewhere."""
    from tillit.ops import tracking

    store = Path(store)
    path = store / AUDIT_LOG
    problems: list[str] = []
    against = ["the head kept beside the audit key"]
    known: dict[int, str] = {}
    records = read_records(path)
    if (store / MLFLOW_DB).exists():
        known = tracking.audit_log_known_hashes(tracking.connect(store))
        against.append(f"{len(known)} record hashes on MLflow runs")
        if not path.exists() and known:
            problems.append(
                f"no audit log at {path}, but the store's MLflow runs hold the hashes of "
                f"{len(known)} of its records: the log was deleted"
            )
    elif os.environ.get("MLFLOW_TRACKING_URI") is None:
        runs = len({r["run_id"] for r in records if isinstance(r.get("run_id"), str)})
        if runs:
            problems.append(
                f"the store's MLflow database {store / MLFLOW_DB} is missing, but the audit log "
                f"names {runs} MLflow runs: the store was removed or replaced"
            )
    problems += verify_log(path, known_hashes=known)
    hashes: dict[object, str] = {
        r["seq"]: str(r.get("record_hash")) for r in records if isinstance(r.get("seq"), int)
    }
    manifest_problems, manifests = _manifest_problems(records, hashes)
    problems += manifest_problems
    against.append(f"{manifests} manifests")
    if anchor_file is not None:
        anchors = _anchors(anchor_file, path)
        if not anchors:
            problems.append(f"{anchor_file} holds no anchor of {path.resolve()}")
        for anchor in anchors:
            seq = anchor.get("seq")
            if hashes.get(seq) != anchor.get("record_hash"):
                what = "is missing" if seq not in hashes else "differs"
                problems.append(
                    f"record {seq}, anchored at {anchor.get('anchored_utc')} ({anchor_file} line "
                    f"{anchor['line']}), {what}: the log was cut or rewritten"
                )
        against.append(f"{len(anchors)} anchors in {anchor_file}")
    # The same cut can be reported by several copies; say each sentence once.
    return AuditCheck(list(dict.fromkeys(problems)), len(records), against)


def anchor_head(store: Path, anchor_file: Path) -> dict[str, object]:
    """Append the log's head (seq, hash, time) to an operator's anchor file, after verifying.

    Raises:
        TillitError: the anchor file would be inside the store, is a link, or the log
            fails verification (nothing is anchored then).
    """
    store, anchor_file = Path(store), Path(anchor_file)
    if anchor_file.resolve().is_relative_to(store.resolve()):
        raise TillitError(
            f"--anchor {anchor_file} lies inside the store {store}: an anchor must be kept "
            "where whoever can change the store cannot"
        )
    log = store / AUDIT_LOG
    head = log_head(log)
    if head is None:
        raise TillitError(f"no audit log at {log}: nothing to anchor")
    anchor = {
        "log": str(log.resolve()),
        "seq": head["seq"],
        "record_hash": head["record_hash"],
        "anchored_utc": dt.datetime.now(dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
    }
    line = json.dumps(anchor, sort_keys=True, separators=(",", ":")) + "\n"
    anchor_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(anchor_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise TillitError(f"cannot append to the anchor file {anchor_file}: {exc}") from None
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return anchor
