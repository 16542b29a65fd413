"""Clara.Utilization shows a `user` (alice, bob) the GPU processes of other users' jobs
without their job id or operator, asking the scheduler (here a stand-in on the bus) which jobs
are the caller's, once per answer and only then; a viewer, an admin and a caller without
authentication see every process as it is, and the scheduler is not asked for them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

from structlog.testing import capture_logs

from aorta import contracts, subjects
from aorta.api import clara_pb2
from aorta.auth.caller import caller_headers, caller_of
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.bus import Request
from aorta.bus.memory import MemoryBus
from aorta.gpu import GpuProcess, GpuSample, ProcessOwner
from aorta.ids import JobId
from aorta.runtime.service import ServiceContext
from aorta.testing.gpu import StandInProbe, StaticOwners
from aorta.timestamps import utcnow
from aorta_services.monitor import app
from aorta_services.monitor.app import RunningMonitor

ENVIRON = {"AORTA_MONITOR_INTERVAL": "0.1", "AORTA_NODE_ID": "node-a"}
ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("ada", frozenset({Role.ADMIN}))
ALICES = JobId("a" * 32)
BOBS = JobId("b" * 32)
OWNERS = {ALICES: "alice", BOBS: "bob"}
Shown = list[tuple[str, str]]


def gpus() -> list[GpuSample]:
    processes = (GpuProcess(1, None, "python3"), GpuProcess(2, None, "python3"))
    return [
        GpuSample(node_id="node-a", index=0, bus_id="00000000:3B:00.0", timestamp=utcnow()),
        GpuSample(
            node_id="node-a",
            index=1,
            bus_id="00000000:5E:00.0",
            timestamp=utcnow(),
            processes=(*processes, GpuProcess(3, None, "tritonserver")),
        ),
    ]


PROCESS_OWNERS = StaticOwners(
    {
        1: ProcessOwner(job_id=ALICES, operator="segmentation"),
        2: ProcessOwner(job_id=BOBS, operator="classification"),
    }
)
EVERY_PROCESS = [("segmentation", ALICES), ("classification", BOBS), ("tritonserver", "")]


@dataclass
class StandInScheduler:
    """Answers `SCHEDULER_READABLE_JOBS` by `OWNERS`; records each request's caller and jobs."""

    asked: list[tuple[Principal, tuple[str, ...]]] = field(default_factory=list)

    async def answer(self, request: Request) -> bytes:
        verb = contracts.SCHEDULER_READABLE_JOBS
        caller, asked = caller_of(request.headers), verb.decode_request(request.data).job_ids
        self.asked.append((caller, asked))
        readable = [job for job in asked if caller.is_admin or OWNERS[job] == caller.subject]
        return verb.encode_answer(contracts.JobIds(tuple(readable)))


@asynccontextmanager
async def monitor(context: ServiceContext, samples: list[GpuSample]) -> AsyncIterator[None]:
    running: RunningMonitor = await app.start(
        context, environ=ENVIRON, probe=StandInProbe(samples), owners=PROCESS_OWNERS
    )
    try:
        yield
    finally:
        await running.stop(2.0)


@asynccontextmanager
async def scheduler(client: MemoryBus) -> AsyncIterator[StandInScheduler]:
    stand_in = StandInScheduler()
    served = await client.serve(
        subjects.SCHEDULER_READABLE_JOBS, stand_in.answer, queue="scheduler"
    )
    try:
        yield stand_in
    finally:
        await served.drain()


async def utilization(
    client: MemoryBus, caller: Principal, *, watch: bool = False, messages: int = 1
) -> list[Shown]:
    """The processes of the second GPU of each of the first `messages` answers."""
    request = clara_pb2.ClaraUtilizationRequest(watch=watch).SerializeToString()
    shown: list[Shown] = []
    stream = client.request_stream(
        subjects.CLARA_UTILIZATION, request, headers=caller_headers(caller)
    )
    async with aclosing(stream):  # type: ignore[type-var]
        async for raw in stream:
            answer = clara_pb2.ClaraUtilizationResponse.FromString(raw)
            assert answer.header.code == 0
            assert len(answer.gpu_metrics) == 2
            processes = answer.gpu_metrics[1].process_details
            shown.append([(p.name, p.job_id.value) for p in processes])
            if len(shown) == messages:
                break
    return shown


async def test_a_user_sees_its_own_jobs_and_others_only_as_load(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, gpus()), scheduler(client) as stand_in:
        (alices,) = await utilization(client, ALICE)
        (bobs,) = await utilization(client, BOB)
    assert alices == [
        ("segmentation", ALICES),
        ("another user's job", ""),
        ("tritonserver", ""),
    ]
    assert bobs == [
        ("another user's job", ""),
        ("classification", BOBS),
        ("tritonserver", ""),
    ]
    assert stand_in.asked == [(ALICE, (ALICES, BOBS)), (BOB, (ALICES, BOBS))]


async def test_viewers_admins_and_callers_without_authentication_see_every_job(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, gpus()), scheduler(client) as stand_in:
        for caller in (VIEWER, ADMIN, ANONYMOUS):
            assert await utilization(client, caller) == [EVERY_PROCESS]
    assert stand_in.asked == []


async def test_every_message_of_a_watch_is_shown_as_the_user_may_see_it(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, gpus()), scheduler(client) as stand_in:
        shown = await utilization(client, BOB, watch=True, messages=4)
    assert (
        shown == [[("another user's job", ""), ("classification", BOBS), ("tritonserver", "")]] * 4
    )
    # A job's owner never changes: the stream asked about its jobs once.
    assert stand_in.asked == [(BOB, (ALICES, BOBS))]


async def test_without_jobs_on_the_gpus_the_scheduler_is_not_asked(
    context: ServiceContext, client: MemoryBus
) -> None:
    idle = [GpuSample(node_id="node-a", index=0, bus_id="00000000:3B:00.0", timestamp=utcnow())]
    async with monitor(context, idle), scheduler(client) as stand_in:
        request = clara_pb2.ClaraUtilizationRequest().SerializeToString()
        stream = client.request_stream(
            subjects.CLARA_UTILIZATION, request, headers=caller_headers(ALICE)
        )
        answers = [clara_pb2.ClaraUtilizationResponse.FromString(raw) async for raw in stream]
    assert [len(answer.gpu_metrics) for answer in answers] == [1]
    assert stand_in.asked == []


async def test_when_the_scheduler_cannot_say_a_user_sees_no_job_ids(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, gpus()):
        with capture_logs() as logs:
            (alices,) = await utilization(client, ALICE)
    assert alices == [
        ("another user's job", ""),
        ("another user's job", ""),
        ("tritonserver", ""),
    ]
    assert [e["jobs"] for e in logs if e["event"] == "monitor.job_owners_unknown"] == [2]
