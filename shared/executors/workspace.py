"""A run's work folder on the host, and the moves of bytes between it and the blob store.

    <work_root>/<job_id>/<operator>-<attempt>/
        volumes/<declared path>   one folder per declared input and output (`/input` ->
                                  `volumes/input`), given to the operator as its entry paths
        home/  tmp/               the operator's HOME and TMPDIR
        operator.log              its captured stdout and stderr
        leader.status             how the group leader saw the command end

Declared paths are mirrored under `volumes/` so a person looking at a kept workspace finds each
folder under the name the definition gave it. Inputs are fetched and outputs pushed file by
file, streaming, a few files at a time; memory stays bounded whatever the sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar

from aorta import ids
from aorta.blobs import BlobStore, check_key, check_prefix
from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding
from aorta.executors.run_log import file_chunks, open_for_reading
from aorta.operator_env import validate_name

TRANSFER_WORKERS = 4
"""Files fetched or pushed at once: enough to hide per-file latency, few enough to stay light."""

T = TypeVar("T")

_JOB_FOLDERS = threading.Lock()
"""Held while a job's folder may be created or removed, so that a run ending cannot remove
the folder another run of the job is being created in."""


@dataclass(frozen=True)
class Transferred:
    """What a fetch or a push moved, and what a push left out (links, devices, sockets)."""

    files: int = 0
    size: int = 0
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workspace:
    """The folders of one run (see the module docstring)."""

    folder: Path

    @classmethod
    def for_run(cls, work_root: Path, job_id: str, operator: str, attempt: int) -> Workspace:
        """The workspace of one attempt; `Invalid` for ids that could escape `work_root`."""
        job = ids.job_id(job_id)
        validate_name(operator, what="operator name")
        if attempt < 0:
            raise Invalid(f"attempt {attempt} is negative")
        return cls(Path(work_root).absolute() / job / f"{operator}-{attempt}")

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"

    @property
    def log_file(self) -> Path:
        return self.folder / "operator.log"

    @property
    def status_file(self) -> Path:
        return self.folder / "leader.status"

    def volume(self, declared: str) -> Path:
        """The host folder of a declared path; `Invalid` unless it is rooted and plain."""
        parts = _declared_parts(declared)
        return self.folder.joinpath("volumes", *parts)

    async def create(self, bindings: Iterable[VolumeBinding]) -> None:
        """Creates the folders afresh (a previous process's leftovers are removed first).

        `Invalid` when a declared path is not rooted and plain, or lies inside another one, or
        when a blob prefix is not a folder (`.../`).
        """
        bindings = list(bindings)
        for binding in bindings:
            if not binding.blob_prefix.endswith("/"):
                raise Invalid(
                    f"blob prefix {binding.blob_prefix!r} of {binding.entry_name!r} does not end "
                    "with '/'"
                )
            check_prefix(binding.blob_prefix)
        declared = [binding.path for binding in bindings]
        _check_no_overlap(declared)
        volumes = [self.volume(path) for path in declared]
        await asyncio.to_thread(self._create, volumes)

    async def remove(self) -> None:
        """Deletes the workspace, and its job's folder when that is left empty."""
        await asyncio.to_thread(self._remove)

    def _create(self, volumes: list[Path]) -> None:
        _rmtree(self.folder)
        with _JOB_FOLDERS:
            self.folder.mkdir(parents=True)
        for folder in (*volumes, self.home, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def _remove(self) -> None:
        _rmtree(self.folder)
        # Fails while other runs of the job use it, or when it is gone already.
        with _JOB_FOLDERS, contextlib.suppress(OSError):
            self.folder.parent.rmdir()


async def fetch_inputs(
    blobs: BlobStore, inputs: Iterable[VolumeBinding], workspace: Workspace
) -> Transferred:
    """Copies every object under each input's `blob_prefix` into its folder, keeping the
    relative paths. Raises the store's errors or `OSError`; what was written stays."""

    async def items() -> AsyncIterator[tuple[str, Path]]:
        for binding in inputs:
            folder = workspace.volume(binding.path)
            async for info in blobs.list(binding.blob_prefix):
                relative = info.key[len(binding.blob_prefix) :]
                yield info.key, folder.joinpath(*relative.split("/"))

    async def fetch(item: tuple[str, Path]) -> int:
        key, target = item
        file = await asyncio.to_thread(_create_file, target)
        size = 0
        try:
            async for chunk in blobs.get(key):
                await asyncio.to_thread(file.write, chunk)
                size += len(chunk)
        finally:
            await asyncio.to_thread(file.close)
        return size

    sizes = await _bounded(items(), fetch)
    return Transferred(files=len(sizes), size=sum(sizes))


async def push_outputs(
    blobs: BlobStore, outputs: Iterable[VolumeBinding], workspace: Workspace
) -> Transferred:
    """Stores each output folder's regular files under its `blob_prefix`, keeping relative
    paths, after deleting what an earlier attempt left under that prefix.

    Every key is checked before anything is deleted: a file name no blob key can have raises
    `Invalid` naming it, and the earlier outputs stay. Symbolic links and special files are not
    stored (a container's volume could not hold them either) and are listed in `skipped`.
    """
    plans: list[tuple[VolumeBinding, list[tuple[str, Path]]]] = []
    skipped: list[str] = []
    for binding in outputs:
        files, left_out = await asyncio.to_thread(_regular_files, workspace.volume(binding.path))
        skipped += [f"{binding.path}/{name}" for name in left_out]
        keyed = []
        for relative, path in files:
            key = binding.blob_prefix + relative
            try:
                check_key(key)
            except Invalid as error:
                raise Invalid(f"output file {binding.path}/{relative}: {error}") from None
            keyed.append((key, path))
        plans.append((binding, keyed))
    for binding, _ in plans:
        await blobs.delete_prefix(binding.blob_prefix)

    async def items() -> AsyncIterator[tuple[str, Path]]:
        for _, keyed in plans:
            for item in keyed:
                yield item

    async def push(item: tuple[str, Path]) -> int:
        key, path = item
        info = await blobs.put(key, file_chunks(await open_for_reading(path)))
        return info.size

    sizes = await _bounded(items(), push)
    return Transferred(files=len(sizes), size=sum(sizes), skipped=tuple(skipped))


async def _bounded(
    items: AsyncIterator[T], work: Callable[[T], Awaitable[int]], limit: int = TRANSFER_WORKERS
) -> list[int]:
    """Runs `work` on each item, at most `limit` at once; the first error cancels the rest and
    propagates."""
    results: list[int] = []
    pending: set[asyncio.Task[int]] = set()

    def collect(done: set[asyncio.Task[int]]) -> None:
        for task in done:
            results.append(task.result())

    try:
        async for item in items:
            if len(pending) >= limit:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
            pending.add(asyncio.ensure_future(work(item)))
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            collect(done)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return results


def _declared_parts(declared: str) -> tuple[str, ...]:
    path = PurePosixPath(declared)
    parts = path.parts[1:]
    if not path.is_absolute() or not parts or any(p in {".", ".."} for p in declared.split("/")):
        raise Invalid(f"path {declared!r} is not a rooted folder such as /input")
    return parts


def _check_no_overlap(declared: list[str]) -> None:
    seen: dict[tuple[str, ...], str] = {}
    for path in declared:
        parts = _declared_parts(path)
        for other_parts, other in seen.items():
            shorter = min(len(parts), len(other_parts))
            if parts[:shorter] == other_parts[:shorter]:
                raise Invalid(
                    f"paths {other!r} and {path!r} overlap: each input and output needs a "
                    "folder of its own"
                )
        seen[parts] = path


def _create_file(target: Path) -> BinaryIO:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.open("wb")


def _regular_files(folder: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The regular files under `folder` as (relative POSIX path, path), sorted; and the
    relative names of what is neither a regular file nor a folder."""
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    pending = [(folder, "")]
    while pending:
        current, prefix = pending.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), relative + "/"))
            elif entry.is_file(follow_symlinks=False):
                files.append((relative, Path(entry.path)))
            else:
                skipped.append(relative)
    files.sort()
    skipped.sort()
    return files, skipped


def _rmtree(folder: Path) -> None:
    """Removes `folder`; folders an operator made read-only are made writable first."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        return
    except PermissionError:
        _make_folders_writable(folder)
        shutil.rmtree(folder)


def _make_folders_writable(folder: Path) -> None:
    pending = [folder]
    while pending:
        current = pending.pop()
        os.chmod(current, os.stat(current).st_mode | stat.S_IRWXU)
        with os.scandir(current) as entries:
            pending += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
