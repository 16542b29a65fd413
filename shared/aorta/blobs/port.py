"""The blob store port: where payload files, operator outputs, logs and models keep their bytes.

Two adapters implement it and pass the same contract suite (tests/integration/blobs): a local
folder (`aorta.blobs.local`, the embedded default) and any S3 endpoint such as MinIO
(`aorta.blobs.s3`). Keys follow `aorta.blobs.keys`; every method raises `Invalid` for a bad key
before touching the store.

Errors are `aorta.errors` only: `NotFound` for a missing object, `Invalid` for a bad key or
argument, `Conflict` where the backend cannot hold a key next to another one (see
`LocalBlobStore`), `Unavailable` when the backend cannot be reached (retrying may help), and
`Internal` for anything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

DEFAULT_CHUNK_SIZE = 1 << 20
MAX_DIRECT_UPLOAD = 5 << 40
"""The largest object a direct upload carries (S3's largest object)."""
DIRECT_PART_SIZE = 8 << 20
"""The least part of a direct upload (the last excepted): files up to it are one PUT. Small
parts cost an S3 store less work per byte than large ones (moto: a fifth less CPU at 8 MiB
than at 64 MiB) and are what S3's own command-line client sends."""
MAX_DIRECT_PARTS = 1000
"""The most parts of a direct upload, so that their links fit one answer."""


def direct_part_size(size: int) -> int:
    """Bytes per part of a direct upload of `size` bytes (the last part may be shorter)."""
    per_part = -(-size // MAX_DIRECT_PARTS)
    return max(DIRECT_PART_SIZE, -(-per_part // (1 << 20)) << 20)


@dataclass(frozen=True)
class BlobInfo:
    """What a store knows about one object.

    `modified` is timezone-aware UTC. `sha256` (lowercase hex) is always set by `put`; `stat`,
    `list` and `copy` return None where the backend does not record it.
    """

    key: str
    size: int
    modified: datetime
    sha256: str | None = None


class BlobStore(Protocol):
    """Objects under keys, streamed in and out with bounded memory.

    The iterators `get` and `list` return are async generators holding a file or a connection:
    they release it when exhausted, when the task iterating them is cancelled, and otherwise
    when closed or garbage-collected (a caller that stops early may `aclose()` them).
    """

    async def put(self, key: str, chunks: AsyncIterable[bytes | memoryview]) -> BlobInfo:
        """Stores the bytes `chunks` yields under `key`, replacing any object there.

        A chunk may be a memoryview (the gateway slices upload chunks out of their messages);
        a view the caller may change after yielding it is copied before `chunks` goes on.

        Streams: memory stays bounded (a few MiB) whatever the object size; size and sha256 are
        computed on the way and returned.

        Atomic: the object appears under `key` only once `chunks` is exhausted and every byte is
        durably written. If `chunks` raises, or the call is cancelled before that commit point,
        the previous object under `key` (if any) stays intact and no partial data is visible to
        `list`; the error (or the cancellation) propagates. The commit itself (a rename, a
        completed upload) cannot be interrupted: a cancellation arriving during it waits for it
        and is then re-raised, the new object being in place.
        """
        ...

    def get(
        self,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Streams the object's bytes from `offset`, at most `length` of them (all when None).

        Chunks are at most `chunk_size` bytes. Reading past the end yields what is there,
        possibly nothing. `NotFound` when the object is absent, raised by the first iteration at
        the latest; `Invalid` for a negative offset or length or a chunk size below 1.
        """
        ...

    async def stat(self, key: str) -> BlobInfo:
        """The object's size and modification time; `NotFound` when absent."""
        ...

    def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        """Every object whose key starts with `prefix` (a plain string prefix, so `a/b` matches
        `a/bc` while `a/b/` does not), recursively, sorted by key (code point order, which is
        S3's UTF-8 byte order). An object put or deleted during the listing may or may not
        appear."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the object; `NotFound` when absent."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Removes every object whose key starts with `prefix`; returns how many it removed.

        `prefix` must not be empty (`Invalid`): emptying a whole store takes a deliberate loop.
        Not atomic: if it fails midway, some objects are gone and the others remain.
        """
        ...

    async def copy(self, source: str, target: str) -> BlobInfo:
        """Copies `source` to `target` (server-side where the backend can), replacing `target`
        atomically as `put` does; `NotFound` when `source` is absent. Copying a key onto itself
        changes nothing."""
        ...

    async def close(self) -> None:
        """Releases threads, files and connections; waits for blocking calls in flight.
        The store must not be used afterwards."""
        ...


@dataclass(frozen=True)
class DirectLink:
    """A pre-signed request for one object: send `method` to `url` with `headers` within
    `expires_in` seconds. It carries no credential but its own signature, and names no other
    object."""

    url: str
    method: str
    expires_in: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectUpload:
    """A pending upload: one PUT link per part of `part_size` bytes (the last may be
    shorter), in order; `upload_id` names it."""

    upload_id: str
    part_size: int
    parts: tuple[DirectLink, ...]


@runtime_checkable
class DirectLinks(Protocol):
    """What a store that clients can reach themselves (S3) offers beside `BlobStore`: links
    that move one object's bytes without passing through the platform. A store without it (a
    local folder) is used through the platform only (`direct_links` says which).

    An upload through a link stays pending, invisible under its key, until the platform
    completes it (`complete_upload`) after checking what the store received; so a half-sent or
    wrong upload never replaces an object, and one the platform no longer wants is dropped.
    """

    async def upload_links(self, key: str, size: int, expires_in: int) -> DirectUpload:
        """PUTs of an object of `size` bytes (at most `MAX_DIRECT_UPLOAD`) for `key`, in parts
        of `direct_part_size(size)`, pending until completed; `Invalid` for a bad key."""
        ...

    async def download_link(
        self, key: str, expires_in: int, *, filename: str | None = None
    ) -> DirectLink:
        """A GET of the object under `key` (a browser saves it as `filename` when given);
        `NotFound` when absent."""
        ...

    async def complete_upload(
        self, key: str, upload_id: str, *, size: int, part_md5s: Sequence[str]
    ) -> BlobInfo:
        """Makes what was PUT through the links the object under `key`, replacing it
        atomically as `put` does, when the store received every part, each of its size and of
        the MD5 (the store's own, lowercase hex) in `part_md5s`; the returned `sha256` is None.

        `Invalid` when the bytes differ (the upload is dropped), `NotFound` when no such upload
        is pending (completed, dropped, or never begun), `Conflict` when its bytes changed
        while they were checked (it stays pending).
        """
        ...

    async def cancel_upload(self, key: str, upload_id: str) -> None:
        """Drops a pending upload; nothing when there is none."""
        ...


def direct_links(store: BlobStore) -> DirectLinks | None:
    """`store` when it hands out direct links, else None."""
    return store if isinstance(store, DirectLinks) else None
