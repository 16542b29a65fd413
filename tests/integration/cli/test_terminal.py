"""What a person at a terminal sees, recorded with tmux: a progress bar (percentage and rate)
while an upload the fake slows down is running, and the live DAG tree of `describe job --watch`
moving through the operators' states.

The commands are typed into a shell in a detached 120x40 tmux session on a socket of its own,
and the screen is read with `capture-pane` until the expected text appears or a deadline
passes.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cli.cli_support import AORTA, Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform

_PERCENT = re.compile(r"\b([1-9]\d?)%")
_RATE = re.compile(r"\d(?:\.\d+)? [kMG]?B/s")
_EXIT = re.compile(r"^EXIT=(\d+)\s*$", re.MULTILINE)


class Screen:
    """A detached tmux session running bash, driven by keystrokes."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.socket = f"aorta-cli-test-{uuid.uuid4().hex[:8]}"
        settings = [f"-e{name}={value}" for name, value in environ.items()]
        self._tmux(
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            *settings,
            "bash",
            "--norc",
            "--noprofile",
        )

    def _tmux(self, *args: str) -> str:
        command = ["tmux", "-u", "-L", self.socket, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-l", line)
        self._tmux("send-keys", "Enter")

    def text(self) -> str:
        return self._tmux("capture-pane", "-p")

    def wait_for(self, found: Callable[[str], object], what: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if found(screen):
                return screen
            time.sleep(0.05)
        pytest.fail(f"the screen never showed {what}:\n{self.text()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def screen(environ: dict[str, str]) -> Iterator[Screen]:
    terminal = {**environ, "LANG": "C.UTF-8", "TERM": "xterm-256color", "PS1": "$ "}
    del terminal["NO_COLOR"]  # colours on, as at a real terminal; capture-pane drops them
    opened = Screen(terminal)
    yield opened
    opened.close()


def _exit_codes(screen: str) -> list[str]:
    return _EXIT.findall(screen)


def _in_progress(screen: str) -> bool:
    percents = [int(p) for p in _PERCENT.findall(screen)]
    return (
        "uploading" in screen and any(0 < p < 100 for p in percents) and bool(_RATE.search(screen))
    )


def test_a_person_sees_upload_progress_and_the_live_dag(
    aorta: Aorta, platform: FakePlatform, samples: Samples, screen: Screen, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for number in range(4):
        (big / f"slice-{number}.dcm").write_bytes(bytes(range(256)) * 4096)  # 1 MiB each
    platform.upload_delay = 0.03  # 64 messages: about 2 s
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()

    screen.type(f"{AORTA} create job -p {pipeline_id} -n big -f {big}; echo EXIT=$?")
    shown = screen.wait_for(_in_progress, "a progress bar below 100% with a rate")
    assert "uploading slice-" in shown
    done = screen.wait_for(_EXIT.search, "the end of the upload")
    assert _exit_codes(done) == ["0"]
    assert "JOB_ID:" in done and "PAYLOAD_ID:" in done
    [job] = platform.jobs.values()
    assert len(platform.payloads[job.payload_id].files) == 4

    platform.steps_per_operator = 4
    assert aorta("start", "job", "-j", job.job_id).exit_code == 0
    screen.type("clear")
    screen.type(f"{AORTA} describe job -j {job.job_id} --watch --interval 0.2; echo EXIT=$?")
    running = screen.wait_for(
        lambda s: "● segment  RUNNING" in s and "○ writer  PENDING" in s,
        "the tree with segment running and writer pending",
    )
    assert "state: RUNNING" in running
    assert "✓ reader  COMPLETED" in running
    finished = screen.wait_for(_EXIT.search, "the end of the watch")
    assert _exit_codes(finished) == ["0"]
    assert "state: STOPPED" in finished and "status: HEALTHY" in finished
    assert "✓ writer  COMPLETED" in finished
    # Live redraws in place: the description is on the screen once, not once per poll.
    assert finished.count("state: ") == 1


def test_delete_job_asks_at_a_terminal(
    aorta: Aorta, platform: FakePlatform, samples: Samples, screen: Screen
) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    kept = aorta("create", "job", "-p", pipeline_id, "-n", "kept", "--start", "-q").stdout.strip()
    gone = aorta("create", "job", "-p", pipeline_id, "-n", "gone", "--start", "-q").stdout.strip()
    for job_id in (kept, gone):
        assert aorta("stop", "job", job_id).exit_code == 0

    screen.type(f"{AORTA} delete job kept; echo EXIT=$?")
    screen.wait_for(lambda s: "its payload and its logs? [y/N]" in s, "the question")
    screen.type("n")
    refused = screen.wait_for(_EXIT.search, "the end of the refused delete")
    assert _exit_codes(refused) == ["1"] and kept in platform.jobs

    screen.type("clear")
    screen.type(f"{AORTA} delete job gone; echo EXIT=$?")
    screen.wait_for(lambda s: f"Delete job {gone}" in s, "the question")
    screen.type("y")
    done = screen.wait_for(_EXIT.search, "the end of the delete")
    assert _exit_codes(done) == ["0"] and f"Job {gone} deleted" in done
    assert gone not in platform.jobs
