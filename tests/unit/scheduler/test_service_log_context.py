"""Log lines stay joined up: what a replica logs for a job's Start names the request and the
job's trace, and what it logs for an operator's run names the job, the operator, the attempt
and the trace, as the JSON lines a service writes show them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from aorta.logger import configure_logging, flush_logs
from aorta.observability import tracing
from aorta.testing.otlp_collector import memory_spans
from tests.unit.scheduler.job_calls import chain
from tests.unit.scheduler.scheduler_harness import Harness


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The service's JSON log lines, with tracing on; logging put back as it was after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    with memory_spans():
        yield stream
    flush_logs()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_a_jobs_lines_name_its_request_job_operator_and_trace(
    harness: Harness, lines: io.StringIO
) -> None:
    await chain(harness)
    job_id = await harness.create("joined")
    harness.headers["Aorta-Request-Id"] = "req-42"
    # Called as the gateway calls: in the span of a client's call, which the bus carries on.
    with tracing.server_span("nvidia.clara.platform.Jobs/Start", {}):
        await harness.start(job_id)
    await harness.stopped(job_id)
    trace_id = (await harness.owned_status(job_id)).trace_id
    assert trace_id

    logged = events(lines)
    (queued,) = [e for e in logged if e["event"] == "job.queued"]
    assert (queued["request_id"], queued["job_id"], queued["trace_id"]) == (
        "req-42",
        job_id,
        trace_id,
    )
    (admitted,) = [e for e in logged if e["event"] == "job.started"]
    assert (admitted["job_id"], admitted["trace_id"]) == (job_id, trace_id)
    runs = [e for e in logged if e["event"] in ("operator.started", "operator.stopped")]
    assert sorted({e["operator"] for e in runs}) == ["first", "second", "third"]
    for event in runs:
        assert (event["job_id"], event["attempt"], event["trace_id"]) == (job_id, 1, trace_id)
