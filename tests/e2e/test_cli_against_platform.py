"""The `aorta` command driven as a user drives it, against a real `aorta up`: create a pipeline,
create a job with an input folder, start it, watch it to the end, read its logs, download its
outputs; the downloaded files match and every exit code is the documented one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.testing.embedded import AORTA, aorta_up
from aorta.testing.ports import free_port

pytestmark = pytest.mark.timeout(180)

OPERATOR = """\
import pathlib
import clara

def execute(driver, payload):
    source = pathlib.Path(payload.input_entries[0].path)
    target = pathlib.Path(payload.output_entries[0].path)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(path.read_bytes()[::-1])
            print(f"reversed {path.relative_to(source)}", flush=True)
    if (source / "fail").exists():
        raise RuntimeError("asked to fail")

driver = clara.Driver(execute_handler=execute)
driver.start()
driver.wait_for_completion()
"""


def _definition(script: Path) -> str:
    return textwrap.dedent(
        f"""\
        api-version: 0.4.0
        name: reverse
        operators:
        - name: reverser
          container:
            image: example/reverser
            command: [python, -u, -m, aorta.driver.app, "{script}"]
          input: [{{path: /input}}]
          output: [{{path: /output}}]
        """
    )


class Cli:
    """Runs `aorta` against one platform and keeps the last result."""

    def __init__(self, host: str) -> None:
        self.host = host

    def __call__(self, *args: str, host: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AORTA_HOST": host or self.host, "NO_COLOR": "1"}
        return subprocess.run(
            [AORTA, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    port = free_port()
    with aorta_up(tmp_path_factory.mktemp("platform") / "data", port):
        yield Cli(f"127.0.0.1:{port}")


@pytest.fixture
def pipeline(cli: Cli, tmp_path: Path) -> str:
    script = tmp_path / "reverse.py"
    script.write_text(OPERATOR)
    definition = tmp_path / "reverse.yml"
    definition.write_text(_definition(script))
    created = cli("create", "pipeline", "-p", str(definition), "-q")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def _job(cli: Cli, pipeline: str, inputs: Path) -> str:
    created = cli("create", "job", "-p", pipeline, "-n", "reverse-job", "-f", str(inputs))
    assert created.returncode == 0, created.stderr
    first, second = created.stdout.splitlines()[:2]
    assert first.startswith("JOB_ID:") and second.startswith("PAYLOAD_ID:")
    return first.split(":", 1)[1]


def test_the_whole_flow_and_its_exit_codes(cli: Cli, pipeline: str, tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    (inputs / "series").mkdir(parents=True)
    (inputs / "scan.bin").write_bytes(os.urandom(300_000))
    (inputs / "series" / "slice-1.dcm").write_bytes(b"DICM" + os.urandom(5000))
    job = _job(cli, pipeline, inputs)

    assert cli("start", "job", "-j", job).returncode == 0
    watched = cli("describe", "job", "-j", job, "--watch")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    # Off a terminal: the tree at most at the start and the end, change lines between.
    assert watched.stdout.count("\noperators\n") <= 2
    final = watched.stdout.split("\n\n")[-1]
    assert "status: HEALTHY" in final and "reverser  COMPLETED" in final

    logs = cli("logs", "-j", job, "-o", "reverser")
    assert logs.returncode == 0, logs.stderr
    assert "reversed scan.bin" in logs.stdout and "reversed series/slice-1.dcm" in logs.stdout

    destination = tmp_path / "results"
    downloaded = cli("download", "-j", job, "/operators/reverser/*", str(destination))
    assert downloaded.returncode == 0, downloaded.stderr
    for name in ("scan.bin", "series/slice-1.dcm"):
        expected = hashlib.sha256((inputs / name).read_bytes()[::-1]).hexdigest()
        assert hashlib.sha256((destination / name).read_bytes()).hexdigest() == expected

    # The job's inputs carry the checksums recorded at upload; the download checks them.
    fetched = cli("download", "-j", job, "/input/*", str(tmp_path / "inputs"), "--json")
    assert fetched.returncode == 0, fetched.stderr
    checked = {
        entry["name"]: (entry["sha256"], entry["verified"])
        for entry in json.loads(fetched.stdout)["downloaded"]
    }
    assert checked == {
        f"/input/{name}": (hashlib.sha256((inputs / name).read_bytes()).hexdigest(), True)
        for name in ("scan.bin", "series/slice-1.dcm")
    }

    assert cli("start", "job", "-j", job).returncode == 1  # already started: refused
    assert cli("describe", "job", "-j", "0" * 32).returncode == 3  # not found
    assert cli("describe", "job", "--no-such-flag").returncode == 2  # usage
    assert cli("list", "jobs", host=f"127.0.0.1:{free_port()}").returncode == 4  # unreachable


def test_a_failing_job_exits_1_with_the_reason(cli: Cli, pipeline: str, tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "fail").write_text("please")
    job = _job(cli, pipeline, inputs)
    assert cli("start", "job", "-j", job).returncode == 0
    watched = cli("describe", "job", "-j", job, "--watch")
    assert watched.returncode == 1
    assert "status: FAULTED" in watched.stdout.split("\n\n")[-1]
    described = cli("describe", "job", "-j", job)
    assert "asked to fail" in described.stdout + described.stderr
