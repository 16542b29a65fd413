"""The bus's permissions match the code: every verb has exactly one serving service and a
caller, each service may publish the verbs its code calls and no other, the events user reads
and never writes, and nobody reads another's inboxes."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta import bus_permissions, contracts, subjects
from aorta.bus import events, nats_events
from aorta.bus.verbs import StreamVerb, Verb
from aorta.bus_permissions import (
    EVENTS_USER,
    SERVICE_ACCESS,
    authorization_config,
    bus_users,
    deploy_authorization_config,
    inbox_prefix,
    permissions_for,
    rpc_subjects,
    served,
    serving_service,
)
from aorta_services.launch import registry
from aorta_services.scheduler import app as scheduler_app

SERVICES = Path(__file__).parents[3] / "services" / "aorta_services"


def _sources(service: str) -> Iterator[Path]:
    yield from sorted((SERVICES / service).rglob("*.py"))


def referenced_verbs(service: str) -> set[str]:
    """The verb subjects a service's code names, as `subjects.X` or `contracts.X`."""
    found: set[str] = set()
    for path in _sources(service):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            module = {"subjects": subjects, "contracts": contracts}.get(node.value.id)
            value = getattr(module, node.attr, None) if module else None
            if isinstance(value, Verb | StreamVerb):
                value = value.subject
            if isinstance(value, str) and value in rpc_subjects():
                found.add(value)
    return found


def test_the_users_are_the_registrys_services_and_the_events_user() -> None:
    assert set(SERVICE_ACCESS) == set(registry.BUS_SERVICES)
    assert bus_users() == (*SERVICE_ACCESS, EVENTS_USER)


def test_every_verb_is_served_by_exactly_one_service() -> None:
    assert len(rpc_subjects()) > 50
    for subject in rpc_subjects():
        subscribers = [u for u in bus_users() if subject in permissions_for(u).subscribe]
        assert subscribers == [serving_service(subject)], subject


def test_every_verb_has_a_caller_and_every_call_is_a_verb() -> None:
    called = set().union(*(access.calls for access in SERVICE_ACCESS.values()))
    assert called == set(rpc_subjects())


@pytest.mark.parametrize("service", list(registry.BUS_SERVICES))
def test_each_service_may_call_exactly_the_verbs_its_code_calls(service: str) -> None:
    """A verb a service's code names is one it serves or one it calls; each call declared here
    is named in its code (so a removed call does not leave a permission behind)."""
    named = referenced_verbs(service)
    mine = set(served(service))
    calls = SERVICE_ACCESS[service].calls
    assert named - mine <= calls, f"{service} calls verbs it may not: {named - mine - calls}"
    assert calls <= named, f"{service} may call verbs its code never names: {calls - named}"


@pytest.mark.parametrize("service", list(registry.BUS_SERVICES))
def test_each_service_publishes_the_events_it_may(service: str) -> None:
    code = "".join(path.read_text() for path in _sources(service))
    access = SERVICE_ACCESS[service]
    # Services publish their events through the shared outbox (`aorta.outbox`).
    emits = "publish_event(" in code or "Outbox(" in code
    assert emits == bool(access.events)
    for kind in access.events:
        assert f'"{kind}"' in code, f"{service} emits no {kind} events"
    assert ("subjects.audit(" in code) == access.audits
    for subject in access.publishes:
        assert re.search(r"\bpublish\((subjects\.GPU_SAMPLES|WAKE)", code), subject


def test_the_plain_subjects_are_the_ones_the_code_uses() -> None:
    assert scheduler_app.WAKE == bus_permissions.SCHEDULER_WAKE
    assert events.EVENTS_PREFIX == bus_permissions.EVENTS_PREFIX
    assert nats_events.STREAM_NAME == bus_permissions.EVENTS_STREAM


def test_only_the_monitor_may_ask_for_a_platform_stop() -> None:
    for stop in (subjects.SCHEDULER_PLATFORM_STOP, subjects.MODELS_PLATFORM_STOP):
        allowed = [u for u in bus_users() if stop in permissions_for(u).publish]
        assert allowed == ["monitor"]


def test_no_user_has_a_wildcard_over_verbs_or_over_every_inbox() -> None:
    for user in bus_users():
        permissions = permissions_for(user)
        for subject in (*permissions.publish, *permissions.subscribe):
            assert subject not in (">", "aorta.>", "aorta.rpc.>", "_INBOX.>"), (user, subject)
            assert not subject.startswith("aorta.rpc.") or "*" not in subject
            assert ">" not in subject or subject.endswith(".>")


def test_each_user_reads_only_its_own_inboxes() -> None:
    for user in bus_users():
        inboxes = [s for s in permissions_for(user).subscribe if s.startswith("_INBOX")]
        assert inboxes == ([] if user == EVENTS_USER else [f"{inbox_prefix(user)}.>"])


def test_the_events_user_reads_events_and_audit_records_and_writes_nothing() -> None:
    permissions = permissions_for(EVENTS_USER)
    assert permissions.publish == ()
    assert permissions.subscribe == ("aorta.events.>", "aorta.audit.>")


def test_services_answer_only_into_the_inboxes_of_the_services_they_talk_with() -> None:
    payloads = permissions_for("payloads").publish
    assert [s for s in payloads if s.startswith("_INBOX")] == [
        "_INBOX.gateway.>",
        "_INBOX.scheduler.>",
    ]
    gateway = permissions_for("gateway")
    assert gateway.subscribe == (
        "aorta.events.job.>",
        "aorta.events.payload.>",
        "aorta.events.pipeline.>",
        "_INBOX.gateway.>",
    )
    assert "_INBOX.gateway.>" not in gateway.publish
    assert "aorta.audit.>" in gateway.publish
    assert "aorta.events.job.>" in permissions_for("scheduler").publish


def test_the_generated_config_holds_every_user_with_its_permissions() -> None:
    config = authorization_config({"gateway": "secret-1", EVENTS_USER: "secret-2"})
    assert config.startswith("authorization {")
    assert 'user: "gateway"\n      password: "secret-1"' in config
    assert 'publish: { deny: [">"] }' in config
    assert '"aorta.rpc.scheduler.create"' in config
    assert config.count("user:") == 2


def test_the_deploy_config_reads_each_password_from_the_environment() -> None:
    config = deploy_authorization_config()
    for user in bus_users():
        variable = bus_permissions.password_variable(user)
        assert f"password: ${variable}\n" in config
        assert re.fullmatch(r"AORTA_NATS_PASSWORD_[A-Z]+", variable)
