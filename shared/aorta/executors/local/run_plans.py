"""What finishing a local run needs, kept on disk while it runs, and who still owns it.

    <work root>/plans/            0700, the platform's
      <run id>.json               0600: the run's job, operator, attempt, outputs and log key

A run's plan is written before its workspace is made and removed after the workspace is gone.
The executor that runs it holds an exclusive `flock` on the plan for as long as the run is its
own; a process that dies loses its locks. So a plan that can be locked belongs to a run whose
platform died: its group leader died with it, and its workspace says how far it got (an
operator that exited 0 left `exit 0` in its status file and its outputs in place). A workspace
with no locked plan is owned by no live run. Everything here blocks; the executor calls it from
threads.

A lock can outlast its owner by a moment: a child the executor was starting when its platform
died (an operator's group leader between `vfork` and `exec`) holds a copy of the platform's
descriptors, the plan's among them, until it execs. A plan therefore names its owner (host, pid
and the pid's start time); a plan still locked whose owner, of this host, is gone is waited for
(`HANDOVER_WAIT`), so a platform restarted at once still finds the runs the dead one left and
finishes an operator that exited 0 rather than report it lost and run it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import remove_workspace_blocking

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,400}$")
_SUFFIX = ".json"
HANDOVER_WAIT = 10.0
"""Seconds a plan locked after its owner died is waited for: far beyond the moment between a
child's `vfork` and its `exec`, even on a loaded machine."""
_HANDOVER_POLL = 0.01


@dataclass(frozen=True)
class RunPlan:
    """One run as its plan file keeps it."""

    run_id: str
    job_id: str
    operator: str
    attempt: int
    outputs: tuple[VolumeBinding, ...]
    log_key: str


class HeldPlan:
    """A plan this process holds the lock of; `release` gives it up."""

    def __init__(self, plan: RunPlan, path: Path, descriptor: int) -> None:
        self.plan = plan
        self.path = path
        self._descriptor = descriptor

    def release(self, *, remove: bool) -> None:
        """Removes the plan file when `remove` (the run is over and cleared away) and drops
        the lock. Idempotent."""
        if self._descriptor < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._descriptor)
        self._descriptor = -1


class RunPlans:
    """The plans under `folder` (created 0700 on first write)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def hold(self, plan: RunPlan) -> HeldPlan:
        """Writes `plan` and locks it for this process. `OSError` when it cannot be written or
        another live process holds a plan of the same run id (`BlockingIOError`)."""
        if not _RUN_ID.match(plan.run_id):
            raise OSError(f"run id {plan.run_id!r} cannot name a plan file")
        path = self.folder / f"{plan.run_id}{_SUFFIX}"
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(path, flags, FILE_MODE)
        except FileNotFoundError:  # no folder yet: made now, rather than asked for every run
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            descriptor = os.open(path, flags, FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(descriptor, 0)
            document = {**_encode(plan), "owner": this_process()}
            os.write(descriptor, json.dumps(document).encode("utf-8"))
        except BaseException:
            os.close(descriptor)
            raise
        return HeldPlan(plan, path, descriptor)

    def scan(self) -> tuple[list[HeldPlan], list[RunPlan | None]]:
        """The plans no live process holds, now held by this one, and those a live process
        holds (None for one that cannot be read yet: it is being written). An orphan that
        cannot be read is removed."""
        try:
            entries = [entry for entry in os.scandir(self.folder) if entry.is_file()]
        except FileNotFoundError:
            return [], []
        orphans: list[HeldPlan] = []
        live: list[RunPlan | None] = []
        for entry in entries:
            if not entry.name.endswith(_SUFFIX):
                continue
            try:
                descriptor = os.open(entry.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # its run ended meanwhile
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raw = _load(descriptor)
                if raw is None or not _owner_gone(raw) or not _handed_over(descriptor):
                    live.append(None if raw is None else _plan(raw))
                    os.close(descriptor)
                    continue
            else:
                raw = _load(descriptor)
            plan = None if raw is None else _plan(raw)
            if plan is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                os.close(descriptor)
            else:
                orphans.append(HeldPlan(plan, Path(entry.path), descriptor))
        return orphans, live


def planned_folders(root: Path, plans: Iterable[RunPlan | None]) -> set[Path]:
    """The workspaces under `root` that `plans` name (None: a plan not readable yet)."""
    folders = set()
    for plan in plans:
        if plan is not None:
            with contextlib.suppress(Invalid):
                where = (plan.job_id, plan.operator, plan.attempt)
                folders.add(Workspace.for_run(root, *where).folder)
    return folders


def _encode(plan: RunPlan) -> dict[str, object]:
    return {
        "run_id": plan.run_id,
        "job_id": plan.job_id,
        "operator": plan.operator,
        "attempt": plan.attempt,
        "outputs": [[b.entry_name, b.path, b.blob_prefix] for b in plan.outputs],
        "log_key": plan.log_key,
    }


def this_process() -> str:
    """This process as a plan names its owner: `<host>/<pid>/<the pid's start time>`."""
    return _owner_name(os.getpid())


@functools.cache
def _owner_name(pid: int) -> str:
    """`this_process` for `pid`, worked out once per process rather than once per run."""
    return f"{socket.gethostname()}/{pid}/{_started(pid)}"


def _started(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (Linux); None when no process
    has that pid (or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            stat = file.read()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields after it are counted.
    return stat[stat.rindex(")") + 2 :].split()[19]


def _owner_gone(raw: dict[str, object]) -> bool:
    """Whether the plan's owner was a process of this host that is gone (its pid ended, or
    runs another process now). A plan of another host, or one without an owner, is taken
    for live."""
    owner = raw.get("owner")
    if not isinstance(owner, str) or owner.count("/") < 2 or owner == this_process():
        return False
    host, pid, started = owner.rsplit("/", 2)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _started(int(pid)) != started


def _handed_over(descriptor: int) -> bool:
    """Locks `descriptor` once whoever holds a copy of the dead owner's lock lets it go;
    False when that takes longer than `HANDOVER_WAIT` (the plan is then left as live)."""
    deadline = time.monotonic() + HANDOVER_WAIT
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            # flock has no timed wait, and a blocking one would hang a sweep for good on a
            # copy that is never let go.
            time.sleep(_HANDOVER_POLL)


def _load(descriptor: int) -> dict[str, object] | None:
    """The plan file's JSON object, read from its start; None when it is not one (yet)."""
    try:
        os.lseek(descriptor, 0, os.SEEK_SET)
        with os.fdopen(os.dup(descriptor), "r", encoding="utf-8") as file:
            raw = json.load(file)
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _plan(raw: dict[str, Any]) -> RunPlan | None:
    try:
        return RunPlan(
            run_id=str(raw["run_id"]),
            job_id=str(raw["job_id"]),
            operator=str(raw["operator"]),
            attempt=int(raw["attempt"]),
            outputs=tuple(VolumeBinding(str(e), str(p), str(b)) for e, p, b in raw["outputs"]),
            log_key=str(raw["log_key"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def clear_run(
    workspace: Workspace | None, plan: HeldPlan | None, declared: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Removes a run's `workspace` (None: it is kept), then releases and removes its `plan`
    (while it is held, no sweep takes the folder), in one call for one worker thread; the
    steps that failed, with their errors. `declared`, the run's input and output paths, lets
    the workspace be removed by name (`remove_workspace_blocking`)."""
    failed = []
    if workspace is not None:
        try:
            remove_workspace_blocking(workspace, declared)
        except OSError as error:
            failed.append(("workspace removal", str(error)))
    if plan is not None:
        try:
            plan.release(remove=True)
        except OSError as error:
            failed.append(("plan removal", str(error)))
    return failed
