"""One SQL, two engines: the same simulated municipality gives the same features and ranks.

DuckDB (the embedded default) against Spark `local[1]` running the translated SQL
(`tillit.features.spark_sql`). Floats agree to 1e-9 relative (Spark adds in another
order); counts and sums in integer units agree bit for bit. Skips, saying why, when
pyspark or Java is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="the spark extra (pyspark) is not installed")
pytest.importorskip("sqlglot", reason="the spark extra (sqlglot) is not installed")

from tillit.config import FeatureConfig, SimulationConfig
from tillit.data.validate import validate_tables
from tillit.features import build_features, feature_columns, spark_sql
from tillit.features.engine import DuckDBEngine, Result, TableSource
from tillit.features.spark_engine import SparkEngine, java_missing, start_session
from tillit.simulate import simulate

# One Spark session for the module: all its tests on one xdist worker (`--dist loadgroup`).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
# Whole microseconds of visits per provider and month: a sum that must be bit-identical.
INTEGER_SUMS = """
    SELECT provider_id, m, count(*) AS n_visits,
           sum(date_diff('microsecond', start_at, end_at)) AS visit_micros,
           sum(CAST(epoch(end_at - start_at) * 1000 AS BIGINT)) AS visit_millis
    FROM v GROUP BY ALL ORDER BY provider_id, m
"""


# Spark's cost here is in planning its ~50 statements more than in the world's rows.
# A third of the clients irregular: 8 schemes and 6 kinds of finding in 100 clients (the
# 150-client world with the default share left 36 columns constant and hid an evidence
# text that Spark rounded otherwise). Every statement gives rows here (counted below);
# smaller worlds that still do (80 clients, 2 months) ran the module no faster.
WORLD = SimulationConfig(seed=5, clients=100, months=4, irregular_share=0.3, profile="messy")
PERIOD = "2025-04"


class CountingEngine:
    """DuckDB, with each statement's rows and the Spark rewrites it needs kept in `counted`.

    Why: a parity of empty tables says nothing. Every table a statement creates is counted
    after it, every query's result when it is read.
    """

    name = "duckdb"

    def __init__(self) -> None:
        self.inner = DuckDBEngine()
        self.counted: list[tuple[str, int, frozenset[str]]] = []

    def _count(self, sql: str, rows: int) -> None:
        tree = spark_sql.parse(sql)
        needs = {r.construct for node in tree.walk() for r in spark_sql.REWRITES if r.risky(node)}
        self.counted.append((sql.strip().split("\n")[0][:60], rows, frozenset(needs)))

    def execute(self, sql: str) -> Result:
        result = self.inner.execute(sql)
        created = spark_sql.created_relation(spark_sql.parse(sql))
        if created is not None:
            rows = self.inner.fetch(f"SELECT count(*) AS n FROM {created[0]}")["n"].iloc[0]
            self._count(sql, int(rows))
            return result
        return _CountedResult(result, sql, self)

    def register(self, name: str, source: TableSource) -> None:
        self.inner.register(name, source)

    def create_table(self, name: str, sql: str) -> None:
        self.execute(f"CREATE TEMP TABLE {name} AS {sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        out = self.inner.fetch(sql)
        self._count(sql, len(out))
        return out

    def close(self) -> None:
        self.inner.close()


class _CountedResult:
    def __init__(self, result: Result, sql: str, engine: CountingEngine) -> None:
        self.result, self.sql, self.engine = result, sql, engine

    def df(self) -> pd.DataFrame:
        out = self.result.df()
        self.engine._count(self.sql, len(out))
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self.result.fetchall()
        self.engine._count(self.sql, len(rows))
        return rows


@pytest.fixture(scope="module")
def world() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    simulated = simulate(WORLD)
    tables = validate_tables(simulated.tables).tables
    # One invoice of a client no register knows: the feature stage's own quarantine.
    invoices = tables["invoices"]
    stray = invoices[invoices["period"] == PERIOD].tail(1).copy()
    stray["invoice_id"], stray["client_id"] = "I-STRAY", "C-UNKNOWN"
    tables = {**tables, "invoices": pd.concat([invoices, stray], ignore_index=True)}
    return tables, simulated.truth


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkEngine]:
    reason = java_missing()
    if reason is not None:
        pytest.skip(reason)
    session = start_session(
        "local[1]",
        {
            "spark.driver.memory": "512m",
            "spark.sql.shuffle.partitions": "1",
            "spark.sql.adaptive.enabled": "false",
            # No broadcast joins: each broadcast is a job of its own, and the hundreds of
            # small hash relations the cached temp tables keep alive filled the 512 MB heap
            # (68 full GCs). Sort-merge joins give the same rows: 157 -> 85 s of JVM CPU.
            "spark.sql.autoBroadcastJoinThreshold": "-1",
            # Tiny tables: compiling whole stages costs more than it saves.
            "spark.sql.codegen.wholeStage": "false",
            # A short-lived JVM: the quick compiler only and one GC thread spend less CPU
            # than they save on a few hundred small queries (make test shares two cores).
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        },
    )
    engine = SparkEngine(session, owns_session=True)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def both(world: tuple[dict[str, pd.DataFrame], pd.DataFrame], spark: SparkEngine) -> dict[str, Any]:
    tables, _ = world
    duck = DuckDBEngine()
    try:
        on_duckdb = build_features(tables, PERIOD, FeatureConfig(), engine=duck)
        duck_sums = duck.fetch(INTEGER_SUMS)
    finally:
        duck.close()
    on_spark = build_features(tables, PERIOD, FeatureConfig(), engine=spark)
    return {
        "duckdb": on_duckdb,
        "spark": on_spark,
        "duckdb_sums": duck_sums,
        "spark_sums": spark.fetch(INTEGER_SUMS),
    }


def test_every_statement_gives_rows_and_every_rewrite_is_exercised(
    world: tuple[dict[str, pd.DataFrame], pd.DataFrame],
) -> None:
    """Each statement's parity is over rows, not none: the world exercises all of them.

    The one empty result is the stage's own schema probe (`LIMIT 0`); every Spark rewrite
    the statements need is needed by a statement with rows. (A build of its own: the
    counting engine runs the statements in one lane, not DuckDB's two, which the parity
    above keeps; the features are the same bits either way, tests/unit/test_feature_lanes.py.)
    """
    counting = CountingEngine()
    try:
        build_features(world[0], PERIOD, FeatureConfig(), engine=counting)
    finally:
        counting.close()
    counted = counting.counted
    assert len(counted) >= 40
    empty = [first for first, rows, _ in counted if rows == 0]
    assert empty == ["SELECT * FROM tariffs LIMIT 0"], empty
    needed = set().union(*(needs for _, _, needs in counted))
    with_rows = set().union(*(needs for _, rows, needs in counted if rows > 0))
    assert needed == with_rows
    assert {r.construct for r in spark_sql.REWRITES[:6]} <= needed
    assert len(needed) >= 8, needed


def test_the_world_exercises_most_features_and_schemes(
    both: dict[str, Any], world: tuple[dict[str, pd.DataFrame], pd.DataFrame]
) -> None:
    """A parity of constant columns would say little: the small world must vary."""
    duck = both["duckdb"]
    constant = [c for c in duck.features.columns if duck.features[c].nunique(dropna=False) <= 1]
    assert len(constant) <= 24, constant
    schemes = duck.features["invoice_id"].map(world[1].set_index("invoice_id")["scheme"])
    assert schemes.nunique() >= 7, schemes.value_counts()
    assert duck.findings["finding"].nunique() >= 5
    assert "staff_double_booked" in set(duck.findings["finding"])
    assert duck.quarantine["invoice_id"].tolist() == ["I-STRAY"]


def test_features_agree_to_1e9_relative(both: dict[str, Any]) -> None:
    duck, spark = both["duckdb"].features, both["spark"].features
    assert len(duck) > 100
    assert list(duck.columns) == list(spark.columns)
    assert duck["invoice_id"].tolist() == spark["invoice_id"].tolist()
    for column in duck.columns:
        if duck[column].dtype.kind == "f":
            np.testing.assert_allclose(
                spark[column].to_numpy(),
                duck[column].to_numpy(),
                rtol=1e-9,
                atol=1e-12,
                err_msg=column,
            )
        else:
            assert spark[column].astype("str").tolist() == duck[column].astype("str").tolist()


def test_counts_and_integer_sums_are_bit_identical(both: dict[str, Any]) -> None:
    counts = [c for c in feature_columns(FeatureConfig()) if c.endswith("_count")]
    counts += [c for c in both["duckdb"].features.columns if c.startswith("finding_")]
    assert counts
    pd.testing.assert_frame_equal(
        both["spark"].features[counts], both["duckdb"].features[counts], check_exact=True
    )
    integers = {"n_visits": "int64", "visit_micros": "int64", "visit_millis": "int64"}
    duck_sums = both["duckdb_sums"].astype(integers)
    spark_sums = both["spark_sums"].astype(integers)
    assert duck_sums["visit_micros"].sum() > 0
    pd.testing.assert_frame_equal(spark_sums, duck_sums, check_exact=True, check_dtype=False)


def test_findings_evidence_and_quarantine_are_the_same(both: dict[str, Any]) -> None:
    duck, spark = both["duckdb"], both["spark"]
    assert len(duck.findings) > 0
    pd.testing.assert_frame_equal(spark.findings, duck.findings)
    pd.testing.assert_frame_equal(spark.quarantine, duck.quarantine)


def test_a_model_ranks_the_invoices_the_same_on_both(
    both: dict[str, Any], world: tuple[dict[str, pd.DataFrame], pd.DataFrame]
) -> None:
    from lightgbm import LGBMClassifier

    columns = list(feature_columns(FeatureConfig()))
    duck, spark = both["duckdb"].features, both["spark"].features
    truth = world[1].set_index("invoice_id")["irregular"]
    labels = duck["invoice_id"].map(truth).fillna(False).astype(int)
    assert 0 < labels.sum() < len(labels)
    model = LGBMClassifier(
        n_estimators=40,
        num_leaves=7,
        min_child_samples=5,
        n_jobs=1,
        deterministic=True,
        verbose=-1,
    ).fit(duck[columns], labels)
    duck_rank = pd.Series(model.predict_proba(duck[columns])[:, 1]).rank(method="first")
    spark_rank = pd.Series(model.predict_proba(spark[columns])[:, 1]).rank(method="first")
    assert duck_rank.tolist() == spark_rank.tolist()


@pytest.fixture(scope="module")
def registered(
    both: dict[str, Any],
    world: tuple[dict[str, pd.DataFrame], pd.DataFrame],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, Any]:
    """A small risk model of the DuckDB features, registered and signed as `tillit train` does."""
    from tillit import CONTRACT_VERSION
    from tillit.config import BlendConfig
    from tillit.core.registry import ModelRun, register
    from tillit.jobs.common import record_training
    from tillit.modelling.risk_model import fit_risk_model
    from tillit.modelling.scorers import IsolationForestScorer, LightGBMScorer

    features = both["duckdb"].features
    columns = list(feature_columns(FeatureConfig()))
    truth = world[1].set_index("invoice_id")["irregular"]
    labels = features["invoice_id"].map(truth).fillna(False).astype(int).to_numpy()
    X = features[columns].astype("float64")
    iso = IsolationForestScorer(n_estimators=20, random_state=0).fit(X)
    gbm = LightGBMScorer(n_estimators=20, min_child_samples=5).fit(X, labels)
    model = fit_risk_model(
        iso, gbm, features, columns, columns, BlendConfig(), [PERIOD], CONTRACT_VERSION
    )
    store = tmp_path_factory.mktemp("spark-store") / "models"
    ref = register(
        ModelRun(
            model_name="invoice-risk",
            run_name="spark-parity",
            model=model,
            artifact="risk_model",
            tags={},
            params={},
            metrics={},
            signature_input=features.loc[:, columns],
        ),
        store,
    )
    record_training(store, ref, "parity", "parity", {}, [], {})
    return store, ref


def test_executors_score_as_the_driver_does(
    both: dict[str, Any], spark: SparkEngine, registered: tuple[Any, Any]
) -> None:
    from tillit.ops import tracking
    from tillit.review.spark_scores import executor_risk

    store, ref = registered
    client = tracking.connect(store)
    model = tracking.load_risk_model(client, ref, store)  # integrity-verified, on the driver
    features = both["spark"].features
    # Small Arrow batches: each executor batch sees part of the month, and the month's
    # demoted finding types must still be the whole month's.
    spark.session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
    try:
        on_executors = executor_risk(spark.session, client, store, ref, model, features)
    finally:
        spark.session.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    on_driver = model.risk(features)
    assert len(on_executors) == len(features) > 64
    assert on_executors.reindex(features["invoice_id"]).tolist() == on_driver.tolist()
