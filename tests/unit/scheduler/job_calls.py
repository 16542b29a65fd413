"""Calls the Jobs tests share: a replica serving the chain pipeline, a refused call's error,
`Jobs.List` through the bus, the events seen, and waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aorta import subjects
from aorta.api import jobs_pb2
from aorta.bus import CloudEvent
from aorta.errors import AortaError
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import CHAIN, PIPELINE_ID, Harness

OTHER_PIPELINE = "abcdefabcdefabcdefabcdefabcdef00"
CHAIN_EVENTS = [
    ("created", None),
    ("queued", None),
    ("started", None),
    ("operator.started", "first"),
    ("operator.stopped", "first"),
    ("operator.started", "second"),
    ("operator.stopped", "second"),
    ("operator.started", "third"),
    ("operator.stopped", "third"),
    ("stopped", None),
]
"""The events (name, operator) a healthy run of the chain pipeline publishes, in order."""


async def refused(call: Any) -> AortaError:
    with pytest.raises(AortaError) as caught:
        await call
    return caught.value


async def chain(harness: Harness, **behaviours: Behaviour) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"chain.yaml": CHAIN})
    await harness.replica(behaviours=behaviours)


async def list_jobs(
    harness: Harness, filter: jobs_pb2.JobsListRequest.JobFilter | None = None
) -> list[jobs_pb2.JobsListResponse]:
    request = jobs_pb2.JobsListRequest(filter=filter) if filter else jobs_pb2.JobsListRequest()
    stream = harness.client.request_stream(
        subjects.SCHEDULER_LIST, request.SerializeToString(), headers=harness.headers
    )
    return [jobs_pb2.JobsListResponse.FromString(item) async for item in stream]


def ids(items: list[jobs_pb2.JobsListResponse]) -> list[str]:
    return [item.job_details.job_id.value for item in items if item.HasField("job_details")]


def appender(seen: list[CloudEvent]) -> Any:
    """An event handler that appends each event to `seen`."""

    async def handler(event: CloudEvent) -> None:
        seen.append(event)

    return handler


async def wait_for(condition: Any, within: float = 60.0) -> None:
    """Returns once `condition()` holds; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)
