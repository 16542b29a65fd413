"""Runs a `nats-server` child process with JetStream: the bus of `aorta up`, and of the tests.

Everything lives under one folder, readable by its owner only: the JetStream store
(`jetstream/`), the log (`nats-server.log`), the generated config file (`nats-server.conf`,
which sets `max_payload` and JetStream's `max_file_store`, as nats-server has no command-line
flag for them, and the bus's users
with their passwords and permissions when it has any) and the ports file the server writes on
start (whose client URL is how the free port chosen with `-p -1` becomes known). On Linux the child
gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so a parent killed with
SIGKILL leaves no server behind; start it from the main thread (never from a worker thread
that may exit first).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aorta.auth.private_files import private_directory, write_private
from aorta.bus.credentials import BusCredentials, save_credentials
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.bus_permissions import EVENTS_USER, authorization_config
from aorta.children.process import ChildProcess, ChildServer, ChildStartError
from aorta.errors import Unavailable
from aorta.logger import get_logger

EXTRA_SEARCH_DIRS = ("/usr/sbin", "/usr/local/sbin")
"""Where Debian's package puts the binary, often missing from a non-root user's PATH."""

FILE_STORE_BUDGET = 1 << 40
"""What JetStream may reserve for streams (1 TiB). Left to itself, nats-server reserves from
three quarters of the disk's free space at start, so a stream made when there was room could
no longer be reserved (nor a new one made) on a fuller disk and the bus would not start; the
streams' own limits (`aorta.disk_space.event_stream_bytes`) are what keeps the disk."""

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


@dataclass(frozen=True)
class ServerTls:
    """The certificate and key nats-server presents to its clients (PEM files)."""

    cert: Path
    key: Path

    def config(self) -> str:
        cert, key = json.dumps(str(self.cert)), json.dumps(str(self.key))
        return f"tls {{\n  cert_file: {cert}\n  key_file: {key}\n}}\n"


class NatsServerProcess(ChildServer):
    """One nats-server child process with JetStream, storing under `directory`.

    `port=-1` picks a free port on the first start; later starts (a restart after `stop`) reuse
    the same port and store, so clients reconnect and JetStream state survives. `start` waits up
    to `start_timeout` for the ports file and raises `NatsServerError` with the tail of the log
    when the server does not come up. `stop` sends SIGTERM, waits `stop_grace`, then SIGKILLs.
    `max_payload` is the largest message body the server accepts (and announces to clients).
    With `users`, only they may connect, each with its password and its permissions
    (`aorta.bus_permissions.permissions_for`); without, anyone who reaches the port may (tests).
    The `events` user's credentials, when it is one of them, are also written to
    `events_credentials_file` for integrations. With `tls`, clients must speak TLS.
    Use as a context manager (sync or async) to stop it on exit. The process itself is run by
    `aorta.children.process.ChildProcess`; what is nats-server's own here is its command line and
    its sign of readiness, the ports file.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        users: Mapping[str, BusCredentials] | None = None,
        tls: ServerTls | None = None,
        max_file_store: int = FILE_STORE_BUDGET,
        search_path: str | None = None,
        start_timeout: float = 10.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.max_payload = max_payload
        self.users = dict(users) if users is not None else None
        self.tls = tls
        self.max_file_store = max_file_store
        self._search_path = search_path
        self._child = ChildProcess(
            "nats-server", self.log_file, start_timeout=start_timeout, stop_grace=stop_grace
        )
        self._url: str | None = None

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
    def events_credentials_file(self) -> Path:
        """Where the `events` user's credentials are kept for integrations (`0600`), when the
        server has that user."""
        return self.directory / "events-user.json"

    @property
    def url(self) -> str:
        """The client URL, e.g. `nats://127.0.0.1:4222`; only while started."""
        if self._url is None:
            raise NatsServerError("nats-server is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def start(self) -> None:
        """Starts the server and blocks until it accepts clients (or raises)."""
        command, ports = self._prepare()
        with _reported():
            self._child.start_blocking(command, ports)
        self._started(ports)

    async def astart(self) -> None:
        """`start` without blocking the event loop while the server comes up. Cancelled, it
        leaves no server behind."""
        command, ports = self._prepare()
        with _reported():
            await self._child.start(command, ports)
        self._started(ports)

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after the grace period). Idempotent."""
        pid = self._child.pid
        self._child.stop_blocking()
        self._stopped(pid)

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        pid = self._child.pid
        await self._child.stop()
        self._stopped(pid)

    def _prepare(self) -> tuple[list[str], _PortsFile]:
        binary = find_nats_server(self._search_path)
        private_directory(self.directory)
        self.store_dir.mkdir(mode=0o700, exist_ok=True)
        # Only what no flag can set; the flags below override a config file's values.
        config = f"max_payload: {self.max_payload}\n"
        config += f"jetstream {{\n  max_file_store: {self.max_file_store}\n}}\n"
        if self.users is not None:
            passwords = {c.user: c.password for c in self.users.values()}
            config += authorization_config(passwords)
            events = self.users.get(EVENTS_USER)
            if events is not None:
                save_credentials(self.events_credentials_file, events)
        if self.tls is not None:
            config += self.tls.config()
        write_private(self.config_file, config.encode())
        # The server's own log goes to the file that also catches what it prints before
        # opening it.
        command = [
            binary,
            *("-c", str(self.config_file)),
            *("-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir)),
            *("--ports_file_dir", str(self.directory), "-l", str(self.log_file)),
        ]
        return command, _PortsFile(self.directory)

    def _started(self, ports: _PortsFile) -> None:
        assert ports.url is not None
        self._url = ports.url
        self.port = int(ports.url.rsplit(":", 1)[1])
        _log.info("nats-server started", url=ports.url, pid=self.pid, store=str(self.store_dir))

    def _stopped(self, pid: int | None) -> None:
        if pid is not None:
            _ports_file(self.directory, pid).unlink(missing_ok=True)
        self._url = None


@dataclass
class _PortsFile:
    """nats-server's readiness: the ports file it writes once it accepts clients, whose client
    URL tells the port it chose for `-p -1`. `url` is that URL once `ready` returned True."""

    directory: Path
    awaited: str = "report its address"
    url: str | None = None

    async def ready(self, pid: int) -> bool:
        try:
            urls = json.loads(_ports_file(self.directory, pid).read_text())["nats"]
        except (OSError, ValueError, KeyError, TypeError):
            return False  # absent, or caught half-written: look again
        if not urls:
            return False
        local = [url for url in urls if "127.0.0.1" in url]
        self.url = str((local or urls)[0])
        return True


def _ports_file(directory: Path, pid: int) -> Path:
    return directory / f"nats-server_{pid}.ports"


@contextmanager
def _reported() -> Iterator[None]:
    """The manager's start errors as `NatsServerError`s, with the same messages."""
    try:
        yield
    except ChildStartError as error:
        raise NatsServerError(*error.messages) from None
