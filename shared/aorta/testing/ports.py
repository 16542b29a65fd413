"""Free TCP ports of 127.0.0.1 for tests, bench and examples.

These are `aorta.children.ports`' functions themselves, named here because this package is where
test code finds its helpers. The implementation lives in the library because production needs it
too (tritonserver's ports) and production code never imports `aorta.testing`. Each port was free
when the function returned and may be taken by any process before it is used: see that module
for how callers live with the race.
"""

from __future__ import annotations

from aorta.children.ports import free_port, free_ports, restart_safe_port

__all__ = ["free_port", "free_ports", "restart_safe_port"]
