"""Pipeline services as the scheduler sees them: which a job needs, and their records. Pure.

Clara shares one running service among every operator and job, of any pipeline, that declares
the same image, tag and command (`aorta.executors.services.service_key`). The scheduler keeps one
`ServiceRecord` per such service in its `services` collection:

- `users` are the jobs that need it now (a job joins when it is admitted and leaves when it
  stops), `job_owners` the subject that created each of them; `pipelines` the pipelines that
  declared it; `owners` every subject whose job has used it since its record was made ("" for
  a job made while authentication was off), whose jobs' traces its log may hold
  (`service_access` reads both);
- a service with no user is idle from `last_used`; it stops once idle for the idle period, when
  none of its pipelines exists any more, or when `stop_requested` (Clara.Stop) says so;
- while STARTING or READY it holds `allocation` on the node, like an operator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from aorta.errors import ErrorCode, Invalid
from aorta.executors.port import Resources
from aorta.executors.services import (
    HttpPort,
    ServiceLaunch,
    ServiceMount,
    SharedVolume,
    service_key,
)
from aorta.pipeline_spec import Pipeline, ServiceSpec
from aorta_services.scheduler.domain.definition import request_of
from aorta_services.scheduler.domain.resources import Allocation, Capacity, Request


class ServiceState(StrEnum):
    """Where a service is in its life."""

    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def live(self) -> bool:
        """Whether the service runs (or is being started) and holds its resources."""
        return self in (ServiceState.STARTING, ServiceState.READY)


@dataclass(frozen=True)
class DeclaredService:
    """One service a pipeline declares, once however many of its operators declare it."""

    service_id: str
    spec: ServiceSpec
    request: Request
    operators: tuple[str, ...]


def service_owner(service_id: str) -> str:
    """The resource ledger's owner name of a running service."""
    return f"service/{service_id}"


def service_log_key(service_id: str) -> str:
    """Where a service's log is kept in the blob store, beside the jobs' logs."""
    return f"logs/services/{service_id}.log"


def service_request(spec: ServiceSpec) -> Request:
    """What a service asks of the node (a value a placeholder holds counts as the default)."""
    return request_of(spec.requests)


def declared_services(pipeline: Pipeline) -> tuple[DeclaredService, ...]:
    """Every service the pipeline's operators declare, each once (the first declaration wins
    its name and connections), in the order operators first declare them."""
    found: dict[str, tuple[ServiceSpec, list[str]]] = {}
    for operator in pipeline.operators:
        for spec in operator.services:
            container = spec.container
            key = service_key(container.image, container.tag, container.command)
            entry = found.setdefault(key, (spec, []))
            if operator.name not in entry[1]:
                entry[1].append(operator.name)
    return tuple(
        DeclaredService(key, spec, service_request(spec), tuple(operators))
        for key, (spec, operators) in found.items()
    )


def services_of_operator(pipeline: Pipeline, operator: str) -> tuple[DeclaredService, ...]:
    """The services one operator declares, as `declared_services` names them."""
    return tuple(s for s in declared_services(pipeline) if operator in s.operators)


def total_request(requests: Iterable[Request]) -> Request:
    """The sum of `requests` (what holding all of them at once takes)."""
    cpu = gpu = memory = 0
    for request in requests:
        cpu, gpu, memory = cpu + request.cpu, gpu + request.gpu, memory + request.memory_mb
    return Request(cpu=cpu, gpu=gpu, memory_mb=memory)


def never_fits(
    capacity: Capacity, services: Iterable[DeclaredService], peak: Request
) -> str | None:
    """Why a job needing `services` beside its most demanding operator (`peak`) could never
    run on this node, even idle; None when it could. GPUs and memory only, as for operators."""
    services = tuple(services)
    need = total_request([peak, *(s.request for s in services)])
    names = ", ".join(repr(s.spec.name) for s in services)
    reasons = []
    if need.gpu > len(capacity.gpus):
        reasons.append(
            f"its services ({names}) and its operators need {need.gpu} GPU(s) at once but this "
            f"node has {len(capacity.gpus)}; lower the services' requests.gpu or set "
            "AORTA_SCHEDULER_GPUS"
        )
    if need.memory_mb > capacity.memory_mb:
        reasons.append(
            f"its services ({names}) and its operators need {need.memory_mb} MB of memory at "
            f"once but this node has {capacity.memory_mb} MB; lower the services' "
            "requests.memory or set AORTA_SCHEDULER_MEMORY_MB"
        )
    return "; ".join(reasons) or None


def waiting_reason(services: Iterable[DeclaredService]) -> str:
    """What a queued job waits for when its services do not fit the node now."""
    names = ", ".join(repr(s.spec.name) for s in services)
    return f"waiting for room on the node to start its services ({names})"


def launch_of(
    declared: DeclaredService, allocation: Allocation, *, ready_timeout: float
) -> ServiceLaunch:
    """What a `ServiceRunner` needs to start (or adopt) `declared` with `allocation`."""
    spec = declared.spec
    return ServiceLaunch(
        service_id=declared.service_id,
        name=spec.name,
        image=spec.container.image,
        tag=spec.container.tag,
        command=spec.container.command,
        resources=Resources(
            cpu=allocation.cpu,
            gpu=len(allocation.gpus),
            memory_mb=allocation.memory_mb,
            gpu_devices=allocation.gpus,
        ),
        variables=dict(spec.variables),
        http=tuple(
            HttpPort(c.name, c.port if isinstance(c.port, int) else None)
            for c in spec.connections.http
        ),
        volumes=tuple(SharedVolume(v.name, v.path) for v in spec.connections.volume),
        ready_timeout=ready_timeout,
        log_key=service_log_key(declared.service_id),
    )


@dataclass(frozen=True)
class ServiceRecord:
    """One shared service as the store keeps it (see the module docstring)."""

    id: str
    name: str
    image: str
    tag: str
    command: tuple[str, ...]
    state: ServiceState
    request: Request
    users: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    last_used: float = 0.0
    job_owners: Mapping[str, str] = field(default_factory=dict, hash=False)
    owners: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)
    mounts: tuple[ServiceMount, ...] = ()
    allocation: Allocation | None = None
    message: str = ""
    stop_requested: bool = False
    version: int = 0

    @staticmethod
    def first(declared: DeclaredService, *, now: float) -> ServiceRecord:
        """The record of a service no job has used yet (STOPPED until it is started)."""
        container = declared.spec.container
        return ServiceRecord(
            id=declared.service_id,
            name=declared.spec.name,
            image=container.image,
            tag=container.tag,
            command=container.command,
            state=ServiceState.STOPPED,
            request=declared.request,
            last_used=now,
        )

    @property
    def address(self) -> str:
        """The `host:port` values operators get, comma-separated (empty when stopped)."""
        if not self.state.live:
            return ""
        return ",".join(v for k, v in sorted(self.environment.items()) if ":" in v)

    def idle_since(self) -> float | None:
        """When the service became idle (no user), or None while a job uses it or when it
        does not run."""
        if self.users or not self.state.live:
            return None
        return self.last_used

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "tag": self.tag,
            "command": list(self.command),
            "state": self.state.value,
            "request": {
                "cpu": self.request.cpu,
                "gpu": self.request.gpu,
                "memory_mb": self.request.memory_mb,
            },
            "users": list(self.users),
            "pipelines": list(self.pipelines),
            "last_used": self.last_used,
            "job_owners": dict(self.job_owners),
            "owners": list(self.owners),
            "environment": dict(self.environment),
            "mounts": [{"source": m.source, "path": m.path} for m in self.mounts],
            "allocation": None if self.allocation is None else self.allocation.to_document(),
            "message": self.message,
            "stop_requested": self.stop_requested,
        }

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> ServiceRecord:
        """Reads `to_document`'s form; `Invalid` (JOB_STORE_ERROR) when malformed."""
        try:
            request = document["request"]
            allocation = document.get("allocation")
            return ServiceRecord(
                id=document["id"],
                name=document["name"],
                image=document["image"],
                tag=document["tag"],
                command=tuple(document["command"]),
                state=ServiceState(document["state"]),
                request=Request(request["cpu"], request["gpu"], request["memory_mb"]),
                users=tuple(document.get("users", ())),
                pipelines=tuple(document.get("pipelines", ())),
                last_used=float(document.get("last_used", 0.0)),
                # Records stored before owners were kept name none: their users are an admin's.
                job_owners=dict(document.get("job_owners", {})),
                owners=tuple(document.get("owners", ())),
                environment=dict(document.get("environment", {})),
                mounts=tuple(
                    ServiceMount(m["source"], m["path"]) for m in document.get("mounts", ())
                ),
                allocation=None if allocation is None else Allocation.from_document(allocation),
                message=document.get("message", ""),
                stop_requested=bool(document.get("stop_requested", False)),
                version=int(document.get("version", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(
                f"stored service {document.get('id')!r} is malformed: {error}",
                code=ErrorCode.JOB_STORE_ERROR,
            ) from error


def joined(
    record: ServiceRecord, job_id: str, pipeline_id: str, *, now: float, owner: str | None = None
) -> ServiceRecord:
    """`record` with `job_id` among its users and `pipeline_id` among its pipelines, and the
    job's `owner` (when given) among its owners; a job already a user keeps the owner it
    joined with."""
    users = record.users if job_id in record.users else (*record.users, job_id)
    pipelines = (
        record.pipelines if pipeline_id in record.pipelines else (*record.pipelines, pipeline_id)
    )
    job_owners, owners = record.job_owners, record.owners
    if owner is not None and job_id not in job_owners:
        job_owners = {**job_owners, job_id: owner}
        owners = owners if owner in owners else (*owners, owner)
    return replace(
        record,
        users=users,
        pipelines=pipelines,
        last_used=now,
        job_owners=job_owners,
        owners=owners,
    )


def left(record: ServiceRecord, job_ids: Iterable[str], *, now: float) -> ServiceRecord:
    """`record` without the users `job_ids`; idle from `now` when the last one left."""
    gone = set(job_ids)
    users = tuple(user for user in record.users if user not in gone)
    if users == record.users:
        return record
    job_owners = {job: owner for job, owner in record.job_owners.items() if job not in gone}
    return replace(record, users=users, job_owners=job_owners, last_used=now)


def stop_due(record: ServiceRecord, *, now: float, idle_seconds: float) -> str | None:
    """Why a live service should stop now, or None: asked to (Clara.Stop), or idle for the
    idle period."""
    if not record.state.live:
        return None
    if record.stop_requested:
        return "the platform was stopped (Clara.Stop)"
    since = record.idle_since()
    if since is not None and now >= since + idle_seconds:
        return f"no job used it for {idle_seconds:g} s"
    return None


def operator_connections(
    records: Iterable[ServiceRecord],
) -> tuple[dict[str, str], tuple[ServiceMount, ...]]:
    """The connection variables and data-folder mounts an operator gets from the ready
    services it declares."""
    environment: dict[str, str] = {}
    mounts: list[ServiceMount] = []
    for record in records:
        environment.update(record.environment)
        mounts.extend(record.mounts)
    return environment, tuple(mounts)
