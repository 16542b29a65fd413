"""The model events (CloudEvents `org.aorta.model.<event>` on `aorta.events.model.<id>.<event>`),
built from the record they describe, staged with its change and published after it
(`aorta.outbox`: at least once, the CloudEvent id the deduplication key).

- `uploaded`: `{"model_id", "name", "revision", "replaced": bool}`, staged in the model's
  insert or replacement;
- `deleted`: `{"model_id", "name"}`, staged apart before the model's record is removed.
"""

from __future__ import annotations

from aorta.bus import CloudEvent, make_event
from aorta_services.models.domain.model_record import ModelRecord

SERVICE = "models"


def uploaded(record: ModelRecord, *, replaced: bool) -> CloudEvent:
    """`uploaded` for the model as stored."""
    data = {"revision": record.revision, "replaced": replaced}
    return _event(record, "uploaded", data)


def deleted(record: ModelRecord) -> CloudEvent:
    """`deleted` for the model as it was."""
    return _event(record, "deleted", {})


def _event(record: ModelRecord, event: str, extra: dict[str, object]) -> CloudEvent:
    data = {"model_id": record.id, "name": record.name, **extra}
    return make_event(SERVICE, "model", record.id, event, data)
