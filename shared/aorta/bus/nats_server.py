"""Runs a `nats-server` child process with JetStream: the bus of `aorta up`, and of the tests.

Everything lives under one folder: the JetStream store (`jetstream/`), the log
(`nats-server.log`), the generated config file (`nats-server.conf`, which sets `max_payload`:
nats-server has no command-line flag for it) and the ports file the server writes on start
(whose client URL is how the free port chosen with `-p -1` becomes known). On Linux the child
gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so a parent killed with
SIGKILL leaves no server behind; start it from the main thread (never from a worker thread
that may exit first).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.child_process import die_with_parent
from aorta.errors import Unavailable
from aorta.logger import get_logger

EXTRA_SEARCH_DIRS = ("/usr/sbin", "/usr/local/sbin")
"""Where Debian's package puts the binary, often missing from a non-root user's PATH."""

_POLL_S = 0.02
_LOG_TAIL_BYTES = 4000

_log = get_logger(__name__)


class NatsServerError(Unavailable):
    """nats-server is missing, or did not start."""


def find_nats_server(search_path: str | None = None) -> str:
    """The nats-server executable: looked up in `search_path` (os.pathsep-separated) when given,
    else on PATH and in `EXTRA_SEARCH_DIRS`. Raises `NatsServerError` saying how to install it."""
    if search_path is None:
        dirs = [*os.environ.get("PATH", os.defpath).split(os.pathsep), *EXTRA_SEARCH_DIRS]
        search_path = os.pathsep.join(dirs)
    found = shutil.which("nats-server", path=search_path)
    if found is None:
        raise NatsServerError(
            "nats-server was not found on PATH, in /usr/sbin or in /usr/local/sbin: install "
            "the `nats-server` package (e.g. `apt-get install nats-server`)"
        )
    return found


class NatsServerProcess:
    """One nats-server child process with JetStream, storing under `directory`.

    `port=-1` picks a free port on the first start; later starts (a restart after `stop`) reuse
    the same port and store, so clients reconnect and JetStream state survives. `start` waits up
    to `start_timeout` for the ports file and raises `NatsServerError` with the tail of the log
    when the server does not come up. `stop` sends SIGTERM, waits `stop_grace`, then SIGKILLs.
    `max_payload` is the largest message body the server accepts (and announces to clients).
    Use as a context manager (sync or async) to stop it on exit.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        search_path: str | None = None,
        start_timeout: float = 10.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.max_payload = max_payload
        self._search_path = search_path
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._log_offset = 0

    @property
    def store_dir(self) -> Path:
        return self.directory / "jetstream"

    @property
    def log_file(self) -> Path:
        return self.directory / "nats-server.log"

    @property
    def config_file(self) -> Path:
        return self.directory / "nats-server.conf"

    @property
    def url(self) -> str:
        """The client URL, e.g. `nats://127.0.0.1:4222`; only while started."""
        if self._url is None:
            raise NatsServerError("nats-server is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Starts the server and blocks until it accepts clients (or raises)."""
        ports_file = self._spawn()
        deadline = time.monotonic() + self._start_timeout
        while (url := self._poll_ready(ports_file, deadline)) is None:
            time.sleep(_POLL_S)
        self._started(url)

    async def astart(self) -> None:
        """`start` without blocking the event loop while the server comes up."""
        ports_file = self._spawn()
        deadline = time.monotonic() + self._start_timeout
        # Polling: the only signal that the server is up is the file it writes.
        while (url := self._poll_ready(ports_file, deadline)) is None:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)
        self._started(url)

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after the grace period). Idempotent."""
        process = self._signal_stop()
        if process is None:
            return
        try:
            process.wait(self._stop_grace)
        except subprocess.TimeoutExpired:
            self._kill(process)
            process.wait()
        self._stopped()

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        process = self._signal_stop()
        if process is None:
            return
        deadline: float | None = time.monotonic() + self._stop_grace
        while process.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                self._kill(process)
                deadline = None
            await asyncio.sleep(_POLL_S)
        self._stopped()

    def _spawn(self) -> Path:
        if self._process is not None:
            raise NatsServerError(f"nats-server is already running (pid {self._process.pid})")
        binary = find_nats_server(self._search_path)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        # Only what no flag can set; the flags below override a config file's values.
        self.config_file.write_text(f"max_payload: {self.max_payload}\n")
        command = [
            binary,
            *("-c", str(self.config_file)),
            *("-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir)),
            *("--ports_file_dir", str(self.directory), "-l", str(self.log_file)),
        ]
        # Anything the server prints before it opens its log goes to the log too.
        with self.log_file.open("ab") as early_output:
            self._process = subprocess.Popen(
                die_with_parent(command),
                stdin=subprocess.DEVNULL,
                stdout=early_output,
                stderr=early_output,
                start_new_session=True,
            )
        return self.directory / f"nats-server_{self._process.pid}.ports"

    def _poll_ready(self, ports_file: Path, deadline: float) -> str | None:
        assert self._process is not None
        if self._process.poll() is not None:
            self._fail(f"nats-server exited with code {self._process.returncode} on start")
        try:
            urls = json.loads(ports_file.read_text())["nats"]
        except (OSError, ValueError, KeyError, TypeError):
            # Absent, or caught half-written: look again.
            urls = None
        if urls:
            local = [url for url in urls if "127.0.0.1" in url]
            return str((local or urls)[0])
        if time.monotonic() > deadline:
            self._fail(f"nats-server did not report its address within {self._start_timeout:g} s")
        return None

    def _started(self, url: str) -> None:
        self._url = url
        self.port = int(url.rsplit(":", 1)[1])
        _log.info("nats-server started", url=url, pid=self.pid, store=str(self.store_dir))

    def _fail(self, reason: str) -> NoReturn:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        raise NatsServerError(reason, f"last lines of {self.log_file}:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(max(self._log_offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode(errors="replace").strip() or "(empty)"
        except OSError as exc:
            return f"(unreadable: {exc})"

    def _signal_stop(self) -> subprocess.Popen[bytes] | None:
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        _log.warning("nats-server outlived its grace period; killing it", pid=process.pid)
        process.kill()

    def _stopped(self) -> None:
        assert self._process is not None
        _log.info("nats-server stopped", pid=self._process.pid, code=self._process.returncode)
        (self.directory / f"nats-server_{self._process.pid}.ports").unlink(missing_ok=True)
        self._process = None
        self._url = None

    def __enter__(self) -> NatsServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> NatsServerProcess:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()
