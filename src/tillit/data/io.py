"""The only module that reads and writes data files: contract tables, run outputs, hashes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import InputConfig
from tillit.data.contract import TABLES, TableSpec
from tillit.errors import ContractError, TillitError

_SUFFIXES = (".parquet", ".csv")
_CSV_FORMATS = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%dT%H:%M:%S"}
_SEPARATORS = {",": ",", ";": ";", "tab": "\t"}
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab"}
# Thousands separators a spreadsheet may put inside a number: space, no-break space, narrow no-break space.
_DIGIT_GROUP_SPACES = r"[ \u00a0\u202f]"
# "1 234,50", "-0,5", "1.234,50": a decimal comma (dots only as thousands separators).
_COMMA_DECIMAL = r"[+-]?(\d{1,3}(\.\d{3})+|\d*),\d+"
# "12.5", "460.0": a decimal point that cannot be a thousands separator (not exactly 3 digits after).
_POINT_DECIMAL = r"[+-]?\d*\.(\d{1,2}|\d{4,})([eE][+-]?\d+)?"


@dataclass(frozen=True)
class CsvDialect:
    """How one CSV file is written: separator, decimal mark and text encoding."""

    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    line_end: str = "\n"


def table_files(data_dir: Path, name: str) -> list[Path]:
    """Every file that claims to hold a table: present files, folders and broken links alike."""
    paths = [Path(data_dir) / f"{name}{suffix}" for suffix in _SUFFIXES]
    return [path for path in paths if path.exists() or path.is_symlink()]


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """The file that holds a table: `<name>.parquet` or `<name>.csv`.

    `read_raw_tables` refuses a table given twice; this returns the Parquet one then.
    """
    for path in table_files(data_dir, name):
        if path.is_file():
            return path
    return None


def _decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with; a byte-order mark is dropped."""
    if encoding == "auto":
        # Text that decodes as UTF-8 is UTF-8 (cp1252's å, ä, ö never form valid UTF-8 with
        # the bytes around them); anything else is read as Windows-1252, as Swedish Excel saves it.
        for candidate in ("utf-8", "cp1252"):
            try:
                return data.decode(candidate).removeprefix("\ufeff"), candidate
            except UnicodeDecodeError:
                continue
        raise ContractError(
            f"{path}: neither UTF-8 nor Windows-1252 text; give the encoding with --encoding"
        )
    try:
        return data.decode(encoding).removeprefix("\ufeff"), encoding
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"{path}: not {encoding} text (byte {exc.start}); give the right --encoding"
        ) from None


def _detect_separator(header: str, spec: TableSpec | None, setting: str, path: Path) -> str:
    """The separator that splits the header into the contract's column names."""
    if setting != "auto":
        return _SEPARATORS[setting]
    if spec is None:
        counts = {sep: header.count(sep) for sep in _SEPARATOR_NAMES}
    else:
        expected = set(spec.columns)
        counts = {
            sep: len({part.strip().strip('"') for part in header.split(sep)} & expected)
            for sep in _SEPARATOR_NAMES
        }
    best = max(counts.values())
    winners = [sep for sep, count in counts.items() if count == best]
    if best == 0 and spec is not None:
        raise ContractError(
            f"{path}: the header names none of the table's columns when split by comma, "
            "semicolon or tab; give the separator with --csv-sep"
        )
    if best == 0:
        return ","
    if len(winners) > 1:
        names = " or ".join(_SEPARATOR_NAMES[sep] for sep in winners)
        raise ContractError(f"{path}: the separator could be {names}; give it with --csv-sep")
    return winners[0]


def _detect_decimal(frame: pd.DataFrame, columns: list[str], setting: str, path: Path) -> str:
    """The decimal mark of the number columns: a comma only where no value says otherwise."""
    if setting != "auto":
        return setting
    has_comma = has_point = False
    for column in columns:
        text = frame[column].dropna().astype("str").str.replace(_DIGIT_GROUP_SPACES, "", regex=True)
        has_comma |= bool(text.str.fullmatch(_COMMA_DECIMAL).any())
        has_point |= bool(text.str.fullmatch(_POINT_DECIMAL).any())
    if has_comma and has_point:
        raise ContractError(
            f"{path}: numbers are written both with a decimal comma and a decimal point; "
            "give the decimal mark with --decimal"
        )
    return "," if has_comma else "."


def _has_decimals(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Whether any of the (normalised) number columns holds a value with decimals."""
    return any(
        frame[c].dropna().astype("str").str.contains(".", regex=False).any() for c in columns
    )


def _only_numbers(values: pd.Series) -> bool:
    """Whether every value of a text column is a number, in either decimal convention."""
    text = values.dropna().astype("str").str.strip()
    text = text[text != ""].str.replace(_DIGIT_GROUP_SPACES, "", regex=True)
    return bool(len(text)) and bool(text.str.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)").all())


def _normalise_numbers(values: pd.Series, decimal: str) -> pd.Series:
    """Number text as Python writes it ("1 234,50" -> "1234.50"); anything else left as it was."""
    present = values.notna()
    text = values.astype("str").str.strip().str.replace(_DIGIT_GROUP_SPACES, "", regex=True)
    if decimal == ",":
        comma = text.str.fullmatch(_COMMA_DECIMAL) | text.str.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+")
        fixed = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        text = text.where(~comma, fixed)
    return text.where(present, values)


def read_csv_table(
    path: Path, table: str | None = None, settings: InputConfig | None = None
) -> tuple[pd.DataFrame, CsvDialect]:
    """A CSV file as text columns (numbers of a contract table with a decimal point) and its dialect.

    Raises:
        ContractError: the dialect cannot be told, or a row is ragged.
    """
    spec = TABLES.get(table) if table is not None else None
    return _read_csv(Path(path), spec, settings or InputConfig())


def _read_csv(
    path: Path, spec: TableSpec | None, settings: InputConfig
) -> tuple[pd.DataFrame, CsvDialect]:
    """A CSV file as text columns, in whatever dialect it was exported; ragged rows refused."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text, encoding = _decode(path.read_bytes(), settings.encoding, path)
    header = text.split("\n", 1)[0].rstrip("\r")
    sep = _detect_separator(header, spec, settings.csv_sep, path)
    names = [name.strip() for name in next(csv.reader([header], delimiter=sep), [])]
    if not names or len(set(names)) != len(names):
        raise ContractError(f"{path}: the header row is empty or names a column twice")
    ragged: list[str] = []

    def keep_count(row: Any) -> str:
        ragged.append(f"{row.actual_columns} fields where the header has {row.expected_columns}")
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(text.encode("utf-8")),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, newlines_in_values=True, invalid_row_handler=keep_count
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        ),
    )
    if ragged:
        raise ContractError(
            f"{path}: {len(ragged)} row(s) do not have one value per column ({ragged[0]}); "
            "a value that holds the separator must be quoted"
        )
    frame = table.to_pandas()
    if spec is not None:
        numeric = [
            c for c, kind in spec.dtypes().items() if kind in ("float", "int") and c in frame
        ]
    else:  # a file outside the contract (decisions): the columns that hold only numbers
        numeric = [c for c in frame.columns if _only_numbers(frame[c])]
    decimal = _detect_decimal(frame, numeric, settings.decimal, path)
    for column in numeric:
        frame[column] = _normalise_numbers(frame[column], decimal)
    # Rows appended to a `;` file without a decimal number yet follow Excel: decimal comma.
    written_decimal = decimal
    if settings.decimal == "auto" and sep == ";" and not _has_decimals(frame, numeric):
        written_decimal = ","
    line_end = "\r\n" if text[len(header) : len(header) + 2] == "\r\n" else "\n"
    return frame, CsvDialect(sep, written_decimal, encoding, line_end)


def _read_file(
    path: Path, spec: TableSpec | None = None, settings: InputConfig | None = None
) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    # Everything as text: the validator coerces and quarantines what does not parse,
    # instead of pandas guessing types or failing on the first bad cell.
    return _read_csv(path, spec, settings or InputConfig())[0]


def read_raw_tables(
    data_dir: Path,
    settings: InputConfig | None = None,
    names: Collection[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read every contract table in a folder, untyped; stop if anything required is missing.

    All problems are collected first, so one message names them all: a required table
    missing or without rows, a table given twice, a file that cannot be read (a folder,
    a broken link, garbage; an optional table too: it is present, so it is not absent),
    a missing column. `names` reads only those tables (all when None).

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
        paths = table_files(data_dir, name)
        if not paths:
            if spec.required:
                problems.append(f"{data_dir / (name + '.parquet|.csv')}: required table is missing")
            continue
        if len(paths) > 1:
            problems.append(
                f"{name}: both {paths[0].name} and {paths[1].name} are present; which one is "
                "the export? Remove the other"
            )
            continue
        path = paths[0]
        if not path.is_file():
            what = "a folder" if path.is_dir() else "a broken link"
            problems.append(f"{path}: is {what}, not a readable file")
            continue
        try:
            frame = _read_file(path, spec, settings)
        except ContractError as exc:
            problems.append(str(exc))
            continue
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
        if spec.required and frame.empty:
            problems.append(f"{path}: required table has no rows")
            continue
        for column in spec.optional_columns:
            if column not in frame.columns:
                frame[column] = pd.Series(pd.NA, index=frame.index, dtype="str")
        tables[name] = frame[list(spec.columns)].reset_index(drop=True)
    if problems:
        raise ContractError(
            f"the input does not follow data contract v{CONTRACT_VERSION}:\n  "
            + "\n  ".join(problems)
        )
    return tables


def read_table_column(
    data_dir: Path, table: str, column: str, settings: InputConfig | None = None
) -> pd.Series | None:
    """One column of one contract table as written, read cheaply (no validation).

    Lets a run check a request against the export (is there anything in that month?)
    before reading and validating everything. None when the table or column cannot be
    read this way; the full read then says what is wrong with it.
    """
    import pyarrow.parquet as pq

    paths = table_files(Path(data_dir), table)
    if len(paths) != 1 or not paths[0].is_file():
        return None
    path = paths[0]
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path, columns=[column]).column(0).to_pandas()
        frame = _read_csv(path, TABLES.get(table), settings or InputConfig())[0]
        return frame.get(column)
    except Exception:  # unreadable here is for the full read to report, with its context
        return None


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
    """Write tables as `<name>.parquet` or `<name>.csv` in the contract's text formats.

    These are tillit's own input (simulated exports), not sheets for people, so cells
    are written as they are: neutralising them (`write_frame`) would change ids.
    """
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


# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What Swedish Excel opens in columns by a double click: `;`, decimal comma, UTF-8 with BOM.
SWEDISH_EXCEL = CsvDialect(sep=";", decimal=",", encoding="utf-8-sig", line_end="\r\n")


def neutralise_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, made inert by a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _map_text_cells(frame: pd.DataFrame, cell: Callable[[object], object]) -> pd.DataFrame:
    """The frame with `cell` applied to every text cell and header (other cells kept)."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            out[column] = series.map(cell, na_action="ignore")
    out.columns = [str(cell(str(column))) for column in out.columns]
    return out


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell neutralised (numbers, dates and missing values kept).

    Columns of pandas' text dtype (every value a string or missing) are neutralised with
    vectorised string methods, the same cells as `neutralise_cell` cell by cell: a 20,000
    row risk list has a quarter of a million text cells.
    """
    text_columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    out = _map_text_cells(frame.drop(columns=text_columns), neutralise_cell)
    for column in text_columns:
        values = frame[column]
        formula = values.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        out[str(neutralise_cell(str(column)))] = values.mask(formula, "'" + values)
    return out[[str(neutralise_cell(str(column))) for column in frame.columns]]


def spreadsheet_original(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read back from a CSV tillit wrote, with the neutralising apostrophes taken off.

    Only an apostrophe before a formula start is taken off, so an id such as
    `=HYPERLINK(...)` matches the Parquet twin again. (An id that itself began with
    `'=` would lose its apostrophe: no id in the contract does.)
    """
    return _map_text_cells(frame, _restore_cell)


def _restore_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def write_frame(
    frame: pd.DataFrame,
    path: Path,
    dialect: CsvDialect | None = None,
    *,
    for_spreadsheet: bool = True,
) -> Path:
    """Write one frame as Parquet or CSV by the file's suffix.

    Every CSV tillit writes goes through here: text cells that a spreadsheet would run
    as a formula get a leading apostrophe, and `dialect` (default: `,`, decimal point,
    UTF-8) lets a Swedish run write what Swedish Excel opens in columns. Only a table
    written as tillit's own input (a pseudonymised export, a simulated table) passes
    `for_spreadsheet=False`: there an apostrophe would change ids and negative amounts.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        dialect = dialect or CsvDialect()
        (spreadsheet_safe(frame) if for_spreadsheet else frame).to_csv(
            path,
            index=False,
            sep=dialect.sep,
            decimal=dialect.decimal,
            encoding=dialect.encoding,
            lineterminator=dialect.line_end,
        )
    else:
        frame.to_parquet(path, index=False)
    return path


def read_frame(path: Path, settings: InputConfig | None = None) -> pd.DataFrame:
    """Read one Parquet or CSV file (CSV as text, in its detected or given dialect) by its suffix.

    Raises:
        TillitError: the file is missing, of another kind, or cannot be read.
    """
    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise TillitError(f"{path}: expected a .parquet or .csv file")
    try:
        return _read_file(path, None, settings)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise TillitError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None


def read_own_frame(path: Path) -> pd.DataFrame:
    """A table tillit wrote (a risk list), read back with its ids as scored.

    A CSV's cells were neutralised for spreadsheets when written; they are restored
    here, so a risk list given as CSV or as Parquet gives the same ids.
    """
    frame = read_frame(path)
    return spreadsheet_original(frame) if Path(path).suffix == ".csv" else frame


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


def _in_dialect(frame: pd.DataFrame, table: str, dialect: CsvDialect) -> str:
    """Rows as CSV text in a file's own dialect (numbers as numbers, so the decimal mark applies)."""
    spec = TABLES.get(table)
    out = _csv_ready(frame, spec)
    kinds = spec.dtypes() if spec is not None else {}
    for column in out.columns:
        if kinds.get(column) == "float":
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out.to_csv(
        index=False,
        header=False,
        sep=dialect.sep,
        decimal=dialect.decimal,
        lineterminator=dialect.line_end,
    )


def append_table_rows(
    path: Path,
    table: str,
    combined: pd.DataFrame,
    existing: pd.DataFrame | None,
    dialect: CsvDialect | None = None,
) -> Path:
    """Write a contract table that only grows: the existing rows stay as they are.

    CSV: only the new rows are appended as lines, in the file's own dialect (a Swedish
    Excel file stays `;`-separated cp1252 with decimal commas). Parquet: the whole table
    is written to a temporary file and renamed over the old one, so a crash leaves either.
    """
    path = Path(path)
    dialect = dialect or CsvDialect()
    n_old = 0 if existing is None else len(existing)
    new_rows = combined.iloc[n_old:]
    same_columns = existing is not None and list(existing.columns) == list(combined.columns)
    if path.suffix == ".csv" and path.exists() and same_columns:
        text = _in_dialect(new_rows, table, dialect)
        with path.open("a", encoding=dialect.encoding, newline="") as handle:
            handle.write(text)
        return path
    temporary = path.with_name(path.name + ".tmp")
    if path.suffix == ".csv":
        # Every row in the file's dialect: old rows as read, new rows in the contract's formats.
        old_rows = combined.iloc[:n_old]
        header = dialect.sep.join(str(column) for column in combined.columns) + dialect.line_end
        body = _in_dialect(old_rows, table, dialect) + _in_dialect(new_rows, table, dialect)
        with temporary.open("w", encoding=dialect.encoding, newline="") as handle:
            handle.write(header + body)
    else:
        combined.to_parquet(temporary, index=False)
    temporary.replace(path)
    return path
