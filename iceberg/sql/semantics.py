"""Where DuckDB would answer differently from Athena or Redshift: rewrite exactly, or refuse.

Runs on a qualified tree whose expressions carry sqlglot types (``annotate_types``), because most
differences depend on a type: integer division, Redshift's TRUNC of a timestamp, AT TIME ZONE of
a timestamp without zone, decimal averages. A rule that cannot see the type it needs refuses:
an error the analyst can act on is better than a plausible wrong number.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from iceberg.sql.errors import UnsupportedSqlError
from iceberg.sql.names import Dialect

DType = exp.DataType.Type
_FLOATS = {DType.FLOAT, DType.DOUBLE}
_DECIMALS = {DType.DECIMAL, DType.BIGDECIMAL}
_TEXT = {DType.VARCHAR, DType.TEXT, DType.CHAR, DType.NVARCHAR, DType.NCHAR}
_NAIVE_TIMESTAMPS = {
    DType.TIMESTAMP,
    DType.TIMESTAMPNTZ,
    DType.TIMESTAMP_MS,
    DType.TIMESTAMP_S,
    DType.TIMESTAMP_NS,
    DType.DATETIME,
}

#: Functions sqlglot passes through unchanged that DuckDB implements with the same meaning
#: (checked by the query corpus tests). Any other unknown function is refused.
_SAME_MEANING = {"TYPEOF"}


def rewrite_semantics(tree: exp.Expr, dialect: Dialect) -> None:
    rules = _RULES[dialect]
    # Post-order, so a rewritten child is typed before its parent is looked at.
    for node in list(tree.walk(bfs=False))[::-1]:
        rule = rules.get(type(node))
        if rule is not None:
            rule(node)


def _replace(node: exp.Expr, new: exp.Expr) -> None:
    """Replace keeping the type, so rules on the parent still see it."""
    new.type = node.type
    node.replace(new)


def _type(node: exp.Expr) -> exp.DataType | None:
    t = node.type
    if t is None or t.this in (DType.UNKNOWN, DType.NULL):
        return None
    return t


def _describe(node: exp.Expr, dialect: str) -> str:
    text = node.sql(dialect)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(node: exp.Expr, dialect: str, why: str) -> None:
    raise UnsupportedSqlError(f"{_describe(node, dialect)}: {why}")


# ---- rules shared by both dialects ------------------------------------------------------------


def _division(dialect: str) -> Callable[[exp.Expr], None]:
    def rule(node: exp.Expr) -> None:
        left, right = _type(node.this), _type(node.expression)
        if left is None or right is None:
            _refuse(
                node,
                dialect,
                "cannot tell whether this divides integers (which truncates in "
                f"{dialect.capitalize()}); CAST an operand to DOUBLE or BIGINT",
            )
        assert left is not None and right is not None
        kinds = {left.this, right.this}
        if kinds & _DECIMALS and not kinds & _FLOATS:
            _refuse(
                node,
                dialect,
                f"{dialect.capitalize()} rounds DECIMAL division to its own result scale; "
                "CAST an operand to DOUBLE, or ROUND the DOUBLE result",
            )
        if left.is_type(*exp.DataType.INTEGER_TYPES) and right.is_type(*exp.DataType.INTEGER_TYPES):
            _replace(node, _integer_division(node.this, node.expression))

    return rule


def _integer_division(left: exp.Expr, right: exp.Expr) -> exp.Expr:
    # Both engines truncate toward zero and fail on a zero divisor. DuckDB's // truncates toward
    # zero exactly (sqlglot's TRUNC(a / b) goes through DOUBLE and is wrong past 2^53), but
    # answers NULL for a zero divisor: raise instead, as Athena and Redshift do.
    divisor = right.copy()
    failure = exp.Anonymous(this="ERROR", expressions=[exp.Literal.string("Division by zero")])
    zero = exp.EQ(this=divisor, expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=zero, true=failure)], default=exp.IntDiv(this=left, expression=right))


def _average(dialect: str) -> Callable[[exp.Expr], None]:
    def rule(node: exp.Expr) -> None:
        arg = _type(node.this)
        if arg is None:
            _refuse(node, dialect, "cannot tell the argument's type; CAST it to DOUBLE")
        assert arg is not None
        if arg.this in _DECIMALS:
            _refuse(
                node,
                dialect,
                f"{dialect.capitalize()} returns a DECIMAL average at the argument's scale "
                "(not DuckDB's DOUBLE); use AVG(CAST(x AS DOUBLE)) (and ROUND it if needed)",
            )
        if dialect == "redshift" and arg.is_type(*exp.DataType.INTEGER_TYPES):
            _refuse(
                node,
                dialect,
                "Redshift's AVG of an integer returns a truncated integer; "
                "use AVG(CAST(x AS DOUBLE PRECISION))",
            )

    return rule


def _exact_distinct_count(node: exp.Expr) -> None:
    # approx_distinct / APPROXIMATE COUNT(DISTINCT): the exact count is within any estimator's
    # error bound, and it is the same on every run.
    _replace(node, exp.Count(this=exp.Distinct(expressions=[node.this])))


def _refuse_approximate(dialect: str) -> Callable[[exp.Expr], None]:
    def rule(node: exp.Expr) -> None:
        _refuse(node, dialect, "approximate results depend on the engine; use the exact function")

    return rule


def _unknown_function(dialect: str) -> Callable[[exp.Expr], None]:
    def rule(node: exp.Expr) -> None:
        name = str(node.this).upper()
        if name == "AT_TIMEZONE" and dialect == "athena":
            value, zone = node.expressions
            _replace(node, _at_time_zone(value, zone))
            return
        if name.startswith("APPROX"):
            _refuse(node, dialect, "approximate results depend on the engine; use the exact function")
        if name not in _SAME_MEANING:
            _refuse(node, dialect, f"function {name} has no verified translation to the local engine")

    return rule


# ---- Athena (Trino) ---------------------------------------------------------------------------


def _at_time_zone(value: exp.Expr, zone: exp.Expr) -> exp.Expr:
    # Trino reads a timestamp without zone in the session zone (UTC); DuckDB would read it in the
    # target zone. Making it a UTC instant first gives Trino's wall-clock time in ``zone``.
    t = _type(value)
    if t is None:
        raise UnsupportedSqlError(f"AT TIME ZONE of {value.sql('athena')}: cannot tell its type; CAST it")
    if t.this in _NAIVE_TIMESTAMPS:
        value = exp.cast(value, exp.DataType.build("TIMESTAMPTZ"))
    return exp.AtTimeZone(this=value, zone=zone)


def _athena_at_time_zone(node: exp.Expr) -> None:
    if node.meta.get("rb_done"):
        return
    replacement = _at_time_zone(node.this, node.args["zone"])
    replacement.meta["rb_done"] = True
    _replace(node, replacement)


def _athena_date_diff(node: exp.Expr) -> None:
    # Trino counts whole units elapsed (23:00 -> 01:00 the next day is 0 days); DuckDB's DATE_DIFF
    # counts boundaries crossed (1 day). DuckDB's DATE_SUB counts whole units, like Trino.
    unit = node.args.get("unit")
    part = unit.name if unit is not None else "DAY"
    args = [exp.Literal.string(part.lower()), node.expression, node.this]
    _replace(node, exp.Anonymous(this="DATE_SUB", expressions=args))


def _athena_date_add(node: exp.Expr) -> None:
    # Trino keeps a DATE a DATE (date_add('month', 1, DATE '2024-01-31') = DATE '2024-02-29');
    # DuckDB's DATE + INTERVAL is a TIMESTAMP.
    t = _type(node.this)
    if t is not None and t.this == DType.DATE:
        wrapped = exp.cast(node.copy(), exp.DataType.build("DATE"))
        _replace(node, wrapped)
        wrapped.type = exp.DataType.build("DATE")


def _athena_cast(node: exp.Expr) -> None:
    source = _type(node.this)
    target = node.args["to"]
    if source is not None and source.this in _FLOATS and target.this in _TEXT:
        _refuse(
            node,
            "athena",
            "Athena prints DOUBLE as text in scientific notation (1.5E0); use format('%.2f', x) "
            "or CAST to DECIMAL first",
        )


def _joda_format(node: exp.Expr) -> None:
    _refuse(
        node, "athena", "Joda-Time patterns are not translated; use date_parse / date_format (MySQL patterns)"
    )


# ---- Redshift ---------------------------------------------------------------------------------


def _redshift_trunc(node: exp.Expr) -> None:
    if node.args.get("decimals") is not None:
        return  # TRUNC(number, places): numeric on both engines
    t = _type(node.this)
    if t is None:
        _refuse(node, "redshift", "TRUNC of an expression of unknown type; use DATE_TRUNC or CAST it")
    assert t is not None
    if t.is_type(*exp.DataType.TEMPORAL_TYPES):
        # Redshift's TRUNC(timestamp) is the DATE of that day.
        day = exp.DateTrunc(unit=exp.Literal.string("DAY"), this=node.this)  # type: ignore[no-untyped-call]
        as_date = exp.cast(day, exp.DataType.build("DATE"))
        node.replace(as_date)
        as_date.type = exp.DataType.build("DATE")


def _redshift_listagg(node: exp.Expr) -> None:
    # sqlglot reads LISTAGG(DISTINCT x, ',') as DISTINCT over the pair (x, ','): move the
    # delimiter back where it belongs.
    distinct = node.this
    if (
        isinstance(distinct, exp.Distinct)
        and len(distinct.expressions) == 2
        and node.args.get("separator") is None
    ):
        value, separator = distinct.expressions
        node.set("this", exp.Distinct(expressions=[value]))
        node.set("separator", separator)


def _extract_in_utc(node: exp.Expr) -> None:
    # Both engines extract from a lake TIMESTAMPTZ (stored in UTC) in UTC; so does this UTC session
    # once the value is a plain TIMESTAMP (sqlglot otherwise refuses EXTRACT on zoned values).
    # at_timezone results are already plain local timestamps here, so their fields stay local.
    value = node.expression
    t = _type(value)
    if t is not None and t.this in (DType.TIMESTAMPTZ, DType.TIMESTAMPLTZ):
        plain = exp.cast(value.copy(), exp.DataType.build("TIMESTAMP"))
        plain.type = exp.DataType.build("TIMESTAMP")
        value.replace(plain)


def _rules(dialect: Dialect) -> dict[type[exp.Expr], Callable[[exp.Expr], None]]:
    shared: dict[type[exp.Expr], Callable[[exp.Expr], None]] = {
        exp.Div: _division(dialect),
        exp.Avg: _average(dialect),
        exp.ApproxDistinct: _exact_distinct_count,
        exp.ApproxQuantile: _refuse_approximate(dialect),
        exp.Anonymous: _unknown_function(dialect),
    }
    if dialect == "athena":
        shared.update(
            {
                exp.AtTimeZone: _athena_at_time_zone,
                exp.DateDiff: _athena_date_diff,
                exp.DateAdd: _athena_date_add,
                exp.Extract: _extract_in_utc,
                exp.Cast: _athena_cast,
                exp.TryCast: _athena_cast,
                exp.ParseDatetime: _joda_format,
            }
        )
    else:
        shared.update(
            {exp.Trunc: _redshift_trunc, exp.GroupConcat: _redshift_listagg, exp.Extract: _extract_in_utc}
        )
    return shared


_RULES: dict[Dialect, dict[type[exp.Expr], Callable[[exp.Expr], None]]] = {
    "athena": _rules("athena"),
    "redshift": _rules("redshift"),
}
