"""The bus-only services' HTTP health endpoint answers Kubernetes probes truthfully."""

from __future__ import annotations

import asyncio

from aorta.runtime.health import Readiness


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_ready_only_between_start_and_shutdown() -> None:
    readiness = Readiness()
    port = await readiness.serve("127.0.0.1", 0)
    try:
        assert await _get(port, "/healthz/live") == (200, b"OK\n")
        assert (await _get(port, "/healthz/ready"))[0] == 503
        readiness.ready = True
        assert await _get(port, "/healthz/ready") == (200, b"OK\n")
        readiness.ready = False
        assert (await _get(port, "/healthz/ready"))[0] == 503
        assert (await _get(port, "/elsewhere"))[0] == 404
        assert (await _get(port, "/healthz/live", "POST"))[0] == 405
        assert await _get(port, "/healthz/live", "HEAD") == (200, b"")
    finally:
        await readiness.close()
