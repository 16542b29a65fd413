"""Jobs RPCs at the gateway: all eight forward the Clara messages as they are to the scheduler.

The scheduler (any replica, queue group `scheduler`) parses and checks them and answers with
the response message, or with an `AortaError` that `rpc.py` turns into a negative header code.
List and ReadLogs are server streams, fed by bus streams.
"""

from __future__ import annotations

from aorta import subjects
from aorta.api import jobs_pb2

from .forward import GatewayContext
from .rpc import Handler

# The scheduler answers these (aorta.services.scheduler.app names the same subjects).
CREATE = subjects.rpc("scheduler", "create")
START = subjects.rpc("scheduler", "start")
STATUS = subjects.rpc("scheduler", "status")
LIST = subjects.rpc("scheduler", "list")
CANCEL = subjects.rpc("scheduler", "cancel")
READ_LOGS = subjects.rpc("scheduler", "read_logs")
ADD_METADATA = subjects.rpc("scheduler", "add_metadata")
REMOVE_METADATA = subjects.rpc("scheduler", "remove_metadata")


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Jobs RPC."""
    forward = gateway.forward
    return {
        "Create": forward.unary(CREATE, jobs_pb2.JobsCreateResponse),
        "Start": forward.unary(START, jobs_pb2.JobsStartResponse),
        "Status": forward.unary(STATUS, jobs_pb2.JobsStatusResponse),
        "List": forward.server_stream(LIST, jobs_pb2.JobsListResponse),
        "Cancel": forward.unary(CANCEL, jobs_pb2.JobsCancelResponse),
        "ReadLogs": forward.server_stream(READ_LOGS, jobs_pb2.JobsReadLogsResponse),
        "AddMetadata": forward.unary(ADD_METADATA, jobs_pb2.JobsAddMetadataResponse),
        "RemoveMetadata": forward.unary(REMOVE_METADATA, jobs_pb2.JobsRemoveMetadataResponse),
    }
