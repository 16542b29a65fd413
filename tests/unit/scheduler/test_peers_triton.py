"""The scheduler asks for Triton again when a models replica never answers (it died or stalled
mid-acquire), and not when the models service answered with an error."""

from __future__ import annotations

import asyncio

import pytest

from aorta import contracts
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.bus.verbs import answering
from aorta.errors import Unavailable
from aorta.ids import JobId
from aorta_services.scheduler.peers import Peers

JOB = JobId("c" * 32)
VERB = contracts.MODELS_ACQUIRE_TRITON


async def test_an_acquire_nobody_answered_is_asked_again() -> None:
    network = MemoryNetwork()
    models, scheduler = MemoryBus(network), MemoryBus(network)
    asked: list[str] = []
    hung = asyncio.Event()

    async def acquire(request: contracts.AcquireTriton) -> contracts.TritonServer:
        asked.append(request.job_id)
        if len(asked) == 1:
            # The first replica to be asked never answers, as one SIGKILLed mid-acquire.
            await hung.wait()
        return contracts.TritonServer(grpc_uri="127.0.0.1:8001", http_uri="127.0.0.1:8000")

    await models.serve(VERB.subject, answering(VERB, acquire), queue="models")
    uris = await Peers(scheduler, timeout=0.2).acquire_triton(JOB, ["seg"])
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
        await Peers(scheduler, timeout=5.0).acquire_triton(JOB, ["seg"])
    assert asked == [JOB]
    await models.close()
    await scheduler.close()
