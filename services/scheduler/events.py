"""The scheduler's domain events, published after the change they describe is stored.

Events (CloudEvents on `aorta.events.job.<job id>.<event>`, source `aorta/scheduler`):

- `job.created`, `job.queued`, `job.started` (admitted, RUNNING), `job.stopped`: `data` is
  `{"job_id", "name", "pipeline_id", "payload_id", "priority", "state", "status"}` with the
  enum names (`"STOPPED"`, `"FAULTED"`), plus `"messages"` on `stopped`.
- `job.operator.started` and `job.operator.stopped`: `{"job_id", "operator", "attempt",
  "status"}`, plus `"exit_code"` and `"reason"` on `stopped`.

A lost event (the bus is down) is logged, never raised: the change is stored and the caller
must hear so; integrations can always read the current state through Jobs.Status.
"""

from __future__ import annotations

from typing import Any

from aorta.bus import Bus, make_event
from aorta.errors import AortaError
from aorta.logs import get_logger

from .domain import OperatorStatus
from .record import JobRecord

log = get_logger(__name__)

SERVICE = "scheduler"


class JobEvents:
    """Publishes job events on `bus`."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def job(self, record: JobRecord, event: str) -> None:
        """`job.<event>` for `record` as stored."""
        data: dict[str, Any] = {
            "job_id": record.id,
            "name": record.name,
            "pipeline_id": record.pipeline_id,
            "payload_id": record.payload_id,
            "priority": record.priority.name,
            "state": record.phase.state.name,
            "status": record.phase.status.name,
        }
        if event == "stopped":
            data["messages"] = list(record.messages)
        await self._publish(record.id, event, data)

    async def operator(
        self,
        record: JobRecord,
        name: str,
        event: str,
        *,
        status: OperatorStatus,
        exit_code: int | None = None,
        reason: str = "",
    ) -> None:
        """`job.operator.<event>` for operator `name` of `record`."""
        operator = record.operator(name)
        data: dict[str, Any] = {
            "job_id": record.id,
            "operator": name,
            "attempt": operator.attempt,
            "status": status.name,
        }
        if event == "stopped":
            data["exit_code"] = exit_code
            data["reason"] = reason
        await self._publish(record.id, f"operator.{event}", data)

    async def _publish(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        cloud_event = make_event(SERVICE, "job", job_id, event, data)
        try:
            await self._bus.publish_event(cloud_event)
        except AortaError as error:
            log.error(
                "job.event_lost",
                job_id=job_id,
                lost=event,
                event_id=cloud_event.id,
                error=str(error),
            )
