"""`aorta up` as a child process, for tests and scripts that drive the platform as users do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

AORTA = str(Path(sys.executable).parent / "aorta")


def make_token(data: Path, name: str, role: str) -> str:
    """A new bearer token of `role` for `name` on the platform whose data dir is `data`, as
    `aorta token create` makes it for an operator of the platform."""
    made = subprocess.run(
        [AORTA, "token", "create", name, "--role", role],
        capture_output=True,
        text=True,
        env={**os.environ, "AORTA_AUTH_TOKENS_FILE": str(data / "tokens.yaml")},
        check=True,
        timeout=60,
    )
    return made.stdout.strip()


PROBE_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 200),
)
"""Options of a channel that waits for a server to come up. gRPC waits longer and longer
between connection attempts (by 1.6 times, up to 120 s): a channel that first tried while a
loaded machine took 41 s to start the platform did not try again for 19 s after it served, past
the wait's deadline. At a steady 200 ms it sees the server within a fifth of a second: capped at
1 s, `aorta up` was seen serving 0.37 s later on average, once for every platform a test starts
(a refused connection on loopback costs next to nothing)."""


def _channel(
    address: str, ca: Path | None, credentials: grpc.ChannelCredentials | None
) -> grpc.Channel:
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=PROBE_OPTIONS)
    if ca is None:
        return grpc.insecure_channel(address, options=PROBE_OPTIONS)
    credentials = grpc.ssl_channel_credentials(ca.read_bytes())
    return grpc.secure_channel(address, credentials, options=PROBE_OPTIONS)


def wait_serving(
    port: int,
    process: subprocess.Popen[bytes],
    timeout: float = 60.0,
    *,
    ca: Path | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Waits until the gateway on `port` reports SERVING (gRPC health checking, which needs no
    token); over TLS trusting `ca` when given, once `aorta up` has written it, or with
    `credentials` (a client certificate, for a platform that requires one)."""
    deadline = time.monotonic() + timeout
    while ca is not None and not ca.exists():
        if process.poll() is not None:
            raise RuntimeError(f"aorta up exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"aorta up did not write its CA {ca} within {timeout:.0f} s")
        time.sleep(0.1)
    with _channel(f"127.0.0.1:{port}", ca, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"aorta up exited with status {process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise TimeoutError(f"aorta up did not serve on port {port} within {timeout:.0f} s")


@contextmanager
def aorta_up(
    data_dir: Path,
    port: int,
    *,
    environ: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    credentials: grpc.ChannelCredentials | None = None,
    metrics_port: int = 0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A running `aorta up` on `data_dir` and `port` with extra `args` (`--auth`, `--tls auto`),
    stopped with SIGTERM on exit.

    Its output goes to `aorta-up.log` beside the data dir, so nothing waits on a pipe. With
    `--tls auto` it waits over TLS, trusting the CA the platform makes (`<data_dir>/tls/ca.pem`);
    `credentials` replace those for a platform with its own certificate or one that requires
    client certificates. `/metrics` is served on `metrics_port` only when one is given, so
    platforms started side by side never compete for the default port. Operators run as host
    processes (`AORTA_EXECUTOR=local`) unless `environ` says otherwise, so that the tests' host
    commands run as written on a machine whose container engine answers.
    """
    command = [AORTA, "up", "--data-dir", str(data_dir), "--grpc-port", str(port)]
    # The web console takes any free port unless the test names one, so platforms of tests
    # running side by side never contend for its default.
    command += [] if "--web-port" in args else ["--web-port", "0"]
    command += ["--metrics-port", str(metrics_port), *args]
    ca = data_dir / "tls" / "ca.pem" if "--tls" in args else None
    env = {
        **os.environ,
        "AORTA_LOG_LEVEL": "warning",
        "AORTA_EXECUTOR": "local",
        **(environ or {}),
    }
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.parent / "aorta-up.log", "ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_serving(port, process, ca=ca, credentials=credentials)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
