"""The split-process deployment (tests/e2e/test_jobs_processes.py) with the container executor:
each service in its own process (`aorta serve NAME`), two scheduler replicas with
`AORTA_EXECUTOR=container` on one Podman engine, and two gateways.

The leading replica is killed with SIGKILL while the middle operator's container runs (held
until the test releases it, see tests/e2e/test_containers_crash.py). Unlike a host process, the
container outlives its scheduler: the other replica takes the lease and adopts it; the job ends
HEALTHY with every output, one container and one start per operator.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from aorta.api import jobs_pb2
from aorta.payload_layout import operator_output_prefix
from aorta.settings import Settings
from aorta.testing.images import build_busybox_image
from aorta.testing.nats import async_nats_server
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_ports
from tests.e2e.api_client import client
from tests.e2e.container_platform import PLATFORM_ENV, containers
from tests.e2e.test_containers_crash import operator_log, release
from tests.e2e.test_jobs_processes import (
    AORTA,
    SCHEDULER_ENV,
    Processes,
    leader_pid,
    logged,
    processes,
    serving,
)

__all__ = ["processes"]  # the fixture, used by name

CHAIN = ("first", "slow", "last")
OPERATOR = """\
echo "$NVIDIA_CLARA_STAGENAME: start"
if [ "$HOLD" = yes ]; then until [ -e /tmp/go ]; do sleep 0.05; done; fi
echo "$NVIDIA_CLARA_STAGENAME" > "/output/$NVIDIA_CLARA_STAGENAME.txt"
echo "$NVIDIA_CLARA_STAGENAME: done"
"""


def definition() -> str:
    lines = ["api-version: 0.4.0", "name: crash-test", "operators:"]
    previous = None
    for name in CHAIN:
        source = f"{{from: {previous}, path: /input}}" if previous else "{path: /input}"
        hold = "yes" if name == "slow" else "no"
        lines += [
            f"- name: {name}",
            "  container: {image: aorta/chain-operator, tag: latest}",
            f"  input: [{source}]",
            "  output: [{path: /output}]",
            "  requests: {cpu: 1, memory: 256}",
            f'  variables: {{HOLD: "{hold}"}}',
        ]
        previous = name
    return "\n".join(lines) + "\n"


async def slow_container(engine: PodmanEngine, job_id: str) -> str:
    """The id of the slow operator's container once it runs."""
    for _ in range(600):
        found = containers(engine, **{"aorta.job": job_id, "aorta.operator": "slow"})
        if found and found[0].get("State") == "running":
            return str(found[0]["Id"])
        await asyncio.sleep(0.1)
    raise AssertionError("the slow operator's container never ran")


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_killing_the_leading_scheduler_leaves_its_container_to_the_other_replica(
    processes: Processes, podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_busybox_image(podman_engine.cli, "aorta/chain-operator:latest", OPERATOR)
    data = tmp_path / "data"
    async with async_nats_server(tmp_path / "nats") as nats:
        common = {
            "AORTA_DATA_DIR": str(data),
            "AORTA_NATS_URL": nats.url,
            **SCHEDULER_ENV,
            **PLATFORM_ENV,
            "AORTA_EXECUTOR": "container",
            "AORTA_CONTAINER_HOST": podman_engine.url,
        }
        settings = Settings.from_env(common)
        for name in ("pipelines", "payloads"):
            processes.launch(name, [str(AORTA), "serve", name], common)
        schedulers = {
            process.pid: (process, tmp_path / f"scheduler-{n}.log")
            for n, process in (
                (n, processes.launch(f"scheduler-{n}", [str(AORTA), "serve", "scheduler"], common))
                for n in (1, 2)
            )
        }
        ports = list(free_ports(2))
        for n, port in enumerate(ports):
            env = {**common, "AORTA_GRPC_ADDRESS": f"127.0.0.1:{port}"}
            processes.launch(f"gateway-{n}", [str(AORTA), "serve", "gateway"], env)
        for port in ports:
            await serving(port)
        # A gateway serves before the schedulers do: each connects to the engine first.
        for _, log in schedulers.values():
            await logged(log, "scheduler.serving")
        async with client(ports[0]) as first, client(ports[1]) as second:
            job_id, payload_id = await first.submit(definition())
            container = await slow_container(podman_engine, job_id)
            leader = await leader_pid(settings)
            killed, _ = schedulers[leader]
            killed.send_signal(signal.SIGKILL)
            await asyncio.to_thread(killed.wait, 10)
            survivor, survivor_log = next(v for pid, v in schedulers.items() if pid != leader)
            await logged(survivor_log, "operator container adopted")
            await asyncio.to_thread(release, podman_engine, container)
            status = await second.stopped(job_id, within=90)
            assert status.status == jobs_pb2.JOB_STATUS_HEALTHY, list(status.messages)
            for name in CHAIN:
                lines = await operator_log(second, job_id, name)
                assert lines == [f"{name}: start", f"{name}: done"], lines
                labels = {"aorta.job": job_id, "aorta.operator": name}
                assert len(containers(podman_engine, **labels)) == 1
                prefix = operator_output_prefix(payload_id, name, None)
                assert (data / "blobs" / prefix / f"{name}.txt").read_text() == f"{name}\n"
            assert await leader_pid(settings) != leader
            assert survivor.poll() is None
