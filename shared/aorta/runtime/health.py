"""A tiny HTTP health endpoint for every process (Kubernetes probes, Prometheus scrapes).

`GET /healthz/live` answers 200 while the process runs; `GET /healthz/ready` answers 200 once
every service of the process has started and until shutdown begins, 503 otherwise;
`GET /metrics` answers the process's Prometheus metrics in the text format
(`aorta.observability.metrics`) unless metrics are off, asking for a bearer token where the
process runner says so; anything else is 404. The gateway has
gRPC health checking as well; this endpoint serves every process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aorta.errors import AortaError, Forbidden, Unauthenticated
from aorta.logger import get_logger
from aorta.observability import metrics

log = get_logger(__name__)

METRICS_PATH = "/metrics"

_STATUS_TEXT = {
    200: "OK",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


MetricsAccess = Callable[[list[tuple[str, str]]], Awaitable[None]]
"""Admits a scrape of `/metrics` from its request headers (lower-cased names), or raises
`Unauthenticated` or `Forbidden`: the bearer-token check when the endpoint listens beyond
loopback with authentication on (`aorta.runtime.process`)."""

MAX_HEADER_LINES = 64


@dataclass
class Readiness:
    """Whether the process is ready; flipped by the process runner. With `metrics`, the
    endpoint also serves `/metrics`, to scrapes that `metrics_access` admits when it is set."""

    ready: bool = False
    metrics: bool = False
    metrics_access: MetricsAccess | None = None
    _server: asyncio.Server | None = field(default=None, repr=False)

    def status_for(self, method: str, path: str) -> int:
        served = ("/healthz/live", "/healthz/ready", *((METRICS_PATH,) if self.metrics else ()))
        if path.split("?", 1)[0] not in served:
            return 404
        if method not in ("GET", "HEAD"):
            return 405
        if path == "/healthz/ready" and not self.ready:
            return 503
        return 200

    async def _admitted(self, headers: list[tuple[str, str]]) -> int:
        """200 when the scrape may read the metrics, else 401 or 403 (logged, never with
        the token), or 503 when the check itself cannot be made now."""
        if self.metrics_access is None:
            return 200
        try:
            await self.metrics_access(headers)
        except Unauthenticated as refusal:
            log.info("health.metrics_refused", reason=str(refusal))
            return 401
        except Forbidden as refusal:
            log.info("health.metrics_refused", reason=str(refusal))
            return 403
        except AortaError as error:
            log.warning("health.metrics_unchecked", error=str(error))
            return 503
        return 200

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = (await reader.readline()).decode("latin-1").split()
                headers: list[tuple[str, str]] = []
                while line := (await reader.readline()).strip():
                    if len(headers) < MAX_HEADER_LINES:
                        name, _, value = line.decode("latin-1").partition(":")
                        headers.append((name.strip().lower(), value.strip()))
                method, path = [*request_line, "", ""][:2]
                status = self.status_for(method, path)
                scrape = status == 200 and path.split("?", 1)[0] == METRICS_PATH
                if scrape:
                    status = await self._admitted(headers)
            body, content_type = f"{_STATUS_TEXT[status]}\n".encode(), "text/plain"
            extra = 'WWW-Authenticate: Bearer realm="aorta"\r\n' if status == 401 else ""
            if scrape and status == 200:
                body, content_type = metrics.exposition(), metrics.EXPOSITION_CONTENT_TYPE
            writer.write(
                f"HTTP/1.1 {status} {_STATUS_TEXT[status]}\r\nContent-Type: {content_type}\r\n"
                f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self, host: str, port: int) -> int:
        """Starts answering on `host:port` (0: a free port) and returns the bound port."""
        self._server = await asyncio.start_server(self._answer, host, port)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("health.serving", port=bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
