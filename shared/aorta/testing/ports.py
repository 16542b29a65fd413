"""Free TCP ports of 127.0.0.1 for tests, bench and examples.

These are `aorta.children.ports`' functions themselves, named here because this package is where
test code finds its helpers. The implementation lives in the library because production needs it
too (tritonserver's ports) and production code never imports `aorta.testing`. Each port was free
when the function returned and may be taken by any process before it is used: see that module
for how callers live with the race.
"""

from __future__ import annotations

from aorta.children import ports
from aorta.children.ports import free_port, free_ports, restart_safe_port

__all__ = ["PortPool", "free_port", "free_ports", "restart_safe_port"]


class PortPool:
    """Ports for servers started together, each drawn by `take`: free a moment ago, below the
    kernel's ephemeral range (`restart_safe_port`), and never one this pool handed out before.
    A port handed to a server that has not bound it yet is still free, so drawing another one
    could give it again; and no outgoing connection of the servers takes one meanwhile."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def take(self) -> int:
        """One more port (see the class)."""
        while (port := ports.restart_safe_port()) in self._given:
            pass
        self._given.add(port)
        return port
