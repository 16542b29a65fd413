"""The checks and the reference semantics of `Collection.update`, shared by both adapters.

`checked_arguments` refuses bad arguments before anything is written; `apply_update` applies a
checked update to a decoded document as MongoDB's `$set`/`$unset` do, and is what an adapter
falls back on to tell why a conditional write matched nothing.

Paths: a top-level field `a`, a dotted path `a.b.c` through objects, or an element path
`a.3`, one element of the list held by top-level field `a` (a decimal index without leading
zeros). An element path replaces an element that exists and nothing else: it neither grows the
list nor creates it, so a writer that changes one element of a long list (a job's operators)
sends only that element, and two adapters cannot disagree on what a short list becomes.
Element paths cannot be unset (MongoDB would leave a null in the list).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from aorta.errors import Invalid
from aorta.store.port import (
    INT64_MAX,
    INT64_MIN,
    MANAGED_FIELDS,
    MAX_DEPTH,
    Document,
    check_id,
    check_path,
    check_version,
    checked_value,
)

_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.(0|[1-9][0-9]{0,8})")


def element_path(path: str) -> tuple[str, int] | None:
    """`(field, index)` when `path` is an element path (`a.3`), else None."""
    match = _ELEMENT.fullmatch(path)
    return None if match is None else (match[1], int(match[2]))


def _check_set_path(collection: str, path: object) -> str:
    if type(path) is str and _settable(path):
        return path
    if isinstance(path, str) and _ELEMENT.fullmatch(path) and not path.startswith("_id."):
        return path
    return check_path(collection, path)


@functools.lru_cache(maxsize=4096)
def _settable(path: str) -> bool:
    """Whether `update` may set `path`: writers set the same few paths again and again, so
    the answer is kept rather than matched anew each time."""
    if _ELEMENT.fullmatch(path) and not path.startswith("_id."):
        return True
    try:
        check_path("", path)
    except Invalid:
        return False
    return True


def returned_fields(collection: str, fields: Sequence[str] | None) -> list[str] | None:
    """The fields an update returns: None for the whole document, else `fields` (top-level
    names), `id` and `version`; `Invalid` for anything else."""
    if fields is None:
        return None
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        raise Invalid(f"{collection}: fields must be a sequence of top-level field names")
    chosen = ["id", "version"]
    for field in fields:
        if "." in check_path(collection, field):
            raise Invalid(f"{collection}: returned field {field!r} must be a top-level name")
        if field not in chosen:
            chosen.append(field)
    return chosen


def checked_update(
    collection: str, changes: Mapping[str, Any], unset: Sequence[str]
) -> tuple[Document, tuple[str, ...]]:
    """Checked copies of `update`'s `changes` and `unset`; `Invalid` before anything is written."""
    if not isinstance(changes, Mapping):
        raise Invalid(f"{collection}: changes must be a mapping of field paths to values")
    if isinstance(unset, str) or not isinstance(unset, Sequence):
        raise Invalid(f"{collection}: unset must be a sequence of field paths, not a string")
    copied = {
        _check_set_path(collection, path): _copied_value(collection, path, value)
        for path, value in changes.items()
    }
    removed = tuple(check_path(collection, path) for path in unset)
    paths = sorted([*copied, *removed])
    for path in paths:
        if path.split(".")[0] in MANAGED_FIELDS:
            raise Invalid(f"{collection}: field {path!r} is managed by the store")
    # Sorted, a path is followed at once by the paths it is a prefix of ('.' sorts first).
    for first, second in itertools.pairwise(paths):
        if second == first or second.startswith(first + "."):
            raise Invalid(f"{collection}: fields {first!r} and {second!r} overlap in one update")
    return copied, removed


class _NotPlain(Exception):
    """A value `_plain_copy` leaves to `checked_value`: one it refuses, or one of a subclass
    of a JSON type, which `checked_value` turns into the plain type."""


def _copied_value(collection: str, path: str, value: Any) -> Any:
    """`checked_value`'s copy of one change's value. Most values are of the plain JSON types
    exactly and valid, and the copy of those builds no string naming where each item is;
    anything else goes through `checked_value`, which words the error."""
    try:
        return _plain_copy(value, 0)
    except _NotPlain:
        return checked_value(collection, value, f"field {path!r}")


def _plain_copy(value: Any, depth: int) -> Any:
    """A deep copy of a value made of exactly the plain JSON types that `checked_value`
    accepts unchanged; `_NotPlain` for anything else."""
    kind = type(value)
    if kind is str:
        return _plain_text(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _NotPlain
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            _plain_text(key)
            # The commonest item, ASCII text, without a call.
            if type(item) is str and item.isascii() and "\x00" not in item:
                copy[key] = item
            else:
                copy[key] = _plain_copy(item, depth + 1)
        return copy
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _NotPlain
        return [_plain_copy(item, depth + 1) for item in value]
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _NotPlain
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _NotPlain
        return value
    if value is None or kind is bool:
        return value
    raise _NotPlain


def _plain_text(text: str) -> str:
    if "\x00" in text or not (text.isascii() or _encodes(text)):
        raise _NotPlain
    return text


def _encodes(text: str) -> bool:
    """Whether `text` is valid Unicode text (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UpdateArguments(NamedTuple):
    """`Collection.update`'s arguments once checked: the version it expects, the changes and
    unset paths to write, and the fields it returns (None: the whole document)."""

    expected: int | None
    changes: Document
    unset: tuple[str, ...]
    fields: list[str] | None


def checked_arguments(
    collection: str,
    id: str,
    changes: Mapping[str, Any],
    expected_version: int | None,
    unset: Sequence[str],
    fields: Sequence[str] | None,
) -> UpdateArguments:
    """Every check of an `update` call, in the order both adapters make them; `Invalid`
    before anything is read or written."""
    check_id(collection, id)
    expected = check_version(collection, expected_version)
    checked, removed = checked_update(collection, changes, unset)
    return UpdateArguments(expected, checked, removed, returned_fields(collection, fields))


def apply_update(
    collection: str, document: Document, changes: Mapping[str, Any], unset: Sequence[str]
) -> None:
    """Applies checked `changes` and `unset` to `document` in place, as MongoDB's $set/$unset do.

    `Invalid` when a path goes through a value that is not an object, or names an element
    that its list lacks; `document` may then be partly changed, so callers pass a copy.
    """
    for path, value in changes.items():
        element = element_path(path)
        if element is not None:
            _set_element(collection, document, path, element, value)
            continue
        *parents, leaf = path.split(".")
        node = document
        for depth, segment in enumerate(parents):
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                prefix = ".".join(parents[: depth + 1])
                raise Invalid(
                    f"{collection}: cannot set {path!r} in document {document.get('id')!r}: "
                    f"{prefix!r} holds a {type(child).__name__}, not an object"
                )
            node = child
        node[leaf] = value
    for path in unset:
        *parents, leaf = path.split(".")
        node = document
        for segment in parents:
            child = node.get(segment)
            if not isinstance(child, dict):
                break
            node = child
        else:
            node.pop(leaf, None)


def _set_element(
    collection: str, document: Document, path: str, element: tuple[str, int], value: Any
) -> None:
    field, index = element
    items = document.get(field)
    if not isinstance(items, list) or index >= len(items):
        if field not in document:
            held = "nothing"
        elif isinstance(items, list):
            held = f"a list of {len(items)}"
        else:
            held = f"a {type(items).__name__}"
        raise Invalid(
            f"{collection}: cannot set {path!r} in document {document.get('id')!r}: "
            f"{field!r} holds {held}, not a list with element {index}"
        )
    items[index] = value
