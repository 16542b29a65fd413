"""Keyset paging: what `Collection.pages` promises, checked and spelled once for both adapters.

A listing that may grow without bound (every job ever run) is read in pages, each one short
query that starts after the last document of the page before, rather than with one query
whose answer is held whole, or one cursor held open for as long as a slow reader takes
(SQLite would keep its write-ahead log from being checkpointed meanwhile, MongoDB times idle
cursors out). The order is a `key` of fields, then the id, all ascending or all descending,
so that with an index on the same fields each page is a range read of that index and costs
the same however much history lies before it.

Key fields hold numbers or strings (a time, a name; numbers sort before strings, as MongoDB
sorts them): a document missing a key field, or holding any other value there, is not listed.
That is what lets both adapters compare and order keys by one rule.
The adapters run the queries; this module only checks arguments and builds filters.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from aorta.errors import Invalid
from aorta.store.filters import AllOf, AnyOf, Condition, Node, family
from aorta.store.port import Document, check_path

PAGE_SIZE = 100
"""Documents in one page unless the caller asks otherwise."""

PAGE_BYTES = 4 * 1024 * 1024
"""About how many bytes of stored documents one page holds at most (always one document):
a listing of documents that carry megabytes of metadata must not hold a hundred of them."""

MAX_PAGE_SIZE = 10_000


def check_key(collection: str, key: Sequence[str]) -> tuple[str, ...]:
    """`key` as checked paths, ending with `id` (added when absent); `Invalid` otherwise."""
    if isinstance(key, str) or not isinstance(key, Sequence):
        raise Invalid(f"{collection}: a page key must be a sequence of field paths")
    checked = tuple(check_path(collection, field) for field in key)
    if len(set(checked)) != len(checked):
        raise Invalid(f"{collection}: a page key names the same field twice: {list(checked)}")
    if "id" in checked[:-1]:
        raise Invalid(f"{collection}: id can only be the last field of a page key")
    return checked if checked[-1:] == ("id",) else (*checked, "id")


def check_page_size(collection: str, page_size: object) -> int:
    """`page_size` if it is an int from 1 to `MAX_PAGE_SIZE`; `Invalid` otherwise."""
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not 1 <= page_size <= MAX_PAGE_SIZE
    ):
        raise Invalid(
            f"{collection}: page_size must be an integer from 1 to {MAX_PAGE_SIZE}, "
            f"not {page_size!r}"
        )
    return page_size


def check_fields(collection: str, fields: Sequence[str] | None, key: Sequence[str]) -> list[str]:
    """The top-level fields a projected page returns: `fields`, then the key's, then `id`."""
    if fields is None:
        return []
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        raise Invalid(f"{collection}: fields must be a sequence of top-level field names")
    chosen: list[str] = []
    for field in [*fields, *(path.split(".")[0] for path in key)]:
        if "." in check_path(collection, field):
            raise Invalid(f"{collection}: projected field {field!r} must be a top-level name")
        if field not in chosen:
            chosen.append(field)
    return chosen


def check_after(
    collection: str, key: Sequence[str], after: Sequence[Any] | None
) -> tuple[Any, ...]:
    """`after` (the key values of the last document already listed) checked against `key`."""
    if after is None:
        return ()
    if isinstance(after, str) or not isinstance(after, Sequence) or len(after) != len(key):
        raise Invalid(f"{collection}: after must hold one value per key field {list(key)}")
    for field, value in zip(key, after, strict=True):
        if family(value) not in ("number", "string"):
            raise Invalid(f"{collection}: after gives {field!r} a {type(value).__name__}")
    return tuple(after)


def key_of(document: Mapping[str, Any], key: Sequence[str]) -> tuple[Any, ...]:
    """The values of `key` in `document`, to pass as `after` to list what follows it."""
    values = []
    for path in key:
        value: Any = document
        for segment in path.split("."):
            value = value[segment]
        values.append(value)
    return tuple(values)


def continuation(key: Sequence[str], after: Sequence[Any], descending: bool) -> Node:
    """The filter that holds for the documents following `after` in the key's order:
    `k1 > a1`, or `k1 == a1 and k2 > a2`, and so on (`<` when descending)."""
    beyond = "$lt" if descending else "$gt"
    branches: list[Node] = []
    for depth, (field, value) in enumerate(zip(key, after, strict=True)):
        equal = [Condition(f, "$eq", v) for f, v in zip(key[:depth], after[:depth], strict=True)]
        branches.append(AllOf((*equal, Condition(field, beyond, value))))
        # Comparisons hold within one family: the other family, when it follows, follows whole.
        if family(value) == "number" and not descending:
            branches.append(AllOf((*equal, Condition(field, "$gte", ""))))
        elif family(value) == "string" and descending:
            branches.append(AllOf((*equal, Condition(field, "$gte", -sys.float_info.max))))
    return AnyOf(tuple(branches))


def page_bytes(document: Document) -> int:
    """A cheap estimate of a decoded document's size, for adapters that get no raw length:
    the lengths of its strings, which are what grows (metadata, messages)."""
    total = 0
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, dict):
            total += sum(len(name) for name in value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        else:
            total += 8
    return total
