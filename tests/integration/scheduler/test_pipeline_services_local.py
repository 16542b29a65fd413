"""Pipeline services on the local executor, through the gateway: host-process services shared by
jobs and pipelines, reached through their connection variable and shared folder, stopped when
idle and on Clara.Stop, a crash at start faulting the job with the service's last log lines, and
a service needing a GPU the node lacks faulting its job at once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aorta import subjects
from aorta.api import aorta_services_pb2, aorta_services_pb2_grpc, jobs_pb2
from aorta_services.scheduler import app as scheduler_app
from aorta_services.scheduler.domain.services import ServiceState
from aorta_services.scheduler.service_records import ServiceRepository
from tests.integration.scheduler.jobs_platform import STEADY_SCHEDULER_ENV, Platform

P = jobs_pb2

SERVICE = """\
import http.server, os, pathlib, sys

data, marks = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if os.environ.get("CRASH"):
    print("loading the model store", flush=True)
    print("error: the model store is empty", flush=True)
    sys.exit(3)
(data / "model.txt").write_text("spleen v1")
with (marks / "service.starts").open("a") as starts:
    starts.write(f"{os.getpid()}\\n")
host, port = os.environ["NVIDIA_CLARA_TRTISURI"].split(":")


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"trtis ready"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print(f"serving on {port}", flush=True)
http.server.HTTPServer((host, int(port)), Answer).serve_forever()
"""

OPERATOR = """\
import os, pathlib, urllib.request

address = os.environ["NVIDIA_CLARA_TRTISURI"]
answer = urllib.request.urlopen(f"http://{address}/", timeout=10).read().decode()
model = (pathlib.Path(os.environ["MODELS_PATH"]) / "model.txt").read_text()
out = pathlib.Path(os.environ["NVIDIA_CLARA_OUTPUTPATHS"].split(":", 1)[1])
out.mkdir(parents=True, exist_ok=True)
(out / "seen.txt").write_text(f"{answer} / {model}")
print(f"service said {answer!r}; model {model!r}", flush=True)
"""


def definition(tmp: Path, *, flag: str = "", requests: str = "{cpu: 1, memory: 128}") -> str:
    """Two operators declaring the same trtis-like service (http + volume connections)."""
    service_py, operator_py, marks = tmp / "service.py", tmp / "operator.py", tmp / "marks"
    extra = f", {flag}" if flag else ""
    command = f'[python, -u, {service_py}, "$(NVIDIA_CLARA_SERVICE_DATA_PATH)", {marks}{extra}]'
    variables = "    variables: {CRASH: '1'}\n" if flag == "--crash" else ""
    service = (
        "  services:\n  - name: trtis\n"
        f"    container: {{image: trtis, tag: '19.08', command: {command}}}\n"
        f"    requests: {requests}\n" + variables + "    connections:\n"
        "      http: [{name: NVIDIA_CLARA_TRTISURI}]\n"
        "      volume: [{name: MODELS_PATH, path: /models}]\n"
    )
    operator = f"[python, -u, {operator_py}]"
    return (
        "api-version: 0.4.0\nname: covid\ntimeout: 60\noperators:\n"
        f"- name: segment\n  container: {{image: seg, command: {operator}}}\n"
        "  input: [{path: /input}]\n  output: [{path: /output}]\n"
        "  requests: {cpu: 1, memory: 128}\n"
        + service
        + f"- name: classify\n  container: {{image: cls, command: {operator}}}\n"
        "  input: [{from: segment, path: /input}]\n  output: [{path: /output}]\n"
        "  requests: {cpu: 1, memory: 128}\n" + service
    )


def scripts(tmp: Path) -> None:
    (tmp / "service.py").write_text(SERVICE)
    (tmp / "operator.py").write_text(OPERATOR)
    marks = tmp / "marks"
    marks.mkdir(exist_ok=True)
    marks.chmod(0o777)  # services and operators may run as another user


async def restart_scheduler(platform: Platform, idle: str) -> None:
    await platform.scheduler.stop(1.0)
    env = {**STEADY_SCHEDULER_ENV, "AORTA_SERVICE_IDLE_SECONDS": idle}
    platform.services.append(await scheduler_app.start(platform.context, environ=env))


async def run_job(platform: Platform, pipeline_id: str, name: str) -> jobs_pb2.JobsStatusResponse:
    job_id, _ = await platform.job(pipeline_id, name)
    await platform.start(job_id)
    return await platform.stopped(job_id)


async def live_services(platform: Platform) -> list[str]:
    records = await ServiceRepository(platform.context.store).all()
    return [record.command[-1] for record in records if record.state is ServiceState.READY]


async def service_log(
    platform: Platform, service: str, *, until_lines: int, within: float = 30.0
) -> list[str]:
    """The service's log through aorta.v1.Services/ReadLogs, once it holds `until_lines`
    lines (the runner stores it every second while the service runs)."""
    stub = aorta_services_pb2_grpc.ServicesStub(platform.channel)
    request = aorta_services_pb2.ServicesReadLogsRequest(service=service)
    deadline = time.monotonic() + within
    while True:
        lines = [line async for reply in stub.ReadLogs(request) for line in reply.logs]
        if len(lines) >= until_lines:
            return lines
        assert time.monotonic() < deadline, f"the log stayed at {lines}"
        await asyncio.sleep(0.1)


async def until_no_live_service(platform: Platform, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while live := await live_services(platform):
        assert time.monotonic() < deadline, f"services still live: {live}"
        await asyncio.sleep(0.05)


async def test_jobs_and_pipelines_share_one_host_service_until_it_idles(
    platform: Platform,
) -> None:
    scripts(platform.tmp_path)
    await restart_scheduler(platform, idle="1")
    first = await platform.pipeline(definition(platform.tmp_path))
    second = await platform.pipeline(definition(platform.tmp_path))
    statuses = await asyncio.gather(
        run_job(platform, first, "a"), run_job(platform, first, "b"), run_job(platform, second, "c")
    )
    for status in statuses:
        assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    starts = (platform.tmp_path / "marks" / "service.starts").read_text().split()
    assert len(starts) == 1
    job_id = statuses[0].job_id.value
    assert await platform.logs(job_id, "classify") == [
        "service said 'trtis ready'; model 'spleen v1'"
    ]
    await until_no_live_service(platform)


async def test_a_different_command_starts_another_and_clara_stop_stops_them_all(
    platform: Platform,
) -> None:
    scripts(platform.tmp_path)
    await restart_scheduler(platform, idle="600")
    plain = await platform.pipeline(definition(platform.tmp_path))
    other = await platform.pipeline(definition(platform.tmp_path, flag="--other"))
    for pipeline_id in (plain, other):
        status = await run_job(platform, pipeline_id, "job")
        assert status.status == P.JOB_STATUS_HEALTHY, status.messages
    assert len((platform.tmp_path / "marks" / "service.starts").read_text().split()) == 2
    assert len(await live_services(platform)) == 2
    stub = aorta_services_pb2_grpc.ServicesStub(platform.channel)
    request = aorta_services_pb2.ServicesListRequest()
    # A job's stop is recorded before the leader releases it from its services.
    deadline = time.monotonic() + 30.0
    while True:
        listed = [reply.service async for reply in stub.List(request)]
        if not any(s.job_ids for s in listed) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [(s.name, s.image, s.tag, s.state) for s in listed] == [
        ("trtis", "trtis", "19.08", "ready")
    ] * 2
    assert all(s.address.startswith("127.0.0.1:") and not s.job_ids for s in listed)
    port = listed[0].address.split(":")[1]
    lines = await service_log(platform, listed[0].service_id, until_lines=3)
    # Its own first line, then http.server's line for each operator's request.
    assert lines[0] == f"serving on {port}"
    assert all('"GET / HTTP/1.1" 200' in line for line in lines[1:])
    bus = platform.context.bus
    answer = await bus.request(subjects.SCHEDULER_PLATFORM_STOP, b'{"reason": "x"}')
    assert json.loads(answer) == {"stopped": {"jobs": 0}}
    await until_no_live_service(platform)


async def test_a_service_crashing_at_start_faults_the_job_with_its_last_lines(
    platform: Platform,
) -> None:
    scripts(platform.tmp_path)
    pipeline_id = await platform.pipeline(definition(platform.tmp_path, flag="--crash"))
    status = await run_job(platform, pipeline_id, "doomed")
    assert status.status == P.JOB_STATUS_FAULTED
    message = "\n".join(status.messages)
    assert "pipeline service trtis exited" in message
    assert "error: the model store is empty" in message


async def test_a_service_needing_a_gpu_faults_the_job_at_once_on_a_node_without(
    platform: Platform,
) -> None:
    scripts(platform.tmp_path)
    gpu = definition(platform.tmp_path, requests="{gpu: 1}")
    status = await run_job(platform, await platform.pipeline(gpu), "gpu")
    assert status.status == P.JOB_STATUS_FAULTED
    assert "can never run on this node" in status.messages[-1]
    assert not (platform.tmp_path / "marks" / "service.starts").exists()
