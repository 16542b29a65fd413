"""How what a handler raised reaches a Clara client (`aorta_services.gateway.rpc` wraps every
handler with it).

An `AortaError` becomes a response with a negative `ResponseHeader.code` and readable
`messages`, sent with gRPC status OK, because Clara clients read the header, not the status;
anything unexpected is logged with its traceback and reported as an internal error naming the
request id; an `errors.Forbidden` or `errors.Unauthenticated` is a refusal (gRPC
PERMISSION_DENIED or UNAUTHENTICATED) rather than a Clara header, since it is not the platform
that failed. A call whose client has gone (`aorta_services.gateway.client_gone`) is answered
with nothing and recorded as CANCELLED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc
import structlog
from google.protobuf.message import Message

from aorta.errors import AortaError, Forbidden, Internal, Unauthenticated
from aorta.logger import get_logger
from aorta_services.gateway.client_gone import client_gone
from aorta_services.gateway.guard import Call, aborted_result, outcome

log = get_logger(__name__)


def error_response(response_class: type[Message], error: AortaError) -> Message:
    """A response of `response_class` that carries `error` in its header (field 1)."""
    response = response_class()
    header = response.header  # type: ignore[attr-defined]
    header.code = error.code
    header.messages.extend(error.messages)
    return response


def as_error(exc: Exception, rpc: str) -> AortaError:
    """`exc` as the Clara error a client is answered with: an `AortaError` as it is (logged
    briefly), anything else logged with its traceback and reported as an internal error that
    names the call's request id, so an operator can find the log line."""
    if isinstance(exc, AortaError):
        log.info("rpc.failed", code=exc.code, messages=list(exc.messages))
        return exc
    log.exception("rpc.crashed", error=repr(exc))
    request_id = structlog.contextvars.get_contextvars().get("request_id", "?")
    return Internal(f"internal error while serving {rpc} (request id {request_id})")


async def answered(
    rpc: str, response_class: type[Message], answer: Awaitable[Message], call: Call
) -> Message:
    """`answer`, or the Clara error response for what it raised; an abort stays an abort, a
    refusal becomes one, and grpc's word that the client has gone is raised on, as a cancel
    is. The outcome is recorded as the audit log wants."""
    try:
        response = await answer
    except grpc.aio.AbortError:
        await call.ended(aborted_result(call.context))
        raise
    except asyncio.CancelledError:
        await asyncio.shield(call.ended(grpc.StatusCode.CANCELLED.name))
        raise
    except (Forbidden, Unauthenticated) as exc:
        await call.refuse(exc)
    except Exception as exc:
        if client_gone(exc):
            # grpc ended the call under the handler (a read or a send failed): no one is
            # left to read an answer.
            await call.ended(grpc.StatusCode.CANCELLED.name)
            raise
        response = error_response(response_class, as_error(exc, rpc))
    await call.ended(outcome(response), response)
    return response
