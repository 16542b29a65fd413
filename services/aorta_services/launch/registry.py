"""Every service the platform has, and the order in which a process starts them.

Back-end services start first, then the gateway, then the web console (a client of the
gateway), so the public doors open only when the services behind them answer; shutdown runs in
reverse, closing the doors first.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from aorta.bus.credentials import BusCredentials
from aorta.bus_permissions import EVENTS_USER
from aorta.runtime.process import NamedStarter
from aorta.runtime.service import ServiceStarter

# name -> the module whose `start(ctx)` runs it; imported only when the service is started, so
# a process that runs one service loads only that service's code.
SERVICES: dict[str, str] = {
    "pipelines": "aorta_services.pipelines.app",
    "payloads": "aorta_services.payloads.app",
    "models": "aorta_services.models.app",
    "scheduler": "aorta_services.scheduler.app",
    "monitor": "aorta_services.monitor.app",
    "gateway": "aorta_services.gateway.app",
    "web": "aorta_services.web.app",
}

START_ORDER: tuple[str, ...] = tuple(SERVICES)

EVENT_READERS: frozenset[str] = frozenset({"web"})
"""Services with no bus user of their own: they only read events, as the read-only `events`
user (`aorta.bus_permissions`)."""

BUS_SERVICES: tuple[str, ...] = tuple(name for name in SERVICES if name not in EVENT_READERS)
"""Services that serve and call verbs on the bus, each as its own user."""


def service_credentials(users: Mapping[str, BusCredentials]) -> dict[str, BusCredentials]:
    """The bus credentials of every service, by service name, from those of the bus users
    (`aorta.bus_permissions.bus_users`): each bus service logs in as its own user, each event
    reader as the read-only `events` user, as integrations do."""
    return {
        **{name: users[name] for name in BUS_SERVICES},
        **dict.fromkeys(EVENT_READERS, users[EVENTS_USER]),
    }


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


def starters(names: list[str] | tuple[str, ...]) -> list[NamedStarter]:
    """`names` in start order, each with its `start`; unknown names raise ValueError."""
    return [(name, starter(name)) for name in ordered(names)]
