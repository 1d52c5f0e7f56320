"""The audit log: every run leaves a record, and no record is rewritten.

One JSON object per line (JSON Lines), appended and never changed. Each record
carries a sequence number (its line number, from 1) and a hash chain:

- ``prev_hash`` is the SHA-256 of the previous line's bytes (without its
  newline); the first record has 64 zeros;
- ``record_hash`` is the SHA-256 of the record's canonical JSON without the
  ``record_hash`` field (keys sorted, no spaces, UTF-8).

Editing any record changes its own hash and breaks the next record's
``prev_hash``; deleting or reordering lines breaks the chain and the
sequence. Lines are written in canonical form, so even a whitespace edit is
seen. What a chain kept in the same file cannot show is the newest records
being cut off the end: for that, keep each record's ``record_hash``
somewhere else too (the MLflow run of the same command) and pass those to
``verify_log(..., known_hashes=...)``.

Only this module touches the log file, and only by appending: the file is
opened with ``O_APPEND`` (never truncating), locked with ``flock`` while a
record is added so concurrent writers in one or several processes cannot
interleave, and synced to disk before the call returns.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd

try:  # POSIX only; elsewhere the in-process lock is all we have.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENESIS_HASH = "0" * 64
_CHUNK = 8192
# Serialises appends from threads of this process on platforms without flock.
_APPEND_LOCK = threading.Lock()


@dataclass(frozen=True)
class AuditRecord:
    """One run of a command: who, when, on what, with what result.

    ``counts`` holds row counts (received, scored, quarantined, flagged...);
    ``output_hashes`` maps each written file to its SHA-256 so an output can
    later be checked against the run that produced it.
    """

    seq: int
    utc_time: str
    user: str
    command: str
    model_name: str | None
    model_version: str | None
    run_id: str | None
    config_hash: str | None
    data_fingerprint: str | None
    counts: dict[str, int]
    output_hashes: dict[str, str]
    details: dict[str, object]
    prev_hash: str
    record_hash: str


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))


def _jsonable(value: object) -> object:
    """Plain JSON values only, so the canonical form (and the hash) is well defined."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or infinity
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)  # Path, Decimal, Timestamp...


def _canonical(obj: Mapping[str, object]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record_hash(obj: Mapping[str, object]) -> str:
    return _sha256(_canonical({k: v for k, v in obj.items() if k != "record_hash"}))


def _current_user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no login name, no USER variable, no passwd entry
        return "unknown"


def _tail(fd: int) -> tuple[int, bytes | None, bool]:
    """Lines in the file, its last line (without newline) and whether that line is complete."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, None, True
    n_newlines = 0
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        n_newlines += chunk.count(b"\n")
        offset += len(chunk)
    complete = os.pread(fd, 1, size - 1) == b"\n"
    end = size - 1 if complete else size
    # Walk back from the end to the newline before the last line.
    start = end
    while start > 0:
        step = min(_CHUNK, start)
        chunk = os.pread(fd, step, start - step)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            start = start - step + cut + 1
            break
        start -= step
    last = os.pread(fd, end - start, start)
    n_lines = n_newlines if complete else n_newlines + 1
    return n_lines, last, complete


class RecordFields(TypedDict, total=False):
    """What a command says about its run; every field may be left out."""

    model_name: str | None
    model_version: str | None
    run_id: str | None
    config_hash: str | None
    data_fingerprint: str | None
    counts: Mapping[str, int] | None
    output_hashes: Mapping[str, str] | None
    details: Mapping[str, object] | None


def append_record(
    path: Path,
    *,
    command: str,
    user: str | None = None,
    now: dt.datetime | None = None,
    **fields: Unpack[RecordFields],
) -> AuditRecord:
    """Append one record to the log at ``path`` (created if absent) and return it.

    A last line left incomplete by a crash is closed with a newline and
    chained over as it stands: the damage stays visible to ``verify_log``,
    and the new run is still recorded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    body: dict[str, object] = {
        "utc_time": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "user": user or _current_user(),
        "command": command,
        "model_name": fields.get("model_name"),
        "model_version": fields.get("model_version"),
        "run_id": fields.get("run_id"),
        "config_hash": fields.get("config_hash"),
        "data_fingerprint": fields.get("data_fingerprint"),
        "counts": {str(k): int(v) for k, v in (fields.get("counts") or {}).items()},
        "output_hashes": {str(k): str(v) for k, v in (fields.get("output_hashes") or {}).items()},
        "details": _jsonable(dict(fields.get("details") or {})),
    }
    with _APPEND_LOCK:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            n_lines, last, complete = _tail(fd)
            body["seq"] = n_lines + 1
            body["prev_hash"] = GENESIS_HASH if last is None else hashlib.sha256(last).hexdigest()
            body["record_hash"] = _record_hash(body)
            line = _canonical(body) + "\n"
            os.write(fd, (b"" if complete else b"\n") + line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock
    return AuditRecord(**{name: body[name] for name in RECORD_FIELDS})  # type: ignore[arg-type]


def _lines(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline after the last record
    return lines


def _parse(line: bytes) -> dict[str, object] | None:
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def log_head(path: Path) -> dict[str, object] | None:
    """The newest record's sequence number and hash, to keep outside the log (None: no log yet).

    Kept in every manifest and MLflow run, they let ``verify_log`` see a log that
    was cut short, which the chain inside the file alone cannot show.
    """
    path = Path(path)
    if not path.exists():
        return None
    lines = _lines(path)
    obj = _parse(lines[-1]) if lines else None
    if obj is None:
        return None
    return {"seq": obj.get("seq"), "record_hash": obj.get("record_hash")}


def read_log(path: Path) -> pd.DataFrame:
    """All readable records in file order, one row each; an absent log gives no rows.

    Lines that are not JSON objects are left out here and reported by
    ``verify_log``.
    """
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype="object") for name in RECORD_FIELDS})
    rows = [obj for obj in map(_parse, _lines(path)) if obj is not None]
    frame = pd.DataFrame(rows, columns=list(RECORD_FIELDS))
    # A tampered record may hold anything: show it as it is, verify_log says what is wrong.
    frame["seq"] = pd.to_numeric(frame["seq"], errors="coerce").astype("Int64")
    return frame


def verify_log(path: Path, known_hashes: Mapping[int, str] | None = None) -> list[str]:
    """Problems found in the log, one sentence each; an empty list means it is intact.

    Args:
        path: the log file.
        known_hashes: ``record_hash`` by ``seq`` kept elsewhere (for example in
            the MLflow runs); each must be present and unchanged, which also
            reveals records cut off the end of the file.
    """
    path = Path(path)
    if not path.exists():
        return [f"no audit log at {path}"]
    problems: list[str] = []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        problems.append("the last line is incomplete (no newline): a write was interrupted")
    lines = _lines(path)
    seen: dict[int, str] = {}
    prev_line: bytes | None = None
    prev_seq = 0
    for number, line in enumerate(lines, start=1):
        expected_prev = GENESIS_HASH if prev_line is None else hashlib.sha256(prev_line).hexdigest()
        prev_line = line
        obj = _parse(line)
        if obj is None:
            problems.append(f"line {number}: not a JSON record")
            continue
        missing = [name for name in RECORD_FIELDS if name not in obj]
        if missing:
            problems.append(f"line {number}: fields missing: {', '.join(missing)}")
            continue
        if obj["record_hash"] != _record_hash(obj):
            problems.append(f"line {number}: record was edited (its hash does not match)")
        elif line.decode("utf-8") != _canonical(obj):
            problems.append(f"line {number}: record was rewritten (not as it was appended)")
        if obj["prev_hash"] != expected_prev:
            problems.append(
                f"line {number}: chain broken: the line before it was changed, removed or inserted"
            )
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"line {number}: sequence number {seq!r} is not a number")
            continue
        # Reported once where it jumps, not again on every later line.
        if seq != prev_seq + 1:
            problems.append(
                f"line {number}: sequence number {seq} follows {prev_seq}: "
                "records are missing, inserted or reordered"
            )
        prev_seq = seq
        seen[seq] = str(obj["record_hash"])
    for seq, expected in sorted((known_hashes or {}).items()):
        if seq not in seen:
            problems.append(f"record {seq} is missing (known from elsewhere): the log was cut")
        elif seen[seq] != expected:
            problems.append(f"record {seq} differs from the hash kept elsewhere")
    return problems


def _summary(mapping: object) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return ""
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def format_log(frame: pd.DataFrame, last: int | None = None) -> str:
    """A plain-text table of the records, oldest first, for ``tillit log``.

    Args:
        frame: as returned by ``read_log``.
        last: show only the newest ``last`` records.
    """
    if last is not None and last < 0:
        raise ValueError(f"last must be at least 0, got {last}")
    if frame.empty:
        return "(the audit log has no records)"
    shown = frame.tail(last) if last is not None else frame
    if shown.empty:
        return "(no records selected)"

    def model(row: pd.Series) -> str:
        name = row["model_name"]
        if not isinstance(name, str):
            return "-"
        version = row["model_version"]
        return f"{name} v{version}" if isinstance(version, str) else name

    table = pd.DataFrame(
        {
            "seq": shown["seq"].astype(str),
            "utc_time": shown["utc_time"].astype(str),
            "user": shown["user"].astype(str),
            "command": shown["command"].astype(str),
            "model": [model(row) for _, row in shown.iterrows()],
            "run": [r[:8] if isinstance(r, str) else "-" for r in shown["run_id"]],
            "counts": [_summary(c) for c in shown["counts"]],
        }
    )
    return table.to_string(index=False, justify="left")
