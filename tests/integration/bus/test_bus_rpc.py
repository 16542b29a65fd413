"""Bus contract, request/reply: answers, errors, timeouts, queue groups, concurrency, drain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import structlog

from aorta.bus import REQUEST_ID_HEADER, Request, UnaryHandler
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import AortaError, Conflict, ErrorCode, Internal, Invalid, NotFound, Unavailable
from aorta.testing.nats import BusFactory

CLOSE_BOUND = 60.0
"""Seconds a close may take before the test names it hung (its drain timeout is 1 s)."""


async def test_request_gets_the_answer_with_headers_and_log_context(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")

    async def handler(request: Request) -> bytes:
        context = structlog.contextvars.get_contextvars()
        return json.dumps(
            {
                "subject": request.subject,
                "data": request.data.decode(),
                "trace": request.headers.get("X-Trace"),
                "context": {k: context.get(k) for k in ("subject", "request_id")},
            }
        ).encode()

    await server.serve(subject, handler, queue="svc")
    answer = json.loads(
        await client.request(
            subject, b"ping", headers={"X-Trace": "t1", REQUEST_ID_HEADER: "req-7"}
        )
    )

    assert answer == {
        "subject": subject,
        "data": "ping",
        "trace": "t1",
        "context": {"subject": subject, "request_id": "req-7"},
    }
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize(
    "error",
    [
        NotFound("job 12 does not exist", "look it up with list", code=ErrorCode.JOB_NOT_FOUND),
        Invalid("bad name", code=ErrorCode.JOB_NAME_INVALID),
        Conflict("already started"),
        Unavailable("the store is down"),
    ],
)
async def test_handler_errors_cross_with_kind_code_and_messages(
    connect: BusFactory, subject: str, error: AortaError
) -> None:
    server, client = await connect("server"), await connect("client")

    async def handler(request: Request) -> bytes:
        raise error

    await server.serve(subject, handler, queue="svc")
    with pytest.raises(type(error)) as raised:
        await client.request(subject, b"")

    assert raised.value.code == error.code
    assert raised.value.messages == error.messages


async def test_unexpected_exception_is_internal_for_the_caller_and_logged(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")

    async def handler(request: Request) -> bytes:
        raise KeyError("secret-detail")

    await server.serve(subject, handler, queue="svc")
    with structlog.testing.capture_logs() as logs, pytest.raises(Internal) as raised:
        await client.request(subject, b"")

    assert raised.value.messages == (f"an internal error occurred while handling {subject}",)
    assert "secret-detail" not in str(raised.value)
    failures = [entry for entry in logs if entry["event"] == "bus handler failed"]
    assert len(failures) == 1
    assert isinstance(failures[0]["exc_info"], KeyError)


async def test_no_responder_is_unavailable_at_once(connect: BusFactory, subject: str) -> None:
    # A request that waited out its timeout would say "no answer from ... within", not this.
    client = await connect("client", default_timeout=10.0)

    with pytest.raises(Unavailable, match=f"no service answers {subject}"):
        await client.request(subject, b"")


async def test_timeout_is_unavailable_naming_subject_and_timeout(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client", default_timeout=0.2)
    release = asyncio.Event()

    async def handler(request: Request) -> bytes:
        await release.wait()
        return b"late"

    await server.serve(subject, handler, queue="svc")
    with pytest.raises(Unavailable) as raised:
        await client.request(subject, b"")
    with pytest.raises(Unavailable) as raised_explicit:
        await client.request(subject, b"", timeout=0.3)
    release.set()

    assert subject in str(raised.value) and "0.2 s" in str(raised.value)
    assert "0.3 s" in str(raised_explicit.value)


async def test_queue_group_gives_each_request_to_exactly_one_member(
    connect: BusFactory, subject: str
) -> None:
    first, second, client = await connect("a"), await connect("b"), await connect("client")
    handled: dict[str, list[bytes]] = {"a": [], "b": []}

    def member(name: str) -> UnaryHandler:
        async def handler(request: Request) -> bytes:
            handled[name].append(request.data)
            return name.encode()

        return handler

    await first.serve(subject, member("a"), queue="svc")
    await second.serve(subject, member("b"), queue="svc")
    requests = [str(n).encode() for n in range(60)]
    answers = await asyncio.gather(*(client.request(subject, data) for data in requests))

    assert sorted(handled["a"] + handled["b"]) == sorted(requests)
    assert handled["a"] and handled["b"]
    assert answers.count(b"a") == len(handled["a"])


async def test_a_slow_request_does_not_block_the_others(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")
    release = asyncio.Event()

    async def handler(request: Request) -> bytes:
        if request.data == b"slow":
            await release.wait()
        return request.data

    await server.serve(subject, handler, queue="svc")
    slow = asyncio.create_task(client.request(subject, b"slow"))
    fast = await asyncio.gather(*(client.request(subject, b"fast") for _ in range(5)))
    assert not slow.done()
    release.set()

    assert fast == [b"fast"] * 5
    assert await slow == b"slow"


async def test_drain_waits_for_running_handlers_and_stops_receiving(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")
    started, finished = asyncio.Event(), asyncio.Event()

    async def handler(request: Request) -> bytes:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()
        return b"done"

    subscription = await server.serve(subject, handler, queue="svc")
    pending = asyncio.create_task(client.request(subject, b""))
    await started.wait()
    await subscription.drain()

    assert finished.is_set()
    assert await pending == b"done"
    with pytest.raises(Unavailable, match="no service answers"):
        await client.request(subject, b"")


async def test_close_is_bounded_and_the_waiting_caller_learns_it(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client", default_timeout=5.0)
    started = asyncio.Event()

    async def stuck(request: Request) -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b""

    await server.serve(subject, stuck, queue="svc")
    await server.serve_stream(f"{subject}.stream", _stuck_stream, queue="svc")
    await server.subscribe(f"{subject}.events", _stuck_message)
    pending = asyncio.create_task(client.request(subject, b""))
    stream = client.request_stream(f"{subject}.stream", b"")
    assert await anext(stream) == b"first"
    await started.wait()
    await server.publish(f"{subject}.events", b"x")
    # The stuck handlers never return: a close that waited for them would never end.
    await asyncio.wait_for(server.close(), CLOSE_BOUND)
    await asyncio.wait_for(server.close(), CLOSE_BOUND)

    with pytest.raises(Unavailable, match="stopped before answering"):
        await pending
    with pytest.raises(Unavailable, match="stopped"):
        await anext(stream)
    with pytest.raises(Unavailable, match="closed"):
        await server.request(subject, b"")


async def _stuck_stream(request: Request) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()


async def _stuck_message(data: bytes, subject: str) -> None:
    await asyncio.Event().wait()


async def test_bad_subjects_and_oversized_requests_are_invalid(
    connect: BusFactory, subject: str
) -> None:
    bus = await connect("client")

    with pytest.raises(Invalid):
        await bus.request("has space", b"")
    with pytest.raises(Invalid):
        await bus.request(f"{subject}.*", b"")
    with pytest.raises(Invalid):
        await bus.publish(f"{subject}..x", b"")
    with pytest.raises(Invalid, match="above the bus message limit"):
        await bus.request(subject, b"x" * (DEFAULT_MAX_PAYLOAD + 1))


async def test_an_oversized_answer_is_internal(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")

    async def handler(request: Request) -> bytes:
        return b"x" * (DEFAULT_MAX_PAYLOAD + 1)

    await server.serve(subject, handler, queue="svc")
    with pytest.raises(Internal, match="above the bus message limit"):
        await client.request(subject, b"")
