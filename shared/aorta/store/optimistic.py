"""Read-modify-write under optimistic concurrency: the one retry loop for lost races.

Two writers that read one document at one version both try to write it back with that version
as `expected_version`; the store lets exactly one through and refuses the other with `Conflict`.
The loser must read again and re-apply its change to what the winner wrote (or learn that it
no longer applies). `optimistic_update` is that loop, with one attempt limit and one back-off
for every service:

- `ATTEMPTS` (10) tries at most. A lost race means another writer committed in the short gap
  between this writer's read and its write; with the pauses below, ten tries spread the writers
  of one document over up to 555 ms (the sum of the pauses' ceilings), room for dozens of store
  round trips, while a change that still cannot get through gives up then rather than stall
  its caller.
- Before the n-th retry a random pause of up to `FIRST_PAUSE` x 2^(n-1) seconds, at most
  `MAX_PAUSE`. The gap a winner needs is one store round trip (well under a millisecond on
  SQLite, about one on MongoDB), so 5 ms already separates two racers; doubling the ceiling
  gives k racers room after about log2(k) retries; the random draw (anywhere from 0 to the
  ceiling) keeps racers that lost together from colliding again at once; and the cap bounds
  any one wait.

Writers of one document in one process take turns (`modify_document` holds the document's
`document_turn` from its read to its write, as does any other read-change-write of a document),
so the retries are for writers in other processes. Without the
turns, concurrent writers in one process would race each other for nothing, and lose in a way
no pause can help: the SQLite store commits writes in groups (`aorta.store.sqlite_writer`), so
every write prepared against one version lands in one batch where only the first gets through,
and when a commit takes longer than the pauses (an fsync on a busy disk) the losers read again
together and meet in the next batch. Eight concurrent metadata additions and their outbox
removals then need sixteen batches, and the last writer gave up after ten.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from aorta.errors import Conflict, NotFound
from aorta.store.port import Collection, Document

ATTEMPTS = 10
"""How often `optimistic_update` tries before it gives up (see the module docstring)."""
FIRST_PAUSE = 0.005
"""Seconds; the ceiling of the random pause before the first retry, doubled for each next one."""
MAX_PAUSE = 0.1
"""Seconds; no pause between two tries is longer."""

S = TypeVar("S")
T = TypeVar("T")


async def optimistic_update(
    read: Callable[[], Awaitable[S]],
    write: Callable[[S], Awaitable[T]],
    *,
    gave_up: Callable[[], Exception],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """`write(await read())`, tried again from `read` each time `write` loses a race.

    `read` reads the current state and works out the change (the version to expect and what to
    write); whatever it raises, a refusal or `NotFound` or even a `Conflict`, ends the update
    unchanged and is never retried. `write` makes the conditional write; a `Conflict` from it
    means another writer got in first, so after a pause (see the module docstring) the update
    starts again from a fresh `read`. Any other error from `write` propagates unchanged and is
    not retried: it may or may not have been applied, which only the caller can judge.

    Returns what `write` returned. When `ATTEMPTS` writes have lost, raises `gave_up()` (the
    caller's error, so each service keeps its own code and message) with the last `Conflict`
    as its cause. Cancellation is never caught: it ends the update at once, during a pause as
    during a read or a write (which, as the store's port says, may then have been applied).

    `sleep` and `jitter` (a draw in [0, 1) that scales the pause's ceiling) are there for
    tests; callers leave them alone.
    """
    retries = 0
    while True:
        state = await read()
        try:
            return await write(state)
        except Conflict as lost:
            retries += 1
            if retries == ATTEMPTS:
                raise gave_up() from lost
        # Outside the handler, so a cancelled pause does not carry the lost race as context.
        await sleep(jitter() * min(MAX_PAUSE, FIRST_PAUSE * 2 ** (retries - 1)))


async def modify_document(
    collection: Collection,
    id: str,
    change: Callable[[Document], Document],
    *,
    missing: Callable[[], Exception],
    gave_up: Callable[[], Exception],
    read: Callable[[], Awaitable[Document]] | None = None,
) -> Document:
    """Replaces document `id` of `collection` by `change(current)` as one atomic step, and
    returns the stored document: the one read-change-write of every repository.

    `change` receives the stored document and returns it as it should be (without the store's
    own `version`, `created_at` and `updated_at`); it may raise to refuse, and nothing is
    written then. The top-level fields whose values differ are written against the version
    that was read; when none differs nothing is written and the document read is returned.
    A lost race starts again from a fresh read (`optimistic_update`, which raises `gave_up()`
    in the end). `read` replaces `collection.get(id)` for a caller that refuses some
    documents; a document absent when read or written raises `missing()`.

    Calls for the same document of the same collection object take turns, each from its read
    to its write (see the module docstring): in one process they never lose a race to each
    other, only to writers elsewhere. `read` must not call `modify_document` for the same
    document: it would wait for its own turn.
    """

    async def current() -> Document:
        try:
            return await (read() if read is not None else collection.get(id))
        except NotFound:
            raise missing() from None

    async def prepare() -> tuple[Document, Document]:
        before = await current()
        after = change(before)
        return before, {key: value for key, value in after.items() if before.get(key) != value}

    async def write(prepared: tuple[Document, Document]) -> Document:
        before, changes = prepared
        if not changes:
            return before
        try:
            return await collection.update(id, changes, expected_version=before["version"])
        except NotFound:
            raise missing() from None

    async with document_turn(collection, id):
        return await optimistic_update(prepare, write, gave_up=gave_up)


class _Turns:
    """The lock of one document and how many callers hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


# By collection object, not name: two stores in one process (two replicas in a test) are two
# writers whose races the optimistic retries settle, as between processes. An entry lives only
# while someone holds or waits for its turn, so the table stays as small as the writes in flight.
_turns: dict[tuple[Collection, str], _Turns] = {}


@asynccontextmanager
async def document_turn(collection: Collection, document_id: str) -> AsyncIterator[None]:
    """Holds the turn of document `document_id` of `collection` object in this process, for
    one read-change-write (`optimistic_update`) of it: callers enter one at a time, in the
    order they asked. Not reentrant: a holder that asks again waits for itself."""
    key = (collection, document_id)
    turns = _turns.get(key)
    if turns is None:
        turns = _turns[key] = _Turns()
    turns.users += 1
    try:
        async with turns.lock:
            yield
    finally:
        turns.users -= 1
        if not turns.users:
            del _turns[key]


def kept_changing(what: str, *, code: int) -> Callable[[], Conflict]:
    """A `gave_up` for `optimistic_update`: `Conflict` with `code`, saying that `what` (as in
    "model 7f3a") kept changing and the client may try again."""

    def error() -> Conflict:
        message = f"{what} kept changing while being updated ({ATTEMPTS} attempts); try again"
        return Conflict(message, code=code)

    return error
