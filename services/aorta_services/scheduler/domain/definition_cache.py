"""The definitions of recent jobs, kept by job id: pure.

A job's definition never changes after `Jobs.Create` (domain.definition), and the scheduler
needs it at Start, at admission and at each resync of a leader (the pipeline services it
declares): three reads of the store per job, each a hop to the store's thread and a decode,
for a document that cannot have changed. The repository keeps the definitions it wrote or
read here and forgets a job's when it removes the job. A byte budget bounds what is kept (a
definition is a few KB as a rule, at most one bus message), the least recently used going
first.
"""

from __future__ import annotations

from collections import OrderedDict

from aorta_services.scheduler.domain.definition import Definition

CACHED_DEFINITION_BYTES = 8 << 20
"""The definition text (paths and contents) kept at most."""


def _size(definition: Definition) -> int:
    return sum(len(path) + len(content) for path, content in definition.files)


class DefinitionCache:
    """Definitions by job id within `max_bytes`, least recently used evicted first."""

    def __init__(self, max_bytes: int = CACHED_DEFINITION_BYTES) -> None:
        self._max_bytes = max_bytes
        self._kept: OrderedDict[str, tuple[Definition, int]] = OrderedDict()
        self._bytes = 0

    def get(self, job_id: str) -> Definition | None:
        """The definition kept for `job_id`, if any."""
        kept = self._kept.get(job_id)
        if kept is None:
            return None
        self._kept.move_to_end(job_id)
        return kept[0]

    def put(self, job_id: str, definition: Definition) -> None:
        """Keeps `definition` for `job_id` (not one larger than the whole budget)."""
        self.forget(job_id)
        size = _size(definition)
        if size > self._max_bytes:
            return
        self._kept[job_id] = (definition, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (_, evicted) = self._kept.popitem(last=False)
            self._bytes -= evicted

    def forget(self, job_id: str) -> None:
        """Drops what is kept for `job_id` (the job is gone)."""
        kept = self._kept.pop(job_id, None)
        if kept is not None:
            self._bytes -= kept[1]
