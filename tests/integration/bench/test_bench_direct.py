"""The direct-path benchmark runs end to end on a small file and reports every figure it
promises; the figures themselves are judged by `make bench`, not here. The benchmark itself
refuses a transfer that took the other path than the one it times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = "import json, bench.bench_direct as b; print(json.dumps(b.run()))"


def test_the_direct_benchmark_reports_its_ratios() -> None:
    env = {**os.environ, "AORTA_BENCH_DIRECT_MB": "4", "AORTA_BENCH_REPEAT": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    assert (report["size_mib"], report["repeat"]) == (4, 1)
    for key in (
        "direct_path_upload_ratio",
        "direct_path_download_ratio",
        "grpc_path_upload_ratio",
        "grpc_path_download_ratio",
    ):
        assert report[key] > 0, key
    assert isinstance(report["direct_path_target_met"], bool)
