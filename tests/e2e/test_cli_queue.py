"""Why a job waits, as a person sees it through `aorta` against a real `aorta up` declaring one
GPU: a second GPU job names the job holding the GPU in `describe job`, `list jobs -o wide` and
`aorta queue`; a third is held while the node drains for the second; the queue lists both in
admission order; a job's reason is gone once it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from aorta.testing.embedded import AORTA, aorta_up
from aorta.testing.ports import free_port

pytestmark = pytest.mark.timeout(240)

HOLD_AFTER = 3
"""Seconds after which the oldest queued job makes the queue hold (AORTA_SCHEDULER_HOLD_AFTER)."""

OPERATOR = """\
import pathlib, sys, time
release = pathlib.Path(sys.argv[1])
while not release.exists():
    time.sleep(0.05)
"""


class Cli:
    def __init__(self, host: str) -> None:
        self.host = host

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AORTA_HOST": self.host, "NO_COLOR": "1"}
        done = subprocess.run(
            [AORTA, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, f"aorta {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    port = free_port()
    environ = {"AORTA_SCHEDULER_GPUS": "1", "AORTA_SCHEDULER_HOLD_AFTER": str(HOLD_AFTER)}
    with aorta_up(tmp_path_factory.mktemp("platform") / "data", port, environ=environ):
        yield Cli(f"127.0.0.1:{port}")


def eventually(read: Callable[[], Any], holds: Callable[[Any], bool], within: float = 60) -> Any:
    """What `read()` returns once `holds` it; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if holds(value):
            return value
        assert time.monotonic() < deadline, f"never held: {value}"
        time.sleep(0.2)


@pytest.fixture
def folder() -> Iterator[Path]:
    # The operators' user must read the script and see the release file: a folder open to
    # it, outside pytest's own folders, which are 0700.
    with tempfile.TemporaryDirectory(prefix="aorta-queue-") as made:
        Path(made).chmod(0o755)
        yield Path(made)


def test_waiting_gpu_jobs_say_why_and_the_queue_lists_them_in_order(cli: Cli, folder: Path) -> None:
    script, release = folder / "hold.py", folder / "release"
    script.write_text(OPERATOR)
    definition = folder / "gpu.yml"
    definition.write_text(
        textwrap.dedent(
            f"""\
            api-version: 0.4.0
            name: gpu-hold
            operators:
            - name: seg
              container: {{image: example/seg, command: [python, "{script}", "{release}"]}}
              input: [{{path: /input}}]
              output: [{{path: /output}}]
              requests: {{gpu: 1}}
            """
        )
    )
    pipeline = cli("create", "pipeline", "-p", str(definition), "-q").stdout.strip()
    jobs = {}
    for name in ("first", "second", "third"):
        jobs[name] = cli("create", "job", "-p", pipeline, "-n", name, "-q").stdout.strip()
        cli("start", "job", jobs[name])
        if name == "first":
            eventually(lambda: cli.json("describe", "job", jobs["first"]), _running)
    first, second, third = jobs["first"], jobs["second"], jobs["third"]

    described = eventually(
        lambda: cli.json("describe", "job", second),
        lambda d: (d["waiting"] or {}).get("job", {}).get("kind") == "resources",
    )
    holders = described["waiting"]["job"]["holders"]
    assert [(h["job_id"], h["operator"]) for h in holders] == [(first, "seg")]
    shown = cli("describe", "job", second).stdout
    assert f"waiting: needs 1 GPU; the node has 1, held by job {first} (operator seg)" in shown
    wide = cli("list", "jobs", "-o", "wide").stdout
    assert "REASON" in wide and f"held by job {first} (operator seg)" in wide

    queue = eventually(
        lambda: cli.json("queue"),
        lambda q: [e["reason"] and e["reason"]["kind"] for e in q] == ["resources", "held"],
    )
    assert [(e["position"], e["job_id"]) for e in queue] == [(1, second), (2, third)]
    assert queue[1]["reason"]["target_job_id"] == second
    assert queue[1]["reason"]["waited_seconds"] >= HOLD_AFTER
    table = cli("queue").stdout.splitlines()
    assert table[0].split() == ["#", "JOB", "ID", "NAME", "PRIORITY", "QUEUED", "REASON"]
    assert table[1].split()[:3] == ["1", second, "second"]
    assert table[2].split()[:3] == ["2", third, "third"]
    assert f"held: the node is draining for job {second} (waited " in table[2]
    assert re.search(r" held +held: the node is draining", cli("queue", "-o", "wide").stdout)

    release.write_text("go")
    after = eventually(lambda: cli.json("describe", "job", second), lambda d: not _pending(d))
    assert after["waiting"] is None
    assert not [m for m in after["messages"] if m.startswith("waiting: ")]
    for job_id in jobs.values():
        eventually(partial(cli.json, "describe", "job", job_id), _stopped)
    assert cli.json("queue") == []


def _running(document: dict[str, Any]) -> bool:
    return bool(document["state"] == "RUNNING")


def _pending(document: dict[str, Any]) -> bool:
    return bool(document["state"] == "PENDING")


def _stopped(document: dict[str, Any]) -> bool:
    return bool(document["state"] == "STOPPED")
