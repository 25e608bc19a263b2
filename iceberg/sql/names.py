"""Which lake table a name in Athena or Redshift SQL means.

Athena sees the Glue catalog as ``awsdatacatalog``: ``awsdatacatalog.<db>.<table>`` or
``<db>.<table>``, a Glue database being a lake namespace. Redshift reaches the same tables through
an external schema (``CREATE EXTERNAL SCHEMA <schema> FROM DATA CATALOG DATABASE '<db>'``): the
configured Spectrum schema maps to one namespace, and every namespace also answers to its own name
(``infra/aws`` generates an external schema per namespace). Both engines fold unquoted and quoted
names to lower case, and so do we. An unqualified name is accepted only when exactly one
namespace holds a table of that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from iceberg.sql.errors import UnknownTableError
from iceberg.sql.lake import LakeTable

Dialect = Literal["athena", "redshift"]
ATHENA_CATALOG = "awsdatacatalog"


@dataclass(frozen=True)
class TableName:
    """A table reference as written: catalog, database (schema) and name, any of the first two empty."""

    catalog: str
    db: str
    name: str

    def __str__(self) -> str:
        return ".".join(p for p in (self.catalog, self.db, self.name) if p)


@dataclass(frozen=True)
class NameRules:
    dialect: Dialect
    #: Redshift external schema name -> lake namespace.
    external_schemas: dict[str, str]


def resolve(ref: TableName, rules: NameRules, tables: list[LakeTable]) -> LakeTable:
    catalog, db, name = ref.catalog.lower(), ref.db.lower(), ref.name.lower()
    known = [t.qualified for t in tables]
    if catalog:
        if rules.dialect == "redshift":
            raise UnknownTableError(
                str(ref), known, "Redshift reaches the lake through external schemas: use <schema>.<table>"
            )
        if catalog != ATHENA_CATALOG:
            raise UnknownTableError(
                str(ref), known, f"unknown catalog {catalog!r} (Athena's is awsdatacatalog)"
            )
    if rules.dialect == "redshift" and db in rules.external_schemas:
        db = rules.external_schemas[db]
    candidates = [t for t in tables if t.name.lower() == name and (not db or t.namespace.lower() == db)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UnknownTableError(str(ref), known)
    raise UnknownTableError(
        str(ref),
        known,
        "ambiguous, held by " + " and ".join(t.qualified for t in candidates) + "; qualify it",
    )
