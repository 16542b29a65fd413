"""The gateway and traces: a client's W3C `traceparent` is continued by the call's span and
carried on to the service over the bus, for server streams (lists, logs, downloads) too; a
call without one starts a trace; Jobs.Status names the job's trace in its metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from aorta import contracts, subjects
from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.bus import Request
from aorta.bus.verbs import answering
from aorta.observability import TRACE_ID_METADATA, tracing
from tests.unit.gateway.door_harness import door_gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
JOB = "0123456789abcdef0123456789abcdef"


def hex_id(context: SpanContext | None) -> str:
    return "" if context is None else f"{context.span_id:016x}"


async def test_a_clients_trace_reaches_the_service(
    tmp_path: Path, exported_spans: InMemorySpanExporter
) -> None:
    seen: list[str] = []

    async def cancel(request: Request) -> bytes:
        seen.append(tracing.current_trace_id())
        return jobs_pb2.JobsCancelResponse(header=common_pb2.ResponseHeader()).SerializeToString()

    async with door_gateway(tmp_path) as door:
        await door.bus.serve(subjects.SCHEDULER_CANCEL, cancel, queue="scheduler")
        stub = jobs_pb2_grpc.JobsStub(door.channel)
        request = jobs_pb2.JobsCancelRequest(job_id=common_pb2.Identifier(value=JOB))
        traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
        await stub.Cancel(request, metadata=(("traceparent", traceparent),), timeout=5)

    assert seen == [TRACE_ID]
    spans = {span.name: span for span in exported_spans.get_finished_spans()}
    gateway = spans["nvidia.clara.platform.Jobs/Cancel"]
    service = spans[subjects.SCHEDULER_CANCEL]
    assert gateway.parent is not None and f"{gateway.parent.span_id:016x}" == CLIENT_SPAN
    assert gateway.context is not None and service.parent is not None
    assert service.parent.span_id == gateway.context.span_id


async def test_a_server_stream_is_traced_until_its_last_message(
    tmp_path: Path, exported_spans: InMemorySpanExporter
) -> None:
    seen: list[str] = []

    async def listing(request: Request) -> AsyncIterator[bytes]:
        for job in ("a" * 32, "b" * 32):
            seen.append(tracing.current_trace_id())
            details = jobs_pb2.JobsListResponse.JobDetails(job_id=common_pb2.Identifier(value=job))
            yield jobs_pb2.JobsListResponse(job_details=details).SerializeToString()

    async with door_gateway(tmp_path) as door:
        served = await door.bus.serve_stream(subjects.SCHEDULER_LIST, listing, queue="scheduler")
        try:
            stub = jobs_pb2_grpc.JobsStub(door.channel)
            traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
            call = stub.List(jobs_pb2.JobsListRequest(), metadata=(("traceparent", traceparent),))
            listed = [item.job_details.job_id.value async for item in call]
            # No traceparent: the gateway starts a trace of the call's own.
            alone = [item async for item in stub.List(jobs_pb2.JobsListRequest())]
        finally:
            await served.drain()

    assert listed == ["a" * 32, "b" * 32] and len(alone) == 2
    assert seen[:2] == [TRACE_ID, TRACE_ID]
    assert seen[2] == seen[3] and seen[2] not in ("", TRACE_ID)
    spans = exported_spans.get_finished_spans()
    calls = {
        hex_id(span.get_span_context()): hex_id(span.parent)
        for span in spans
        if span.name == "nvidia.clara.platform.Jobs/List"
    }
    assert sorted(calls.values()) == ["", CLIENT_SPAN]
    # Each stream's service side is a child of its call's span.
    services = {hex_id(span.parent) for span in spans if span.name == subjects.SCHEDULER_LIST}
    assert services == set(calls)


async def test_status_names_the_jobs_trace_beside_the_answer(tmp_path: Path) -> None:
    async def status(request: jobs_pb2.JobsStatusRequest) -> contracts.JobStatus:
        answer = jobs_pb2.JobsStatusResponse(header=common_pb2.ResponseHeader())
        return contracts.JobStatus(answer, owner="alice", trace_id=TRACE_ID)

    async with door_gateway(tmp_path) as door:
        verb = contracts.SCHEDULER_STATUS
        await door.bus.serve(verb.subject, answering(verb, status), queue="scheduler")
        stub = jobs_pb2_grpc.JobsStub(door.channel)
        request = jobs_pb2.JobsStatusRequest(job_id=common_pb2.Identifier(value=JOB))
        call = stub.Status(request, timeout=5)
        await call
        metadata = dict(await call.initial_metadata())
    assert metadata[TRACE_ID_METADATA] == TRACE_ID
    assert metadata["aorta-owner"] == "alice"
