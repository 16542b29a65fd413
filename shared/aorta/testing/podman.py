"""A private Podman engine for tests: a Docker-compatible API service on its own socket, over
storage of its own; pytest-agnostic (fixtures wrap it).

Each `PodmanEngine` keeps everything under one folder: its image and container storage
(`root/`, `run/`, `tmp/`), a `storage.conf` naming them, the API socket (`podman.sock`), the
service's log and an `owner` file naming the process that made it. Private storage means a
test run sees only the images and containers it made, never an administrator's, and that
removing the folder removes every container the run left: `stop` removes them all and resets
the storage. A run killed before it could stop leaves its folder behind; the next engine started
on this host sweeps such folders whose owner is gone (`sweep_abandoned_engines`), so containers
of dead runs do not pile up.

Every podman the project starts reads the repository's `deploy/podman/containers.conf`
(`CONTAINERS_CONF`): Podman's defaults fail on hosts like ours (rlimits, hybrid cgroups); see
docs/test-infrastructure.md, "Containers".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from aorta.children.process import ChildProcess, ChildServer, ChildStartError
from aorta.children.readiness import HttpReady
from aorta.errors import Unavailable
from aorta.logger import get_logger

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = REPO_ROOT / "deploy" / "podman" / "containers.conf"
"""The containers.conf every podman the project starts reads (through `CONTAINERS_CONF`)."""

ENGINE_FOLDER_PREFIX = "aorta-podman-"
"""How the folders of engines made in the temporary folder start (what the sweep looks for)."""

_SOCKET_MAX = 107  # sun_path holds 108 bytes, the last one a NUL
_RUNROOT_MAX = 50  # podman's own limit (conmon's attach sockets live below it)
_COMMAND_TIMEOUT_S = 600.0

_log = get_logger(__name__)


class PodmanError(Unavailable):
    """podman is missing, its API service did not start, or one of its commands failed."""


def find_podman() -> str:
    """The podman executable on PATH. Raises `PodmanError` saying how to install it."""
    found = shutil.which("podman")
    if found is None:
        raise PodmanError(
            "podman was not found on PATH: run `make setup`, which installs the `podman`, "
            "`runc` and `catatonit` packages"
        )
    return found


def podman_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with `CONTAINERS_CONF` naming the
    repository's containers.conf: the environment of every podman the project starts."""
    environ = dict(os.environ if base is None else base)
    environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return environ


@dataclass(frozen=True)
class PodmanCli:
    """How to run the podman CLI against one image and container storage: `environ` (with
    `CONTAINERS_CONF`, and `CONTAINERS_STORAGE_CONF` for a private storage) and the global
    `options` placed before every command. `PodmanCli.host()` is the host's own storage."""

    environ: Mapping[str, str]
    options: tuple[str, ...] = ()

    @classmethod
    def host(cls) -> PodmanCli:
        """The host's storage (`/var/lib/containers` for root), with the repository's
        containers.conf: where `make images` puts images for the platform's engine."""
        return cls(podman_environ())

    def argv(self, *args: str) -> list[str]:
        """The full command line of `podman ARGS...` against this storage."""
        return [find_podman(), *self.options, *args]

    def run(self, *args: str, input: bytes | None = None, timeout: float | None = None) -> str:
        """Runs `podman ARGS...` to its end, blocking, and returns its standard output.

        Raises `PodmanError` with the command and podman's own message when it exits with
        a non-zero status or runs longer than `timeout` seconds (default: ten minutes)."""
        command = self.argv(*args)
        try:
            done = subprocess.run(
                command,
                input=input,
                env=dict(self.environ),
                capture_output=True,
                timeout=_COMMAND_TIMEOUT_S if timeout is None else timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise PodmanError(
                f"podman {args[0]} did not finish within {error.timeout:g} s"
            ) from None
        if done.returncode != 0:
            output = done.stderr.strip() or done.stdout.strip()
            reason = output.decode(errors="replace")[-2000:] or "(no message)"
            raise PodmanError(
                f"podman {' '.join(args[:2])} failed with status {done.returncode}", reason
            )
        return done.stdout.decode(errors="replace")

    async def arun(self, *args: str, input: bytes | None = None) -> str:
        """`run` in a worker thread, without blocking the event loop. A cancelled caller stops
        waiting, but the command still runs to its end."""
        return await asyncio.to_thread(self.run, *args, input=input)


@dataclass
class _Folder:
    """Where one engine keeps its storage, socket, configuration and log."""

    path: Path
    given: bool

    @property
    def socket(self) -> Path:
        return self.path / "podman.sock"

    @property
    def storage_conf(self) -> Path:
        return self.path / "storage.conf"

    @property
    def log_file(self) -> Path:
        return self.path / "podman-service.log"

    @property
    def owner_file(self) -> Path:
        return self.path / "owner"

    def cli(self) -> PodmanCli:
        environ = podman_environ()
        environ["CONTAINERS_STORAGE_CONF"] = str(self.storage_conf)
        options = ("--root", str(self.path / "root"), "--runroot", str(self.path / "run"))
        return PodmanCli(environ, (*options, "--tmpdir", str(self.path / "tmp")))

    def prepare(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        # Whoever reaches the socket commands the engine (as its owner): no one else may.
        self.path.chmod(0o700)
        if len(str(self.path / "run")) > _RUNROOT_MAX or len(str(self.socket)) > _SOCKET_MAX:
            raise PodmanError(
                f"the engine's folder {self.path} is too long: podman refuses a run root "
                f"longer than {_RUNROOT_MAX} characters; give a shorter one"
            )
        self.storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.path / "root"}"\n'
            f'runroot = "{self.path / "run"}"\n'
        )
        me = psutil.Process()
        self.owner_file.write_text(f"{me.pid} {me.create_time()}\n")


@dataclass
class PodmanEngine(ChildServer):
    """`podman system service --time=0 unix://DIR/podman.sock` over a private storage in
    `directory` (a new folder under the temporary folder when not given, removed on `stop`).

    `start` sweeps the folders of engines whose process died, then blocks until `GET /_ping`
    answers on the socket, up to `start_timeout` seconds, and raises `PodmanError` with the tail
    of the service's log otherwise. `stop` removes every container of the storage (they are
    all this engine's), stops the service (SIGTERM, then SIGKILL after `stop_grace`), resets
    the storage (unmounting its layers) and removes a folder it made. Use as a context manager,
    sync or async; start it from a thread that outlives it (the service dies with that thread).
    """

    directory: Path | None = None
    start_timeout: float = 30.0
    stop_grace: float = 5.0
    _folder: _Folder | None = field(default=None, init=False, repr=False)
    _child: ChildProcess | None = field(default=None, init=False, repr=False)

    @property
    def socket(self) -> Path:
        """The API service's unix socket."""
        return self._started().socket

    @property
    def url(self) -> str:
        """`unix:///…/podman.sock`: what `DOCKER_HOST` (or `AORTA_CONTAINER_HOST`) would be."""
        return f"unix://{self.socket}"

    @property
    def cli(self) -> PodmanCli:
        """The podman CLI against this engine's storage (what the API service sees)."""
        return self._started().cli()

    @property
    def environ(self) -> dict[str, str]:
        """An environment in which a plain `podman` command uses this engine's storage
        (`CONTAINERS_CONF` and `CONTAINERS_STORAGE_CONF`), e.g. for a child process."""
        return dict(self.cli.environ)

    @property
    def log_file(self) -> Path:
        return self._started().log_file

    def start(self) -> None:
        """Starts the service and blocks until it answers (or raises `PodmanError`)."""
        child, command, readiness = self._prepare()
        with self._reported():
            child.start_blocking(command, readiness)

    async def astart(self) -> None:
        """`start` without blocking the event loop. Cancelled, it leaves no service behind."""
        child, command, readiness = await asyncio.to_thread(self._prepare)
        with self._reported():
            await child.start(command, readiness)

    def stop(self) -> None:
        """Removes every container, stops the service and removes the storage. Idempotent."""
        folder, child = self._folder, self._child
        self._folder = self._child = None
        if folder is None:
            return
        _remove_containers(folder)
        if child is not None:
            child.stop_blocking()
        _reset_storage(folder)

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        folder, child = self._folder, self._child
        self._folder = self._child = None
        if folder is None:
            return
        await asyncio.to_thread(_remove_containers, folder)
        if child is not None:
            await child.stop()
        await asyncio.to_thread(_reset_storage, folder)

    def _started(self) -> _Folder:
        if self._folder is None:
            raise PodmanError("the podman engine is not started")
        return self._folder

    def _prepare(self) -> tuple[ChildProcess, list[str], HttpReady]:
        if self._folder is not None:
            raise PodmanError(f"the podman engine in {self._folder.path} is already started")
        sweep_abandoned_engines()
        if self.directory is None:
            folder = _Folder(Path(tempfile.mkdtemp(prefix=ENGINE_FOLDER_PREFIX)), given=False)
        else:
            folder = _Folder(self.directory, given=True)
        folder.prepare()
        self._folder = folder
        self._child = ChildProcess(
            "podman system service",
            folder.log_file,
            environ=folder.cli().environ,
            start_timeout=self.start_timeout,
            stop_grace=self.stop_grace,
        )
        command = folder.cli().argv("system", "service", "--time=0", f"unix://{folder.socket}")
        return self._child, command, HttpReady(folder.socket, "/_ping")

    @contextmanager
    def _reported(self) -> Iterator[None]:
        """A failed or cancelled start removes what it made; the manager's errors become
        `PodmanError`s with the same messages."""
        try:
            yield
        except BaseException as error:
            folder, self._folder, self._child = self._folder, None, None
            if folder is not None:
                _reset_storage(folder)
            if isinstance(error, ChildStartError):
                raise PodmanError(*error.messages) from None
            raise


def sweep_abandoned_engines(parent: Path | None = None) -> list[Path]:
    """Removes the containers, storage and folder of every engine under `parent` (default: the
    temporary folder) whose owning process is gone (a test run killed before it could stop its
    engine), and returns the folders removed. Folders of live processes are left alone."""
    removed = []
    for path in sorted(Path(parent or tempfile.gettempdir()).glob(f"{ENGINE_FOLDER_PREFIX}*")):
        folder = _Folder(path, given=False)
        if not path.is_dir() or _owner_alive(folder.owner_file):
            continue
        _log.info("removing the podman storage of a test run that is gone", folder=str(path))
        _remove_containers(folder)
        _reset_storage(folder)
        removed.append(path)
    return removed


def _owner_alive(owner_file: Path) -> bool:
    try:
        pid_text, started_text = owner_file.read_text().split()
        owner = psutil.Process(int(pid_text))
        # The pid alone could have been reused by another process since.
        return abs(owner.create_time() - float(started_text)) < 0.01
    except FileNotFoundError:
        return True  # being made right now, or not an engine's folder: leave it alone
    except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _remove_containers(folder: _Folder) -> None:
    with contextlib.suppress(PodmanError):
        folder.cli().run("rm", "--all", "--force", "--time", "0", timeout=60)


def _reset_storage(folder: _Folder) -> None:
    """Unmounts and deletes the storage (layers of running containers are overlay mounts that
    a plain removal of the folder would trip over), then removes a folder the engine made."""
    try:
        folder.cli().run("system", "reset", "--force", timeout=60)
    except PodmanError as error:
        _log.warning(
            "podman could not reset a test storage", folder=str(folder.path), error=str(error)
        )
    if not folder.given:
        shutil.rmtree(folder.path, ignore_errors=True)
