"""The project's schema catalog: ``schemas/subjects.toml`` and the ``.avsc`` files it names.

Subjects follow TopicNameStrategy (``<topic>-key``, ``<topic>-value``). A topic whose ``owner`` is
``debezium`` has its value subject registered by Debezium (its envelope); the file here is the row
schema, checked only against its own git history.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from riverbank.registry import avro_schema
from riverbank.registry.compatibility import Level
from riverbank.registry.errors import InvalidSchema, SchemaFileError

CATALOG_FILE = "subjects.toml"
# The checkout's schemas/, wherever the command runs from.
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

Owner = Literal["riverbank", "debezium"]


@dataclass(frozen=True)
class SubjectSchema:
    """One subject and the schema the working tree holds for it."""

    topic: str
    subject: str
    #: The schema text to register: a file's content, or a JSON-quoted primitive such as '"string"'.
    text: str
    #: The file it comes from, relative to the schemas directory; None for a primitive key.
    file: str | None
    owner: Owner
    #: Level used by offline checks (the registry's own config decides online).
    compatibility: Level


def _primitive_text(value: str) -> str | None:
    return json.dumps(value) if value in avro_schema.PRIMITIVES else None


def load(schemas_dir: Path = DEFAULT_SCHEMAS_DIR) -> list[SubjectSchema]:
    """Every subject of the catalog, key subject before value subject, topics in file order."""
    catalog = schemas_dir / CATALOG_FILE
    try:
        data = tomllib.loads(catalog.read_text())
    except FileNotFoundError:
        raise SchemaFileError(str(catalog), "not found (is --schemas-dir right?)") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SchemaFileError(str(catalog), f"cannot be read: {exc}") from None
    topics = data.get("topics")
    if not isinstance(topics, dict) or not topics:
        raise SchemaFileError(str(catalog), 'expected [topics."<name>"] tables')
    out: list[SubjectSchema] = []
    for topic, entry in topics.items():
        out.extend(_entry(schemas_dir, catalog, topic, entry))
    return out


def _entry(schemas_dir: Path, catalog: Path, topic: str, entry: Any) -> list[SubjectSchema]:
    where = f'{catalog} [topics."{topic}"]'
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
        raise SchemaFileError(where, 'needs value = "<file>.avsc"')
    owner = entry.get("owner", "riverbank")
    if owner not in ("riverbank", "debezium"):
        raise SchemaFileError(where, f"owner must be 'riverbank' or 'debezium', got {owner!r}")
    level = Level.parse(entry.get("compatibility", "BACKWARD"))
    if level is None:
        raise SchemaFileError(where, f"unknown compatibility {entry.get('compatibility')!r}")
    out = []
    key = entry.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise SchemaFileError(where, "key must be a primitive type name or a file")
        primitive = _primitive_text(key)
        if primitive is not None:
            out.append(SubjectSchema(topic, f"{topic}-key", primitive, None, owner, level))
        else:
            out.append(SubjectSchema(topic, f"{topic}-key", _read(schemas_dir, key), key, owner, level))
    value = entry["value"]
    out.append(SubjectSchema(topic, f"{topic}-value", _read(schemas_dir, value), value, owner, level))
    return out


def _read(schemas_dir: Path, rel: str) -> str:
    path = schemas_dir / rel
    try:
        return path.read_text()
    except OSError as exc:
        raise SchemaFileError(str(path), f"cannot be read: {exc.strerror or exc}") from None


def lint(text: str, where: str) -> list[str]:
    """Project rules on top of Avro validity: every record field has a doc and a unique field-id.

    Returns the problems found (empty when fine); raises SchemaFileError when it is not valid Avro.
    """
    try:
        avro_schema.parse(text)
    except InvalidSchema as exc:
        raise SchemaFileError(where, exc.message) from None
    problems: list[str] = []
    ids: dict[int, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, path)
            return
        if not isinstance(node, dict):
            return
        for field in node.get("fields") or []:
            if not isinstance(field, dict):
                continue
            name = f"{path}.{field.get('name')}" if path else str(field.get("name"))
            if not field.get("doc"):
                problems.append(f"field '{name}' has no doc")
            fid = field.get("field-id")
            if not isinstance(fid, int) or isinstance(fid, bool) or fid < 1:
                problems.append(f"field '{name}' has no positive integer \"field-id\"")
            elif fid in ids:
                problems.append(f"field '{name}' reuses field-id {fid} of '{ids[fid]}'")
            else:
                ids[fid] = name
            walk(field.get("type"), name)
        for key in ("items", "values"):
            walk(node.get(key), path)
        if isinstance(node.get("type"), dict | list):
            walk(node["type"], path)

    walk(json.loads(text), "")
    return problems
