"""Scheduler replicas over the in-process bus, a real SQLite store and local blobs in tmp_path,
with fake executors and fake pipelines/payloads verbs (`scheduler_fakes`).

`Harness.replica()` starts one replica with its own bus, store connection and blob store, so a
test can "crash" one (`Harness.crash`: its runs vanish, its bus and store connection close,
without a clean stop) and start another on the same state. Settings are small: a 2 s lease
(short enough for quick failovers, long enough that a busy machine's stalls do not pass it
on), a 0.2 s resync and grace, 2 cores (limit 8 CPU requests), no GPU unless a test says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aorta import contracts, subjects
from aorta.api import common_pb2, jobs_pb2
from aorta.auth.caller import caller_headers
from aorta.auth.principal import Principal
from aorta.blobs import open_blob_store
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.bus.verbs import call
from aorta.runtime.service import ServiceContext
from aorta.settings import Settings
from aorta.store.factory import open_state_store
from aorta_services.scheduler import app
from aorta_services.scheduler.app import RunningScheduler
from tests.unit.scheduler.scheduler_fakes import Behaviour, FakeExecutor, FakePeers

RPC_TIMEOUT = 5.0
PIPELINE_ID = "0123456789abcdef0123456789abcdef"
BASE_ENV = {
    "AORTA_SCHEDULER_GPUS": "0",
    "AORTA_SCHEDULER_CPUS": "2",
    "AORTA_SCHEDULER_MEMORY_MB": "16384",
    "AORTA_SCHEDULER_LEASE_TTL": "2",
    "AORTA_SCHEDULER_RESYNC": "0.2",
    "AORTA_SCHEDULER_GRACE": "0.2",
}


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


@dataclass
class Replica:
    """One started scheduler replica and what it was given."""

    service: RunningScheduler
    executor: FakeExecutor
    context: ServiceContext
    crashed: bool = False


@dataclass
class Harness:
    network: MemoryNetwork
    tmp_path: Path
    client: MemoryBus
    peers: FakePeers
    replicas: list[Replica] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def acting_as(self, caller: Principal) -> Harness:
        """The same replicas, called for `caller` as the gateway calls them for a client."""
        return replace(self, headers=caller_headers(caller))

    async def replica(
        self,
        env: Mapping[str, str] | None = None,
        *,
        behaviours: Mapping[str, Behaviour] | None = None,
        name: str | None = None,
        executor: FakeExecutor | None = None,
    ) -> Replica:
        """A started replica; `executor` shares one executor with an earlier replica (runs that
        outlive their scheduler, as Kubernetes pods do)."""
        settings = Settings.from_env(
            {"AORTA_DATA_DIR": str(self.tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
        )
        bus = MemoryBus(self.network, default_timeout=RPC_TIMEOUT)
        store = await open_state_store(settings)
        blobs = await open_blob_store(settings)
        context = ServiceContext(settings=settings, bus=bus, store=store, blobs=blobs)
        executor = executor or FakeExecutor(behaviours=dict(behaviours or {}))
        service = await app.start(
            context, environ={**BASE_ENV, **(env or {})}, executor=executor, replica=name
        )
        replica = Replica(service, executor, context)
        self.replicas.append(replica)
        return replica

    async def crash(self, replica: Replica, *, keep_runs: bool = False) -> None:
        """The replica's process dies: it stops talking to anyone, and its runs vanish (local
        processes) unless `keep_runs` (pods, which outlive the scheduler)."""
        replica.crashed = True
        # Nothing of a dead process runs on: its loops end without a word to anyone.
        service = replica.service
        if service.loop is not None:
            service.loop.cancel()
            await asyncio.gather(service.loop, return_exceptions=True)
        if service.engine is not None:
            await service.engine.stop(kill_runs=False)
        if not keep_runs:
            replica.executor.kill_all()
        await replica.context.bus.close()
        await replica.context.store.close()

    async def leader(self, within: float = 60.0) -> Replica:
        """The replica that leads, once one does."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for replica in self.replicas:
                if not replica.crashed and replica.service.engine is not None:
                    return replica
            await asyncio.sleep(0.02)
        raise AssertionError("no replica became leader")

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.service.stop(0.5)
            if not replica.crashed:
                await replica.context.bus.close()
                await replica.context.store.close()
            await replica.context.blobs.close()

    # The Jobs verbs, as the gateway sends them.

    async def call(self, subject: str, message: Any, response: type[Any]) -> Any:
        body = message.SerializeToString()
        return response.FromString(await self.client.request(subject, body, headers=self.headers))

    async def create(
        self,
        name: str = "job",
        *,
        pipeline_id: str = PIPELINE_ID,
        priority: int = jobs_pb2.JOB_PRIORITY_NORMAL,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        request = jobs_pb2.JobsCreateRequest(
            pipeline_id=ident(pipeline_id),
            name=name,
            priority=priority,  # type: ignore[arg-type]
        )
        request.metadata.update(metadata or {})
        response = await self.call(subjects.SCHEDULER_CREATE, request, jobs_pb2.JobsCreateResponse)
        return str(response.job_id.value)

    async def start(
        self, job_id: str, variables: Mapping[str, str] | None = None
    ) -> jobs_pb2.JobsStartResponse:
        request = jobs_pb2.JobsStartRequest(
            job_id=ident(job_id),
            Variables=[
                jobs_pb2.JobsStartRequest.NamedValue(name=k, value=v)
                for k, v in (variables or {}).items()
            ],
        )
        response: jobs_pb2.JobsStartResponse = await self.call(
            subjects.SCHEDULER_START, request, jobs_pb2.JobsStartResponse
        )
        return response

    async def run(self, name: str = "job", **kw: Any) -> str:
        job_id = await self.create(name, **kw)
        await self.start(job_id)
        return job_id

    async def status(self, job_id: str) -> jobs_pb2.JobsStatusResponse:
        return (await self.owned_status(job_id)).status

    async def owned_status(self, job_id: str) -> contracts.JobStatus:
        """Jobs.Status as the gateway receives it, with the job's owner."""
        request = jobs_pb2.JobsStatusRequest(job_id=ident(job_id))
        return await call(self.client, contracts.SCHEDULER_STATUS, request, headers=self.headers)

    async def cancel(self, job_id: str, reason: str = "") -> jobs_pb2.JobsCancelResponse:
        request = jobs_pb2.JobsCancelRequest(job_id=ident(job_id), reason=reason)
        response: jobs_pb2.JobsCancelResponse = await self.call(
            subjects.SCHEDULER_CANCEL, request, jobs_pb2.JobsCancelResponse
        )
        return response

    async def stopped(self, job_id: str, within: float = 60.0) -> jobs_pb2.JobsStatusResponse:
        """The job's status once it is STOPPED."""
        return await self.until(
            job_id, lambda s: s.state == jobs_pb2.JOB_STATE_STOPPED, within=within
        )

    async def running(self, job_id: str, operator: str, *, within: float = 60.0) -> None:
        """Returns once `operator` is RUNNING in the store and a live replica's executor was
        asked to run it: the store says RUNNING first, since that write guards the start."""
        await self.until(
            job_id,
            lambda s: any(d.name == operator and d.status == 2 for d in s.operator_details),
            within=within,
        )
        deadline = time.monotonic() + within
        while not any(
            run.job_id == job_id and run.operator == operator
            for replica in self.replicas
            if not replica.crashed
            for run in replica.executor.starts
        ):
            assert time.monotonic() < deadline, f"no executor was asked to run {operator!r}"
            await asyncio.sleep(0.02)

    async def until(
        self, job_id: str, condition: Any, *, within: float = 60.0
    ) -> jobs_pb2.JobsStatusResponse:
        """The job's status once `condition(status)` holds; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            status = await self.status(job_id)
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not get there in time: {status}")
            await asyncio.sleep(0.02)


def single(name: str = "only", *, requests: str = "{cpu: 1}", extra: str = "") -> str:
    """A one-operator pipeline; `extra` adds operator keys (YAML lines, two-space indented)."""
    return (
        "api-version: 0.4.0\nname: single\noperators:\n"
        f"- name: {name}\n  container: {{image: python, command: [python, main.py]}}\n"
        f"  input: [{{path: /input}}]\n  output: [{{path: /output}}]\n  requests: {requests}\n"
        + extra
    )


CHAIN = """\
api-version: 0.4.0
name: chain
operators:
- name: first
  container: {image: python, command: [python, first.py]}
  input: [{path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1}
- name: second
  container: {image: python, command: [python, second.py]}
  input: [{from: first, path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1}
- name: third
  container: {image: python, command: [python, third.py]}
  input: [{from: second, path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1}
"""

FORK = """\
api-version: 0.4.0
name: fork
operators:
- {name: left, container: {image: x}, input: [{path: /in}], output: [{path: /out}]}
- {name: right, container: {image: x}, input: [{path: /in}], output: [{path: /out}]}
- name: join
  container: {image: x}
  input: [{from: left, path: /l}, {from: right, path: /r}]
  output: [{path: /out}]
"""

TEMPLATED = """\
api-version: 0.4.0
name: templated
parameters: {MODE: fast, DEPTH: null}
operators:
- name: only
  container: {image: x, command: [python, main.py, "${{ MODE }}", "${{ DEPTH }}"]}
  output: [{path: /out}]
"""
