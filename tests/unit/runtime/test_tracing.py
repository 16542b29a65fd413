"""OpenTelemetry traces, exported to the SDK's in-memory exporter: off unless asked for, spans
built from a job's timeline under the ids stored with it, context carried over the bus, and
log lines that name the trace."""

from __future__ import annotations

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from aorta.bus import Request
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.executors import RunOutcome, RunReason, RunTimes
from aorta.logger import add_trace_id
from aorta.observability import tracing
from aorta_services.scheduler import observations
from aorta_services.scheduler.domain import transitions
from aorta_services.scheduler.domain.timeline import JobTrace
from tests.unit.scheduler.test_transitions import ALLOCATION, created

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
JOB_SPAN = "00f067aa0ba902b7"
START_SPAN = "b7ad6b7169203331"


def hex_ids(span: ReadableSpan) -> tuple[str, str, str]:
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        "" if parent is None else f"{parent.span_id:016x}",
    )


def test_only_an_otlp_endpoint_turns_tracing_on() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}
    assert not tracing.wanted(disabled)
    assert not tracing.configure("aorta-test", {})
    assert not tracing.enabled() and tracing.new_ids() is None


def test_nothing_is_recorded_while_tracing_is_off() -> None:
    tracing.emit("x", trace_id=TRACE_ID, parent_span_id="", start=1.0, end=2.0)
    headers: dict[str, str] = {}
    with tracing.server_span("rpc", {}):
        tracing.inject(headers)
        assert tracing.current_trace_id() == ""
    assert headers == {}


def test_a_span_gets_its_preset_ids_and_explicit_times(
    exported_spans: InMemorySpanExporter,
) -> None:
    tracing.emit(
        "job night",
        trace_id=TRACE_ID,
        parent_span_id=START_SPAN,
        span_id=JOB_SPAN,
        start=100.0,
        end=160.5,
        error="the job ended FAULTED",
    )
    tracing.emit("admission", trace_id=TRACE_ID, parent_span_id=JOB_SPAN, start=100.0, end=101.0)
    job, admission = exported_spans.get_finished_spans()
    assert hex_ids(job) == (TRACE_ID, JOB_SPAN, START_SPAN)
    assert (job.start_time, job.end_time) == (100_000_000_000, 160_500_000_000)
    assert not job.status.is_ok
    trace_id, span_id, parent = hex_ids(admission)
    assert (trace_id, parent) == (TRACE_ID, JOB_SPAN) and span_id != JOB_SPAN


def test_new_ids_continue_the_call_being_served(exported_spans: InMemorySpanExporter) -> None:
    carrier = {"traceparent": f"00-{TRACE_ID}-{START_SPAN}-01"}
    with tracing.server_span("nvidia.clara.platform.Jobs/Start", carrier):
        ids = tracing.new_ids()
        served = tracing.current_trace_id()
    assert ids is not None and served == TRACE_ID
    (span,) = exported_spans.get_finished_spans()
    assert ids.trace_id == TRACE_ID and ids.parent_span_id == hex_ids(span)[1]
    assert hex_ids(span)[2] == START_SPAN
    alone = tracing.new_ids()
    assert alone is not None and alone.trace_id != TRACE_ID and alone.parent_span_id == ""


async def test_a_bus_request_carries_the_trace_and_the_request_id(
    exported_spans: InMemorySpanExporter,
) -> None:
    network = MemoryNetwork()
    server, client = MemoryBus(network), MemoryBus(network)
    seen: dict[str, object] = {}

    async def handler(request: Request) -> bytes:
        seen["trace_id"] = tracing.current_trace_id()
        seen["log"] = add_trace_id(None, "info", {})
        seen["request_id"] = structlog.contextvars.get_contextvars().get("request_id")
        return b"ok"

    await server.serve("aorta.rpc.payloads.lock", handler, queue="payloads")
    carrier = {"traceparent": f"00-{TRACE_ID}-{START_SPAN}-01"}
    with (
        structlog.contextvars.bound_contextvars(request_id="req-7"),
        tracing.server_span("aorta.rpc.scheduler.start", carrier),
    ):
        assert await client.request("aorta.rpc.payloads.lock", b"") == b"ok"
    await client.close()
    await server.close()
    assert seen == {"trace_id": TRACE_ID, "log": {"trace_id": TRACE_ID}, "request_id": "req-7"}
    names = [span.name for span in exported_spans.get_finished_spans()]
    assert names == ["aorta.rpc.payloads.lock", "aorta.rpc.scheduler.start"]


async def test_a_request_outside_any_trace_starts_none_and_a_jobs_requests_join_its_own(
    exported_spans: InMemorySpanExporter,
) -> None:
    network = MemoryNetwork()
    server, client = MemoryBus(network), MemoryBus(network)
    seen: list[tuple[str, dict[str, str]]] = []

    async def handler(request: Request) -> bytes:
        seen.append((tracing.current_trace_id(), dict(request.headers)))
        return b"ok"

    await server.serve("aorta.rpc.payloads.release", handler, queue="payloads")
    assert await client.request("aorta.rpc.payloads.release", b"") == b"ok"
    with tracing.job_parent(TRACE_ID, JOB_SPAN):
        assert await client.request("aorta.rpc.payloads.release", b"") == b"ok"
    await client.close()
    await server.close()
    (outside, outside_headers), (inside, _) = seen
    assert outside == "" and "traceparent" not in outside_headers
    assert inside == TRACE_ID
    (span,) = exported_spans.get_finished_spans()
    assert hex_ids(span)[0] == TRACE_ID and hex_ids(span)[2] == JOB_SPAN


def test_an_operator_end_feeds_its_spans_and_metrics_from_the_timeline(
    exported_spans: InMemorySpanExporter,
) -> None:
    record = transitions.queue(
        created(),
        variables={},
        operators=created().operators,
        progress=created().progress,
        models=(),
        timeout=60,
        now=110.0,
        trace=JobTrace(TRACE_ID, JOB_SPAN),
    )
    record = transitions.admit(record, now=120.0, rotation=0, triton=None)
    record = transitions.start_operator(
        record, "a", attempt=1, run_id="a-1", allocation=ALLOCATION, now=130.0, executor="tracetest"
    )
    times = RunTimes(staging=130.25, running=131.0, exited=139.0, stored=139.5)
    outcome = RunOutcome("a-1", RunReason.COMPLETED, 0, times=times)
    record = transitions.finish_operator(
        record, "a", attempt=1, outcome=outcome, reason="", now=140.0
    )

    def runs() -> float:
        labels = {"executor": "tracetest", "outcome": "completed"}
        return REGISTRY.get_sample_value("aorta_operator_runs_total", labels) or 0.0

    def timed() -> float:
        labels = {"executor": "tracetest"}
        return REGISTRY.get_sample_value("aorta_operator_duration_seconds_sum", labels) or 0.0

    before, before_time = runs(), timed()
    observations.operator_ended(record, "a", 1)
    observations.job_admitted(record)
    assert runs() == before + 1
    assert timed() == pytest.approx(before_time + 9.5)

    spans = {span.name: span for span in exported_spans.get_finished_spans()}
    assert set(spans) == {"operator a", "staging", "running", "storing", "admission"}
    operator = spans["operator a"]
    assert hex_ids(operator)[2] == JOB_SPAN
    assert (operator.start_time, operator.end_time) == (130 * 10**9, 140 * 10**9)
    expected = {"staging": (130.25, 131.0), "running": (131.0, 139.0), "storing": (139.0, 139.5)}
    for stage, (start, end) in expected.items():
        span = spans[stage]
        assert hex_ids(span)[2] == hex_ids(operator)[1]
        assert (span.start_time, span.end_time) == (int(start * 10**9), int(end * 10**9))
    admission = spans["admission"]
    assert (admission.start_time, admission.end_time) == (110 * 10**9, 120 * 10**9)
