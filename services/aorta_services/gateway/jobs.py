"""Jobs RPCs at the gateway: all eight forward the Clara messages as they are to the scheduler.

The scheduler (any replica, queue group `scheduler`) parses and checks them, checks that the
caller owns the job where it must (`aorta.auth.ownership`), and answers with the response
message, or with an `AortaError` that `rpc.py` turns into a negative header code. Status comes
back with the job's owner, trace id and wait reasons, which the client gets as the initial
metadata `aorta-owner`, `aorta-trace-id` and `aorta-waiting` (`aorta.wait_reasons`). A
settled job's Status answer is kept at the gateway until the job changes (`answer_cache`),
and a kept answer goes only to a caller who may read the job (`check_reader`, as the
scheduler checks a fresh one);
the commands that change a job drop it, before and after they are forwarded, and a Delete
drops the kept Details of the payload it deleted with the job. List and
ReadLogs are server streams, fed by bus streams. Aorta's own `aorta.v1.Jobs` (Delete,
Timeline, Queue, Page) forwards the same way.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import Message

from aorta import contracts, subjects, wait_reasons
from aorta.api import aorta_jobs_pb2, jobs_pb2
from aorta.auth.ownership import check_reader
from aorta.observability import TRACE_ID_METADATA
from aorta_services.gateway.forward import GatewayContext, tell_owner
from aorta_services.gateway.kept_answers import canonical, changing
from aorta_services.gateway.rpc import Context, Handler, UnaryHandler


def _job(request: Any) -> str:
    return str(request.job_id.value)


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Jobs RPC."""
    forward = gateway.forward
    cache = gateway.kept.jobs

    async def status(
        request: jobs_pb2.JobsStatusRequest, context: Context
    ) -> jobs_pb2.JobsStatusResponse:
        job_id = request.job_id.value
        answer = cache.get(job_id)
        if answer is None:
            with cache.fetching(job_id) as fetch:
                answer = await forward.read(contracts.SCHEDULER_STATUS, request)
                if answer.settled and answer.status.job_id.value == job_id:
                    fetch.keep(answer)
        # Kept answers are shared by every caller: whoever asked first may not be this one.
        check_reader(answer.owner, f"job {answer.status.job_id.value or job_id}")
        trace = ((TRACE_ID_METADATA, answer.trace_id),) if answer.trace_id else ()
        waits = wait_reasons.to_metadata(json.loads(answer.waiting)) if answer.waiting else ()
        await tell_owner(context, answer.owner, (*trace, *waits))
        return answer.status

    return {
        "Create": forward.unary(subjects.SCHEDULER_CREATE, jobs_pb2.JobsCreateResponse),
        "Start": changing(
            forward.unary(subjects.SCHEDULER_START, jobs_pb2.JobsStartResponse), cache, _job
        ),
        "Status": status,
        "List": forward.passed_on(subjects.SCHEDULER_LIST, reads=True),
        "Cancel": changing(
            forward.unary(subjects.SCHEDULER_CANCEL, jobs_pb2.JobsCancelResponse), cache, _job
        ),
        "ReadLogs": forward.server_stream(
            subjects.SCHEDULER_READ_LOGS, jobs_pb2.JobsReadLogsResponse
        ),
        "AddMetadata": changing(
            forward.unary(subjects.SCHEDULER_ADD_METADATA, jobs_pb2.JobsAddMetadataResponse),
            cache,
            _job,
        ),
        "RemoveMetadata": changing(
            forward.unary(subjects.SCHEDULER_REMOVE_METADATA, jobs_pb2.JobsRemoveMetadataResponse),
            cache,
            _job,
        ),
    }


def aorta_handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Aorta's own `aorta.v1.Jobs` RPCs (protos/aorta/api/aorta_jobs.proto)."""
    return {
        "Delete": changing(
            _dropping_payload(
                gateway.forward.unary(subjects.SCHEDULER_DELETE, aorta_jobs_pb2.JobsDeleteResponse),
                gateway,
            ),
            gateway.kept.jobs,
            _job,
        ),
        "Timeline": gateway.forward.unary(
            subjects.SCHEDULER_TIMELINE, aorta_jobs_pb2.JobsTimelineResponse, reads=True
        ),
        "Page": gateway.forward.unary(
            subjects.SCHEDULER_PAGE, aorta_jobs_pb2.JobsPageResponse, reads=True
        ),
        "Queue": gateway.forward.server_stream(
            subjects.SCHEDULER_QUEUE, aorta_jobs_pb2.JobsQueueResponse, reads=True
        ),
    }


def _dropping_payload(handler: UnaryHandler, gateway: GatewayContext) -> UnaryHandler:
    """`handler` of a Delete, dropping the kept Details of the payload it deleted: its
    `deleted` event may reach this gateway after the client's next call."""

    async def deleted(request: Any, context: Context) -> Message:
        response = await handler(request, context)
        payload_id = getattr(response, "payload_id", None)
        if payload_id is not None and payload_id.value:
            gateway.kept.payloads.drop(canonical(payload_id.value))
        return response

    return deleted
