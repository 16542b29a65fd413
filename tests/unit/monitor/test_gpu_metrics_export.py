"""The monitor's GPU gauges hold this node's last sample: utilisation and memory by GPU index,
a value the device did not report left out, a GPU gone since dropped."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from aorta.bus.memory import MemoryBus
from aorta.gpu import GpuSample
from aorta.testing.gpu import StandInProbe, StaticOwners
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.sampler import Sampler
from aorta_services.monitor.settings import MonitorSettings

MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def gpu(index: int, utilization: float | None, used: int) -> GpuSample:
    return GpuSample(
        node_id="node-a",
        index=index,
        bus_id=f"00000000:{index:02X}:00.0",
        timestamp=MOMENT,
        compute_utilization=utilization,
        memory_used=used,
    )


def value(name: str, index: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"gpu": index})


async def test_the_gauges_follow_the_last_sample() -> None:
    probe = StandInProbe([gpu(0, 0.75, 2048), gpu(1, None, 0)])
    sampler = Sampler(
        bus=MemoryBus(),
        probe=probe,
        owners=StaticOwners(),
        fleet=Fleet(),
        settings=MonitorSettings(interval=1.0, node_id="node-a"),
        clock=lambda: MOMENT,
    )
    await sampler.sample()
    assert value("aorta_gpu_utilization_ratio", "0") == 0.75
    assert value("aorta_gpu_memory_used_bytes", "0") == 2048
    assert value("aorta_gpu_utilization_ratio", "1") is None
    assert value("aorta_gpu_memory_used_bytes", "1") == 0

    probe.gpus = [gpu(0, 0.25, 4096)]
    await sampler.sample()
    assert value("aorta_gpu_utilization_ratio", "0") == 0.25
    assert value("aorta_gpu_memory_used_bytes", "0") == 4096
    assert value("aorta_gpu_memory_used_bytes", "1") is None
