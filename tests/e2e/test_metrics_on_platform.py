"""`aorta up`'s `/metrics` after one job with a parallel branch: every family of
docs/observability.md is there, the scrape parses with Prometheus' own parser, and the values
say what happened (one job created, each of its states counted once, three operator runs
timed stage by stage, the bytes uploaded and downloaded equal to the files' sizes, the gRPC
calls made); and `aorta up`'s banner says where to scrape."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_ports
from tests.e2e.branch_pipeline import AortaCli

pytestmark = pytest.mark.timeout(240)

FAMILIES = (
    "grpc_server_started",
    "grpc_server_handled",
    "grpc_server_handling_seconds",
    "aorta_jobs_created",
    "aorta_job_transitions",
    "aorta_jobs",
    "aorta_queue_depth",
    "aorta_queue_wait_seconds",
    "aorta_operator_runs",
    "aorta_operator_duration_seconds",
    "aorta_operator_stage_seconds",
    "aorta_triton_servers",
    "aorta_triton_acquire_seconds",
    "aorta_models_loaded",
    "aorta_payload_bytes",
    "aorta_bus_request_seconds",
    "aorta_events_published",
    "aorta_events_pending",
    "aorta_gpu_utilization_ratio",
    "aorta_gpu_memory_used_bytes",
)


class Platform(AortaCli):
    """`aorta up` with its metrics port, and the `aorta` command pointed at it."""

    def __init__(self, grpc_port: int, metrics_port: int) -> None:
        super().__init__(grpc_port)
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    def scrape(self) -> tuple[set[str], list[Sample]]:
        """The family names and every sample of one scrape, read by Prometheus' parser."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = response.read().decode()
        families = list(text_string_to_metric_families(text))
        return {f.name for f in families}, [s for f in families for s in f.samples]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    grpc_port, metrics_port = free_ports(2)
    with aorta_up(tmp_path / "data", grpc_port, metrics_port=metrics_port):
        yield Platform(grpc_port, metrics_port)


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_the_metrics_say_what_one_job_did(platform: Platform, tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    (inputs / "series").mkdir(parents=True)
    (inputs / "scan.bin").write_bytes(os.urandom(200_000))
    (inputs / "series" / "slice-1.dcm").write_bytes(b"DICM" + os.urandom(3000))
    uploaded = sum(path.stat().st_size for path in inputs.rglob("*") if path.is_file())
    job = platform.run_branches(tmp_path, inputs, "branches")

    # The job gauges are the leader's counts of the store, taken every few seconds.
    deadline = time.monotonic() + 60
    families, samples = platform.scrape()
    while total(samples, "aorta_jobs", phase="succeeded") != 1:
        assert time.monotonic() < deadline, "the job gauges never counted the finished job"
        time.sleep(0.5)
        families, samples = platform.scrape()

    assert set(FAMILIES) <= families
    assert total(samples, "aorta_jobs_created_total") == 1
    transitions = {
        (s.labels["state"], s.labels["status"]): s.value
        for s in samples
        if s.name == "aorta_job_transitions_total"
    }
    assert transitions == {("PENDING", "HEALTHY"): 2, ("RUNNING", "HEALTHY"): 1,
                           ("STOPPED", "HEALTHY"): 1}  # fmt: skip
    assert total(samples, "aorta_jobs") == 1
    assert total(samples, "aorta_queue_depth") == 0
    assert total(samples, "aorta_queue_wait_seconds_count") == 1
    assert total(samples, "aorta_events_pending") == 0
    # Four job events and a start and a stop for each of the three operators, at least.
    assert total(samples, "aorta_events_published_total") >= 4 + 3 * 2

    assert total(samples, "aorta_operator_runs_total", executor="local") == 3
    assert total(samples, "aorta_operator_duration_seconds_count", executor="local") == 3
    assert total(samples, "aorta_operator_stage_seconds_count", stage="running") == 3

    assert total(samples, "aorta_payload_bytes_total", direction="upload") == uploaded
    assert total(samples, "aorta_payload_bytes_total", direction="download") == 0
    assert total(samples, "aorta_triton_acquire_seconds_count") == 0
    assert total(samples, "aorta_models_loaded") == 0

    jobs = "nvidia.clara.platform.Jobs"
    for method in ("Create", "Start"):
        handled = total(
            samples,
            "grpc_server_handled_total",
            grpc_service=jobs,
            grpc_method=method,
            grpc_code="OK",
            grpc_type="unary",
        )
        assert handled == 1, method
    upload = {"grpc_service": "nvidia.clara.platform.Payloads", "grpc_method": "Upload"}
    assert total(samples, "grpc_server_started_total", grpc_type="client_stream", **upload) >= 1
    assert total(samples, "grpc_server_handling_seconds_count", **upload) >= 1
    assert total(samples, "aorta_bus_request_seconds_count", subject_service="scheduler") >= 2
    assert total(samples, "aorta_bus_request_seconds_count", subject_service="payloads") >= 1

    platform.aorta("download", "-j", job, "/operators/left/*", str(tmp_path / "left"))
    _, samples = platform.scrape()
    assert total(samples, "aorta_payload_bytes_total", direction="download") == uploaded

    # `aorta up` told the people who started it where to scrape.
    banner = (tmp_path / "aorta-up.log").read_text().splitlines()
    assert f"  Metrics: {platform.metrics_url}" in banner
