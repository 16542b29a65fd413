"""The local Triton backend: tritonserver child processes sharing one model repository folder.

Each backend owns a working folder under its root (`<data dir>/triton/<random>/`), locked for
its lifetime like the blob store's staging folders, so a backend that died is cleaned up by the
next one to open the same root while a live neighbour's folder stays:

- `backends/`: a copy of the Triton tree's backends with the Python backend stub for this
  interpreter placed in `backends/python/` (site-packages is never modified);
- `repository/<model>/`: the expanded model folders every server of this backend loads from
  (`--model-repository`); a model is expanded on demand, once per revision;
- `incoming/`: archives being fetched and folders being expanded, moved into the repository
  only when complete, so Triton never sees half a model;
- `logs/<server id>.log`: each server's own output.

Replacing a model's folder waits for loads of that model in flight and holds further loads
until it is done (a read/write lock per model name), so a load never reads a folder being
swapped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tritonclient.grpc.aio as triton_grpc  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from aorta.blobs.staging import claim_staging, remove_stale_staging
from aorta.errors import ErrorCode, Invalid, Unavailable
from aorta.logger import get_logger
from aorta.triton.archive import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    extract_archive,
    inspect_archive,
)
from aorta.triton.local.install import STUB, TritonInstall
from aorta.triton.local.process import TritonProcess
from aorta.triton.model_locks import ModelLocks
from aorta.triton.port import ArchiveWriter

_log = get_logger(__name__)


class LocalTritonServer:
    """A `TritonServer` that is a tritonserver child process of this one."""

    def __init__(
        self, id: str, process: TritonProcess, backend: LocalTritonBackend, load_timeout: float
    ) -> None:
        self.id = id
        self.process = process
        self._backend = backend
        self._load_timeout = load_timeout
        self._client: Any = None

    @property
    def grpc_uri(self) -> str:
        return self.process.grpc_uri

    @property
    def http_uri(self) -> str:
        return self.process.http_uri

    def alive(self) -> bool:
        return self.process.alive()

    def _triton(self) -> Any:
        if self._client is None:
            self._client = triton_grpc.InferenceServerClient(self.grpc_uri)
        return self._client

    async def load(self, model: str) -> None:
        async with self._backend.lock(model).reading():
            try:
                await self._triton().load_model(model, client_timeout=self._load_timeout)
            except InferenceServerException as exc:
                raise self._load_error(model, exc) from None

    def _load_error(self, model: str, exc: Any) -> Exception:
        status = str(exc.status() or "")
        if "DEADLINE_EXCEEDED" in status:
            return Unavailable(
                f"model {model!r} did not load on Triton within {self._load_timeout:g} s "
                "(AORTA_TRITON_LOAD_TIMEOUT)"
            )
        if not self.alive() or "UNAVAILABLE" in status:
            return Unavailable(f"the Triton server {self.id} stopped while loading {model!r}")
        text = str(exc.message() or exc).strip().rstrip(";").strip()
        return Invalid(
            f"model {model!r} failed to load on Triton: {text}",
            code=ErrorCode.MODEL_ARCHIVE_INVALID,
        )

    async def unload(self, model: str) -> None:
        try:
            await self._triton().unload_model(model, client_timeout=self._load_timeout)
        except InferenceServerException as exc:
            raise Unavailable(
                f"the Triton server {self.id} could not unload {model!r}: {exc.message()}"
            ) from None

    async def ready_models(self) -> set[str]:
        try:
            index = await self._triton().get_model_repository_index(client_timeout=10.0)
        except InferenceServerException as exc:
            raise Unavailable(
                f"the Triton server {self.id} did not list its models: {exc.message()}"
            ) from None
        return {entry.name for entry in index.models if entry.state == "READY"}

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        await self.process.stop()


class LocalTritonBackend:
    """A `TritonBackend` running tritonserver child processes on this machine.

    Build it with `await LocalTritonBackend.open(root, ...)`; see the module docstring for the
    working folder. Servers listen on free ports of 127.0.0.1.
    """

    def __init__(
        self,
        folder: Path,
        lock_fd: int,
        install: TritonInstall,
        *,
        environ: Mapping[str, str],
        limits: ArchiveLimits,
        start_timeout: float,
        stop_grace: float,
        load_timeout: float,
    ) -> None:
        self.folder = folder
        self._lock_fd = lock_fd
        self._install = install
        self._environ = dict(environ)
        self._limits = limits
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._load_timeout = load_timeout
        self._installed: dict[str, str] = {}
        self.lock = ModelLocks()
        """The lock that orders loads of a model (readers) and swaps of its folder (writer)."""
        self._closed = False

    @property
    def repository(self) -> Path:
        return self.folder / "repository"

    @classmethod
    async def open(
        cls,
        root: Path,
        install: TritonInstall,
        *,
        environ: Mapping[str, str],
        limits: ArchiveLimits = DEFAULT_LIMITS,
        start_timeout: float = 60.0,
        stop_grace: float = 15.0,
        load_timeout: float = 300.0,
    ) -> LocalTritonBackend:
        """Claims a working folder under `root` (removing those of dead backends) and prepares
        the backends tree. `environ` is the environment the servers inherit."""
        folder, lock_fd = await asyncio.to_thread(_prepare, root, install)
        return cls(
            folder,
            lock_fd,
            install,
            environ=environ,
            limits=limits,
            start_timeout=start_timeout,
            stop_grace=stop_grace,
            load_timeout=load_timeout,
        )

    async def start_server(self, server_id: str) -> LocalTritonServer:
        if self._closed:
            raise Unavailable("the Triton backend is closed")
        process = TritonProcess(
            self._install,
            repository=self.repository,
            backends=self.folder / "backends",
            log_file=self.folder / "logs" / f"{server_id}.log",
            environ=self._environ,
            start_timeout=self._start_timeout,
            stop_grace=self._stop_grace,
        )
        await process.start()
        return LocalTritonServer(server_id, process, self, self._load_timeout)

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        async with self.lock(name).writing():
            if self._installed.get(name) == revision:
                return
            work = self.folder / "incoming" / uuid.uuid4().hex
            archive = work.with_suffix(".zip")
            try:
                await write_archive(archive)
                await asyncio.to_thread(self._expand, name, archive, work)
            finally:
                await asyncio.to_thread(_remove, archive, work)
            self._installed[name] = revision
            _log.info("triton.model_installed", model=name, revision=revision)

    def _expand(self, name: str, archive: Path, work: Path) -> None:
        model = inspect_archive(archive, name=name, limits=self._limits, verify=False)
        extract_archive(archive, model, work, self._limits)
        target = self.repository / name
        trash = work.with_name(work.name + ".old")
        if target.exists():
            os.replace(target, trash)
        os.replace(work, target)
        shutil.rmtree(trash, ignore_errors=True)

    async def remove_model(self, name: str) -> None:
        async with self.lock(name).writing():
            self._installed.pop(name, None)
            await asyncio.to_thread(shutil.rmtree, self.repository / name, True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(shutil.rmtree, self.folder, True)
        os.close(self._lock_fd)


def _prepare(root: Path, install: TritonInstall) -> tuple[Path, int]:
    removed = remove_stale_staging(root)
    if removed:
        _log.info("triton.stale_folders_removed", root=str(root), count=removed)
    folder, lock_fd = claim_staging(root)
    python = folder / "backends" / "python"
    shutil.copytree(install.backends, folder / "backends")
    if install.stub is not None:
        shutil.copy2(install.stub, python / STUB)
    for name in ("repository", "incoming", "logs"):
        (folder / name).mkdir()
    return folder, lock_fd


def _remove(archive: Path, work: Path) -> None:
    archive.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
