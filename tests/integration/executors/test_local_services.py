"""The local executor's pipeline services: real host processes, their ports, data folder, log,
failures and stop (`aorta.executors.local.services`)."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from aorta.blobs.local import LocalBlobStore
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.services import (
    SERVICE_DATA_MACRO,
    HttpPort,
    ServiceFailed,
    ServiceLaunch,
    SharedVolume,
    service_key,
)

SERVE = """\
import http.server, os, pathlib, sys

data = pathlib.Path(sys.argv[1])
runs = data / "runs"
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
print("port", os.environ["NVIDIA_CLARA_SERVICE_PORT"], "data", data, flush=True)
host, port = os.environ["API"].split(":")
http.server.HTTPServer((host, int(port)), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def launch(
    script: Path, *, http: tuple[HttpPort, ...] = (HttpPort("API"),), **kw: object
) -> ServiceLaunch:
    command = (sys.executable, "-u", str(script), SERVICE_DATA_MACRO)
    sid = service_key("serve", "1", command)
    return ServiceLaunch(
        service_id=sid,
        name="serve",
        image="serve",
        tag="1",
        command=command,
        http=http,
        volumes=(SharedVolume("SHARED", "/shared"),),
        log_key=f"logs/services/{sid}.log",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "serve.py"
    path.write_text(SERVE)
    return path


async def stored_log(blobs: LocalBlobStore, key: str) -> str:
    return b"".join([chunk async for chunk in blobs.get(key)]).decode()


async def test_a_service_runs_until_stopped_and_keeps_its_data_across_restarts(
    executor: LocalExecutor, blobs: LocalBlobStore, script: Path
) -> None:
    runner = executor.service_runner()
    spec = launch(script)
    endpoint = await runner.ensure(spec)
    host, port = endpoint.environment["API"].split(":")
    assert host == "127.0.0.1"
    _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    data = endpoint.environment["SHARED"]
    assert [(m.source, m.path) for m in endpoint.mounts] == [(data, "/shared")]
    assert await runner.running() == [spec.service_id]
    # Asked again while it runs: the same service, not a second one.
    assert await runner.ensure(spec) == endpoint
    await runner.stop(spec.service_id, grace=1.0)
    assert await runner.running() == []
    assert f"port {port} data {data}" in await stored_log(blobs, spec.log_key)
    lines = [line async for line in runner.log_lines(spec.service_id)]
    assert lines[0] == f"port {port} data {data}"
    again = await runner.ensure(spec)
    assert again.environment["SHARED"] == data
    assert (Path(data) / "runs").read_text() == "xx"


async def test_a_service_without_a_command_fails_with_a_clear_message(
    executor: LocalExecutor, script: Path
) -> None:
    runner = executor.service_runner()
    with pytest.raises(ServiceFailed, match=r"has no container\.command: the local executor"):
        await runner.ensure(ServiceLaunch("svc-0000000000000000", "trtis", "trtis", "1", ()))


async def test_a_service_that_exits_at_start_fails_with_its_last_lines(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    crash = tmp_path / "crash.py"
    crash.write_text(
        "import sys\nprint('loading models', flush=True)\nsys.exit('no model store')\n"
    )
    with pytest.raises(ServiceFailed) as failed:
        await executor.service_runner().ensure(launch(crash))
    message = "\n".join(failed.value.messages)
    assert "pipeline service serve exited" in message
    assert "loading models" in message and "no model store" in message


async def test_a_service_never_ready_fails_after_its_timeout(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    silent = tmp_path / "silent.py"
    silent.write_text("import time\nprint('warming up', flush=True)\ntime.sleep(60)\n")
    runner = executor.service_runner()
    with pytest.raises(ServiceFailed, match=r"was not ready within 0\.5 s"):
        await runner.ensure(launch(silent, ready_timeout=0.5))
    assert await runner.running() == []


async def test_a_declared_port_in_use_fails_the_service(
    executor: LocalExecutor, script: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceFailed, match=f"cannot listen on its declared port {port}"):
            await executor.service_runner().ensure(launch(script, http=(HttpPort("API", port),)))


async def test_closing_the_executor_stops_its_services(
    blobs: LocalBlobStore, tmp_path: Path, script: Path
) -> None:
    local = LocalExecutor(blobs, tmp_path / "work2", log_flush_interval=0.1, close_grace=1.0)
    runner = local.service_runner()
    await runner.ensure(launch(script))
    await local.close()
    assert await runner.running() == []
