"""The HTTP health endpoint answers Kubernetes probes truthfully and Prometheus scrapes with
the process's metrics, asking for a token where the process runner says so."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from aorta.errors import Forbidden, Unauthenticated
from aorta.observability import metrics
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


async def _get_with(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: scraper\r\n{lines}\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


async def test_metrics_are_served_in_the_prometheus_text_format() -> None:
    metrics.EVENTS_PUBLISHED.inc(0)
    readiness = Readiness(metrics=True)
    port = await readiness.serve("127.0.0.1", 0)
    try:
        status, head, body = await _get_with(port, "/metrics", {})
        assert status == 200
        assert b"Content-Type: text/plain; version=" in head
        families = {f.name for f in text_string_to_metric_families(body.decode())}
        assert {"aorta_events_published", "grpc_server_handled", "aorta_jobs"} <= families
        # Before the process is ready too: a scrape is not a readiness probe.
        assert (await _get_with(port, "/metrics?x=1", {}))[0] == 200
    finally:
        await readiness.close()


async def test_metrics_turned_off_are_not_served() -> None:
    readiness = Readiness(metrics=False)
    port = await readiness.serve("127.0.0.1", 0)
    try:
        assert (await _get(port, "/metrics"))[0] == 404
    finally:
        await readiness.close()


async def test_a_scrape_needs_what_the_access_check_wants_and_the_probes_do_not() -> None:
    async def access(headers: list[tuple[str, str]]) -> None:
        given = dict(headers).get("authorization")
        if given is None:
            raise Unauthenticated("this platform requires a token")
        if given != "Bearer good":
            raise Forbidden("that token holds no role")

    readiness = Readiness(ready=True, metrics=True, metrics_access=access)
    port = await readiness.serve("127.0.0.1", 0)
    try:
        status, head, body = await _get_with(port, "/metrics", {})
        assert status == 401
        assert b'WWW-Authenticate: Bearer realm="aorta"' in head
        assert b"aorta_" not in body
        assert (await _get_with(port, "/metrics", {"Authorization": "Bearer bad"}))[0] == 403
        status, _, body = await _get_with(port, "/metrics", {"Authorization": "Bearer good"})
        assert status == 200
        assert b"aorta_events_published_total" in body
        assert (await _get(port, "/healthz/ready"))[0] == 200
    finally:
        await readiness.close()
