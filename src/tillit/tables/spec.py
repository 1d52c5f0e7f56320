"""The table spec: what each column of a user's table means, and the check at the door.

A spec is YAML loaded into a frozen pydantic model that rejects unknown keys; a bad
spec stops with one message naming the key. The table is then checked with a Pandera
schema built from the spec, under the contract's quarantine rules: a missing column
refuses the table, a row that breaks a rule is quarantined with the rule, and a
quarantined share above `validation.max_quarantine_share` refuses the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from tillit.config import ReviewConfig, StrictModel, ValidationConfig
from tillit.data.contract import TableSpec as ContractTableSpec
from tillit.data.validate import (
    ValidationResult,
    _coerce,
    _empty_quarantine,
    _schema_failures,
    _without_cells_already_recorded,
)
from tillit.errors import ContractError, TillitError

PERIOD_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400}
# Names tillit adds to every derived table; a user's column may not take them.
RESERVED_COLUMNS = frozenset({"period", "row_number"})


class SpecError(TillitError):
    """The table spec is not usable: a YAML error, an unknown key or a bad value."""


class TrainWindow(StrictModel):
    """An explicit training window, both ends included."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    start: dt.date = Field(alias="from")
    to: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> TrainWindow:
        if self.to < self.start:
            raise ValueError("to must not be before from")
        return self


class TableSpecFile(StrictModel):
    """One table of payments or claims, one row each, described column by column."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    id: str = Field(min_length=1)
    time: str | None = None
    period: Literal["day", "week", "month"] = "day"
    amount: str | None = None
    label: str | None = None
    label_delay: int = Field(default=0, ge=0)
    entities: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    train: TrainWindow | None = None
    # History windows in periods, for the entity features.
    windows: tuple[int, ...] = (1, 7, 30)
    # Rows reviewed per period (or per table without a time column) and random checks.
    capacity: ReviewConfig = ReviewConfig(capacity_share=0.01)
    # Folds of the stratified cross-validation used when there is no time column.
    cv_folds: int = Field(default=5, ge=2, le=20)
    # Weight of the supervised scorer in the blend: "auto" chooses it on rows the
    # evaluation does not judge (see tables.train.choose_supervised_weight).
    supervised_weight: Literal["auto"] | float = Field(default="auto")

    @field_validator("supervised_weight", mode="before")
    @classmethod
    def _weight_in_range(cls, value: object) -> object:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value != "auto" and not (number and 0.0 <= float(value) <= 1.0):  # type: ignore[arg-type]
            raise ValueError('must be "auto" or a number from 0 to 1')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TableSpecFile:
        roles = [self.id, self.time, self.amount, self.label, *self.entities]
        named = [c for c in roles if c is not None]
        repeated = sorted({c for c in named if named.count(c) > 1})
        if repeated:
            raise ValueError(f"a column has two roles: {', '.join(repeated)}")
        clash = sorted(set(self.protected) & (set(named) | set(self.features)))
        if clash:
            raise ValueError(
                f"protected columns are for the fairness audit only, never features "
                f"or roles: {', '.join(clash)}"
            )
        in_features = sorted(set(self.features) & set(named) - {self.amount})
        if in_features:
            raise ValueError(f"features repeat a column named above: {', '.join(in_features)}")
        reserved = sorted(set(named) | set(self.features) | set(self.protected))
        reserved = [c for c in reserved if c in RESERVED_COLUMNS]
        if reserved:
            raise ValueError(f"column names reserved by tillit: {', '.join(reserved)}")
        if self.entities and self.time is None:
            raise ValueError("entities need a time column: history is what came before a row")
        if self.train is not None and self.time is None:
            raise ValueError("train needs a time column")
        if not self.windows or any(w < 1 for w in self.windows):
            raise ValueError("windows must be whole numbers of periods, at least 1")
        return self

    def hash(self) -> str:
        """A short hash of the resolved spec, logged with every run."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def period_seconds(self) -> int:
        return PERIOD_SECONDS[self.period]

    def required_columns(self) -> list[str]:
        named = [self.id, self.time, self.amount, self.label, *self.entities]
        return [c for c in named if c is not None] + [*self.features, *self.protected]


def load_spec(path: Path) -> TableSpecFile:
    """Read a spec file; any problem is one SpecError naming the file and the key."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the table spec {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"table spec {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"table spec {path} must be a mapping of keys (name, id, ...)")
    return parse_spec(raw, str(path))


def parse_spec(raw: dict[str, object], source: str = "table spec") -> TableSpecFile:
    """Validate a spec mapping; the first problem becomes one message naming its key."""
    try:
        return TableSpecFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        raise SpecError(f"{source}: key '{where}': {message}") from None


# --------------------------------------------------------------------------- the door


@dataclass(frozen=True)
class SchemaModel:
    """A built Pandera schema where the validator asks a contract model for its schema."""

    schema: pa.DataFrameSchema

    def to_schema(self) -> pa.DataFrameSchema:
        return self.schema


@dataclass(frozen=True)
class DoorSpec:
    """The spec in the terms the contract validator's helpers read (duck-typed TableSpec)."""

    name: str
    model: SchemaModel
    key: tuple[str, ...]
    kinds: dict[str, str]
    row_rule_columns: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def dtypes(self) -> dict[str, str]:
        return dict(self.kinds)


def column_kinds(spec: TableSpecFile, raw: pd.DataFrame) -> dict[str, str]:
    """Each used column's kind (str, float, timestamp), id first."""
    kinds: dict[str, str] = {spec.id: "str"}
    if spec.time:
        kinds[spec.time] = "timestamp"
    if spec.amount:
        kinds[spec.amount] = "float"
    if spec.label:
        kinds[spec.label] = "float"
    for entity in spec.entities:
        kinds[entity] = "str"
    for feature in feature_columns(spec, raw):
        kinds.setdefault(feature, "float")
    for column in spec.protected:
        kinds[column] = "str"
    return kinds


def feature_columns(spec: TableSpecFile, raw: pd.DataFrame) -> list[str]:
    """The columns used as they are: the spec's list, or every numeric column not named."""
    if spec.features:
        return list(spec.features)
    named = set(spec.required_columns())
    return [
        str(c)
        for c in raw.columns
        if c not in named
        and c not in RESERVED_COLUMNS
        and pd.api.types.is_numeric_dtype(raw[c])
        and not pd.api.types.is_bool_dtype(raw[c])
    ]


def pandera_schema(spec: TableSpecFile, kinds: dict[str, str]) -> pa.DataFrameSchema:
    """The Pandera schema of the table, built from the spec."""
    columns: dict[str, pa.Column] = {}
    for column, kind in kinds.items():
        if column == spec.id:
            columns[column] = pa.Column(str, unique=True)
        elif column == spec.time:
            columns[column] = pa.Column("datetime64[ns]")
        elif column == spec.amount:
            columns[column] = pa.Column(float, pa.Check.ge(0))
        elif column == spec.label:
            columns[column] = pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=True)
        elif column in spec.entities:
            columns[column] = pa.Column(str)
        elif kind == "float":
            columns[column] = pa.Column(float, nullable=True)
        else:
            columns[column] = pa.Column(str, nullable=True)
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name=spec.name)


def check_table(
    raw: pd.DataFrame, spec: TableSpecFile, validation: ValidationConfig
) -> ValidationResult:
    """Check a table at the door: refuse missing columns, quarantine bad rows with the rule.

    The valid rows come back typed, in the table's order, under `tables[spec.name]`.
    The quarantine limit is checked separately (`check_quarantine_limit`), so that the
    records can be written before a run stops.

    Raises:
        ContractError: naming every missing column.
    """
    del validation  # the limit is applied by the caller, after the records are written
    missing = [c for c in spec.required_columns() if c not in raw.columns]
    if missing:
        raise ContractError(
            f"the table lacks columns the spec {spec.name!r} names: {', '.join(missing)}"
        )
    raw = raw.reset_index(drop=True)
    kinds = column_kinds(spec, raw)
    if not [c for c, k in kinds.items() if k == "float"] and not spec.entities:
        raise ContractError(
            f"the table has nothing to score by: no amount, no numeric feature column and "
            f"no entities in the spec {spec.name!r}"
        )
    door = DoorSpec(spec.name, SchemaModel(pandera_schema(spec, kinds)), (spec.id,), kinds)
    as_contract = cast(ContractTableSpec, door)
    typed, coerce_records = _coerce(spec.name, as_contract, raw)
    # A value that did not parse is not also reported as empty.
    schema_records = _without_cells_already_recorded(
        _schema_failures(spec.name, as_contract, typed), coerce_records
    )
    records = pd.concat(
        [r for r in (coerce_records, schema_records) if not r.empty] or [_empty_quarantine()],
        ignore_index=True,
    )
    if spec.label:
        # Pandera names the allowed floats without quotes, which rule_text cannot read.
        is_label_rule = (records["column"] == spec.label) & records["rule"].str.contains("one of")
        records.loc[is_label_rule, "rule"] = (
            f"{spec.label} must be 1 (confirmed), 0 (cleared) or empty (not reviewed)"
        )
    bad = np.zeros(len(typed), dtype=bool)
    bad[records["row_number"].to_numpy(dtype=np.int64)] = True
    clean = typed.loc[~bad].reset_index(drop=True)
    n_rows = len(raw)
    summary: dict[str, dict[str, int | float]] = {
        spec.name: {
            "rows_read": n_rows,
            "rows_quarantined": int(bad.sum()),
            "rows_valid": len(clean),
            "quarantined_share": round(int(bad.sum()) / n_rows, 6) if n_rows else 0.0,
        }
    }
    quarantine = records.astype({"row_number": "int64"}).reset_index(drop=True)
    return ValidationResult(tables={spec.name: clean}, quarantine=quarantine, summary=summary)
