"""Which port a pipeline service listens on inside its container or pod, and how it learns it:
pure, no I/O.

A `connections.http` entry with a `port` is that port. One without takes the one port the
image exposes, else the first of `FIRST_PORT` upward that no other entry names. The service
finds its ports in its own environment, as on the local executor: each connection's `name`
holds `0.0.0.0:<port>` (every address of its own network namespace, which is where the
platform forwards connections to), and `NVIDIA_CLARA_SERVICE_PORT` the first connection's port;
the service's own `variables` win over both.
"""

from __future__ import annotations

from aorta.errors import Invalid
from aorta.executors.services import ServiceLaunch

SERVICE_PORT = "NVIDIA_CLARA_SERVICE_PORT"
FIRST_PORT = 8000
ANY_ADDRESS = "0.0.0.0"
"""Every address of the service's own network namespace, where connections are forwarded to."""


def http_ports(launch: ServiceLaunch, exposed: tuple[int, ...] = ()) -> dict[str, int]:
    """The port each `connections.http` entry of `launch` listens on, by variable name (see
    the module docstring); `exposed` are the ports the image exposes. `Invalid` for an entry
    without a port when the image exposes several."""
    declared = {entry.port for entry in launch.http if entry.port is not None}
    ports: dict[str, int] = {}
    free = FIRST_PORT
    for entry in launch.http:
        if entry.port is not None:
            ports[entry.name] = entry.port
        elif len(exposed) == 1:
            ports[entry.name] = exposed[0]
        elif exposed:
            listed = ", ".join(str(port) for port in exposed)
            raise Invalid(
                f"service {launch.name}: connection {entry.name} names no port and the image "
                f"exposes {listed}: declare the port the service listens on"
            )
        else:
            while free in declared or free in ports.values():
                free += 1
            ports[entry.name] = free
    return ports


def own_environment(launch: ServiceLaunch, ports: dict[str, int]) -> dict[str, str]:
    """The service's environment: where it listens (module docstring), then its variables."""
    listening = {name: f"{ANY_ADDRESS}:{port}" for name, port in ports.items()}
    first = {SERVICE_PORT: str(ports[launch.http[0].name])} if launch.http else {}
    return {**listening, **first, **launch.variables}
