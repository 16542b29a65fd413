"""Running code under NVIDIA's Clara client, in its own virtualenv and process."""

from __future__ import annotations

import json
import subprocess

import pytest

from aorta.testing.clara_client import run_clara_python


def test_runs_with_nvidias_client_and_its_protobuf() -> None:
    result = run_clara_python(
        "import json, google.protobuf, nvidia_clara\nprint(json.dumps(google.protobuf.__version__))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "3.20.3"


def test_our_packages_are_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "shared:services")
    result = run_clara_python(
        "import importlib.util\nprint(importlib.util.find_spec('aorta') is None)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"


def test_passes_arguments_and_environment() -> None:
    result = run_clara_python(
        "import os, sys\nprint(sys.argv[1:], os.environ['AORTA_PROBE'])",
        args=["a b", "c"],
        env={"AORTA_PROBE": "seen"},
    )
    assert result.stdout == "['a b', 'c'] seen\n"


def test_failures_are_returned_not_raised() -> None:
    result = run_clara_python("import sys\nsys.exit('boom')")
    assert result.returncode == 1
    assert "boom" in result.stderr


def test_a_child_past_its_timeout_is_stopped() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_clara_python("import time\ntime.sleep(30)", timeout=0.5)
