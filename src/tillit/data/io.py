"""The only module that reads and writes data files: contract tables, run outputs, hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tillit.data.contract import TABLES, TableSpec
from tillit.errors import ContractError, TillitError

_SUFFIXES = (".parquet", ".csv")
_CSV_FORMATS = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%dT%H:%M:%S"}


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """The file that holds a table: `<name>.parquet` or `<name>.csv` (Parquet wins if both)."""
    for suffix in _SUFFIXES:
        path = data_dir / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _read_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    # Everything as text: the validator coerces and quarantines what does not parse,
    # instead of pandas guessing types or failing on the first bad cell.
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")


def read_raw_tables(
    data_dir: Path, names: Collection[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Read every contract table in a folder, untyped; stop if anything required is missing.

    All missing tables and columns are collected first, so one message names them all.
    `names` reads only those tables (all when None).

    Raises:
        ContractError: the folder, a required table or a required column is missing.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError(f"input folder {data_dir} does not exist")
    problems: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        if names is not None and name not in names:
            continue
        path = find_table_file(data_dir, name)
        if path is None:
            if spec.required:
                problems.append(f"{data_dir / (name + '.parquet|.csv')}: required table is missing")
            continue
        try:
            frame = _read_file(path)
        except Exception as exc:  # an unreadable file is bad input, not a crash
            problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc})")
            continue
        missing = [
            column
            for column in spec.columns
            if column not in frame.columns and column not in spec.optional_columns
        ]
        if missing:
            problems.append(f"{path}: missing column(s) {', '.join(missing)}")
            continue
        for column in spec.optional_columns:
            if column not in frame.columns:
                frame[column] = pd.Series(pd.NA, index=frame.index, dtype="str")
        tables[name] = frame[list(spec.columns)].reset_index(drop=True)
    if problems:
        raise ContractError(
            "the input does not follow data contract v1:\n  " + "\n  ".join(problems)
        )
    return tables


def _csv_ready(frame: pd.DataFrame, spec: TableSpec | None) -> pd.DataFrame:
    out = frame.copy()
    kinds = spec.dtypes() if spec is not None else {}
    for column in out.columns:
        kind = kinds.get(column)
        if kind in _CSV_FORMATS:
            # Rows appended to text read from a CSV arrive as objects: parse, then format.
            out[column] = pd.to_datetime(out[column]).dt.strftime(_CSV_FORMATS[kind])
    return out


def write_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: Path, fmt: str = "parquet"
) -> list[Path]:
    """Write tables as `<name>.parquet` or `<name>.csv` in the contract's text formats."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, not {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            _csv_ready(frame, TABLES.get(name)).to_csv(path, index=False, encoding="utf-8")
        paths.append(path)
    return paths


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write one frame as Parquet or CSV by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


def read_frame(path: Path) -> pd.DataFrame:
    """Read one Parquet or CSV file (CSV as text) by its suffix.

    Raises:
        TillitError: the file is missing, of another kind, or cannot be read.
    """
    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise TillitError(f"{path}: expected a .parquet or .csv file")
    try:
        return _read_file(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise TillitError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None


def write_json(payload: Mapping[str, Any], path: Path) -> Path:
    """Write JSON with sorted keys, so identical content gives identical bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(data_dir: Path) -> str:
    """A hash of every contract file in a folder (names and bytes): which data a run saw."""
    digest = hashlib.sha256()
    for name in TABLES:
        path = find_table_file(Path(data_dir), name)
        if path is not None:
            digest.update(path.name.encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:16]


def append_table_rows(
    path: Path, table: str, combined: pd.DataFrame, existing: pd.DataFrame | None
) -> Path:
    """Write a contract table that only grows: the existing rows stay as they are.

    CSV: only the new rows are appended as lines. Parquet: the whole table is written
    to a temporary file and renamed over the old one, so a crash leaves either.
    """
    path = Path(path)
    n_old = 0 if existing is None else len(existing)
    new_rows = combined.iloc[n_old:]
    same_columns = existing is not None and list(existing.columns) == list(combined.columns)
    if path.suffix == ".csv" and path.exists() and same_columns:
        text = _csv_ready(new_rows, TABLES.get(table)).to_csv(index=False, header=False)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
        return path
    temporary = path.with_name(path.name + ".tmp")
    if path.suffix == ".csv":
        # Old rows exactly as read (text), new rows in the contract's text formats.
        old_rows = combined.iloc[:n_old]
        frame = pd.concat([old_rows, _csv_ready(new_rows, TABLES.get(table))], ignore_index=True)
        frame.to_csv(temporary, index=False, encoding="utf-8")
    else:
        combined.to_parquet(temporary, index=False)
    temporary.replace(path)
    return path
