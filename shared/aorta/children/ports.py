"""Free TCP ports of 127.0.0.1, for servers that cannot pick their own port and report it.

The one implementation of "find a free port": tritonserver's ports are chosen here in
production, and tests, bench and examples reach the same functions as `aorta.testing.ports`.

A port is found by binding port 0 (the kernel picks an unused one) and closing the socket before
returning, so it is only free *a moment ago*: any process may bind it before the server that was
meant to. Callers live with that race in one of two ways. A server started on the port fails
loudly ("address already in use") and is started again on new ports, as `TritonProcess` does; or
a test accepts the rare failure, which then names the port. Code that must not lose the race
keeps its socket bound instead (e.g. a listener handed to the server it starts).
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


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
