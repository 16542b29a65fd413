"""The SQL the SQLite state store runs, built from checked names and parsed filters.

A field is compared through one SQL expression, `value_sql`, which keeps JSON's types apart
(numbers and strings stay themselves; null, booleans, objects and lists become BLOBs that no
number or string equals). Indexes are built on that same expression, so the queries use them,
and a unique index sees exactly the equality the filters see. Every value is a bound
parameter; names and paths reach the SQL text only after `aorta.store.port` checked them
against a strict pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from aorta.store.filters import COMPARISONS, NEGATIONS, AllOf, Condition, Node, family
from aorta.store.port import Document
from aorta.store.updates import element_path
from aorta.timestamps import to_iso, utcnow

_SQL_COMPARISON = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_NULL, _TRUE, _FALSE = b"null", b"true", b"false"
# Sort rank of each JSON type: MongoDB's order (missing and null, numbers, strings, objects,
# lists, booleans).
_RANK = (
    "CASE json_type(doc, {p}) WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 "
    "WHEN 'object' THEN 3 WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 ELSE 0 END"
)


def json_path(path: str) -> str:
    # Safe to inline: `path` matched port's strict pattern (letters, digits, _ and dots).
    return f"'$.{path}'"


def value_sql(path: str) -> str:
    """The value at `path`: numbers and strings as such, null/true/false/object/list as BLOBs
    (null/true/false as their JSON text), SQL NULL when missing.

    One `json_type` and at most one `json_extract`: every write of a document works this out
    for each index on its table, twice (the old entry and the new), and SQLite parses the
    document again for each call. The `WHEN json_type(...) IN (...)` form before it made up to
    three calls, and a job's update with the jobs table's ten indexes cost 194 µs against 58
    (median; docs/performance.md)."""
    p = json_path(path)
    extract = f"json_extract(doc, {p})"
    blob = f"CAST({extract} AS BLOB)"
    return (
        f"(CASE json_type(doc, {p})"
        f" WHEN 'text' THEN {extract} WHEN 'integer' THEN {extract} WHEN 'real' THEN {extract}"
        f" WHEN 'true' THEN {_blob(_TRUE)} WHEN 'false' THEN {_blob(_FALSE)}"
        f" WHEN 'null' THEN {_blob(_NULL)}"
        f" WHEN 'object' THEN {blob} WHEN 'array' THEN {blob} END)"
    )


def _blob(value: bytes) -> str:
    return f"x'{value.hex()}'"


def _parameter(value: Any) -> Any:
    """A scalar operand as `_value_sql` spells it."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    return value


def filter_sql(node: Node, params: list[Any]) -> str:
    """A WHERE expression for `node`, appending its parameters to `params`.

    A comparison with a missing field yields SQL NULL, which WHERE treats as false; negations
    are written `(...) IS NOT 1` so that NULL negates to true, as the reference evaluator says.
    """
    if isinstance(node, Condition):
        return _condition_sql(node, params)
    if not node.parts:
        return "1" if isinstance(node, AllOf) else "0"
    joiner = " AND " if isinstance(node, AllOf) else " OR "
    return "(" + joiner.join(filter_sql(part, params) for part in node.parts) + ")"


def _condition_sql(condition: Condition, params: list[Any]) -> str:
    value = value_sql(condition.path)
    operator, operand = condition.operator, condition.operand
    if operator in NEGATIONS:
        positive = Condition(condition.path, NEGATIONS[operator], operand)
        return f"({_condition_sql(positive, params)}) IS NOT 1"
    if operator == "$exists":
        return f"{value} IS {'NOT ' if operand else ''}NULL"
    if operator in COMPARISONS:
        params.append(operand)
        compared = f"{value} {_SQL_COMPARISON[operator]} ?"
        # SQLite orders NULL < numbers < text < BLOB: bound the range to the operand's family.
        if family(operand) == "string":
            bound = f"{value} < x''" if operator in ("$gt", "$gte") else f"{value} >= ''"
        elif operator in ("$gt", "$gte"):
            bound = f"{value} < ''"
        else:
            return compared
        return f"({compared} AND {bound})"
    operands = operand if operator == "$in" else (operand,)
    if not operands:
        return "0"
    params.extend(_parameter(item) for item in operands)
    test = f"{value} IN ({', '.join('?' * len(operands))})"
    return f"({value} IS NULL OR {test})" if None in operands else test


def sort_sql(sort: Sequence[tuple[str, int]]) -> str:
    """An ORDER BY list for checked `sort`, ending with the id unless `sort` names it."""
    terms = []
    for path, direction in sort:
        order = "ASC" if direction == 1 else "DESC"
        p = json_path(path)
        terms += [f"{_RANK.format(p=p)} {order}", f"json_extract(doc, {p}) {order}"]
    if all(path != "id" for path, _ in sort):
        terms.append("id ASC")
    return ", ".join(terms)


_MAX_IN_PLACE = 60
"""Fields an update may set or remove in one statement: SQLite takes at most 127 arguments in
one function call, and `json_set` takes two per field, and four for `version` and `updated_at`."""


def in_place(changes: Document, unset: Sequence[str]) -> bool:
    """Whether an update only sets and removes top-level fields and sets elements of top-level
    lists, few enough for one statement (`_MAX_IN_PLACE`)."""
    paths = [*changes, *unset]
    if len(paths) > _MAX_IN_PLACE or any("." in path for path in unset):
        return False
    return all("." not in path or element_path(path) is not None for path in changes)


_ENCODER = msgspec.json.Encoder()


def dumps_value(value: Any) -> str:
    """Compact JSON text of a value the store checked (`aorta.store.port.checked_value`: plain
    JSON types, finite numbers, valid text), through msgspec: a few times faster than `json`
    for the same text, but it would write a NaN as null, so only checked values come here."""
    return _ENCODER.encode(value).decode()


def in_place_update(
    table: str, id: str, expected: int | None, changes: Document, unset: Sequence[str]
) -> tuple[str, list[Any]]:
    """One `UPDATE ... SET doc = json_set(doc, ...) ... RETURNING doc` and its parameters: sets
    the top-level `changes` and list elements (`a.3`), removes `unset`, moves `version` and
    `updated_at`, and changes nothing unless the row `id` is at `expected` (when given) and
    holds every element set (`json_set` would append one that is missing, or create it).
    `table` is a checked name."""
    setting = ", ".join(
        ["?, json(?)"] * len(changes) + ["'$.version', version + 1, '$.updated_at', ?"]
    )
    params: list[Any] = []
    elements: list[str] = []
    for path, value in changes.items():
        element = element_path(path)
        target = f"$.{path}" if element is None else f"$.{element[0]}[{element[1]}]"
        params += [target, dumps_value(value)]
        if element is not None:
            elements.append(target)
    params.append(to_iso(utcnow()))
    document = f"json_set(doc, {setting})"
    if unset:
        document = f"json_remove({document}, {', '.join(['?'] * len(unset))})"
        params += [f"$.{path}" for path in unset]
    sql = f'UPDATE "{table}" SET version = version + 1, doc = {document} WHERE id = ?'
    params.append(id)
    if expected is not None:
        sql += " AND version = ?"
        params.append(expected)
    for target in elements:
        sql += " AND json_type(doc, ?) IS NOT NULL"
        params.append(target)
    return sql + " RETURNING doc", params
