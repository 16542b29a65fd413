"""What the audit log records about a call, and which calls it records (pure, no I/O).

Three kinds of call leave a trace: every mutating call (anything a viewer may not do, per
`aorta.auth.policy`), every read of bytes a viewer may not see (payload and model bytes, job
logs, the audit log itself), and every refused call, whatever its method. Viewer reads that
succeed (lists, status, details) are not recorded, so they cost no store round trip.

A mutating call is recorded twice under one `call_id` (and its request id): `started` before
it proceeds, then its outcome; a read or a refusal once, after the fact.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from aorta.auth.policy import required_role
from aorta.auth.principal import Role
from aorta.errors import Invalid
from aorta.ids import canonical_id

_CLARA = "nvidia.clara.platform"

SENSITIVE_READS = frozenset(
    {
        f"{_CLARA}.Payloads/Download",
        "aorta.v1.Payloads/DirectDownload",
        f"{_CLARA}.Models/DownloadModel",
        f"{_CLARA}.Jobs/ReadLogs",
        "aorta.v1.Services/ReadLogs",
        "aorta.v1.Audit/List",
    }
)
"""Methods that change nothing but hand out what a viewer may not read."""

_NAMING_FIELDS = frozenset({"service"})
"""String fields that name the thing a request acts on without ending in `_id`
(`aorta.v1.Services/ReadLogs` takes a service's id or its name)."""

_MAX_RECORDED = 128
"""Characters kept of an id that is not one of the platform's."""

STARTED = "started"
OK = "ok"


class AuditKind(enum.Enum):
    """How a method's successful calls are recorded."""

    MUTATION = "mutation"
    """Recorded before it proceeds (the call fails when that record cannot be written), and
    again with its outcome."""
    READ = "read"
    """Recorded once, with its outcome."""
    UNRECORDED = "unrecorded"
    """A viewer's read: recorded only when refused."""


def audit_kind(method: str) -> AuditKind:
    """How calls of `method` (`package.Service/Method`) are recorded."""
    if method in SENSITIVE_READS:
        return AuditKind.READ
    if required_role(method) is Role.VIEWER:
        return AuditKind.UNRECORDED
    return AuditKind.MUTATION


def resource_ids(message: Message | None) -> dict[str, str]:
    """The ids a message names, by field name: every top-level `Identifier` field (or string
    field) whose name ends in `_id` or is one of `_NAMING_FIELDS`, and repeated `Identifier`
    fields joined by commas (`input_payloads`, `model_ids`). Ids are in their canonical form
    when they have one (a dashed UUID is recorded as the platform spells it, so filters find
    it); empty ids are left out."""
    if message is None:
        return {}
    found: dict[str, str] = {}
    for descriptor, value in message.ListFields():
        text = _id_text(descriptor, value)
        if text:
            found[descriptor.name] = text
    return found


def _id_text(descriptor: FieldDescriptor, value: Any) -> str:
    message_type = descriptor.message_type
    is_identifier = message_type is not None and message_type.name == "Identifier"
    if descriptor.is_repeated:
        if is_identifier:
            return ",".join(_canonical(item.value) for item in value if item.value)
        return ""
    if not descriptor.name.endswith("_id") and descriptor.name not in _NAMING_FIELDS:
        return ""
    if is_identifier:
        return _canonical(str(value.value))
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        return _canonical(str(value))
    return ""


def _canonical(text: str) -> str:
    try:
        return canonical_id(text, what="audited")
    except Invalid:
        # Recorded as sent, so the record of a refused or failed call names what was asked for;
        # cut short and without NUL, so no id a client makes up can keep its record out.
        return text[:_MAX_RECORDED].replace("\x00", "")


def method_label(method: str) -> str:
    """`Service.Method` for `package.Service/Method`: how messages name a method."""
    service, _, name = method.partition("/")
    return f"{service.rsplit('.', 1)[-1]}.{name}"


def event_tokens(method: str) -> tuple[str, str]:
    """The service and method tokens of a method's audit subject (lower case, one token
    each): `aorta.audit.jobs.cancel` for `nvidia.clara.platform.Jobs/Cancel`."""
    service, _, name = method_label(method).partition(".")
    return service.lower(), name.lower()


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log, as stored (append-only) and published."""

    id: str
    time: str
    """RFC 3339 UTC with microseconds (`aorta.timestamps.to_iso`), so it sorts as time."""
    subject: str
    """Who called; "" for an anonymous caller (authentication off, or no credentials)."""
    client: str
    """The client's address as gRPC reports it (`ipv4:10.0.0.7:51234`)."""
    method: str
    """`package.Service/Method`."""
    result: str
    """`started`, `ok`, a negative Clara header code (`-8193`) or a gRPC status name
    (`PERMISSION_DENIED`)."""
    request_id: str
    call_id: str
    """The same for both records of one mutating call."""
    resources: Mapping[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The JSON document stored and published."""
        document = asdict(self)
        document["resources"] = dict(self.resources)
        return document

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> AuditRecord:
        """The record a stored document holds (store-managed fields ignored)."""
        resources = document.get("resources") or {}
        return AuditRecord(
            id=str(document["id"]),
            time=str(document.get("time", "")),
            subject=str(document.get("subject", "")),
            client=str(document.get("client", "")),
            method=str(document.get("method", "")),
            result=str(document.get("result", "")),
            request_id=str(document.get("request_id", "")),
            call_id=str(document.get("call_id", "")),
            resources={str(k): str(v) for k, v in dict(resources).items()},
        )
