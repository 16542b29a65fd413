"""A job's timeline and its trace on `aorta up`, exporting to an OTLP collector in the test.

One job with a parallel branch (`prepare`, then `left` and `right` side by side): `aorta describe
job --timeline -o json` gives every stage of every operator, whose durations add up to the
operator's wall time within 5 %, and the trace the platform exported has the same spans, at the
same times, in one trace that starts at the gateway's Jobs.Start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.testing.embedded import aorta_up
from aorta.testing.otlp_collector import CollectedSpan, OtlpCollector, otlp_collector
from aorta.testing.ports import free_port
from tests.e2e.branch_pipeline import AortaCli

pytestmark = pytest.mark.timeout(240)

RUN_SECONDS = 1.5
"""How long each operator's command runs: long enough that the platform's own steps between
admission and staging stay far below 5 % of the wall time."""
TOLERANCE = 1e-3
"""Seconds: the store keeps floats, a span nanoseconds."""


class Platform(AortaCli):
    def __init__(self, grpc_port: int, collector: OtlpCollector) -> None:
        super().__init__(grpc_port)
        self.collector = collector


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with otlp_collector() as (collector, endpoint):
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            # Export within a fraction of a second rather than every 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        grpc_port = free_port()
        with aorta_up(tmp_path / "data", grpc_port, environ=environ):
            yield Platform(grpc_port, collector)


def near(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) < TOLERANCE


def test_the_timeline_adds_up_and_the_trace_has_the_same_spans(
    platform: Platform, tmp_path: Path
) -> None:
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "scan.bin").write_bytes(os.urandom(50_000))
    job = platform.run_branches(tmp_path, inputs, "traced", RUN_SECONDS)

    timeline = json.loads(platform.aorta("describe", "job", "-j", job, "--timeline", "-o", "json"))
    described = json.loads(platform.aorta("describe", "job", "-j", job, "-o", "json"))
    trace_id = timeline["trace_id"]
    assert trace_id and described["trace_id"] == trace_id
    assert timeline["enqueued"] <= timeline["admitted"] <= timeline["stopped"]
    attempts = {a["operator"]: a for a in timeline["operators"]}
    assert sorted(attempts) == ["left", "prepare", "right"]
    for attempt in attempts.values():
        assert attempt["outcome"] == "completed" and attempt["executor"] == "local"
        stages = attempt["stages"]
        busy = stages["staging"] + stages["running"] + stages["storing"]
        assert stages["running"] >= RUN_SECONDS
        assert abs(busy - attempt["wall"]) <= 0.05 * attempt["wall"], attempt
    # The branches became ready when prepare ended, and ran side by side.
    for branch in ("left", "right"):
        assert attempts[branch]["ready"] >= attempts["prepare"]["stored"]
    assert attempts["left"]["running"] < attempts["right"]["exited"]
    assert attempts["right"]["running"] < attempts["left"]["exited"]

    def complete(spans: list[CollectedSpan]) -> bool:
        return any(s.name == "job traced" for s in spans)

    spans = [s for s in platform.collector.wait_for(complete) if s.trace_id == trace_id]
    assert {s.service for s in spans} == {"aorta"}
    by_name: dict[str, list[CollectedSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (root,) = by_name["job traced"]
    assert near(root.start, timeline["enqueued"]) and near(root.end, timeline["stopped"])
    assert not root.error
    (admission,) = by_name["admission"]
    assert admission.parent_span_id == root.span_id
    assert near(admission.start, timeline["enqueued"]) and near(admission.end, timeline["admitted"])
    # The job continues the trace of the Jobs.Start call that queued it, through the bus.
    served = {s.span_id: s for s in spans}
    handler = served[root.parent_span_id]
    assert handler.name == "aorta.rpc.scheduler.start"
    assert served[handler.parent_span_id].name == "nvidia.clara.platform.Jobs/Start"

    for name, attempt in attempts.items():
        (operator,) = by_name[f"operator {name}"]
        assert operator.parent_span_id == root.span_id
        assert near(operator.start, attempt["admitted"])
        children = {s.name: s for s in spans if s.parent_span_id == operator.span_id}
        assert sorted(children) == ["running", "staging", "storing"]
        bounds = {
            "staging": ("staging", "running"),
            "running": ("running", "exited"),
            "storing": ("exited", "stored"),
        }
        for stage, (start, end) in bounds.items():
            assert near(children[stage].start, attempt[start]), (name, stage)
            assert near(children[stage].end, attempt[end]), (name, stage)
            assert abs(children[stage].end - children[stage].start - attempt["stages"][stage]) < (
                TOLERANCE
            )
