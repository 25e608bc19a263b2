"""Athena (Trino) or Redshift SQL to DuckDB SQL over the lake's tables, refusing what would differ.

The query is parsed with sqlglot, every table reference is bound to a DuckDB view of one Iceberg
snapshot (time-travel clauses included), the tree is qualified and typed against those views'
columns, then the semantic rewrites and refusals of :mod:`iceberg.sql.semantics` run on the typed
tree before DuckDB SQL is generated with unsupported constructs raising. Nothing here touches
DuckDB or the catalog: a :class:`Binder` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import sqlglot
from sqlglot import ErrorLevel, TokenType, exp
from sqlglot.errors import OptimizeError, ParseError, UnsupportedError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from iceberg.sql.errors import SqlError, SqlSyntaxError, UnsupportedSqlError
from iceberg.sql.lake import AsOf, LakeTable, TimestampAsOf, VersionAsOf
from iceberg.sql.names import Dialect, TableName
from iceberg.sql.semantics import rewrite_semantics

#: sqlglot's dialect for each query dialect (sqlglot's athena parses queries as Trino, engine v3).
READ_DIALECT: dict[Dialect, str] = {"athena": "athena", "redshift": "redshift"}
_ATHENA_V2_CLAUSES = {"SYSTEM_TIME": "TIMESTAMP", "SYSTEM_VERSION": "VERSION"}
_GENERATED_NAME = re.compile(r"_col_(\d+)")


@dataclass(frozen=True)
class BoundTable:
    """One table reference bound to a DuckDB view of one snapshot."""

    view: str
    table: LakeTable
    #: Column name -> DuckDB type, as the view reads them.
    columns: dict[str, str]


class Binder(Protocol):
    def resolve(self, ref: TableName) -> LakeTable: ...

    def bind(self, ref: TableName, as_of: AsOf | None) -> BoundTable: ...

    def epoch_ms(self, duckdb_expression: str) -> int:
        """Evaluate a timestamp expression (DuckDB SQL, UTC session) to epoch milliseconds."""
        ...


def translate(sql: str, dialect: Dialect, binder: Binder) -> str:
    """DuckDB SQL answering ``sql`` exactly as Athena or Redshift would, or an SqlError saying why not."""
    read = READ_DIALECT[dialect]
    tree = parse_query(_athena_v2_time_travel(sql) if dialect == "athena" else sql, dialect)
    schema = _bind_tables(tree, dialect, binder)
    try:
        tree = qualify(tree, dialect=read, schema=schema, identify=False, validate_qualify_columns=True)
        tree = annotate_types(tree, schema=schema, dialect=read)
    except OptimizeError as exc:
        raise SqlError(f"cannot resolve the query's columns: {exc}") from None
    rewrite_semantics(tree, dialect)
    _engine_column_names(tree)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise UnsupportedSqlError(f"cannot translate to the local engine: {reason}") from None


def parse_query(sql: str, dialect: Dialect) -> exp.Query:
    """Exactly one read-only query (SELECT, set operation, WITH); anything else is refused."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=READ_DIALECT[dialect]) if s is not None]
    except ParseError as exc:
        raise SqlSyntaxError(f"not valid {dialect} SQL: {_first_error(exc)}") from None
    if len(statements) != 1:
        raise SqlSyntaxError(f"expected one statement, got {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        kind = statement.key.upper()
        raise UnsupportedSqlError(f"riverbank sql answers queries only (read-only lake); got {kind}")
    return statement


def _first_error(exc: ParseError) -> str:
    if exc.errors:
        first = exc.errors[0]
        return f"{first.get('description')} at line {first.get('line')}, column {first.get('col')}"
    return str(exc)


def _athena_v2_time_travel(sql: str) -> str:
    """Athena engine v2's ``FOR SYSTEM_TIME|SYSTEM_VERSION AS OF``, still accepted by v3, as v3 syntax.

    Done on tokens, so the same words inside a string literal or a quoted name are left alone.
    """
    try:
        tokens = sqlglot.Dialect.get_or_raise("athena").tokenize(sql)
    except sqlglot.errors.TokenError:
        return sql  # the parser reports the problem with its position
    edits: list[tuple[int, int, str]] = []
    for i in range(len(tokens) - 3):
        word = tokens[i + 1]
        if (
            tokens[i].token_type == TokenType.FOR
            and word.token_type == TokenType.VAR
            and word.text.upper() in _ATHENA_V2_CLAUSES
            and tokens[i + 2].text.upper() == "AS"
            and tokens[i + 3].text.upper() == "OF"
        ):
            edits.append((word.start, word.end, _ATHENA_V2_CLAUSES[word.text.upper()]))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end + 1 :]
    return sql


def _bind_tables(tree: exp.Query, dialect: Dialect, binder: Binder) -> MappingSchema:
    """Point every lake table reference at its snapshot's view; the views' columns, for typing."""
    columns: dict[str, object] = {}
    default_aliases: dict[LakeTable, str] = {}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise UnsupportedSqlError(
                f"table functions are not supported: {table.sql(READ_DIALECT[dialect])}"
            )
        ref = TableName(table.catalog, table.db, table.name)
        if not ref.db and not ref.catalog and _is_cte(table):
            continue
        bound = binder.bind(ref, _as_of(table, dialect, binder))
        columns[bound.view] = bound.columns
        if table.args.get("alias") is None:
            alias = exp.TableAlias(this=exp.to_identifier(table.name, quoted=table.this.quoted))
            table.set("alias", alias)
            default_aliases.setdefault(bound.table, table.alias)
        table.set("this", exp.to_identifier(bound.view, quoted=True))
        for part in ("db", "catalog", "version"):
            table.set(part, None)
    _check_default_aliases(tree)
    _unqualify_columns(tree, binder, default_aliases)
    return MappingSchema(columns, dialect="duckdb")


def _is_cte(table: exp.Table) -> bool:
    node: exp.Expr | None = table.parent
    while node is not None:
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With) and any(cte.alias == table.name for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _as_of(table: exp.Table, dialect: Dialect, binder: Binder) -> AsOf | None:
    version = table.args.get("version")
    if version is None:
        return None
    clause = version.sql(READ_DIALECT[dialect])
    if dialect != "athena":
        raise UnsupportedSqlError(f"time travel ({clause}) is Athena syntax; Redshift Spectrum has none")
    if str(version.args.get("kind", "")).upper() != "AS OF":
        raise UnsupportedSqlError(f"only FOR TIMESTAMP|VERSION AS OF is supported, not {clause}")
    value = version.expression
    if str(version.this).upper() == "VERSION":
        if isinstance(value, exp.Literal) and value.is_string:
            return VersionAsOf(ref_name=value.this)
        if isinstance(value, exp.Literal) and value.is_int:
            return VersionAsOf(snapshot_id=int(value.this))
        raise UnsupportedSqlError(f"FOR VERSION AS OF takes a snapshot id or a branch/tag name, got {clause}")
    try:
        duck = value.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UnsupportedSqlError(f"cannot evaluate {clause}: {exc}") from None
    return TimestampAsOf(binder.epoch_ms(duck))


def _check_default_aliases(tree: exp.Query) -> None:
    # Two unaliased tables of one name in one FROM (bronze.x JOIN silver.x) could only be told
    # apart by their database; ask for aliases rather than guess which one a column means.
    for select in tree.find_all(exp.Select):
        seen: set[str] = set()
        for table in select.find_all(exp.Table):
            if not table.alias or table.find_ancestor(exp.Select) is not select:
                continue  # unaliased CTE references, or a nested query's tables
            if table.alias in seen:
                raise UnsupportedSqlError(f"two tables named {table.alias} in one FROM: give them aliases")
            seen.add(table.alias)


def _unqualify_columns(tree: exp.Query, binder: Binder, default_aliases: dict[LakeTable, str]) -> None:
    """``bronze.t.col`` / ``awsdatacatalog.bronze.t.col`` become ``t.col`` (the table's default alias)."""
    for column in tree.find_all(exp.Column):
        if not column.args.get("db"):
            continue
        try:
            lake_table = binder.resolve(TableName(column.catalog, column.db, column.table))
        except SqlError:
            continue  # not a table name: a struct field path; qualification decides
        if lake_table in default_aliases:
            column.set("table", exp.to_identifier(default_aliases[lake_table]))
            column.set("db", None)
            column.set("catalog", None)


def _engine_column_names(tree: exp.Query) -> None:
    """Unnamed result columns are called ``_col<N>`` (Athena's names) rather than sqlglot's ``_col_<N>``."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    renamed: dict[str, str] = {}
    for projection in select.expressions:
        if isinstance(projection, exp.Alias):
            match = _GENERATED_NAME.fullmatch(projection.alias)
            if match:
                renamed[projection.alias] = f"_col{match.group(1)}"
                projection.set("alias", exp.to_identifier(renamed[projection.alias]))
    order = tree.args.get("order")
    for column in order.find_all(exp.Column) if order is not None else ():
        if not column.table and column.name in renamed:
            column.set("this", exp.to_identifier(renamed[column.name]))
