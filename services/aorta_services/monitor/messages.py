"""Clara messages in and out of the monitor: requests parsed from the bus, and GPU samples as
`Clara.Utilization` and `node_monitor.Monitor.GpuMetrics` responses.

Units on the wire: utilizations are fractions 0..1 in both; `GpuUtilization.memory_free` and
`memory_used` are MB (MiB, rounded down) as Clara documents; `GpuMetrics` memory and BAR1 figures
are bytes, as NVML gives them (Clara left them undocumented). A value the GPU did not report is
sent as 0. Timestamps are Clara seconds (since 0001-01-01, UTC). Every message carries a header.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from aorta.api import clara_pb2, common_pb2, node_monitor_pb2
from aorta.auth.ownership import OTHER_USERS_JOB
from aorta.bus import Request
from aorta.errors import Invalid
from aorta.gpu import GpuProcess, GpuSample, NodeSample
from aorta.ids import JobId
from aorta.timestamps import to_clara_seconds

GpuUtilization = clara_pb2.ClaraUtilizationResponse.GpuUtilization
ProcessDetails = GpuUtilization.ProcessDetails
GpuMetrics = node_monitor_pb2.GpuDetails.GpuMetrics

M = TypeVar("M", bound=Message)


def parse_request(message_class: type[M], request: Request) -> M:
    """The Clara request a bus request carries; `Invalid` when it is not one."""
    try:
        return message_class.FromString(request.data)
    except DecodeError:
        raise Invalid(
            f"{request.subject}: the request is not a {message_class.DESCRIPTOR.full_name}"
        ) from None


def utilization_response(
    nodes: Iterable[NodeSample], shown: Collection[JobId] | None = None
) -> clara_pb2.ClaraUtilizationResponse:
    """Every GPU of `nodes`, in their order, then by device index. With `shown`, the
    processes of the other jobs read as another user's (`job_privacy`); None shows every
    job."""
    return clara_pb2.ClaraUtilizationResponse(
        header=common_pb2.ResponseHeader(),
        gpu_metrics=[gpu_utilization(gpu, shown) for node in nodes for gpu in node.gpus],
    )


def gpu_utilization(
    gpu: GpuSample, shown: Collection[JobId] | None = None
) -> clara_pb2.ClaraUtilizationResponse.GpuUtilization:
    return GpuUtilization(
        node_id=gpu.node_id,
        pcie_id=gpu.pcie_id,
        compute_utilization=gpu.compute_utilization or 0.0,
        memory_free=gpu.memory_free_mb,
        memory_used=gpu.memory_used_mb,
        memory_utilization=gpu.memory_utilization or 0.0,
        timestamp=common_pb2.Timestamp(value=to_clara_seconds(gpu.timestamp)),
        process_details=[process_details(process, shown) for process in gpu.processes],
    )


def process_details(
    process: GpuProcess, shown: Collection[JobId] | None = None
) -> clara_pb2.ClaraUtilizationResponse.GpuUtilization.ProcessDetails:
    """A job's process is named after its operator and carries the job id (Clara's rule),
    unless `shown` leaves its job out: it is then `OTHER_USERS_JOB`, without either. Any
    other process is named after its executable (`pid N` when even that is unknown)."""
    if process.owner is not None:
        if shown is not None and process.owner.job_id not in shown:
            return ProcessDetails(name=OTHER_USERS_JOB)
        return ProcessDetails(
            name=process.owner.operator,
            job_id=common_pb2.Identifier(value=process.owner.job_id),
        )
    return ProcessDetails(name=process.name or f"pid {process.pid}")


def gpu_metrics_response(nodes: Iterable[NodeSample]) -> node_monitor_pb2.MonitorGpuMetricsResponse:
    """Every GPU of `nodes`; `device_id` is the GPU's index on its own node."""
    return node_monitor_pb2.MonitorGpuMetricsResponse(
        header=common_pb2.ResponseHeader(),
        gpu_details=[gpu_details(gpu) for node in nodes for gpu in node.gpus],
    )


def gpu_details(gpu: GpuSample) -> node_monitor_pb2.GpuDetails:
    return node_monitor_pb2.GpuDetails(
        device_id=gpu.index,
        data=GpuMetrics(
            memory_utilization=gpu.memory_utilization or 0.0,
            gpu_utilization=gpu.compute_utilization or 0.0,
            free_bar_1=gpu.bar1_free or 0,
            used_bar_1=gpu.bar1_used or 0,
            free_gpu_memory=gpu.memory_free or 0,
            used_gpu_memory=gpu.memory_used or 0,
        ),
        timestamp=common_pb2.Timestamp(value=to_clara_seconds(gpu.timestamp)),
    )
