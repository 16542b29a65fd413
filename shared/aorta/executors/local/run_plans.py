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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding
from aorta.executors.transfers import remove_workspace_blocking
from aorta.executors.workspace import Workspace

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,400}$")
_SUFFIX = ".json"


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
        self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        path = self.folder / f"{plan.run_id}{_SUFFIX}"
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(path, flags, FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, json.dumps(_encode(plan)).encode("utf-8"))
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
                held = _read(Path(entry.path), descriptor)
                live.append(None if held is None else held.plan)
                os.close(descriptor)
                continue
            held = _read(Path(entry.path), descriptor)
            if held is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                os.close(descriptor)
            else:
                orphans.append(held)
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


def _read(path: Path, descriptor: int) -> HeldPlan | None:
    try:
        with os.fdopen(os.dup(descriptor), "r", encoding="utf-8") as file:
            raw = json.load(file)
        plan = RunPlan(
            run_id=str(raw["run_id"]),
            job_id=str(raw["job_id"]),
            operator=str(raw["operator"]),
            attempt=int(raw["attempt"]),
            outputs=tuple(VolumeBinding(str(e), str(p), str(b)) for e, p, b in raw["outputs"]),
            log_key=str(raw["log_key"]),
        )
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return HeldPlan(plan, path, descriptor)


def clear_run(workspace: Workspace | None, plan: HeldPlan | None) -> list[tuple[str, str]]:
    """Removes a run's `workspace` (None: it is kept), then releases and removes its `plan`
    (while it is held, no sweep takes the folder), in one call for one worker thread; the
    steps that failed, with their errors."""
    failed = []
    if workspace is not None:
        try:
            remove_workspace_blocking(workspace)
        except OSError as error:
            failed.append(("workspace removal", str(error)))
    if plan is not None:
        try:
            plan.release(remove=True)
        except OSError as error:
            failed.append(("plan removal", str(error)))
    return failed
