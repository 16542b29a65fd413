"""`aorta up --executor container` killed with SIGKILL while operators' containers run, then
started again on the same data dir: each container is adopted, never run a second time.

The held operator waits for a file that only the test can make (`podman exec ... touch
/tmp/go`, in the container's own tmpfs), so where the kill lands is decided, not hoped for. Two
jobs are held when the platform is killed, one for each way a held container can end:

- released after the restarted platform adopted its container: it is followed to its end;
- released while no platform runs, and awaited with `podman wait` before the restart: the
  container ended while nobody watched, and its completion is recorded from what it left.

Either way the engine shows one container for the operator, its log one start, and the job
ends HEALTHY with the outputs of both operators. Both ways share one kill and one restart:
starting the platform is most of the test's time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from aorta.api import jobs_pb2
from aorta.testing.images import build_busybox_image
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import restart_safe_port
from tests.e2e.api_client import Client, client, ident
from tests.e2e.container_platform import containers, start_up, stop

HELD = """\
echo "held: start"
until [ -e /tmp/go ]; do sleep 0.05; done
echo held > /output/held.txt
echo "held: done"
"""
AFTER = """\
set -e
cp /input/held.txt /output/after.txt
echo "after: done"
"""
PIPELINE = """\
api-version: 0.4.0
name: crash-test
operators:
- name: held
  container: {image: aorta/held, tag: latest}
  input: [{path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1, memory: 64}
- name: after
  container: {image: aorta/after, tag: latest}
  input: [{from: held, path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1, memory: 64}
"""
# Room for both jobs' held operators at once, whatever the machine's cores.
ENVIRON = {"AORTA_SCHEDULER_CPUS": "2"}


def held_containers(engine: PodmanEngine, job_id: str) -> list[dict[str, object]]:
    return containers(engine, **{"aorta.job": job_id, "aorta.operator": "held"})


async def running_container(engine: PodmanEngine, job_id: str, within: float = 60.0) -> str:
    """The id of the held operator's container once it runs."""
    deadline = time.monotonic() + within
    while True:
        found = await asyncio.to_thread(held_containers, engine, job_id)
        if found and found[0].get("State") == "running":
            return str(found[0]["Id"])
        assert time.monotonic() < deadline, f"the held operator never ran: {found}"
        await asyncio.sleep(0.1)


async def operator_log(api: Client, job_id: str, operator: str) -> list[str]:
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name=operator)
    return [line async for answer in api.jobs.ReadLogs(request) for line in answer.logs]


def release(engine: PodmanEngine, container: str) -> None:
    engine.cli.run("exec", container, "touch", "/tmp/go")


async def check_adopted(engine: PodmanEngine, port: int, job_id: str) -> None:
    async with client(port) as api:
        status = await api.stopped(job_id, within=90)
        assert status.status == jobs_pb2.JOB_STATUS_HEALTHY, list(status.messages)
        assert [d.status for d in status.operator_details] == [
            jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED
        ] * 2
        held_log = await operator_log(api, job_id, "held")
        assert held_log.count("held: start") == 1, held_log
        assert held_log[-1] == "held: done", held_log
        assert await operator_log(api, job_id, "after") == ["after: done"]
    assert len(held_containers(engine, job_id)) == 1


def adoptions(log: Path) -> list[str]:
    """The containers the platform writing `log` logged as adopted, in order."""
    return [
        str(json.loads(line)["container"])
        for line in log.read_text().splitlines()
        if "operator container adopted" in line
    ]


async def adopted(log: Path, container: str, within: float = 120.0) -> None:
    """Waits until the platform writing `log` logs that it adopted `container`."""
    deadline = time.monotonic() + within
    while container not in await asyncio.to_thread(adoptions, log):
        assert time.monotonic() < deadline, f"never adopted: {container}"
        await asyncio.sleep(0.1)


def name_of(engine: PodmanEngine, job_id: str) -> str:
    return str(held_containers(engine, job_id)[0]["Names"][0])  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_killed_aorta_up_adopts_its_operator_containers(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_busybox_image(podman_engine.cli, "aorta/held:latest", HELD)
    build_busybox_image(podman_engine.cli, "aorta/after:latest", AFTER)
    data, port = tmp_path / "platform", restart_safe_port()
    first_log, second_log = tmp_path / "up-1.log", tmp_path / "up-2.log"
    platform = await asyncio.to_thread(start_up, podman_engine, data, port, first_log, ENVIRON)
    try:
        async with client(port) as api:
            # Released after the restart / while the platform is down.
            later, meanwhile = [(await api.submit(PIPELINE))[0] for _ in range(2)]
        held_ids = {job: await running_container(podman_engine, job) for job in (later, meanwhile)}
        platform.send_signal(signal.SIGKILL)
        await asyncio.to_thread(platform.wait, 10)
    finally:
        stop(platform)
    # The containers outlived the platform that made them.
    for job_id in (later, meanwhile):
        assert held_containers(podman_engine, job_id)[0]["State"] == "running"
    await asyncio.to_thread(release, podman_engine, held_ids[meanwhile])
    await asyncio.to_thread(podman_engine.cli.run, "wait", held_ids[meanwhile])
    assert held_containers(podman_engine, meanwhile)[0]["State"] == "exited"
    restarted = await asyncio.to_thread(start_up, podman_engine, data, port, second_log, ENVIRON)
    try:
        await adopted(second_log, name_of(podman_engine, later))
        await asyncio.to_thread(release, podman_engine, held_ids[later])
        for job_id in (later, meanwhile):
            await check_adopted(podman_engine, port, job_id)
    finally:
        assert stop(restarted) == 0, second_log.read_text()[-4000:]
    # Each container was adopted once.
    assert sorted(adoptions(second_log)) == sorted(
        name_of(podman_engine, job_id) for job_id in (later, meanwhile)
    )
