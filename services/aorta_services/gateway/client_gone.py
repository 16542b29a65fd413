"""How the gateway tells a call whose client has gone (it cancelled, its deadline passed, the
server stopped) from one that failed, so that such a call ends as CANCELLED, in the audit log
and in the metrics, rather than with an internal error no one would read.

grpc.aio says a call is over in three ways: the handler's task is cancelled (soon after the
client went, not at once), an operation on the call raises one of its own errors, and a read
of a client stream returns EOF, exactly as when the client ended its stream.
"""

from __future__ import annotations

from typing import Any

import grpc


def client_gone(error: BaseException) -> bool:
    """Whether `error` is grpc saying the call is over (a batch that failed because the client
    went away, a server that stopped), not a fault of ours: an `AbortError` is our own
    abort, and a `UsageError` a misuse of the call, which stays a bug."""
    return isinstance(error, grpc.aio.BaseError) and not isinstance(
        error, (grpc.aio.AbortError, grpc.aio.UsageError)
    )


async def confirm_end(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Returns when the EOF a client stream's read gave means that its client ended the
    stream; raises (`asyncio.CancelledError`, or an error `client_gone` recognizes) when the
    call is over instead.

    grpc reads a cancelled call as an ended stream, and cancels the handler's task only
    later, so without this an upload cancelled mid-way looks complete to its handler, which
    would store the truncated file. Sending the (empty) initial metadata tells the two apart:
    it succeeds on a call whose client is still waiting for the answer and fails on one that
    is over. So a client-streaming handler has its initial metadata sent once its requests
    ended, and cannot send metadata of its own after that.
    """
    await context.send_initial_metadata(())
