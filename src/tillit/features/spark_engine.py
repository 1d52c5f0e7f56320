"""The feature SQL on Spark: DuckDB statements translated at run time (`tillit.features.spark_sql`).

Needs the `tillit[spark]` extra (pyspark, sqlglot) and Java 17. Imported only when
`--engine spark` asks for it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from tillit.errors import TillitError
from tillit.features import spark_sql
from tillit.features.engine import TableSource

# Settings that make a Spark result equal DuckDB's: wall-clock timestamps without a
# time zone, no silent overflow or string-to-number guessing (ANSI), the UI off.
SESSION_SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
# Local mode only: a small default memory and few shuffle partitions (a cluster sets its own).
# Broadcasting the registers up to 64 MB and two parallel GC threads were measured and did
# not lower the CPU of a 3 000-client month (docs/scale.md): not set.
LOCAL_SETTINGS: dict[str, str] = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
}


def java_missing() -> str | None:
    """Why Spark cannot start here (no Java), or None when it can."""
    if os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").exists():
        return None
    return None if shutil.which("java") else "Spark needs Java 17: no `java` on PATH or JAVA_HOME"


def start_session(
    master: str | None = None, settings: dict[str, str] | None = None
) -> SparkSession:
    """A Spark session for the feature SQL; `master` as `spark-submit --master` takes it.

    Raises:
        TillitError: Java is missing.
    """
    reason = java_missing()
    if reason is not None:
        raise TillitError(reason)
    master = master or "local[*]"
    builder = SparkSession.builder.appName("tillit").master(master)
    local = master.startswith("local")
    if local:
        # Python workers (scoring on the executors) run this interpreter, not the `python3`
        # on PATH; PySpark reads only the environment for it. A user's own choice stays.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    chosen = {**(LOCAL_SETTINGS if local else {}), **SESSION_SETTINGS}
    for key, value in {**chosen, **(settings or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkResult:
    """One statement's result on Spark, with DuckDB's `.df()` and `.fetchall()`."""

    def __init__(self, frame: DataFrame) -> None:
        self.frame = frame

    def df(self) -> pd.DataFrame:
        return self.frame.toPandas()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.frame.collect()]


class SparkEngine:
    """Runs the DuckDB-dialect feature SQL on a Spark session.

    `CREATE TEMP TABLE x AS ...` becomes a temporary view kept on the executors (memory,
    spilling to disk), `CREATE TEMP VIEW` a plain view: the stage's statements stay as
    written for DuckDB.
    """

    name = "spark"

    def __init__(self, session: SparkSession, owns_session: bool = False) -> None:
        self.session = session
        self.owns_session = owns_session
        self._kept: list[DataFrame] = []
        # Seconds per statement (its first line), for `make bench-spark`.
        self.seconds: list[tuple[str, float]] = []

    @classmethod
    def start(cls, master: str | None = None) -> SparkEngine:
        return cls(start_session(master), owns_session=True)

    def execute(self, sql: str) -> SparkResult:
        began = time.perf_counter()
        try:
            return self._execute(sql)
        finally:
            self.seconds.append((sql.strip().split("\n")[0][:60], time.perf_counter() - began))

    def _execute(self, sql: str) -> SparkResult:
        statement = sqlglot.parse_one(sql, read="duckdb")
        created = spark_sql.created_relation(statement)
        if created is None:
            return SparkResult(self.session.sql(spark_sql.translate(statement, self._columns)))
        name, query, materialise = created
        frame = self.session.sql(spark_sql.translate(query, self._columns))
        if materialise:
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            frame.count()
            self._kept.append(frame)
        frame.createOrReplaceTempView(name)
        return SparkResult(frame)

    def _columns(self, name: str) -> list[str]:
        return list(self.session.table(name).columns)

    def register(self, name: str, source: TableSource) -> None:
        began = time.perf_counter()
        self._register(name, source)
        self.seconds.append((f"register {name}", time.perf_counter() - began))

    def _register(self, name: str, source: TableSource) -> None:
        if isinstance(source, pd.DataFrame):
            frame = self.session.createDataFrame(spark_ready(source))
        else:
            # A folder partitioned as municipality=.../month=... gives those as columns.
            frame = self.session.read.parquet(str(source))
        frame.createOrReplaceTempView(name)

    def create_table(self, name: str, sql: str) -> None:
        self.execute(f"CREATE TEMP TABLE {name} AS {sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.execute(sql).df()

    def close(self) -> None:
        for frame in self._kept:
            frame.unpersist()
        self._kept.clear()
        if self.owns_session:
            self.session.stop()


def spark_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame Arrow hands to Spark as DuckDB reads it: text as text, times in microseconds.

    DuckDB rounds nanoseconds to the nearest microsecond when it reads them; so does this.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_datetime64_dtype(values.dtype):
            out[column] = values.dt.round("us").astype("datetime64[us]")
        elif isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
            out[column] = values.astype(object).where(values.notna(), None)
    return out


__all__ = [
    "SESSION_SETTINGS",
    "SparkEngine",
    "SparkResult",
    "java_missing",
    "spark_ready",
    "start_session",
]
