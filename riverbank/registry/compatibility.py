"""Schema compatibility under the seven Confluent levels, by the Avro specification's resolution rules.

The reader/writer rules come from the ``avro`` package's ``avro.compatibility`` checker (a port of
Avro Java's ``SchemaCompatibility``). What it misses, covered here and proven by
``tests/registry/test_compatibility_matrix.py``:

* decimals: the spec says two ``decimal`` schemas match only if precision and scale both match;
  avro ignores logical types entirely.
* named-type aliases: avro compares the writer's full name against the reader's *raw* alias
  strings, so an unqualified alias never matched. :mod:`riverbank.registry.avro_schema` resolves
  aliases to full names (relative to the declaring type's namespace) before parsing.
* a reader field missing from the writer whose *type* is an enum with a default: avro compared the
  enum against the whole writer record, reporting a misleading type mismatch. The rule is simply
  that the field needs a field default; this module reports that.

Namespaces: the spec matches records, enums and fixed by *unqualified* name, so moving a type to
another namespace is compatible (as in avro and Avro Java).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
    incompatible,
    lookup_writer_field,
    merge,
)


class Level(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """The new schema must read data written with the old one(s)."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """The old schema(s) must read data written with the new one."""
        return self.value.startswith(("FORWARD", "FULL"))

    @classmethod
    def parse(cls, value: object) -> Level | None:
        if isinstance(value, str):
            try:
                return cls(value.strip().upper())
            except ValueError:
                return None
        return None


DEFAULT_LEVEL = Level.BACKWARD


@dataclass(frozen=True)
class Incompatibility:
    kind: str
    description: str
    location: str


@dataclass(frozen=True)
class PairResult:
    incompatibilities: tuple[Incompatibility, ...] = ()

    @property
    def compatible(self) -> bool:
        return not self.incompatibilities


@dataclass
class Report:
    """The verdict of checking one new schema against a subject's existing versions."""

    level: Level
    messages: list[str] = field(default_factory=list)

    @property
    def is_compatible(self) -> bool:
        return not self.messages


def _decimal(schema: avro.schema.Schema) -> tuple[int, int] | None:
    if isinstance(schema, avro.schema.BytesDecimalSchema | avro.schema.FixedDecimalSchema):
        precision = schema.get_prop("precision")
        scale = schema.get_prop("scale") or 0
        if isinstance(precision, int) and isinstance(scale, int):
            return precision, scale
    return None


class _Checker(ReaderWriterCompatibilityChecker):
    """avro's checker plus the decimal rule and a correct missing-field rule."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def calculate_compatibility(
        self, reader: avro.schema.Schema, writer: avro.schema.Schema, location: list[str]
    ) -> SchemaCompatibilityResult:
        result: SchemaCompatibilityResult = super().calculate_compatibility(reader, writer, location)
        r, w = _decimal(reader), _decimal(writer)
        if r is not None and w is not None and r != w:
            result = merge(
                result,
                incompatible(
                    SchemaIncompatibilityType.type_mismatch,
                    f"reader type: decimal({r[0]},{r[1]}) not compatible with writer type: "
                    f"decimal({w[0]},{w[1]}) (precision and scale must match)",
                    location,
                ),
            )
        return result

    def check_reader_writer_record_fields(
        self, reader: avro.schema.RecordSchema, writer: avro.schema.RecordSchema, location: list[str]
    ) -> SchemaCompatibilityResult:
        result: SchemaCompatibilityResult = SchemaCompatibilityResult(SchemaCompatibilityType.compatible)
        for i, reader_field in enumerate(reader.fields):
            field_location = [*location, "fields", str(i)]
            writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
            if writer_field is None:
                if not reader_field.has_default:
                    result = merge(
                        result,
                        incompatible(
                            SchemaIncompatibilityType.reader_field_missing_default_value,
                            f"reader field '{reader_field.name}' has no default value and is missing "
                            f"from the writer record '{writer.fullname}'",
                            field_location,
                        ),
                    )
            else:
                result = merge(
                    result,
                    self.get_compatibility(reader_field.type, writer_field.type, "type", field_location),
                )
        return result


def check_pair(reader: avro.schema.Schema, writer: avro.schema.Schema) -> PairResult:
    """Can ``reader`` read everything ``writer`` writes (Avro schema resolution)?"""
    result = _Checker().get_compatibility(reader, writer)
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return PairResult()
    kinds = sorted({i.name.upper() for i in result.incompatibilities})
    messages = sorted(result.messages) or ["incompatible"]
    locations = ", ".join(sorted(result.locations))
    return PairResult(
        tuple(Incompatibility(kind="/".join(kinds), description=m, location=locations) for m in messages)
    )


def check(
    level: Level,
    new: avro.schema.Schema,
    existing: Sequence[tuple[int, avro.schema.Schema]],
) -> Report:
    """Check ``new`` against ``existing`` (``(version, schema)``, oldest first) under ``level``.

    Non-transitive levels compare with the latest existing version only; transitive ones with all.
    """
    report = Report(level)
    if level is Level.NONE or not existing:
        return report
    targets = existing if level.transitive else existing[-1:]
    for version, old in reversed(targets):
        directions: list[tuple[str, avro.schema.Schema, avro.schema.Schema]] = []
        if level.backward:
            directions.append(("the new schema cannot read data written with", new, old))
        if level.forward:
            directions.append(("data written with the new schema cannot be read by", old, new))
        for words, reader, writer in directions:
            for inc in check_pair(reader, writer).incompatibilities:
                report.messages.append(
                    f"{{errorType:'{inc.kind}', description:'{inc.description}', "
                    f"location:'{inc.location}'}} {level.value}: {words} version {version}"
                )
    return report
