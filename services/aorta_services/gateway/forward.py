"""Handlers that pass a Clara request across the bus to the service that owns it.

For RPCs that map one to one onto a service verb, the bus carries the Clara messages themselves
(serialized protobuf): the gateway stays a thin, stateless translator and the owning service
answers with the response message, or with an `AortaError` that `rpc.py` turns into a header.
The RPCs the gateway handles itself call the internal verbs by their contracts (`call`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from google.protobuf.message import Message

from aorta.auth.caller import caller_headers
from aorta.auth.ownership import owner_metadata
from aorta.blobs import BlobStore
from aorta.bus import Bus
from aorta.bus.unanswered import stalled, timed_out
from aorta.bus.verbs import StreamVerb, Verb, call
from aorta.errors import Unavailable
from aorta.logger import get_logger
from aorta.settings import Settings
from aorta_services.gateway.answer_cache import KeptAnswers
from aorta_services.gateway.rpc import Context, Encoded, StreamingHandler, UnaryHandler

REQUEST_ID_HEADER = "Aorta-Request-Id"

READ_ATTEMPTS = 2
"""How often the gateway asks a read before the caller gets "no answer": a replica that dies
(or stalls) holding a request never answers it, and a read asked again of another replica
changes nothing."""

log = get_logger(__name__)

Req = TypeVar("Req")
Ans = TypeVar("Ans")


def _headers() -> dict[str, str]:
    """The bus headers of a request made for the gRPC call being served: its request id and
    its caller, whom the service checks ownership against (`aorta.auth.caller`)."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    headers = caller_headers()
    if request_id:
        headers[REQUEST_ID_HEADER] = str(request_id)
    return headers


class Forwarder:
    """Builds gRPC handlers that forward to bus subjects."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    def unary(
        self,
        subject: str,
        response_class: type[Message],
        *,
        extra_headers: Callable[[Context], Mapping[str, str]] | None = None,
        reads: bool = False,
    ) -> UnaryHandler:
        """A unary handler answered by a bus request to `subject`; `extra_headers` adds bus
        headers read from the call (its gRPC metadata). `reads`: the verb changes nothing, so
        an unanswered request is asked again (`READ_ATTEMPTS`)."""

        async def handler(request: Any, context: Context) -> Message:
            headers = _headers()
            if extra_headers is not None:
                headers.update(extra_headers(context))
            body = request.SerializeToString()
            reply = await self._request(subject, body, headers, reads=reads)
            return response_class.FromString(reply)

        return handler

    async def _request(
        self, subject: str, body: bytes, headers: Mapping[str, str], *, reads: bool
    ) -> bytes:
        """The answer to one bus request; a read goes `READ_ATTEMPTS` times, each bounded by
        its share of the RPC timeout, so the caller waits no longer for "no answer"."""
        attempts = READ_ATTEMPTS if reads else 1
        attempt_timeout = self._timeout / attempts
        attempt = 1
        while True:
            try:
                return await self._bus.request(
                    subject, body, timeout=attempt_timeout, headers=headers
                )
            except Unavailable as error:
                if attempt == attempts or not timed_out(error, subject):
                    raise
                log.warning("gateway.read_asked_again", subject=subject, attempt=attempt)
                attempt += 1

    def server_stream(
        self, subject: str, response_class: type[Message], *, reads: bool = False
    ) -> StreamingHandler:
        """A server-streaming handler fed by a bus stream from `subject`; `reads` as for
        `passed_on`."""

        async def handler(request: Any, context: Context) -> AsyncIterator[Message]:
            body = request.SerializeToString()
            async for item in self._items(subject, body, _headers(), reads=reads):
                yield response_class.FromString(item)

        return handler

    def passed_on(self, subject: str, *, reads: bool = False) -> StreamingHandler:
        """A server-streaming handler that passes each item of the bus stream from `subject`
        on as the serialized message it already is (`rpc.Encoded`), for lists: parsing and
        serializing again a message of megabytes of metadata costs as much as the rest of its
        way. Errors still arrive as raised `AortaError`s, which `rpc.py` answers. `reads`: the
        verb changes nothing, so a stream that sent nothing yet is asked again (`_items`)."""

        def handler(request: Any, context: Context) -> AsyncIterator[Encoded]:
            # The bus items themselves, with no generator of its own around them: a whole
            # List passes a hundred thousand of them.
            return self._items(subject, request.SerializeToString(), _headers(), reads=reads)

        return handler

    async def _items(
        self, subject: str, body: bytes, headers: Mapping[str, str], *, reads: bool
    ) -> AsyncGenerator[bytes, None]:
        """The items of a bus stream from `subject`. `reads`: the verb changes nothing, so a
        stream that went unanswered before its first item (a replica died or stalled holding
        it) is asked again (`READ_ATTEMPTS`), each try, and each item then, waited for its
        share of the RPC timeout; one that fails after its first item is not, since its
        caller has part of it already. Closing this generator closes the bus stream."""
        attempts = READ_ATTEMPTS if reads else 1
        attempt = 1
        while True:
            received = False
            stream = self._bus.request_stream(
                subject, body, timeout=self._timeout / attempts, headers=headers
            )
            try:
                async with aclosing(stream):
                    async for item in stream:
                        received = True
                        yield item
                return
            except Unavailable as error:
                unanswered = stalled(error, subject) or timed_out(error, subject)
                if received or attempt == attempts or not unanswered:
                    raise
                log.warning("gateway.read_asked_again", subject=subject, attempt=attempt)
                attempt += 1

    async def call(
        self,
        verb: Verb[Req, Ans],
        request: Req,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the bus's per-call bound, passed on)
    ) -> Ans:
        """Asks an internal verb, with the gRPC call's request id; `timeout` defaults to the
        RPC timeout."""
        return await call(
            self._bus, verb, request, timeout=timeout or self._timeout, headers=_headers()
        )

    async def read(self, verb: Verb[Req, Ans], request: Req) -> Ans:
        """`call` for a verb that changes nothing: asked again when it goes unanswered
        (`READ_ATTEMPTS`)."""
        body = verb.encode_request(request)
        return verb.decode_answer(await self._request(verb.subject, body, _headers(), reads=True))

    async def call_stream(
        self, verb: StreamVerb[Req, Ans], request: Req, *, reads: bool = False
    ) -> AsyncIterator[Ans]:
        """Asks a streamed internal verb, with the gRPC call's request id and caller. `reads`:
        the verb changes nothing, so a stream that sends nothing at all is asked again
        (`READ_ATTEMPTS`, as for `passed_on`)."""
        body = verb.encode_request(request)
        items = self._items(verb.subject, body, _headers(), reads=reads)
        async with aclosing(items):
            async for item in items:
                yield verb.decode_answer(item)

    async def call_encoded(self, verb: Verb[Req, Ans], body: bytes) -> Ans:
        """`call` with a request already encoded (`verb.encode_request`), such as one whose
        size was checked first."""
        reply = await self._bus.request(
            verb.subject, body, timeout=self._timeout, headers=_headers()
        )
        return verb.decode_answer(reply)


async def tell_owner(context: Context, owner: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
    """Sends the subject that created the thing a response describes as initial metadata
    (`aorta.auth.ownership`), with `extra` pairs, before the response; nothing when there is
    none of either."""
    metadata = (*owner_metadata(owner), *extra)
    if metadata:
        await context.send_initial_metadata(metadata)


@dataclass(frozen=True)
class GatewayContext:
    """What each service's gateway handlers may use: the bus, the blob store, the settings,
    and the kept read answers (caches never started keep none)."""

    forward: Forwarder
    bus: Bus
    blobs: BlobStore
    settings: Settings
    kept: KeptAnswers = field(default_factory=KeptAnswers)
