"""The read-load benchmark runs end to end with a short load and reports every figure it
promises.

The figures themselves are not judged here (timing belongs to `make bench`); what is checked is
that the platform and the floor both answered every read path, and that each ratio is the
quotient of its rates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = "import json, bench.bench_status_load as b; print(json.dumps(b.run()))"
PATHS = ("status_load", "payload_details_load", "pipeline_details_load")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_read_load_benchmark_reports_each_path_against_the_floor() -> None:
    env = {**os.environ, "AORTA_BENCH_LOAD_SECONDS": "0.5"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])

    assert (report["clients"], report["seconds_per_load"]) == (20, 0.5)
    for path in PATHS:
        ours = report[f"{path}_platform_requests_per_s"]
        floor = report[f"{path}_floor_requests_per_s"]
        assert ours > 0 and floor > 0, path
        assert report[f"{path}_ratio"] == pytest.approx(ours / floor, abs=0.002), path
        assert report[f"{path}_p99_ms"] > 0 and report[f"{path}_floor_p99_ms"] > 0, path
        assert isinstance(report[f"{path}_within_target"], bool), path
