"""The audit log: every run leaves a record, and no record is rewritten.

One JSON object per line (JSON Lines), appended and never changed. Each record
carries a sequence number (its line number, from 1) and a hash chain:

- ``prev_hash`` is the SHA-256 of the previous line's bytes (without its
  newline); the first record has 64 zeros;
- ``record_hash`` is the SHA-256 of the record's canonical JSON without the
  ``record_hash`` and ``mac`` fields (keys sorted, no spaces, UTF-8);
- ``mac`` is the HMAC-SHA256, under the audit key, of the canonical JSON of
  every other field (``record_hash`` and ``prev_hash`` included).

Editing any record changes its own hash and breaks the next record's
``prev_hash``; deleting or reordering lines breaks the chain and the
sequence. Lines are written in canonical form, so even a whitespace edit is
seen. A plain chain can be recomputed by whoever can write the file; the HMAC
cannot without the key, which is kept outside the store (see ``audit_key``).

What a chain kept in the same file cannot show is the newest records being
cut off the end, or the whole file deleted: for that the head (newest
``seq`` and ``record_hash``) is kept outside the store beside the key after
every append (``audit-heads.json``), each record's hash is kept on the MLflow
run of the same command, and ``tillit log --anchor FILE`` copies the head to
a place the operator chooses. ``verify_log(..., known_hashes=...)`` checks
the log against such copies.

Only this module touches the log file, and only by appending: the file is
opened with ``O_APPEND`` (never truncating), locked with ``flock`` while a
record is added so concurrent writers in one or several processes cannot
interleave, and synced to disk before the call returns.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import json
import math
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd

from tillit.errors import TillitError
from tillit.ops.keys import create_key_file, read_key_file, read_key_variable

try:  # POSIX only; elsewhere the in-process lock is all we have.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENESIS_HASH = "0" * 64
AUDIT_LOG = "audit_log.jsonl"  # the log's name inside a model store
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
    mac: str


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))
# Records written before the log was keyed have no `mac`; they are reported, not unreadable.
_CHAINED_FIELDS = tuple(name for name in RECORD_FIELDS if name != "mac")

AUDIT_KEY_VARIABLE = "TILLIT_AUDIT_KEY"
AUDIT_KEY_FILE_VARIABLE = "TILLIT_AUDIT_KEY_FILE"
AUDIT_HEADS_FILE_VARIABLE = "TILLIT_AUDIT_HEADS_FILE"
HEADS_FILE = "audit-heads.json"


def audit_key_file() -> Path:
    """Where the audit key lives: ``$TILLIT_AUDIT_KEY_FILE``, else the user's config folder.

    The default, ``$XDG_CONFIG_HOME/tillit/audit.key`` (``~/.config/tillit/audit.key``),
    is outside every model store, so whoever can write a store cannot re-sign its log.
    """
    named = os.environ.get(AUDIT_KEY_FILE_VARIABLE)
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tillit" / "audit.key"


def heads_file() -> Path:
    """The newest record of every log this key signed: ``$TILLIT_AUDIT_HEADS_FILE``, else beside the key.

    The variable is for a key on a read-only mount (a secrets manager); either way the
    file must lie outside the stores.
    """
    named = os.environ.get(AUDIT_HEADS_FILE_VARIABLE)
    return Path(named).expanduser() if named else audit_key_file().with_name(HEADS_FILE)


def audit_key(log_path: Path | None = None, create: bool = False) -> bytes:
    """The audit key: hex in ``$TILLIT_AUDIT_KEY``, else the key file (see ``audit_key_file``).

    With ``create`` a missing key file is made (random, 0600) unless the log at
    ``log_path`` already holds signed records: a new key would make that history
    unverifiable, so the operator must restore the old one instead.

    Raises:
        TillitError: no usable key (missing, short, low-entropy, writable by others).
    """
    from_variable = read_key_variable(AUDIT_KEY_VARIABLE, "audit")
    if from_variable is not None:
        return from_variable
    path = audit_key_file()
    if path.exists() or path.is_symlink():
        return read_key_file(path, "audit")
    signed = log_path is not None and _log_is_signed(Path(log_path))
    if create and not signed:
        try:
            return create_key_file(path)
        except TillitError:  # another process made it first
            return read_key_file(path, "audit")
    where = f" the audit log {log_path} holds records signed with a key, but" if signed else ""
    raise TillitError(
        f"no audit key:{where} the key file {path} does not exist; restore it (or point "
        f"${AUDIT_KEY_FILE_VARIABLE} at it) - tillit never makes a new key for a signed log"
    )


def _log_is_signed(path: Path) -> bool:
    if not path.is_file():
        return False
    lines = _lines(path)
    return bool(lines) and b'"mac":' in lines[-1]


def _mac(key: bytes, obj: Mapping[str, object]) -> str:
    body = _canonical({k: v for k, v in obj.items() if k != "mac"})
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


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
    return _sha256(_canonical({k: v for k, v in obj.items() if k not in ("record_hash", "mac")}))


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
    key: bytes | None = None,
    **fields: Unpack[RecordFields],
) -> AuditRecord:
    """Append one signed record to the log at ``path`` (created if absent) and return it.

    A last line left incomplete by a crash is closed with a newline and
    chained over as it stands: the damage stays visible to ``verify_log``,
    and the new run is still recorded. ``key`` defaults to ``audit_key`` (made
    on first use); the new head is kept beside the key (``remember_head``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if key is None:
        key = audit_key(path, create=True)
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
            body["mac"] = _mac(key, body)
            line = _canonical(body) + "\n"
            os.write(fd, (b"" if complete else b"\n") + line.encode("utf-8"))
            os.fsync(fd)
            _remember_head_or_say(path, body, _parse(last) if last is not None else None)
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


def latest_record(path: Path, **match: object) -> dict[str, object] | None:
    """The newest readable record whose fields equal ``match`` (None: no such record or no log)."""
    path = Path(path)
    if not path.is_file():
        return None
    for obj in map(_parse, reversed(_lines(path))):
        if obj is not None and all(obj.get(name) == value for name, value in match.items()):
            return obj
    return None


def is_signed(record: Mapping[str, object], key: bytes) -> bool:
    """Whether a record's HMAC is the one ``key`` gives for its other fields."""
    mac = record.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, _mac(key, record))


def read_records(path: Path) -> list[dict[str, object]]:
    """Every readable record in file order, as stored (no log: none)."""
    path = Path(path)
    if not path.exists():
        return []
    return [obj for obj in map(_parse, _lines(path)) if obj is not None]


def read_log(path: Path) -> pd.DataFrame:
    """All readable records in file order, one row each; an absent log gives no rows.

    Lines that are not JSON objects are left out here and reported by
    ``verify_log``.
    """
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype="object") for name in RECORD_FIELDS})
    frame = pd.DataFrame(read_records(path), columns=list(RECORD_FIELDS))
    # A tampered record may hold anything: show it as it is, verify_log says what is wrong.
    frame["seq"] = pd.to_numeric(frame["seq"], errors="coerce").astype("Int64")
    return frame


def verify_log(
    path: Path,
    known_hashes: Mapping[int, str] | None = None,
    key: bytes | None = None,
) -> list[str]:
    """Problems found in the log, one sentence each; an empty list means it is intact.

    Args:
        path: the log file.
        known_hashes: ``record_hash`` by ``seq`` kept elsewhere (for example in
            the MLflow runs or an anchor file); each must be present and
            unchanged, which also reveals records cut off the end of the file.
        key: the audit key; by default ``audit_key()`` (never created here).
    """
    path = Path(path)
    head = known_head(path)
    if not path.exists():
        if head is None:
            return [f"no audit log at {path}"]
        return [
            f"no audit log at {path}, but {head['seq']} records were written to it "
            f"(the newest at {head['utc_time']}, known from {heads_file()}): "
            "it was deleted or moved"
        ]
    problems: list[str] = []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        problems.append("the last line is incomplete (no newline): a write was interrupted")
    lines = _lines(path)
    if key is None and lines:
        try:
            key = audit_key(path)
        except TillitError as exc:
            problems.append(f"the records' HMAC cannot be checked: {exc}")
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
        missing = [name for name in _CHAINED_FIELDS if name not in obj]
        if missing:
            problems.append(f"line {number}: fields missing: {', '.join(missing)}")
            continue
        if obj["record_hash"] != _record_hash(obj):
            problems.append(f"line {number}: record was edited (its hash does not match)")
        elif line.decode("utf-8") != _canonical(obj):
            problems.append(f"line {number}: record was rewritten (not as it was appended)")
        if "mac" not in obj:
            problems.append(
                f"line {number}: record has no HMAC (written before the log was keyed, or forged)"
            )
        elif key is not None and not hmac.compare_digest(str(obj["mac"]), _mac(key, obj)):
            problems.append(
                f"line {number}: HMAC does not match: the record was edited or forged "
                "(or signed with another audit key)"
            )
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
    if head is not None:
        seq, when = head["seq"], head["utc_time"]
        if seen.get(seq) != head["record_hash"]:  # type: ignore[call-overload]
            what = "is missing" if seq not in seen else "differs"
            problems.append(
                f"record {seq}, the newest written (at {when}, known from {heads_file()}), "
                f"{what}: the log was cut or replaced"
            )
        for lost in head.get("lost", []):  # type: ignore[attr-defined]
            problems.append(
                f"record {lost.get('seq')} (written at {lost.get('utc_time')}) was no longer the "
                f"newest when record {lost.get('noticed_at_seq')} was appended: the log had been "
                "cut, deleted or replaced before then"
            )
    return problems


@contextmanager
def _heads_locked() -> Iterator[Path]:
    path = heads_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{HEADS_FILE}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)


def _read_heads(path: Path) -> dict[str, dict[str, object]]:
    if not path.is_file():
        return {}
    try:
        heads = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TillitError(
            f"{path} is not readable JSON ({exc}): restore it from a backup"
        ) from None
    if not isinstance(heads, dict):
        raise TillitError(f"{path} does not hold the audit logs' heads: restore it from a backup")
    return heads


def known_head(path: Path) -> dict[str, object] | None:
    """The newest record of the log at ``path`` as kept beside the audit key, if any."""
    entry = _read_heads(heads_file()).get(str(Path(path).resolve()))
    return entry if isinstance(entry, dict) else None


def remember_head(
    path: Path, record: Mapping[str, object], before: Mapping[str, object] | None
) -> None:
    """Keep a log's new newest record beside the key (outside the store the log is in).

    When the head kept before is not the record this append followed, the log was
    cut, deleted or replaced in between: that is kept as a lost head, which
    ``verify_log`` reports until the operator deals with it.
    """
    with _heads_locked() as heads_path:
        heads = _read_heads(heads_path)
        ident = str(Path(path).resolve())
        entry = heads.get(ident)
        lost: list[object] = []
        if isinstance(entry, dict):
            lost = list(entry.get("lost", []))  # type: ignore[call-overload]
            followed = (before or {}).get("seq"), (before or {}).get("record_hash")
            if (entry.get("seq"), entry.get("record_hash")) != followed:
                lost.append(
                    {
                        "seq": entry.get("seq"),
                        "record_hash": entry.get("record_hash"),
                        "utc_time": entry.get("utc_time"),
                        "noticed_at_seq": record["seq"],
                    }
                )
        heads[ident] = {
            "seq": record["seq"],
            "record_hash": record["record_hash"],
            "utc_time": record["utc_time"],
            **({"lost": lost} if lost else {}),
        }
        scratch = heads_path.with_name(f".{HEADS_FILE}.{os.getpid()}.tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(heads, indent=1, sort_keys=True))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, heads_path)


def _remember_head_or_say(path: Path, record: Mapping[str, object], before: object) -> None:
    try:
        remember_head(path, record, before if isinstance(before, Mapping) else None)
    except OSError as exc:
        raise TillitError(
            f"record {record['seq']} was appended to {path}, but its head could not be kept in "
            f"{heads_file()} ({exc}); point ${AUDIT_HEADS_FILE_VARIABLE} at a writable file "
            "outside the store"
        ) from None


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
