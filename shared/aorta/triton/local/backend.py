"""The local Triton backend: tritonserver child processes sharing one model repository folder.

The repository and its working folder are `aorta.triton.local.repository.ModelFolder`'s; this
backend adds `backends/` to it, a copy of the Triton tree's backends with the Python backend stub
for this interpreter placed in `backends/python/` (site-packages is never modified), and writes
each server's output to `logs/<server id>.log`.

Each server gets the GPUs the pool assigned it (`start_server(server_id, gpus)`): exactly those
devices through `CUDA_VISIBLE_DEVICES`, with CUDA memory pools on them and a pinned host pool
(`aorta.triton.server_flags`); a server given none runs with the CPU-only flags.

Servers run as `user` when the platform switches to it (`aorta.triton.local.confinement`): the
working folder is then opened to them read-only, `backends/` included, and each server's `HOME`
and `TMPDIR` is `home/`, the user's own.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from aorta.errors import Unavailable
from aorta.executors.local.operator_user import OperatorUser
from aorta.triton.archive import DEFAULT_LIMITS, ArchiveLimits
from aorta.triton.control import ControlledServer, TritonControl
from aorta.triton.local.confinement import make_home, open_to_server
from aorta.triton.local.install import STUB, TritonInstall
from aorta.triton.local.process import TritonProcess
from aorta.triton.local.repository import ModelFolder
from aorta.triton.port import ArchiveWriter
from aorta.triton.server_flags import MemoryPools


class LocalTritonServer(ControlledServer):
    """A `TritonServer` that is a tritonserver child process of this one."""

    def __init__(
        self, id: str, process: TritonProcess, backend: LocalTritonBackend, load_timeout: float
    ) -> None:
        control = TritonControl(id, process.grpc_uri, process.http_uri, load_timeout)
        super().__init__(id, control, backend.lock)
        self.process = process

    def alive(self) -> bool:
        return self.process.alive()

    async def _halt(self) -> None:
        await self.process.stop()


class LocalTritonBackend:
    """A `TritonBackend` running tritonserver child processes on this machine.

    Build it with `await LocalTritonBackend.open(root, ...)`; see the module docstring for the
    working folder. Servers listen on free ports of 127.0.0.1.
    """

    def __init__(
        self,
        models: ModelFolder,
        install: TritonInstall,
        *,
        environ: Mapping[str, str],
        user: OperatorUser | None = None,
        pools: MemoryPools,
        start_timeout: float,
        stop_grace: float,
        load_timeout: float,
    ) -> None:
        self.models = models
        self._install = install
        self._environ = dict(environ)
        self._user = user
        self._pools = pools
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._load_timeout = load_timeout
        self.lock = models.lock
        """The lock that orders loads of a model (readers) and swaps of its folder (writer)."""
        self._closed = False

    @property
    def folder(self) -> Path:
        return self.models.folder

    @property
    def repository(self) -> Path:
        return self.models.repository

    @classmethod
    async def open(
        cls,
        root: Path,
        install: TritonInstall,
        *,
        environ: Mapping[str, str],
        user: OperatorUser | None = None,
        limits: ArchiveLimits = DEFAULT_LIMITS,
        pools: MemoryPools | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 15.0,
        load_timeout: float = 300.0,
    ) -> LocalTritonBackend:
        """Claims a working folder under `root` (removing those of dead backends) and prepares
        the backends tree. `environ` is the platform's environment, of which servers keep only
        the host variables `confinement.HOST_VARIABLES` names; `user` is who servers run as
        (the platform's user when None or not switched to); `pools` sizes the memory pools of
        servers with GPUs (Triton's defaults when None)."""
        shared = user is not None and user.switch
        models = await ModelFolder.open(
            root,
            limits=limits,
            prepare=functools.partial(_prepare, install, user),
            shared=shared,
        )
        return cls(
            models,
            install,
            environ=environ,
            user=user,
            pools=pools or MemoryPools(),
            start_timeout=start_timeout,
            stop_grace=stop_grace,
            load_timeout=load_timeout,
        )

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> LocalTritonServer:
        if self._closed:
            raise Unavailable("the Triton backend is closed")
        process = TritonProcess(
            self._install,
            repository=self.repository,
            backends=self.folder / "backends",
            log_file=self.models.logs / f"{server_id}.log",
            environ=self._environ,
            user=self._user,
            home=self.folder / "home",
            gpus=gpus,
            pools=self._pools,
            start_timeout=self._start_timeout,
            stop_grace=self._stop_grace,
        )
        await process.start()
        return LocalTritonServer(server_id, process, self, self._load_timeout)

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        await self.models.install_model(name, revision, write_archive)

    async def remove_model(self, name: str) -> None:
        await self.models.remove_model(name)

    async def close(self) -> None:
        self._closed = True
        await self.models.close()


def _prepare(install: TritonInstall, user: OperatorUser | None, folder: Path) -> None:
    shutil.copytree(install.backends, folder / "backends")
    if install.stub is not None:
        shutil.copy2(install.stub, folder / "backends" / "python" / STUB)
    if user is not None and user.switch:
        open_to_server(folder / "backends")
    make_home(folder / "home", user)
