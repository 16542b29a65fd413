"""GPU samples as Clara messages, field by field: Utilization and GpuMetrics.

The samples come through the monitor's real `Sampler` (a stand-in probe with two GPUs, stand-in
process owners), so the attribution of processes to job operators is part of what is checked.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aorta.api import clara_pb2
from aorta.bus.memory import MemoryBus
from aorta.gpu import GpuProcess, GpuSample, NodeSample, ProcessOwner, pcie_id_of
from aorta.ids import JobId
from aorta.testing.gpu import StandInProbe, StaticOwners
from aorta_services.monitor import messages
from aorta_services.monitor.domain.fleet import Fleet
from aorta_services.monitor.sampler import Sampler
from aorta_services.monitor.settings import MonitorSettings

MIB = 1024 * 1024
JOB = JobId("0123456789abcdef0123456789abcdef")
MOMENT = datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)  # Unix time 1_000_000_000
MOMENT_IN_CLARA_SECONDS = 1_000_000_000 + 62_135_596_800


def two_gpus() -> list[GpuSample]:
    """GPU 0 runs an operator (pid 101), a Triton server (202) and a nameless process (303);
    GPU 1 is idle and could not report its utilization or BAR1."""
    return [
        GpuSample(
            node_id="node-a",
            index=0,
            bus_id="00000000:3B:00.0",
            timestamp=MOMENT,
            compute_utilization=0.5,
            memory_utilization=0.25,
            memory_free=3 * 1024 * MIB + MIB // 2,
            memory_used=1024 * MIB,
            bar1_free=200 * MIB,
            bar1_used=56 * MIB,
            processes=(
                GpuProcess(pid=101, used_memory=700 * MIB, name="python3"),
                GpuProcess(pid=202, used_memory=300 * MIB, name="tritonserver"),
                GpuProcess(pid=303, used_memory=None, name=None),
            ),
        ),
        GpuSample(
            node_id="node-a",
            index=1,
            bus_id="00000001:AF:1F.7",
            timestamp=MOMENT,
            memory_free=16 * 1024 * MIB,
            memory_used=0,
        ),
    ]


async def sampled() -> NodeSample:
    owners = StaticOwners({101: ProcessOwner(job_id=JOB, operator="segmentation")})
    sampler = Sampler(
        bus=MemoryBus(),
        probe=StandInProbe(two_gpus()),
        owners=owners,
        fleet=Fleet(),
        settings=MonitorSettings(interval=1.0, node_id="node-a"),
        clock=lambda: MOMENT,
    )
    node = await sampler.sample()
    assert owners.asked == [{101, 202, 303}]
    return node


async def test_utilization_carries_every_field_in_clara_units() -> None:
    response = messages.utilization_response([await sampled()])

    assert response.HasField("header")
    assert response.header.code == 0
    assert len(response.gpu_metrics) == 2
    busy, idle = response.gpu_metrics

    assert busy.node_id == "node-a"
    assert busy.pcie_id == 0x00003B00  # domain 0, bus 0x3B, device 0, function 0
    assert busy.compute_utilization == 0.5
    assert busy.memory_utilization == 0.25
    assert busy.memory_free == 3 * 1024  # MB, rounded down
    assert busy.memory_used == 1024
    assert busy.timestamp.value == MOMENT_IN_CLARA_SECONDS
    operator, triton, nameless = busy.process_details
    assert (operator.name, operator.job_id.value) == ("segmentation", JOB)
    assert triton.name == "tritonserver"
    assert not triton.HasField("job_id")
    assert nameless.name == "pid 303"
    assert not nameless.HasField("job_id")

    assert idle.node_id == "node-a"
    assert idle.pcie_id == 0x0001AFFF  # domain 1, bus 0xAF, device 0x1F, function 7
    assert idle.compute_utilization == 0.0  # not reported: 0 on the wire
    assert idle.memory_utilization == 0.0
    assert idle.memory_free == 16 * 1024
    assert idle.memory_used == 0
    assert idle.timestamp.value == MOMENT_IN_CLARA_SECONDS
    assert list(idle.process_details) == []


async def test_gpu_metrics_carry_bytes_and_fractions() -> None:
    response = messages.gpu_metrics_response([await sampled()])

    assert response.HasField("header")
    assert response.header.code == 0
    busy, idle = response.gpu_details
    assert busy.device_id == 0
    assert busy.data.gpu_utilization == 0.5
    assert busy.data.memory_utilization == 0.25
    assert busy.data.free_bar_1 == 200 * MIB
    assert busy.data.used_bar_1 == 56 * MIB
    assert busy.data.free_gpu_memory == 3 * 1024 * MIB + MIB // 2
    assert busy.data.used_gpu_memory == 1024 * MIB
    assert busy.timestamp.value == MOMENT_IN_CLARA_SECONDS
    assert idle.device_id == 1
    assert (idle.data.free_bar_1, idle.data.used_bar_1) == (0, 0)
    assert idle.data.free_gpu_memory == 16 * 1024 * MIB


def test_gpus_of_several_nodes_follow_the_given_node_order() -> None:
    nodes = [
        NodeSample("node-a", 1.0, MOMENT, tuple(two_gpus())),
        NodeSample("node-b", 1.0, MOMENT, ()),
        NodeSample("node-c", 1.0, MOMENT, (GpuSample("node-c", 0, "0:01:00.0", MOMENT),)),
    ]
    utilization = messages.utilization_response(nodes)
    assert [(g.node_id, g.pcie_id) for g in utilization.gpu_metrics] == [
        ("node-a", 0x00003B00),
        ("node-a", 0x0001AFFF),
        ("node-c", 0x00000100),
    ]
    assert [d.device_id for d in messages.gpu_metrics_response(nodes).gpu_details] == [0, 1, 0]


def test_no_gpu_gives_an_empty_list_with_a_header() -> None:
    for response in (messages.utilization_response([]), messages.gpu_metrics_response([])):
        assert response.HasField("header")
        assert response.header.code == 0
    assert list(messages.utilization_response([]).gpu_metrics) == []
    # Even an empty answer is a non-empty message on the bus, thanks to the header.
    assert messages.utilization_response([]).SerializeToString() != b""


async def test_a_response_reads_back_with_the_clara_stubs() -> None:
    raw = messages.utilization_response([await sampled()]).SerializeToString()
    parsed = clara_pb2.ClaraUtilizationResponse.FromString(raw)
    assert parsed.gpu_metrics[0].process_details[0].job_id.value == JOB


@pytest.mark.parametrize(
    ("bus_id", "expected"),
    [
        ("00000000:3B:00.0", 0x00003B00),
        ("0000:3b:00.0", 0x00003B00),
        ("3B:00.0", 0x00003B00),
        ("00000000:00:1F.7", 0x000000FF),
        ("0000FFFF:FF:1F.7", 0xFFFFFFFF),
        ("00010002:01:00.0", 0x00020100),  # only the domain's low 16 bits fit
        ("", 0),
        ("not a bus id", 0),
        ("0000:3B:00.8", 0),
    ],
)
def test_pcie_id_packs_domain_bus_device_function(bus_id: str, expected: int) -> None:
    assert pcie_id_of(bus_id) == expected
