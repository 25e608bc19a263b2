"""Typed builders of pyiceberg row filters (its expression classes confuse mypy's view of
their constructors: pydantic-style signatures that take positional arguments at runtime)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyiceberg import expressions as e
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression

__all__ = [
    "AlwaysFalse",
    "AlwaysTrue",
    "BooleanExpression",
    "and_",
    "eq",
    "gt",
    "gte",
    "isin",
    "lt",
    "notin",
    "or_",
]

_ctor: dict[str, Any] = {
    "eq": e.EqualTo,
    "gt": e.GreaterThan,
    "gte": e.GreaterThanOrEqual,
    "lt": e.LessThan,
    "in": e.In,
    "notin": e.NotIn,
}


def eq(column: str, value: Any) -> BooleanExpression:
    result: BooleanExpression = _ctor["eq"](column, value)
    return result


def gt(column: str, value: Any) -> BooleanExpression:
    result: BooleanExpression = _ctor["gt"](column, value)
    return result


def gte(column: str, value: Any) -> BooleanExpression:
    result: BooleanExpression = _ctor["gte"](column, value)
    return result


def lt(column: str, value: Any) -> BooleanExpression:
    result: BooleanExpression = _ctor["lt"](column, value)
    return result


def isin(column: str, values: Iterable[Any]) -> BooleanExpression:
    result: BooleanExpression = _ctor["in"](column, list(values))
    return result


def notin(column: str, values: Iterable[Any]) -> BooleanExpression:
    result: BooleanExpression = _ctor["notin"](column, list(values))
    return result


def and_(left: BooleanExpression, right: BooleanExpression) -> BooleanExpression:
    return e.And(left, right)


def or_(left: BooleanExpression, right: BooleanExpression) -> BooleanExpression:
    return e.Or(left, right)
