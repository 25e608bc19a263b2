"""Iceberg table definitions derived from ``schemas/`` (the Avro files are the only schema source).

Layout contract of the bronze layer (silver and gold build on it; keep it stable):

* One bronze table per topic of ``schemas/subjects.toml``: namespace ``lake.bronze_namespace``,
  name = the topic with ``.`` replaced by ``_`` (``bronze.bank_card_transactions``,
  ``bronze.bankdb_public_accounts``).
* Event topics (owner ``riverbank``): the decoded Avro value's fields as top-level columns, all
  optional (a tombstone or a later schema without the field leaves them null), nested records,
  arrays and maps kept as struct/list/map columns.
* CDC topics (owner ``debezium``): ``op`` string (c/u/d/r), ``ts_ms`` long, ``before`` and
  ``after`` structs of the row schema (``schemas/core/*.avsc``), ``source_lsn`` long,
  ``source_txid`` long. A tombstone (null value after a delete) lands too, with null
  op/before/after, so every offset of the topic is present.
* Kafka metadata columns on every bronze table: ``_topic`` string, ``_partition`` int,
  ``_offset`` long, ``_timestamp`` timestamptz (the Kafka record time), ``_key`` string (the
  decoded key as text; JSON for record keys), ``_schema_id`` int (registry id of the value's writer
  schema; null for a tombstone), ``_ingested_at`` timestamptz.
* Partitioned by ``day(_timestamp)``: every record has a Kafka time, event times may be late or
  absent (tombstones), and one partition per day keeps 2 s commits to one file per table.

Field ids. Iceberg column ids are the Avro ``field-id``s, so a column keeps its identity across
renames and the schema files stay the one definition:

* value columns: the Avro field-id (the project lints them unique per schema, 1..9_999);
* list elements and map keys/values, which Avro cannot number: ``10_000 + 3 * parent_id + k``;
* CDC ``before``/``after`` sub-fields: the row field-id plus 100_000 / 200_000;
* Kafka metadata and CDC envelope columns: the reserved ids in :data:`METADATA_IDS` and
  :data:`CDC_IDS` (1_000_001 and up), which no Avro id can reach;
* a field registered without a field-id (schemas not written in this repo) gets an id from
  2_000_000 up, after every id already used by the table.

pyiceberg's ``create_table`` renumbers ids from 1, so :func:`create_or_load` writes the first
metadata file itself and registers it with the catalog (SQL and Glue both support that).
"""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from riverbank.errors import TerminalError
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
TableKind = Literal["events", "cdc"]

MAX_AVRO_FIELD_ID = 9_999
_COLLECTION_BASE = 10_000
BEFORE_ID_OFFSET = 100_000
AFTER_ID_OFFSET = 200_000
#: Fields that arrive without an Avro field-id are numbered from here.
UNNUMBERED_ID_BASE = 2_000_000

METADATA_IDS: dict[str, int] = {
    "_topic": 1_000_001,
    "_partition": 1_000_002,
    "_offset": 1_000_003,
    "_timestamp": 1_000_004,
    "_key": 1_000_005,
    "_schema_id": 1_000_006,
    "_ingested_at": 1_000_007,
}
CDC_IDS: dict[str, int] = {
    "op": 1_000_101,
    "ts_ms": 1_000_102,
    "before": 1_000_103,
    "after": 1_000_104,
    "source_lsn": 1_000_105,
    "source_txid": 1_000_106,
}
METADATA_COLUMNS = tuple(METADATA_IDS)
CDC_COLUMNS = tuple(CDC_IDS)


class SchemaDerivationError(TerminalError):
    """An Avro schema in schemas/ (or from the registry) has no Iceberg equivalent."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"cannot derive an Iceberg schema from {where}: {problem}")


# -- Avro -> Iceberg types -------------------------------------------------------------------------


@dataclass
class _Ids:
    """Id assignment for one conversion: Avro ids shifted by ``offset``; unnumbered ones counted."""

    offset: int = 0
    next_unnumbered: int = UNNUMBERED_ID_BASE

    def field_id(self, field: Mapping[str, Any], where: str) -> int:
        fid = field.get("field-id")
        if fid is None:
            self.next_unnumbered += 1
            return self.next_unnumbered - 1
        if not isinstance(fid, int) or isinstance(fid, bool) or not 1 <= fid <= MAX_AVRO_FIELD_ID:
            raise SchemaDerivationError(where, f"field-id must be an integer 1..{MAX_AVRO_FIELD_ID}")
        return fid + self.offset

    def derived(self, parent_id: int, k: int) -> int:
        if parent_id >= UNNUMBERED_ID_BASE:
            self.next_unnumbered += 1
            return self.next_unnumbered - 1
        own = parent_id - self.offset
        return self.offset + _COLLECTION_BASE + 3 * own + k


def _split_nullable(avro_type: Any, where: str) -> tuple[Any, bool]:
    """(the non-null branch, optional?) of a type; unions other than [null, T] are refused."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) != 1:
            raise SchemaDerivationError(where, f"union {avro_type} is not [null, T]")
        return branches[0], len(branches) < len(avro_type)
    return avro_type, False


def iceberg_type(avro_type: Any, where: str, ids: _Ids, parent_id: int = 0) -> IcebergType:
    """The Iceberg type of a (non-union) Avro type. ``parent_id`` numbers list/map children."""
    if isinstance(avro_type, str):
        avro_type = {"type": avro_type}
    if not isinstance(avro_type, dict):
        raise SchemaDerivationError(where, f"unexpected type {avro_type!r}")
    name = avro_type["type"]
    if isinstance(name, dict | list):  # {"type": {"type": ...}} nesting is legal Avro
        inner, _ = _split_nullable(name, where)
        return iceberg_type(inner, where, ids, parent_id)
    logical = avro_type.get("logicalType")
    if logical == "decimal" and name in ("bytes", "fixed"):
        return DecimalType(int(avro_type["precision"]), int(avro_type.get("scale", 0)))
    if logical in ("timestamp-millis", "timestamp-micros") and name == "long":
        return TimestamptzType()  # Avro timestamps are UTC instants
    if logical in ("local-timestamp-millis", "local-timestamp-micros") and name == "long":
        return TimestampType()
    if logical == "date" and name == "int":
        return DateType()
    if logical in ("time-millis", "time-micros"):
        return TimeType()
    # uuid stays a string: Athena and Glue have no uuid column type.
    simple: dict[str, IcebergType] = {
        "string": StringType(),
        "enum": StringType(),
        "boolean": BooleanType(),
        "int": IntegerType(),
        "long": LongType(),
        "float": FloatType(),
        "double": DoubleType(),
        "bytes": BinaryType(),
    }
    if name in simple:
        return simple[name]
    if name == "fixed":
        return FixedType(int(avro_type["size"]))
    if name == "record":
        return StructType(*record_fields(avro_type, where, ids))
    if name == "array":
        item, optional = _split_nullable(avro_type["items"], f"{where}[]")
        element_id = ids.derived(parent_id, 0)
        return ListType(
            element_id,
            iceberg_type(item, f"{where}[]", ids, element_id),
            element_required=not optional,
        )
    if name == "map":
        value, optional = _split_nullable(avro_type["values"], f"{where}{{}}")
        key_id, value_id = ids.derived(parent_id, 1), ids.derived(parent_id, 2)
        return MapType(
            key_id,
            StringType(),
            value_id,
            iceberg_type(value, f"{where}{{}}", ids, value_id),
            value_required=not optional,
        )
    raise SchemaDerivationError(where, f"Avro type {name!r} is not supported")


def record_fields(
    record: Mapping[str, Any], where: str, ids: _Ids, *, all_optional: bool = False
) -> list[NestedField]:
    """The Iceberg fields of an Avro record; ``all_optional`` for top-level bronze columns."""
    out = []
    for field in record.get("fields", []):
        path = f"{where}.{field['name']}"
        fid = ids.field_id(field, path)
        avro_type, optional = _split_nullable(field["type"], path)
        out.append(
            NestedField(
                field_id=fid,
                name=field["name"],
                field_type=iceberg_type(avro_type, path, ids, fid),
                required=not (optional or all_optional),
                doc=field.get("doc"),
            )
        )
    return out


# -- bronze tables ---------------------------------------------------------------------------------


def metadata_fields() -> list[NestedField]:
    types: dict[str, IcebergType] = {
        "_topic": StringType(),
        "_partition": IntegerType(),
        "_offset": LongType(),
        "_timestamp": TimestamptzType(),
        "_key": StringType(),
        "_schema_id": IntegerType(),
        "_ingested_at": TimestamptzType(),
    }
    docs = {
        "_topic": "Kafka topic of the record.",
        "_partition": "Kafka partition.",
        "_offset": "Kafka offset; (_topic, _partition, _offset) is unique in bronze.",
        "_timestamp": "Kafka record timestamp (UTC).",
        "_key": "Decoded Kafka key as text (JSON for record keys).",
        "_schema_id": "Registry id of the value's writer schema; null for a tombstone.",
        "_ingested_at": "When the sink read the record (UTC).",
    }
    required = {"_topic", "_partition", "_offset", "_timestamp", "_ingested_at"}
    return [NestedField(METADATA_IDS[n], n, t, required=n in required, doc=docs[n]) for n, t in types.items()]


def cdc_fields(row_record: Mapping[str, Any], where: str) -> list[NestedField]:
    """Debezium envelope columns; ``before``/``after`` are structs of the row schema."""
    before = StructType(*record_fields(row_record, where, _Ids(offset=BEFORE_ID_OFFSET)))
    after = StructType(*record_fields(row_record, where, _Ids(offset=AFTER_ID_OFFSET)))
    return [
        NestedField(CDC_IDS["op"], "op", StringType(), doc="c create, u update, d delete, r snapshot read."),
        NestedField(CDC_IDS["ts_ms"], "ts_ms", LongType(), doc="When Debezium processed the change (ms)."),
        NestedField(CDC_IDS["before"], "before", before, doc="Row before the change."),
        NestedField(CDC_IDS["after"], "after", after, doc="Row after the change."),
        NestedField(CDC_IDS["source_lsn"], "source_lsn", LongType(), doc="PostgreSQL WAL position."),
        NestedField(CDC_IDS["source_txid"], "source_txid", LongType(), doc="PostgreSQL transaction id."),
    ]


@dataclass(frozen=True)
class TableDef:
    """One bronze table: where it lives, its schema and partitioning, and what feeds it."""

    topic: str
    namespace: str
    name: str
    kind: TableKind
    schema: Schema
    partition_spec: PartitionSpec
    #: The Avro schema of the value (events) or of the row in before/after (cdc), as parsed JSON.
    avro: Mapping[str, Any]

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"


def bronze_table_name(topic: str) -> str:
    return topic.replace(".", "_")


def day_partition(
    schema: Schema, column: str, *, bucket_column: str | None = None, buckets: int = 8
) -> PartitionSpec:
    """``day(column)`` plus, optionally, ``bucket(buckets, bucket_column)``: the lake's partitioning."""
    fields = [
        PartitionField(
            source_id=schema.find_field(column).field_id,
            field_id=1000,
            transform=DayTransform(),
            name=f"{column.strip('_')}_day",
        )
    ]
    if bucket_column is not None:
        fields.append(
            PartitionField(
                source_id=schema.find_field(bucket_column).field_id,
                field_id=1001,
                transform=BucketTransform(buckets),
                name=f"{bucket_column.strip('_')}_bucket",
            )
        )
    return PartitionSpec(*fields)


def load_subjects(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, dict[str, Any]]:
    """topic -> its ``subjects.toml`` entry, in file order."""
    path = schemas_dir / "subjects.toml"
    try:
        topics = tomllib.loads(path.read_text())["topics"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise SchemaDerivationError(str(path), f"cannot be read: {exc}") from None
    return dict(topics)


def bronze_table(
    topic: str, entry: Mapping[str, Any], namespace: str, schemas_dir: Path = SCHEMAS_DIR
) -> TableDef:
    where = f"{entry['value']} (topic {topic})"
    avro = json.loads((schemas_dir / entry["value"]).read_text())
    kind: TableKind = "cdc" if entry.get("owner") == "debezium" else "events"
    if kind == "cdc":
        value_fields = cdc_fields(avro, where)
    else:
        value_fields = record_fields(avro, where, _Ids(), all_optional=True)
    schema = Schema(*value_fields, *metadata_fields())
    _check_unique(schema, where)
    return TableDef(
        topic=topic,
        namespace=namespace,
        name=bronze_table_name(topic),
        kind=kind,
        schema=schema,
        partition_spec=day_partition(schema, "_timestamp"),
        avro=avro,
    )


def bronze_tables(
    settings: Settings, topics: Iterable[str] | None = None, schemas_dir: Path = SCHEMAS_DIR
) -> dict[str, TableDef]:
    """topic -> bronze table, for ``topics`` (default: every topic with a schema)."""
    subjects = load_subjects(schemas_dir)
    wanted = list(subjects) if topics is None else list(topics)
    unknown = [t for t in wanted if t not in subjects]
    if unknown:
        raise SchemaDerivationError("schemas/subjects.toml", f"no schema for topic(s) {', '.join(unknown)}")
    ns = settings.lake.bronze_namespace
    return {t: bronze_table(t, subjects[t], ns, schemas_dir) for t in wanted}


def _check_unique(schema: Schema, where: str) -> None:
    seen: dict[int, str] = {}
    for fid, name in schema._lazy_id_to_name.items():  # every id, nested ones included
        if fid in seen:
            raise SchemaDerivationError(where, f"field id {fid} used by {seen[fid]} and {name}")
        seen[fid] = name


# -- creating and evolving tables ------------------------------------------------------------------


def create_or_load(catalog: Catalog, table: TableDef, properties: Mapping[str, str] | None = None) -> Table:
    """Load the table, or create it keeping the derived field ids (see module doc)."""
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    try:
        return catalog.load_table(table.identifier)
    except NoSuchTableError:
        pass
    location = table_location(catalog, table.namespace, table.name)
    metadata_location = _write_first_metadata(catalog, table, location, properties or {})
    try:
        return catalog.register_table(table.identifier, metadata_location)
    except TableAlreadyExistsError:  # another process created it meanwhile
        return catalog.load_table(table.identifier)


def table_location(catalog: Catalog, namespace: str, name: str) -> str:
    warehouse = str(catalog.properties.get("warehouse", "")).rstrip("/")
    if not warehouse:
        raise SchemaDerivationError(f"{namespace}.{name}", "the catalog has no warehouse location")
    return f"{warehouse}/{namespace}/{name}"


def _write_first_metadata(
    catalog: Catalog, table: TableDef, location: str, properties: Mapping[str, str]
) -> str:
    from pyiceberg.io import load_file_io
    from pyiceberg.serializers import ToOutputFile
    from pyiceberg.table.metadata import TableMetadataV2
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

    schema = table.schema
    # pyiceberg's models take field names at runtime; mypy only sees their aliases.
    metadata = TableMetadataV2(  # type: ignore[call-arg]
        location=location,
        table_uuid=uuid.uuid4(),
        last_updated_ms=_now_ms(),
        last_column_id=schema.highest_field_id,
        schemas=[schema],
        current_schema_id=schema.schema_id,
        partition_specs=[table.partition_spec],
        default_spec_id=table.partition_spec.spec_id,
        last_partition_id=table.partition_spec.last_assigned_field_id,
        sort_orders=[UNSORTED_SORT_ORDER],
        default_sort_order_id=UNSORTED_SORT_ORDER.order_id,
        properties={
            "write.parquet.compression-codec": "zstd",
            # Java Iceberg's default, not pyiceberg's: appends merge small manifests, so neither a
            # commit nor a reader's planning goes through one manifest per commit ever made.
            "commit.manifest-merge.enabled": "true",
            **properties,
        },
    )
    # A random name: two processes racing to create the table never overwrite each other's file.
    path = f"{location}/metadata/00000-{uuid.uuid4()}.metadata.json"
    io = load_file_io(catalog.properties, location)
    ToOutputFile.table_metadata(metadata, io.new_output(path))
    return path


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def missing_fields(current: Schema, wanted: Iterable[NestedField]) -> list[NestedField]:
    """Top-level fields of ``wanted`` whose names the table does not have yet."""
    names = {f.name for f in current.fields}
    return [f for f in wanted if f.name not in names]


def add_columns(table: Table, fields: list[NestedField]) -> Table:
    """Add optional top-level columns, keeping their derived ids where free; returns the table.

    Existing rows read a new column as null. Ids already used by the table (a field-id reused
    after a drop) and unnumbered fields get fresh ids from :data:`UNNUMBERED_ID_BASE` up.
    """
    from pyiceberg.schema import assign_fresh_schema_ids
    from pyiceberg.table.update import AddSchemaUpdate, AssertCurrentSchemaId, SetCurrentSchemaUpdate

    if not fields:
        return table
    metadata = table.metadata
    current = table.schema()
    used = {fid for s in metadata.schemas for fid in s._lazy_id_to_name}
    next_id = max(UNNUMBERED_ID_BASE, metadata.last_column_id + 1)
    added: list[NestedField] = []
    for field in fields:
        subtree_ids = set(Schema(field)._lazy_id_to_name)
        if subtree_ids & used or any(i >= UNNUMBERED_ID_BASE for i in subtree_ids):
            counter = iter(range(next_id, next_id + 10_000))
            renumbered = assign_fresh_schema_ids(Schema(field), counter.__next__).fields[0]
            next_id += len(subtree_ids)
            field = renumbered
        used |= set(Schema(field)._lazy_id_to_name)
        added.append(NestedField(field.field_id, field.name, field.field_type, required=False, doc=field.doc))
    new_schema = Schema(*current.fields, *added, schema_id=max(s.schema_id for s in metadata.schemas) + 1)
    with table.transaction() as tx:
        tx._apply(
            (AddSchemaUpdate(schema=new_schema), SetCurrentSchemaUpdate(schema_id=-1)),  # type: ignore[call-arg]
            (AssertCurrentSchemaId(current_schema_id=current.schema_id),),  # type: ignore[call-arg]
        )
    return table
