"""Whether a service's port accepts connections (a proxy that closes each at once does not
count), and the failure that quotes a service's last log lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from aorta.executors.service_health import LOG_TAIL_LINES, port_accepts, service_failed
from aorta.executors.services import ServiceFailed

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


async def _listening(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def closed_port() -> AsyncIterator[int]:
    """A port nothing listens on any more."""
    server, port = await _listening(lambda _r, w: w.close())
    server.close()
    await server.wait_closed()
    yield port


async def test_a_listening_service_accepts() -> None:
    released = asyncio.Event()

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await released.wait()
        writer.close()

    server, port = await _listening(hold)
    try:
        assert await port_accepts("127.0.0.1", port)
    finally:
        released.set()
        server.close()
        await server.wait_closed()


async def test_a_proxy_that_closes_the_connection_at_once_is_not_ready(closed_port: int) -> None:
    server, port = await _listening(lambda _r, writer: writer.close())
    try:
        assert not await port_accepts("127.0.0.1", port)
    finally:
        server.close()
        await server.wait_closed()
    assert not await port_accepts("127.0.0.1", closed_port)


def test_the_failure_ends_with_the_last_lines_of_the_log() -> None:
    log = "".join(f"line {n}\n" for n in range(50)).encode() + b"\xff the end"
    failed = service_failed("trtis", "exited at start with status 3", log)
    assert isinstance(failed, ServiceFailed)
    text = str(failed)
    assert text.startswith("pipeline service trtis exited at start with status 3")
    assert text.endswith("line 49\n\ufffd the end")
    assert f"line {50 - LOG_TAIL_LINES + 1}" in text and "line 10\n" not in text
    assert str(service_failed("trtis", "was not ready", b"")).endswith("it wrote no log")
