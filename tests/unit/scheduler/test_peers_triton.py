"""The scheduler asks for Triton again when a models replica never answers (it died or stalled
mid-acquire), and not when the models service answered with an error."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from aorta import contracts
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.bus.verbs import answering
from aorta.errors import Unavailable
from aorta.ids import JobId
from aorta_services.scheduler.peers import Peers

JOB = JobId("c" * 32)
VERB = contracts.MODELS_ACQUIRE_TRITON

STALLED_WAIT = 0.05
"""How long the caller waits for the stalled replica: a timeout the test expects to fire."""


class FirstAskStalls(MemoryBus):
    """A scheduler's bus whose first request gives up after `STALLED_WAIT`, through the bus's
    own timeout, while every later one has the caller's generous bound: the asks that must be
    answered never race a short deadline on a busy machine."""

    def __init__(self, network: MemoryNetwork) -> None:
        super().__init__(network)
        self.requests = 0

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the port's contract: a per-call bound)
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        self.requests += 1
        wait = STALLED_WAIT if self.requests == 1 else timeout
        return await super().request(subject, data, timeout=wait, headers=headers)


async def test_an_acquire_nobody_answered_is_asked_again() -> None:
    network = MemoryNetwork()
    models, scheduler = MemoryBus(network), FirstAskStalls(network)
    asked: list[str] = []
    hung = asyncio.Event()

    async def acquire(request: contracts.AcquireTriton) -> contracts.TritonServer:
        asked.append(request.job_id)
        if len(asked) == 1:
            # The first replica to be asked never answers, as one SIGKILLed mid-acquire.
            await hung.wait()
        return contracts.TritonServer(grpc_uri="127.0.0.1:8001", http_uri="127.0.0.1:8000")

    await models.serve(VERB.subject, answering(VERB, acquire), queue="models")
    uris = await Peers(scheduler, timeout=60.0).acquire_triton(JOB, ["seg"])
    assert (uris.grpc_uri, uris.http_uri) == ("127.0.0.1:8001", "127.0.0.1:8000")
    assert asked == [JOB, JOB]
    hung.set()
    await models.close()
    await scheduler.close()


async def test_an_acquire_the_service_refused_is_not_asked_again() -> None:
    network = MemoryNetwork()
    models, scheduler = MemoryBus(network), MemoryBus(network)
    asked: list[str] = []

    async def acquire(request: contracts.AcquireTriton) -> contracts.TritonServer:
        asked.append(request.job_id)
        raise Unavailable("tritonserver did not start")

    await models.serve(VERB.subject, answering(VERB, acquire), queue="models")
    with pytest.raises(Unavailable, match="did not start"):
        await Peers(scheduler, timeout=60.0).acquire_triton(JOB, ["seg"])
    assert asked == [JOB]
    await models.close()
    await scheduler.close()
