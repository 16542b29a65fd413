"""Runs a set of services in one process until asked to stop.

The state and blob stores are opened once and shared; the bus connection is shared too, as the
user the settings name, unless each service was given its own credentials (`aorta up`): then
each connects as its own user, limited to its own subjects. Services start in the order given
and stop in reverse, each given a grace period to drain; the adapters close last. A hard
deadline bounds the whole shutdown so a stuck drain never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack

from aorta.auth.authenticator import build_authenticator
from aorta.auth.exposure import is_loopback
from aorta.bus import Bus
from aorta.bus.credentials import BusCredentials, settings_credentials, tls_context
from aorta.bus.nats import NatsBus
from aorta.logger import configure_logging, get_logger
from aorta.observability import metrics, tracing
from aorta.runtime.health import MetricsAccess, Readiness
from aorta.runtime.service import Running, ServiceStarter, service_context
from aorta.settings import Settings

log = get_logger(__name__)

SHUTDOWN_GRACE = 10.0
SHUTDOWN_DEADLINE = 25.0
GEN0_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation once serving (see
`settle_collector`; Python's default is 700)."""

NamedStarter = tuple[str, ServiceStarter]
"""A service's name and the coroutine function that starts it."""


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT only set `stop`; the shutdown itself runs in the main task."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def run_services(
    starters: Sequence[NamedStarter],
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[dict[str, Running]], Awaitable[None]] | None = None,
    *,
    credentials: Mapping[str, BusCredentials] | None = None,
    health_optional: bool = False,
    on_health: Callable[[int], None] | None = None,
    long_running: bool = False,
) -> None:
    """Starts `starters` in order, calls `on_ready` with the running services by name, and
    serves until `stop` is set.

    With `credentials` (by service name, one for every service started), each service gets a
    bus connection of its own, logged in as its user; without, all share one connection as the
    user of `settings` (`AORTA_NATS_USER`, or anonymous when unset). Either way the bus uses the
    TLS the settings ask for. A missing service in `credentials` raises KeyError at once.

    The health endpoint (`settings.health_port`, 0: none) serves `/metrics` too unless
    `settings.metrics` is off, which also stops every service feeding them. With
    `health_optional`, a port already in use is logged and the services run without it (the
    default port of `aorta up`); otherwise the `OSError` ends the start. Beyond loopback with
    authentication on, `/metrics` asks for a token (`metrics_access`). `on_health` is told
    the port once the endpoint serves (before `on_ready`).

    With `long_running` (the process's entry points; not tests, which share one process), the
    garbage collector is settled for serving once every service started (`settle_collector`).
    """
    names = [name for name, _ in starters]
    if credentials is not None:
        missing = [name for name in names if name not in credentials]
        if missing:
            raise KeyError(f"no bus credentials for {', '.join(missing)}")
    metrics.set_recording(settings.metrics)
    async with AsyncExitStack() as stack:
        buses = await _connect_buses(names, settings, credentials, stack)
        shared = buses[names[0]] if names else await _connect(settings, "aorta", None, stack)
        context = await stack.enter_async_context(service_context(settings, shared))
        readiness = Readiness(metrics=settings.metrics, metrics_access=metrics_access(settings))
        if settings.health_port:
            try:
                health_port = await readiness.serve(settings.health_host, settings.health_port)
            except OSError as error:
                if not health_optional:
                    raise
                log.warning(
                    "health.not_serving",
                    host=settings.health_host,
                    port=settings.health_port,
                    error=str(error),
                )
            else:
                stack.push_async_callback(readiness.close)
                if on_health is not None:
                    on_health(health_port)
        running: dict[str, Running] = {}
        try:
            for name, start in starters:
                running[name] = await start(dataclasses.replace(context, bus=buses[name]))
            if long_running:
                settle_collector()
            readiness.ready = True
            if on_ready is not None:
                await on_ready(running)
            await stop.wait()
        finally:
            readiness.ready = False
            log.info("services.stopping", services=list(running))
            try:
                async with asyncio.timeout(SHUTDOWN_DEADLINE):
                    for name in reversed(list(running)):
                        await running[name].stop(SHUTDOWN_GRACE)
            except TimeoutError:
                log.error("services.stop_deadline_passed", deadline=SHUTDOWN_DEADLINE)


def settle_collector() -> None:
    """Sets the garbage collector for a process that serves from now on.

    A full collection, then every object alive (the modules, clients, services and caches the
    start-up made, which live as long as the process) moves to the permanent generation, so
    the full collections that serving triggers no longer walk them; no start-up garbage is
    kept. The youngest generation is collected every `GEN0_THRESHOLD` allocations rather than
    700: a job's short-lived objects mostly die by reference count, and fewer young passes
    promote fewer of them to be walked again. Objects made later are collected as before; a
    start-up object that later ends up unreachable in a cycle is never freed (the price: the
    start-up's objects are meant to last).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
    log.debug("gc.settled", frozen=gc.get_freeze_count(), threshold=gc.get_threshold())


def metrics_access(settings: Settings) -> MetricsAccess | None:
    """The check of `/metrics` scrapes: None (open) when the health endpoint listens on
    loopback or authentication is off; else a scrape needs the bearer token of any caller the
    platform knows, whatever its role. The probes' paths stay open either way."""
    address = f"{settings.health_host}:{settings.health_port}"
    authenticator = build_authenticator(settings)
    if authenticator is None or is_loopback(address):
        return None

    async def admit(headers: list[tuple[str, str]]) -> None:
        await authenticator.authenticate(headers)

    return admit


async def _connect_buses(
    names: list[str],
    settings: Settings,
    credentials: Mapping[str, BusCredentials] | None,
    stack: AsyncExitStack,
) -> dict[str, Bus]:
    """The bus of each service: its own connection with `credentials`, else one shared."""
    if credentials is None:
        if not names:
            return {}
        bus = await _connect(settings, f"aorta-{'+'.join(names)}", None, stack)
        return dict.fromkeys(names, bus)
    return {
        name: await _connect(settings, f"aorta-{name}", credentials[name], stack) for name in names
    }


async def _connect(
    settings: Settings, name: str, credentials: BusCredentials | None, stack: AsyncExitStack
) -> Bus:
    bus = await NatsBus.connect(
        settings.nats_url,
        name=name,
        default_timeout=settings.rpc_timeout,
        stream_max_bytes=settings.events_max_bytes,
        credentials=credentials or settings_credentials(settings),
        tls=tls_context(settings),
    )
    stack.push_async_callback(bus.close)
    return bus


def serve_services(starters: Sequence[NamedStarter]) -> None:
    """Runs `starters` with settings from the environment until SIGTERM or SIGINT.

    The entry point of `aorta serve` and of `python -m aorta_services.<name>`; the only place,
    with `aorta up`, that reads `os.environ`.
    """
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format, settings.log_level)
    tracing.configure("aorta-" + "-".join(name for name, _ in starters), os.environ)

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_services(starters, settings, stop, long_running=True)

    try:
        asyncio.run(main())
    finally:
        tracing.shutdown()
