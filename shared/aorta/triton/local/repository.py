"""A Triton model repository in a folder of this machine, shared by every server of a backend.

The backends that run servers here (tritonserver children, containers with the folder mounted
read-only) keep their models in one working folder under their root
(`<data dir>/triton/<random>/`), locked for its lifetime like the blob store's staging folders,
so the folder of a backend that died is removed by the next one to open the same root while a
live neighbour's folder stays:

- `repository/<model>/`: the expanded model folders the servers load from; a model is expanded
  on demand, once per revision;
- `incoming/`: archives being fetched and folders being expanded, moved into the repository
  only when complete, so Triton never sees half a model;
- `logs/`: the servers' own output, where a backend writes one.

A folder opened `shared` is read by servers that run as another user: the working folder is
0711 and the repository, with every model expanded into it, is readable by all and writable by
the platform only (`aorta.triton.local.confinement.open_to_server`); `incoming/` and `logs/` stay
the platform's.

Replacing a model's folder waits for loads of that model in flight and holds further loads
until it is done (a read/write lock per model name, `lock`), so a load never reads a folder
being swapped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from aorta.blobs.staging import claim_staging, remove_stale_staging
from aorta.logger import get_logger
from aorta.triton.archive import DEFAULT_LIMITS, ArchiveLimits, extract_archive, inspect_archive
from aorta.triton.local.confinement import open_to_server
from aorta.triton.model_locks import ModelLocks
from aorta.triton.port import ArchiveWriter

_log = get_logger(__name__)

Preparation = Callable[[Path], None]
"""Fills a freshly claimed working folder with what a backend needs beside the models."""


class ModelFolder:
    """The working folder and its model repository (see the module docstring).

    Build it with `await ModelFolder.open(root, ...)`; `close` removes the folder.
    """

    def __init__(
        self, folder: Path, lock_fd: int, limits: ArchiveLimits, *, shared: bool = False
    ) -> None:
        self.folder = folder
        self._lock_fd = lock_fd
        self._limits = limits
        self._shared = shared
        self._installed: dict[str, str] = {}
        self.lock = ModelLocks()
        """The lock that orders loads of a model (readers) and swaps of its folder (writer)."""
        self._closed = False

    @property
    def repository(self) -> Path:
        return self.folder / "repository"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @classmethod
    async def open(
        cls,
        root: Path,
        *,
        limits: ArchiveLimits = DEFAULT_LIMITS,
        prepare: Preparation | None = None,
        shared: bool = False,
    ) -> ModelFolder:
        """Claims a working folder under `root` (removing those of dead backends), makes its
        sub-folders and runs `prepare` on it; opens it to servers of another user when
        `shared` (see the module docstring)."""
        folder, lock_fd = await asyncio.to_thread(_claim, root, prepare, shared)
        return cls(folder, lock_fd, limits, shared=shared)

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        """`TritonBackend.install_model`: expands the archive once per revision, swapped whole."""
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
        if self._shared:
            open_to_server(work)
        target = self.repository / name
        trash = work.with_name(work.name + ".old")
        if target.exists():
            os.replace(target, trash)
        os.replace(work, target)
        shutil.rmtree(trash, ignore_errors=True)

    async def remove_model(self, name: str) -> None:
        """`TritonBackend.remove_model`: the model's folder goes (loaded copies stay)."""
        async with self.lock(name).writing():
            self._installed.pop(name, None)
            await asyncio.to_thread(shutil.rmtree, self.repository / name, True)

    async def close(self) -> None:
        """Removes the working folder and releases its lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(shutil.rmtree, self.folder, True)
        os.close(self._lock_fd)


def _claim(root: Path, prepare: Preparation | None, shared: bool) -> tuple[Path, int]:
    removed = remove_stale_staging(root)
    if removed:
        _log.info("triton.stale_folders_removed", root=str(root), count=removed)
    folder, lock_fd = claim_staging(root)
    for name in ("repository", "incoming", "logs"):
        (folder / name).mkdir()
    if prepare is not None:
        prepare(folder)
    if shared:
        os.chmod(folder, 0o711)
        open_to_server(folder / "repository")
    return folder, lock_fd


def _remove(archive: Path, work: Path) -> None:
    archive.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
