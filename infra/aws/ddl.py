"""Athena (Glue) CREATE TABLE and Redshift Spectrum CREATE EXTERNAL SCHEMA from the lake catalog.

In the aws profile pyiceberg's Glue catalog registers every table itself; these statements
document the tables and recreate them elsewhere (another account or region), and give Redshift
its external schemas: one per namespace under the namespace's own name, plus the configured
Spectrum schema for ``query.redshift_spectrum_database`` (names `riverbank sql` also accepts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from iceberg.sql.lake import LakeDirectory
from riverbank.errors import ConfigError, TerminalError
from riverbank.settings import Settings, describe_source

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.types import IcebergType


class UnsupportedTypeError(TerminalError):
    """An Iceberg type Athena cannot declare."""


@dataclass(frozen=True)
class TableDdl:
    namespace: str
    name: str
    sql: str
    #: Columns whose Athena DDL type differs from the lake table's (with the reason).
    notes: tuple[str, ...] = ()


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def athena_type(t: IcebergType, column: str, notes: list[str]) -> str:
    """The Athena DDL spelling of an Iceberg type (Hive DDL syntax, as Athena's CREATE TABLE takes)."""
    from pyiceberg import types as it

    simple: dict[type[IcebergType], str] = {
        it.BooleanType: "boolean",
        it.IntegerType: "int",
        it.LongType: "bigint",
        it.FloatType: "float",
        it.DoubleType: "double",
        it.DateType: "date",
        it.StringType: "string",
        it.BinaryType: "binary",
        it.TimestampType: "timestamp",
    }
    if type(t) in simple:
        return simple[type(t)]
    if isinstance(t, it.DecimalType):
        return f"decimal({t.precision},{t.scale})"
    if isinstance(t, it.TimestamptzType):
        notes.append(f"{column}: timestamptz in the lake; Athena DDL can only declare timestamp")
        return "timestamp"
    if isinstance(t, it.UUIDType):
        notes.append(f"{column}: uuid in the lake; Athena has no uuid type, declared as string")
        return "string"
    if isinstance(t, it.FixedType):
        notes.append(f"{column}: {t} in the lake; Athena has no fixed type, declared as binary")
        return "binary"
    if isinstance(t, it.ListType):
        return f"array<{athena_type(t.element_type, column + '[]', notes)}>"
    if isinstance(t, it.MapType):
        key = athena_type(t.key_type, column + ".key", notes)
        return f"map<{key},{athena_type(t.value_type, column + '.value', notes)}>"
    if isinstance(t, it.StructType):
        fields = ",".join(
            f"{f.name}:{athena_type(f.field_type, f'{column}.{f.name}', notes)}" for f in t.fields
        )
        return f"struct<{fields}>"
    raise UnsupportedTypeError(f"column {column}: Athena cannot declare the Iceberg type {t}")


def partition_clause(spec: PartitionSpec, schema: Schema) -> str:
    from pyiceberg import transforms as tr

    parts: list[str] = []
    for field in spec.fields:
        source = _quote(schema.find_column_name(field.source_id) or str(field.source_id))
        transform = field.transform
        if isinstance(transform, tr.IdentityTransform):
            parts.append(source)
        elif isinstance(transform, tr.YearTransform | tr.MonthTransform | tr.DayTransform | tr.HourTransform):
            parts.append(f"{transform!s}({source})")
        elif isinstance(transform, tr.BucketTransform):
            parts.append(f"bucket({transform.num_buckets}, {source})")
        elif isinstance(transform, tr.TruncateTransform):
            parts.append(f"truncate({transform.width}, {source})")
        elif isinstance(transform, tr.VoidTransform):
            continue
        else:
            raise UnsupportedTypeError(f"partition field {field.name}: Athena has no transform {transform}")
    return f"PARTITIONED BY ({', '.join(parts)})\n" if parts else ""


def table_ddl(namespace: str, name: str, table: Table) -> TableDdl:
    schema = table.schema()
    notes: list[str] = []
    columns = ",\n".join(
        f"  {_quote(f.name)} {athena_type(f.field_type, f'{namespace}.{name}.{f.name}', notes)}"
        for f in schema.fields
    )
    location = table.location().replace("'", "''")
    sql = (
        f"CREATE TABLE IF NOT EXISTS {_quote(namespace)}.{_quote(name)} (\n{columns}\n)\n"
        f"{partition_clause(table.spec(), schema)}"
        f"LOCATION '{location}'\n"
        "TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet')"
    )
    return TableDdl(namespace, name, sql, tuple(notes))


def athena_ddl(catalog: Catalog) -> list[TableDdl]:
    directory = LakeDirectory(catalog)
    return [table_ddl(t.namespace, t.name, directory.load(t)) for t in directory.tables()]


def athena_databases(settings: Settings, catalog: Catalog) -> list[str]:
    namespaces = {
        settings.lake.bronze_namespace,
        settings.lake.silver_namespace,
        settings.lake.gold_namespace,
    }
    namespaces.update(t.namespace for t in LakeDirectory(catalog).tables())
    return [f"CREATE DATABASE IF NOT EXISTS {_quote(ns)}" for ns in sorted(namespaces)]


def spectrum_schemas(settings: Settings, namespaces: list[str]) -> list[str]:
    """CREATE EXTERNAL SCHEMA for the Spectrum schema and one per namespace (same name)."""
    role = settings.query.redshift_iam_role
    if not role:
        raise ConfigError(
            "query.redshift_iam_role",
            "is required to generate Redshift Spectrum's CREATE EXTERNAL SCHEMA "
            "(the role ARN Redshift assumes)",
            describe_source(("query", "redshift_iam_role")),
        )
    region = settings.aws.region
    if not region:
        raise ConfigError(
            "aws.region", "is required to generate Redshift Spectrum DDL", describe_source(("aws", "region"))
        )
    spectrum_db = settings.query.redshift_spectrum_database or settings.lake.gold_namespace
    mapping = {settings.query.redshift_spectrum_schema: spectrum_db}
    for namespace in namespaces:
        mapping.setdefault(namespace, namespace)

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    return [
        f'CREATE EXTERNAL SCHEMA IF NOT EXISTS "{schema}" FROM DATA CATALOG DATABASE {literal(db)} '
        f"IAM_ROLE {literal(role)} REGION {literal(region)}"
        for schema, db in mapping.items()
    ]
