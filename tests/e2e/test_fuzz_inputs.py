"""Fuzz: corrupted and re-formatted copies of one small municipality through the CLI.

Every case writes a copy of the simulated municipality (trained once, `trained_export`),
breaks or re-formats it one way, and runs `tillit validate` and, for the first cases
of each kind, `tillit score` through the Typer app in this process (the real commands,
option parsing and exit codes, without paying MLflow's import per case). Each must end
with exit 0 or exit 2 and one message naming the table (and the column where there is
one), never a traceback; validation must account for every row of every table
(read = valid + quarantined); scoring must account for every invoice of the month
(received = scored + quarantined, every invoice listed); the input folder is hashed
before and after and must be untouched. The table of outcomes is printed
(`pytest -s tests/e2e/test_fuzz_inputs.py`) and written to `fuzz_outcomes.txt` in the
session's temporary folder.

Seeded: the same cases every run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import EXPORT_PERIOD as PERIOD
from tillit.cli import app
from tillit.data.contract import TABLES
from tillit.data.lineage import place_period

SEED = 20261127
SCORES_PER_KIND = 1  # score is the slow command: the first case of each kind

Tables = dict[str, pd.DataFrame]


@dataclass
class Case:
    """One corruption: how to make it, and what it must name if refused."""

    kind: str
    name: str
    make: Callable[[Tables, Path, np.random.Generator], None]
    table: str
    column: str | None = None
    flags: tuple[str, ...] = ()
    # "refused": must exit 2; "quarantined": exit 0 with a record of (table, column), or exit 2
    # over the quarantine limit naming both; "clean": exit 0 with nothing quarantined; "any".
    expect: str = "any"


def _write(tables: Tables, folder: Path, fmt: str = "parquet", **csv: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False, **csv)  # type: ignore[call-overload]


def _row(frame: pd.DataFrame, rng: np.random.Generator, period: bool = False) -> int:
    if period and "period" in frame:
        frame = frame[frame["period"] == PERIOD]
    return int(rng.choice(frame.index.to_numpy()))


def _set(table: str, column: str, value: object, fmt: str = "parquet") -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        frame = tables[table].copy()
        if isinstance(value, str):
            frame[column] = frame[column].astype("object")
        elif frame[column].dtype.kind == "i":
            frame[column] = frame[column].astype("float64")
        frame.loc[_row(frame, rng, period=table == "invoices"), column] = value
        _write({**tables, table: frame}, folder, fmt)

    return make


def _csv_text(table: str, column: str, text: str) -> Callable[..., None]:
    """A CSV export where one cell of `column` holds `text` exactly as written."""

    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        frame = tables[table].copy().astype({column: "object"})
        frame.loc[_row(frame, rng, period=table == "invoices"), column] = "@@CELL@@"
        _write({**tables, table: frame}, folder, "csv")
        path = folder / f"{table}.csv"
        path.write_text(path.read_text().replace("@@CELL@@", text))

    return make


def _header_only(table: str) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write({**tables, table: tables[table].iloc[:0]}, folder)

    return make


def _unreadable(table: str, how: str) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write(tables, folder)
        path = folder / f"{table}.parquet"
        path.unlink()
        if how == "folder":
            path.mkdir()
        elif how == "broken link":
            path.symlink_to(folder / "gone.parquet")
        else:
            path.write_bytes(rng.bytes(300))

    return make


def _ragged(table: str, how: str) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write(tables, folder, "csv")
        path = folder / f"{table}.csv"
        lines = path.read_text().splitlines()
        at = 1 + int(rng.integers(len(lines) - 1))
        lines[at] = lines[at].rsplit(",", 1)[0] if how == "short" else lines[at] + ",extra"
        path.write_text("\n".join(lines) + "\n")

    return make


def _twice(table: str, differ: bool) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write(tables, folder)
        other = tables[table].iloc[1:] if differ else tables[table]
        _write({table: other}, folder, "csv")

    return make


def _dialect(**csv: object) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write(tables, folder, "csv", **csv)

    return make


def _time_zone(how: str) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        visits = tables["visits"].copy()
        local = {
            c: visits[c].dt.tz_localize("Europe/Stockholm", ambiguous="NaT")
            for c in ("start_at", "end_at")
        }
        if how == "parquet utc":
            _write({**tables, "visits": visits.assign(**{c: v.dt.tz_convert("UTC") for c, v in local.items()})}, folder)  # fmt: skip
            return
        _write(tables, folder)
        (folder / "visits.parquet").unlink()
        some = rng.random(len(visits)) < (0.5 if how == "offsets in some rows" else 1.0)
        for column, values in local.items():
            if how == "Z everywhere":
                text = values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                text = values.dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(
                    r"(\d{2})(\d{2})$", r"\1:\2", regex=True
                )
            naive = visits[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
            visits[column] = text.where(some, naive)
        visits.to_csv(folder / "visits.csv", index=False)

    return make


def _shuffle(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
    seeds = rng.integers(1 << 31, size=len(tables))
    _write(
        {
            name: frame.sample(frac=1.0, random_state=int(seed))
            for (name, frame), seed in zip(tables.items(), seeds, strict=True)
        },
        folder,
    )


def _periods(written: list[object]) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        invoices = tables["invoices"].copy().astype({"period": "object"})
        june = invoices.index[invoices["period"] == PERIOD].to_numpy()
        for row, text in zip(rng.choice(june, len(written), replace=False), written, strict=True):
            invoices.loc[row, "period"] = text
        _write({**tables, "invoices": invoices}, folder)

    return make


def _break_rows(table: str, column: str, change: Callable[[pd.DataFrame, np.ndarray], None], share: float = 0.002) -> Callable[..., None]:  # fmt: skip
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        frame = tables[table].copy()
        n = max(1, int(len(frame) * share))
        rows = rng.choice(frame.index.to_numpy(), n, replace=False)
        change(frame, rows)
        _write({**tables, table: frame}, folder)

    return make


def _assign(column: str, value: object) -> Callable[[pd.DataFrame, np.ndarray], None]:
    def change(frame: pd.DataFrame, rows: np.ndarray) -> None:
        if isinstance(value, str) and frame[column].dtype.kind != "O":
            frame[column] = frame[column].astype("object")
        frame.loc[rows, column] = value

    return change


def _end_before_start(frame: pd.DataFrame, rows: np.ndarray) -> None:
    frame.loc[rows, "end_at"] = frame.loc[rows, "start_at"] - pd.Timedelta(minutes=5)


def _duplicate_key(frame: pd.DataFrame, rows: np.ndarray) -> None:
    frame.loc[rows, "visit_id"] = frame.loc[rows[0], "visit_id"] if len(rows) else None


def _drop_column(table: str, column: str) -> Callable[..., None]:
    def make(tables: Tables, folder: Path, rng: np.random.Generator) -> None:
        _write({**tables, table: tables[table].drop(columns=column)}, folder)

    return make


def _cases() -> list[Case]:
    inf, q, r = np.inf, "quarantined", "refused"
    cases = [
        Case(
            "non-finite",
            "invoices.amount_sek inf",
            _set("invoices", "amount_sek", inf),
            "invoices",
            "amount_sek",
            expect=q,
        ),
        Case(
            "non-finite",
            "invoices.amount_sek 'Infinity' (CSV)",
            _csv_text("invoices", "amount_sek", "Infinity"),
            "invoices",
            "amount_sek",
            expect=q,
        ),
        Case(
            "non-finite",
            "tariffs.rate_sek -inf",
            _set("tariffs", "rate_sek", -inf),
            "tariffs",
            "rate_sek",
            expect=q,
        ),
        Case(
            "non-finite",
            "provider_events.amount_sek inf",
            _set("provider_events", "amount_sek", inf),
            "provider_events",
            "amount_sek",
            expect=q,
        ),
        Case(
            "non-finite",
            "audit_outcomes.recovered_sek inf",
            _set("audit_outcomes", "recovered_sek", inf),
            "audit_outcomes",
            "recovered_sek",
            expect=q,
        ),
        Case(
            "non-finite",
            "invoices.billed_hours 'inf' (CSV)",
            _csv_text("invoices", "billed_hours", "inf"),
            "invoices",
            "billed_hours",
            expect=q,
        ),
        Case(
            "absurd",
            "invoices.amount_sek 1e300",
            _set("invoices", "amount_sek", 1e300),
            "invoices",
            "amount_sek",
            expect=q,
        ),
        Case(
            "absurd",
            "tariffs.rate_sek 1e6",
            _set("tariffs", "rate_sek", 1e6),
            "tariffs",
            "rate_sek",
            expect=q,
        ),
        Case(
            "absurd",
            "invoices.billed_hours 10000",
            _set("invoices", "billed_hours", 1e4),
            "invoices",
            "billed_hours",
            expect=q,
        ),
        Case(
            "absurd",
            "grants.hours_per_month 5000",
            _set("grants", "hours_per_month", 5000.0),
            "grants",
            "hours_per_month",
            expect=q,
        ),
        Case(
            "absurd",
            "clients.birth_year 3000",
            _set("clients", "birth_year", 3000),
            "clients",
            "birth_year",
            expect=q,
        ),
        Case(
            "absurd",
            "tariffs.year 1e300",
            _set("tariffs", "year", 1e300),
            "tariffs",
            "year",
            expect=q,
        ),
        Case(
            "nullable int",
            "tariffs.year null",
            _set("tariffs", "year", None),
            "tariffs",
            "year",
            expect=q,
        ),
        Case(
            "nullable int",
            "clients.birth_year blank (CSV)",
            _csv_text("clients", "birth_year", ""),
            "clients",
            "birth_year",
            expect=q,
        ),
        Case(
            "nullable int",
            "clients.birth_year 1938.5",
            _set("clients", "birth_year", 1938.5),
            "clients",
            "birth_year",
            expect=q,
        ),
    ]
    cases += [
        Case("empty required table", f"{table} header only", _header_only(table), table, expect=r)
        for table in ("visits", "invoices", "grants", "tariffs", "clients", "providers")
    ]
    cases += [
        Case(
            "unreadable optional table",
            f"{table} as {how}",
            _unreadable(table, how),
            table,
            expect=r,
        )
        for table in ("hospital_stays", "audit_outcomes")
        for how in ("folder", "broken link", "garbage")
    ]
    cases += [
        Case("ragged CSV row", f"{table} row {how}", _ragged(table, how), table, expect=r)
        for table in ("visits", "invoices", "hospital_stays")
        for how in ("short", "long")
    ]
    cases += [
        Case(
            "table given twice",
            "invoices.parquet and .csv, differing",
            _twice("invoices", True),
            "invoices",
            expect=r,
        ),
        Case(
            "table given twice",
            "tariffs.parquet and .csv, same rows",
            _twice("tariffs", False),
            "tariffs",
            expect=r,
        ),
        Case(
            "CSV dialect",
            "Swedish Excel (; , cp1252)",
            _dialect(sep=";", decimal=",", encoding="cp1252"),
            "",
            expect="clean",
        ),
        Case(
            "CSV dialect",
            "UTF-8 BOM, CRLF",
            _dialect(encoding="utf-8-sig", lineterminator="\r\n"),
            "",
            expect="clean",
        ),
        Case(
            "CSV dialect",
            "tab, latin-1, with flags",
            _dialect(sep="\t", encoding="latin-1"),
            "",
            flags=("--csv-sep", "tab", "--encoding", "latin-1"),
            expect="clean",
        ),
        Case("CSV dialect", "semicolon, decimal point", _dialect(sep=";"), "", expect="clean"),
        Case("time zone", "Parquet timestamp[UTC]", _time_zone("parquet utc"), "", expect="clean"),
        Case(
            "time zone",
            "CSV offsets in some rows",
            _time_zone("offsets in some rows"),
            "",
            expect="clean",
        ),
        Case("time zone", "CSV Z everywhere", _time_zone("Z everywhere"), "", expect="clean"),
        Case("row order", "every table shuffled", _shuffle, "", expect="clean"),
        Case("row order", "every table shuffled again", _shuffle, "", expect="clean"),
        Case(
            "malformed period",
            "2025-6, 2025/06, juni 2025",
            _periods(["2025-6", "2025/06", "juni 2025"]),
            "invoices",
            "period",
            expect=q,
        ),
        Case(
            "malformed period",
            "null and junk",
            _periods([None, "next month"]),
            "invoices",
            "period",
            expect=q,
        ),
        Case(
            "contract rule",
            "visits end before start",
            _break_rows("visits", "end_at", _end_before_start),
            "visits",
            "end_at",
            expect=q,
        ),
        Case(
            "contract rule",
            "visits.method fax",
            _break_rows("visits", "method", _assign("method", "fax")),
            "visits",
            "method",
            expect=q,
        ),
        Case(
            "contract rule",
            "visits unknown client",
            _break_rows("visits", "client_id", _assign("client_id", "C-NOBODY")),
            "visits",
            "client_id",
            expect=q,
        ),
        Case(
            "contract rule",
            "visits duplicate visit_id",
            _break_rows("visits", "visit_id", _duplicate_key),
            "visits",
            "visit_id",
            expect=q,
        ),
        Case(
            "contract rule",
            "invoices.billed_hours negative",
            _break_rows("invoices", "billed_hours", _assign("billed_hours", -3.0)),
            "invoices",
            "billed_hours",
            expect=q,
        ),
        Case(
            "contract rule",
            "grants.service_type unknown",
            _break_rows("grants", "service_type", _assign("service_type", "gardening"), 0.0),
            "grants",
            "service_type",
            expect=q,
        ),
        Case(
            "contract rule",
            "providers.org_number bad Luhn",
            _set("providers", "org_number", "556677-8890"),
            "providers",
            "org_number",
            expect=q,
        ),
        Case(
            "contract rule",
            "provider_persons.role king",
            _set("provider_persons", "role", "king"),
            "provider_persons",
            "role",
            expect=q,
        ),
        Case(
            "contract rule",
            "hospital_stays discharged before admitted",
            _set("hospital_stays", "discharged_on", pd.Timestamp("1990-01-01")),
            "hospital_stays",
            "discharged_on",
            expect=q,
        ),
        Case(
            "contract rule",
            "invoices.submitted_on 'yesterday' (CSV)",
            _csv_text("invoices", "submitted_on", "yesterday"),
            "invoices",
            "submitted_on",
            expect=q,
        ),
        Case(
            "contract rule",
            "visits over the quarantine limit",
            _break_rows("visits", "method", _assign("method", "fax"), 0.05),
            "visits",
            "method",
            expect=r,
        ),
        Case(
            "contract rule",
            "grants without hours_per_month",
            _drop_column("grants", "hours_per_month"),
            "grants",
            "hours_per_month",
            expect=r,
        ),
    ]
    return cases


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_symlink():
            digest.update(str(path.readlink()).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Run:
    exit_code: int
    message: str
    traceback: str | None


def _invoke(args: list[str]) -> Run:
    result = CliRunner().invoke(app, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return Run(
        result.exit_code,
        result.stderr,
        f"{type(result.exception).__name__}: {result.exception}" if crashed else None,
    )


def _outcome(command: str, run: Run, quarantined: int) -> str:
    if run.traceback:
        return f"{command}: traceback"
    if run.exit_code == 2:
        return f"{command}: exit 2"
    if run.exit_code == 0 and command == "score":
        return "score: exit 0" + (", invoices quarantined" if quarantined else ", all scored")
    if run.exit_code == 0:
        return "validate: exit 0" + (", rows quarantined" if quarantined else ", clean")
    return f"{command}: exit {run.exit_code}"


@pytest.fixture(scope="module")
def tables(trained_export: dict[str, Path]) -> Tables:
    return {
        path.stem: pd.read_parquet(path)
        for path in sorted(trained_export["data"].glob("*.parquet"))
        if path.stem in TABLES  # not the simulator's truth files
    }


def test_every_corruption_ends_cleanly_and_loses_nothing(trained_export, tables, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    scored_kinds: Counter[str] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    for number, case in enumerate(_cases()):
        folder = root / f"case{number:03d}"
        case.make({k: v.copy() for k, v in tables.items()}, folder, rng)
        before = _folder_hash(folder)
        out = root / f"validate{number:03d}"
        run = _invoke(["validate", "--data", str(folder), "--out", str(out), *case.flags])
        quarantine = (
            pd.read_parquet(out / "quarantine.parquet")
            if (out / "quarantine.parquet").exists()
            else pd.DataFrame(columns=["table", "column"])
        )
        outcomes[(case.kind, _outcome("validate", run, len(quarantine)))] += 1
        problems += _check(case, run, quarantine, "validate")
        if run.exit_code == 0:
            problems += _all_rows_accounted(case, out, tables)
        if scored_kinds[case.kind] < SCORES_PER_KIND:
            scored_kinds[case.kind] += 1
            problems += _score_case(case, folder, root / f"score{number:03d}", trained_export["store"], outcomes)  # fmt: skip
        if _folder_hash(folder) != before:
            problems.append(f"{case.name}: the input folder changed")
        shutil.rmtree(folder, ignore_errors=True)
    table = _table(outcomes)
    print("\n" + table)
    (root.parent / "fuzz_outcomes.txt").write_text(table + "\n")
    assert not problems, "\n".join(problems)


def _check(case: Case, run: Run, quarantine: pd.DataFrame, command: str) -> list[str]:
    where = f"{case.kind} / {case.name} / {command}"
    if run.traceback:
        return [f"{where}: traceback {run.traceback}"]
    if run.exit_code not in (0, 2):
        return [f"{where}: exit {run.exit_code}: {run.message}"]
    if run.exit_code == 2:
        named = [part for part in (case.table, case.column) if part]
        missing = [part for part in named if part not in run.message]
        if case.expect == "clean" or missing:
            return [f"{where}: exit 2 without naming {missing or 'a reason'}: {run.message}"]
        if run.message.count("error:") != 1:
            return [f"{where}: more than one message: {run.message}"]
        return []
    if case.expect == "refused":
        return [f"{where}: accepted, should be refused"]
    if command != "validate":
        return []
    hit = quarantine[(quarantine["table"] == case.table) & (quarantine["column"] == case.column)]
    if case.expect == "quarantined" and hit.empty:
        return [f"{where}: nothing quarantined in {case.table}.{case.column}"]
    if case.expect == "clean" and len(quarantine):
        return [f"{where}: quarantined {quarantine[['table', 'column', 'rule']].drop_duplicates().values.tolist()}"]  # fmt: skip
    return []


def _all_rows_accounted(case: Case, out: Path, tables: Tables) -> list[str]:
    """Every row of every table was read, and is either valid or quarantined."""
    report = json.loads((out / "validation.json").read_text())["tables"]
    problems = []
    for name, counts in report.items():
        if counts["rows_read"] != len(tables[name]):
            problems.append(f"{case.name}: {name} read {counts['rows_read']} of {len(tables[name])} rows")  # fmt: skip
        if counts["rows_read"] != counts["rows_valid"] + counts["rows_quarantined"]:
            problems.append(f"{case.name}: {name} rows do not add up {counts}")
    if set(report) != set(tables):
        problems.append(f"{case.name}: tables read {sorted(report)}")
    return problems


def _score_case(
    case: Case, folder: Path, out: Path, store: Path, outcomes: Counter[tuple[str, str]]
) -> list[str]:
    args = ["score", "--data", str(folder), "--period", PERIOD, "--out", str(out)]
    run = _invoke([*args, "--store", str(store), *case.flags])
    problems = _check(case, run, pd.DataFrame(columns=["table", "column"]), "score")
    quarantined = 0
    if run.exit_code == 0:
        counts = json.loads((out / "manifest.json").read_text())["counts"]
        quarantined = counts["quarantined"]
        risk = pd.read_parquet(out / "risk_list.parquet")
        invoices = _raw_invoices(folder, case.flags)
        placed = invoices["period"].map(place_period)
        due = set(invoices.loc[(placed == PERIOD) | placed.isna(), "invoice_id"].astype("str"))
        if counts["received"] != counts["scored"] + counts["quarantined"]:
            problems.append(f"{case.name} / score: counts do not add up {counts}")
        if counts["received"] != len(risk) or set(risk["invoice_id"]) != due:
            problems.append(f"{case.name} / score: {len(due)} invoices due, {len(risk)} listed")
    outcomes[(case.kind, _outcome("score", run, quarantined))] += 1
    return problems


def _raw_invoices(folder: Path, flags: tuple[str, ...]) -> pd.DataFrame:
    """The invoices as the command read them (with the same CSV flags)."""
    from tillit.config import InputConfig
    from tillit.data.io import read_raw_tables

    given = dict(zip(flags[::2], flags[1::2], strict=True))
    settings = InputConfig(
        csv_sep=given.get("--csv-sep", "auto"),  # type: ignore[arg-type]
        decimal=given.get("--decimal", "auto"),  # type: ignore[arg-type]
        encoding=given.get("--encoding", "auto"),  # type: ignore[arg-type]
    )
    return read_raw_tables(folder, settings)["invoices"]


def _table(outcomes: Counter[tuple[str, str]]) -> str:
    kinds = list(dict.fromkeys(kind for kind, _ in outcomes))
    columns = sorted({outcome for _, outcome in outcomes})
    width = max(len(k) for k in kinds)
    lines = [
        f"{'kind':<{width}} | " + " | ".join(columns),
        "-" * width + "-|-" + "-|-".join("-" * len(c) for c in columns),
    ]
    for kind in kinds:
        cells = [str(outcomes.get((kind, c), "")).rjust(len(c)) for c in columns]
        lines.append(f"{kind:<{width}} | " + " | ".join(cells))
    total = sum(outcomes.values())
    lines.append(f"{total} runs over {len(kinds)} kinds")
    return "\n".join(lines)
