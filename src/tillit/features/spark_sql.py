"""DuckDB feature SQL rewritten for Spark: every rewrite SQLGlot's own translation needs, in one place.

Why: SQLGlot translates the DuckDB dialect to Spark's, but a handful of constructs come out
wrong, some with an error and some silently (a feasibility probe ran 5 of 20 feature
statements as translated). Each such construct has an entry in `REWRITES`: what it is,
what goes wrong without the rewrite, and the function that rewrites the syntax tree.
`unhandled(tree)` lists the risky constructs of a statement that no rewrite covers:
`translate` refuses such a statement, and tests/unit/test_spark_sql.py fails the build
when the feature stage issues one. This module needs sqlglot only, not pyspark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

# The columns of a table or view the engine holds, by name (for `t.* EXCLUDE (...)`).
ColumnsOf = Callable[[str], Sequence[str]]


class UntranslatableSql(ValueError):
    """A statement holds a construct that has no Spark rewrite (see `REWRITES`)."""


@dataclass(frozen=True)
class Rewrite:
    """One construct SQLGlot's DuckDB-to-Spark translation gets wrong, and its fix.

    Attributes:
        construct: the DuckDB construct, in words.
        fault: what Spark does with SQLGlot's translation of it.
        risky: True for a node of this construct.
        handles: True when `rewrite` can rewrite this node (False: the statement is refused).
        rewrite: the node as Spark must see it, built from the (already rewritten) node.
    """

    construct: str
    fault: str
    risky: Callable[[exp.Expr], bool]
    handles: Callable[[exp.Expr], bool]
    rewrite: Callable[[exp.Expr, ColumnsOf | None], exp.Expr | list[exp.Expr]]


def _func(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _double(node: exp.Expr) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build("double"))


def _date(node: exp.Expr) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build("date"))


# --- decimal literals ---------------------------------------------------------------------


def _is_decimal_literal(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Literal)
        and not node.is_string
        and any(c in node.this.lower() for c in ".e")
    )


def _literal_as_double(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    return _double(node.copy())


# --- epoch of an interval -----------------------------------------------------------------


def _is_epoch(node: exp.Expr) -> bool:
    return isinstance(node, exp.TimeToUnix)


def _epoch_of_difference(node: exp.Expr) -> bool:
    return isinstance(node.this, exp.Sub)


def _epoch_seconds(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    """`epoch(a - b)`: seconds as a double, from whole microseconds (as DuckDB computes it)."""
    later, earlier = node.this.this.copy(), node.this.expression.copy()
    micros = _func("TIMESTAMPDIFF", exp.var("MICROSECOND"), earlier, later)
    return exp.Paren(
        this=exp.Div(this=_double(micros), expression=_double(exp.Literal.number(1_000_000)))
    )


# --- ordered list aggregates --------------------------------------------------------------


def _is_ordered_aggregate(node: exp.Expr) -> bool:
    return isinstance(node, exp.ArrayAgg | exp.GroupConcat) and isinstance(node.this, exp.Order)


def _parts(node: exp.Expr) -> tuple[exp.Expr, bool, list[exp.Ordered]]:
    """The aggregated value, DISTINCT or not, and the ORDER BY keys of `list(... ORDER BY ...)`."""
    order = node.this
    value = order.this
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        value = value.expressions[0]
    return value, distinct, list(order.expressions)


def _sortable(node: exp.Expr) -> bool:
    """Ascending keys only; DISTINCT only when the value is its own only key (then the same set)."""
    value, distinct, keys = _parts(node)
    if any(key.args.get("desc") for key in keys):
        return False
    return not distinct or (len(keys) == 1 and keys[0].this == value)


def _sorted_list(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    """`list(v ORDER BY k1, k2)` as `transform(array_sort(collect_list(struct)), s -> s.v)`.

    Spark's collect_list keeps no order. The struct sorts by (k1 IS NULL, k1, k2 IS NULL,
    k2, v): ascending with NULLS LAST, as DuckDB orders by default, and the struct itself
    is never NULL, so NULL values stay in the list as DuckDB's list() keeps them.
    """
    value, distinct, keys = _parts(node)
    fields: list[exp.Expr] = []
    for i, key in enumerate(keys):
        nulls_first = bool(key.args.get("nulls_first"))
        missing = exp.Is(this=key.this.copy(), expression=exp.Null())
        fields += [exp.Literal.string(f"n{i}"), exp.Not(this=missing) if nulls_first else missing]
        fields += [exp.Literal.string(f"k{i}"), key.this.copy()]
    fields += [exp.Literal.string("v"), value.copy()]
    collected: exp.Expr = exp.ArrayAgg(this=_func("NAMED_STRUCT", *fields))
    if distinct:
        collected = _func("ARRAY_DISTINCT", collected)
    element = exp.to_identifier("tillit_item")
    values = _func(
        "TRANSFORM",
        _func("ARRAY_SORT", collected),
        exp.Lambda(this=exp.column("v", table="tillit_item"), expressions=[element]),
    )
    if isinstance(node, exp.GroupConcat):
        separator = node.args.get("separator") or exp.Literal.string(",")
        return _func("ARRAY_JOIN", values, separator.copy())
    return values


# --- list slices --------------------------------------------------------------------------


def _is_slice(node: exp.Expr) -> bool:
    return isinstance(node, exp.Bracket) and any(isinstance(e, exp.Slice) for e in node.expressions)


def _bounded_slice(node: exp.Expr) -> bool:
    if len(node.expressions) != 1:
        return False
    piece = node.expressions[0]
    return all(
        isinstance(bound, exp.Literal) and bound.is_int and int(bound.this) >= 1
        for bound in (piece.this, piece.expression)
    )


def _slice(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    """DuckDB `list[a:b]` (1-based, both ends kept) as Spark `slice(list, a, b - a + 1)`."""
    piece = node.expressions[0]
    start, end = int(piece.this.this), int(piece.expression.this)
    return _func(
        "SLICE", node.this.copy(), exp.Literal.number(start), exp.Literal.number(end - start + 1)
    )


# --- day differences ----------------------------------------------------------------------


def _is_date_diff(node: exp.Expr) -> bool:
    return isinstance(node, exp.DateDiff)


def _unit(node: exp.Expr) -> str:
    unit = node.args.get("unit")
    return "" if unit is None else unit.name.upper()


def _day_diff(node: exp.Expr) -> bool:
    return _unit(node) in ("DAY", "MICROSECOND")


def _days_between(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    """DuckDB `date_diff('day', a, b)` counts midnights crossed: Spark `datediff` of the dates.

    `date_diff('microsecond', a, b)` is the exact difference: Spark's TIMESTAMPDIFF.
    """
    if _unit(node) == "MICROSECOND":
        return _func(
            "TIMESTAMPDIFF", exp.var("MICROSECOND"), node.expression.copy(), node.this.copy()
        )
    return _func("DATEDIFF", _date(node.this.copy()), _date(node.expression.copy()))


# --- casts to integers --------------------------------------------------------------------

_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INT", "BIGINT", "HUGEINT"})


def _is_integer_cast(node: exp.Expr) -> bool:
    return isinstance(node, exp.Cast) and node.to.this.name in _INTEGER_TYPES


def _as_integer(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    """DuckDB rounds a number cast to an integer (half to even); Spark truncates it.

    Text (a column as typed by the contract, a literal, a substring) is cast as it is.
    """
    value = node.this
    if isinstance(value, exp.Column | exp.Literal | exp.Substring):
        return node
    return exp.Cast(this=_func("BROUND", value.copy()), to=node.args["to"].copy())


# --- SELECT t.* EXCLUDE (...) -------------------------------------------------------------


def _is_star_exclude(node: exp.Expr) -> bool:
    if isinstance(node, exp.Star) and isinstance(node.parent, exp.Column):
        return False  # the column `cte.*` around it is the construct
    star = node.this if isinstance(node, exp.Column) else node
    return isinstance(star, exp.Star) and bool(star.args.get("except_") or star.args.get("except"))


def _excluded(node: exp.Expr) -> tuple[str, set[str]]:
    star = node.this if isinstance(node, exp.Column) else node
    names = star.args.get("except_") or star.args.get("except") or []
    return (node.table if isinstance(node, exp.Column) else ""), {n.name for n in names}


def _relation(node: exp.Expr) -> tuple[str, exp.Select | None]:
    """What `alias.*` reads: a table name, or the body of a CTE of that name."""
    alias, _ = _excluded(node)
    select = node.find_ancestor(exp.Select)
    name = alias
    if select is not None:
        for table in select.find_all(exp.Table):
            if table.alias_or_name == alias:
                name = table.name
                break
    scope = select
    while scope is not None:
        with_ = scope.args.get("with_") or scope.args.get("with")
        for cte in with_.expressions if with_ else []:
            if cte.alias_or_name == name and isinstance(cte.this, exp.Select):
                return name, cte.this
        scope = scope.find_ancestor(exp.Select)
    return name, None


def _qualified(node: exp.Expr) -> bool:
    """`alias.* EXCLUDE (...)`: the alias names a relation whose columns can be listed."""
    return isinstance(node, exp.Column) and bool(node.table)


def _expand_star(node: exp.Expr, columns_of: ColumnsOf | None) -> list[exp.Expr]:
    """`alias.* EXCLUDE (a, b)` as the relation's other columns: Spark has no EXCLUDE.

    A CTE's columns are its select list; a table's come from the engine (`columns_of`).
    """
    alias, dropped = _excluded(node)
    name, body = _relation(node)
    if body is not None and not any(p.is_star for p in body.expressions):
        columns = [p.alias_or_name for p in body.expressions]
    elif body is None and columns_of is not None:
        columns = list(columns_of(name))
    else:
        raise UntranslatableSql(f"the columns of {name!r} are not known for {node.sql('duckdb')}")
    return [exp.column(c, table=alias) for c in columns if c not in dropped]


# --- constructs with no rewrite: always refused -------------------------------------------


def _is_asof(node: exp.Expr) -> bool:
    return isinstance(node, exp.Join) and str(node.args.get("method") or "").upper() == "ASOF"


def _never(node: exp.Expr) -> bool:
    return False


def _always(node: exp.Expr) -> bool:
    return True


def _unknown_function(node: exp.Expr) -> bool:
    """A function SQLGlot does not know: passed through by name, meaning unchecked."""
    return isinstance(node, exp.Anonymous) and node.name.upper() not in _SPARK_NATIVE


# Functions written the same and meaning the same in both engines (checked by the parity test).
_SPARK_NATIVE: frozenset[str] = frozenset()


def _unchanged(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    return node


def _is_quantile(node: exp.Expr) -> bool:
    return isinstance(node, exp.PercentileCont)


def _quantile_of_column(node: exp.Expr) -> bool:
    """quantile_cont(x, p): the form with the value and the fraction as arguments."""
    return node.args.get("expression") is not None


def _exact_percentile(node: exp.Expr, columns_of: ColumnsOf | None) -> exp.Expr:
    return _func("percentile", node.this, node.args["expression"])


REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        "decimal literal (1.0, 0.25)",
        "kept as DECIMAL: Spark then does decimal arithmetic (avg of 1.0/0.0 gives a decimal "
        "of another scale, and a product can overflow), where DuckDB casts to DOUBLE",
        _is_decimal_literal,
        _is_decimal_literal,
        _literal_as_double,
    ),
    Rewrite(
        "epoch(a - b), seconds of an interval",
        "becomes unix_timestamp(interval): an error",
        _is_epoch,
        _epoch_of_difference,
        _epoch_seconds,
    ),
    Rewrite(
        "list(v ORDER BY k) and string_agg(v, sep ORDER BY k)",
        "becomes collect_list(v): the ORDER BY is dropped and the order lost, silently",
        _is_ordered_aggregate,
        _sortable,
        _sorted_list,
    ),
    Rewrite(
        "list slice l[a:b]",
        "kept as a slice: a syntax error in Spark",
        _is_slice,
        _bounded_slice,
        _slice,
    ),
    Rewrite(
        "date_diff('day'|'microsecond', a, b) of timestamps",
        "becomes DATEDIFF(DAY, a, b), whole 24-hour spans, where DuckDB counts midnights",
        _is_date_diff,
        _day_diff,
        _days_between,
    ),
    Rewrite(
        "CAST(number AS integer type)",
        "Spark truncates toward zero where DuckDB rounds half to even",
        _is_integer_cast,
        _always,
        _as_integer,
    ),
    Rewrite(
        "cte.* EXCLUDE (columns)",
        "becomes * EXCEPT (...), which Spark does not parse",
        _is_star_exclude,
        _qualified,
        _expand_star,
    ),
    Rewrite(
        "quantile_cont(x, p)",
        "becomes PERCENTILE_CONT(x, p), which Spark refuses (it takes one argument and a WITHIN "
        "GROUP order); Spark's exact percentile(x, p) interpolates linearly as DuckDB does "
        "(the WITHIN GROUP form is translated to an approximate percentile: refused)",
        _is_quantile,
        _quantile_of_column,
        _exact_percentile,
    ),
    Rewrite(
        "ASOF JOIN",
        "Spark has no ASOF join: SQLGlot drops the keyword and joins on the inequality",
        _is_asof,
        _never,
        _unchanged,
    ),
    Rewrite(
        "function SQLGlot does not know",
        "passed through by name: Spark may lack it or mean something else",
        _unknown_function,
        _never,
        _unchanged,
    ),
)
# Risky constructs SQLGlot itself translates correctly (kept here so the check names them):
# integer division `//` becomes DIV; `/` of integers gives a double in both engines;
# ORDER BY and window ORDER BY get an explicit NULLS LAST (DuckDB's default, not Spark's);
# 1-based list indexes are shifted to Spark's 0-based ones; strftime patterns become
# date_format patterns; median, stddev_pop, any_value, FILTER (WHERE) and GROUP BY ALL
# exist in Spark 4 as written.


def parse(sql: str) -> exp.Expr:
    """One DuckDB statement as a syntax tree."""
    return sqlglot.parse_one(sql, read="duckdb")


def unhandled(tree: exp.Expr) -> list[str]:
    """The risky constructs in `tree` that no rewrite covers, as `construct: SQL` lines."""
    found = []
    for node in tree.walk():
        for rule in REWRITES:
            if rule.risky(node) and not rule.handles(node):
                found.append(f"{rule.construct}: {node.sql('duckdb')[:120]}")
    return found


def rewrite(tree: exp.Expr, columns_of: ColumnsOf | None = None) -> exp.Expr:
    """A copy of `tree` with every risky construct rewritten for Spark (innermost first).

    Raises:
        UntranslatableSql: a construct without a rewrite.
    """
    missing = unhandled(tree)
    if missing:
        raise UntranslatableSql("no Spark rewrite for " + "; ".join(missing))
    tree = tree.copy()
    # Children before parents: a parent's rewrite copies its already rewritten children.
    for node in reversed(list(tree.walk(bfs=False))):
        rule = next((r for r in REWRITES if r.risky(node)), None)
        if rule is None:
            continue
        new = rule.rewrite(node, columns_of)
        if isinstance(new, list):
            parent, key = node.parent, node.arg_key
            if parent is None or key is None:
                raise UntranslatableSql(f"nowhere to put the columns of {node.sql('duckdb')}")
            items = parent.args[key]
            index = next(i for i, item in enumerate(items) if item is node)
            parent.set(key, items[:index] + new + items[index + 1 :])
        elif new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


def translate(statement: str | exp.Expr, columns_of: ColumnsOf | None = None) -> str:
    """A DuckDB statement as Spark SQL; `columns_of` lists a table's columns (the engine's).

    Raises:
        UntranslatableSql: a construct without a rewrite.
    """
    tree = parse(statement) if isinstance(statement, str) else statement
    return rewrite(tree, columns_of).sql(dialect="spark")


def created_relation(tree: exp.Expr) -> tuple[str, exp.Expr, bool] | None:
    """For `CREATE [TEMP] TABLE|VIEW name AS query`: name, query, and whether to keep the rows."""
    if not isinstance(tree, exp.Create) or not isinstance(tree.expression, exp.Query):
        return None
    kind = str(tree.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        return None
    return tree.this.name, tree.expression, kind == "TABLE"


__all__ = [
    "REWRITES",
    "Rewrite",
    "UntranslatableSql",
    "created_relation",
    "parse",
    "rewrite",
    "translate",
    "unhandled",
]
