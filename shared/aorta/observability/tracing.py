"""OpenTelemetry traces: off unless an OTLP endpoint is set, one trace per job.

`configure` installs the SDK only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`), with the
OTLP/gRPC exporter, which reads the other standard variables itself (headers, certificates,
timeout); `service.name` is the process's unless `OTEL_SERVICE_NAME` says otherwise. Otherwise
every function here is a no-op that costs a check of one module variable.

The spans of a job are built from its timeline (the scheduler's record), with explicit start and
end times, so a trace, the `aorta describe job --timeline` chart and the operator metrics never
disagree. Their ids are chosen when the job is queued (`new_ids`) and stored with it, so spans
emitted later, by whichever replica leads then, join the same trace under the same job span
(`emit` with a preset span id). Context crosses processes in W3C `traceparent` headers: gRPC
metadata into the gateway (`server_span`), bus headers between services (`inject`,
`server_span` again on the serving side, which continues a trace but never starts one, so a
background loop's requests make no trace of their own; `job_parent` puts the leader's requests
for a job in the job's trace).

What tracing costs is kept to the spans themselves: the tracer is looked up once, when it is
installed; a call that carries no `traceparent` is not parsed; a request made outside any span
carries none; and the spans leave the process in batches on the exporter's own thread.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from aorta.logger import get_logger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = get_logger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""Either turns tracing on (the standard OpenTelemetry variables)."""
TRACER_NAME = "aorta"

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_preset: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "aorta_preset_span_ids", default=None
)


@dataclass(frozen=True)
class TraceIds:
    """A job's ids in hex: its trace, its own span, and the span that queued it ("" if none)."""

    trace_id: str
    span_id: str
    parent_span_id: str = ""


def enabled() -> bool:
    """Whether spans are recorded and exported in this process."""
    return _provider is not None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for traces: an OTLP endpoint set, the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure(service_name: str, environ: Mapping[str, str]) -> bool:
    """Installs the SDK with the OTLP/gRPC exporter when `environ` asks for traces (`wanted`);
    True when it did. Safe to call again: a process keeps its first provider."""
    if _provider is not None or not wanted(environ):
        return _provider is not None
    # Imported here: a process that does not trace never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = new_provider(Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    log.info("tracing.on", service=service_name)
    return True


def new_provider(resource: object = None) -> TracerProvider:
    """A `TracerProvider` whose ids `emit` can preset; add span processors, then `install`."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class _PresetIds(RandomIdGenerator):
        """Random ids, unless `emit` preset the next span's (a job span's, chosen at Start)."""

        def generate_span_id(self) -> int:
            preset = _preset.get()
            return preset[1] if preset is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            preset = _preset.get()
            return preset[0] if preset is not None else super().generate_trace_id()

    return TracerProvider(
        resource=resource if isinstance(resource, Resource) else Resource.create({}),
        id_generator=_PresetIds(),
    )


def install(provider: TracerProvider | None) -> None:
    """Makes `provider` this process's (None turns tracing off); tests install one that
    exports to memory."""
    global _provider, _tracer
    _provider = provider
    # Looked up once: the SDK builds and compares an instrumentation scope on every lookup.
    _tracer = None if provider is None else provider.get_tracer(TRACER_NAME)


def shutdown() -> None:
    """Exports what is buffered and turns tracing off."""
    provider = _provider
    install(None)
    if provider is not None:
        provider.shutdown()


def new_ids() -> TraceIds | None:
    """Fresh ids for a job queued now, in the current trace (the Jobs.Start call's) when there
    is one; None when tracing is off."""
    if _provider is None:
        return None
    current = trace.get_current_span().get_span_context()
    span_id = f"{random.getrandbits(64) or 1:016x}"
    if current.is_valid:
        return TraceIds(
            f"{current.trace_id:032x}", span_id, parent_span_id=f"{current.span_id:016x}"
        )
    return TraceIds(f"{random.getrandbits(128) or 1:032x}", span_id)


def current_trace_id() -> str:
    """The trace id of the span being served, "" when none (or tracing is off)."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def emit(
    name: str,
    *,
    trace_id: str,
    parent_span_id: str,
    start: float,
    end: float,
    span_id: str = "",
    attributes: Mapping[str, str | int | float] | None = None,
    error: str = "",
) -> None:
    """Records one finished span of trace `trace_id` from `start` to `end` (Unix seconds),
    under `parent_span_id` (none: a root); with `span_id` it gets that id (a job's span,
    whose children were emitted already). `error` marks it failed with that description.
    Nothing without a trace id, or when tracing is off."""
    tracer = _tracer
    if tracer is None or not trace_id:
        return
    parent = _remote_parent(trace_id, parent_span_id)
    token = _preset.set((int(trace_id, 16), int(span_id, 16)) if span_id else None)
    try:
        span = tracer.start_span(
            name, context=parent, attributes=attributes, start_time=_nanos(start)
        )
    finally:
        _preset.reset(token)
    if error:
        span.set_status(trace.Status(trace.StatusCode.ERROR, error))
    span.end(end_time=_nanos(max(start, end)))


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _remote_parent(trace_id: str, span_id: str) -> otel_context.Context:
    """A context whose current span is span `span_id` of trace `trace_id`, recorded
    elsewhere (an empty context without `span_id`)."""
    if not span_id:
        return otel_context.Context()
    remote = trace.SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))


@contextmanager
def job_parent(trace_id: str, span_id: str) -> Iterator[None]:
    """Makes span `span_id` of trace `trace_id` (a job's own span, emitted later) the current
    one meanwhile, so the requests made for the job join its trace. Nothing when tracing is
    off or the job has no trace."""
    if _tracer is None or not trace_id or not span_id:
        yield
        return
    token = otel_context.attach(_remote_parent(trace_id, span_id))
    try:
        yield
    finally:
        otel_context.detach(token)


def inject(headers: MutableMapping[str, str]) -> None:
    """Adds the current trace context (`traceparent`) to outgoing bus headers, when a span is
    current."""
    if _tracer is not None and trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)


@contextmanager
def server_span(name: str, carrier: Mapping[str, str], *, root: bool = True) -> Iterator[None]:
    """Serves one call (a gRPC method, a bus request) in a span that continues the trace
    `carrier`'s `traceparent` names, or, with `root`, starts one; the span is current
    meanwhile, so the calls it makes carry it on and its log lines name its trace id. Without
    `root` a call that continues no trace is served in none."""
    tracer = _tracer
    traced = "traceparent" in carrier
    if tracer is None or not (traced or root):
        yield
        return
    # Without a traceparent there is nothing to parse: the span is a root.
    parent = propagate.extract(carrier) if traced else otel_context.Context()
    span = tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER)
    with trace.use_span(span, end_on_exit=True):
        yield
