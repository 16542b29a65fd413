"""The caller of a request as it travels across the bus (pure, no I/O).

The gateway authenticates each gRPC call once; the services that load the things a call acts
on check ownership. Between the two, the caller rides in one bus header (`CALLER_HEADER`) of
the requests the gateway sends, and `RunningService` binds it (`calling_as`) around each
handler, so a service reads it with `current_principal()` and one bus round trip both loads a
thing and checks who may touch it. The bus is closed to everyone but the platform's own
services, which is what lets a service trust the header.

A request without the header comes from the platform itself (a scheduler asking for a job's
payload, a leader's sweep) or from a gateway without authentication: its caller is
`ANONYMOUS`, as before authentication existed. A header that does not read is refused rather
than taken for `ANONYMOUS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aorta.auth.principal import ANONYMOUS, Principal, current_principal, parse_roles
from aorta.errors import Unauthenticated

CALLER_HEADER = "Aorta-Caller"
"""The bus header naming the caller: JSON `{"subject": ..., "roles": [...]}`, ASCII only."""


def caller_headers(principal: Principal | None = None) -> dict[str, str]:
    """The bus headers that carry `principal` (default: the current caller); none for
    `ANONYMOUS`, whom a header-less request means."""
    caller = current_principal() if principal is None else principal
    if caller == ANONYMOUS:
        return {}
    roles = sorted(role.value for role in caller.roles)
    # ensure_ascii: a header value must be ASCII, and a subject may be any text.
    return {CALLER_HEADER: json.dumps({"subject": caller.subject, "roles": roles})}


def caller_of(headers: Mapping[str, str]) -> Principal:
    """The caller a request's headers name (`ANONYMOUS` without the header); `Unauthenticated`
    when the header is malformed, so a broken header never grants an admin's rights."""
    value = headers.get(CALLER_HEADER)
    if value is None:
        return ANONYMOUS
    try:
        document = json.loads(value)
        subject, roles = document["subject"], document["roles"]
    except (ValueError, TypeError, KeyError):
        raise Unauthenticated("the request's caller header is malformed") from None
    if not isinstance(subject, str) or not isinstance(roles, list):
        raise Unauthenticated("the request's caller header is malformed")
    return Principal(subject=subject, roles=parse_roles(str(role) for role in roles))
