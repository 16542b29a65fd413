"""MongoDB queries for the state store's filters and update guards, built from parsed
filters and checked paths (no driver here; `aorta.store.mongo` runs them).

A filter's every leaf carries a `$type` guard (MongoDB keeps `1` and `true` apart by itself,
mongomock does not) and a not-a-list guard on the path and its prefixes (MongoDB would
otherwise match inside lists), so the server computes the same answer as the reference
evaluator `aorta.store.filters.matches`. An update's guards make `$set` do what
`aorta.store.updates.apply_update` does, or match nothing.
"""

from __future__ import annotations

from typing import Any

from aorta.store import updates
from aorta.store.filters import NEGATIONS, AllOf, Condition, Node, family
from aorta.store.port import Document

_NOTHING: Document = {"_id": {"$exists": False}}
"""A filter no document matches (every document has an `_id`)."""


def field_path(path: str) -> str:
    """`path` as MongoDB names it: the document's `id` is its `_id`."""
    head, dot, rest = path.partition(".")
    return f"_id{dot}{rest}" if head == "id" else path


def update_guards(path: str) -> list[Document]:
    """What the document must hold for `$set` of `path` to do what `apply_update` does.

    MongoDB refuses to set `a.b` through a non-object `a` (mongomock silently ignores it), so
    every such prefix must be missing or an object. An element path `a.3` needs a list in `a`
    that has element 3: MongoDB would pad a shorter list with nulls, and make `a` an object
    when it is missing.
    """
    element = updates.element_path(path)
    if element is not None:
        return [_has_element(*element)]
    return [_object_or_missing(prefix) for prefix in _prefixes(path)]


def _object_or_missing(path: str) -> Document:
    return {
        "$or": [{path: {"$exists": False}}, {path: {"$type": "object", "$not": {"$type": "array"}}}]
    }


def _has_element(field: str, index: int) -> Document:
    # `$size` of anything but a list is an error, so a non-list counts as an empty one.
    items = {"$cond": [{"$isArray": f"${field}"}, f"${field}", []]}
    return {"$expr": {"$gt": [{"$size": items}, index]}}


def _prefixes(path: str) -> list[str]:
    segments = path.split(".")
    return [".".join(segments[:end]) for end in range(1, len(segments))]


def all_of(parts: list[Document]) -> Document:
    """A query that holds where every one of `parts` holds."""
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _any(parts: list[Document]) -> Document:
    return parts[0] if len(parts) == 1 else {"$or": parts}


def number_or_string(path: str) -> Document:
    """Holds where `path` holds a number or a string (what keyset pages list)."""
    return _any([_exact(path, {"$type": "number"}), _exact(path, {"$type": "string"})])


def _reachable(path: str) -> list[Document]:
    """Filters that hold when no prefix of `path` is a list (MongoDB would look inside it)."""
    return [{field_path(prefix): {"$not": {"$type": "array"}}} for prefix in _prefixes(path)]


def _exact(path: str, criteria: Document) -> Document:
    """`criteria` on `path`, holding only where neither the path nor a prefix holds a list."""
    return all_of([*_reachable(path), {field_path(path): {**criteria, "$not": {"$type": "array"}}}])


def _unreachable(path: str) -> list[Document]:
    """Filters of which one holds when a prefix of `path` is there but is not an object.

    The path itself is then missing; MongoDB would look inside a list, and mongomock does not
    count a path through a scalar as missing.
    """
    guards: list[Document] = []
    for prefix in _prefixes(path):
        field = field_path(prefix)
        guards += [
            {field: {"$type": "array"}},
            {field: {"$exists": True, "$not": {"$type": "object"}}},
        ]
    return guards


def filter_query(node: Node) -> Document:
    """The MongoDB query for a parsed filter."""
    if isinstance(node, Condition):
        return _condition_query(node)
    if not node.parts:
        return {}
    parts = [filter_query(part) for part in node.parts]
    return all_of(parts) if isinstance(node, AllOf) else _any(parts)


def _condition_query(condition: Condition) -> Document:
    path, operator, operand = condition.path, condition.operator, condition.operand
    if operator in NEGATIONS:
        return {"$nor": [_condition_query(Condition(path, NEGATIONS[operator], operand))]}
    if operator == "$exists":
        present = all_of([*_reachable(path), {field_path(path): {"$exists": True}}])
        return present if operand else {"$nor": [present]}
    if operator not in ("$eq", "$in"):
        return _exact(path, {operator: operand, "$type": family(operand)})
    operands = operand if operator == "$in" else (operand,)
    by_family: dict[str, list[Any]] = {}
    for item in operands:
        if item is not None:
            by_family.setdefault(str(family(item)), []).append(item)
    parts = [_exact(path, {"$in": items, "$type": kind}) for kind, items in by_family.items()]
    if None in operands:
        parts += [_exact(path, {"$eq": None}), *_unreachable(path)]
    return _any(parts) if parts else _NOTHING
