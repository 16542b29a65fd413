"""Jobs through the gateway with the real local executor: real operator processes, outputs in
the blob store, logs, timeouts, cancel, failures, a scheduler restart mid-job, and a Create that
fails once the payload was made."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aorta.api import jobs_pb2, payloads_pb2, payloads_pb2_grpc
from aorta.errors import ErrorCode, Unavailable
from aorta.ids import JobId
from aorta.payload_layout import operator_output_prefix
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.repository import JobRepository
from tests.integration.scheduler.jobs_platform import Platform, ident, operator_definition

P = jobs_pb2


def alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


async def outputs(platform: Platform, payload_id: str, operator: str) -> dict[str, bytes]:
    prefix = operator_output_prefix(payload_id, operator, None)
    found = {}
    async for info in platform.context.blobs.list(prefix):
        data = b"".join([chunk async for chunk in platform.context.blobs.get(info.key)])
        found[info.key.removeprefix(prefix)] = data
    return found


async def test_a_chain_of_real_operators_runs_and_stores_its_outputs(platform: Platform) -> None:
    script, marks = platform.script()
    chain = {"reader": {}, "filter": {}, "writer": {}}
    pipeline_id = await platform.pipeline(operator_definition(script, marks, chain))
    job_id, payload_id = await platform.job(pipeline_id)
    await platform.upload(payload_id, "scan/a.dcm", b"a")
    await platform.upload(payload_id, "scan/b.dcm", b"b")
    await platform.start(job_id)
    status = await platform.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    assert [d.status for d in status.operator_details] == [P.JOB_OPERATOR_STATUS_COMPLETED] * 3
    assert await outputs(platform, payload_id, "reader") == {"reader.txt": b"reader read 2 files\n"}
    assert await outputs(platform, payload_id, "writer") == {"writer.txt": b"writer read 1 files\n"}
    logs = await platform.logs(job_id, "reader")
    assert "reader: read payload/a.dcm" in logs and logs[-1] == "reader: done"
    assert sorted(path.name for path in marks.glob("*.done")) == [
        "filter.done",
        "reader.done",
        "writer.done",
    ]


async def test_a_failing_operator_faults_the_job_with_its_exit_code_and_lines(
    platform: Platform,
) -> None:
    script, marks = platform.script()
    chain = {"reader": {}, "broken": {"EXIT": "3"}, "writer": {}}
    pipeline_id = await platform.pipeline(operator_definition(script, marks, chain))
    job_id, _ = await platform.job(pipeline_id)
    await platform.start(job_id)
    status = await platform.stopped(job_id)
    assert status.status == P.JOB_STATUS_FAULTED
    message = status.messages[0]
    assert "operator 'broken' failed with exit code 3" in message
    assert "broken: error: giving up with 3" in message
    assert not (marks / "writer.pid").exists()


async def test_an_operator_past_its_timeout_is_killed_and_faults_the_job(
    platform: Platform,
) -> None:
    script, marks = platform.script()
    definition = operator_definition(script, marks, {"sleeper": {"SLEEP": "60"}})
    definition = definition.replace("  requests:", "  timeout: 1\n  requests:")
    job_id, _ = await platform.job(await platform.pipeline(definition))
    await platform.start(job_id)
    status = await platform.stopped(job_id, within=45)
    assert status.status == P.JOB_STATUS_FAULTED
    assert "operator 'sleeper' timed out after 1 s" in status.messages[0]
    assert not alive(marks / "sleeper.pid")


async def test_cancel_terminates_the_running_operator(platform: Platform) -> None:
    script, marks = platform.script()
    definition = operator_definition(script, marks, {"sleeper": {"SLEEP": "60"}, "after": {}})
    job_id, payload_id = await platform.job(await platform.pipeline(definition))
    await platform.start(job_id)
    await platform.until(job_id, lambda s: (marks / "sleeper.pid").exists())
    canceled = await platform.jobs.Cancel(
        jobs_pb2.JobsCancelRequest(job_id=ident(job_id), reason="wrong patient")
    )
    assert (canceled.job_state, canceled.job_status) == (P.JOB_STATE_STOPPED, P.JOB_STATUS_CANCELED)
    status = await platform.until(
        job_id, lambda s: s.operator_details[0].status == P.JOB_OPERATOR_STATUS_FAULTED
    )
    assert status.messages[0] == "canceled: wrong patient"
    assert not alive(marks / "sleeper.pid")
    assert not (marks / "after.pid").exists()
    assert await outputs(platform, payload_id, "sleeper") == {}


async def test_a_restarted_scheduler_finishes_the_job_without_rerunning_completed_operators(
    platform: Platform,
) -> None:
    script, marks = platform.script()
    chain = {"first": {}, "slow": {"SLEEP": "3"}, "last": {}}
    job_id, payload_id = await platform.job(
        await platform.pipeline(operator_definition(script, marks, chain))
    )
    await platform.start(job_id)
    await platform.until(job_id, lambda s: (marks / "slow.pid").exists())
    first_pid = (marks / "slow.pid").read_text()
    await platform.scheduler.stop(1.0)
    assert not alive(marks / "slow.pid")
    await platform.start_scheduler()
    status = await platform.stopped(job_id)
    assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    assert (marks / "slow.pid").read_text() != first_pid
    assert sorted(path.name for path in marks.glob("*.done")) == [
        "first.done",
        "last.done",
        "slow.done",
    ]
    assert await outputs(platform, payload_id, "last") == {"last.txt": b"last read 1 files\n"}


async def test_refusals_reach_grpc_clients_in_the_response_header(platform: Platform) -> None:
    unknown = await platform.jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident("0" * 32)))
    assert unknown.header.code == -0x2001
    assert unknown.header.messages == [f"no job has id {'0' * 32}"]
    malformed = await platform.jobs.Cancel(jobs_pb2.JobsCancelRequest(job_id=ident("x")))
    assert malformed.header.code == -0x2000
    script, marks = platform.script()
    pipeline_id = await platform.pipeline(operator_definition(script, marks, {"only": {}}))
    bad_name = await platform.jobs.Create(
        jobs_pb2.JobsCreateRequest(pipeline_id=ident(pipeline_id), name="not valid!")
    )
    assert bad_name.header.code == -0x2100
    job_id, _ = await platform.job(pipeline_id)
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name="nobody")
    replies = [reply async for reply in platform.jobs.ReadLogs(request)]
    assert [reply.header.code for reply in replies] == [-0x2104]
    listed = [reply async for reply in platform.jobs.List(jobs_pb2.JobsListRequest())]
    assert [reply.job_details.job_id.value for reply in listed] == [job_id]


async def test_a_create_failing_after_its_payload_was_made_leaves_no_payload(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, marks = platform.script()
    pipeline_id = await platform.pipeline(operator_definition(script, marks, {"reader": {}}))
    payloads = payloads_pb2_grpc.PayloadsStub(platform.channel)
    created = await payloads.Create(payloads_pb2.PayloadsCreateRequest())
    reusable = created.payload_id.value
    await platform.upload(reusable, "scan.dcm", b"scan")
    modify = JobRepository.modify

    async def revealing_fails(
        self: JobRepository, job_id: JobId, change: Any, *, hidden: bool = False
    ) -> JobRecord:
        if hidden:
            raise Unavailable("the state store went away")
        return await modify(self, job_id, change, hidden=hidden)

    monkeypatch.setattr(JobRepository, "modify", revealing_fails)
    request = jobs_pb2.JobsCreateRequest(
        pipeline_id=ident(pipeline_id), name="job", input_payloads=[ident(reusable)]
    )
    response = await platform.jobs.Create(request)
    assert response.header.code == ErrorCode.SERVICE_UNAVAILABLE
    assert "the state store went away" in " ".join(response.header.messages)
    store, blobs = platform.context.store, platform.context.blobs
    assert [document["id"] for document in await store.collection("payloads").find({})] == [
        reusable
    ]
    assert [info.key async for info in blobs.list("payloads/")] == [
        f"payloads/{reusable}/input/scan.dcm"
    ]
    assert await store.collection("jobs").count() == 0
