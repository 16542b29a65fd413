"""Gateway handlers around the kept answers (`answer_cache`): streamed Details answered from
the cache, and commands that drop what they may change.

A Details stream is kept whole, as the messages the client got (serialized once), with the
owner the client got as initial metadata, when every message of it is settled (the service
says so per message), names the thing the request named, spelt as the thing's events spell
it, and all of them together take at most `MAX_KEPT_BYTES`; a larger answer passes through
uncached. The key is the request without its header (`request_key`): what the service reads
of it. A stream the client abandons is not kept. A kept answer is shared by every caller, so
where the service checks who may read the thing (Payloads.Details), `readable` checks the kept
owner again for each caller before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from google.protobuf.message import Message

from aorta import ids
from aorta.errors import Invalid
from aorta_services.gateway.answer_cache import AnswerCache, KeptStream
from aorta_services.gateway.forward import tell_owner
from aorta_services.gateway.rpc import Context, Encoded, UnaryHandler

MAX_KEPT_BYTES = 64 * 1024
"""The largest Details answer kept, all messages together."""


class DetailsItem(Protocol):
    """One message of a Details stream as its service answers it (`aorta.contracts`)."""

    @property
    def details(self) -> Message: ...

    @property
    def owner(self) -> str: ...

    @property
    def settled(self) -> bool: ...


def canonical(value: str) -> str:
    """An id as events spell it (`aorta.ids`), or `value` itself when it is none: a command
    dropping by a misspelt id drops nothing, and is refused anyway."""
    try:
        return ids.canonical_id(value, what="id")
    except Invalid:
        return value


def request_key(request: Message) -> bytes:
    """The cache key of `request`: its fields but the header, serialized deterministically."""
    keyed = type(request)()
    keyed.CopyFrom(request)
    keyed.ClearField("header")
    return keyed.SerializeToString(deterministic=True)


async def kept_details(
    cache: AnswerCache[KeptStream],
    entity_id: str,
    request: Message,
    context: Context,
    fetch: Callable[[], AsyncIterator[DetailsItem]],
    named: Callable[[Any], str],
    readable: Callable[[str], None] | None = None,
) -> AsyncIterator[Encoded]:
    """The Details answer for `request` about `entity_id`: the kept one, else the stream
    `fetch` asks of the service, kept as the module docstring says. `named` reads the thing's
    id from one message; `readable` (given the kept owner) raises when the caller may not
    read the kept answer."""
    key = request_key(request)
    kept = cache.get(entity_id, key)
    if kept is not None:
        if readable is not None:
            readable(kept.owner)
        await tell_owner(context, kept.owner)
        for message in kept.messages:
            yield message
        return
    with cache.fetching(entity_id) as fetching:
        messages: list[bytes] | None = []
        owner = ""
        size = 0
        first = True
        async for item in fetch():
            if first:
                owner = item.owner
                await tell_owner(context, owner)
                first = False
            message = item.details.SerializeToString()
            if messages is not None:
                size += len(message)
                if size > MAX_KEPT_BYTES or not item.settled or named(item.details) != entity_id:
                    messages = None
                else:
                    messages.append(message)
            yield message
        if messages:
            fetching.keep(KeptStream(owner, tuple(messages)), key)


def changing(
    handler: UnaryHandler,
    cache: AnswerCache[Any],
    named: Callable[[Any], str],
) -> UnaryHandler:
    """`handler` of a command that may change the thing its request names (`named` reads the
    id, `canonical` spells it as events do): the thing's kept answers are dropped before it
    is forwarded, and again once it answered (or failed), so that no answer read meanwhile is
    kept either."""

    async def forwarded(request: Any, context: Context) -> Message:
        entity_id = canonical(named(request))
        cache.drop(entity_id)
        try:
            return await handler(request, context)
        finally:
            cache.drop(entity_id)

    return forwarded
