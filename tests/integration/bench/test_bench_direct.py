"""The direct-path benchmark runs end to end on a small file and reports every figure it
promises; the figures themselves are judged by `make bench`, not here. The benchmark itself
refuses a transfer that took the other path than the one it times."""

from __future__ import annotations

from tests.integration.bench.bench_report import bench_report


def test_the_direct_benchmark_reports_its_ratios() -> None:
    report = bench_report(
        "bench_direct", {"AORTA_BENCH_DIRECT_MB": "4", "AORTA_BENCH_REPEAT": "1"}, timeout=110
    )

    assert (report["size_mib"], report["repeat"]) == (4, 1)
    for key in (
        "direct_path_upload_ratio",
        "direct_path_download_ratio",
        "grpc_path_upload_ratio",
        "grpc_path_download_ratio",
    ):
        assert report[key] > 0, key
    assert isinstance(report["direct_path_target_met"], bool)
