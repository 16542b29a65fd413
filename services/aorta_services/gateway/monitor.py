"""node_monitor.Monitor RPCs at the gateway: GpuMetrics, one snapshot, from the monitor."""

from __future__ import annotations

from aorta import subjects
from aorta.api import node_monitor_pb2
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.rpc import Handler


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    forward = gateway.forward
    return {
        "GpuMetrics": forward.server_stream(
            subjects.MONITOR_GPU_METRICS, node_monitor_pb2.MonitorGpuMetricsResponse
        ),
    }
