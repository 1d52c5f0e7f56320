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

from tillit import CONTRACT_VERSION
from tillit.config import ValidationConfig
from tillit.data.contract import TABLES, TableSpec
from tillit.errors import QuarantineLimitError

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


def _coerce(name: str, spec: TableSpec, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every column its contract type; values that do not parse become quarantine records."""
    typed = pd.DataFrame(index=raw.index)
    failures = []
    for column, kind in spec.dtypes().items():
        values = raw[column]
        if kind == "str":
            converted = values.astype("str").where(values.notna())
            converted = converted.where(converted.str.strip() != "")
            rule = None
        elif kind in ("float", "int"):
            converted = pd.to_numeric(values, errors="coerce").astype("float64")
            rule = f"type: {kind}"
            if kind == "int":
                not_whole = converted.notna() & (converted % 1 != 0)
                converted = converted.mask(not_whole)
        else:
            if pd.api.types.is_datetime64_any_dtype(values):
                converted = values.astype("datetime64[ns]")
            else:
                fmt = "%Y-%m-%d" if kind == "date" else "ISO8601"
                converted = pd.to_datetime(values, format=fmt, errors="coerce")
                converted = converted.astype("datetime64[ns]")
            rule = (
                "type: date YYYY-MM-DD" if kind == "date" else "type: timestamp YYYY-MM-DDTHH:MM:SS"
            )
        if rule is not None:
            bad = values.notna() & converted.isna()
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
    # Rows with a null where the contract forbids one would fail every other check too;
    # Pandera reports the null itself.
    int_columns = [c for c, kind in spec.dtypes().items() if kind == "int"]
    checked = typed.copy()
    for column in int_columns:
        checked[column] = checked[column].fillna(-1).astype("int64")
    try:
        spec.model.validate(checked, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return _empty_quarantine()
    cases = cases[cases["index"].notna()].copy()
    if cases.empty:
        return _empty_quarantine()
    row_rules = dict(spec.row_rule_columns)
    cases["row"] = cases["index"].astype("int64")
    is_row_rule = cases["check"].isin(row_rules)
    cases.loc[is_row_rule, "column"] = cases.loc[is_row_rule, "check"].map(row_rules)
    # A failing dataframe-level check is listed once per column: keep one per row and rule.
    cases = cases.drop_duplicates(["row", "column", "check"]).sort_values(["row", "check"])
    records = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        rows = pd.Index(group["row"].to_numpy())
        values = typed.loc[rows, column].tolist()
        rule = rule_text(str(column), str(check))
        records.append(_records(name, rows, typed, spec, str(column), rule, values))
    return pd.concat(records, ignore_index=True)


_CHECK_WORDS = {
    "greater_than_or_equal_to": ">=",
    "greater_than": ">",
    "less_than_or_equal_to": "<=",
    "less_than": "<",
}


def rule_text(column: str, check: str) -> str:
    """Pandera's check name in words an auditor can read next to the value."""
    if check == "not_nullable":
        return f"{column} must not be empty"
    if check == "field_uniqueness":
        return f"{column} must be unique"
    name, _, argument = check.partition("(")
    argument = argument.removesuffix(")")
    if name in _CHECK_WORDS:
        return f"{column} {_CHECK_WORDS[name]} {argument}"
    if name == "isin":
        allowed = re.findall(r"'([^']*)'", argument)
        return f"{column} must be one of {', '.join(allowed)}"
    if name == "str_matches":
        return f"{column} must match {argument.strip(chr(39))}"
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
    raw_tables: Mapping[str, pd.DataFrame], config: ValidationConfig | None = None
) -> ValidationResult:
    """Validate every table against the contract; quarantine bad rows, keep the rest.

    Tables are checked in dependency order, so a row that refers to a quarantined
    row (an invoice of a provider whose row broke a rule) is quarantined as well.
    The quarantine limit is checked separately (`check_quarantine_limit`), so that the
    records can be written before a run stops.
    """
    config = config or ValidationConfig()
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
        schema_records = _schema_failures(name, spec, typed)
        records = [coerce_records, schema_records]
        bad_rows = set(coerce_records["row_number"]) | set(schema_records["row_number"])
        for reference in spec.references:
            target = valid.get(reference.table)
            known = target[reference.key] if target is not None else pd.Series(dtype="str")
            present = typed[reference.column].notna()
            unknown = present & ~typed[reference.column].isin(known)
            if unknown.any():
                rows = typed.index[unknown.to_numpy()]
                rule = f"{reference.column} must refer to a valid row of {reference.table}"
                values = typed.loc[rows, reference.column].tolist()
                records.append(_records(name, rows, typed, spec, reference.column, rule, values))
                bad_rows |= set(rows)
        table_records = pd.concat([r for r in records if not r.empty] or [_empty_quarantine()])
        all_records.append(table_records)
        keep = ~typed.index.isin(sorted(bad_rows))
        clean = typed.loc[keep].reset_index(drop=True)
        for column, kind in spec.dtypes().items():
            if kind == "int":
                clean[column] = clean[column].astype("int64")
        valid[name] = clean
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
            f"{result.summary[name]['rows_read']} rows quarantined ({share:.1%})"
            for name, share in over.items()
        ]
        raise QuarantineLimitError(
            f"quarantined share above the limit of {config.max_quarantine_share:.1%}; "
            "the export looks broken, so nothing is scored:\n  " + "\n  ".join(lines)
        )
