"""Children started with `die_with_parent` run their command as themselves, die with their
parent, and start reliably beside a busy gRPC server (no fork handlers run in the child)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from aorta.children.process import die_with_parent


def test_the_child_is_the_command_itself() -> None:
    child = subprocess.run(
        die_with_parent([sys.executable, "-c", "import os; print(os.getpid())"]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert child.stdout.strip().isdigit()
    probe = subprocess.Popen(die_with_parent(["sleep", "30"]))
    try:
        # The child's own pid becomes the command once it executes it, wrapped in nothing.
        deadline = time.monotonic() + 30
        while psutil.Process(probe.pid).name() != "sleep":
            assert time.monotonic() < deadline, psutil.Process(probe.pid).cmdline()
            time.sleep(0.01)
    finally:
        probe.kill()
        probe.wait()


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent_code = (
        "import subprocess, sys, time\n"
        "from aorta.children.process import die_with_parent\n"
        "child = subprocess.Popen(die_with_parent(['sleep', '60']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the parent never started its child"
        time.sleep(0.05)
    child = psutil.Process(int(pid_file.read_text()))
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    child.wait(timeout=30)
    assert not child.is_running()


async def test_children_start_reliably_beside_a_busy_grpc_server() -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()

    async def keep_calling() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not stop.is_set():
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=30)

    callers = [asyncio.create_task(keep_calling()) for _ in range(4)]
    try:
        for _ in range(40):
            child = await asyncio.create_subprocess_exec(
                *die_with_parent([sys.executable, "-I", "-S", "-c", "print('ran')"]),
                stdout=asyncio.subprocess.PIPE,
            )
            output, _ = await child.communicate()
            assert (child.returncode, output) == (0, b"ran\n")
    finally:
        stop.set()
        await asyncio.gather(*callers)
        await server.stop(None)
