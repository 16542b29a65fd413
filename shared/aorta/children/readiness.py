"""How a server started by `aorta.children.process.ChildProcess` shows that it serves.

`Readiness` is the one piece that differs between the servers the platform runs as children:
nats-server writes a ports file, moto_server and tritonserver answer HTTP on a TCP port, and a
Docker or Podman engine API service answers HTTP on a unix socket. `HttpReady` covers the last
three; a server with another sign implements `Readiness` beside the code that starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Readiness(Protocol):
    """Asked, with the child's pid, whether the child is ready yet.

    `ready` is awaited again and again (never concurrently) while the child runs, until it
    returns True; False means "not yet". It may be cancelled when the start deadline passes, so
    it need not bound itself; but the child's early exit is only noticed between two calls, so
    a call should not wait much longer than a second. `awaited` completes the sentence
    "NAME did not ... within N s" of a start that timed out, e.g. "answer".
    """

    @property
    def awaited(self) -> str: ...

    async def ready(self, pid: int) -> bool: ...


@dataclass(frozen=True)
class HttpReady:
    """Ready once `GET path` answers status 200 at `address`: a `(host, port)` pair for TCP,
    or the `Path` of a unix socket (e.g. `podman system service`'s, with path `/_ping`).

    Each call gives up after `attempt_timeout` seconds and any connection error means "not
    yet", so a server still binding its socket, or one stuck mid-answer, is simply asked again.
    """

    address: tuple[str, int] | Path
    path: str
    awaited: str = "answer"
    attempt_timeout: float = 1.0

    async def ready(self, pid: int) -> bool:
        try:
            async with asyncio.timeout(self.attempt_timeout):
                if isinstance(self.address, Path):
                    reader, writer = await asyncio.open_unix_connection(self.address)
                    host = "localhost"
                else:
                    reader, writer = await asyncio.open_connection(*self.address)
                    host = f"{self.address[0]}:{self.address[1]}"
                try:
                    writer.write(
                        f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\n"
                        "Connection: close\r\n\r\n".encode()
                    )
                    await writer.drain()
                    status = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError):
            return False
        return status.split()[1:2] == [b"200"]
