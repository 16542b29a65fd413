"""What metrics and tracing cost: the jobs benchmark with both on, against both off, in one run.

`bench_jobs`' many-jobs figure (`JOBS` one-operator jobs started at once, jobs per second from
the first `Start` to the last `job.stopped`) on a fresh platform in this process, run in the
order `ORDER` (mirrored around its middle, so that a machine growing busier or quieter during
the run weighs on every side alike), after one run left out that pays for what a process does
once (imports, the first operator's start); each side's figure is the mean of its two runs.

- off: `AORTA_METRICS=off` (no gRPC interceptor, no bus timer, nothing fed) and no tracing;
- metrics: every metric fed, no tracing, to tell the two costs apart;
- on: every metric fed, and tracing on with the OTLP/gRPC exporter sending every span to a
  collector (`bench.span_sink`, OpenTelemetry's TraceService counting the spans it receives)
  in a process of its own, as a platform with `OTEL_EXPORTER_OTLP_ENDPOINT` set does: decoding
  the spans is the collector's work, so the platform's CPU time is what tracing costs the
  platform (its spans built, batched, encoded and sent).

Beside them, what one span costs the platform measured alone (`span_cpu_us`: a served call's
span started, made current, ended, batched and encoded as the OTLP exporter encodes it), times
the spans a job makes: a figure of tracing's CPU per job that the machine's other work hardly
moves, to read beside the end-to-end one.

The target is less than 5 % fewer jobs per second with both on. Jobs per second on a machine
other work shares moves by more than that from run to run, so the report also gives the CPU
time this process spent per job (the last batch of spans exported at the end included), which
other processes disturb far less: what metrics and tracing cost is CPU in the platform's own
process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from aorta.logger import configure_logging
from aorta.observability import metrics, tracing
from bench.bench_jobs import JOBS, platform_many, with_platform

ROOT = Path(__file__).resolve().parents[1]
TARGET_LOSS_PERCENT = 5.0
ORDER = ("off", "metrics", "on", "on", "metrics", "off")


SPANS_ALONE = 2000
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class EncodingOnly(SpanExporter):
    """Encodes each batch as the OTLP exporter does, and sends it nowhere."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_cpu_us(count: int = SPANS_ALONE) -> float:
    """CPU microseconds this process spends per span of a served bus request (every span the
    platform makes costs about as much), all `count` of them batched and encoded."""
    provider = tracing.new_provider()
    provider.add_span_processor(BatchSpanProcessor(EncodingOnly(), max_queue_size=count))
    tracing.install(provider)
    carrier = {"traceparent": TRACEPARENT}
    cpu = time.process_time()
    try:
        for _ in range(count):
            with tracing.server_span("aorta.rpc.scheduler.start", carrier, root=False):
                pass
        provider.force_flush()
    finally:
        tracing.shutdown()
    return (time.process_time() - cpu) / count * 1e6


@dataclass
class Collector:
    """The collector's address; once it stopped, the spans it received and its CPU time."""

    endpoint: str
    spans: int = 0
    cpu_seconds: float = 0.0


@asynccontextmanager
async def collector() -> AsyncIterator[Collector]:
    """`bench.span_sink` started in a process of its own; yields its `Collector`, whose
    counts are filled in once it stopped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.span_sink",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        sink = Collector(f"127.0.0.1:{int(await process.stdout.readline())}")
        yield sink
    finally:
        process.stdin.close()
        last = await process.stdout.read()
        await process.wait()
    spans, cpu = last.split()
    sink.spans, sink.cpu_seconds = int(spans), float(cpu)


async def jobs_per_second(side: str, endpoint: str) -> tuple[float, float]:
    """The many-jobs figure on a fresh platform with `side`'s metrics and tracing, and the CPU
    seconds this process (the platform, its threads included) spent per job."""
    metrics.set_recording(side != "off")
    if side == "on":
        provider = tracing.new_provider()
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracing.install(provider)
    cpu = time.process_time()
    try:
        many = await with_platform(platform_many)
    finally:
        # Exports what is still buffered, which is part of what tracing costs.
        tracing.shutdown()
        metrics.set_recording(True)
    cpu = time.process_time() - cpu
    return JOBS / float(many["seconds"]), cpu / JOBS


async def measure() -> dict[str, Any]:
    sides = dict.fromkeys(ORDER)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    async with collector() as sink:
        await jobs_per_second("off", sink.endpoint)
        for side in ORDER:
            jobs_per_s, cpu_per_job = await jobs_per_second(side, sink.endpoint)
            rates[side].append(jobs_per_s)
            cpu[side].append(cpu_per_job)
    rate = {side: statistics.mean(values) for side, values in rates.items()}
    ms = {side: statistics.mean(values) * 1000 for side, values in cpu.items()}
    loss = (rate["off"] - rate["on"]) / rate["off"] * 100
    report: dict[str, Any] = {"cores": os.cpu_count(), "jobs": JOBS, "order": "-".join(ORDER)}
    for side in sides:
        report[f"jobs_per_s_{side}"] = [round(value, 1) for value in rates[side]]
    for side in sides:
        report[f"jobs_per_s_{side}_mean"] = round(rate[side], 1)
    report |= {
        "loss_percent_metrics_only": round((rate["off"] - rate["metrics"]) / rate["off"] * 100, 1),
        "loss_percent_metrics_and_tracing": round(loss, 1),
        "loss_target_percent": TARGET_LOSS_PERCENT,
        "loss_within_target": loss < TARGET_LOSS_PERCENT,
    }
    for side in sides:
        report[f"platform_cpu_ms_per_job_{side}"] = round(ms[side], 2)
    for side in ("metrics", "on"):
        increase = (ms[side] - ms["off"]) / ms["off"] * 100
        report[f"platform_cpu_increase_percent_{side}"] = round(increase, 1)
    traced_jobs = JOBS * ORDER.count("on")
    spans_per_job = sink.spans / traced_jobs
    report["spans_received"] = sink.spans
    report["spans_per_job"] = round(spans_per_job, 1)
    report["collector_cpu_ms_per_job"] = round(sink.cpu_seconds / traced_jobs * 1000, 2)
    per_span = statistics.median(span_cpu_us() for _ in range(3))
    per_job_ms = per_span * spans_per_job / 1000
    report["tracing_cpu_us_per_span_alone"] = round(per_span, 1)
    report["tracing_cpu_ms_per_job_from_spans"] = round(per_job_ms, 2)
    report["tracing_cpu_percent_per_job_from_spans"] = round(per_job_ms / ms["off"] * 100, 1)
    return report


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    return asyncio.run(measure())


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
