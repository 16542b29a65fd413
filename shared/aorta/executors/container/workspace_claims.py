"""Who owns a container run's workspace while no container stands for it yet.

A run's workspace is made, and its inputs fetched into it, before its container exists. A
platform killed then leaves a workspace no container names, which nothing would ever remove;
another platform sharing the work root may be staging one of its own at the same moment. So a
run claims its workspace (`try_claim`, again until it holds it) before making it, and holds
the claim until the run ends in this process: an exclusive `flock` on
`<work root>/claims/<job id>-<operator>-<attempt>`, which the kernel lets go when the process
dies. The executor's sweep removes a workspace only while it holds that claim itself and no
container of the engine names the workspace.

A claim file is removed by whoever holds its lock, so a process that waited for the lock checks
it still holds the file the path names, and claims again otherwise. The work root itself, and
the default layout's per-user folder above it, are made and checked by `prepare_work_root`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

from aorta.errors import Invalid
from aorta.executors.platform_folders import PlatformFolder

CLAIMS_FOLDER = "claims"
FOLDER_MODE = 0o700
"""The mode of the work root, the default layout's per-user folder and every folder here."""
FILE_MODE = 0o600
_JOB_FOLDER = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Claim:
    """A held claim on one workspace; `release` lets it go and removes its file."""

    path: Path
    descriptor: int

    def release(self) -> None:
        """Removes the claim file (while still holding it), then lets the lock go. Once."""
        if self.descriptor < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.descriptor)
        self.descriptor = -1


def prepare_work_root(root: Path, platform: PlatformFolder | None) -> None:
    """Creates the work root and the missing folders on the way, each 0700; `Invalid` when it
    is a link or not a folder. With `platform` (the default layout: `root` is its folder) the
    per-user folder above is held to the same rules as the root, which must both be the
    platform's and writable by no other user (`PlatformFolder.make`)."""
    if platform is not None:
        platform.make()
        return
    for folder in reversed([f for f in (root, *root.parents) if not os.path.lexists(f)]):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another platform
            folder.mkdir(mode=FOLDER_MODE)
            os.chmod(folder, FOLDER_MODE)
    if root.is_symlink() or not root.is_dir():
        raise Invalid(f"the work dir {root} is not a folder (or is a link)")


def claim_path(work_root: Path, workspace: Path) -> Path:
    """The claim file of the workspace `<work root>/<job>/<operator>-<attempt>`."""
    return work_root / CLAIMS_FOLDER / f"{workspace.parent.name}-{workspace.name}"


def try_claim(work_root: Path, workspace: Path) -> Claim | None:
    """Claims `workspace` when no one holds it; None when someone does. Raises `OSError`."""
    return _lock(claim_path(work_root, workspace), wait=False)


def workspace_folders(work_root: Path) -> tuple[list[Path], list[Path]]:
    """Every run folder under `work_root` (`<job id>/<operator>-<attempt>`), and the job
    folders that hold none. Blocks."""
    try:
        jobs = [entry for entry in os.scandir(work_root) if _JOB_FOLDER.match(entry.name)]
    except FileNotFoundError:
        return [], []
    folders: list[Path] = []
    empty: list[Path] = []
    for job in jobs:
        if job.is_dir(follow_symlinks=False):
            runs = [Path(run.path) for run in os.scandir(job.path) if run.is_dir()]
            folders += runs
            if not runs:
                empty.append(Path(job.path))
    return folders, empty


def stale_claims(work_root: Path) -> list[Claim]:
    """The claims no process holds whose workspace is gone (their holder died between the
    removal and the release), held now. Blocks."""
    try:
        entries = list(os.scandir(work_root / CLAIMS_FOLDER))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        job, _, run = entry.name.partition("-")
        if (work_root / job / run).exists():
            continue
        held = _lock(Path(entry.path), wait=False)
        if held is not None:
            found.append(held)
    return found


def _lock(path: Path, *, wait: bool) -> Claim | None:
    """The claim of `path` once locked and still the file `path` names; None when another
    holder has it (without `wait`) or removed it meanwhile (then claim again)."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(descriptor)
            return None
        if os.fstat(descriptor).st_ino != os.stat(path, follow_symlinks=False).st_ino:
            os.close(descriptor)
            return None
    except FileNotFoundError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return Claim(path, descriptor)
