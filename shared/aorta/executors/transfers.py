"""The moves of a run's bytes: its inputs fetched from the blob store into its work folder and
its outputs stored back (see `aorta.executors.workspace` for the layout; the folders
themselves are made and removed by `aorta.executors.workspace_folders`).

Inputs are fetched and outputs pushed file by file, streaming, a few files at a time; memory
stays bounded whatever the sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

from aorta.blobs import BlobInfo, BlobStore, check_key
from aorta.errors import Invalid, NotFound
from aorta.executors.port import VolumeBinding
from aorta.executors.run_log import file_chunks
from aorta.executors.workspace import Workspace
from aorta.opened_files import open_in_thread
from aorta.payload_layout import StoredChecksum, checksum_manifest, output_checksums_key

TRANSFER_WORKERS = 4
"""Files fetched or pushed at once: enough to hide per-file latency, few enough to stay light."""

T = TypeVar("T")


@dataclass(frozen=True)
class Transferred:
    """What a fetch or a push moved, and what a push left out (links, devices, sockets)."""

    files: int = 0
    size: int = 0
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputFile:
    """One object to fetch: its key, and where it lands below its input's declared path."""

    key: str
    declared: str
    parts: tuple[str, ...]


async def fetch_inputs(
    blobs: BlobStore, inputs: Iterable[VolumeBinding], workspace: Workspace
) -> Transferred:
    """Copies every object under each input's `blob_prefix` into its folder, keeping the
    relative paths. Raises the store's errors or `OSError`; what was written stays."""
    return await fetch_listed(blobs, list_inputs(blobs, inputs), workspace)


async def list_inputs(
    blobs: BlobStore, inputs: Iterable[VolumeBinding]
) -> AsyncGenerator[InputFile, None]:
    """The objects under each input's `blob_prefix`, streamed from the store's listing, so a
    caller may learn whether there is anything to fetch before the workspace exists."""
    for binding in inputs:
        async for info in blobs.list(binding.blob_prefix):
            relative = info.key[len(binding.blob_prefix) :]
            yield InputFile(info.key, binding.path, tuple(relative.split("/")))


async def fetch_listed(
    blobs: BlobStore,
    listing: AsyncIterator[InputFile],
    workspace: Workspace,
    *,
    first: InputFile | None = None,
) -> Transferred:
    """`fetch_inputs` of `first` (an object taken from `listing` already), then of the rest
    of `listing`."""

    async def items() -> AsyncIterator[tuple[str, Path]]:
        if first is not None:
            yield first.key, workspace.volume(first.declared).joinpath(*first.parts)
        async for item in listing:
            yield item.key, workspace.volume(item.declared).joinpath(*item.parts)

    async def fetch(item: tuple[str, Path]) -> int:
        key, target = item
        file = await open_in_thread(_create_file, target)
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

    The SHA-256 of every file is computed while it streams into the store and written, once
    every file of the push is stored, to each output's checksum manifest
    (`aorta.payload_layout.output_checksums_key`), which downloads check against. The earlier
    manifest is deleted first, so a push cut short leaves files without checksums rather than
    with an earlier attempt's. An output with no file has no manifest (it would name nothing).

    Whether an earlier attempt left anything (files or a manifest) is asked while the folders
    are read, and only what is there is deleted: an output with no file, where nothing was
    stored before, writes nothing to the store.
    """
    outputs = list(outputs)
    looks = [asyncio.ensure_future(_stored_before(blobs, b.blob_prefix)) for b in outputs]
    try:
        plans, skipped = await asyncio.to_thread(_output_files, workspace, outputs)
        earlier = await asyncio.gather(*looks)
    finally:
        for look in looks:
            look.cancel()
        await asyncio.gather(*looks, return_exceptions=True)
    for (binding, _), (manifest, files) in zip(plans, earlier, strict=True):
        if manifest:
            with contextlib.suppress(NotFound):
                await blobs.delete(output_checksums_key(binding.blob_prefix))
        if files:
            await blobs.delete_prefix(binding.blob_prefix)

    async def items() -> AsyncIterator[tuple[str, str, tuple[str, ...]]]:
        for binding, keyed in plans:
            for key, parts in keyed:
                yield binding.path, key, parts

    stored: dict[str, list[StoredChecksum]] = {binding.blob_prefix: [] for binding, _ in plans}

    prefixes = {binding.path: binding.blob_prefix for binding, _ in plans}

    async def push(item: tuple[str, str, tuple[str, ...]]) -> int:
        declared, key, parts = item
        prefix = prefixes[declared]
        # The output's own folder is reached through the platform's folders (or a pod's mount);
        # below it, everything is the operator's, so no link is followed there.
        file = await open_in_thread(open_beneath, workspace.volume(declared), parts)
        info = await blobs.put(key, file_chunks(file))
        if info.sha256 is not None:
            stored[prefix].append(StoredChecksum(key, info.size, info.sha256))
        return info.size

    sizes = await _bounded(items(), push)
    manifests = [
        (binding.blob_prefix, sorted(stored[binding.blob_prefix], key=lambda item: item.key))
        for binding, keyed in plans
        if keyed
    ]
    await asyncio.gather(
        *(
            blobs.put(output_checksums_key(prefix), _one_chunk(checksum_manifest(prefix, sums)))
            for prefix, sums in manifests
        )
    )
    return Transferred(files=len(sizes), size=sum(sizes), skipped=tuple(skipped))


_Keyed = list[tuple[str, tuple[str, ...]]]


def _output_files(
    workspace: Workspace, outputs: list[VolumeBinding]
) -> tuple[list[tuple[VolumeBinding, _Keyed]], list[str]]:
    """Each output with the keys and path parts of its regular files, and what was left out;
    `Invalid` for a file name no blob key can have. Blocks (one worker-thread call for all)."""
    plans: list[tuple[VolumeBinding, _Keyed]] = []
    skipped: list[str] = []
    for binding in outputs:
        files, left_out = _regular_files(workspace.volume(binding.path))
        skipped += [f"{binding.path}/{name}" for name in left_out]
        keyed = []
        for relative, _ in files:
            key = binding.blob_prefix + relative
            try:
                check_key(key)
            except Invalid as error:
                raise Invalid(f"output file {binding.path}/{relative}: {error}") from None
            keyed.append((key, tuple(relative.split("/"))))
        plans.append((binding, keyed))
    return plans, skipped


async def _stored_before(blobs: BlobStore, prefix: str) -> tuple[bool, bool]:
    """Whether the output under `prefix` has a checksum manifest, and any object, stored."""

    async def manifest() -> bool:
        try:
            await blobs.stat(output_checksums_key(prefix))
        except NotFound:
            return False
        return True

    async def files() -> bool:
        listing = cast(AsyncGenerator[BlobInfo, None], blobs.list(prefix))
        async with contextlib.aclosing(listing):
            return await anext(listing, None) is not None

    found_manifest, found_files = await asyncio.gather(manifest(), files())
    return found_manifest, found_files


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


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


def open_beneath(folder: Path, parts: tuple[str, ...]) -> BinaryIO:
    """Opens the regular file `folder/part/part/...` for reading, following no symbolic link
    on the way below `folder`: an operator that swaps a file or a folder of its outputs for a
    link (to the platform's own files, say) while they are stored gets `OSError`, never the
    link's target. Raises `OSError` too for what is not a regular file."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    current = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=current)
            os.close(current)
            current = below
        # O_NONBLOCK: opening a FIFO planted in place of a file must not hang the platform.
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=current)
    finally:
        os.close(current)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{'/'.join(parts)} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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
