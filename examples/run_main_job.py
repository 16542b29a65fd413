"""`make run`: start the embedded platform and run its main job through the public API.

It starts `aorta up` on a data dir under `.aorta/run`, waits until the gateway reports SERVING
over gRPC health checking, drives the platform with NVIDIA's own Clara client (in its own
virtualenv, as a user would), and stops the platform with SIGTERM, checking that it exits
cleanly. Exit status 0 means the whole flow worked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.testing.clara_client import run_clara_python

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".aorta" / "run"
PREFERRED_PORT = 30031

MAIN_JOB = """
import sys
from nvidia_clara.clara_client import ClaraClient

client = ClaraClient(target=sys.argv[1], port=sys.argv[2])
info = client.version()
print(f"Clara.Version through NVIDIA's client: {info.major}.{info.minor}.{info.patch}{info.label}")
"""


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


def _wait_serving(port: int, platform: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if platform.poll() is not None:
                raise SystemExit(f"aorta up exited early with status {platform.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"the platform did not become ready on port {port} within {timeout:.0f} s")


def main() -> int:
    port = _free_port(PREFERRED_PORT)
    aorta = Path(sys.executable).parent / "aorta"
    command = [str(aorta), "up", "--data-dir", str(DATA_DIR), "--grpc-port", str(port)]
    env = {**os.environ, "AORTA_LOG_FORMAT": "console"}
    print(f"$ {' '.join(command)}", flush=True)
    platform = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        _wait_serving(port, platform)
        result = run_clara_python(MAIN_JOB, args=["127.0.0.1", str(port)])
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            return 1
    finally:
        platform.send_signal(signal.SIGTERM)
        try:
            status = platform.wait(timeout=40)
        except subprocess.TimeoutExpired:
            platform.kill()
            status = platform.wait()
    if status != 0:
        print(f"aorta up exited with status {status}", file=sys.stderr)
        return 1
    print("The platform ran its main job and stopped cleanly.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
