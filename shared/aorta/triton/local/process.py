"""One `tritonserver` child process: started on free ports of 127.0.0.1, health-checked, stopped.

The server runs with `--model-control-mode=explicit`, so it loads nothing until asked, and with
the CPU-friendly flags of the infra notes (no pinned or CUDA memory pools, no GPU metrics). Its
output goes to a log file of its own. On Linux the child gets SIGTERM when the thread that
started it ends (PR_SET_PDEATHSIG, armed by `aorta.child_process`'s trampoline, as for
nats-server), so a models service killed with SIGKILL leaves no server behind; Triton then
stops its Python backend stubs itself.

Free ports are found by binding port 0 and closing it, which another process may race for: a
start that fails because a port was taken meanwhile is retried on new ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from aorta.child_process import die_with_parent
from aorta.errors import Unavailable
from aorta.logger import get_logger
from aorta.triton.local.install import TritonInstall

HOST = "127.0.0.1"
START_ATTEMPTS = 3
_POLL_S = 0.02
_PROBE_TIMEOUT_S = 1.0
_LOG_TAIL_BYTES = 3000
_PORT_TAKEN = "already in use"

_log = get_logger(__name__)


class TritonProcess:
    """A tritonserver child process serving the model repository `repository`.

    `start` returns once `/v2/health/ready` answers 200, or raises `Unavailable` with the tail
    of the server's log after `start_timeout` seconds or when the server exits. `stop` sends
    SIGTERM, waits `stop_grace` seconds (Triton unloads its models, waiting up to its own
    `--exit-timeout-secs=10`), then SIGKILLs the server's process group. Both are idempotent.
    """

    def __init__(
        self,
        install: TritonInstall,
        *,
        repository: Path,
        backends: Path,
        log_file: Path,
        environ: Mapping[str, str],
        start_timeout: float = 60.0,
        stop_grace: float = 15.0,
    ) -> None:
        self._install = install
        self._repository = repository
        self._backends = backends
        self.log_file = log_file
        self._env = install.environment(environ)
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None
        self._ports = (0, 0, 0)

    @property
    def http_uri(self) -> str:
        return f"{HOST}:{self._ports[0]}"

    @property
    def grpc_uri(self) -> str:
        return f"{HOST}:{self._ports[1]}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            http, grpc, metrics = free_ports(3)
            self._ports = (http, grpc, metrics)
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self._spawn()
            try:
                await self._wait_ready()
            except Unavailable:
                tail = self._log_tail(offset)
                await self.stop()
                if _PORT_TAKEN in tail and attempt < START_ATTEMPTS:
                    _log.info("triton.port_taken_retrying", attempt=attempt)
                    continue
                raise Unavailable(
                    f"tritonserver did not become ready within {self._start_timeout:g} s or "
                    "exited on start",
                    f"last lines of {self.log_file.name}:\n{tail}",
                ) from None
            _log.info("triton.started", pid=self.pid, grpc=self.grpc_uri, http=self.http_uri)
            return

    def _spawn(self) -> None:
        http, grpc, metrics = self._ports
        command = [
            str(self._install.binary),
            f"--model-repository={self._repository}",
            "--model-control-mode=explicit",
            f"--backend-directory={self._backends}",
            f"--http-address={HOST}",
            f"--http-port={http}",
            f"--grpc-address={HOST}",
            f"--grpc-port={grpc}",
            f"--metrics-address={HOST}",
            f"--metrics-port={metrics}",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0",
            "--exit-timeout-secs=10",
        ]
        with self.log_file.open("ab") as output:
            self._process = subprocess.Popen(
                die_with_parent(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=self._env,
                start_new_session=True,
            )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        while True:
            if not self.alive():
                raise Unavailable("tritonserver exited")
            if await http_ready(self._ports[0]):
                return
            if time.monotonic() > deadline:
                raise Unavailable("tritonserver is not ready")
            await asyncio.sleep(_POLL_S)

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if not await _exited(process, self._stop_grace):
                _log.warning("triton.killed_after_grace", pid=process.pid, grace=self._stop_grace)
                # The group is the server and its backend stubs (start_new_session).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await _exited(process, None)
        self._process = None
        _log.info("triton.stopped", pid=process.pid, code=process.returncode)

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(max(offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode(errors="replace").strip() or "(empty)"
        except OSError as exc:
            return f"(unreadable: {exc})"


async def _exited(process: subprocess.Popen[bytes], within: float | None) -> bool:
    """Waits up to `within` seconds (None: as long as it takes) for `process` to exit."""
    deadline = None if within is None else time.monotonic() + within
    # Polling: the child is a plain Popen, started as nats-server is, and offers no awaitable
    # exit; a few wake-ups per stop cost nothing.
    while process.poll() is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


def free_ports(count: int) -> tuple[int, ...]:
    """`count` distinct ports of 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return tuple(sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


async def http_ready(port: int) -> bool:
    """True when `GET /v2/health/ready` on `port` of 127.0.0.1 answers 200 within a second."""
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(
                    f"GET /v2/health/ready HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    return status.split()[1:2] == [b"200"]
