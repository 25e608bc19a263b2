"""Avro schema text: parsing (with references), validation, canonical and normalized forms.

Identity of a registered schema is its *canonical text*: the schema's JSON re-emitted compactly with
attributes in a fixed order, so whitespace and key order do not create new ids, while everything
that carries meaning (docs, defaults, aliases, logical types, custom attributes such as
``field-id``) is kept. ``normalize=true`` goes further (see :func:`normalized_text`).

Parsing uses the ``avro`` package. Its compatibility checker compares reader aliases against the
writer's *full* name, so the parsed object handed to :mod:`riverbank.registry.compatibility` has
every named-type alias resolved to a full name first (the Avro spec resolves aliases relative to
the namespace of the type that declares them).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.name
import avro.schema

from riverbank.registry.errors import InvalidSchema

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
_KEYWORDS = PRIMITIVES | NAMED | {"array", "map"}

_TYPE_KEY_ORDER = (
    "type",
    "name",
    "namespace",
    "doc",
    "aliases",
    "fields",
    "symbols",
    "items",
    "values",
    "size",
    "default",
    "order",
    "logicalType",
    "precision",
    "scale",
)
_FIELD_KEY_ORDER = ("name", "type", "doc", "default", "order", "aliases")

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)

# avro's parser reports ignored (invalid) logical types through `warnings`; the spec says to fall
# back to the underlying type, which avro does. The warning filter is process-global state, so
# parsing is serialised to keep catch_warnings() correct when server threads parse concurrently.
_PARSE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ParsedSchema:
    """A validated Avro schema: its stored text and the parsed object used for compatibility."""

    canonical: str
    parsed: avro.schema.Schema
    #: Full names of the named types this schema (not its references) defines.
    defined_names: frozenset[str]
    #: Every full name known while parsing (this schema's and its references').
    known_names: frozenset[str]
    data: Any


def loads(text: str) -> Any:
    """The JSON of a schema string; InvalidSchema (42201) when it is not JSON."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchema("Empty schema")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidSchema(f"Invalid schema: not valid JSON: {exc}") from None


def parse(text: str, references: Sequence[str] = ()) -> ParsedSchema:
    """Parse and validate ``text``; ``references`` are the referenced schemas' texts, dependencies first.

    Raises :class:`InvalidSchema` (HTTP 422, error 42201) for anything that is not a valid Avro
    schema, including field defaults that do not match their type.
    """
    data = loads(text)
    names = avro.name.Names()
    with _PARSE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ref_text in references:
            _make(loads(ref_text), names, what="referenced schema")
        before = set(names.names)
        parsed = _make(data, names, what="schema")
    defined = frozenset(set(names.names) - before)
    _check_defaults(parsed, set())
    return ParsedSchema(
        canonical=canonical_text(data),
        parsed=parsed,
        defined_names=defined,
        known_names=frozenset(names.names),
        data=data,
    )


def _make(data: Any, names: avro.name.Names, what: str) -> avro.schema.Schema:
    try:
        return avro.schema.make_avsc_object(_qualify_aliases(data, None), names)
    except (avro.errors.AvroException, avro.errors.SchemaParseException) as exc:
        raise InvalidSchema(f"Invalid {what}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        # avro's parser assumes well-formed JSON shapes; anything else is still an invalid schema.
        raise InvalidSchema(f"Invalid {what}: malformed schema ({type(exc).__name__}: {exc})") from None


# ---- name handling --------------------------------------------------------------------------


def _split(name: str, namespace: str | None) -> tuple[str, str | None]:
    """(full name, namespace of the type) for a declared ``name`` inside ``namespace``."""
    if "." in name:
        return name, name.rpartition(".")[0]
    return (f"{namespace}.{name}" if namespace else name), namespace


def _own_namespace(node: dict[str, Any], enclosing: str | None) -> str | None:
    name = node.get("name")
    if isinstance(name, str) and "." in name:
        return name.rpartition(".")[0]
    ns = node.get("namespace")
    if isinstance(ns, str):
        return ns or None
    return enclosing


def _qualify_aliases(node: Any, enclosing: str | None) -> Any:
    """A copy of the schema JSON with every named type's aliases turned into full names."""
    if isinstance(node, list):
        return [_qualify_aliases(x, enclosing) for x in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    kind = node.get("type")
    if kind in NAMED:
        ns = _own_namespace(node, enclosing)
        aliases = node.get("aliases")
        if isinstance(aliases, list):
            out["aliases"] = [_split(a, ns)[0] if isinstance(a, str) else a for a in aliases]
        if isinstance(node.get("fields"), list):
            out["fields"] = [
                {**f, "type": _qualify_aliases(f.get("type"), ns)} if isinstance(f, dict) else f
                for f in node["fields"]
            ]
        return out
    for key in ("type", "items", "values"):
        if key in node:
            out[key] = _qualify_aliases(node[key], enclosing)
    return out


# ---- canonical and normalized text ----------------------------------------------------------


def _ordered(node: dict[str, Any], order: Sequence[str], convert: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in order:
        if key in node:
            out[key] = convert(key, node[key])
    for key in sorted(k for k in node if k not in order):
        out[key] = node[key]
    return out


def _tidy(node: Any) -> Any:
    if isinstance(node, list):
        return [_tidy(x) for x in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"type"}:
        return _tidy(node["type"])

    def convert(key: str, value: Any) -> Any:
        if key in ("type", "items", "values") and not (key == "type" and isinstance(value, str)):
            return _tidy(value)
        if key == "fields" and isinstance(value, list):
            return [_tidy_field(f) for f in value]
        return value

    return _ordered(node, _TYPE_KEY_ORDER, convert)


def _tidy_field(field: Any) -> Any:
    if not isinstance(field, dict):
        return field
    return _ordered(field, _FIELD_KEY_ORDER, lambda k, v: _tidy(v) if k == "type" else v)


def _dump(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def canonical_text(data: Any) -> str:
    """Compact JSON with attributes in a fixed order; keeps docs, defaults and custom attributes."""
    return _dump(_tidy(data))


def normalized_text(parsed: ParsedSchema) -> str:
    """The ``normalize=true`` form: canonical text with every name and alias fully qualified.

    Two schemas that differ only in how they spell names (``"name": "a.b.C"`` versus
    ``"namespace": "a.b", "name": "C"``, or a short reference inside the same namespace) normalize
    to the same text.
    """
    known = parsed.known_names

    def ref(name: str, ns: str | None) -> str:
        if "." in name or name in PRIMITIVES:
            return name
        candidate = f"{ns}.{name}" if ns else name
        return candidate if candidate in known or name not in known else name

    def walk(node: Any, ns: str | None) -> Any:
        if isinstance(node, str):
            return ref(node, ns)
        if isinstance(node, list):
            return [walk(x, ns) for x in node]
        if not isinstance(node, dict):
            return node
        out = dict(node)
        kind = node.get("type")
        if kind in NAMED and isinstance(node.get("name"), str):
            full, own_ns = _split(node["name"], _own_namespace(node, ns))
            out["name"] = full
            out.pop("namespace", None)
            if isinstance(node.get("aliases"), list):
                out["aliases"] = [_split(a, own_ns)[0] if isinstance(a, str) else a for a in node["aliases"]]
            if isinstance(node.get("fields"), list):
                out["fields"] = [
                    {**f, "type": walk(f.get("type"), own_ns)} if isinstance(f, dict) else f
                    for f in node["fields"]
                ]
            return out
        for key in ("type", "items", "values"):
            value = node.get(key)
            if value is None or (key == "type" and isinstance(value, str) and value in _KEYWORDS):
                continue
            out[key] = walk(value, ns)
        return out

    return canonical_text(walk(parsed.data, None))


# ---- default values -------------------------------------------------------------------------


def _default_ok(schema: avro.schema.Schema, value: Any) -> bool:
    kind = schema.type
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bytes":
        return isinstance(value, str) and all(ord(c) < 256 for c in value)
    if kind == "fixed":
        size = schema.size  # type: ignore[attr-defined]
        return isinstance(value, str) and len(value) == size and all(ord(c) < 256 for c in value)
    if kind == "enum":
        return isinstance(value, str) and value in schema.symbols  # type: ignore[attr-defined]
    if kind == "array":
        items = schema.items  # type: ignore[attr-defined]
        return isinstance(value, list) and all(_default_ok(items, v) for v in value)
    if kind == "map":
        values = schema.values  # type: ignore[attr-defined]
        return isinstance(value, dict) and all(_default_ok(values, v) for v in value.values())
    if kind in ("record", "error"):
        if not isinstance(value, dict):
            return False
        for field in schema.fields:  # type: ignore[attr-defined]
            if field.name in value:
                if not _default_ok(field.type, value[field.name]):
                    return False
            elif not field.has_default:
                return False
        return True
    if kind == "union":
        # Avro 1.12: a union field's default may match any branch (earlier specs: the first one).
        return any(_default_ok(branch, value) for branch in schema.schemas)  # type: ignore[attr-defined]
    return True


def _check_defaults(schema: avro.schema.Schema, seen: set[int]) -> None:
    if id(schema) in seen:
        return
    seen.add(id(schema))
    kind = schema.type
    if kind in ("record", "error"):
        for field in schema.fields:  # type: ignore[attr-defined]
            if field.has_default and not _default_ok(field.type, field.default):
                raise InvalidSchema(
                    f"Invalid schema: default value {json.dumps(field.default)} of field "
                    f"'{field.name}' in '{schema.fullname}' does not match its type "  # type: ignore[attr-defined]
                    f"{_describe(field.type)}"
                )
            _check_defaults(field.type, seen)
    elif kind == "enum":
        default = schema.props.get("default")
        if default is not None and default not in schema.symbols:  # type: ignore[attr-defined]
            raise InvalidSchema(
                f"Invalid schema: enum default {default!r} is not one of the symbols of '{schema.fullname}'"  # type: ignore[attr-defined]
            )
    elif kind == "array":
        _check_defaults(schema.items, seen)  # type: ignore[attr-defined]
    elif kind == "map":
        _check_defaults(schema.values, seen)  # type: ignore[attr-defined]
    elif kind == "union":
        if not schema.schemas:  # type: ignore[attr-defined]
            raise InvalidSchema("Invalid schema: a union needs at least one branch")
        for branch in schema.schemas:  # type: ignore[attr-defined]
            _check_defaults(branch, seen)


def _describe(schema: avro.schema.Schema) -> str:
    if isinstance(schema, avro.schema.NamedSchema):
        return str(schema.fullname)
    if schema.type == "union":
        return "[" + ", ".join(_describe(b) for b in schema.schemas) + "]"  # type: ignore[attr-defined]
    return str(schema.type)
