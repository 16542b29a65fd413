"""A real S3 HTTP endpoint for tests: moto's server in a child process; pytest-agnostic.

The S3 adapter is tested through its whole stack (minio, urllib3, HTTP, signing) against
`moto_server`, which speaks S3 well enough for every call the adapter makes (shared infra notes,
"S3 with moto"). A child process rather than moto's in-process server so that the tests'
memory measurements see only the client, and so that nothing in the test process is patched.

moto keeps everything in memory and accepts any credentials: authentication failures cannot
be tested against it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from aorta.child_process import die_with_parent
from aorta.errors import Unavailable

_POLL_S = 0.05
_LOG_TAIL_BYTES = 4000


class S3ServerError(Unavailable):
    """moto_server is missing, did not start, or did not answer."""


def find_moto_server() -> str:
    """`moto_server` next to the running interpreter (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        raise S3ServerError(
            f"moto_server was found neither in {beside.parent} nor on PATH: install the "
            "`moto[server]`, `flask` and `flask-cors` packages"
        )
    return found


class S3Server:
    """One `moto_server` on a free port of 127.0.0.1, its log in `directory` (a temporary folder,
    removed on `stop`, when not given).

    `start` blocks until `GET /moto-api/` answers, up to `start_timeout` seconds, and raises
    `S3ServerError` with the tail of the server's output otherwise. `stop` sends SIGTERM, waits
    `stop_grace` seconds, then kills. Use as a context manager, sync or async.
    """

    access_key = "aorta-test-access"
    secret_key = "aorta-test-secret"
    region = "us-east-1"

    def __init__(
        self,
        directory: Path | None = None,
        *,
        start_timeout: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        self._given_directory = directory
        self._directory: Path | None = None
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:PORT`, the form `Minio(...)` and `AORTA_S3_ENDPOINT` take."""
        if self._port is None:
            raise S3ServerError("moto_server is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_file(self) -> Path | None:
        return self._directory / "moto_server.log" if self._directory else None

    def start(self) -> None:
        """Starts the server and blocks until it answers (or raises `S3ServerError`)."""
        deadline = self._spawn()
        while not self._poll_ready(deadline):
            time.sleep(_POLL_S)

    async def astart(self) -> None:
        """`start` without blocking the event loop (the child is still forked from this thread,
        so that it outlives the event loop's worker threads)."""
        deadline = self._spawn()
        # Polling: answering HTTP is the only sign that the server is up.
        while not await asyncio.to_thread(self._poll_ready, deadline):  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)

    def reset(self) -> None:
        """Forgets every bucket and object (`POST /moto-api/reset`)."""
        self._request("POST", "/moto-api/reset")

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after the grace period). Idempotent."""
        process, self._process, self._port = self._process, None, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(self._stop_grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._directory is not None and self._given_directory is None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._directory = None

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        await asyncio.to_thread(self.stop)

    def _spawn(self) -> float:
        if self._process is not None:
            raise S3ServerError(f"moto_server is already running (pid {self._process.pid})")
        binary = find_moto_server()
        if self._given_directory is not None:
            self._directory = self._given_directory
            self._directory.mkdir(parents=True, exist_ok=True)
        else:
            self._directory = Path(tempfile.mkdtemp(prefix="aorta-moto-"))
        self._port = _free_port()
        log_file = self._directory / "moto_server.log"
        with log_file.open("ab") as output:
            self._process = subprocess.Popen(
                die_with_parent([binary, "-H", "127.0.0.1", "-p", str(self._port)]),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        return time.monotonic() + self._start_timeout

    def _poll_ready(self, deadline: float) -> bool:
        process = self._process
        if process is None:
            raise S3ServerError("moto_server was stopped while starting")
        if process.poll() is not None:
            self._fail(f"moto_server exited with code {process.returncode} on start")
        try:
            self._request("GET", "/moto-api/", timeout=1.0)
        except S3ServerError:
            if time.monotonic() > deadline:
                self._fail(f"moto_server did not answer within {self._start_timeout:g} s")
            return False
        return True

    def _request(self, method: str, path: str, *, timeout: float = 10.0) -> None:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError) as error:
            raise S3ServerError(
                f"moto_server at {self.url} did not answer {method} {path}: {error}"
            ) from error

    def _fail(self, reason: str) -> NoReturn:
        tail = self._log_tail()
        log_file = self.log_file
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        self._port = None
        raise S3ServerError(reason, f"last lines of {log_file}:\n{tail}")

    def _log_tail(self) -> str:
        log_file = self.log_file
        if log_file is None:
            return "(no log)"
        try:
            with log_file.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode(errors="replace").strip() or "(empty)"
        except OSError as error:
            return f"(unreadable: {error})"

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> S3Server:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()


def _free_port() -> int:
    """A port free right now; moto_server cannot pick its own and report it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
