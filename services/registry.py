"""Every service the platform has, and the order in which a process starts them.

Back-end services start first and the gateway last, so the public door opens only when the
services behind it answer; shutdown runs in reverse, closing the door first.
"""

from __future__ import annotations

import importlib

from aorta.lifecycle import ServiceStarter

# name -> the module whose `start(ctx)` runs it; imported only when the service is started, so
# a process that runs one service loads only that service's code.
SERVICES: dict[str, str] = {
    "pipelines": "aorta.services.pipelines.app",
    "payloads": "aorta.services.payloads.app",
    "models": "aorta.services.models.app",
    "scheduler": "aorta.services.scheduler.app",
    "monitor": "aorta.services.monitor.app",
    "gateway": "aorta.services.gateway.app",
}

START_ORDER: tuple[str, ...] = tuple(SERVICES)


def starter(name: str) -> ServiceStarter:
    """The `start` coroutine function of service `name`."""
    module = importlib.import_module(SERVICES[name])
    start: ServiceStarter = module.start
    return start


def ordered(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` in start order; unknown names raise ValueError listing the known ones."""
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise ValueError(
            f"unknown service {', '.join(unknown)}; known services: {', '.join(START_ORDER)}"
        )
    return [name for name in START_ORDER if name in names]
