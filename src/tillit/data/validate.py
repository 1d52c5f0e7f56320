"""Check raw contract tables: coerce types, run the Pandera models, check references.

Rows that break a rule are quarantined with a record of why; the rest go on.
A table whose quarantined share is above the limit stops the run, because a
broken export must not be paid on the strength of a partial check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from tillit import CONTRACT_VERSION
from tillit.config import ValidationConfig
from tillit.data.contract import TABLES, TableSpec
from tillit.errors import QuarantineLimitError
from tillit.i18n import text
from tillit.i18n.rules import CHECK_NAMES, COMPARISONS

QUARANTINE_COLUMNS = ("table", "row_number", "row_key", "column", "rule", "value")


@dataclass(frozen=True)
class ValidationResult:
    """Typed, valid tables, the quarantined rows, and per-table counts."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    summary: dict[str, dict[str, int | float]]

    def over_limit(self, max_share: float) -> dict[str, float]:
        """Tables whose quarantined share of rows is above `max_share`."""
        return {
            name: counts["quarantined_share"]
            for name, counts in self.summary.items()
            if counts["quarantined_share"] > max_share
        }

    def report(self) -> dict[str, object]:
        """The JSON-ready summary written as validation.json."""
        return {
            "contract_version": CONTRACT_VERSION,
            "tables": self.summary,
            "rows_read": int(sum(c["rows_read"] for c in self.summary.values())),
            "rows_quarantined": int(sum(c["rows_quarantined"] for c in self.summary.values())),
        }


def _records(
    table: str,
    rows: pd.Index,
    frame: pd.DataFrame,
    spec: TableSpec,
    column: str,
    rule: str,
    values: pd.Series | list[object],
) -> pd.DataFrame:
    keys = _row_keys(frame.loc[rows], spec)
    return pd.DataFrame(
        {
            "table": table,
            "row_number": np.asarray(rows, dtype="int64"),
            "row_key": keys.to_numpy(dtype=object),
            "column": column,
            "rule": rule,
            "value": [_value_text(v) for v in values],
        }
    )


def _value_text(value: object) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%dT%H:%M:%S")
    return str(value)


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _row_keys(rows: pd.DataFrame, spec: TableSpec) -> pd.Series:
    """A readable key: the table's key columns, or the row number and the first id column."""
    if spec.key:
        parts = [column + "=" + rows[column].astype("str") for column in spec.key]
    else:
        first_id = spec.columns[0]
        parts = [
            "row=" + pd.Series(rows.index, index=rows.index).astype("str"),
            first_id + "=" + rows[first_id].astype("str"),
        ]
    key = parts[0]
    for part in parts[1:]:
        key = key + ", " + part
    return key


# Timestamps are compared as the local wall-clock time of the municipality (the contract's convention).
LOCAL_TIME_ZONE = "Europe/Stockholm"
# A written offset after a timestamp's time: `Z`, `+02:00`, `+0200`, `-05` (a date's `-01` is not one).
_OFFSET_AT_END = r":\d{2}(?:\.\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
# Whole numbers beyond this are not integers a table can hold (and would overflow int64).
_MAX_WHOLE = 2.0**53


def to_local_time(values: pd.Series) -> pd.Series:
    """Timestamps as naive Europe/Stockholm local time, however they came.

    Time-zone-aware values (Parquet `timestamp[tz=...]`) and text with an offset
    (`+01:00`, `+02:00`, `Z`) are converted to Stockholm time and the zone dropped;
    text without an offset is already local time. In the October hour that repeats
    (02:00-03:00 happens twice), two instants an hour apart read as the same local time.
    Values that do not parse become NaT.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype("str").str.strip().where(values.notna())
    with_offset = text.str.contains(_OFFSET_AT_END, regex=True, na=False)
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if (~with_offset).any():
        naive = pd.to_datetime(text[~with_offset], format="ISO8601", errors="coerce")
        if isinstance(naive.dtype, pd.DatetimeTZDtype):  # defensive: never mix zones
            naive = naive.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None)
        result[~with_offset] = naive.astype("datetime64[ns]")
    if with_offset.any():
        aware = pd.to_datetime(text[with_offset], format="ISO8601", errors="coerce", utc=True)
        local = aware.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None)
        result[with_offset] = local.astype("datetime64[ns]")
    return result


def _to_dates(values: pd.Series) -> pd.Series:
    """Dates `YYYY-MM-DD` (a midnight time after them, as spreadsheets add, is accepted)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return to_local_time(values)
    text = values.astype("str").str.strip().where(values.notna())
    text = text.str.replace(r"[T ]00:00(:00(\.0+)?)?$", "", regex=True)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")


def _coerce(name: str, spec: TableSpec, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every column its contract type; values that do not parse become quarantine records."""
    typed = pd.DataFrame(index=raw.index)
    failures = []
    for column, kind in spec.dtypes().items():
        values = raw[column]
        extra_bad = pd.Series(False, index=raw.index)
        extra_rule = ""
        if kind == "str":
            converted = values.astype("str").where(values.notna())
            converted = converted.where(_not_blank(converted))
            rule = None
        elif kind in ("float", "int"):
            if pd.api.types.is_bool_dtype(values):
                values = values.astype("object")
            converted = pd.to_numeric(values, errors="coerce").astype("float64")
            rule = text(f"rule.type_{kind}", "en")
            # inf, -inf and 'Infinity' parse as numbers but no amount or count is infinite.
            extra_bad = converted.notna() & ~np.isfinite(converted)
            extra_rule = text("rule.finite", "en", column=column)
            converted = converted.mask(extra_bad)
            if kind == "int":
                not_whole = converted.notna() & (
                    (converted % 1 != 0) | (converted.abs() > _MAX_WHOLE)
                )
                converted = converted.mask(not_whole)
        else:
            converted = to_local_time(values) if kind == "timestamp" else _to_dates(values)
            rule = text(f"rule.type_{kind}", "en")
        if extra_bad.any():
            rows = raw.index[extra_bad.to_numpy()]
            failures.append(
                _records(name, rows, raw, spec, column, extra_rule, values[extra_bad].tolist())
            )
        if rule is not None:
            bad = values.notna() & converted.isna() & ~extra_bad
            if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
                bad &= values.astype("str").str.strip() != ""
            if bad.any():
                rows = raw.index[bad.to_numpy()]
                failures.append(_records(name, rows, raw, spec, column, rule, values[bad].tolist()))
        typed[column] = converted
    quarantine = pd.concat(failures, ignore_index=True) if failures else _empty_quarantine()
    return typed, quarantine


def _schema_failures(name: str, spec: TableSpec, typed: pd.DataFrame) -> pd.DataFrame:
    """Run the table's Pandera model lazily and turn its failure cases into records."""
    # Pandera's int columns hold no nulls: an empty integer is recorded here as empty, and
    # a stand-in value lets the other rules run on the rest of the row.
    int_columns = [c for c, kind in spec.dtypes().items() if kind == "int"]
    checked = typed.copy(deep=False)  # copy-on-write: the int stand-ins never reach `typed`
    records = []
    null_ints: set[tuple[int, str]] = set()
    for column in int_columns:
        empty = checked[column].isna()
        if empty.any():
            rows = typed.index[empty.to_numpy()]
            null_ints |= {(int(row), column) for row in rows}
            rule = rule_text(column, "not_nullable")
            records.append(_records(name, rows, typed, spec, column, rule, [None] * len(rows)))
        checked[column] = checked[column].fillna(-1).astype("int64")
    try:
        # In place: `checked` is this function's own shallow copy, read by nothing after, so
        # Pandera's own deep copy of the table (and its block consolidation) is not needed.
        _schema_without_settled_checks(spec, checked).validate(checked, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        cases = pd.DataFrame(columns=["index", "column", "check"])
    cases = cases[cases["index"].notna()].copy()
    row_rules = dict(spec.row_rule_columns)
    cases["row"] = cases["index"].astype("int64")
    is_row_rule = cases["check"].isin(row_rules)
    cases.loc[is_row_rule, "column"] = cases.loc[is_row_rule, "check"].map(row_rules)
    stand_in = [
        (int(r), str(c)) in null_ints for r, c in zip(cases["row"], cases["column"], strict=True)
    ]
    cases = cases[~pd.Series(stand_in, index=cases.index, dtype=bool)]
    # A failing dataframe-level check is listed once per column: keep one per row and rule.
    cases = cases.drop_duplicates(["row", "column", "check"]).sort_values(["row", "check"])
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        rows = pd.Index(group["row"].to_numpy())
        values = typed.loc[rows, column].tolist()
        rule = rule_text(str(column), str(check))
        records.append(_records(name, rows, typed, spec, str(column), rule, values))
    return pd.concat(records, ignore_index=True) if records else _empty_quarantine()


def _schema_without_settled_checks(spec: TableSpec, checked: pd.DataFrame) -> pa.DataFrameSchema:
    """The table's Pandera schema, less the uniqueness checks already known to pass.

    Why: Pandera hashes every value of a unique column (seconds for millions of visit
    ids); a text column whose values are all present and strictly increasing, as exports
    sorted on their key are, has no duplicate, so that check could only pass.
    """
    schema = spec.model.to_schema()
    settled = [
        name
        for name, column in schema.columns.items()
        if column.unique and name in checked and _strictly_increasing_text(checked[name])
    ]
    return (
        schema.update_columns({name: {"unique": False} for name in settled}) if settled else schema
    )


def _strictly_increasing_text(values: pd.Series) -> bool:
    """Whether every value is present text and each is greater than the one before it."""
    if not isinstance(values.array, ArrowStringArray):
        return False
    text = pa_arrow.array(values.array)
    if text.null_count or len(text) < 2:
        return False
    return bool(pc.all(pc.less(text[:-1], text[1:])).as_py())


def _without_cells_already_recorded(schema: pd.DataFrame, coerced: pd.DataFrame) -> pd.DataFrame:
    """A value that did not parse is left empty; its "must not be empty" would say it twice."""
    if schema.empty or coerced.empty:
        return schema
    seen = set(zip(coerced["row_number"], coerced["column"], strict=True))
    empty_rule = schema["rule"].str.endswith(text("rule.not_empty", "en", column=""))
    again = [
        is_empty and (row, column) in seen
        for is_empty, row, column in zip(
            empty_rule, schema["row_number"], schema["column"], strict=True
        )
    ]
    return schema[~np.asarray(again, dtype=bool)].reset_index(drop=True)


def _not_blank(text: pd.Series) -> np.ndarray:
    """`text.str.strip() != ""` as a boolean array, without building the stripped strings.

    Why: stripping copies every cell (3 M visit ids and more). A cell is blank when it is
    empty or all whitespace; Arrow's `utf8_is_space` knows the same whitespace as the
    trim behind pandas' `strip` (tested for every code point). Empty cells: either.
    """
    if isinstance(text.array, ArrowStringArray):
        cells = pa_arrow.array(text.array)
        blank = pc.or_(pc.equal(pc.binary_length(cells), 0), pc.utf8_is_space(cells))
        return pc.invert(blank).fill_null(True).to_numpy(zero_copy_only=False)
    return (text.str.strip() != "").to_numpy(dtype=bool)


def _is_known(values: pd.Series, known: pd.Series) -> np.ndarray:
    """`values.isin(known)` as a boolean array, hashed in Arrow when both are Arrow text.

    Why: pandas' isin on Arrow strings turns every known key into a Python object
    first, which costs most of a second when a table refers to tens of thousands of keys.
    """
    if isinstance(values.array, ArrowStringArray) and isinstance(known.array, ArrowStringArray):
        left = pa_arrow.array(values.array)
        found = pc.is_in(left, value_set=pa_arrow.array(known.array).cast(left.type))
        return found.fill_null(False).to_numpy(zero_copy_only=False)
    return values.isin(known).to_numpy(dtype=bool)


def canonical_order(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Rows sorted on the table's key, else on every column: no result depends on export order."""
    by = list(spec.key) or list(spec.columns)
    if len(by) == 1 and _strictly_increasing_text(frame[by[0]]):
        # Each key greater than the one before: already the order the sort gives, which
        # would only copy every row (millions of visits, exported in their id's order).
        return frame.reset_index(drop=True)
    return frame.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)


def rule_text(column: str, check: str) -> str:
    """Pandera's check name in words an auditor can read next to the value.

    The words are the English `rule.*` templates of `tillit.i18n` (the stored text;
    `i18n.rule_in` says them in Swedish). A check of no known shape is its own name.
    """
    if check == "not_nullable":
        return text("rule.not_empty", "en", column=column)
    if check == "field_uniqueness":
        return text("rule.unique", "en", column=column)
    if check in CHECK_NAMES:
        return text(f"rule.{check}", "en")
    name, _, argument = check.partition("(")
    argument = argument.removesuffix(")")
    if name in COMPARISONS:
        return text(f"rule.{COMPARISONS[name]}", "en", column=column, bound=argument)
    if name == "isin":
        allowed = re.findall(r"'([^']*)'", argument)
        return text("rule.one_of", "en", column=column, allowed=", ".join(allowed))
    if name == "str_matches":
        return text("rule.matches", "en", column=column, pattern=argument.strip(chr(39)))
    return check


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": pd.Series(dtype="str"),
            "row_number": pd.Series(dtype="int64"),
            "row_key": pd.Series(dtype="str"),
            "column": pd.Series(dtype="str"),
            "rule": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
        }
    )


def validate_tables(
    raw_tables: Mapping[str, pd.DataFrame],
) -> ValidationResult:
    """Validate every table against the contract; quarantine bad rows, keep the rest.

    Tables are checked in dependency order, so a row that refers to a quarantined
    row (an invoice of a provider whose row broke a rule) is quarantined as well.
    The quarantine limit is checked separately (`check_quarantine_limit`), so that the
    records can be written before a run stops.
    """
    valid: dict[str, pd.DataFrame] = {}
    all_records: list[pd.DataFrame] = []
    summary: dict[str, dict[str, int | float]] = {}
    for name, spec in TABLES.items():
        if name not in raw_tables:
            continue
        raw = raw_tables[name].reset_index(drop=True)
        missing_optional = [c for c in spec.optional_columns if c not in raw.columns]
        if missing_optional:
            raw = raw.assign(
                **{c: pd.Series(pd.NA, index=raw.index, dtype="str") for c in missing_optional}
            )
        typed, coerce_records = _coerce(name, spec, raw)
        schema_records = _without_cells_already_recorded(
            _schema_failures(name, spec, typed), coerce_records
        )
        records = [coerce_records, schema_records]
        bad_rows = set(coerce_records["row_number"]) | set(schema_records["row_number"])
        for reference in spec.references:
            target = valid.get(reference.table)
            known = target[reference.key] if target is not None else pd.Series(dtype="str")
            present = typed[reference.column].notna()
            unknown = present & ~_is_known(typed[reference.column], known)
            if unknown.any():
                rows = typed.index[unknown.to_numpy()]
                rule = text("rule.refers", "en", column=reference.column, table=reference.table)
                values = typed.loc[rows, reference.column].tolist()
                records.append(_records(name, rows, typed, spec, reference.column, rule, values))
                bad_rows |= set(rows)
        table_records = pd.concat([r for r in records if not r.empty] or [_empty_quarantine()])
        all_records.append(table_records)
        if bad_rows:
            keep = ~typed.index.isin(sorted(bad_rows))
            clean = typed.loc[keep].reset_index(drop=True)
        else:  # every row kept: the same frame, not a copy of its millions of cells
            clean = typed.reset_index(drop=True)
        for column, kind in spec.dtypes().items():
            if kind == "int":
                clean[column] = clean[column].astype("int64")
        valid[name] = canonical_order(clean, spec)
        n_rows = len(raw)
        summary[name] = {
            "rows_read": n_rows,
            "rows_quarantined": len(bad_rows),
            "rows_valid": len(clean),
            "quarantined_share": round(len(bad_rows) / n_rows, 6) if n_rows else 0.0,
        }
    quarantine = pd.concat(all_records, ignore_index=True) if all_records else _empty_quarantine()
    quarantine = quarantine.astype({"row_number": "int64"}).reset_index(drop=True)
    return ValidationResult(tables=valid, quarantine=quarantine, summary=summary)


def check_quarantine_limit(result: ValidationResult, config: ValidationConfig) -> None:
    """Stop when any table lost more than the allowed share of its rows.

    Raises:
        QuarantineLimitError: naming every table over the limit with its share.
    """
    over = result.over_limit(config.max_quarantine_share)
    if over:
        lines = [
            f"{name}: {result.summary[name]['rows_quarantined']} of "
            f"{result.summary[name]['rows_read']} rows quarantined ({share:.1%}); "
            + _top_rules(result.quarantine, name)
            for name, share in over.items()
        ]
        raise QuarantineLimitError(
            f"quarantined share above the limit of {config.max_quarantine_share:.1%}; "
            "the export looks broken, so nothing is scored:\n  " + "\n  ".join(lines)
        )


def _top_rules(quarantine: pd.DataFrame, table: str, n: int = 3) -> str:
    """The most frequent rules a table broke, with their column and count, for the message."""
    records = quarantine[quarantine["table"] == table]
    counts = records.groupby(["column", "rule"]).size().sort_values(ascending=False, kind="stable")
    parts = [f"{column}: {rule} ({count})" for (column, rule), count in counts.head(n).items()]
    more = len(counts) - n
    return "; ".join(parts) + (f"; and {more} more rule(s)" if more > 0 else "")
