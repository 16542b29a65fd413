"""`aorta up` at a real terminal, recorded with tmux: the screen shows the short banner (address,
where operators run, data dir and log file, the `export AORTA_HOST` line for a port that is not
the default, how to stop) and no `[info]` line, while the log file gets the details; a job's
live view (`aorta describe job --watch`) redraws in another pane as the operator runs; Ctrl-C
stops the platform.

Each pane runs bash in a detached 120x40 tmux session on a socket of its own; the screen is
read with `capture-pane` (wrapped lines joined) until the expected text appears or a deadline
passes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aorta.testing.ports import free_port

AORTA = Path(sys.executable).parent / "aorta"
_EXIT = re.compile(r"^EXIT=(\d+)\s*$", re.MULTILINE)
SLEEPER = """\
api-version: 0.4.0
name: sleeper
operators:
- name: sleeper
  container:
    image: busybox
    tag: latest
    command: [sh, -c, 'until [ -e "GATE" ]; do sleep 0.1; done;
      echo done > "${NVIDIA_CLARA_OUTPUTPATHS#*:}/done.txt"']
  input:
  - path: /input
  output:
  - path: /output
"""
"""One operator that runs until the file GATE exists: the watch sees it RUNNING however long
the machine takes to show it, and the test opens the gate after."""


class Pane:
    """A bash in a detached tmux session, driven by keystrokes."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.socket = f"aorta-up-test-{uuid.uuid4().hex[:8]}"
        self._environ = environ
        self._tmux("new-session", "-d", "-x", "120", "-y", "40", "bash", "--norc", "--noprofile")

    def _tmux(self, *args: str) -> str:
        command = ["tmux", "-u", "-L", self.socket, *args]
        done = subprocess.run(command, capture_output=True, text=True, env=self._environ)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-l", line)
        self._tmux("send-keys", "Enter")

    def interrupt(self) -> None:
        self._tmux("send-keys", "C-c")

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-J")

    def wait_for(self, found: Callable[[str], object], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if found(screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"the screen never showed {what}:\n{self.text()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal_environ(tmp_path: Path) -> dict[str, str]:
    """A person's environment: no log format asked for, colours on, a prompt of `$ `."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AORTA_")}
    environ.pop("NO_COLOR", None)
    return {**environ, "LANG": "C.UTF-8", "TERM": "xterm-256color", "PS1": "$ "}


@pytest.fixture
def panes(terminal_environ: dict[str, str]) -> Iterator[Callable[[dict[str, str]], Pane]]:
    opened: list[Pane] = []

    def open_pane(extra: dict[str, str]) -> Pane:
        opened.append(Pane({**terminal_environ, **extra}))
        return opened[-1]

    yield open_pane
    for pane in opened:
        pane.close()


def aorta(*args: str, host: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(AORTA), *args, "--host", host],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(180)
def test_aorta_up_at_a_terminal_shows_a_banner_and_a_live_job(
    panes: Callable[[dict[str, str]], Pane], tmp_path: Path
) -> None:
    port = free_port()
    host = f"127.0.0.1:{port}"
    data_dir = tmp_path / "platform"
    platform = panes({})
    platform.type(
        f"{AORTA} up --data-dir {data_dir} --grpc-port {port} --executor local; echo EXIT=$?"
    )
    shown = platform.wait_for(lambda s: "Press Ctrl-C to stop." in s, "the banner", timeout=60)
    lines = shown.splitlines()
    headline = next(line for line in lines if line.startswith("Aorta "))
    assert f"is up: Clara API on {host} (plain text, no authentication)." in headline
    assert "  Operators run as host processes (asked for)." in lines
    assert f"  Data in {data_dir}; detailed logs in {data_dir}/logs/aorta.log." in lines
    assert "  Point the CLI at it, then try `aorta list jobs`:" in lines
    assert f"    export AORTA_HOST={host}" in lines
    assert "[info" not in shown and "nats://" not in shown
    log_lines = (data_dir / "logs" / "aorta.log").read_text().splitlines()
    events = [json.loads(line) for line in log_lines]
    assert any(event["event"] == "aorta.up" for event in events)
    assert any(event["level"] == "info" for event in events)

    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "note.txt").write_text("wake up\n")
    gate = tmp_path / "gate"
    (tmp_path / "sleeper.yml").write_text(SLEEPER.replace("GATE", str(gate)))
    pipeline = aorta("create", "pipeline", "-p", "sleeper.yml", "-q", host=host, cwd=tmp_path)
    made = aorta(
        "create", "job", "-p", pipeline.strip(), "-n", "nap", "-f", "input", "-q",
        host=host, cwd=tmp_path,
    )  # fmt: skip
    job = made.strip()

    # The job starts only once the watch shows it: on a busy machine the CLI can take longer
    # to start than the operator takes to run, and the watch would never see it running.
    watcher = panes({"AORTA_HOST": host})
    watcher.type(f"{AORTA} describe job -j {job} --watch --interval 0.2; echo EXIT=$?")
    watcher.wait_for(lambda s: f"id: {job}" in s, "the job waiting to start")
    aorta("start", "job", "-j", job, host=host, cwd=tmp_path)
    running = watcher.wait_for(lambda s: "● sleeper  RUNNING" in s, "the operator running")
    assert "state: RUNNING" in running
    gate.touch()
    finished = watcher.wait_for(_EXIT.search, "the end of the watch")
    assert _EXIT.findall(finished) == ["0"]
    assert "✓ sleeper  COMPLETED" in finished and "state: STOPPED" in finished
    assert finished.count("state: ") == 1  # redrawn in place, not once per poll

    platform.interrupt()
    stopped = platform.wait_for(_EXIT.search, "the platform stopping", timeout=60)
    assert "Aorta stopped." in stopped and _EXIT.findall(stopped) == ["0"]
    assert "[info" not in stopped
