"""`aorta.v1.Services` at the gateway (protos/aorta/api/aorta_services.proto): List and ReadLogs
forward as they are to the scheduler, which keeps the pipeline services' records and logs."""

from __future__ import annotations

from aorta import subjects
from aorta.api import aorta_services_pb2
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.rpc import Handler


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every `aorta.v1.Services` RPC."""
    return {
        "List": gateway.forward.server_stream(
            subjects.SCHEDULER_SERVICES, aorta_services_pb2.ServicesListResponse
        ),
        "ReadLogs": gateway.forward.server_stream(
            subjects.SCHEDULER_SERVICE_LOGS, aorta_services_pb2.ServicesReadLogsResponse
        ),
    }
