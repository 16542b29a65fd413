"""`aorta up` as a user runs it: NVIDIA's client reaches it, SIGTERM ends it and every child it
started, a second platform cannot take its data dir nor a taken port, and a restart keeps all
state.

(A missing nats-server binary is covered where it is looked up, in the bus tests.)"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import grpc
import psutil
import pytest

from aorta import __version__
from aorta.api import pipelines_pb2, pipelines_pb2_grpc
from aorta.testing.clara_client import run_clara_python
from aorta.testing.embedded import AORTA, aorta_up
from aorta.testing.ports import free_port, restart_safe_port

pytestmark = pytest.mark.timeout(180)

DEFINITION = """\
api-version: 0.4.0
name: kept
operators:
- name: only
  container: {image: busybox, command: ["true"]}
"""
VERSION = """
import sys
from nvidia_clara.clara_client import ClaraClient

info = ClaraClient(target=sys.argv[1], port=sys.argv[2]).version()
print(f"{info.major}.{info.minor}.{info.patch}")
"""


def _create_pipeline(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pipelines_pb2_grpc.PipelinesStub(channel)
        request = pipelines_pb2.PipelinesCreateRequest(
            definition=pipelines_pb2.PipelineDefinitionFile(path="kept.yml", content=DEFINITION)
        )
        reply = stub.Create(iter([request]), timeout=30)
        assert reply.header.code == 0, list(reply.header.messages)
        return str(reply.pipeline_id.value)


def _pipeline_ids(port: int) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pipelines_pb2_grpc.PipelinesStub(channel)
        replies = stub.List(pipelines_pb2.PipelinesListRequest(), timeout=30)
        return {reply.details.pipeline_id.value for reply in replies if reply.details.name}


def test_nvidia_client_version_and_sigterm_leaves_no_child(tmp_path: Path) -> None:
    port = free_port()
    with aorta_up(tmp_path / "data", port) as process:
        children = psutil.Process(process.pid).children(recursive=True)
        assert any("nats-server" in child.name() for child in children)
        result = run_clara_python(VERSION, args=["127.0.0.1", str(port)])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == __version__
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left behind: {[child.pid for child in alive]}"


def test_a_second_platform_is_refused_and_a_restart_keeps_state(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", restart_safe_port()
    with aorta_up(data_dir, port):
        pipeline_id = _create_pipeline(port)
        command = [AORTA, "up", "--data-dir", str(data_dir), "--grpc-port", str(free_port())]
        second = subprocess.run(
            [*command, "--web-port", "0", "--metrics-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "in use" in second.stderr and str(data_dir) in second.stderr
    port = free_port()
    with aorta_up(data_dir, port):
        assert pipeline_id in _pipeline_ids(port)


def test_a_taken_port_ends_aorta_up_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        command = [AORTA, "up", "--data-dir", str(tmp_path / "data"), "--grpc-port", str(port)]
        result = subprocess.run(
            [*command, "--web-port", "0", "--metrics-port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 1, result.stderr
    assert f"the Clara API cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr
