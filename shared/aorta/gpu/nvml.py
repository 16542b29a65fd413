"""The NVML adapter of the GPU port (`nvidia-ml-py`, module `pynvml`), and `gpu_count`.

Only this module imports `pynvml`. Every NVML call runs in a worker thread (`asyncio.to_thread`):
NVML blocks for milliseconds per device, far too long for the event loop.

Without a driver `nvmlInit` fails at once (`NVMLError_LibraryNotFound`, under a millisecond):
the probe then reports no GPUs for the rest of its life and says so in one log line, with no
traceback; install a driver, then restart the service. A device or a field that fails (GPU lost,
NOT_SUPPORTED, no permission) leaves only that device or field out, logged once per device,
field and error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

import pynvml

from aorta.gpu.sample import GpuProcess, GpuSample
from aorta.logger import get_logger
from aorta.timestamps import utcnow

log = get_logger(__name__)

NO_DRIVER_MESSAGE = "no NVIDIA driver found: GPU metrics are empty"


class NvmlLibrary(Protocol):
    """The part of `pynvml` this adapter calls (tests pass a stand-in module)."""

    @property
    def NVMLError(self) -> type[Exception]: ...

    @property
    def NVMLLibraryMismatchError(self) -> type[Exception]: ...

    def nvmlInit(self) -> None: ...

    def nvmlShutdown(self) -> None: ...

    def nvmlDeviceGetCount(self) -> int: ...

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any: ...

    def nvmlDeviceGetBAR1MemoryInfo(self, handle: Any) -> Any: ...

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any: ...

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> Any: ...

    def nvmlSystemGetProcessName(self, pid: int) -> Any: ...


_State = Literal["new", "ready", "absent", "closed"]


class NvmlProbe:
    """`GpuProbe` over NVML. `nvmlInit` runs once, on the first sample.

    Per GPU: utilization (`nvmlDeviceGetUtilizationRates`: the fraction of the last sample
    period in which a kernel ran, and in which device memory was read or written), memory and
    BAR1 free/used bytes, the PCI bus id, and the compute processes with their memory (graphics
    processes such as a desktop's X server are not reported).
    """

    def __init__(
        self,
        node_id: str,
        *,
        nvml: NvmlLibrary | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._node_id = node_id
        self._nvml: NvmlLibrary = nvml if nvml is not None else pynvml
        self._clock = clock
        self._state: _State = "new"
        self._lock = asyncio.Lock()
        self._reported: set[tuple[int, str, str]] = set()

    async def sample(self) -> list[GpuSample]:
        async with self._lock:
            if self._state in ("absent", "closed"):
                return []
            return await asyncio.to_thread(self._read)

    async def close(self) -> None:
        async with self._lock:
            if self._state == "ready":
                await asyncio.to_thread(_shutdown, self._nvml)
            self._state = "closed"

    def _read(self) -> list[GpuSample]:
        nvml = self._nvml
        if self._state == "new":
            try:
                nvml.nvmlInit()
            except nvml.NVMLError as exc:
                self._state = "absent"
                log.warning(NO_DRIVER_MESSAGE, node_id=self._node_id, reason=str(exc))
                return []
            self._state = "ready"
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._report(-1, "device count", exc)
            return []
        taken = self._clock()
        samples: list[GpuSample] = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as exc:
                self._report(index, "device", exc)
                continue
            samples.append(self._device(index, handle, taken))
        return samples

    def _device(self, index: int, handle: Any, taken: datetime) -> GpuSample:
        nvml = self._nvml

        def read(what: str, call: Callable[[Any], Any]) -> Any:
            try:
                return call(handle)
            except (nvml.NVMLError, nvml.NVMLLibraryMismatchError) as exc:
                self._report(index, what, exc)
                return None

        rates = read("utilization", nvml.nvmlDeviceGetUtilizationRates)
        memory = read("memory", nvml.nvmlDeviceGetMemoryInfo)
        bar1 = read("bar1 memory", nvml.nvmlDeviceGetBAR1MemoryInfo)
        pci = read("pci info", nvml.nvmlDeviceGetPciInfo)
        processes = read("processes", nvml.nvmlDeviceGetComputeRunningProcesses)
        return GpuSample(
            node_id=self._node_id,
            index=index,
            bus_id=_text(pci.busId) if pci is not None else "",
            timestamp=taken,
            compute_utilization=_fraction(rates.gpu) if rates is not None else None,
            memory_utilization=_fraction(rates.memory) if rates is not None else None,
            memory_free=_size(memory.free) if memory is not None else None,
            memory_used=_size(memory.used) if memory is not None else None,
            bar1_free=_size(bar1.bar1Free) if bar1 is not None else None,
            bar1_used=_size(bar1.bar1Used) if bar1 is not None else None,
            processes=tuple(self._process(entry) for entry in processes or ()),
        )

    def _process(self, entry: Any) -> GpuProcess:
        pid = int(entry.pid)
        try:
            name: str | None = os.path.basename(_text(self._nvml.nvmlSystemGetProcessName(pid)))
        except self._nvml.NVMLError:
            # The process ended since the list was read, or lives where NVML may not look.
            name = None
        return GpuProcess(pid=pid, used_memory=_size(entry.usedGpuMemory), name=name or None)

    def _report(self, index: int, what: str, exc: Exception) -> None:
        key = (index, what, str(exc))
        if key in self._reported:
            return
        self._reported.add(key)
        device = "every device" if index < 0 else f"device {index}"
        log.warning("gpu.field_unavailable", device=device, field=what, reason=str(exc))


async def gpu_count(nvml: NvmlLibrary | None = None) -> int:
    """How many GPUs NVML sees on this node: 0 without a driver or when NVML fails.

    For capacity planning (the scheduler). Runs in a worker thread; init and shutdown are
    reference-counted by NVML, so this is safe beside a running `NvmlProbe`.
    """
    return await asyncio.to_thread(_count, nvml if nvml is not None else pynvml)


def _count(nvml: NvmlLibrary) -> int:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        log.debug("gpu.count_unavailable", reason=str(exc))
        return 0
    try:
        return int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        log.debug("gpu.count_unavailable", reason=str(exc))
        return 0
    finally:
        _shutdown(nvml)


def _shutdown(nvml: NvmlLibrary) -> None:
    with contextlib.suppress(nvml.NVMLError):
        nvml.nvmlShutdown()


def _text(value: Any) -> str:
    # pynvml decodes C strings to str; older releases and stand-ins may hand back bytes.
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _fraction(percent: Any) -> float:
    return min(max(float(percent) / 100.0, 0.0), 1.0)


def _size(value: Any) -> int | None:
    # NVML reports "not available" process memory as None (pynvml maps the sentinel).
    return int(value) if isinstance(value, int) and value >= 0 else None
