"""A real nats-server for tests, and buses on it; pytest-agnostic (fixtures wrap these).

Each server listens on a free port of 127.0.0.1 (never on a shared :4222), below the kernel's
ephemeral range so that a test can stop it and start it again there, and keeps its
JetStream store, log and ports file under `directory`, or under a temporary folder removed on
exit when no directory is given. Given `users`, it admits only them, each with its permissions
(`aorta.bus_permissions`); `aorta.bus.credentials.generate_credentials` makes them.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import nats

from aorta.bus.credentials import BusCredentials
from aorta.bus.dead_letters import (
    ATTEMPTS_HEADER,
    CONSUMER_HEADER,
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    REASON_HEADER,
    DeadLetter,
)
from aorta.bus.events import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.bus.port import Bus, BusOptions
from aorta.children.ports import restart_safe_port


@contextmanager
def nats_server(
    directory: Path | None = None, *, users: Mapping[str, BusCredentials] | None = None
) -> Iterator[NatsServerProcess]:
    """A started server, stopped on exit (blocking start and stop)."""
    with (
        _folder(directory) as folder,
        NatsServerProcess(folder, users=users, port=restart_safe_port()) as server,
    ):
        yield server


@asynccontextmanager
async def async_nats_server(
    directory: Path | None = None, *, users: Mapping[str, BusCredentials] | None = None
) -> AsyncIterator[NatsServerProcess]:
    """A started server, stopped on exit, without blocking the event loop."""
    with _folder(directory) as folder:
        async with NatsServerProcess(folder, users=users, port=restart_safe_port()) as server:
            yield server


@contextmanager
def _folder(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="aorta-nats-") as temporary:
        yield Path(temporary)


class BusFactory:
    """Makes buses that see each other: `NatsBus` clients of the server at `url`, or, when
    `url` is None, `MemoryBus`es on one network. `close_all` closes every bus it made.
    `credentials` (NATS only) logs a bus in as that user. A bus's requests wait
    `default_timeout` for their answer unless told otherwise: a bound for failing, long enough
    that a busy machine never times out a call that is answered."""

    def __init__(self, url: str | None, *, options: BusOptions | None = None) -> None:
        self.kind = "memory" if url is None else "nats"
        self.options = options or BusOptions()
        self._url = url
        self._network = MemoryNetwork()
        self._buses: list[Bus] = []

    async def __call__(
        self,
        name: str = "test",
        *,
        default_timeout: float = 30.0,
        credentials: BusCredentials | None = None,
    ) -> Bus:
        bus: Bus
        if self._url is None:
            bus = MemoryBus(self._network, default_timeout=default_timeout, options=self.options)
        else:
            bus = await NatsBus.connect(
                self._url,
                name=name,
                default_timeout=default_timeout,
                options=self.options,
                credentials=credentials,
            )
        self._buses.append(bus)
        return bus

    async def dead_letters(self, consumer: str, count: int) -> list[DeadLetter]:
        """Waits (up to 10 s) until consumer `consumer` has left `count` dead letters, and
        returns them, read as an integrator would: from the dead-letter stream's subjects
        and headers (NATS), or the network's list (memory)."""
        async with asyncio.timeout(10.0):
            if self._url is None:
                while len(mine := self._memory_letters(consumer)) < count:
                    self._network.dead_lettered.clear()
                    await self._network.dead_lettered.wait()
                return mine
            return await self._stored_letters(self._url, consumer, count)

    def _memory_letters(self, consumer: str) -> list[DeadLetter]:
        return [letter for letter in self._network.dead_letters if letter.consumer == consumer]

    @staticmethod
    async def _stored_letters(url: str, consumer: str, count: int) -> list[DeadLetter]:
        client = await nats.connect(url)
        try:
            sub = await client.jetstream().subscribe(
                f"{DEAD_LETTER_PREFIX}.{consumer}.>", stream=DEAD_LETTER_STREAM
            )
            letters = []
            for _ in range(count):
                msg = await sub.next_msg(timeout=10.0)
                headers = msg.headers or {}
                letters.append(
                    DeadLetter(
                        headers[CONSUMER_HEADER],
                        CloudEvent.from_json(msg.data),
                        headers[REASON_HEADER],
                        int(headers[ATTEMPTS_HEADER]),
                    )
                )
            return letters
        finally:
            await client.close()

    async def close_all(self) -> None:
        for bus in self._buses:
            await bus.close()
