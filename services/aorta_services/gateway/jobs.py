"""Jobs RPCs at the gateway: all eight forward the Clara messages as they are to the scheduler.

The scheduler (any replica, queue group `scheduler`) parses and checks them and answers with
the response message, or with an `AortaError` that `rpc.py` turns into a negative header code.
List and ReadLogs are server streams, fed by bus streams.
"""

from __future__ import annotations

from aorta import subjects
from aorta.api import jobs_pb2
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.rpc import Handler


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Jobs RPC."""
    forward = gateway.forward
    return {
        "Create": forward.unary(subjects.SCHEDULER_CREATE, jobs_pb2.JobsCreateResponse),
        "Start": forward.unary(subjects.SCHEDULER_START, jobs_pb2.JobsStartResponse),
        "Status": forward.unary(subjects.SCHEDULER_STATUS, jobs_pb2.JobsStatusResponse),
        "List": forward.server_stream(subjects.SCHEDULER_LIST, jobs_pb2.JobsListResponse),
        "Cancel": forward.unary(subjects.SCHEDULER_CANCEL, jobs_pb2.JobsCancelResponse),
        "ReadLogs": forward.server_stream(
            subjects.SCHEDULER_READ_LOGS, jobs_pb2.JobsReadLogsResponse
        ),
        "AddMetadata": forward.unary(
            subjects.SCHEDULER_ADD_METADATA, jobs_pb2.JobsAddMetadataResponse
        ),
        "RemoveMetadata": forward.unary(
            subjects.SCHEDULER_REMOVE_METADATA, jobs_pb2.JobsRemoveMetadataResponse
        ),
    }
