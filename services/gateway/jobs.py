"""Jobs RPCs at the gateway."""

from __future__ import annotations

from .forward import GatewayContext
from .rpc import Handler


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    return {}
