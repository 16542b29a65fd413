"""The JSON form of a node's sample on `aorta.metrics.gpu`: round trip and strict reading."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aorta.errors import Invalid
from aorta.gpu import GpuProcess, GpuSample, NodeSample, ProcessOwner, mb
from aorta.ids import JobId

MOMENT = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
JOB = JobId("fedcba9876543210fedcba9876543210")


def node() -> NodeSample:
    return NodeSample(
        node_id="gpu-node-1",
        interval=0.5,
        taken_at=MOMENT,
        gpus=(
            GpuSample(
                node_id="gpu-node-1",
                index=0,
                bus_id="00000000:3B:00.0",
                timestamp=MOMENT,
                compute_utilization=0.75,
                memory_utilization=None,
                memory_free=10,
                memory_used=20,
                bar1_free=None,
                bar1_used=4,
                processes=(
                    GpuProcess(7, 100, "python3", ProcessOwner(JOB, "op-1")),
                    GpuProcess(8, None, None, None),
                ),
            ),
            GpuSample(node_id="gpu-node-1", index=1, bus_id="", timestamp=MOMENT),
        ),
    )


def test_round_trip_keeps_everything() -> None:
    assert NodeSample.from_json(node().to_json()) == node()


def test_documented_shape() -> None:
    document = json.loads(node().to_json())
    assert document["node_id"] == "gpu-node-1"
    assert document["interval"] == 0.5
    assert document["taken_at"] == "2026-11-21T10:00:00.123456+00:00"
    first = document["gpus"][0]
    assert first["memory_utilization"] is None
    assert first["processes"][0] == {
        "pid": 7,
        "used_memory": 100,
        "name": "python3",
        "job_id": JOB,
        "operator": "op-1",
    }
    assert first["processes"][1]["job_id"] is None


def test_times_with_another_offset_come_back_in_utc() -> None:
    document = json.loads(node().to_json())
    document["taken_at"] = "2026-11-21T12:00:00.123456+02:00"
    assert NodeSample.from_json(json.dumps(document).encode()).taken_at == MOMENT


def test_a_node_without_gpus() -> None:
    empty = NodeSample("cpu-node", 1.0, MOMENT)
    assert NodeSample.from_json(empty.to_json()) == empty


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.pop("node_id"), "'node_id' is not a non-empty string"),
        (lambda d: d.update(interval="1"), "'interval' is not a number"),
        (lambda d: d.update(interval=-1), "'interval' is not a number >= 0"),
        (lambda d: d.update(taken_at="2026-11-21T10:00:00"), "'taken_at' is not an ISO 8601"),
        (lambda d: d.update(gpus={}), "'gpus' is not a list"),
        (lambda d: d["gpus"][0].update(index=True), "gpu 0 of a GPU sample: 'index'"),
        (lambda d: d["gpus"][1].update(memory_free=1.5), "gpu 1 of a GPU sample: 'memory_free'"),
        (lambda d: d["gpus"][0]["processes"][0].update(pid="7"), "gpu 0 process 0"),
        (lambda d: d["gpus"][0]["processes"].append(3), "gpu 0 process 2 of a GPU sample"),
        (lambda d: d["gpus"][0]["processes"][0].update(job_id="nope"), "job id 'nope'"),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(
    change: Callable[[dict[str, Any]], object], complaint: str
) -> None:
    document = json.loads(node().to_json())
    change(document)
    with pytest.raises(Invalid, match=re.escape(complaint)):
        NodeSample.from_json(json.dumps(document).encode())


@pytest.mark.parametrize("data", [b"", b"[]", b"not json", b'"text"'])
def test_non_objects_are_refused(data: bytes) -> None:
    with pytest.raises(Invalid):
        NodeSample.from_json(data)


def test_mb_rounds_down_and_treats_unknown_as_zero() -> None:
    assert mb(None) == 0
    assert mb(1024 * 1024 - 1) == 0
    assert mb(5 * 1024 * 1024 + 1) == 5
