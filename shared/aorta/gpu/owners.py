"""Which job and operator a process on this node belongs to.

The platform starts every operator process with `NVIDIA_CLARA_JOBID` and
`NVIDIA_CLARA_STAGENAME` in its environment (`aorta.operator_env`), so the owner of a GPU
process can be read back from `/proc/<pid>/environ`: of the process itself, or of the nearest
ancestor that has them, because a subprocess an operator starts (a Triton server of its own, a
worker) may be given a fresh environment, yet its parent chain still leads to the operator.

`ProcessOwners` (`aorta.gpu.port`) is the port; `ProcEnvironOwners` reads `/proc`. A registry
kept by the executor can implement the same port later without touching the monitor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from pathlib import Path

from aorta import ids, operator_env
from aorta.errors import Invalid
from aorta.gpu.sample import ProcessOwner

_JOB_ID_PREFIX = f"{operator_env.JOB_ID}=".encode()
_STAGE_NAME_PREFIX = f"{operator_env.STAGE_NAME}=".encode()


class ProcEnvironOwners:
    """`ProcessOwners` read from `/proc/<pid>/environ`, walking up parent pids.

    A process whose environment names a job (a valid job id and a stage name) is owned by that
    job's operator; otherwise its parent is tried, up to `max_depth` ancestors. A process that
    vanished, or whose files cannot be read (another user's environment when not root, a
    container's pid namespace), ends the search along that path without an error; an unreadable
    environment still lets the walk continue to the parent, whose status file is world-readable.
    The monitor must see the host's pids (on Kubernetes: `hostPID: true`). `/proc` files are
    read in a worker thread, off the event loop.
    """

    def __init__(self, proc_root: Path = Path("/proc"), *, max_depth: int = 32) -> None:
        self._root = proc_root
        self._max_depth = max_depth

    async def owners(self, pids: Collection[int]) -> Mapping[int, ProcessOwner]:
        wanted = list(pids)
        if not wanted:
            return {}
        return await asyncio.to_thread(self._owners, wanted)

    def _owners(self, pids: list[int]) -> dict[int, ProcessOwner]:
        found: dict[int, ProcessOwner] = {}
        for pid in pids:
            owner = self.owner_of(pid)
            if owner is not None:
                found[pid] = owner
        return found

    def owner_of(self, pid: int) -> ProcessOwner | None:
        """The owner of `pid` or of its nearest owned ancestor; None if none. Blocking I/O."""
        seen: set[int] = set()
        current = pid
        while current > 0 and current not in seen and len(seen) <= self._max_depth:
            seen.add(current)
            owner = self._own_owner(current)
            if owner is not None:
                return owner
            parent = self._parent_of(current)
            if parent is None:
                return None
            current = parent
        return None

    def _own_owner(self, pid: int) -> ProcessOwner | None:
        try:
            environ = (self._root / str(pid) / "environ").read_bytes()
        except OSError:
            return None
        job, stage = None, None
        for entry in environ.split(b"\0"):
            if entry.startswith(_JOB_ID_PREFIX):
                job = entry[len(_JOB_ID_PREFIX) :].decode("utf-8", "replace")
            elif entry.startswith(_STAGE_NAME_PREFIX):
                stage = entry[len(_STAGE_NAME_PREFIX) :].decode("utf-8", "replace")
        if not job or not stage:
            return None
        try:
            return ProcessOwner(job_id=ids.job_id(job), operator=stage)
        except Invalid:
            # Someone else's variable of the same name (a local run of an operator with a
            # hand-written id): not a job of this platform.
            return None

    def _parent_of(self, pid: int) -> int | None:
        try:
            stat = (self._root / str(pid) / "stat").read_bytes()
        except OSError:
            return None
        # "pid (comm) state ppid ...": comm may itself contain spaces and parentheses.
        fields = stat.rpartition(b")")[2].split()
        try:
            return int(fields[1])
        except (IndexError, ValueError):
            return None
