"""The DuckDB-to-Spark translation of the feature SQL: sqlglot only, no Spark, no Java.

The check that fails the build: every statement the feature stage issues (recorded while
building features of a small simulated world) parses, holds no risky construct without a
rewrite in `tillit.features.spark_sql.REWRITES`, and translates.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sqlglot", reason="the spark extra (sqlglot) is not installed")

from tillit.config import FeatureConfig, SimulationConfig
from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.features import spark_sql as ss
from tillit.features.engine import DuckDBEngine, RecordingEngine
from tillit.features.providers import register_profile
from tillit.simulate import simulate


@pytest.fixture(scope="module")
def feature_statements() -> list[str]:
    """Every statement the invoice features and the provider register profile issue."""
    world = simulate(SimulationConfig(seed=11, clients=150, months=4, profile="messy"))
    tables = validate_tables(world.tables).tables
    invoices, register = RecordingEngine(DuckDBEngine()), RecordingEngine(DuckDBEngine())
    try:
        built = build_features(tables, ["2025-03", "2025-04"], FeatureConfig(), engine=invoices)
        register_profile(tables, "2025-04", FeatureConfig(), engine=register)
    finally:
        invoices.close()
        register.close()
    assert len(built.features) > 0
    return invoices.statements + register.statements


def test_every_feature_statement_has_a_rewrite_for_each_risky_construct(
    feature_statements: list[str],
) -> None:
    assert len(feature_statements) >= 30
    missing = {s[:80]: ss.unhandled(ss.parse(s)) for s in feature_statements}
    assert {k: v for k, v in missing.items() if v} == {}

    def columns_of(name: str) -> list[str]:
        return ["provider_id", "m", "n"]  # what the engine would answer

    for statement in feature_statements:
        ss.translate(statement, columns_of)


def test_the_stage_uses_the_constructs_the_rewrites_exist_for(
    feature_statements: list[str],
) -> None:
    """The rewrites are not dead code: each known fault occurs in today's statements."""
    used = {
        rule.construct
        for statement in feature_statements
        for node in ss.parse(statement).walk()
        for rule in ss.REWRITES
        if rule.risky(node)
    }
    assert {r.construct for r in ss.REWRITES[:6]} <= used


def _spark(sql: str) -> str:
    return ss.translate(sql)


def test_epoch_of_an_interval_becomes_whole_microseconds_over_a_million() -> None:
    assert _spark("SELECT epoch(b - a) / 60.0 FROM t") == (
        "SELECT (CAST(TIMESTAMPDIFF(MICROSECOND, a, b) AS DOUBLE) / CAST(1000000 AS DOUBLE))"
        " / CAST(60.0 AS DOUBLE) FROM t"
    )


def test_an_ordered_list_keeps_its_order_and_nulls_last() -> None:
    assert _spark("SELECT list(v ORDER BY k) FROM t GROUP BY ALL") == (
        "SELECT TRANSFORM(ARRAY_SORT(COLLECT_LIST(NAMED_STRUCT('n0', k IS NULL, 'k0', k, "
        "'v', v))), tillit_item -> tillit_item.v) FROM t GROUP BY ALL"
    )


def test_a_list_slice_becomes_slice_with_a_length() -> None:
    assert _spark("SELECT list(DISTINCT v ORDER BY v)[1:5] FROM t") == (
        "SELECT SLICE(TRANSFORM(ARRAY_SORT(ARRAY_DISTINCT(COLLECT_LIST(NAMED_STRUCT("
        "'n0', v IS NULL, 'k0', v, 'v', v)))), tillit_item -> tillit_item.v), 1, 5) FROM t"
    )


def test_an_ordered_string_agg_is_joined_after_sorting() -> None:
    assert _spark("SELECT string_agg(r, ', ' ORDER BY r) FROM t") == (
        "SELECT ARRAY_JOIN(TRANSFORM(ARRAY_SORT(COLLECT_LIST(NAMED_STRUCT('n0', r IS NULL, "
        "'k0', r, 'v', r))), tillit_item -> tillit_item.v), ', ') FROM t"
    )


def test_a_quantile_becomes_spark_s_exact_percentile() -> None:
    """PERCENTILE_CONT(x, p), SQLGlot's translation, is refused by Spark (one argument)."""
    assert _spark("SELECT quantile_cont(a / CAST(b AS DOUBLE), 0.75) FROM k GROUP BY c") == (
        "SELECT PERCENTILE(a / CAST(b AS DOUBLE), CAST(0.75 AS DOUBLE)) FROM k GROUP BY c"
    )


def test_day_differences_count_midnights_and_decimals_are_doubles() -> None:
    assert _spark("SELECT date_diff('day', a, b) * 0.5 FROM t") == (
        "SELECT DATEDIFF(CAST(b AS DATE), CAST(a AS DATE)) * CAST(0.5 AS DOUBLE) FROM t"
    )


def test_exclude_of_a_cte_star_is_expanded_from_its_select_list() -> None:
    sql = "WITH w AS (SELECT p, m, count(*) AS n, sum(x) AS s FROM t GROUP BY ALL) "
    assert _spark(sql + "SELECT w.* EXCLUDE (p, m) FROM w") == (
        "WITH w AS (SELECT p, m, COUNT(*) AS n, SUM(x) AS s FROM t GROUP BY ALL) "
        "SELECT w.n, w.s FROM w"
    )


def test_exclude_of_a_table_star_asks_the_engine_for_its_columns() -> None:
    sql = "SELECT t.k, e.* EXCLUDE (k) FROM t JOIN events AS e USING (k)"
    columns = {"events": ["k", "a", "b"]}
    assert ss.translate(sql, columns.__getitem__) == (
        "SELECT t.k, e.a, e.b FROM t JOIN events AS e USING (k)"
    )
    with pytest.raises(ss.UntranslatableSql, match="not known"):
        ss.translate(sql)


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT * FROM t ASOF JOIN u ON t.k = u.k AND t.at >= u.at", "ASOF JOIN"),
        ("SELECT list(v ORDER BY k DESC) FROM t", "list(v ORDER BY k)"),
        ("SELECT list(DISTINCT v ORDER BY k) FROM t", "list(v ORDER BY k)"),
        ("SELECT list(v)[i:5] FROM t", "list slice"),
        ("SELECT date_diff('hour', a, b) FROM t", "date_diff('day'"),
        ("SELECT epoch(a) FROM t", "epoch(a - b)"),
        ("SELECT * EXCLUDE (a) FROM t", "EXCLUDE"),
        ("SELECT tillit_made_up(a) FROM t", "function SQLGlot does not know"),
        ("SELECT percentile_cont(0.75) WITHIN GROUP (ORDER BY x) FROM t", "quantile_cont"),
    ],
)
def test_a_construct_without_a_rewrite_is_refused(sql: str, construct: str) -> None:
    found = ss.unhandled(ss.parse(sql))
    assert found and construct in found[0]
    with pytest.raises(ss.UntranslatableSql, match="no Spark rewrite"):
        ss.translate(sql)


def test_create_table_keeps_rows_and_create_view_does_not() -> None:
    table = ss.created_relation(ss.parse("CREATE TEMP TABLE a AS SELECT 1 AS x"))
    view = ss.created_relation(ss.parse("CREATE TEMP VIEW b AS SELECT 1 AS x"))
    assert table is not None and (table[0], table[2]) == ("a", True)
    assert view is not None and (view[0], view[2]) == ("b", False)
    assert ss.created_relation(ss.parse("SELECT 1")) is None


def test_numbers_cast_to_integers_round_half_to_even_as_duckdb_does() -> None:
    assert _spark("SELECT CAST(x * 2 AS BIGINT), CAST(substr(p, 1, 4) AS BIGINT) FROM t") == (
        "SELECT CAST(BROUND(x * 2) AS BIGINT), CAST(SUBSTRING(p, 1, 4) AS BIGINT) FROM t"
    )
