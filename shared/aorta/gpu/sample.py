"""What one look at a node's GPUs finds, and the JSON form node monitors publish on the bus.

Units are NVML's: bytes for memory, fractions 0..1 for utilization; the MB Clara's
`GpuUtilization.memory_free`/`memory_used` carry are derived here (`mb`). A value NVML could not
give for a device (NOT_SUPPORTED, no permission) is None, so "unknown" is never mistaken for 0.

The wire form (`NodeSample.to_json`/`from_json`, subject `aorta.metrics.gpu`) is a contract
between monitors (each aggregates every node's latest sample) and any other reader:

    {"node_id": "gpu-node-1", "interval": 1.0, "taken_at": "2026-11-21T10:00:00+00:00",
     "gpus": [{"index": 0, "bus_id": "00000000:3B:00.0", "timestamp": "...",
               "compute_utilization": 0.5, "memory_utilization": 0.25,
               "memory_free": 1024, "memory_used": 2048, "bar1_free": 512, "bar1_used": 256,
               "processes": [{"pid": 42, "used_memory": 1024, "name": "python3",
                              "job_id": "<32 hex>", "operator": "segmentation"}]}]}

Numbers the device did not report are `null`; `job_id`/`operator` are `null` for a process no
job owns. `interval` is the publisher's sampling period in seconds (readers expire a node that
stays silent for a few periods).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aorta import ids
from aorta.errors import Invalid
from aorta.ids import JobId

MEGABYTE = 1024 * 1024
"""Clara's "MB": a mebibyte, as nvidia-smi counts it."""

_BUS_ID = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):"
    r"(?P<device>[0-9a-fA-F]{1,2})\.(?P<function>[0-7])$"
)


def pcie_id_of(bus_id: str) -> int:
    """Clara's `pcie_id` (uint32) for a PCI bus id such as `00000000:3B:00.0`; 0 if unparsable.

    The id packs the low 16 bits of the PCI domain and the standard 16-bit bus/device/function
    number: `domain << 16 | bus << 8 | device << 3 | function`. It is unique per GPU of a node
    (domains above 0xFFFF are unheard of on GPU hosts) and readable back as the address:
    `0x00003B00` is domain 0, bus 0x3B, device 0, function 0.
    """
    match = _BUS_ID.match(bus_id.strip())
    if match is None:
        return 0
    domain = int(match["domain"] or "0", 16) & 0xFFFF
    return (
        domain << 16
        | int(match["bus"], 16) << 8
        | int(match["device"], 16) << 3
        | int(match["function"])
    )


def mb(size: int | None) -> int:
    """Whole MB (MiB) in `size` bytes, rounded down; 0 when unknown (Clara's fields are plain)."""
    return 0 if size is None else size // MEGABYTE


@dataclass(frozen=True)
class ProcessOwner:
    """The job and the operator (Clara's stage) on whose behalf a process runs."""

    job_id: JobId
    operator: str


@dataclass(frozen=True)
class GpuProcess:
    """A process using a GPU.

    `used_memory` is in bytes (None when NVML cannot tell), `name` the executable's name as
    NVML reports it (None when unknown), `owner` the job operator it runs for (set by the
    monitor, None for a process of no job).
    """

    pid: int
    used_memory: int | None = None
    name: str | None = None
    owner: ProcessOwner | None = None


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one moment. See the module docstring for units and unknown values."""

    node_id: str
    index: int
    bus_id: str
    timestamp: datetime
    compute_utilization: float | None = None
    memory_utilization: float | None = None
    memory_free: int | None = None
    memory_used: int | None = None
    bar1_free: int | None = None
    bar1_used: int | None = None
    processes: tuple[GpuProcess, ...] = ()

    @property
    def pcie_id(self) -> int:
        """Clara's numeric PCIe id (see `pcie_id_of`)."""
        return pcie_id_of(self.bus_id)

    @property
    def memory_free_mb(self) -> int:
        return mb(self.memory_free)

    @property
    def memory_used_mb(self) -> int:
        return mb(self.memory_used)


@dataclass(frozen=True)
class NodeSample:
    """Every GPU of one node at one moment (an empty `gpus` for a node without GPUs)."""

    node_id: str
    interval: float
    taken_at: datetime
    gpus: tuple[GpuSample, ...] = ()

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "node_id": self.node_id,
                "interval": self.interval,
                "taken_at": self.taken_at.isoformat(),
                "gpus": [_gpu_document(gpu) for gpu in self.gpus],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> NodeSample:
        """Reads the wire form back; raises `Invalid` saying what is wrong with it."""
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise Invalid(f"a GPU sample is not JSON: {exc}") from None
        root = _Reader(document, "sample")
        node_id = root.text("node_id")
        gpus = tuple(
            _gpu_from(_Reader(item, f"gpu {position}"), node_id)
            for position, item in enumerate(root.items("gpus"))
        )
        return cls(
            node_id=node_id,
            interval=root.number("interval"),
            taken_at=root.moment("taken_at"),
            gpus=gpus,
        )


def _gpu_document(gpu: GpuSample) -> dict[str, Any]:
    return {
        "index": gpu.index,
        "bus_id": gpu.bus_id,
        "timestamp": gpu.timestamp.isoformat(),
        "compute_utilization": gpu.compute_utilization,
        "memory_utilization": gpu.memory_utilization,
        "memory_free": gpu.memory_free,
        "memory_used": gpu.memory_used,
        "bar1_free": gpu.bar1_free,
        "bar1_used": gpu.bar1_used,
        "processes": [
            {
                "pid": process.pid,
                "used_memory": process.used_memory,
                "name": process.name,
                "job_id": process.owner.job_id if process.owner else None,
                "operator": process.owner.operator if process.owner else None,
            }
            for process in gpu.processes
        ],
    }


def _gpu_from(reader: _Reader, node_id: str) -> GpuSample:
    return GpuSample(
        node_id=node_id,
        index=reader.integer("index"),
        bus_id=reader.text("bus_id", empty=True),
        timestamp=reader.moment("timestamp"),
        compute_utilization=reader.optional_number("compute_utilization"),
        memory_utilization=reader.optional_number("memory_utilization"),
        memory_free=reader.optional_integer("memory_free"),
        memory_used=reader.optional_integer("memory_used"),
        bar1_free=reader.optional_integer("bar1_free"),
        bar1_used=reader.optional_integer("bar1_used"),
        processes=tuple(
            _process_from(_Reader(item, f"{reader.where} process {position}"))
            for position, item in enumerate(reader.items("processes"))
        ),
    )


def _process_from(reader: _Reader) -> GpuProcess:
    job, operator = reader.optional_text("job_id"), reader.optional_text("operator")
    owner = None
    if job is not None and operator is not None:
        owner = ProcessOwner(job_id=ids.job_id(job), operator=operator)
    return GpuProcess(
        pid=reader.integer("pid"),
        used_memory=reader.optional_integer("used_memory"),
        name=reader.optional_text("name"),
        owner=owner,
    )


class _Reader:
    """Typed access to one JSON object, with errors naming the field and where it is."""

    def __init__(self, document: Any, where: str) -> None:
        if not isinstance(document, dict):
            raise Invalid(f"{where} of a GPU sample is not a JSON object")
        self._document: dict[str, Any] = document
        self.where = where

    def _fail(self, key: str, expected: str) -> Invalid:
        return Invalid(f"{self.where} of a GPU sample: {key!r} is not {expected}")

    def text(self, key: str, *, empty: bool = False) -> str:
        value = self._document.get(key)
        if not isinstance(value, str) or (not value and not empty):
            raise self._fail(key, "a string" if empty else "a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._document.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self._document.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(key, "a whole number >= 0")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self._document.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self._document.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self._fail(key, "a number >= 0")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return None if self._document.get(key) is None else self.number(key)

    def moment(self, key: str) -> datetime:
        value = self._document.get(key)
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise self._fail(key, "an ISO 8601 time with a UTC offset")
        return moment.astimezone(UTC)

    def items(self, key: str) -> list[Any]:
        value = self._document.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value
