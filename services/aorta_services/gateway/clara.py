"""Clara service RPCs at the gateway, all answered by the monitor service.

Utilization is a bus stream: with `watch` it lasts until the gRPC client cancels, and the
cancellation closes the bus stream, which stops the monitor's producer. The bus's per-item
timeout (`AORTA_RPC_TIMEOUT`) must exceed the watch interval; the monitor refuses to start
otherwise.
"""

from __future__ import annotations

from aorta import subjects
from aorta.api import clara_pb2
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.rpc import Handler


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    forward = gateway.forward
    return {
        "Version": forward.unary(
            subjects.CLARA_VERSION, clara_pb2.ClaraVersionResponse, reads=True
        ),
        "Utilization": forward.server_stream(
            subjects.CLARA_UTILIZATION, clara_pb2.ClaraUtilizationResponse
        ),
        "Stop": forward.unary(subjects.CLARA_STOP, clara_pb2.ClaraStopResponse),
    }
