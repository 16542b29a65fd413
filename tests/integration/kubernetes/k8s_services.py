"""The cluster's Service network, for gRPC clients of this process: an HTTP CONNECT proxy.

Operators and the models service reach a Triton server by its Service's DNS name
(`aorta-triton-<id>.aorta-jobs.svc:8001`), which this machine cannot resolve. gRPC sends every
channel through the proxy that `grpc_proxy` names (except the hosts `no_grpc_proxy` lists), so
pointing it here lets the platform keep the addresses it would use in a cluster: a CONNECT to
`<anything>.svc:<port>` is joined to the local address `route` gave that port; any other
target is refused with 502. `connects` records every target joined.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress


class ServiceNetwork:
    """Use `async with ServiceNetwork() as network:`; `network.proxy` is `http://host:port`."""

    def __init__(self) -> None:
        self._routes: dict[int, tuple[str, int]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.connects: list[str] = []

    async def __aenter__(self) -> ServiceNetwork:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def proxy(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def route(self, port: int, address: str) -> None:
        """Joins `*.svc:<port>` to `address` (`host:port`)."""
        host, _, local = address.rpartition(":")
        self._routes[port] = (host, int(local))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        # Tracked so that closing the network ends the connections still open (Python 3.11's
        # server does not wait for its handlers).
        self._tasks.add(task)
        try:
            await self._join(reader, writer)
        except OSError:
            pass  # a client or a server went away: the gRPC client sees the connection end
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _join(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, target, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # headers: nothing in them matters here
        host, _, port = target.rpartition(":")
        address = self._routes.get(int(port)) if host.endswith(".svc") else None
        if method != "CONNECT" or address is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            await writer.drain()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*address)
        self.connects.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            pipes = {
                asyncio.create_task(_pipe(reader, upstream_writer)),
                asyncio.create_task(_pipe(upstream_reader, writer)),
            }
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            upstream_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
