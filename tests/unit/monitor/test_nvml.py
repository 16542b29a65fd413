"""`NvmlProbe` and `gpu_count` against a stand-in of the `pynvml` module, and against the real
`pynvml` on this machine, with or without GPUs."""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from aorta.gpu import GpuProcess, NvmlProbe, gpu_count
from aorta.gpu.nvml import NO_DRIVER_MESSAGE

MIB = 1024 * 1024
MOMENT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def host_gpus() -> int:
    """This host's GPUs as `nvidia-smi -L` lists them, 0 without the tool or a driver: the
    real-pynvml tests hold on a machine with GPUs as on one without."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())


# NVML return codes, as pynvml numbers them.
NOT_SUPPORTED, NO_PERMISSION, LIBRARY_NOT_FOUND, GPU_IS_LOST = 3, 4, 12, 15


class NVMLError(Exception):
    """As pynvml's: built from an NVML return code, which `str` names."""

    _NAMES = {
        NOT_SUPPORTED: "Not Supported",
        NO_PERMISSION: "Insufficient Permissions",
        LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        GPU_IS_LOST: "GPU is lost",
    }

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._NAMES.get(self.value, f"NVML Error with code {self.value}")


class NVMLLibraryMismatchError(Exception):
    """pynvml raises it (not an NVMLError) when an unversioned function is missing."""


@dataclass
class Device:
    bus_id: str
    gpu_percent: int = 0
    memory_percent: int = 0
    total: int = 16 * 1024 * MIB
    used: int = 0
    bar1_total: int = 256 * MIB
    bar1_used: int = 0
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)


class FakeNvml:
    """A stand-in for the `pynvml` module; `devices[i] = None` makes that handle fail."""

    NVMLError = NVMLError
    NVMLLibraryMismatchError = NVMLLibraryMismatchError

    def __init__(
        self,
        devices: list[Device | None],
        *,
        init_error: int | None = None,
        names: dict[int, str | bytes] | None = None,
    ) -> None:
        self.devices = devices
        self.init_error = init_error
        self.names = names or {}
        self.inits = 0
        self.shutdowns = 0
        self.threads: set[int] = set()

    def nvmlInit(self) -> None:
        self.threads.add(threading.get_ident())
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        self.threads.add(threading.get_ident())
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Device:
        device = self.devices[index]
        if device is None:
            raise NVMLError(GPU_IS_LOST)
        return device

    def nvmlDeviceGetUtilizationRates(self, handle: Device) -> Any:
        self._fail(handle, "utilization")
        return SimpleNamespace(gpu=handle.gpu_percent, memory=handle.memory_percent)

    def nvmlDeviceGetMemoryInfo(self, handle: Device) -> Any:
        self._fail(handle, "memory")
        return SimpleNamespace(
            total=handle.total, free=handle.total - handle.used, used=handle.used
        )

    def nvmlDeviceGetBAR1MemoryInfo(self, handle: Device) -> Any:
        self._fail(handle, "bar1")
        free = handle.bar1_total - handle.bar1_used
        return SimpleNamespace(
            bar1Total=handle.bar1_total, bar1Free=free, bar1Used=handle.bar1_used
        )

    def nvmlDeviceGetPciInfo(self, handle: Device) -> Any:
        self._fail(handle, "pci")
        return SimpleNamespace(busId=handle.bus_id, pciDeviceId=0x233510DE)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Device) -> Any:
        self._fail(handle, "processes")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in handle.processes]

    def nvmlSystemGetProcessName(self, pid: int) -> str | bytes:
        if pid not in self.names:
            raise NVMLError(NO_PERMISSION)
        return self.names[pid]

    @staticmethod
    def _fail(device: Device, what: str) -> None:
        if what in device.failures:
            raise device.failures[what]


def two_devices() -> FakeNvml:
    return FakeNvml(
        [
            Device(
                "00000000:3B:00.0",
                gpu_percent=37,
                memory_percent=12,
                used=4 * 1024 * MIB,
                bar1_used=6 * MIB,
                processes=[(4242, 3 * 1024 * MIB), (4343, None)],
            ),
            Device("00000000:86:00.0", failures={"processes": NVMLError(NOT_SUPPORTED)}),
        ],
        names={4242: "/opt/tritonserver/bin/tritonserver", 4343: b"python3"},
    )


async def test_samples_every_device_off_the_event_loop() -> None:
    nvml = two_devices()
    probe = NvmlProbe("node-a", nvml=nvml, clock=lambda: MOMENT)

    first, second = await probe.sample()

    assert threading.get_ident() not in nvml.threads
    assert first.node_id == "node-a"
    assert first.index == 0
    assert first.bus_id == "00000000:3B:00.0"
    assert first.pcie_id == 0x00003B00
    assert first.timestamp == MOMENT
    assert first.compute_utilization == pytest.approx(0.37)
    assert first.memory_utilization == pytest.approx(0.12)
    assert first.memory_used == 4 * 1024 * MIB
    assert first.memory_free == 12 * 1024 * MIB
    assert (first.memory_free_mb, first.memory_used_mb) == (12 * 1024, 4 * 1024)
    assert (first.bar1_free, first.bar1_used) == (250 * MIB, 6 * MIB)
    assert first.processes == (
        GpuProcess(pid=4242, used_memory=3 * 1024 * MIB, name="tritonserver"),
        GpuProcess(pid=4343, used_memory=None, name="python3"),
    )
    assert second.index == 1
    assert second.bus_id == "00000000:86:00.0"
    assert second.processes == ()  # NOT_SUPPORTED: that field only
    assert second.memory_free == 16 * 1024 * MIB
    assert nvml.inits == 1


async def test_init_runs_once_and_close_shuts_nvml_down() -> None:
    nvml = two_devices()
    probe = NvmlProbe("node-a", nvml=nvml)
    for _ in range(3):
        assert len(await probe.sample()) == 2
    assert nvml.inits == 1
    await probe.close()
    await probe.close()
    assert nvml.shutdowns == 1
    assert await probe.sample() == []


async def test_a_failing_field_is_unknown_and_logged_once() -> None:
    nvml = FakeNvml(
        [
            Device(
                "0000:01:00.0",
                failures={
                    "utilization": NVMLError(NOT_SUPPORTED),
                    "bar1": NVMLError(NO_PERMISSION),
                    "memory": NVMLError(NOT_SUPPORTED),
                    "pci": NVMLError(NOT_SUPPORTED),
                    "processes": NVMLLibraryMismatchError("use a versioned function"),
                },
            )
        ]
    )
    probe = NvmlProbe("node-a", nvml=nvml)
    with capture_logs() as logs:
        (gpu,) = await probe.sample()
        await probe.sample()

    assert (gpu.compute_utilization, gpu.memory_utilization) == (None, None)
    assert (gpu.memory_free, gpu.memory_used, gpu.bar1_free, gpu.bar1_used) == (None,) * 4
    assert (gpu.bus_id, gpu.pcie_id, gpu.processes) == ("", 0, ())
    fields = sorted(entry["field"] for entry in logs)
    assert fields == ["bar1 memory", "memory", "pci info", "processes", "utilization"]
    assert all("exc_info" not in entry and entry["device"] == "device 0" for entry in logs)


async def test_a_device_whose_handle_fails_is_left_out() -> None:
    nvml = FakeNvml([None, Device("0000:02:00.0")])
    probe = NvmlProbe("node-a", nvml=nvml)
    with capture_logs() as logs:
        (gpu,) = await probe.sample()
    assert gpu.index == 1
    assert [entry["reason"] for entry in logs] == ["GPU is lost"]


async def test_without_a_driver_the_probe_is_empty_and_says_so_once() -> None:
    nvml = FakeNvml([Device("0000:01:00.0")], init_error=LIBRARY_NOT_FOUND)
    probe = NvmlProbe("node-a", nvml=nvml)
    with capture_logs() as logs:
        assert await probe.sample() == []
        assert await probe.sample() == []
    assert [entry["event"] for entry in logs] == [NO_DRIVER_MESSAGE]
    assert logs[0]["reason"] == "NVML Shared Library Not Found"
    await probe.close()
    assert nvml.shutdowns == 0


async def test_real_pynvml_reports_this_hosts_gpus_and_without_a_driver_says_so_once() -> None:
    present = host_gpus()
    probe = NvmlProbe("this-node")
    with capture_logs() as logs:
        first = await probe.sample()
        second = await probe.sample()
    await probe.close()
    assert [gpu.index for gpu in first] == [gpu.index for gpu in second] == list(range(present))
    warnings = [line for line in logs if line["log_level"] == "warning"]
    if present:
        assert warnings == [], warnings
        return
    (line,) = warnings
    assert line["event"] == "no NVIDIA driver found: GPU metrics are empty"
    assert "exc_info" not in line
    assert "Traceback" not in str(line)


async def test_gpu_count() -> None:
    nvml = two_devices()
    assert await gpu_count(nvml) == 2
    assert (nvml.inits, nvml.shutdowns) == (1, 1)
    assert threading.get_ident() not in nvml.threads
    assert await gpu_count(FakeNvml([], init_error=LIBRARY_NOT_FOUND)) == 0


async def test_gpu_count_with_the_real_pynvml_counts_this_hosts_gpus() -> None:
    assert await gpu_count() == host_gpus()
