"""`aorta version` and `aorta utilization`."""

from __future__ import annotations

import json

import aorta as package
from aorta.api import clara_pb2, common_pb2
from tests.integration.cli.cli_support import Aorta
from tests.integration.cli.fake_platform import FakePlatform

Gpu = clara_pb2.ClaraUtilizationResponse.GpuUtilization


def test_version_shows_client_server_and_host(aorta: Aorta, platform: FakePlatform) -> None:
    shown = aorta("version")
    assert shown.exit_code == 0
    assert shown.stdout.splitlines() == [
        f"client: aorta {package.__version__}",
        "server: 0.1.0",
        f"host: {platform.address}",
        "platform: Fake platform, Clara Platform API 0.8.1",
    ]
    assert json.loads(aorta("version", "--json").stdout) == {
        "client": package.__version__,
        "server": "0.1.0",
        "host": platform.address,
        "messages": ["Fake platform, Clara Platform API 0.8.1"],
    }


def test_utilization_without_gpus_says_so(aorta: Aorta, platform: FakePlatform) -> None:
    shown = aorta("utilization")
    assert shown.exit_code == 0
    assert shown.stdout == f"No GPUs reported by the platform at {platform.address}.\n"
    assert aorta("utilization", "--json").stdout == "[]\n"


def _gpu() -> Gpu:
    gpu = Gpu(
        node_id="node-a",
        pcie_id=1,
        compute_utilization=0.42,
        memory_used=3000,
        memory_free=13000,
        memory_utilization=0.1875,
    )
    gpu.process_details.add(name="segment", job_id=common_pb2.Identifier(value="ab" * 16))
    gpu.process_details.add(name="tritonserver")
    return gpu


def test_utilization_shows_each_gpu_and_what_runs_on_it(
    aorta: Aorta, platform: FakePlatform
) -> None:
    platform.gpus = [_gpu()]
    shown = aorta("utilization")
    assert shown.stdout.splitlines() == [
        "NODE    GPU  COMPUTE  MEMORY                   PROCESSES",
        "node-a  1    42%      3,000 / 16,000 MB (19%)  segment@abababab, tritonserver",
    ]
    [document] = json.loads(aorta("utilization", "--json").stdout)
    assert document["processes"] == [
        {"name": "segment", "job_id": "ab" * 16},
        {"name": "tritonserver", "job_id": None},
    ]
    assert document["memory_used_mb"] == 3000


def test_utilization_watch_prints_every_snapshot_until_the_stream_ends(
    aorta: Aorta, platform: FakePlatform
) -> None:
    platform.gpus = [_gpu()]
    watched = aorta("utilization", "--watch", "--json")
    assert watched.exit_code == 0
    snapshots = [json.loads(line) for line in watched.stdout.splitlines()]
    assert len(snapshots) == 5 and all(s[0]["node_id"] == "node-a" for s in snapshots)
