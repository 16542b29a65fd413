"""One place that turns Clara RPCs into calls of our handlers, with the platform's manners.

Handlers are plain coroutines that receive parsed request messages and return (or yield)
response messages, or, where copying bytes through a message costs too much, responses they
encoded themselves (`Encoded`). This module wraps each of them so that:

- a request that does not parse is refused with INVALID_ARGUMENT (grpc core already answers an
  oversized one with RESOURCE_EXHAUSTED), never a traceback and never a dead server;
- an `AortaError` becomes a response with a negative `ResponseHeader.code` and readable
  `messages`, sent with gRPC status OK, because Clara clients read the header, not the status;
- anything unexpected is logged with its traceback and reported as an internal error naming the
  request id, so an operator can find the log line (these two in
  `aorta_services.gateway.rpc_errors`);
- every log line of the call carries the RPC name and a request id (from the `x-request-id`
  metadata when the client sends one), and the caller's subject once admitted;
- with tracing on, a unary or client-streaming call is served in a span that continues the
  client's W3C `traceparent` (`aorta.observability.tracing`), so the bus requests it makes
  carry the trace on;
- every call is first admitted by the `Guard` (`aorta_services.gateway.guard`: authentication,
  the role the method needs, the audit log) and runs with its caller bound
  (`aorta.auth.principal.calling_as`), streams included; an `errors.Forbidden` or
  `errors.Unauthenticated` raised while serving it is answered with gRPC PERMISSION_DENIED or
  UNAUTHENTICATED rather than a Clara header, since it is not the platform that failed.

A client-streaming handler may take its requests as wire bytes (`WireStreamHandler`): the
upload of payload files does, so that a 64 KiB chunk is never parsed into a message. Its first
request is still parsed here, for the guard's record, and a request it cannot parse still ends
the call with INVALID_ARGUMENT (`WireRequests.malformed`).

A client stream's requests end only when its client ended them: a call that is over (the
client cancelled, the deadline passed) ends as cancelled instead (`client_gone.confirm_end`),
so an upload cut short is never taken for a whole one.

Methods without a handler answer UNIMPLEMENTED (to an admitted caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeAlias

import grpc
import structlog
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from aorta.auth.principal import calling_as
from aorta.errors import Forbidden, Unauthenticated
from aorta.ids import new_id
from aorta.observability import tracing
from aorta_services.gateway.client_gone import client_gone, confirm_end
from aorta_services.gateway.guard import Call, Guard, aborted_result, outcome
from aorta_services.gateway.rpc_errors import answered, as_error, error_response

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
UnaryHandler: TypeAlias = Callable[[Any, Context], Awaitable[Message]]
Encoded: TypeAlias = bytes
"""A response its handler serialized itself, sent as it is: the download path builds each
chunk's message around the bytes read from the blob store instead of copying them into a
protobuf message and out again."""
StreamingHandler: TypeAlias = Callable[[Any, Context], AsyncIterator[Message | Encoded]]


class WireRequests(Protocol):
    """The requests of a client stream as their wire bytes, for a handler that parses them."""

    async def next(self) -> bytes | None:
        """The next request's bytes, None once the client ended the stream."""

    async def malformed(self) -> NoReturn:
        """Ends the call as a request that does not parse ends it (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class WireStreamHandler:
    """A client-streaming handler that takes its requests as `WireRequests`."""

    serve: Callable[[WireRequests, Context], Awaitable[Message]]


Handler: TypeAlias = UnaryHandler | StreamingHandler | WireStreamHandler

REQUEST_ID_METADATA = "x-request-id"


def _request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA and isinstance(value, str) and value:
            return value[:64]
    return new_id()[:16]


def _trace_carrier(context: Context) -> dict[str, str]:
    """The call's text metadata, where a W3C `traceparent` of the client's arrives."""
    return {
        key: value
        for key, value in context.invocation_metadata() or ()
        if isinstance(value, str) and key in ("traceparent", "tracestate")
    }


def _peeker(raw: bytes, request_class: type[Message]) -> Callable[[], Message | None]:
    """What the guard parses the request with for the record of a refusal."""

    def peek() -> Message | None:
        try:
            return request_class.FromString(raw)
        except DecodeError:
            return None

    return peek


async def _parse(raw: bytes, request_class: type[Message], context: Context) -> Message:
    try:
        return request_class.FromString(raw)
    except DecodeError:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {request_class.DESCRIPTOR.full_name} message",
        )
        raise  # abort always raises; this keeps the type checker honest


@contextmanager
def _admitted(call: Call) -> Iterator[None]:
    """Binds the call's caller for the code inside: `current_principal()` and log lines."""
    with (
        calling_as(call.principal),
        structlog.contextvars.bound_contextvars(subject=call.principal.subject),
    ):
        yield


def _unimplemented(rpc: str, guard: Guard) -> Callable[..., Any]:
    async def behavior(request: Any, context: Context) -> Any:
        await guard.admit(rpc, context, _request_id(context))
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not implemented yet")

    return behavior


def _method_handler(
    method: MethodDescriptor, handler: Handler | None, guard: Guard
) -> grpc.RpcMethodHandler[Any, Any]:
    rpc = f"{method.containing_service.full_name}/{method.name}"
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)
    client_streaming = method.client_streaming
    server_streaming = method.server_streaming
    serialize = _serialize
    if handler is None:
        behavior = _unimplemented(rpc, guard)
    elif isinstance(handler, WireStreamHandler):
        if server_streaming or not client_streaming:
            raise ValueError(f"{rpc} is not a client stream, so its requests cannot be wire bytes")
        behavior = _wire_streaming(rpc, handler, request_class, response_class, guard)
    elif server_streaming:
        behavior = _server_streaming(rpc, handler, request_class, response_class, guard)  # type: ignore[arg-type]
    elif client_streaming:
        behavior = _client_streaming(rpc, handler, request_class, response_class, guard)  # type: ignore[arg-type]
    else:
        behavior = _unary(rpc, handler, request_class, response_class, guard)  # type: ignore[arg-type]
    if client_streaming and server_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior, None, serialize)
    if client_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior, None, serialize)
    if server_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior, None, serialize)
    return grpc.unary_unary_rpc_method_handler(behavior, None, serialize)


def _serialize(response: Message | Encoded) -> bytes:
    """A response's wire form."""
    if isinstance(response, Encoded):
        return response
    return response.SerializeToString()


def _unary(
    rpc: str,
    handler: UnaryHandler,
    request_class: type[Message],
    response_class: type[Message],
    guard: Guard,
) -> Callable[[bytes, Context], Awaitable[Message]]:
    async def behavior(raw: bytes, context: Context) -> Message:
        request_id = _request_id(context)
        with (
            structlog.contextvars.bound_contextvars(rpc=rpc, request_id=request_id),
            tracing.server_span(rpc, _trace_carrier(context)),
        ):
            call = await guard.admit(rpc, context, request_id, _peeker(raw, request_class))
            with _admitted(call):
                request = await _parse(raw, request_class, context)
                await call.began(request)
                return await answered(rpc, response_class, handler(request, context), call)

    return behavior


def _client_streaming(
    rpc: str,
    handler: UnaryHandler,
    request_class: type[Message],
    response_class: type[Message],
    guard: Guard,
) -> Callable[[AsyncIterator[bytes], Context], Awaitable[Message]]:
    async def behavior(raw_requests: AsyncIterator[bytes], context: Context) -> Message:
        async def parsed() -> AsyncGenerator[Message, None]:
            async for raw in raw_requests:
                yield await _parse(raw, request_class, context)
            await confirm_end(context)

        async def requests(
            first: Message | None, rest: AsyncIterator[Message]
        ) -> AsyncGenerator[Message, None]:
            if first is None:
                return
            yield first
            async for request in rest:
                yield request

        request_id = _request_id(context)
        with (
            structlog.contextvars.bound_contextvars(rpc=rpc, request_id=request_id),
            tracing.server_span(rpc, _trace_carrier(context)),
        ):
            call = await guard.admit(rpc, context, request_id)
            # Both generators are closed when the call ends, however much the handler read.
            async with aclosing(parsed()) as stream:
                with _admitted(call):
                    # The audit record names the resources of the first message (the payload
                    # an upload goes to), so it is read before the call proceeds.
                    first = await anext(stream, None)
                    await call.began(first)
                    async with aclosing(requests(first, stream)) as given:
                        return await answered(rpc, response_class, handler(given, context), call)

    return behavior


class _GrpcWireRequests:
    """A call's requests as gRPC received them (its method deserializes nothing), read with
    `context.read` rather than through grpc's request iterator, an async generator less per
    message."""

    def __init__(self, context: Context, request_class: type[Message]) -> None:
        self._context = context
        self._request_class = request_class
        self._first: bytes | None = None
        self._ended = False

    async def first(self) -> Message | None:
        """Reads the first request, parsed (None for an empty stream); `next` gives it again."""
        self._first = await self.next()
        if self._first is None:
            return None
        return await _parse(self._first, self._request_class, self._context)

    async def next(self) -> bytes | None:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._ended:
            return None
        raw = await self._context.read()
        if raw is grpc.aio.EOF:
            await confirm_end(self._context)
            self._ended = True
            return None
        received: bytes = raw
        return received

    async def malformed(self) -> NoReturn:
        await self._context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {self._request_class.DESCRIPTOR.full_name} message",
        )


def _wire_streaming(
    rpc: str,
    handler: WireStreamHandler,
    request_class: type[Message],
    response_class: type[Message],
    guard: Guard,
) -> Callable[[AsyncIterator[bytes], Context], Awaitable[Message]]:
    async def behavior(unread: AsyncIterator[bytes], context: Context) -> Message:
        request_id = _request_id(context)
        with (
            structlog.contextvars.bound_contextvars(rpc=rpc, request_id=request_id),
            tracing.server_span(rpc, _trace_carrier(context)),
        ):
            call = await guard.admit(rpc, context, request_id)
            with _admitted(call):
                requests = _GrpcWireRequests(context, request_class)
                # As for parsed streams, the audit record names the first message's resources.
                await call.began(await requests.first())
                answer = handler.serve(requests, context)
                return await answered(rpc, response_class, answer, call)

    return behavior


@asynccontextmanager
async def _closing(
    responses: AsyncIterator[Message | Encoded],
) -> AsyncIterator[AsyncIterator[Message | Encoded]]:
    """`responses`, closed on the way out when they can be (an async generator's `finally`
    runs now, not at garbage collection); a plain async iterator is left as it is."""
    try:
        yield responses
    finally:
        aclose = getattr(responses, "aclose", None)
        if aclose is not None:
            await aclose()


def _server_streaming(
    rpc: str,
    handler: StreamingHandler,
    request_class: type[Message],
    response_class: type[Message],
    guard: Guard,
) -> Callable[[bytes, Context], Awaitable[None]]:
    """A server stream served by writing each response with `context.write`.

    grpc drives a behaviour that yields its responses from its own frame, so a cancel (the
    client's, or a passed deadline) that arrives while a response is sent lands there and
    leaves this generator, and the handler's below it, suspended until garbage collection
    closes them, in another task and context. Writing from here brings the cancel into this
    coroutine, where `_closing` closes the handler's generator at once: its `finally` blocks
    (a bus stream, a store cursor) have run before the call is over on the server.
    """

    async def behavior(raw: bytes, context: Context) -> None:
        request_id = _request_id(context)
        # The span lasts until the last message is sent (or the client goes away).
        with (
            structlog.contextvars.bound_contextvars(rpc=rpc, request_id=request_id),
            tracing.server_span(rpc, _trace_carrier(context)),
        ):
            call = await guard.admit(rpc, context, request_id, _peeker(raw, request_class))
            with _admitted(call):
                request = await _parse(raw, request_class, context)
                await call.began(request)
                result = "ok"
                try:
                    async with _closing(handler(request, context)) as responses:
                        async for response in responses:
                            if not isinstance(response, Encoded) and result == "ok":
                                result = outcome(response)
                            await context.write(response)
                except grpc.aio.AbortError:
                    await call.ended(aborted_result(context))
                    raise
                except asyncio.CancelledError:
                    await asyncio.shield(call.ended(grpc.StatusCode.CANCELLED.name))
                    raise
                except (Forbidden, Unauthenticated) as exc:
                    await call.refuse(exc)
                except Exception as exc:
                    if client_gone(exc):
                        # grpc ended the call under us (the client went away, the server
                        # stopped): no one is left to read an answer, so none is sent.
                        await call.ended(grpc.StatusCode.CANCELLED.name)
                        raise
                    # Clara puts the header in every streamed message, so an error after some
                    # items still reaches a client that checks each one.
                    error = error_response(response_class, as_error(exc, rpc))
                    await call.ended(outcome(error))
                    await context.write(error)
                else:
                    await call.ended(result)

    return behavior


def service_handler(
    service: ServiceDescriptor, handlers: Mapping[str, Handler], guard: Guard | None = None
) -> grpc.GenericRpcHandler:
    """A gRPC handler for every method of `service`, wired to `handlers` by method name, each
    call admitted by `guard` (by default one that admits everyone and records nothing)."""
    unknown = set(handlers) - {method.name for method in service.methods}
    if unknown:
        raise ValueError(f"{service.full_name} has no methods named {sorted(unknown)}")
    door = guard or Guard()
    return grpc.method_handlers_generic_handler(
        service.full_name,
        {
            method.name: _method_handler(method, handlers.get(method.name), door)
            for method in service.methods
        },
    )
