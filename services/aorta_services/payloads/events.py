"""The service's domain events, published after the store write they describe.

Types (CloudEvents `org.aorta.payload.<event>`, subject `aorta.events.payload.<id>.<event>`):

- `created`: `{"payload_id", "type": "PIPELINE" | "REUSABLE", "job_id": str | null,
  "files": int}` (`files`: how many input files a job's payload was given by copy);
- `deleted`: `{"payload_id", "type", "job_id", "files": int}` (`files`: how many were removed),
  after a Delete or after the payload of a job that was never revealed was discarded;
- `file.added`: `{"payload_id", "name", "size", "sha256": str | null}` after an upload;
- `file.removed`: `{"payload_id", "name", "size"}`.

`name` is the file's rooted wire name (`/input/scan.dcm`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aorta.bus import Bus, make_event
from aorta.errors import AortaError
from aorta.ids import PayloadId
from aorta.logger import get_logger
from aorta_services.payloads.domain import PayloadRecord

log = get_logger(__name__)

SERVICE = "payloads"
ENTITY = "payload"


class EventPublisher:
    """Publishes payload events; a lost event is logged, never raised (see `publish`)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, payload_id: PayloadId, event: str, data: Mapping[str, Any]) -> None:
        """Publishes `event` about the payload with `data` (plus `payload_id`).

        The change is stored already and the caller must hear so: failing the call now would
        invite a retry that repeats it. The loss is logged for operators instead.
        """
        cloud_event = make_event(
            SERVICE, ENTITY, payload_id, event, {"payload_id": payload_id, **data}
        )
        try:
            await self._bus.publish_event(cloud_event)
        except AortaError as error:
            log.error(
                "payload.event_lost",
                payload_id=payload_id,
                lost=event,
                event_id=cloud_event.id,
                error=str(error),
            )

    async def payload(self, record: PayloadRecord, event: str, files: int) -> None:
        """`created` or `deleted`."""
        data = {"type": record.kind.value, "job_id": record.job_id, "files": files}
        await self.publish(record.id, event, data)
