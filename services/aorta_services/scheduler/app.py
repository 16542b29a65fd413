"""Composition root of the scheduler service: any number of replicas, one leader.

Every replica serves the Jobs verbs in the `scheduler` queue group (their state lives in the
store) and listens for nudges on `WAKE`; the replica holding the lease (`lease`) also runs the
`Engine`, which admits jobs and runs operators through the executor, serves the live logs
of its runs on `SCHEDULER_LEADER_LOGS` and sweeps by the retention policy (`retention`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from aorta import contracts, subjects
from aorta.bus import Bus, Subscription
from aorta.bus.verbs import streaming
from aorta.errors import AortaError, NotFound
from aorta.executors import Executor
from aorta.executors.platform_folders import PlatformFolder
from aorta.executors.selection import KUBERNETES, choose_executor
from aorta.executors.services import ServiceHost
from aorta.gpu import gpu_count
from aorta.ids import JobId, PipelineId, new_id
from aorta.logger import get_logger
from aorta.outbox import Outbox
from aorta.runtime.service import RunningService, ServiceContext
from aorta_services.scheduler.deletion import JobDeletion
from aorta_services.scheduler.engine import Engine
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.handlers import JobCommands
from aorta_services.scheduler.job_logs import LEADER_QUEUE, OperatorLogs
from aorta_services.scheduler.job_metrics import JobGauges
from aorta_services.scheduler.lease import Leadership, Lease, Led
from aorta_services.scheduler.operator_runs import EngineParts
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.pipeline_services import ServiceParts, stop_all
from aorta_services.scheduler.queries import JobQueries
from aorta_services.scheduler.queue_view import JobQueueView
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.retention import RetentionSweeper
from aorta_services.scheduler.retention_settings import RetentionSettings
from aorta_services.scheduler.service_queries import ServiceQueries
from aorta_services.scheduler.service_records import ServiceRepository
from aorta_services.scheduler.service_settings import ServiceSettings
from aorta_services.scheduler.settings import NodeFacts, SchedulerSettings
from aorta_services.scheduler.start_handoff import StartHandoff

log = get_logger(__name__)

WAKE = "aorta.scheduler.wake"
"""Core pub/sub, empty body: a replica changed a job; the leader re-reads the store now."""


class RunningScheduler(RunningService):
    """A started replica. `stop` stops answering, stops leading (runs are left to the
    executor: local processes stop and a restart re-runs them; pods keep running and a restart
    adopts them), then closes the executor. Bounded by the bus's drain timeout and the
    executor's close grace."""

    def __init__(self, bus: Bus, leadership: Leadership, executor: Executor) -> None:
        super().__init__("scheduler", bus)
        self.leadership = leadership
        self.executor = executor
        self.leader_logs: Subscription | None = None
        self.loop: asyncio.Task[None] | None = None
        self.on_stop(executor.close)
        self.on_stop(leadership.close)
        self.on_stop(self._stop_loop)

    @property
    def engine(self) -> Engine | None:
        """The engine while this replica leads."""
        led = self.leadership.led
        return led if isinstance(led, Engine) else None

    async def _stop_loop(self) -> None:
        if self.loop is not None:
            self.loop.cancel()
            await asyncio.gather(self.loop, return_exceptions=True)


def default_replica() -> str:
    """A name unique to this replica: host, process and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{new_id()[:8]}"


async def make_executor(
    settings: SchedulerSettings, ctx: ServiceContext, environ: Mapping[str, str]
) -> Executor:
    """The executor `AORTA_EXECUTOR` names: local processes, containers on the engine at
    `AORTA_CONTAINER_HOST` (`auto`: when one answers there, else local processes), or pods on
    the cluster the `AORTA_K8S_*` variables of `environ` name. Host executors work in
    `AORTA_SCHEDULER_WORK_DIR`, by default in a folder of their own per user and data dir
    (`default_work_root`), which they hold while they live and beside which they remove the
    folders of gone platforms (`aorta.executors.platform_folders`). `SettingsError` when a
    setting is wrong (`Invalid` when the default work dir would lie inside the data dir);
    `Unavailable` when the cluster's configuration cannot be loaded or `container` finds no
    engine."""
    choice = await choose_executor(settings.executor, environ)
    log.info("scheduler.executor", executor=choice.kind, reason=choice.reason)
    # Imported here so that a process never loads an executor it does not run (a local
    # platform never imports the Kubernetes or Docker clients).
    if choice.kind == KUBERNETES:
        from aorta.executors.kubernetes.executor import KubernetesExecutor
        from aorta.kubernetes.settings import KubernetesSettings

        kubernetes = KubernetesSettings.from_env(environ)
        return await KubernetesExecutor.open(ctx.settings, kubernetes, ctx.blobs)
    if choice.engine is not None:
        from aorta.executors.container.executor import ContainerExecutor
        from aorta.executors.container.settings import ContainerSettings
        from aorta.executors.container.workspace_claims import FOLDER_MODE

        # Apart from the local executor's folders, which a root platform hands to the
        # operators' user: a container's folders stay the platform's own.
        root, platform = _work_folder(settings, ctx, "aorta-containers", FOLDER_MODE)
        return await ContainerExecutor.open(
            choice.engine.host, ContainerSettings.from_env(environ), ctx.blobs, root, platform
        )
    from aorta.executors.local.executor import LocalExecutor
    from aorta.executors.local.work_folders import PLATFORM_FOLDER_MODE, RUNS_PREFIX

    root, platform = _work_folder(settings, ctx, RUNS_PREFIX, PLATFORM_FOLDER_MODE)
    return LocalExecutor(
        ctx.blobs, root, run_as=settings.run_as, stop_grace=settings.grace, platform=platform
    )


def _work_folder(
    settings: SchedulerSettings, ctx: ServiceContext, prefix: str, mode: int
) -> tuple[Path, PlatformFolder | None]:
    """A host executor's work root, and the platform's folder to hold when that is the default
    layout's (no `AORTA_SCHEDULER_WORK_DIR`)."""
    from aorta.executors.local.work_folders import default_work_root

    if settings.work_dir is not None:
        return settings.work_dir, None
    root = default_work_root(ctx.settings.data_dir, prefix=prefix)
    return root, PlatformFolder(root, ctx.settings.data_dir, mode)


async def start(
    ctx: ServiceContext,
    *,
    environ: Mapping[str, str] = os.environ,
    executor: Executor | None = None,
    replica: str | None = None,
    clock: Callable[[], float] = time.time,
) -> RunningScheduler:
    """Serves every verb and starts trying for the lease; returns once requests reach the
    handlers (leadership follows within a third of the lease TTL).

    The scheduler's own settings (`SchedulerSettings`) come from `environ`, the process
    environment by default; `executor` defaults to the one they name; `replica` names this
    replica in the lease; `clock` is Unix time (tests may pass their own).
    """
    node = NodeFacts.measure(await gpu_count())
    settings = SchedulerSettings.from_env(environ, data_dir=ctx.settings.data_dir, node=node)
    retention_settings = RetentionSettings.from_env(environ)
    repository = JobRepository(ctx.store)
    await repository.prepare()
    # Made last of what can fail before `running` exists: from there `stop` closes it.
    executor = executor or await make_executor(settings, ctx, environ)
    bus = ctx.bus
    peers = Peers(bus, ctx.settings.rpc_timeout)
    events = JobEvents(bus, repository)
    service_records = ServiceRepository(ctx.store)
    await service_records.prepare()
    service_outbox = Outbox(bus, ctx.store, service="scheduler.services")
    await service_outbox.watch(service_records.collection)
    services = ServiceParts(
        repository=service_records,
        runner=executor.service_runner() if isinstance(executor, ServiceHost) else None,
        settings=ServiceSettings.from_env(environ),
        outbox=service_outbox,
        pipeline_exists=partial(_pipeline_exists, peers),
        job_stopped=partial(_job_stopped, repository),
        grace=settings.grace,
    )
    parts = EngineParts(repository, events, executor, settings, clock, services)
    lease = Lease(ctx.store, replica or default_replica(), settings.lease_ttl, clock=clock)

    def engine() -> Engine | None:
        return running.engine

    logs = OperatorLogs(ctx.blobs, bus, executor, engine, ctx.settings.rpc_timeout)
    gauges = JobGauges(repository)
    deletion = JobDeletion(repository, peers, events, ctx.blobs)
    retention = RetentionSweeper(
        repository,
        deletion,
        peers,
        events,
        ctx.blobs,
        retention_settings,
        clock=clock,
    )

    async def on_change(led: Led | None) -> None:
        if led is not None:
            gauges.start()
            retention.start()
            verb = contracts.SCHEDULER_LEADER_LOGS
            running.leader_logs = await bus.serve_stream(
                verb.subject, streaming(verb, logs.serve_leader), queue=LEADER_QUEUE
            )
            return
        await gauges.stop()
        await retention.stop()
        if running.leader_logs is not None:
            subscription, running.leader_logs = running.leader_logs, None
            await subscription.drain()

    running = RunningScheduler(
        bus,
        Leadership(lease, lambda: Engine(parts, peers), on_change=on_change, clock=clock),
        executor,
    )

    async def notify() -> None:
        current = running.engine
        if current is not None:
            # This replica leads: no other one needs the nudge, and it need not cross the bus.
            current.poke(resync=True)
            return
        try:
            await bus.publish(WAKE, b"")
        except AortaError as error:
            log.warning("scheduler.nudge_lost", error=str(error))

    async def wake(data: bytes, subject: str) -> None:
        current = running.engine
        if current is not None:
            current.poke(resync=True)

    commands = JobCommands(
        repository,
        peers,
        events,
        settings,
        notify,
        clock=clock,
        leads=lambda: running.engine is not None,
        queueing=StartHandoff(engine, notify).prepare,
    )

    async def platform_stop(request: contracts.PlatformStop) -> contracts.PlatformStopped:
        # Clara.Stop stops the pipeline services too: asked here, done by the leader.
        stopped = await commands.platform_stop(request)
        if await stop_all(service_records):
            await notify()
        return stopped

    queries = JobQueries(repository, logs, events)
    queue_view = JobQueueView(repository, settings, clock=clock)
    service_queries = ServiceQueries(service_records, ctx.blobs)
    async with running.starting():
        running.on_stop(service_outbox.start_replaying())
        await running.subscribe(WAKE, wake)
        await running.serve(subjects.SCHEDULER_CREATE, commands.create)
        await running.serve(subjects.SCHEDULER_START, commands.start)
        await running.serve(subjects.SCHEDULER_CANCEL, commands.cancel)
        await running.serve_verb(contracts.SCHEDULER_PLATFORM_STOP, platform_stop)
        await running.serve_verb(contracts.SCHEDULER_STATUS, queries.status)
        await running.serve_verb(contracts.SCHEDULER_READABLE_JOBS, queries.readable_jobs)
        await running.serve_stream(subjects.SCHEDULER_LIST, queries.list_jobs)
        await running.serve_stream(subjects.SCHEDULER_READ_LOGS, queries.read_logs)
        await running.serve(subjects.SCHEDULER_ADD_METADATA, queries.add_metadata)
        await running.serve(subjects.SCHEDULER_REMOVE_METADATA, queries.remove_metadata)
        await running.serve(subjects.SCHEDULER_DELETE, deletion.delete)
        await running.serve(subjects.SCHEDULER_TIMELINE, queries.timeline)
        await running.serve(subjects.SCHEDULER_PAGE, queries.page)
        await running.serve_stream(subjects.SCHEDULER_QUEUE, queue_view.queue)
        await running.serve_stream(subjects.SCHEDULER_SERVICES, service_queries.list_services)
        await running.serve_stream(subjects.SCHEDULER_SERVICE_LOGS, service_queries.read_logs)
        running.loop = asyncio.create_task(
            running.leadership.run(), name="aorta.scheduler.leadership"
        )
    log.info(
        "scheduler.serving",
        replica=lease.holder,
        gpus=len(settings.capacity.gpus),
        cpus=settings.capacity.cpu,
        memory_mb=settings.capacity.memory_mb,
    )
    return running


async def _pipeline_exists(peers: Peers, pipeline_id: str) -> bool:
    """Whether the pipelines service still knows `pipeline_id` (True when it cannot say)."""
    try:
        await peers.pipeline_snapshot(PipelineId(pipeline_id))
    except NotFound:
        return False
    except AortaError:
        return True
    return True


async def _job_stopped(repository: JobRepository, job_id: str) -> bool:
    """Whether a job has stopped, or is gone."""
    try:
        record = await repository.get(JobId(job_id), hidden=True)
    except NotFound:
        return True
    return record.phase.stopped
