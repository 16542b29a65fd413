"""`ChildProcess` with a tiny Python child: ready when it says so, an early exit reported with
this start's log tail, a deadline that kills, SIGKILL to the whole group after the stop grace,
no child left by a cancelled start, and `HttpReady` on a unix socket as an engine API is."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from aorta.children.process import ChildProcess, ChildStartError
from aorta.children.readiness import HttpReady

TOY = textwrap.dedent(
    """
    import os, signal, subprocess, sys
    from pathlib import Path

    mode, ready_file = sys.argv[1], Path(sys.argv[2])

    def announce(text):
        # Whole or not at all: the test takes the file's existence for readiness.
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(text)
        partial.replace(ready_file)

    print(f"toy starting in mode {mode}, mark {os.environ.get('TOY_MARK')}", flush=True)
    if mode == "exit":
        print("cannot listen: address already in use", file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        helper = subprocess.Popen(["sleep", "600"])
        announce(str(helper.pid))
    elif mode == "serve":
        announce(str(os.getpid()))
    while True:
        signal.pause()
    """
)

ENGINE_API = textwrap.dedent(
    """
    import http.server, socketserver, sys

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/_ping" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    socketserver.UnixStreamServer(sys.argv[1], Ping).serve_forever()
    """
)


@dataclass
class FileReady:
    """Ready once the toy wrote its readiness file; records each pid it was asked about."""

    path: Path
    awaited: str = "write its readiness file"
    asked: list[int] = field(default_factory=list)
    first_asked: asyncio.Event = field(default_factory=asyncio.Event)

    async def ready(self, pid: int) -> bool:
        self.asked.append(pid)
        self.first_asked.set()
        return self.path.exists()


def toy(mode: str, ready: FileReady) -> list[str]:
    return [sys.executable, "-c", TOY, mode, str(ready.path)]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, within: float = 30.0) -> bool:
    """Whether `pid` (not our child, so not ours to wait for) ends within `within` seconds."""
    deadline = time.monotonic() + within
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return gone(pid)


async def test_start_returns_once_ready_and_stop_terminates(tmp_path: Path) -> None:
    log, ready = tmp_path / "toy.log", FileReady(tmp_path / "ready")
    child = ChildProcess(
        "toy", log, environ={**os.environ, "TOY_MARK": "given"}, start_timeout=60, stop_grace=60
    )

    await child.start(toy("serve", ready), ready)

    assert child.alive() and set(ready.asked) == {child.pid}
    assert ready.path.read_text() == str(child.pid)  # the command itself, not a wrapper
    assert await child.stop() == -signal.SIGTERM
    assert (child.pid, child.alive()) == (None, False)
    assert await child.stop() is None
    assert "toy starting in mode serve, mark given" in log.read_text()


async def test_an_early_exit_is_reported_with_this_starts_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "toy.log"
    log.write_text("a line of an earlier run\n")
    ready = FileReady(tmp_path / "ready")
    child = ChildProcess("toy", log, start_timeout=60, stop_grace=60)

    with pytest.raises(ChildStartError) as raised:
        await child.start(toy("exit", ready), ready)

    error = raised.value
    assert (error.reason, error.exit_code) == ("toy exited with code 3 on start", 3)
    assert error.log_tail is not None and "address already in use" in error.log_tail
    assert "earlier run" not in error.log_tail
    assert f"last lines of {log}:" in str(error)
    assert child.pid is None


async def test_a_child_not_ready_by_the_deadline_is_killed(tmp_path: Path) -> None:
    ready = FileReady(tmp_path / "never")
    child = ChildProcess("toy", tmp_path / "toy.log", start_timeout=0.5, stop_grace=60)

    awaited = r"toy did not write its readiness file within 0\.5 s"
    with pytest.raises(ChildStartError, match=awaited):
        await child.start(toy("never-ready", ready), ready)

    assert ready.asked and gone(ready.asked[0])  # killed and reaped before the error
    assert child.pid is None


async def test_stop_kills_the_whole_group_after_the_grace(tmp_path: Path) -> None:
    ready = FileReady(tmp_path / "ready")
    child = ChildProcess("toy", tmp_path / "toy.log", start_timeout=60, stop_grace=0.2)
    await child.start(toy("stubborn", ready), ready)
    helper = int(ready.path.read_text())

    assert await child.stop() == -signal.SIGKILL  # it ignored SIGTERM
    assert wait_gone(helper), "the child's own child outlived the group's SIGKILL"


async def test_a_cancelled_start_leaves_no_child(tmp_path: Path) -> None:
    ready = FileReady(tmp_path / "never")
    child = ChildProcess("toy", tmp_path / "toy.log", start_timeout=60, stop_grace=60)
    starting = asyncio.create_task(child.start(toy("never-ready", ready), ready))
    await ready.first_asked.wait()

    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting

    assert gone(ready.asked[0]) and child.pid is None


def test_an_engine_api_child_is_ready_when_its_unix_socket_answers() -> None:
    # A short folder: a unix socket's path is limited to about a hundred bytes.
    with tempfile.TemporaryDirectory(prefix="aorta-") as folder:
        socket_path = Path(folder) / "engine.sock"
        child = ChildProcess("engine", Path(folder) / "engine.log", start_timeout=60, stop_grace=60)
        command = [sys.executable, "-c", ENGINE_API, str(socket_path)]

        child.start_blocking(command, HttpReady(socket_path, "/_ping"))
        try:
            assert child.alive()
            with pytest.raises(ChildStartError, match="already running"):
                child.start_blocking(command, HttpReady(socket_path, "/_ping"))
        finally:
            assert child.stop_blocking() == -signal.SIGTERM
