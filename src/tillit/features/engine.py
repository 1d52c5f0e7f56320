"""Where the feature SQL runs: DuckDB embedded (the default), or Spark when one machine is outgrown.

Why: the feature queries (`tillit.features.queries`) are written once, in DuckDB's dialect.
An engine offers the small surface those queries use (`execute(sql)` returning something with
`.df()` and `.fetchall()`, `register` a frame or a Parquet folder, `create_table`, `fetch`), so
the query bodies do not know which engine runs them. The Spark engine lives in
`tillit.features.spark_engine` and is imported only when asked for: `pip install tillit`
without the `spark` extra never imports pyspark.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import duckdb
import pandas as pd

from tillit.errors import TillitError

if TYPE_CHECKING:
    from tillit.features.spark_engine import SparkEngine

# A table to register: a pandas frame, or a Parquet file or folder (local path, or an object
# storage URL that only Spark reads), possibly partitioned as `municipality=.../month=...`.
TableSource: TypeAlias = pd.DataFrame | str | Path

ENGINES = ("duckdb", "spark")


class Result(Protocol):
    """The result of one statement."""

    def df(self) -> pd.DataFrame: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class Engine(Protocol):
    """What the feature queries need from a SQL engine; SQL is always written for DuckDB."""

    name: str

    def execute(self, sql: str) -> Result: ...

    def register(self, name: str, source: TableSource) -> None: ...

    def create_table(self, name: str, sql: str) -> None: ...

    def fetch(self, sql: str) -> pd.DataFrame: ...

    def close(self) -> None: ...


def parquet_glob(source: str | Path) -> str:
    """The files DuckDB reads for a Parquet file or a (hive-partitioned) folder of them."""
    path = Path(source)
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)


class LaneStopped(Exception):
    """A statement refused because its lane was stopped (`DuckDBEngine.stop`)."""


def stopped_by_the_other_lane(error: BaseException) -> bool:
    """Whether `error` is a lane's stop (refused or interrupted), not a failure of its own."""
    return isinstance(error, LaneStopped | duckdb.InterruptException)


class DuckDBEngine:
    """DuckDB in this process, one thread per statement.

    One thread: a parallel hash aggregation adds floats in a varying order, and the last
    bits of a sum then differ from run to run; the same data must give the same features,
    bit for bit, or the same model would not give the same scores. Statements that do not
    need each other's tables may still run at the same time, each on one thread, on a
    `lane` of the same database: each statement then sees the same rows in the same order
    and gives the same bits as it would alone.
    """

    name = "duckdb"

    def __init__(self, threads: int = 1, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else duckdb.connect(config={"threads": threads})
        self._stopped = False

    def stop(self) -> None:
        """Stop this connection's chain of statements from another thread: the statement
        running is interrupted (DuckDB's `interrupt`) and every later one refused, until
        `resume`. Why: when one lane fails, the other need not run to its end first."""
        self._stopped = True
        self.con.interrupt()

    def resume(self) -> None:
        self._stopped = False

    def _check(self) -> None:
        if self._stopped:
            raise LaneStopped("stopped: the other lane of the feature build failed")

    def execute(self, sql: str) -> duckdb.DuckDBPyConnection:
        self._check()
        return self.con.execute(_shared_table(sql))

    def register(self, name: str, source: TableSource) -> None:
        self._check()
        if isinstance(source, pd.DataFrame):
            self.con.register(name, source)
            return
        files = parquet_glob(source).replace("'", "''")
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS "
            f"SELECT * FROM read_parquet('{files}', hive_partitioning = true)"
        )

    def create_table(self, name: str, sql: str) -> None:
        self._check()
        self.con.execute(f"CREATE TABLE {name} AS {sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        self._check()
        return self.con.execute(sql).df()

    def lane(self) -> DuckDBEngine:
        """A second connection to this engine's database, to run statements alongside this one.

        It sees every table created so far (not the registered frames or temp views, which
        belong to one connection); its owner closes it.
        """
        return DuckDBEngine(con=self.con.cursor())

    def close(self) -> None:
        self.con.close()


# The queries say TEMP (a session's own table, as Spark's temp views are). A DuckDB temp
# table belongs to one connection; this engine's database is its own in-memory one, so
# its tables are created there instead, where every lane sees them.
_TEMP_TABLE = re.compile(r"^(\s*CREATE\s+)TEMP\s+(TABLE\s)", re.IGNORECASE)


def _shared_table(sql: str) -> str:
    return _TEMP_TABLE.sub(r"\1\2", sql, count=1)


class RecordingEngine:
    """Another engine, with every statement it was asked to run kept in `statements`.

    Why: the check that every statement the feature stage issues can be translated for
    Spark (tests/unit/test_spark_sql.py) needs the statements themselves, as built from
    the config, not a copy of the query text.
    """

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.statements: list[str] = []

    def execute(self, sql: str) -> Result:
        self.statements.append(sql)
        return self.inner.execute(sql)

    def register(self, name: str, source: TableSource) -> None:
        self.inner.register(name, source)

    def create_table(self, name: str, sql: str) -> None:
        self.statements.append(f"CREATE TEMP TABLE {name} AS {sql}")
        self.inner.create_table(name, sql)

    def fetch(self, sql: str) -> pd.DataFrame:
        self.statements.append(sql)
        return self.inner.fetch(sql)

    def close(self) -> None:
        self.inner.close()


def connect(engine: str = "duckdb", spark_master: str | None = None) -> Engine | SparkEngine:
    """A fresh engine by name; `spark` needs the `tillit[spark]` extra and Java.

    Raises:
        ValueError: an engine name tillit does not know.
        TillitError: Spark asked for without the extra installed, or without Java.
    """
    if engine == "duckdb":
        return DuckDBEngine()
    if engine == "spark":
        try:
            from tillit.features.spark_engine import SparkEngine
        except ImportError as exc:
            raise TillitError(
                f"--engine spark needs the spark extra: pip install 'tillit[spark]' ({exc})"
            ) from exc

        return SparkEngine.start(spark_master)
    raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")


__all__ = [
    "ENGINES",
    "DuckDBEngine",
    "Engine",
    "RecordingEngine",
    "Result",
    "TableSource",
    "connect",
    "parquet_glob",
]
