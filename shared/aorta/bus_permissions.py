"""Who may say what on the bus: each service's subjects, as NATS user permissions (pure).

Every service connects as its own NATS user, named after the service. It may subscribe only to
the verbs it serves, the plain subjects it listens to and its own inboxes, and publish only the
requests it makes, the plain messages and events it emits, and replies into the inboxes of the
services it talks with. Inboxes are per user (`_INBOX.<user>.`, the prefix its client must
use), so no service can read another's answers. The server enforces all of it: a request
outside a user's permissions never reaches a service.

The `events` user is for integrations: it may subscribe to `aorta.events.>` and
`aorta.audit.>` and publish nothing. It gets no JetStream API: nats-server does not check a
push consumer's deliver subject against its creator's permissions (nor the reply subject a
pull request names), so a user allowed to make consumers could have stored events delivered
onto any subject, a service's verbs included. It reads events live, as they are published.

Which service serves a verb follows from its subject (`aorta.rpc.<service>.<verb>`, Clara's
own verbs by the monitor); what each service calls, emits and listens to is declared here, and
tests/unit/bus/test_permissions.py checks it against the services' code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aorta import subjects

EVENTS_USER = "events"
"""The read-only user of integrations: events and audit records, nothing else."""

JS_API = "$JS.API"

EVENTS_PREFIX = "aorta.events"
"""Where events are published (`aorta.bus.events`)."""

EVENTS_STREAM = "AORTA_EVENTS"
"""The JetStream stream that stores them (`aorta.bus.nats_events`)."""

SCHEDULER_WAKE = "aorta.scheduler.wake"
"""The scheduler replicas' nudge to look at the queue again (`aorta_services.scheduler.app`)."""

_RPC_OWNERS = {"clara": "monitor"}
"""The services whose verbs are published under another name than their own."""


def rpc_subjects() -> tuple[str, ...]:
    """Every verb subject `aorta.subjects` declares, sorted."""
    declared = (getattr(subjects, name) for name in dir(subjects) if name.isupper())
    rpc = {value for value in declared if isinstance(value, str)}
    return tuple(sorted(s for s in rpc if s.startswith(subjects.RPC_PREFIX + ".")))


def serving_service(subject: str) -> str:
    """The service that answers verb `subject` (`aorta.rpc.<service>.<verb>`)."""
    token = subject.removeprefix(subjects.RPC_PREFIX + ".").split(".", 1)[0]
    return _RPC_OWNERS.get(token, token)


@dataclass(frozen=True)
class ServiceAccess:
    """What one service does on the bus besides serving its verbs.

    `calls`: the verbs it requests; `publishes` and `listens`: plain (core) subjects it sends
    and receives; `emits_events`: whether it publishes events on the JetStream stream (`events`,
    the entity kinds under `aorta.events.`); `audits`: whether it publishes audit records.
    """

    calls: frozenset[str] = frozenset()
    publishes: frozenset[str] = frozenset()
    listens: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    audits: bool = False


_GATEWAY_CALLS = frozenset(
    {
        subjects.CLARA_VERSION,
        subjects.CLARA_UTILIZATION,
        subjects.CLARA_STOP,
        subjects.MONITOR_GPU_METRICS,
        subjects.PIPELINES_CREATE,
        subjects.PIPELINES_UPDATE,
        subjects.PIPELINES_DETAILS,
        subjects.PIPELINES_LIST,
        subjects.PIPELINES_REMOVE,
        subjects.PIPELINES_ADD_METADATA,
        subjects.PIPELINES_REMOVE_METADATA,
        subjects.PAYLOADS_CREATE,
        subjects.PAYLOADS_DELETE,
        subjects.PAYLOADS_DETAILS,
        subjects.PAYLOADS_REMOVE,
        subjects.PAYLOADS_ADD_METADATA,
        subjects.PAYLOADS_REMOVE_METADATA,
        subjects.PAYLOADS_CHECK_UPLOAD,
        subjects.PAYLOADS_FILE_ADDED,
        subjects.PAYLOADS_LOCATE,
        subjects.SCHEDULER_CREATE,
        subjects.SCHEDULER_START,
        subjects.SCHEDULER_STATUS,
        subjects.SCHEDULER_LIST,
        subjects.SCHEDULER_CANCEL,
        subjects.SCHEDULER_READ_LOGS,
        subjects.SCHEDULER_ADD_METADATA,
        subjects.SCHEDULER_REMOVE_METADATA,
        subjects.SCHEDULER_DELETE,
        subjects.SCHEDULER_TIMELINE,
        subjects.SCHEDULER_PAGE,
        subjects.SCHEDULER_QUEUE,
        subjects.SCHEDULER_SERVICES,
        subjects.SCHEDULER_SERVICE_LOGS,
        subjects.MODELS_UPLOAD,
        subjects.MODELS_DOWNLOAD,
        subjects.MODELS_LIST,
        subjects.MODELS_DELETE,
        subjects.MODELS_ADD_METADATA,
        subjects.MODELS_REMOVE_METADATA,
        subjects.MODELS_CREATE_CATALOG,
        subjects.MODELS_DELETE_CATALOG,
        subjects.MODELS_LIST_CATALOGS,
        subjects.MODELS_READ_CATALOG,
        subjects.MODELS_UPDATE_CATALOG,
        subjects.MODELS_CREATE_INSTANCE,
        subjects.MODELS_DELETE_INSTANCE,
        subjects.MODELS_LIST_INSTANCES,
        subjects.MODELS_READ_INSTANCE,
        subjects.MODELS_UPDATE_INSTANCE,
    }
)

SERVICE_ACCESS: dict[str, ServiceAccess] = {
    "pipelines": ServiceAccess(events=frozenset({"pipeline"})),
    "payloads": ServiceAccess(events=frozenset({"payload"})),
    "models": ServiceAccess(events=frozenset({"model"})),
    "scheduler": ServiceAccess(
        calls=frozenset(
            {
                subjects.PIPELINES_SNAPSHOT,
                subjects.PAYLOADS_CREATE_FOR_JOB,
                subjects.PAYLOADS_DISCARD_FOR_JOB,
                subjects.PAYLOADS_DELETE_FOR_JOB,
                subjects.PAYLOADS_LOCK,
                subjects.PAYLOADS_RELEASE,
                subjects.MODELS_ACQUIRE_TRITON,
                subjects.MODELS_RELEASE_TRITON,
                # A replica asks the leader for a live run's log lines.
                subjects.SCHEDULER_LEADER_LOGS,
            }
        ),
        publishes=frozenset({SCHEDULER_WAKE}),
        listens=frozenset({SCHEDULER_WAKE}),
        # Jobs, and the pipeline services the leader starts and stops for them.
        events=frozenset({"job", "service"}),
    ),
    "monitor": ServiceAccess(
        calls=frozenset(
            {
                subjects.SCHEDULER_PLATFORM_STOP,
                subjects.MODELS_PLATFORM_STOP,
                # Which jobs named in a user's Clara.Utilization answer are its own.
                subjects.SCHEDULER_READABLE_JOBS,
            }
        ),
        publishes=frozenset({subjects.GPU_SAMPLES}),
        listens=frozenset({subjects.GPU_SAMPLES}),
    ),
    # The gateway keeps settled Jobs.Status and Details answers until the thing's next event.
    "gateway": ServiceAccess(
        calls=_GATEWAY_CALLS,
        listens=frozenset(
            f"{EVENTS_PREFIX}.{entity}.>" for entity in ("job", "payload", "pipeline")
        ),
        audits=True,
    ),
}
"""Every service of the platform by name (the names of `aorta_services.launch.registry`)."""


@dataclass(frozen=True)
class Permissions:
    """A NATS user's allow lists. An empty `publish` list means the user may publish nothing."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(user: str) -> str:
    """The inbox prefix `user`'s client must use: only that user may subscribe below it."""
    return f"_INBOX.{user}"


def bus_users() -> tuple[str, ...]:
    """Every NATS user of the platform: one per service, then the events user."""
    return (*SERVICE_ACCESS, EVENTS_USER)


def served(service: str) -> tuple[str, ...]:
    """The verbs `service` answers."""
    return tuple(s for s in rpc_subjects() if serving_service(s) == service)


def peers(service: str) -> tuple[str, ...]:
    """The services `service` exchanges requests with, either way, itself included when it
    calls its own verbs: it publishes into their inboxes (answers, or a stream's credit)."""
    mine = set(served(service))
    found = {serving_service(subject) for subject in SERVICE_ACCESS[service].calls}
    found |= {name for name, access in SERVICE_ACCESS.items() if access.calls & mine}
    return tuple(sorted(found))


def permissions_for(user: str) -> Permissions:
    """The permissions of `user` (a service name or `EVENTS_USER`); KeyError for others."""
    if user == EVENTS_USER:
        return Permissions(
            publish=(), subscribe=(f"{EVENTS_PREFIX}.>", f"{subjects.AUDIT_PREFIX}.>")
        )
    access = SERVICE_ACCESS[user]
    publish = [*sorted(access.calls), *sorted(access.publishes)]
    publish += [f"{inbox_prefix(peer)}.>" for peer in peers(user)]
    # Every client makes sure the event stream exists when it connects.
    stream = EVENTS_STREAM
    publish += [f"{JS_API}.STREAM.INFO.{stream}", f"{JS_API}.STREAM.CREATE.{stream}"]
    publish += [f"{EVENTS_PREFIX}.{kind}.>" for kind in sorted(access.events)]
    if access.audits:
        publish.append(f"{subjects.AUDIT_PREFIX}.>")
    subscribe = [*served(user), *sorted(access.listens), f"{inbox_prefix(user)}.>"]
    return Permissions(publish=_unique(publish), subscribe=_unique(subscribe))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def password_variable(user: str) -> str:
    """The environment variable that holds `user`'s password where nats-server reads its
    passwords from the environment (deploy/: a Secret)."""
    return f"AORTA_NATS_PASSWORD_{user.upper()}"


def authorization_config(passwords: Mapping[str, str]) -> str:
    """nats-server's `authorization` block for `passwords` (user -> password), each user with
    its `permissions_for`. The text holds the passwords: write it where only the server reads."""
    return _authorization({user: json.dumps(password) for user, password in passwords.items()})


def deploy_authorization_config() -> str:
    """The `authorization` block of deploy/: every user of `bus_users`, its password read from
    the environment variable `password_variable(user)`."""
    return _authorization({user: f"${password_variable(user)}" for user in bus_users()})


def _authorization(passwords: Mapping[str, str]) -> str:
    lines = ["authorization {", "  users = ["]
    for user, password in passwords.items():
        permissions = permissions_for(user)
        publish = (
            f"{{ allow: {_list(permissions.publish)} }}"
            if permissions.publish
            else '{ deny: [">"] }'
        )
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: {password}",
            "      permissions: {",
            f"        publish: {publish}",
            f"        subscribe: {{ allow: {_list(permissions.subscribe)} }}",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _list(subjects_: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(subject) for subject in subjects_) + "]"
