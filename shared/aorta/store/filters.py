"""The store's filter language: parsed once, evaluated here, translated by each adapter.

A subset of MongoDB's query language, with one deliberate difference: matching is exact.

- `{"path": value}` is `{"path": {"$eq": value}}`; paths are dotted (`"spec.name"`) and reach
  into nested objects only: a path that runs into a list, or into any other non-object value,
  is missing there. Several keys in one filter (or several operators on one path) must all hold.
- Operands are scalars: `str`, `int`, `float`, `bool`, `None` (lists of them for `$in` and
  `$nin`). `$eq` is exact: a field holding a list or an object equals no operand (MongoDB would
  look inside the list; the adapters guard against that).
- `$eq`/`$in` compare within one type family: numbers with numbers (`1 == 1.0`), strings with
  strings, booleans with booleans (`1` is not `true`). `None` matches a null *or missing* field.
- `$ne` and `$nin` are the exact negations of `$eq` and `$in` (so they match missing fields).
- `$lt $lte $gt $gte` take a number or a string and only match values of the same family:
  numbers numerically, strings by code point (ISO times compare as times).
- `$exists: true|false` tests presence (a null field is present).
- `{"$or": [filter, ...]}` (non-empty) holds when any of its filters holds.

Anything else (another `$` operator, an object or list operand, a bad path) is `Invalid`.
`parse_filter` turns a filter into a small tree; `matches` is the reference evaluator that the
SQLite and MongoDB translations are property-tested against.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aorta.errors import Invalid
from aorta.store.port import Document, check_path, checked_value

Scalar = str | int | float | bool | None

COMPARISONS = ("$lt", "$lte", "$gt", "$gte")
NEGATIONS = {"$ne": "$eq", "$nin": "$in"}
"""Each negative operator and the positive one it negates."""

_OPERATORS = frozenset(("$eq", "$ne", "$in", "$nin", "$exists", *COMPARISONS))


class Missing(enum.Enum):
    """The value of a path that leads nowhere (distinct from a stored null)."""

    MISSING = enum.auto()


MISSING = Missing.MISSING


@dataclass(frozen=True, slots=True)
class Condition:
    """`operator` applied to the value at `path`.

    `operand` is a scalar for `$eq`, `$ne` and the comparisons, a tuple of scalars for `$in`
    and `$nin`, and a bool for `$exists`.
    """

    path: str
    operator: str
    operand: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    """Holds when every part holds (always, when there are none)."""

    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Holds when at least one part holds (there is always at least one)."""

    parts: tuple[Node, ...]


Node = Condition | AllOf | AnyOf


def parse_filter(
    collection: str, filter: Mapping[str, Any] | None, *, none_means_all: bool = True
) -> Node:
    """The tree of a filter in the language above; `Invalid` naming what is wrong.

    None selects every document unless `none_means_all` is false (for `delete_many`, where a
    forgotten filter must not empty the collection).
    """
    if filter is None and none_means_all:
        return AllOf(())
    if not isinstance(filter, Mapping):
        raise Invalid(
            f"{collection}: a filter must be a mapping ({{}} for all), not {type(filter).__name__}"
        )
    parts: list[Node] = []
    for key, value in filter.items():
        if key == "$or":
            if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
                raise Invalid(f"{collection}: $or takes a non-empty list of filters")
            branches = []
            for branch in value:
                if not isinstance(branch, Mapping):
                    raise Invalid(f"{collection}: each $or branch must be a filter mapping")
                branches.append(parse_filter(collection, branch))
            parts.append(AnyOf(tuple(branches)))
        elif isinstance(key, str) and key.startswith("$"):
            raise Invalid(f"{collection}: unknown filter operator {key!r}")
        else:
            parts.extend(_parse_field(collection, check_path(collection, key), value))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_field(collection: str, path: str, value: Any) -> list[Condition]:
    if not isinstance(value, Mapping):
        return [Condition(path, "$eq", _scalar(collection, path, value))]
    operators = [key for key in value if isinstance(key, str) and key.startswith("$")]
    if not value or len(operators) != len(value):
        raise Invalid(
            f"{collection}: field {path!r}: equality against an object is not supported; "
            "give a scalar or a mapping of $ operators"
        )
    conditions = []
    for operator, operand in value.items():
        if operator not in _OPERATORS:
            raise Invalid(f"{collection}: unknown filter operator {operator!r} on {path!r}")
        if operator in ("$in", "$nin"):
            if not isinstance(operand, Sequence) or isinstance(operand, str | bytes):
                raise Invalid(f"{collection}: {operator} on {path!r} takes a list of scalars")
            operand = tuple(_scalar(collection, path, item) for item in operand)
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise Invalid(f"{collection}: $exists on {path!r} takes true or false")
        elif operator in COMPARISONS:
            operand = _scalar(collection, path, operand)
            if family(operand) not in ("number", "string"):
                raise Invalid(f"{collection}: {operator} on {path!r} takes a number or a string")
        else:
            operand = _scalar(collection, path, operand)
        conditions.append(Condition(path, operator, operand))
    return conditions


def _scalar(collection: str, path: str, value: Any) -> Scalar:
    if isinstance(value, Mapping | list | tuple):
        raise Invalid(
            f"{collection}: field {path!r}: filter operands must be strings, numbers, booleans "
            "or null (equality is exact, objects and lists are not supported)"
        )
    scalar: Scalar = checked_value(collection, value, f"the operand for {path!r}")
    return scalar


def parse_sort(
    collection: str, sort: Sequence[tuple[str, int]] | None
) -> tuple[tuple[str, int], ...]:
    """`sort` checked: distinct valid paths, each with direction 1 or -1; `Invalid` otherwise."""
    if sort is None:
        return ()
    if isinstance(sort, str) or not isinstance(sort, Sequence):
        raise Invalid(f"{collection}: sort must be a list of (field, 1 or -1) pairs")
    checked: list[tuple[str, int]] = []
    for item in sort:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise Invalid(f"{collection}: sort must be a list of (field, 1 or -1) pairs")
        path, direction = item
        check_path(collection, path)
        if isinstance(direction, bool) or direction not in (1, -1):
            raise Invalid(f"{collection}: sort direction for {path!r} must be 1 or -1")
        if any(path == seen for seen, _ in checked):
            raise Invalid(f"{collection}: sort names {path!r} twice")
        checked.append((path, direction))
    return tuple(checked)


def family(value: Any) -> str | None:
    """`number`, `string` or `bool` (MongoDB's `$type` aliases) for a scalar; None otherwise."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def resolve(document: Document, path: str) -> Any:
    """The value at a dotted path, or `MISSING` when the path leads nowhere."""
    value: Any = document
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return MISSING
        value = value[segment]
    return value


def matches(node: Node, document: Document) -> bool:
    """Whether `document` satisfies the parsed filter `node` (the reference semantics)."""
    if isinstance(node, Condition):
        return _holds(node, resolve(document, node.path))
    if isinstance(node, AllOf):
        return all(matches(part, document) for part in node.parts)
    return any(matches(part, document) for part in node.parts)


def _holds(condition: Condition, value: Any) -> bool:
    operator, operand = condition.operator, condition.operand
    if operator in NEGATIONS:
        return not _holds(Condition(condition.path, NEGATIONS[operator], operand), value)
    if operator == "$exists":
        return (value is not MISSING) is operand
    if operator == "$eq":
        return _equals(value, operand)
    if operator == "$in":
        return any(_equals(value, item) for item in operand)
    if family(value) != family(operand):
        return False
    if operator == "$lt":
        return bool(value < operand)
    if operator == "$lte":
        return bool(value <= operand)
    if operator == "$gt":
        return bool(value > operand)
    return bool(value >= operand)


def _equals(value: Any, operand: Scalar) -> bool:
    if operand is None:
        return value is MISSING or value is None
    return family(value) == family(operand) and bool(value == operand)
