"""A tiny HTTP health endpoint for every process (Kubernetes probes, Prometheus scrapes).

`GET /healthz/live` answers 200 while the process runs; `GET /healthz/ready` answers 200 once
every service of the process has started and until shutdown begins, 503 otherwise;
`GET /metrics` answers the process's Prometheus metrics in the text format
(`aorta.observability.metrics`) unless metrics are off; anything else is 404. The gateway has
gRPC health checking as well; this endpoint serves every process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aorta.logger import get_logger
from aorta.observability import metrics

log = get_logger(__name__)

METRICS_PATH = "/metrics"

_STATUS_TEXT = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass
class Readiness:
    """Whether the process is ready; flipped by the process runner. With `metrics`, the
    endpoint also serves `/metrics`."""

    ready: bool = False
    metrics: bool = False
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

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = (await reader.readline()).decode("latin-1").split()
                while (await reader.readline()).strip():
                    pass
            method, path = [*request_line, "", ""][:2]
            status = self.status_for(method, path)
            body, content_type = f"{_STATUS_TEXT[status]}\n".encode(), "text/plain"
            if status == 200 and path.startswith(METRICS_PATH):
                body, content_type = metrics.exposition(), metrics.EXPOSITION_CONTENT_TYPE
            writer.write(
                f"HTTP/1.1 {status} {_STATUS_TEXT[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
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
