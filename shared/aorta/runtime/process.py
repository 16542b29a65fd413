"""Runs a set of services in one process until asked to stop.

The adapters (bus, state store, blob store) are opened once and shared; services start in the
order given and stop in reverse, each given a grace period to drain; the adapters close last.
A hard deadline bounds the whole shutdown so a stuck drain never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from aorta.bus.nats import NatsBus
from aorta.logger import configure_logging, get_logger
from aorta.runtime.health import Readiness
from aorta.runtime.service import Running, ServiceStarter, service_context
from aorta.settings import Settings

log = get_logger(__name__)

SHUTDOWN_GRACE = 10.0
SHUTDOWN_DEADLINE = 25.0

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
) -> None:
    """Starts `starters` in order, calls `on_ready` with the running services by name, and
    serves until `stop` is set."""
    names = [name for name, _ in starters]
    async with AsyncExitStack() as stack:
        bus = await NatsBus.connect(
            settings.nats_url, name=f"aorta-{'+'.join(names)}", default_timeout=settings.rpc_timeout
        )
        stack.push_async_callback(bus.close)
        context = await stack.enter_async_context(service_context(settings, bus))
        readiness = Readiness()
        if settings.health_port:
            await readiness.serve("0.0.0.0", settings.health_port)
            stack.push_async_callback(readiness.close)
        running: dict[str, Running] = {}
        try:
            for name, start in starters:
                running[name] = await start(context)
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


def serve_services(starters: Sequence[NamedStarter]) -> None:
    """Runs `starters` with settings from the environment until SIGTERM or SIGINT.

    The entry point of `aorta serve` and of `python -m aorta_services.<name>`; the only place,
    with `aorta up`, that reads `os.environ`.
    """
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_services(starters, settings, stop)

    asyncio.run(main())
