"""A run's work folder made and removed on the host's disk (`aorta.executors.workspace` says
where each folder lies; `aorta.executors.transfers` moves the bytes in them).

Every run makes and removes its folders, so both are done with as few system calls as the
layout allows. The folders are made parents first, each by one `mkdir`. A run's folder is
removed by name when its caller knows the run's declared paths: one `unlink` or `rmdir` per
entry the platform made, deepest first, and `shutil.rmtree` (which opens, checks and lists
every folder it walks) only for a folder an operator left something in. Neither follows a
link: `rmdir` and `unlink` act on the last name itself, and every folder above an entry so
removed is the platform's, which an operator run as another user cannot change
(`aorta.executors.local.work_folders`; one run as the platform's own user could remove the
platform's files itself, with or without a link).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from aorta.blobs import check_prefix
from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding
from aorta.executors.workspace import Workspace, check_bindings

_JOB_FOLDERS = threading.Lock()
"""Held while a job's folder may be created or removed, so that a run ending cannot remove
the folder another run of the job is being created in."""


async def create_workspace(workspace: Workspace, bindings: Iterable[VolumeBinding]) -> None:
    """Creates the folders of `workspace` afresh (a previous process's leftovers are removed
    first). `Invalid` for bindings `check_bindings` refuses or a blob prefix no key
    can start with; nothing is created then."""
    await asyncio.to_thread(create_workspace_blocking, workspace, bindings)


def create_workspace_blocking(workspace: Workspace, bindings: Iterable[VolumeBinding]) -> None:
    """`create_workspace` in the calling thread, for a caller that has more file work to do
    in the same worker thread."""
    bindings = list(bindings)
    check_bindings(bindings)
    for binding in bindings:
        check_prefix(binding.blob_prefix)
    _rmtree(workspace.folder)
    with _JOB_FOLDERS:
        workspace.folder.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(workspace.folder)
    for folder in _made_folders(workspace, [binding.path for binding in bindings]):
        os.mkdir(workspace.folder / folder)


async def remove_workspace(workspace: Workspace) -> None:
    """Deletes the workspace, and its job's folder when that is left empty."""
    await asyncio.to_thread(remove_workspace_blocking, workspace)


def remove_workspace_blocking(workspace: Workspace, declared: Iterable[str] | None = None) -> None:
    """`remove_workspace` in the calling thread, for a caller with more file work to do in
    the same worker thread. `declared`, the run's input and output paths when the caller
    knows them, lets the folders be removed by name (module docstring); without them, the
    whole folder is walked. Blocks; raises `OSError`."""
    if declared is None:
        _rmtree(workspace.folder)
    else:
        _remove_by_name(workspace, list(declared))
    # Fails while other runs of the job use it, or when it is gone already.
    with _JOB_FOLDERS, contextlib.suppress(OSError):
        workspace.folder.parent.rmdir()


async def remove_if_empty(job_folder: Path) -> None:
    """Removes a job's folder of workspaces when it holds none (a crash left it so)."""
    await asyncio.to_thread(_prune_job_folder, job_folder)


def _prune_job_folder(job_folder: Path) -> None:
    with _JOB_FOLDERS, contextlib.suppress(OSError):
        job_folder.rmdir()


def _made_folders(workspace: Workspace, declared: list[str]) -> list[str]:
    """The folders `create_workspace` makes in the run's folder, relative to it and parents
    first: `volumes/` and the way to each declared path, `home/` and `tmp/`. `Invalid` for a
    declared path that is not rooted and plain."""
    folders: dict[str, None] = {}  # ordered, and each folder named once
    for path in declared:
        parts = workspace.volume_parts(path)
        for depth in range(1, len(parts) + 1):
            folders["/".join(parts[:depth])] = None
    return [*folders, workspace.home.name, workspace.tmp.name]


def _remove_by_name(workspace: Workspace, declared: list[str]) -> None:
    """Removes the run's folder entry by entry as `create_workspace` and the run made it,
    walking only what is not as made. Raises `OSError`."""
    top = workspace.folder
    try:
        folders = _made_folders(workspace, declared)
    except Invalid:
        _rmtree(top)
        return
    # Deepest first: a folder goes after everything that was made in it.
    for folder in sorted(folders, key=lambda name: name.count("/"), reverse=True):
        _remove_folder(top / folder)
    for file in (workspace.log_file, workspace.status_file):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file)
    _remove_folder(top)


def _remove_folder(folder: Path) -> None:
    """Removes `folder` by one `rmdir` when it is empty, else walks it (`_rmtree`); what is
    not a folder (a link or a file in its place) is unlinked."""
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(folder)
    except OSError:
        _rmtree(folder)  # not empty, or not ours to remove as it is: the walk says which


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
