"""The first hour of a kubectl, argo or Clara CLI user, against a real `aorta up`: the habits
they type (`-o json`, `--output json`, `get`, `stop`, `delete`, positional ids, `help`,
`version -q`), jobs and pipelines named by prefix or name, `create job -q` giving one id, the
suggestions a typo gets, and every exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import aorta
from aorta.cli.humanize import NOT_SET
from aorta.testing.embedded import AORTA, aorta_up
from aorta.testing.ports import free_port

pytestmark = pytest.mark.timeout(240)

OPERATOR = """\
import pathlib
import time
import clara

def execute(driver, payload):
    source = pathlib.Path(payload.input_entries[0].path)
    target = pathlib.Path(payload.output_entries[0].path)
    if (source / "slow").exists():
        time.sleep(120)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())

driver = clara.Driver(execute_handler=execute)
driver.start()
driver.wait_for_completion()
"""
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _definition(script: Path) -> str:
    return textwrap.dedent(
        f"""\
        api-version: 0.4.0
        name: organ-segmentation
        operators:
        - name: copier
          container:
            image: example/copier
            command: [python, -u, -m, aorta.driver.app, "{script}"]
          input: [{{path: /input}}]
          output: [{{path: /output}}]
        """
    )


class Cli:
    """Runs the installed `aorta` against one platform."""

    def __init__(self, host: str) -> None:
        self.host = host

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AORTA_HOST": self.host, "NO_COLOR": "1"}
        return subprocess.run(
            [AORTA, *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=150,
            check=False,
        )

    def ok(self, *args: str | Path) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    port = free_port()
    with aorta_up(tmp_path_factory.mktemp("platform") / "data", port):
        yield Cli(f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def pipeline(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("definition")
    folder.chmod(0o755)  # the operators' user reads the script
    (folder / "copier.py").write_text(OPERATOR)
    (folder / "organ-segmentation.yml").write_text(_definition(folder / "copier.py"))
    created = cli.ok("create", "pipeline", "-p", folder / "organ-segmentation.yml", "-q")
    assert _HEX32.match(created.strip()), created
    return created.strip()


def _inputs(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "input"
    folder.mkdir()
    for name in names:
        (folder / name).write_text(name)
    return folder


def test_create_job_q_is_one_id_and_the_pipeline_goes_by_its_name(
    cli: Cli, pipeline: str, tmp_path: Path
) -> None:
    inputs = _inputs(tmp_path, "scan.txt")
    created = cli.ok("create", "job", "-p", "organ-segmentation", "-n", "scan", "-f", inputs, "-q")
    [job] = created.splitlines()
    assert _HEX32.match(job)
    assert cli.ok("start", "job", job, "-q") == f"{job}\n"
    assert cli("describe", "job", job[:6], "--watch", "-q").returncode == 0
    described = json.loads(cli.ok("describe", "job", job, "-o", "json"))
    assert (described["pipeline_id"], described["status"]) == (pipeline, "HEALTHY")
    assert json.loads(cli.ok("get", "job", "scan", "--output", "json"))["job_id"] == job
    assert cli.ok("describe", "job", "-j", job[:8]).startswith("name: scan\n")


def test_list_and_get_print_every_format(cli: Cli, pipeline: str) -> None:
    job = cli.ok("create", "job", "-p", pipeline[:8], "-n", "formats", "-q").strip()
    as_json = json.loads(cli.ok("list", "jobs", "-o", "json"))
    assert job in [entry["job_id"] for entry in as_json]
    assert json.loads(cli.ok("list", "jobs", "--output", "json")) == as_json
    assert json.loads(cli.ok("list", "jobs", "--json")) == as_json
    assert json.loads(cli.ok("get", "jobs", "-o", "json")) == as_json
    assert yaml.safe_load(cli.ok("list", "jobs", "-o", "yaml")) == as_json
    assert f"job/{job}\n" in cli.ok("get", "jobs", "-o", "name")
    # -q and -o name print each id as the list streams, in the list's order.
    newest_first = [entry["job_id"] for entry in as_json]
    assert cli.ok("list", "jobs", "-q").splitlines() == newest_first
    assert cli.ok("list", "jobs", "-o", "name", "--limit", "1") == f"job/{newest_first[0]}\n"
    wide = cli.ok("list", "jobs", "-o", "wide").splitlines()
    assert wide[0].split()[-4:] == ["CREATED", "BY", "OPERATORS", "REASON"]
    # A stopped job has one operator and waits for nothing.
    row = next(line for line in wide[1:] if line.startswith(job))
    assert row.split()[-2:] == ["1", NOT_SET]
    assert f"pipeline/{pipeline}\n" in cli.ok("get", "pipelines", "-o", "name")


def test_stop_cancels_a_running_job_and_delete_removes_it(
    cli: Cli, pipeline: str, tmp_path: Path
) -> None:
    inputs = _inputs(tmp_path, "slow")
    job = cli.ok("create", "job", "-p", pipeline, "-n", "slow", "-f", inputs, "--start", "-q")
    job = job.strip()
    refused = cli("delete", "job", job, "--yes")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(f"error: deleting job {job} failed")
    assert cli("describe", "job", job).returncode == 0
    stopped = cli("stop", "job", job, "-o", "json")
    assert stopped.returncode == 0, stopped.stderr
    assert cli("describe", "job", job, "--watch", "-q").returncode == 1  # CANCELED, not HEALTHY
    assert json.loads(cli.ok("describe", "job", job, "--json"))["status"] == "CANCELED"

    unconfirmed = cli("delete", "job", job)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr
    deleted = json.loads(cli.ok("delete", "job", job, "--yes", "-o", "json"))
    assert (deleted["job_id"], deleted["deleted"]) == (job, True)
    assert cli("describe", "job", job).returncode == 3


def test_help_version_and_what_a_typo_gets(cli: Cli) -> None:
    assert cli.ok("version", "-q") == f"{aorta.__version__}\n"
    assert cli.ok("help", "list", "jobs") == cli.ok("list", "jobs", "--help")
    cases = [
        (("list", "jobs", "--jsn"), "Did you mean '--json'?"),
        (("list", "jobs", "--output=jsn"), "use -o json|yaml|wide|name (did you mean -o json?)"),
        (("lst", "jobs"), "Did you mean 'list'?"),
        (("list", "jbos"), "Did you mean 'jobs'?"),
        (("describe", "job"), "name the job: JOB or -j JOB"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert (result.returncode, message in result.stderr) == (2, True), result.stderr
    missing = cli("describe", "job", "no-job-by-this-name")
    assert missing.returncode == 3
    unknown = cli("create", "job", "-p", "liver-segmentation", "-n", "x")
    assert unknown.returncode == 3
    assert "no pipeline has the id, id prefix or name" in unknown.stderr
