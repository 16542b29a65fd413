"""What every pipeline-service runner shares: whether a service's port accepts connections, and
the `ServiceFailed` that quotes the end of a service's log.

A port counts as accepting once a TCP connection to it is accepted and not closed at once: a
forwarding proxy in front of a container (Docker's userland proxy) accepts connections for a
service that does not listen yet and closes each as soon as the service refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib

from aorta.executors.services import ServiceFailed

LOG_TAIL_LINES = 20
"""Log lines quoted in the message of a failed service."""
CLOSE_AT_ONCE = 0.2
"""Seconds within which a proxy closes a connection its service refused."""
ATTEMPT_TIMEOUT = 1.0


async def port_accepts(host: str, port: int, *, close_at_once: float = CLOSE_AT_ONCE) -> bool:
    """Whether `host:port` accepts a connection (within `ATTEMPT_TIMEOUT` seconds) that stays
    open for `close_at_once` seconds or answers something meanwhile; any failure means "not
    yet"."""
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    try:
        async with asyncio.timeout(close_at_once):
            data = await reader.read(1)
        return bool(data)
    except TimeoutError:
        return True
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def last_lines(log: bytes, count: int = LOG_TAIL_LINES) -> str:
    """The last `count` lines of `log`, decoded (invalid UTF-8 replaced)."""
    return "\n".join(log.decode("utf-8", "replace").splitlines()[-count:])


def service_failed(name: str, reason: str, log: bytes) -> ServiceFailed:
    """The error of service `name` that failed for `reason`, ending with its last log lines
    (or saying that it wrote none)."""
    tail = last_lines(log)
    ending = f"last lines of its log:\n{tail}" if tail.strip() else "it wrote no log"
    return ServiceFailed(f"pipeline service {name} {reason}", ending)
