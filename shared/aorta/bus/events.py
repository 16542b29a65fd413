"""Domain events as CloudEvents 1.0 (JSON, structured mode), the form integrations consume.

An event about entity `job` with id `ab12...` and event name `operator.started` is published on
the bus subject `aorta.events.job.ab12....operator.started` with CloudEvents `type`
`org.aorta.job.operator.started`, `subject` the entity id and `source` `aorta/<service>`.
`aortaschemaversion` (an extension attribute: CloudEvents allows only lower-case letters and
digits in attribute names) versions the shape of `data`; it is "1" today.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aorta.bus.port import check_subject
from aorta.errors import Invalid
from aorta.ids import new_id
from aorta.timestamps import from_iso, to_iso, utcnow

SPEC_VERSION = "1.0"
SCHEMA_VERSION = "1"
CONTENT_TYPE = "application/json"
EVENTS_PREFIX = "aorta.events"
TYPE_PREFIX = "org.aorta"
SOURCE_PREFIX = "aorta/"

_REQUIRED = ("specversion", "id", "source", "type", "subject", "time")


@dataclass(frozen=True)
class CloudEvent:
    """One domain event. Build it with `make_event`; `from_json` validates one read back."""

    id: str
    source: str
    type: str
    subject: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)
    specversion: str = SPEC_VERSION
    datacontenttype: str = CONTENT_TYPE
    dataschema: str | None = None
    aortaschemaversion: str = SCHEMA_VERSION

    @property
    def entity(self) -> str:
        """The entity kind, e.g. `job`: the first token after `org.aorta.` in `type`."""
        return self.type.removeprefix(TYPE_PREFIX + ".").split(".", 1)[0]

    @property
    def event(self) -> str:
        """The event name after the entity in `type`, e.g. `operator.started`."""
        return self.type.removeprefix(TYPE_PREFIX + ".").split(".", 1)[1]

    @property
    def nats_subject(self) -> str:
        """`aorta.events.<entity>.<entity id>.<event>`: where the event is published."""
        return f"{EVENTS_PREFIX}.{self.entity}.{self.subject}.{self.event}"

    def to_document(self) -> dict[str, Any]:
        """The structured-mode JSON object (`dataschema` only when set); it shares `data`
        with the event."""
        document: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
            "aortaschemaversion": self.aortaschemaversion,
            "data": self.data,
        }
        if self.dataschema is not None:
            document["dataschema"] = self.dataschema
        return document

    def to_json(self) -> bytes:
        """The structured-mode JSON document (`to_document` encoded)."""
        return json.dumps(self.to_document(), separators=(",", ":"), allow_nan=False).encode()

    @staticmethod
    def from_json(body: bytes) -> CloudEvent:
        """Parses a structured-mode event; raises `Invalid` naming what is missing or wrong.

        Unknown extension attributes are ignored; `data` must be a JSON object (absent: empty).
        """
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise Invalid(f"event is not valid JSON: {exc}") from exc
        return CloudEvent.from_document(document)

    @staticmethod
    def from_document(document: Any) -> CloudEvent:
        """`from_json` of an object already decoded (an event staged in a store document):
        the same checks, no encoding; the event shares `data` with `document`."""
        if not isinstance(document, Mapping):
            raise Invalid("event is not a JSON object")
        missing = [n for n in _REQUIRED if not (isinstance(document.get(n), str) and document[n])]
        if missing:
            raise Invalid(f"event lacks required attributes: {', '.join(missing)}")
        if document["specversion"] != SPEC_VERSION:
            raise Invalid(f"event specversion {document['specversion']!r} is not {SPEC_VERSION}")
        content_type = document.get("datacontenttype", CONTENT_TYPE)
        if content_type != CONTENT_TYPE:
            raise Invalid(f"event datacontenttype {content_type!r} is not {CONTENT_TYPE}")
        data = document.get("data", {})
        if not isinstance(data, dict):
            raise Invalid("event data is not a JSON object")
        try:
            from_iso(document["time"])
        except ValueError as exc:
            raise Invalid(f"event time {document['time']!r} is not an RFC 3339 time") from exc
        type_ = document["type"]
        if not type_.startswith(TYPE_PREFIX + ".") or type_.count(".") < 3:
            raise Invalid(f"event type {type_!r} is not org.aorta.<entity>.<event>")
        check_subject(type_, wildcards=False)
        check_subject(document["subject"], wildcards=False)
        if "." in document["subject"]:
            raise Invalid(f"event subject {document['subject']!r} is not one token")
        dataschema = document.get("dataschema")
        return CloudEvent(
            id=document["id"],
            source=document["source"],
            type=type_,
            subject=document["subject"],
            time=document["time"],
            data=data,
            specversion=SPEC_VERSION,
            datacontenttype=content_type,
            dataschema=dataschema if isinstance(dataschema, str) else None,
            aortaschemaversion=str(document.get("aortaschemaversion", SCHEMA_VERSION)),
        )


def make_event(
    service: str, entity: str, entity_id: str, event: str, data: Mapping[str, Any]
) -> CloudEvent:
    """A new event (fresh id, current time) that `service` emits about one entity.

    `service`, `entity` and `entity_id` are single subject tokens; `event` is one or more
    dot-separated tokens (`started`, `operator.started`). Tokens may not be empty or contain
    white space, `*` or `>`; `data` must be JSON-serialisable. Violations raise `Invalid`.
    """
    for what, value in (("service", service), ("entity", entity), ("entity id", entity_id)):
        if "." in value:
            raise Invalid(f"event {what} {value!r} may not contain a dot")
        _check_tokens(what, value)
    _check_tokens("event name", event)
    document = dict(data)
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"event data is not JSON-serialisable: {exc}") from exc
    return CloudEvent(
        id=new_id(),
        source=SOURCE_PREFIX + service,
        type=f"{TYPE_PREFIX}.{entity}.{event}",
        subject=entity_id,
        time=to_iso(utcnow()),
        data=document,
    )


def check_event_filter(subject_filter: str) -> str:
    """Returns `subject_filter`, or raises `Invalid` unless it selects subjects under
    `aorta.events.` (wildcards allowed)."""
    check_subject(subject_filter, wildcards=True)
    if not subject_filter.startswith(EVENTS_PREFIX + "."):
        raise Invalid(f"event filter {subject_filter!r} must start with {EVENTS_PREFIX}.")
    return subject_filter


def _check_tokens(what: str, value: str) -> None:
    try:
        check_subject(value, wildcards=False)
    except Invalid:
        raise Invalid(
            f"event {what} {value!r} must be dot-separated non-empty tokens "
            "without white space, '*' or '>'"
        ) from None
