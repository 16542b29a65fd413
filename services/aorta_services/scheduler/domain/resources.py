"""What one node can give operators, and who holds what of it.

Accounting rules (docs/clara-compatibility.md, "Resource admission"):

- **GPUs** are exclusive and counted exactly. They are assigned by device index, lowest free
  index first, so an allocation names the devices the executor exposes to the operator.
- **Memory** (MB) is summed against the node's memory; it is a hard limit, because going over an
  operator's request kills it.
- **CPU** is shareable, so requests are admitted against `cpu * cpu_overcommit` (default 4.0)
  instead of the core count: a default three-operator pipeline (cpu 2 each, 6 in all) runs on a
  2-core laptop (limit 8). A request larger than that whole limit is admitted when no CPU is in
  use, and then has the node's CPU to itself, rather than faulting a pipeline written for a
  bigger machine.

Admission policy, which the scheduler applies with these pieces: a queued job is admitted when
its most demanding operator fits now (`job_peak_request`, component-wise maximum, checked with
`ResourceLedger.fits`), so it can make progress. Each operator then allocates its own request
when it is ready to run, and stays PENDING while the node is momentarily full; it releases its
allocation when it exits. A request that could not fit even on an empty node
(`ResourceLedger.never_fits`) faults the job at once instead of queueing it forever.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aorta.errors import Conflict, ErrorCode, Invalid


def _non_negative_int(value: object) -> bool:
    return type(value) is int and value >= 0


@dataclass(frozen=True)
class Request:
    """What one operator asks for: CPU cores, GPUs and memory in MB (all >= 0)."""

    cpu: int
    gpu: int
    memory_mb: int

    def __post_init__(self) -> None:
        for name in ("cpu", "gpu", "memory_mb"):
            value = getattr(self, name)
            if not _non_negative_int(value):
                raise Invalid(f"resource request {name}={value!r} must be an integer >= 0")


@dataclass(frozen=True)
class Capacity:
    """What the node offers: GPU device indices, CPU cores, memory in MB, the CPU over-commit."""

    gpus: tuple[int, ...]
    cpu: int
    memory_mb: int
    cpu_overcommit: float = 4.0

    def __post_init__(self) -> None:
        if not all(_non_negative_int(index) for index in self.gpus) or len(set(self.gpus)) != len(
            self.gpus
        ):
            raise Invalid(
                f"node GPUs {self.gpus!r} must be distinct device indices >= 0",
                code=ErrorCode.INTERNAL,
            )
        for name in ("cpu", "memory_mb"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise Invalid(
                    f"node {name}={value!r} must be an integer >= 1", code=ErrorCode.INTERNAL
                )
        if not (math.isfinite(self.cpu_overcommit) and self.cpu_overcommit >= 1.0):
            raise Invalid(
                f"node cpu_overcommit={self.cpu_overcommit!r} must be a number >= 1",
                code=ErrorCode.INTERNAL,
            )

    @property
    def cpu_limit(self) -> float:
        """The CPU requests the node admits at once: cores * over-commit."""
        return self.cpu * self.cpu_overcommit


@dataclass(frozen=True)
class Allocation:
    """What one owner holds: the GPU devices assigned to it, its CPU and memory charge."""

    gpus: tuple[int, ...]
    cpu: int
    memory_mb: int

    def __post_init__(self) -> None:
        if not all(_non_negative_int(index) for index in self.gpus) or len(set(self.gpus)) != len(
            self.gpus
        ):
            raise Invalid(f"allocated GPUs {self.gpus!r} must be distinct device indices >= 0")
        for name in ("cpu", "memory_mb"):
            value = getattr(self, name)
            if not _non_negative_int(value):
                raise Invalid(f"allocated {name}={value!r} must be an integer >= 0")

    def to_document(self) -> dict[str, Any]:
        """The JSON-able form kept with the operator, for `ResourceLedger.restore`."""
        return {"gpus": list(self.gpus), "cpu": self.cpu, "memory_mb": self.memory_mb}

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> Allocation:
        """Reads `to_document`'s form; raises `Invalid` (JOB_STORE_ERROR) if it is malformed."""
        try:
            return Allocation(
                gpus=tuple(document["gpus"]),
                cpu=document["cpu"],
                memory_mb=document["memory_mb"],
            )
        except (KeyError, TypeError, Invalid) as error:
            raise Invalid(
                f"stored allocation {dict(document)!r} is malformed", code=ErrorCode.JOB_STORE_ERROR
            ) from error


@dataclass(frozen=True)
class FreeResources:
    """What is not held now: free GPU indices, CPU headroom under the limit, memory in MB."""

    gpus: tuple[int, ...]
    cpu: float
    memory_mb: int


@dataclass(frozen=True)
class Shortfall:
    """Why a request does not fit now: the first resource short of it (GPUs, then memory,
    then CPU), what the request needs of it and what the node has in all (for CPU, the limit
    with over-commit), and for GPUs the owners holding the node's devices (lowest device
    first, each once). Shared CPU and memory name no holders: many small ones hold them and
    they change at every start and exit."""

    resource: str
    needed: float
    capacity: float
    holders: tuple[str, ...] = ()


def job_peak_request(requests: Iterable[Request]) -> Request:
    """The component-wise maximum of the operators' requests (all zero for none).

    Admitting a job when this fits means at least its most demanding operator can run.
    """
    peak = Request(cpu=0, gpu=0, memory_mb=0)
    for request in requests:
        peak = Request(
            cpu=max(peak.cpu, request.cpu),
            gpu=max(peak.gpu, request.gpu),
            memory_mb=max(peak.memory_mb, request.memory_mb),
        )
    return peak


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class ResourceLedger:
    """The node's capacity and the allocations held against it, by owner.

    An owner is any string unique to one holder, e.g. `"<job id>/<operator>"`. Pure and not
    thread-safe; the scheduler rebuilds it after a restart with `restore`.
    """

    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self._held: dict[str, Allocation] = {}
        self._gpu_owner: dict[int, str] = {}
        self._cpu = 0
        self._memory_mb = 0

    @property
    def capacity(self) -> Capacity:
        return self._capacity

    def allocations(self) -> dict[str, Allocation]:
        """A copy of every allocation held now, by owner."""
        return dict(self._held)

    def free(self) -> FreeResources:
        """What is free now (restored allocations may leave CPU or memory overdrawn: 0)."""
        return FreeResources(
            gpus=self._free_gpus(),
            cpu=max(0.0, self._capacity.cpu_limit - self._cpu),
            memory_mb=max(0, self._capacity.memory_mb - self._memory_mb),
        )

    def fits(self, request: Request) -> bool:
        """Whether `allocate(owner, request)` would succeed now."""
        cpu_fits = (
            request.cpu == 0
            or self._cpu == 0
            or self._cpu + request.cpu <= self._capacity.cpu_limit
        )
        return (
            cpu_fits
            and request.gpu <= len(self._free_gpus())
            and self._memory_mb + request.memory_mb <= self._capacity.memory_mb
        )

    def shortfall(self, request: Request) -> Shortfall | None:
        """What keeps `request` from fitting now (see `Shortfall`); None when it fits."""
        if self.fits(request):
            return None
        capacity = self._capacity
        if request.gpu > len(self._free_gpus()):
            holders = dict.fromkeys(self._gpu_owner[index] for index in sorted(self._gpu_owner))
            return Shortfall("gpu", request.gpu, len(capacity.gpus), tuple(holders))
        if self._memory_mb + request.memory_mb > capacity.memory_mb:
            return Shortfall("memory_mb", request.memory_mb, capacity.memory_mb)
        return Shortfall("cpu", request.cpu, capacity.cpu_limit)

    def never_fits(self, request: Request, operator: str) -> str | None:
        """Why `request` could not fit even on this node when idle, or None if it could.

        The reason names `operator` and says which setting to change, so the scheduler can
        fault the job with it instead of queueing it forever. CPU never makes a request
        impossible (see the module docstring).
        """
        reasons: list[str] = []
        gpus = self._capacity.gpus
        if request.gpu > len(gpus):
            if gpus:
                devices = ", ".join(str(index) for index in sorted(gpus))
                reasons.append(
                    f"operator {operator!r} requests {_plural(request.gpu, 'GPU')} but this node "
                    f"has {len(gpus)} (devices {devices}); lower the operator's requests.gpu or "
                    "set AORTA_SCHEDULER_GPUS to declare more GPUs"
                )
            else:
                reasons.append(
                    f"operator {operator!r} requests {_plural(request.gpu, 'GPU')} but this node "
                    "has 0; set AORTA_SCHEDULER_GPUS to declare GPUs"
                )
        if request.memory_mb > self._capacity.memory_mb:
            reasons.append(
                f"operator {operator!r} requests {request.memory_mb} MB of memory but this node "
                f"has {self._capacity.memory_mb} MB; lower the operator's requests.memory or set "
                "AORTA_SCHEDULER_MEMORY_MB"
            )
        return "; ".join(reasons) or None

    def allocate(self, owner: str, request: Request) -> Allocation:
        """Charges `request` to `owner` and returns what it holds, GPUs lowest index first.

        Raises `Conflict` if `owner` already holds an allocation or the request does not fit
        now (check `fits` first).
        """
        if owner in self._held:
            raise Conflict(f"{owner} already holds {self._held[owner]}")
        if not self.fits(request):
            raise Conflict(f"{owner} cannot allocate {request}: the node has only {self.free()}")
        allocation = Allocation(
            gpus=self._free_gpus()[: request.gpu], cpu=request.cpu, memory_mb=request.memory_mb
        )
        self._hold(owner, allocation)
        return allocation

    def release(self, owner: str) -> Allocation | None:
        """Gives back what `owner` holds and returns it; None if it holds nothing.

        Idempotent, because an operator's exit may be reported again after a restart.
        """
        allocation = self._held.pop(owner, None)
        if allocation is None:
            return None
        for index in allocation.gpus:
            del self._gpu_owner[index]
        self._cpu -= allocation.cpu
        self._memory_mb -= allocation.memory_mb
        return allocation

    def restore(self, owner: str, allocation: Allocation) -> None:
        """Records an allocation that was made before a restart (the operator still runs).

        It is taken as it was, even if the node's capacity has since shrunk: the operator holds
        those resources whatever the settings say now. Raises `Conflict` if `owner` already
        holds an allocation or one of its GPUs is held by another owner, which would mean two
        operators share one device.
        """
        if owner in self._held:
            raise Conflict(f"{owner} already holds {self._held[owner]}")
        for index in allocation.gpus:
            holder = self._gpu_owner.get(index)
            if holder is not None:
                raise Conflict(f"{owner} cannot restore GPU {index}: {holder} holds it")
        self._hold(owner, allocation)

    def _hold(self, owner: str, allocation: Allocation) -> None:
        self._held[owner] = allocation
        for index in allocation.gpus:
            self._gpu_owner[index] = owner
        self._cpu += allocation.cpu
        self._memory_mb += allocation.memory_mb

    def _free_gpus(self) -> tuple[int, ...]:
        return tuple(index for index in sorted(self._capacity.gpus) if index not in self._gpu_owner)
