"""`aorta up`: the whole platform in one process on one machine.

A `nats-server` child process (JetStream, data under the data dir) carries the bus, SQLite holds
the state and a local folder the bytes; every service runs in this process. The data dir is
locked so two platforms never share it, and all state survives a restart on the same data dir.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aorta import __version__
from aorta.bus.nats_server import NatsServerProcess
from aorta.logger import get_logger
from aorta.runtime.process import install_stop_signals, run_services
from aorta.runtime.service import Listening, Running
from aorta.settings import Settings
from aorta_services.launch import registry

log = get_logger(__name__)


class DataDirBusy(RuntimeError):
    """Another platform already runs on this data dir."""


@dataclass(frozen=True)
class EmbeddedOptions:
    """What `aorta up` was asked for."""

    data_dir: Path
    grpc_host: str = "0.0.0.0"
    grpc_port: int = 30031
    nats_port: int = -1


def embedded_settings(base: Settings, options: EmbeddedOptions, nats_url: str) -> Settings:
    """`base` with the embedded adapters: SQLite and a local folder under the data dir."""
    data_dir = options.data_dir.resolve()
    return base.with_changes(
        data_dir=data_dir,
        nats_url=nats_url,
        state_store=f"sqlite:///{data_dir / 'state.db'}",
        blob_store=f"file:///{data_dir / 'blobs'}",
        grpc_address=f"{options.grpc_host}:{options.grpc_port}",
    )


@contextmanager
def locked_data_dir(data_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on `data_dir` for the life of the platform."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "aorta.lock"
    with open(lock_path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            raise DataDirBusy(
                f"the data dir {data_dir} is in use by {holder}; stop it first or choose "
                "another --data-dir"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"aorta up (pid {os.getpid()})\n")
        lock_file.flush()
        yield


async def run_embedded(
    options: EmbeddedOptions,
    environ: Mapping[str, str],
    stop: asyncio.Event | None = None,
) -> None:
    """Runs the embedded platform until `stop` is set (or SIGTERM/SIGINT arrives)."""
    stop_event = stop or asyncio.Event()
    if stop is None:
        install_stop_signals(stop_event)
    base = Settings.from_env(environ)
    with locked_data_dir(options.data_dir):
        nats = NatsServerProcess(options.data_dir / "nats", port=options.nats_port)
        async with nats:
            settings = embedded_settings(base, options, nats.url)

            async def announce(running: dict[str, Running]) -> None:
                gateway = running.get("gateway")
                port = gateway.port if isinstance(gateway, Listening) else options.grpc_port
                print(
                    f"Aorta {__version__} is up: Clara API on {options.grpc_host}:{port}, "
                    f"bus {nats.url}, data in {settings.data_dir}. Press Ctrl-C to stop.",
                    file=sys.stdout,
                    flush=True,
                )

            starters = registry.starters(registry.START_ORDER)
            await run_services(starters, settings, stop_event, on_ready=announce)
    print("Aorta stopped.", file=sys.stdout, flush=True)
