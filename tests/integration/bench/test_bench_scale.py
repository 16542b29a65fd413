"""The scale benchmark runs end to end with a short load and reports every figure it promises.

The figures themselves are not judged here (timing belongs to `make bench`); what is checked is
that both platforms created jobs and answered Status, and that each ratio is the quotient of
its figures.
"""

from __future__ import annotations

import pytest

from tests.integration.bench.bench_report import bench_report


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_scale_benchmark_reports_one_and_two_replicas_and_their_ratios() -> None:
    report = bench_report("bench_scale", {"AORTA_BENCH_SCALE_SECONDS": "2"}, timeout=290)

    assert report["scale_seconds"] == 2.0
    for count in ("one", "two"):
        assert report[f"scale_jobs_per_s_{count}"] > 0, count
        assert report[f"scale_status_p99_ms_{count}"] >= report[f"scale_status_p50_ms_{count}"]
        assert report[f"scale_models_acquires_per_s_{count}"] > 0, count
    jobs = report["scale_jobs_per_s_two"] / report["scale_jobs_per_s_one"]
    assert report["scale_jobs_ratio_two_over_one"] == pytest.approx(jobs, abs=0.01)
    acquires = report["scale_models_acquires_per_s_two"] / report["scale_models_acquires_per_s_one"]
    assert report["scale_models_acquire_ratio_two_over_one"] == pytest.approx(acquires, abs=0.01)
