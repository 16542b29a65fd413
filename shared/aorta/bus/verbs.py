"""Verbs with typed bodies: declared once (`aorta.contracts`), called and served by type.

A `Verb` (one answer) or `StreamVerb` (a stream of answers) pairs a subject with its request and
answer types, and encodes and decodes both through `aorta.bus.codec`. A caller writes
`answer = await call(bus, contracts.PIPELINES_SNAPSHOT, SnapshotRequest(...), timeout=...)`; a
service serves a handler taking the request object and returning the answer object
(`answering`, `streaming`; `RunningService.serve_verb` registers the first kind).

A request that does not decode is refused with `Invalid` carrying the serving service's
request-error code, before the handler runs; an answer that does not decode is `Internal`,
naming the service: it broke the contract, and the caller cannot mend that.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

from aorta.bus.codec import Malformed, decode, encode
from aorta.bus.port import Bus, Request, StreamHandler, UnaryHandler
from aorta.errors import ErrorCode, Internal, Invalid
from aorta.subjects import RPC_PREFIX

Req = TypeVar("Req")
Ans = TypeVar("Ans")

REQUEST_INVALID = {
    "pipelines": ErrorCode.PIPELINE_DEFINITION_ERROR,
    "payloads": ErrorCode.PAYLOAD_REQUEST_INVALID,
    "scheduler": ErrorCode.JOB_REQUEST_INVALID,
    "models": ErrorCode.MODEL_REQUEST_INVALID,
}
"""Each serving service's code for a request it cannot read."""


@dataclass(frozen=True)
class Contract(Generic[Req, Ans]):
    """A subject (`aorta.rpc.<service>.<verb>`) with its request and answer types."""

    subject: str
    request: type[Req]
    answer: type[Ans]

    def __post_init__(self) -> None:
        if self.service not in REQUEST_INVALID:
            raise ValueError(f"{self.subject} is not a verb of a service in REQUEST_INVALID")

    @property
    def service(self) -> str:
        """The serving service, as the subject names it."""
        return self.subject.removeprefix(f"{RPC_PREFIX}.").split(".")[0]

    @property
    def name(self) -> str:
        """The verb, as the subject names it."""
        return self.subject.removeprefix(f"{RPC_PREFIX}.{self.service}.")

    def encode_request(self, request: Req) -> bytes:
        return encode(request)

    def decode_request(self, body: bytes) -> Req:
        """The request; `Invalid` with the service's request-error code when malformed (or
        the id's own `Invalid` for a malformed id)."""
        try:
            return decode(body, self.request)
        except Malformed as problem:
            raise Invalid(
                f"malformed {self.service} {self.name} request: {problem}",
                code=REQUEST_INVALID[self.service],
            ) from None

    def encode_answer(self, answer: Ans) -> bytes:
        return encode(answer)

    def decode_answer(self, body: bytes) -> Ans:
        """The answer (one item, for a stream); `Internal` naming the service when malformed."""
        try:
            return decode(body, self.answer, role="answer")
        except (Malformed, Invalid) as problem:
            raise Internal(
                f"the {self.service} service answered {self.name} with a malformed answer: "
                f"{problem}"
            ) from None


class Verb(Contract[Req, Ans]):
    """A verb answered with one `answer`."""


class StreamVerb(Contract[Req, Ans]):
    """A verb answered with a stream of `answer` items."""


async def call(
    bus: Bus,
    verb: Verb[Req, Ans],
    request: Req,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the bus's per-call bound, passed on)
    headers: Mapping[str, str] | None = None,
) -> Ans:
    """Asks `verb` (see `Bus.request` for `timeout`, `headers` and the errors)."""
    answer = await bus.request(
        verb.subject, verb.encode_request(request), timeout=timeout, headers=headers
    )
    return verb.decode_answer(answer)


async def call_stream(
    bus: Bus,
    verb: StreamVerb[Req, Ans],
    request: Req,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the bus's idle bound, passed on)
    headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[Ans, None]:
    """Asks `verb` and yields its answers (see `Bus.request_stream`); closing this generator
    closes the bus stream."""
    stream = bus.request_stream(
        verb.subject, verb.encode_request(request), timeout=timeout, headers=headers
    )
    async with aclosing(stream):
        async for item in stream:
            yield verb.decode_answer(item)


def answering(verb: Verb[Req, Ans], handler: Callable[[Req], Awaitable[Ans]]) -> UnaryHandler:
    """The bus handler of `verb` that decodes the request, awaits `handler` and encodes its
    answer."""

    async def answer(request: Request) -> bytes:
        return verb.encode_answer(await handler(verb.decode_request(request.data)))

    return answer


def streaming(
    verb: StreamVerb[Req, Ans], handler: Callable[[Req], AsyncGenerator[Ans, None]]
) -> StreamHandler:
    """The bus handler of `verb` that decodes the request and encodes each item `handler`
    yields; the handler's generator is closed when the stream ends early."""

    async def stream(request: Request) -> AsyncGenerator[bytes, None]:
        async with aclosing(handler(verb.decode_request(request.data))) as items:
            async for item in items:
                yield verb.encode_answer(item)

    return stream
