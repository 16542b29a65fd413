"""GPU samples the console has seen, kept for the node page's chart.

The platform's `Clara.Utilization` answers the latest sample of each GPU; the console keeps
what it was answered for `KEPT_SECONDS`, one sample per GPU and timestamp, so a chart of the
last minutes survives a page reload. The history holds the numbers only, never the processes
(which name jobs), so it is the same for every caller. The latest sample shows a `user` the
processes of other users' jobs without their job (`processes_seen_by`), as `Jobs.List` shows
it its own jobs only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aorta.auth.ownership import OTHER_USERS_JOB
from aorta.timestamps import from_iso

KEPT_SECONDS = 3600.0
MAX_SAMPLES = 50_000
"""Samples kept at most (many GPUs sampled often), whatever their age."""


class History:
    """Samples (the `GpuSample` JSON without processes), oldest first."""

    def __init__(self) -> None:
        self._samples: deque[dict[str, Any]] = deque(maxlen=MAX_SAMPLES)
        self._seen: set[tuple[str, int, str]] = set()

    def add(self, samples: Iterable[dict[str, Any]], now: datetime) -> None:
        for sample in samples:
            if sample["time"] is None:
                continue
            key = (sample["node_id"], sample["pcie_id"], sample["time"])
            if key in self._seen:
                continue
            if len(self._samples) == self._samples.maxlen:
                dropped = self._samples.popleft()
                self._seen.discard((dropped["node_id"], dropped["pcie_id"], dropped["time"]))
            self._samples.append(sample)
            self._seen.add(key)
        self._forget_before(now - timedelta(seconds=KEPT_SECONDS))

    def since(self, moment: datetime) -> list[dict[str, Any]]:
        return [sample for sample in self._samples if from_iso(sample["time"]) >= moment]

    def _forget_before(self, moment: datetime) -> None:
        while self._samples and from_iso(self._samples[0]["time"]) < moment:
            dropped = self._samples.popleft()
            self._seen.discard((dropped["node_id"], dropped["pcie_id"], dropped["time"]))


def processes_seen_by(
    samples: Iterable[dict[str, Any]], owners: Mapping[str, str | None], subject: str
) -> list[dict[str, Any]]:
    """`samples` (`GpuSample`s with processes) as the `user` `subject` may see them: a process
    of a job whose owner (`owners`, by job id; None when unknown) is another is named
    `OTHER_USERS_JOB`, without its job. Platform processes (no job) stay as they are."""
    seen = []
    for sample in samples:
        processes = [
            process
            if process["job_id"] is None or owners.get(process["job_id"]) == subject
            else {"name": OTHER_USERS_JOB, "job_id": None}
            for process in sample["processes"]
        ]
        seen.append({**sample, "processes": processes})
    return seen
