"""`aorta.v1.Services` answers each caller with what is its own: a `user` lists the pipeline
services its jobs used, with its own jobs only, and reads a service's log only when every job
that used it is its own; a viewer and an admin list everything, an admin reads every log.
Callers ride in the bus header the gateway sets, as for the Jobs verbs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aorta import subjects
from aorta.api import aorta_services_pb2, jobs_pb2
from aorta.auth.principal import Principal, Role
from aorta.errors import Forbidden
from aorta_services.scheduler.domain.service_access import HIDDEN_MESSAGE, LOG_LEFT_OUT
from aorta_services.scheduler.domain.services import service_log_key
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness
from tests.unit.scheduler.service_fakes import ServiceExecutor
from tests.unit.scheduler.test_service_pipeline_services import covid

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))

ALONE_PIPELINE = "fedcba9876543210fedcba9876543210"
BROKEN_PIPELINE = "00112233445566778899aabbccddeeff"
ROOMY = {"AORTA_SCHEDULER_CPUS": "16"}


async def listed(harness: Harness) -> dict[str, aorta_services_pb2.ServiceDetails]:
    """Services/List as the gateway forwards it: the services by name."""
    request = aorta_services_pb2.ServicesListRequest().SerializeToString()
    stream = harness.client.request_stream(
        subjects.SCHEDULER_SERVICES, request, headers=harness.headers
    )
    answers = [aorta_services_pb2.ServicesListResponse.FromString(item) async for item in stream]
    return {a.service.name: a.service for a in answers if a.HasField("service")}


async def read_logs(harness: Harness, service: str) -> list[str]:
    request = aorta_services_pb2.ServicesReadLogsRequest(service=service).SerializeToString()
    stream = harness.client.request_stream(
        subjects.SCHEDULER_SERVICE_LOGS, request, headers=harness.headers
    )
    answers = [aorta_services_pb2.ServicesReadLogsResponse.FromString(i) async for i in stream]
    return [line for answer in answers for line in answer.logs]


async def one_line(text: bytes) -> AsyncIterator[bytes]:
    yield text


def job_ids(details: aorta_services_pb2.ServiceDetails) -> set[str]:
    return {job.value for job in details.job_ids}


@pytest.fixture
async def shared(harness: Harness) -> dict[str, str]:
    """Alice's and Bob's jobs share the service `trtis`; Alice alone uses `alone`; Bob alone
    used `broken`, which failed. Their jobs hang, so they stay the services' users."""
    harness.peers.add_pipeline(PIPELINE_ID, "covid", {"c.yaml": covid()})
    alone = covid("[serve, --alone]").replace("name: trtis", "name: alone")
    harness.peers.add_pipeline(ALONE_PIPELINE, "alone", {"c.yaml": alone})
    broken = covid("[crash]").replace("name: trtis", "name: broken")
    harness.peers.add_pipeline(BROKEN_PIPELINE, "broken", {"c.yaml": broken})
    executor = ServiceExecutor(behaviours={"segment": Behaviour(hang=True)})
    executor.services.crash["broken"] = ("patient 1234 of bob",)
    replica = await harness.replica(ROOMY, executor=executor)
    jobs = {
        "alice": await harness.acting_as(ALICE).run("a"),
        "bob": await harness.acting_as(BOB).run("b"),
        "alice-alone": await harness.acting_as(ALICE).run("aa", pipeline_id=ALONE_PIPELINE),
    }
    for job_id in jobs.values():
        await harness.running(job_id, "segment")
    jobs["bob-broken"] = await harness.acting_as(BOB).run("bb", pipeline_id=BROKEN_PIPELINE)
    await harness.stopped(jobs["bob-broken"])
    by_name = {launch.name: launch.service_id for launch in executor.services.started}
    for service_id in by_name.values():
        await replica.context.blobs.put(service_log_key(service_id), one_line(b"a line\n"))
    return {**jobs, **by_name}


async def test_a_user_lists_the_services_of_its_own_jobs_with_its_own_jobs_only(
    harness: Harness, shared: dict[str, str]
) -> None:
    mine = await listed(harness.acting_as(ALICE))
    assert sorted(mine) == ["alone", "trtis"]
    assert job_ids(mine["trtis"]) == {shared["alice"]}
    assert job_ids(mine["alone"]) == {shared["alice-alone"]}
    bobs = await listed(harness.acting_as(BOB))
    assert sorted(bobs) == ["broken", "trtis"]
    assert job_ids(bobs["trtis"]) == {shared["bob"]}
    assert "patient 1234" in bobs["broken"].message


async def test_a_viewer_and_an_admin_list_every_service_with_every_job(
    harness: Harness, shared: dict[str, str]
) -> None:
    for caller in (VIEWER, ADMIN):
        every = await listed(harness.acting_as(caller))
        assert sorted(every) == ["alone", "broken", "trtis"]
        assert job_ids(every["trtis"]) == {shared["alice"], shared["bob"]}
        assert "patient 1234" in every["broken"].message


async def test_a_user_reads_only_the_logs_of_services_its_own_jobs_alone_used(
    harness: Harness, shared: dict[str, str]
) -> None:
    alice, bob = harness.acting_as(ALICE), harness.acting_as(BOB)
    assert await read_logs(alice, shared["alone"]) == ["a line"]
    assert await read_logs(alice, "ALONE") == ["a line"]
    assert await read_logs(bob, "broken") == ["a line"]
    with pytest.raises(Forbidden, match=f"service {shared['alone']} belongs to another user$"):
        await read_logs(bob, "alone")
    with pytest.raises(Forbidden, match=f"service {shared['broken']} belongs to another user$"):
        await read_logs(alice, shared["broken"])
    for caller in (alice, bob):
        with pytest.raises(Forbidden, match="shared with other jobs than yours") as refused:
            await read_logs(caller, "trtis")
        assert "alice" not in str(refused.value) and "bob" not in str(refused.value)
    admin = harness.acting_as(ADMIN)
    for service in ("trtis", "alone", "broken"):
        assert await read_logs(admin, service) == ["a line"]


async def test_a_failed_services_last_lines_are_hidden_from_users_who_may_not_read_its_log(
    harness: Harness, shared: dict[str, str]
) -> None:
    await harness.stopped(await harness.acting_as(ALICE).run("ab", pipeline_id=BROKEN_PIPELINE))
    for caller in (ALICE, BOB):
        assert (await listed(harness.acting_as(caller)))["broken"].message == HIDDEN_MESSAGE
    for caller in (VIEWER, ADMIN):
        assert "patient 1234" in (await listed(harness.acting_as(caller)))["broken"].message


def told(status: jobs_pb2.JobsStatusResponse) -> str:
    return "\n".join(status.messages)


async def test_a_faulted_job_is_told_a_failed_services_last_lines_only_if_its_owners_alone(
    harness: Harness, shared: dict[str, str]
) -> None:
    """Bob's job alone used `broken` when it failed first: bob's job is told its last lines.
    Alice's job fails on it next, after bob's used it: alice's job is told why, without them."""
    bobs = await harness.acting_as(BOB).owned_status(shared["bob-broken"])
    assert "patient 1234 of bob" in told(bobs.status)
    alices = await harness.acting_as(ALICE).run("ab", pipeline_id=BROKEN_PIPELINE)
    await harness.stopped(alices)
    for caller in (ALICE, VIEWER, ADMIN):
        status = (await harness.acting_as(caller).owned_status(alices)).status
        assert status.status == jobs_pb2.JOB_STATUS_FAULTED
        assert "patient 1234" not in told(status), told(status)
        assert "pipeline service broken exited" in told(status) and LOG_LEFT_OUT in told(status)
