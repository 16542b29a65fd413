"""One benchmark's `run()` in a child interpreter from the repository root, as `make bench`
runs it, and the report it prints: what every benchmark's end-to-end test starts from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def bench_report(module: str, environ: Mapping[str, str], *, timeout: float) -> dict[str, Any]:
    """The report `bench.<module>.run()` returns, run with `environ` over this process's
    environment; fails the test when the benchmark exits with an error (its stderr shown)
    and raises `subprocess.TimeoutExpired` past `timeout` seconds."""
    script = f"import json, bench.{module} as b; print(json.dumps(b.run()))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(f"bench.{module} exited with {result.returncode}:\n{result.stderr}")
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report
