"""`aorta.v1.Jobs/Timeline` on a scheduler replica, with tracing on (the SDK's in-memory
exporter): the job's stages in order, the same times in its spans, its trace id in Status, and
only its owner (or an admin) may read it; a job that stops holding nothing (unplaceable at
Start, canceled before it) has its span too."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aorta import subjects
from aorta.api import aorta_jobs_pb2
from aorta.auth.principal import Principal, Role
from aorta.errors import Forbidden
from aorta.observability import tracing
from tests.unit.scheduler.job_calls import chain, wait_for
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import CHAIN, PIPELINE_ID, Harness, ident

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))
GATEWAY_START = "nvidia.clara.platform.Jobs/Start"


async def timeline(harness: Harness, job_id: str) -> aorta_jobs_pb2.JobsTimelineResponse:
    request = aorta_jobs_pb2.JobsTimelineRequest(job_id=ident(job_id))
    response: aorta_jobs_pb2.JobsTimelineResponse = await harness.call(
        subjects.SCHEDULER_TIMELINE, request, aorta_jobs_pb2.JobsTimelineResponse
    )
    return response


def seconds(nanos: int | None) -> float:
    assert nanos is not None
    return nanos / 1e9


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


async def test_a_jobs_timeline_and_its_spans_tell_the_same_story(
    harness: Harness, exported_spans: InMemorySpanExporter
) -> None:
    await chain(harness, first=Behaviour(seconds=0.05))
    # Called as the gateway calls: in the span of a client's call, which the bus carries on.
    with tracing.server_span(GATEWAY_START, {}):
        job_id = await harness.run("traced")
    await harness.stopped(job_id)
    answer = await timeline(harness, job_id)
    owned = await harness.owned_status(job_id)
    assert answer.trace_id and owned.trace_id == answer.trace_id

    assert answer.enqueued <= answer.admitted <= answer.stopped
    attempts = {a.operator: a for a in answer.attempts}
    assert list(attempts) == ["first", "second", "third"]
    for attempt in attempts.values():
        assert (attempt.attempt, attempt.executor, attempt.outcome) == (
            1,
            "fakeexecutor",
            "completed",
        )
        assert attempt.ready <= attempt.admitted
    assert attempts["first"].ready == answer.admitted
    assert attempts["second"].ready >= attempts["first"].admitted + 0.05

    def job_span_exported() -> bool:
        return any(s.name == "job traced" for s in exported_spans.get_finished_spans())

    await wait_for(job_span_exported)
    spans = [
        s
        for s in exported_spans.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == answer.trace_id
    ]
    (root,) = [s for s in spans if s.name == "job traced"]
    assert seconds(root.start_time) == pytest.approx(answer.enqueued, abs=1e-6)
    assert seconds(root.end_time) == pytest.approx(answer.stopped, abs=1e-6)
    # Queued in the span of the scheduler's Start handler, as the bus delivered it.
    assert root.parent is not None
    (handler,) = [s for s in spans if span_id(s) == f"{root.parent.span_id:016x}"]
    assert handler.name == subjects.SCHEDULER_START
    assert handler.parent is not None
    (call,) = [s for s in spans if span_id(s) == f"{handler.parent.span_id:016x}"]
    assert call.name == GATEWAY_START
    root_id = span_id(root)
    children = {s.name: s for s in spans if s.parent and f"{s.parent.span_id:016x}" == root_id}
    # The leader's release of the job's payload joins the job's trace too.
    assert set(children) == {
        "admission",
        "operator first",
        "operator second",
        "operator third",
        subjects.PAYLOADS_RELEASE,
    }
    for name, attempt in attempts.items():
        assert seconds(children[f"operator {name}"].start_time) == pytest.approx(
            attempt.admitted, abs=1e-6
        )


def job_span(exported: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exported.get_finished_spans() if s.name == f"job {name}"]
    return span


async def test_a_job_that_stops_holding_nothing_has_its_span(
    harness: Harness, exported_spans: InMemorySpanExporter
) -> None:
    gpu = CHAIN.replace("requests: {cpu: 1}", "requests: {gpu: 1}", 1)
    harness.peers.add_pipeline(PIPELINE_ID, "chain", {"chain.yaml": gpu})
    await harness.replica()
    with tracing.server_span(GATEWAY_START, {}):
        unplaceable = await harness.run("unplaceable")
    with tracing.server_span("nvidia.clara.platform.Jobs/Cancel", {}):
        never_started = await harness.create("never-started")
        await harness.cancel(never_started)

    for job_id, name, status in (
        (unplaceable, "unplaceable", "FAULTED"),
        (never_started, "never-started", "CANCELED"),
    ):
        answer = await timeline(harness, job_id)
        span = job_span(exported_spans, name)
        assert span.context is not None and answer.trace_id
        assert f"{span.context.trace_id:032x}" == answer.trace_id
        assert span.attributes is not None and span.attributes["aorta.job.status"] == status
        assert not span.status.is_ok
        assert seconds(span.end_time) == pytest.approx(answer.stopped, abs=1e-6)
    # The canceled job's span runs from its creation, the unplaceable one's from its Start.
    assert seconds(job_span(exported_spans, "never-started").start_time) == pytest.approx(
        (await timeline(harness, never_started)).created, abs=1e-6
    )
    assert seconds(job_span(exported_spans, "unplaceable").start_time) == pytest.approx(
        (await timeline(harness, unplaceable)).enqueued, abs=1e-6
    )


async def test_only_its_owner_or_an_admin_reads_a_jobs_timeline(harness: Harness) -> None:
    await chain(harness)
    alice = harness.acting_as(ALICE)
    job_id = await alice.create()
    with pytest.raises(Forbidden, match=f"job {job_id} belongs to another user"):
        await timeline(harness.acting_as(BOB), job_id)
    mine = await timeline(alice, job_id)
    assert (mine.job_id.value, mine.trace_id, list(mine.attempts)) == (job_id, "", [])
    assert mine.HasField("created") and not mine.HasField("enqueued")
    assert (await timeline(harness.acting_as(ADMIN), job_id)).job_id.value == job_id
