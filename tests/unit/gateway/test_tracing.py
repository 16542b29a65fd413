"""The gateway and traces: a client's W3C `traceparent` is continued by the call's span and
carried on to the service over the bus; Jobs.Status names the job's trace in its metadata."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aorta import contracts, subjects
from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.bus import Request
from aorta.bus.verbs import answering
from aorta.observability import TRACE_ID_METADATA, tracing
from tests.unit.gateway.door_harness import door_gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
JOB = "0123456789abcdef0123456789abcdef"


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
