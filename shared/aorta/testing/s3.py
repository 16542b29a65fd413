"""A real S3 HTTP endpoint for tests: moto's server in a child process; pytest-agnostic.

The S3 adapter is tested through its whole stack (minio, urllib3, HTTP, signing) against
`moto_server`, which speaks S3 well enough for every call the adapter makes
(docs/test-infrastructure.md, "S3 with moto"). A child process rather than moto's in-process
server so that the tests' memory measurements see only the client, and so that nothing in the
test process is patched.

moto keeps everything in memory and accepts any credentials: authentication failures cannot
be tested against it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aorta.children.process import ChildProcess, ChildServer, ChildStartError
from aorta.children.readiness import HttpReady
from aorta.errors import Unavailable
from aorta.testing.ports import free_port


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


class S3Server(ChildServer):
    """One `moto_server` on a free port of 127.0.0.1, its log in `directory` (a temporary folder,
    removed on `stop`, when not given).

    `start` blocks until `GET /moto-api/` answers, up to `start_timeout` seconds, and raises
    `S3ServerError` with the tail of the server's output otherwise. `stop` sends SIGTERM, waits
    `stop_grace` seconds, then kills. Use as a context manager, sync or async. The process is
    run by `aorta.children.process.ChildProcess`.

    moto_server cannot pick its own port and report it, so it gets one that was free a moment
    before; should another process take it first, `start` fails and says so in the log's tail.
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
        self._child: ChildProcess | None = None
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
        child, command, readiness = self._prepare()
        with self._reported():
            child.start_blocking(command, readiness)

    async def astart(self) -> None:
        """`start` without blocking the event loop. Cancelled, it leaves no server behind."""
        child, command, readiness = self._prepare()
        with self._reported():
            await child.start(command, readiness)

    def reset(self) -> None:
        """Forgets every bucket and object (`POST /moto-api/reset`)."""
        self._request("POST", "/moto-api/reset")

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after the grace period). Idempotent."""
        child, self._child, self._port = self._child, None, None
        if child is not None:
            child.stop_blocking()
        self._remove_directory()

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        child, self._child, self._port = self._child, None, None
        if child is not None:
            await child.stop()
        await asyncio.to_thread(self._remove_directory)

    def _prepare(self) -> tuple[ChildProcess, list[str], HttpReady]:
        if self._child is not None and self._child.pid is not None:
            raise S3ServerError(f"moto_server is already running (pid {self._child.pid})")
        binary = find_moto_server()
        if self._given_directory is not None:
            self._directory = self._given_directory
            self._directory.mkdir(parents=True, exist_ok=True)
        elif self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="aorta-moto-"))
        self._port = free_port()
        self._child = ChildProcess(
            "moto_server",
            self._directory / "moto_server.log",
            start_timeout=self._start_timeout,
            stop_grace=self._stop_grace,
        )
        command = [binary, "-H", "127.0.0.1", "-p", str(self._port)]
        return self._child, command, HttpReady(("127.0.0.1", self._port), "/moto-api/")

    @contextmanager
    def _reported(self) -> Iterator[None]:
        """A failed or cancelled start forgets the port; the manager's errors become
        `S3ServerError`s with the same messages."""
        try:
            yield
        except BaseException as error:
            self._port = None
            if isinstance(error, ChildStartError):
                raise S3ServerError(*error.messages) from None
            raise

    def _remove_directory(self) -> None:
        if self._directory is not None and self._given_directory is None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._directory = None

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
