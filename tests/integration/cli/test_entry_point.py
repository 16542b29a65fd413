"""The real `aorta` command in a subprocess: exit codes as a shell sees them, and `aorta version`
against a real embedded platform (`aorta up`)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.testing.embedded import PROBE_OPTIONS
from aorta.testing.ports import free_port
from tests.integration.cli.cli_support import AORTA, Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform


def test_exit_codes_of_the_installed_command(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    pipeline_id = aorta.exe("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    healthy = aorta.exe(
        "create", "job", "-p", pipeline_id, "-n", "ok", "-f", samples.input_dir, "--start", "-q"
    )
    assert healthy.returncode == 0, healthy.stderr
    job_id = healthy.stdout.split()[0]
    watched = aorta.exe("describe", "job", "-j", job_id, "--watch", "--interval", "0.05")
    assert (watched.returncode, watched.stderr) == (0, "")
    assert "status: HEALTHY" in watched.stdout

    platform.faults.add("writer")
    faulted = aorta("create", "job", "-p", pipeline_id, "-n", "bad", "--start", "-q")
    bad_job = faulted.stdout.split()[0]
    watched = aorta.exe("describe", "job", "-j", bad_job, "--watch", "--interval", "0.05")
    assert watched.returncode == 1
    assert "status: FAULTED" in watched.stdout

    missing = aorta.exe("describe", "job", "-j", "0" * 32)
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: describing job 0000")

    usage = aorta.exe("describe", "job")
    assert usage.returncode == 2
    assert "name the job: JOB or -j JOB" in usage.stderr

    port = free_port()
    unreachable = aorta.exe("list", "jobs", "--host", f"127.0.0.1:{port}")
    assert unreachable.returncode == 4
    assert unreachable.stderr.startswith(
        f"error: cannot reach the Aorta platform at 127.0.0.1:{port}"
    )
    assert "(is `aorta up` running? set --host or AORTA_HOST)" in unreachable.stderr


def _wait_serving(port: int, platform: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=PROBE_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert platform.poll() is None, f"aorta up exited with {platform.returncode}"
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    pytest.fail(f"aorta up did not report SERVING on port {port} within {timeout} s")


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    command = [str(AORTA), "up", "--data-dir", str(tmp_path / "data"), "--grpc-port", str(port)]
    command += ["--web-port", "0", "--metrics-port", "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        _wait_serving(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_version_against_the_embedded_platform(embedded: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(AORTA), "version", "--host", f"127.0.0.1:{embedded}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "AORTA_HOST"}
        | {"AORTA_CONFIG": str(tmp_path / "none.yaml")},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    client = lines[0].removeprefix("client: aorta ")
    assert lines[:3] == [
        f"client: aorta {client}",
        f"server: {client}",
        f"host: 127.0.0.1:{embedded}",
    ]
    assert any(line.startswith("platform: Aorta ") for line in lines[3:])
