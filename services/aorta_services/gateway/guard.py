"""The gateway's door: who calls, whether their role allows the method, and the audit of it.

`rpc.py` asks the `Guard` to `admit` every call of a public method before it parses the
request. Admission authenticates the caller from the call's metadata (when an authenticator
is configured; otherwise the caller is `ANONYMOUS`), then checks the role the method needs
(`aorta.auth.policy`). A refusal is recorded in the audit log and answered with gRPC
UNAUTHENTICATED or PERMISSION_DENIED. An admitted call comes back as a `Call`, which records
what the audit log wants of it (`aorta_services.gateway.audit_record`): a mutating call is
recorded before it proceeds, and refused with UNAVAILABLE when that record cannot be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeAlias

import grpc
from google.protobuf.message import Message

from aorta.auth.policy import required_role
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.errors import Forbidden, Unauthenticated, Unavailable
from aorta.ids import new_id
from aorta.logger import get_logger
from aorta_services.gateway.audit import AuditTrail
from aorta_services.gateway.audit_record import STARTED, AuditKind, audit_kind, method_label
from aorta_services.gateway.audit_record import resource_ids as ids_of

log = get_logger(__name__)

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class Authenticates(Protocol):
    """Who is calling, from a call's metadata (`aorta.auth.authenticator.Authenticator`)."""

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The caller; raises `Unauthenticated` (with a message that never repeats the
        credentials) when there are none or they do not check out, `Forbidden` when they
        hold no role, `Unavailable` when they cannot be checked now."""
        ...


Refusal: TypeAlias = Forbidden | Unauthenticated | Unavailable
"""Why a call is not served: the caller is unknown, may not, or cannot be checked now."""


def refusal_status(error: Refusal) -> grpc.StatusCode:
    """The gRPC status a refusal is answered with."""
    if isinstance(error, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(error, Forbidden):
        return grpc.StatusCode.PERMISSION_DENIED
    return grpc.StatusCode.UNAVAILABLE


def role_refusal(method: str, principal: Principal, needed: Role) -> Forbidden:
    """ "Jobs.Cancel needs the role user; you (alice) have viewer"."""
    held = sorted(principal.roles, key=lambda role: role.rank)
    roles = ", ".join(role.value for role in held) if held else "no role"
    return Forbidden(
        f"{method_label(method)} needs the role {needed.value}; "
        f"you ({principal.subject or 'anonymous'}) have {roles}"
    )


@dataclass(frozen=True)
class Guard:
    """Admission and audit for every public method; with neither an authenticator nor an
    audit trail (the default) it admits everyone as `ANONYMOUS` and records nothing."""

    authenticator: Authenticates | None = None
    audit: AuditTrail | None = None

    async def admit(
        self,
        method: str,
        context: Context,
        request_id: str,
        peek: Callable[[], Message | None] | None = None,
    ) -> Call:
        """The admitted call of `method`, or (recorded, then) an abort with UNAUTHENTICATED,
        PERMISSION_DENIED or UNAVAILABLE (when the credentials cannot be checked now).

        `peek` parses the request (None when it does not parse) for the ids a refusal's
        record names; it is called only for a refusal, so admitted calls parse once.
        """
        call = Call(self.audit, method, ANONYMOUS, _peer(context), request_id, context)
        refusal: Refusal | None = None
        if self.authenticator is not None:
            try:
                principal = await self.authenticator.authenticate(
                    context.invocation_metadata() or ()
                )
            except (Unauthenticated, Forbidden, Unavailable) as exc:
                refusal = exc
            except Exception:
                # A bug in checking credentials must neither leak its traceback to the caller
                # nor let the call through.
                log.exception("auth.crashed", method=method)
                refusal = Unavailable(
                    f"the platform cannot check credentials now (request id {request_id})"
                )
            else:
                call = Call(self.audit, method, principal, call.client, request_id, context)
        needed = required_role(method)
        if refusal is None and not call.principal.may(needed):
            refusal = role_refusal(method, call.principal, needed)
        if refusal is not None:
            if peek is not None:
                call.resources = ids_of(peek())
            await call.refuse(refusal)
        return call


def _peer(context: Context) -> str:
    try:
        return str(context.peer() or "")
    except RuntimeError:
        return ""


@dataclass
class Call:
    """One admitted call: its caller, and its entries in the audit log."""

    trail: AuditTrail | None
    method: str
    principal: Principal
    client: str
    request_id: str
    context: Context
    kind: AuditKind = field(init=False)
    call_id: str = field(default_factory=new_id, init=False)
    resources: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.kind = audit_kind(self.method)

    async def began(self, request: Message | None) -> None:
        """Notes the ids `request` names; a mutating call is recorded as `started` now, and
        aborted with UNAVAILABLE when that record cannot be written."""
        if self.kind is AuditKind.UNRECORDED or self.trail is None:
            return
        self.resources = ids_of(request)
        if self.kind is AuditKind.MUTATION:
            try:
                await self._append(STARTED)
            except Unavailable as exc:
                await self.context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    async def ended(self, result: str, response: Message | None = None) -> None:
        """Records the outcome of a mutating call or a sensitive read (ids named by the
        response, such as a created job's, added); too late to refuse, so a failed write is
        logged (by the trail) and swallowed."""
        if self.kind is AuditKind.UNRECORDED or self.trail is None:
            return
        self.resources = {**self.resources, **ids_of(response)}
        try:
            await self._append(result)
        except Unavailable:
            log.error("audit.outcome_lost", method=self.method, result=result)

    async def refuse(self, error: Refusal) -> NoReturn:
        """Records the refusal (whatever the method) and aborts the call with its status."""
        status = refusal_status(error)
        message = "; ".join(error.messages)
        log.info("rpc.refused", status=status.name, messages=list(error.messages))
        if self.trail is not None:
            try:
                await self._append(status.name)
            except Unavailable:
                log.error("audit.refusal_lost", method=self.method)
        await self.context.abort(status, message)
        raise AssertionError("abort always raises")

    async def _append(self, result: str) -> None:
        assert self.trail is not None
        await self.trail.append(
            subject=self.principal.subject,
            client=self.client,
            method=self.method,
            result=result,
            request_id=self.request_id,
            call_id=self.call_id,
            resources=self.resources,
        )


def outcome(response: Message) -> str:
    """`ok`, or the negative Clara header code a response carries."""
    header = getattr(response, "header", None)
    code = int(getattr(header, "code", 0))
    return str(code) if code < 0 else "ok"


def aborted_result(context: Context) -> str:
    """The gRPC status name of a call its handler aborted."""
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "ABORTED"
