"""Run Athena or Redshift SQL over the lake: translate, bind snapshots, execute on DuckDB."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from iceberg.catalog import load_lake_catalog
from iceberg.sql.duck import LakeConnection
from iceberg.sql.errors import SqlError
from iceberg.sql.lake import AsOf, LakeDirectory, LakeTable, pick_snapshot
from iceberg.sql.names import Dialect, NameRules, TableName, resolve
from iceberg.sql.translate import BoundTable, translate
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    #: What DuckDB ran.
    duckdb_sql: str
    #: Each table read, with the snapshot id read (None: a table never written, read as empty).
    snapshots: dict[str, int | None] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def name_rules(settings: Settings, dialect: Dialect) -> NameRules:
    spectrum_db = settings.query.redshift_spectrum_database or settings.lake.gold_namespace
    return NameRules(dialect, {settings.query.redshift_spectrum_schema.lower(): spectrum_db})


class LakeQueryEngine:
    """One DuckDB session over the lake catalog; every query re-reads the catalog, so it sees
    the tables' current snapshots."""

    def __init__(
        self, settings: Settings, catalog: Catalog | None = None, connection: LakeConnection | None = None
    ) -> None:
        """``connection`` shares another engine's DuckDB session (its owner closes it)."""
        self.settings = settings
        self.catalog = catalog if catalog is not None else load_lake_catalog(settings)
        self._owns_connection = connection is None
        self._connection = connection if connection is not None else LakeConnection(settings)
        self._view_ids = itertools.count()

    @property
    def connection(self) -> LakeConnection:
        return self._connection

    def close(self) -> None:
        if self._owns_connection:
            self._connection.close()

    def __enter__(self) -> LakeQueryEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def tables(self) -> list[LakeTable]:
        return LakeDirectory(self.catalog).tables()

    def translate(self, sql: str, dialect: Dialect | None = None) -> str:
        """The DuckDB SQL for ``sql`` (its views exist until the next query)."""
        return self._translate(sql, dialect or self.settings.query.dialect)[0]

    def query(self, sql: str, dialect: Dialect | None = None) -> QueryResult:
        import duckdb

        started = time.perf_counter()
        duck_sql, binder = self._translate(sql, dialect or self.settings.query.dialect)
        try:
            cursor = self._connection.con.execute(duck_sql)
            rows = cursor.fetchall()
            description = cursor.description or []
        except duckdb.Error as exc:
            raise SqlError(f"the local engine could not run the query: {exc}") from None
        finally:
            binder.drop_views()
        return QueryResult(
            columns=[d[0] for d in description],
            types=[str(d[1]) for d in description],
            rows=rows,
            duckdb_sql=duck_sql,
            snapshots=binder.snapshots,
            elapsed_s=time.perf_counter() - started,
        )

    def _translate(self, sql: str, dialect: Dialect) -> tuple[str, _SnapshotBinder]:
        binder = _SnapshotBinder(self, LakeDirectory(self.catalog), name_rules(self.settings, dialect))
        try:
            return translate(sql, dialect, binder), binder
        except BaseException:
            binder.drop_views()
            raise


class _SnapshotBinder:
    """Binds each table reference of one query to a DuckDB view of exactly one snapshot."""

    def __init__(self, engine: LakeQueryEngine, directory: LakeDirectory, rules: NameRules) -> None:
        self._engine = engine
        self._con = engine.connection.con
        self._directory = directory
        self._rules = rules
        self._views: dict[tuple[LakeTable, int | None], BoundTable] = {}
        self._registered: set[str] = set()
        self.snapshots: dict[str, int | None] = {}

    def resolve(self, ref: TableName) -> LakeTable:
        return resolve(ref, self._rules, self._directory.tables())

    def bind(self, ref: TableName, as_of: AsOf | None) -> BoundTable:
        lake_table = self.resolve(ref)
        table = self._directory.load(lake_table)
        snapshot = pick_snapshot(table, lake_table.qualified, as_of)
        snapshot_id = snapshot.snapshot_id if snapshot is not None else None
        key = (lake_table, snapshot_id)
        if key not in self._views:
            view = f"__lake_{next(self._engine._view_ids)}"
            if snapshot_id is None:
                # Never written: DuckDB cannot scan a table without a snapshot; an empty Arrow
                # table of the Iceberg schema answers the same.
                self._con.register(view, table.schema().as_arrow().empty_table())
                self._registered.add(view)
            else:
                location = table.metadata_location.replace("'", "''")
                # Names and ids are ours (generated view name, catalog location, integer id).
                self._con.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{view}" AS SELECT * FROM '  # noqa: S608
                    f"iceberg_scan('{location}', snapshot_from_id = {snapshot_id})"
                )
            described = self._con.execute(f'DESCRIBE SELECT * FROM "{view}"').fetchall()  # noqa: S608
            self._views[key] = BoundTable(view, lake_table, {row[0]: row[1] for row in described})
            self.snapshots[lake_table.qualified] = snapshot_id
        return self._views[key]

    def epoch_ms(self, duckdb_expression: str) -> int:
        import duckdb

        try:
            # The expression was generated by sqlglot from the parsed AS OF clause, not pasted text.
            row = self._con.execute(
                f"SELECT CAST(epoch_ms(CAST(({duckdb_expression}) AS TIMESTAMPTZ)) AS BIGINT)"
            ).fetchone()
        except duckdb.Error as exc:
            raise SqlError(f"cannot evaluate the time-travel timestamp {duckdb_expression}: {exc}") from None
        if row is None or row[0] is None:
            raise SqlError(f"the time-travel timestamp {duckdb_expression} is NULL")
        return int(row[0])

    def drop_views(self) -> None:
        for bound in self._views.values():
            if bound.view in self._registered:
                self._con.unregister(bound.view)
            else:
                self._con.execute(f'DROP VIEW IF EXISTS "{bound.view}"')
        self._views.clear()
        self._registered.clear()


def run_sql(settings: Settings, sql: str, dialect: Dialect | None = None) -> QueryResult:
    with LakeQueryEngine(settings) as engine:
        return engine.query(sql, dialect)


def row_counts(settings: Settings, engine: LakeQueryEngine | None = None) -> dict[str, int]:
    """Rows in the current snapshot of every table in the lake catalog, by ``namespace.table``."""
    if engine is None:
        with LakeQueryEngine(settings) as own:
            return row_counts(settings, own)
    counts: dict[str, int] = {}
    for table in engine.tables():
        name = ".".join('"' + part.replace('"', '""') + '"' for part in (table.namespace, table.name))
        result = engine.query(f"SELECT count(*) FROM {name}", "athena")  # noqa: S608
        counts[table.qualified] = int(result.rows[0][0])
    return counts
