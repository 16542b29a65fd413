"""CloudEvents 1.0 as Aorta builds, serialises and validates them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aorta.bus import CloudEvent, make_event
from aorta.errors import Invalid
from aorta.timestamps import from_iso

JOB_ID = "0f" * 16


def test_make_event_fills_the_attributes_and_the_subject() -> None:
    event = make_event("scheduler", "job", JOB_ID, "operator.started", {"operator": "seg"})

    assert event.specversion == "1.0"
    assert len(event.id) == 32
    assert event.source == "aorta/scheduler"
    assert event.type == "org.aorta.job.operator.started"
    assert event.subject == JOB_ID
    assert event.datacontenttype == "application/json"
    assert event.aortaschemaversion == "1"
    assert event.data == {"operator": "seg"}
    assert event.nats_subject == f"aorta.events.job.{JOB_ID}.operator.started"
    assert from_iso(event.time).tzinfo is not None and event.time.endswith("Z")
    assert make_event("scheduler", "job", JOB_ID, "started", {}).id != event.id


def test_structured_json_round_trips() -> None:
    event = make_event("pipelines", "pipeline", JOB_ID, "created", {"name": "ct", "n": [1, 2]})

    document = json.loads(event.to_json())

    assert document == {
        "specversion": "1.0",
        "id": event.id,
        "source": "aorta/pipelines",
        "type": "org.aorta.pipeline.created",
        "subject": JOB_ID,
        "time": event.time,
        "datacontenttype": "application/json",
        "aortaschemaversion": "1",
        "data": {"name": "ct", "n": [1, 2]},
    }
    assert CloudEvent.from_json(event.to_json()) == event


def test_dataschema_travels_when_set() -> None:
    event = CloudEvent(
        id="1",
        source="aorta/x",
        type="org.aorta.job.started",
        subject="j",
        time="2026-01-01T00:00:00Z",
        dataschema="urn:aorta:events:job.started:1",
    )

    assert CloudEvent.from_json(event.to_json()).dataschema == "urn:aorta:events:job.started:1"


@pytest.mark.parametrize(
    ("service", "entity", "entity_id", "name"),
    [
        ("scheduler", "job", "", "started"),
        ("scheduler", "job", "a b", "started"),
        ("scheduler", "job", "a*", "started"),
        ("scheduler", "job", JOB_ID, "operator..started"),
        ("scheduler", "job", JOB_ID, "operator.>"),
        ("scheduler", "job.x", JOB_ID, "started"),
        ("scheduler", "job", "a.b", "started"),
        ("sched uler", "job", JOB_ID, "started"),
        ("scheduler", "", JOB_ID, "started"),
        ("scheduler", "job", JOB_ID, ""),
    ],
)
def test_make_event_rejects_bad_tokens(
    service: str, entity: str, entity_id: str, name: str
) -> None:
    with pytest.raises(Invalid):
        make_event(service, entity, entity_id, name, {})


def test_make_event_rejects_data_json_cannot_carry() -> None:
    with pytest.raises(Invalid, match="JSON"):
        make_event("scheduler", "job", JOB_ID, "started", {"when": object()})
    with pytest.raises(Invalid, match="JSON"):
        make_event("scheduler", "job", JOB_ID, "started", {"ratio": float("nan")})


def _document(**changes: Any) -> bytes:
    document = json.loads(make_event("scheduler", "job", JOB_ID, "started", {}).to_json())
    for name, value in changes.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"not json", "not valid JSON"),
        (b"[1]", "not a JSON object"),
        (_document(id=None), "id"),
        (_document(source=""), "source"),
        (_document(type=None, subject=None), "type, subject"),
        (_document(time=None), "time"),
        (_document(specversion="0.3"), "specversion"),
        (_document(datacontenttype="text/plain"), "datacontenttype"),
        (_document(data=[1]), "data"),
        (_document(time="yesterday"), "time"),
        (_document(type="com.other.job.started"), "org.aorta"),
        (_document(type="org.aorta.job"), "org.aorta"),
        (_document(subject="a.b"), "one token"),
    ],
)
def test_from_json_names_what_is_wrong(body: bytes, complaint: str) -> None:
    with pytest.raises(Invalid, match=complaint):
        CloudEvent.from_json(body)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"[1]", "not a JSON object"),
        (_document(type=None, subject=None), "type, subject"),
        (_document(data=[1]), "data"),
        (_document(time="yesterday"), "time"),
    ],
)
def test_from_document_checks_as_from_json_does(body: bytes, complaint: str) -> None:
    with pytest.raises(Invalid, match=complaint):
        CloudEvent.from_document(json.loads(body))


def test_the_document_form_is_the_json_form_not_encoded() -> None:
    # The outbox stages and publishes events in this form, so it must be what goes on the bus.
    event = make_event("scheduler", "job", JOB_ID, "stopped", {"messages": ["m"], "code": 0})

    assert event.to_document() == json.loads(event.to_json())
    assert CloudEvent.from_document(event.to_document()) == event


def test_from_json_accepts_absent_optional_attributes() -> None:
    event = CloudEvent.from_json(
        _document(data=None, datacontenttype=None, aortaschemaversion=None)
    )

    assert event.data == {}
    assert event.datacontenttype == "application/json"
    assert event.aortaschemaversion == "1"
