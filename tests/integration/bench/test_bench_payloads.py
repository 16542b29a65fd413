"""The payload benchmark runs end to end on a small file and reports every figure it promises.

The figures themselves are not judged here (timing belongs to `make bench`); what is checked is
that each transfer really happened, was verified, and produced a number.
"""

from __future__ import annotations

from tests.integration.bench.bench_report import bench_report


def test_the_payload_benchmark_reports_rates_ratios_floor_and_memory() -> None:
    report = bench_report(
        "bench_payloads", {"AORTA_BENCH_PAYLOAD_MB": "8", "AORTA_BENCH_REPEAT": "2"}, timeout=110
    )

    assert (report["file_mib"], report["download_repeats"]) == (8, 2)
    rates = [key for key in report if key.endswith("_mib_s")]
    assert sorted(rates) == sorted(
        f"{kind}_mib_s"
        for kind in (
            "direct_put",
            "direct_get",
            "nvidia_upload",
            "nvidia_download",
            "grpc_upload",
            "grpc_download",
            "floor_nvidia_upload",
            "floor_nvidia_download",
        )
    )
    assert all(report[key] > 0 for key in rates)
    for ratio in ("upload", "download"):
        for client in ("nvidia", "grpc"):
            expected = (
                report[f"{client}_{ratio}_mib_s"]
                / report[f"direct_{'put' if ratio == 'upload' else 'get'}_mib_s"]
            )
            assert abs(report[f"{client}_{ratio}_ratio"] - expected) < 0.01 + expected * 0.01
    for direction in ("upload", "download"):
        assert report[f"{direction}_ceiling_ratio"] > 0
        assert report[f"gateway_{direction}_share_of_floor"] > 0
    phases = ("nvidia_upload", "nvidia_download", "grpc_upload", "grpc_download")
    assert all(f"rss_growth_mib_{phase}" in report for phase in phases)
    assert all(report[f"gateway_cpu_s_per_gib_{phase}"] >= 0 for phase in phases)
    for server in ("gateway", "floor"):
        split = [
            report[f"{server}_cpu_s_per_gib_nvidia_upload_{kind}"]
            for kind in ("event_loop", "grpc_threads", "other_threads")
        ]
        assert all(seconds >= 0 for seconds in split)
        # Threads are read at clock-tick resolution; one that ended meanwhile drops out.
        total = report[f"{server}_cpu_s_per_gib_nvidia_upload"]
        assert sum(split) <= total * 1.05 + 0.2
    assert report["gateway_cpu_s_per_gib_nvidia_upload_event_loop"] > 0
    assert report["sha256_cpu_s_per_gib"] > 0
    assert report["upload_cpu_bound_s_per_gib"] >= report["floor_cpu_s_per_gib_nvidia_upload"]
    assert isinstance(report["ratio_target_met"], bool)
    assert isinstance(report["rss_target_met"], bool)
    assert report["upload_cpu_target_met"] == (report["gateway_cpu_s_per_gib_nvidia_upload"] <= 2.0)
    assert report["upload_share_target_met"] == (report["gateway_upload_share_of_floor"] >= 0.85)
    assert report["download_share_target_met"] == (report["gateway_download_share_of_floor"] >= 0.9)
