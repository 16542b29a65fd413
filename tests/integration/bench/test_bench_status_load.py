"""The read-load benchmark runs end to end with a short load and reports every figure it
promises.

The figures themselves are not judged here (timing belongs to `make bench`); what is checked is
that the platform and the floor both answered every read path, and that each ratio is the
quotient of its rates.
"""

from __future__ import annotations

import pytest

from tests.integration.bench.bench_report import bench_report

PATHS = ("status_load", "payload_details_load", "pipeline_details_load")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_read_load_benchmark_reports_each_path_against_the_floor() -> None:
    report = bench_report("bench_status_load", {"AORTA_BENCH_LOAD_SECONDS": "0.5"}, timeout=280)

    assert (report["clients"], report["seconds_per_load"]) == (20, 0.5)
    for path in PATHS:
        ours = report[f"{path}_platform_requests_per_s"]
        floor = report[f"{path}_floor_requests_per_s"]
        assert ours > 0 and floor > 0, path
        assert report[f"{path}_ratio"] == pytest.approx(ours / floor, abs=0.002), path
        assert report[f"{path}_p99_ms"] > 0 and report[f"{path}_floor_p99_ms"] > 0, path
        assert isinstance(report[f"{path}_within_target"], bool), path
