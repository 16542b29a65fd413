"""Which jobs named in a Clara.Utilization answer its caller may see, asked of the scheduler.

The scheduler owns jobs, so it says whose they are (`contracts.SCHEDULER_READABLE_JOBS`, the
caller passed on in its bus header): one request per answer, only when the caller is a `user`
and the answer names jobs it has not been told about yet. A job's owner never changes, so a
watch stream asks again only for the jobs that appeared since its last answer; what it keeps
is the jobs of the latest answer.

When the scheduler cannot say (not deployed, down, too slow), the jobs it was asked about
are shown as another user's for that answer, and asked about again with the next: the GPUs'
load is still answered, and no job id reaches a caller the scheduler did not vouch for.
"""

from __future__ import annotations

from collections.abc import Set

from aorta import contracts
from aorta.auth.caller import caller_headers
from aorta.auth.ownership import listed_owner
from aorta.bus import Bus
from aorta.bus.verbs import call
from aorta.errors import AortaError
from aorta.ids import JobId
from aorta.logger import get_logger

log = get_logger(__name__)


class ReadableJobs:
    """The jobs the current caller may see, for one Utilization call (one per stream)."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        self._known: dict[JobId, bool] = {}

    async def shown(self, named: Set[JobId]) -> frozenset[JobId] | None:
        """Those of `named` the caller may see; None (every job) for a viewer, an admin, or
        anyone when authentication is off, whom the scheduler is never asked about."""
        if listed_owner() is None:
            return None
        self._known = {job: self._known[job] for job in named if job in self._known}
        unknown = sorted(job for job in named if job not in self._known)
        if unknown:
            self._known.update(await self._ask(unknown))
        return frozenset(job for job in named if self._known.get(job, False))

    async def _ask(self, jobs: list[JobId]) -> dict[JobId, bool]:
        """Each of `jobs` with whether the caller may see it; none when the scheduler did not
        answer, so they are asked about again next time."""
        try:
            answer = await call(
                self._bus,
                contracts.SCHEDULER_READABLE_JOBS,
                contracts.JobIds(tuple(jobs)),
                timeout=self._timeout,
                headers=caller_headers(),
            )
        except AortaError as error:
            log.warning("monitor.job_owners_unknown", jobs=len(jobs), error=str(error))
            return {}
        readable = set(answer.job_ids)
        return {job: job in readable for job in jobs}
