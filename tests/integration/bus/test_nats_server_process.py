"""NatsServerProcess: a real nats-server child that starts, answers, stops and dies with its
parent."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import psutil
import pytest

from aorta.bus.nats_server import NatsServerError, NatsServerProcess
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.testing.ports import restart_safe_port


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_starts_on_a_free_port_and_answers(tmp_path: Path) -> None:
    async with (
        NatsServerProcess(tmp_path / "a") as first,
        NatsServerProcess(tmp_path / "b") as second,
    ):
        assert first.port != second.port and first.port != 4222
        nc = await nats.connect(first.url)
        try:
            sub = await nc.subscribe("ping")
            await nc.publish("ping", b"pong")
            assert (await sub.next_msg(timeout=30.0)).data == b"pong"
        finally:
            await nc.close()


async def test_clients_may_send_messages_of_the_platforms_size(tmp_path: Path) -> None:
    async with NatsServerProcess(tmp_path) as server:
        nc = await nats.connect(server.url)
        try:
            assert nc.max_payload == DEFAULT_MAX_PAYLOAD == 8 * 1024 * 1024
            sub = await nc.subscribe("big")
            await nc.publish("big", b"x" * (DEFAULT_MAX_PAYLOAD - 1024))
            assert len((await sub.next_msg(timeout=30.0)).data) == DEFAULT_MAX_PAYLOAD - 1024
        finally:
            await nc.close()
    async with NatsServerProcess(tmp_path / "small", max_payload=64 * 1024) as small:
        nc = await nats.connect(small.url)
        try:
            assert nc.max_payload == 64 * 1024
        finally:
            await nc.close()


def test_stop_leaves_no_process_and_can_be_repeated(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path)
    with server:
        pid = server.pid
        assert pid is not None and not _gone(pid)

    assert _gone(pid)
    assert not list(tmp_path.glob("*.ports"))
    with pytest.raises(NatsServerError, match="not running"):
        _ = server.url
    server.stop()


async def test_a_restart_keeps_the_port(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path, port=restart_safe_port())
    await server.astart()
    url = server.url
    await server.astop()
    await server.astart()
    try:
        assert server.url == url
    finally:
        await server.astop()


def test_a_missing_binary_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(NatsServerError, match=r"apt-get install nats-server"):
        NatsServerProcess(tmp_path, search_path="").start()


def test_a_failed_start_reports_the_log_tail(tmp_path: Path) -> None:
    with NatsServerProcess(tmp_path / "first") as first:
        clash = NatsServerProcess(tmp_path / "second", port=first.port, start_timeout=5.0)
        with pytest.raises(NatsServerError) as raised:
            clash.start()

    assert "exited with code" in str(raised.value)
    assert "address already in use" in str(raised.value)


def test_the_server_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from aorta.bus.nats_server import NatsServerProcess
        server = NatsServerProcess(Path({str(tmp_path)!r}))
        server.start()
        print(server.pid, file=sys.stderr, flush=True)
        time.sleep(60)
        """
    )
    child = 0
    with subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as parent:
        try:
            assert parent.stderr is not None
            child = int(parent.stderr.readline())
            assert not _gone(child)
            parent.send_signal(signal.SIGKILL)
            parent.wait()
            # Generous: a loaded machine may take seconds to notice the parent's death.
            deadline = time.monotonic() + 30.0
            while not _gone(child) and time.monotonic() < deadline:
                time.sleep(0.05)

            assert _gone(child)
        finally:
            parent.kill()
            if child and not _gone(child):
                psutil.Process(child).kill()
