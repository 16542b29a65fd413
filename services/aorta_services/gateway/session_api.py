"""`aorta.v1.Session`: who the gateway takes the caller to be (any role may ask).

The web console asks it when a browser signs in, so it can show the user's name and role, and
a banner when the platform has no authentication, without reading the platform's secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

from aorta.api import aorta_session_pb2
from aorta.auth.principal import current_principal
from aorta_services.gateway.rpc import Context, Handler


def handlers(*, authentication: bool) -> Mapping[str, Handler]:
    """The `Session` service's handlers; `authentication` says whether the gateway
    authenticates callers (without, every caller is the anonymous admin)."""

    async def who_am_i(
        request: aorta_session_pb2.SessionWhoAmIRequest, context: Context
    ) -> aorta_session_pb2.SessionWhoAmIResponse:
        principal = current_principal()
        roles = sorted(principal.roles, key=lambda role: role.rank)
        return aorta_session_pb2.SessionWhoAmIResponse(
            authentication=authentication,
            subject=principal.subject,
            roles=[role.value for role in roles],
        )

    return {"WhoAmI": who_am_i}
