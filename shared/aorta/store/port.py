"""The state store port: JSON documents in named collections, with optimistic concurrency.

Two adapters implement it and pass one contract suite (tests/integration/store): SQLite
(`aorta.store.sqlite`, the embedded default) and MongoDB (`aorta.store.mongo`). Services see
only the protocols below, so domain code never learns which one runs.

Documents are JSON values: `str`, `int` (within a signed 64-bit range), finite `float`, `bool`,
`None`, `list` and `dict` with `str` keys, nested at most 64 levels. Strings must be valid
UTF-8 without NUL characters (SQLite's JSON functions stop at a NUL; MongoDB keys cannot hold
one). Every stored document carries `id` (a non-empty string chosen by the caller), `version`
(1 on insert, +1 on every update), `created_at` and `updated_at` (ISO 8601 UTC strings from
`aorta.timestamps`). Top-level field names, and every segment of a dotted path used in a filter,
sort, index or update, match `[A-Za-z_][A-Za-z0-9_]*` and are not `_id`; keys nested deeper are
free-form strings that simply cannot be addressed by a path. The one exception is an update's
element path, `a.3`: one existing element of the list in top-level field `a`
(`aorta.store.updates`).

The filter language is described in `aorta.store.filters`.

Errors are `aorta.errors` only, raised before anything is written when the arguments are at
fault: `Invalid` (bad name, path, value, filter), `NotFound`, `Conflict` (duplicate id, unique
index, stale version), `Unavailable` (store closed, busy or unreachable; retrying may help) and
`Internal`. Every method is safe to call from many coroutines at once; each call is atomic on
one document (there are no multi-document transactions). A call cancelled while the store works
on it may still have been applied.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Protocol

from aorta.errors import Conflict, Invalid, NotFound

Document = dict[str, Any]
"""A JSON-able mapping (see the module docstring)."""

Sort = Sequence[tuple[str, int]]
"""(field path, 1 ascending | -1 descending) pairs, most significant first."""

MANAGED_FIELDS = ("id", "version", "created_at", "updated_at")
"""Fields the store sets; `update` refuses to change them."""

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(_SEGMENT)
_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_COLLECTION = re.compile(r"[a-z][a-z0-9_]{0,62}")


class Collection(Protocol):
    """One collection of documents, created on first use."""

    name: str

    async def insert(self, document: Mapping[str, Any]) -> Document:
        """Stores a copy of `document` with `version` 1 and fresh `created_at`/`updated_at`.

        `document` needs a non-empty string `id` and must not carry `version`, `created_at` or
        `updated_at` (`Invalid`). Returns the stored document. `Conflict` when the id exists or a
        unique index is violated; the message names the collection and the id or fields.
        """
        ...

    async def get(self, id: str) -> Document:
        """The document with this id; `NotFound` (naming collection and id) when absent."""
        ...

    async def find_one(self, filter: Mapping[str, Any]) -> Document | None:
        """The first document `find(filter)` would return, or None."""
        ...

    async def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: Sort | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Document]:
        """Documents matching `filter` (all when None), ordered by `sort` then by id.

        Sort order per field: missing and null first, then numbers, strings, objects, lists,
        booleans (false before true) — MongoDB's order; descending reverses it. The order
        between two objects or two lists differs between adapters. `limit` None means no limit
        (0 returns nothing); `skip` drops that many first. `Invalid` for a bad filter, sort,
        negative limit or skip.
        """
        ...

    def pages(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        key: Sequence[str] = (),
        descending: bool = False,
        fields: Sequence[str] | None = None,
        page_size: int = 100,
        after: Sequence[Any] | None = None,
    ) -> AsyncGenerator[list[Document], None]:
        """Documents matching `filter`, in pages read one short query at a time (keyset
        paging, `aorta.store.paging`): ordered by the fields of `key` then by id, all
        ascending or all `descending`; only documents whose key fields hold numbers or
        strings are listed (numbers before strings).

        A page holds at most `page_size` documents (1 to 10,000) and about
        `aorta.store.paging.PAGE_BYTES` of them (at least one); the next page is read only
        when the caller asks for it, and starts after the last document given, so documents
        written meanwhile are seen or not by where they fall, never twice. No page is empty.
        `fields` (top-level names) returns only those fields, the key's and `id`; None
        returns whole documents. `after` (the key values with the id last, as
        `aorta.store.paging.key_of` reads them) starts after that document. `Invalid` for a
        bad filter, key, fields, page size or `after`, raised on the first page.
        """
        ...

    async def count(self, filter: Mapping[str, Any] | None = None) -> int:
        """How many documents match `filter` (all when None)."""
        ...

    async def update(
        self,
        id: str,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        unset: Sequence[str] = (),
        fields: Sequence[str] | None = None,
    ) -> Document:
        """Sets `changes` (top-level or dotted paths), removes `unset` paths, bumps `version`.

        Atomic: the document moves from one version to the next in one step, `updated_at`
        refreshed. Setting `a.b` creates `a` as an object when it is missing; `Invalid` when `a`
        holds anything but an object. Setting `a.3` replaces element 3 of the list in `a`;
        `Invalid` unless `a` holds a list that has it (element paths cannot be unset).
        Unsetting a missing path does nothing. With
        `expected_version`, `Conflict` unless the stored version equals it (so of two writers
        holding the same version, exactly one wins). `NotFound` when absent, `Conflict` on a
        unique index violation, `Invalid` when a path touches a managed field or two paths
        overlap (`a` and `a.b`). Returns the updated document; with `fields` (top-level
        names), only those of its fields, `id` and `version`, for a caller that needs no more
        (a job's writer needs only the new version) and so spares decoding the rest.
        """
        ...

    async def delete(self, id: str, *, expected_version: int | None = None) -> None:
        """Removes the document; `NotFound` when absent, `Conflict` on a stale version."""
        ...

    async def delete_many(self, filter: Mapping[str, Any]) -> int:
        """Removes every document matching `filter` (`{}` for all); returns how many."""
        ...

    async def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        """Creates an index on `fields` (in order) unless it exists; idempotent.

        A unique index rejects a second document holding the same values in all `fields`
        (`1` and `1.0` are equal, `1` and `true` are not, null is a value); documents missing
        one of the fields are not constrained. Meant for scalar fields: MongoDB indexes list
        elements one by one. `Conflict` when existing documents already clash, or when the
        same fields already have an index of the other kind.
        """
        ...


class StateStore(Protocol):
    """Named collections over one database; `close` releases its connections."""

    def collection(self, name: str) -> Collection:
        """The collection `name` (`[a-z][a-z0-9_]*`, at most 63 characters); `Invalid` else."""
        ...

    async def close(self) -> None:
        """Closes the store; idempotent. Later calls on its collections raise `Unavailable`."""
        ...


def check_collection_name(name: object) -> str:
    """`name` if it can name a collection (and an SQLite table); `Invalid` otherwise."""
    if not isinstance(name, str) or not _COLLECTION.fullmatch(name) or name.startswith("sqlite"):
        raise Invalid(
            f"collection name {name!r} is not valid: use lower-case letters, digits and "
            "underscores, starting with a letter, at most 63 characters, not starting with sqlite"
        )
    return name


def check_path(collection: str, path: object) -> str:
    """`path` if it can address a field (`a` or `a.b.c`); `Invalid` naming it otherwise."""
    if not isinstance(path, str) or not _PATH.fullmatch(path) or path.split(".")[0] == "_id":
        raise Invalid(
            f"{collection}: field {path!r} is not valid: use dot-separated names of letters, "
            "digits and underscores, each not starting with a digit (and no _id)"
        )
    return path


def checked_value(collection: str, value: Any, where: str, depth: int = 0) -> Any:
    """A deep copy of `value` made of plain JSON types, or `Invalid` naming `where`.

    Copying while checking means the store never keeps (or returns) an object the caller may
    still mutate, and enum members and other subclasses become plain values.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise Invalid(f"{collection}: {where} is outside the signed 64-bit integer range")
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid(f"{collection}: {where} is not a finite number")
        return float(value)
    if isinstance(value, str):
        return _checked_text(collection, value, where)
    if depth >= MAX_DEPTH:
        raise Invalid(f"{collection}: {where} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        copy: Document = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"{collection}: {where} has a key that is not a string: {key!r}")
            _checked_text(collection, key, f"a key in {where}")
            copy[key] = checked_value(collection, item, f"{where}.{key}", depth + 1)
        return copy
    if isinstance(value, list):
        return [
            checked_value(collection, item, f"{where}[{i}]", depth + 1)
            for i, item in enumerate(value)
        ]
    raise Invalid(f"{collection}: {where} is a {type(value).__name__}, not a JSON value")


def _checked_text(collection: str, text: str, where: str) -> str:
    if "\x00" in text:
        raise Invalid(f"{collection}: {where} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(f"{collection}: {where} is not valid Unicode text") from None
    return str.__str__(text)


def new_document(collection: str, document: Mapping[str, Any], now: str) -> Document:
    """The checked copy `insert` stores: `document` plus version 1 and both times set to `now`."""
    if not isinstance(document, Mapping):
        raise Invalid(f"{collection}: a document must be a mapping, not {type(document).__name__}")
    id = document.get("id")
    if not isinstance(id, str) or not id:
        raise Invalid(f"{collection}: a document needs a non-empty string 'id'")
    for key in document:
        if not isinstance(key, str) or not _NAME.fullmatch(key) or key == "_id":
            raise Invalid(
                f"{collection}: top-level field name {key!r} is not valid: use letters, digits "
                "and underscores, not starting with a digit (and no _id)"
            )
        if key in MANAGED_FIELDS[1:]:
            raise Invalid(f"{collection}: field {key!r} is set by the store, not by the caller")
    stored: Document = checked_value(collection, document, f"document {id!r}")
    stored.update(version=1, created_at=now, updated_at=now)
    return stored


def not_found(collection: str, id: str) -> NotFound:
    return NotFound(f"{collection}: no document with id {id!r}")


def duplicate_id(collection: str, id: str) -> Conflict:
    return Conflict(f"{collection}: a document with id {id!r} already exists")


def unique_conflict(collection: str, fields: Sequence[str]) -> Conflict:
    names = ", ".join(repr(field) for field in fields)
    noun = "field" if len(fields) == 1 else "fields"
    return Conflict(
        f"{collection}: another document already has the same value in unique {noun} {names}"
    )


def version_conflict(collection: str, id: str, expected: int, actual: Any) -> Conflict:
    return Conflict(
        f"{collection}: document {id!r} is at version {actual}, not the expected {expected}"
    )


def check_id(collection: str, id: object) -> str:
    """`id` if it is a non-empty string; `Invalid` otherwise."""
    if not isinstance(id, str) or not id:
        raise Invalid(f"{collection}: a document id must be a non-empty string, not {id!r}")
    return id


def index_kind_conflict(collection: str, fields: Sequence[str], unique: bool) -> Conflict:
    existing = "non-unique" if unique else "unique"
    return Conflict(f"{collection}: fields {list(fields)} already have a {existing} index")


def index_clash(collection: str, fields: Sequence[str]) -> Conflict:
    return Conflict(
        f"{collection}: cannot add a unique index on {list(fields)}: "
        "existing documents already share values"
    )


def check_version(collection: str, expected_version: object) -> int | None:
    """`expected_version` if it is None or a positive int; `Invalid` otherwise."""
    if expected_version is None:
        return None
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise Invalid(f"{collection}: expected_version must be an integer")
    if expected_version < 1:
        raise Invalid(f"{collection}: expected_version must be 1 or more")
    return expected_version


def check_paging(collection: str, limit: object, skip: object) -> None:
    """Checks `find`'s `limit` (None or an int >= 0) and `skip` (an int >= 0); `Invalid` else."""
    for what, value in (("limit", limit), ("skip", skip)):
        if what == "limit" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Invalid(f"{collection}: {what} must be a non-negative integer, not {value!r}")


def check_index_fields(collection: str, fields: Sequence[str]) -> tuple[str, ...]:
    """`fields` as a tuple when they can form an index (non-empty, distinct paths)."""
    if isinstance(fields, str) or not isinstance(fields, Sequence) or not fields:
        raise Invalid(f"{collection}: an index needs a non-empty sequence of field paths")
    checked = tuple(check_path(collection, field) for field in fields)
    if len(set(checked)) != len(checked):
        raise Invalid(f"{collection}: an index names the same field twice: {list(checked)}")
    return checked


def index_name(fields: Sequence[str], unique: bool) -> str:
    """The name both adapters give an index; unambiguous since paths hold no ':' or ','."""
    return f"{'unique' if unique else 'index'}:{','.join(fields)}"
