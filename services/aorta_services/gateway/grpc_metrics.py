"""The gateway's gRPC server metrics, under the names of the widely used gRPC interceptors.

`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`
carry the labels `grpc_type` (unary, client_stream, server_stream, bidi_stream),
`grpc_service` (`nvidia.clara.platform.Jobs`) and `grpc_method` (`Start`), plus `grpc_code` on
the handled count, so dashboards written for go-grpc-prometheus and py-grpc-prometheus work as
they are. A call counts as handled once its last message is sent, with the status the client
sees: OK for a Clara error answered in the response header, the abort's code for a refusal,
CANCELLED when the client went away, UNKNOWN for anything that escaped the handler.

Every behaviour is counted as one coroutine, which is how the gateway serves streams too: it
writes them with `context.write` (`aorta_services.gateway.rpc`, and grpc's health Watch), so a
cancel that lands during a send is raised where it is counted. A behaviour that yields its
responses is not served here (it would leave such a cancel in grpc's frame, uncounted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from aorta.observability.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_STARTED
from aorta_services.gateway.client_gone import client_gone

Context = grpc.aio.ServicerContext[Any, Any]


def grpc_type(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    """The `grpc_type` label of a method handler."""
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def split_method(full_method: str) -> tuple[str, str]:
    """`/package.Service/Method` as (`package.Service`, `Method`)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


class _Labels:
    """The labels of one method and the counting every call of it shares."""

    def __init__(self, kind: str, service: str, method: str) -> None:
        self.started = GRPC_STARTED.labels(kind, service, method)
        self.seconds = GRPC_HANDLING_SECONDS.labels(kind, service, method)
        self._labels = (kind, service, method)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode, began: float) -> None:
        self.seconds.observe(time.perf_counter() - began)
        counter = self._handled.get(code)
        if counter is None:
            # Looked up once per status: `labels` takes the family's lock and builds a key.
            counter = self._handled[code] = GRPC_HANDLED.labels(*self._labels, code.name)
        counter.inc()


def _code_of(context: Context, error: BaseException | None) -> grpc.StatusCode:
    """The status the client sees for a call that ended with `error` (None: returned)."""
    if isinstance(error, asyncio.CancelledError) or (error is not None and client_gone(error)):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK


def _counted_behavior(
    behavior: Callable[[Any, Context], Awaitable[Any]], labels: _Labels
) -> Callable[[Any, Context], Awaitable[Any]]:
    async def counted(request: Any, context: Context) -> Any:
        labels.started.inc()
        began = time.perf_counter()
        try:
            response = await behavior(request, context)
        except BaseException as error:
            labels.handled(_code_of(context, error), began)
            raise
        labels.handled(_code_of(context, None), began)
        return response

    return counted


class GrpcMetrics(grpc.aio.ServerInterceptor):
    """Counts and times every call the server handles (module docstring)."""

    def __init__(self) -> None:
        self._labels: dict[str, _Labels] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        labels = self._labels.get(handler_call_details.method)
        if labels is None:
            # Only methods the server has a handler for get here, so the label values stay
            # as few as the services' methods.
            labels = _Labels(grpc_type(handler), *split_method(handler_call_details.method))
            self._labels[handler_call_details.method] = labels
        counted: grpc.RpcMethodHandler[Any, Any] = _counted(handler, labels)
        return counted


def _counted(handler: Any, labels: _Labels) -> Any:
    """`handler` (grpc's method handler, a named tuple) with its behaviour counted."""
    kind = ("stream" if handler.request_streaming else "unary") + (
        "_stream" if handler.response_streaming else "_unary"
    )
    behavior = getattr(handler, kind)
    if behavior is None:
        return handler
    return handler._replace(**{kind: _counted_behavior(behavior, labels)})
