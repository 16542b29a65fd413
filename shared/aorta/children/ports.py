"""Free TCP ports of 127.0.0.1, for servers that cannot pick their own port and report it.

The one implementation of "find a free port": tritonserver's ports are chosen here in
production, and tests, bench and examples reach the same functions as `aorta.testing.ports`.

A port is found by binding port 0 (the kernel picks an unused one) and closing the socket before
returning, so it is only free *a moment ago*: any process may bind it before the server that was
meant to. Callers live with that race in one of two ways. A server started on the port fails
loudly ("address already in use") and is started again on new ports, as `TritonProcess` does; or
a test accepts the rare failure, which then names the port. Code that must not lose the race
keeps its socket bound instead (e.g. a listener handed to the server it starts).

A server started again on the port it had (a platform restarted after a crash, a bus brought
back after an outage) meets a second race: while it is down, the kernel may hand its port to any
socket bound to port 0 or to any outgoing connection, as both draw from the ephemeral range.
`restart_safe_port` picks a port below that range, which only an explicit bind can take.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768


def free_ports(count: int) -> tuple[int, ...]:
    """`count` distinct ports of 127.0.0.1 that were free a moment ago (see the race above).

    All the sockets are bound before any is closed, so the ports differ from one another.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return tuple(int(sock.getsockname()[1]) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def free_port(preferred: int | None = None) -> int:
    """One port of 127.0.0.1 that was free a moment ago: `preferred` when it was, else any."""
    if preferred is not None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, preferred))
            except OSError:
                pass  # taken: any free port will do
            else:
                return preferred
    return free_ports(1)[0]


def restart_safe_port(tries: int = 100) -> int:
    """A port of 127.0.0.1 free a moment ago and below the kernel's ephemeral range, for a
    server that will be started again on the same port: no port-0 bind and no outgoing
    connection takes it while the server is down. Drawn at random from the upper half below
    the range (16384-32767 with Linux's defaults); any free port if none of `tries` is free."""
    low = ephemeral_low()
    for _ in range(tries):
        candidate = random.randrange(max(1024, low // 2), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
        return candidate
    return free_port()


def ephemeral_low() -> int:
    """The first port of the range the kernel draws from for port 0 and outgoing connections."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW
