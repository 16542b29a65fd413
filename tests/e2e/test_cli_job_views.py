"""What a person sees of a job through `aorta`, against a real `aorta up --auth --tls auto`:
every operator's log prefixed in DAG order, an unknown operator and one that never ran, a
cancel's victims shown CANCELED, a history with every operator's RUNNING step, `run`'s job
names and pipeline reuse, downloads checked against recorded checksums, and `delete job`
removing a job with its logs and payload bytes (and refusing a running job and another
user's)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aorta.testing.embedded import AORTA, aorta_up, make_token
from aorta.testing.ports import free_port

pytestmark = pytest.mark.timeout(300)

OPERATOR = """\
import os
import pathlib
import sys
import time
import clara

NAME, GATE = sys.argv[1], sys.argv[2]

def execute(driver, payload):
    print(f"{NAME} starts", flush=True)
    while GATE and not os.path.exists(GATE):
        time.sleep(0.05)
    source = pathlib.Path(payload.input_entries[0].path)
    target = pathlib.Path(payload.output_entries[0].path)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(path.read_bytes()[::-1])
    print(f"{NAME} done", flush=True)

driver = clara.Driver(execute_handler=execute)
driver.start()
driver.wait_for_completion()
"""
"""An operator that copies its input reversed; with a gate (a path) it goes on only once that
file exists, so a test holds it RUNNING for exactly as long as its scenario needs."""


def _operator(name: str, script: Path, gate: Path | None, source: str | None) -> str:
    inputs = f"[{{from: {source}, path: /input}}]" if source else "[{path: /input}]"
    return textwrap.dedent(
        f"""\
        - name: {name}
          container:
            image: example/{name}
            command: [python, -u, -m, aorta.driver.app, "{script}", {name}, "{gate or ""}"]
          input: {inputs}
          output: [{{path: /output}}]
        """
    )


def _definition(name: str, script: Path, gates: dict[str, Path | None]) -> str:
    operators, source = "", None
    for operator, gate in gates.items():
        operators += _operator(operator, script, gate, source)
        source = operator
    return f"api-version: 0.4.0\nname: {name}\noperators:\n{operators}"


@dataclass(frozen=True)
class Platform:
    address: str
    data: Path
    ca: Path
    tokens: dict[str, str]

    def env(self, who: str) -> dict[str, str]:
        return {
            **os.environ,
            "AORTA_HOST": self.address,
            "AORTA_CA": str(self.ca),
            "AORTA_TOKEN": self.tokens[who],
            "NO_COLOR": "1",
        }

    def __call__(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AORTA, *args],
            capture_output=True,
            text=True,
            env=self.env(who),
            timeout=180,
            check=False,
        )

    def popen(self, who: str, *args: str) -> subprocess.Popen[str]:
        """`aorta ARGS` started, its output piped, for a command that runs on (`--follow`)."""
        return subprocess.Popen(
            [AORTA, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(who),
        )


@pytest.fixture(scope="module")
def aorta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("views")
    data, port = root / "data", free_port()
    with aorta_up(data, port, args=["--auth", "--tls", "auto"]):
        yield Platform(
            address=f"127.0.0.1:{port}",
            data=data,
            ca=data / "tls" / "ca.pem",
            tokens={
                "admin": (data / "admin.token").read_text().strip(),
                **{name: make_token(data, name, "user") for name in ("alice", "bob")},
            },
        )


@pytest.fixture(scope="module")
def files() -> Iterator[Path]:
    # The operators' user must read the script and the inputs: a folder open to it, outside
    # pytest's own folders, which are 0700 and made so again by every pytest that starts.
    with tempfile.TemporaryDirectory(prefix="aorta-views-") as made:
        folder = Path(made)
        folder.chmod(0o755)
        (folder / "operator.py").write_text(OPERATOR)
        inputs = folder / "input"
        (inputs / "series").mkdir(parents=True)
        (inputs / "scan.bin").write_bytes(os.urandom(20_000))
        (inputs / "series" / "slice-1.dcm").write_bytes(b"DICM" + os.urandom(500))
        for path in (inputs, inputs / "series"):
            path.chmod(0o755)
        yield folder


def _ids(output: str) -> dict[str, str]:
    """The `PIPELINE_ID:...`, `JOB_ID:...` and `PAYLOAD_ID:...` lines of `run`'s output."""
    pairs = (line.split(":", 1) for line in output.splitlines() if ":" in line)
    return {key: value for key, value in pairs if key.endswith("_ID")}


def _files_under(folder: Path) -> list[Path]:
    """The files below `folder`; none when it is gone."""
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def _describe(aorta: Platform, who: str, job: str) -> dict[str, object]:
    described = aorta(who, "describe", "job", job, "--json")
    assert described.returncode == 0, described.stderr
    document: dict[str, object] = json.loads(described.stdout)
    return document


def _wait_until(aorta: Platform, job: str, operator: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        operators = _describe(aorta, "alice", job)["operators"]
        assert isinstance(operators, list)
        if any(op["name"] == operator and op["status"] == status for op in operators):
            return
        time.sleep(0.3)  # only spaces the polls: each is a whole `aorta` process
    raise AssertionError(f"operator {operator} of job {job} never became {status}")


@pytest.fixture(scope="module")
def reader_gate(files: Path) -> Path:
    """The gate of the chain's reader: closed until the first run has shown its first view."""
    return files / "reader-may-finish"


@pytest.fixture(scope="module")
def chain(aorta: Platform, files: Path, reader_gate: Path) -> Path:
    definition = files / "chain.yml"
    gates = {"reader": reader_gate, "segment": None, "writer": None}
    definition.write_text(_definition("views-chain", files / "operator.py", gates))
    return definition


def _run_opening(aorta: Platform, gate: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`aorta run ARGS` as alice, opening `gate` once `run` printed its first view of the job
    (the first line after the ids): whatever that first poll found, the operators behind the
    gated one were still PENDING, however long the machine took to make it."""
    with (
        tempfile.TemporaryFile("w+") as err,
        subprocess.Popen(
            [AORTA, "run", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=aorta.env("alice"),
        ) as process,
    ):
        assert process.stdout is not None
        out: list[str] = []
        for line in process.stdout:
            out.append(line)
            if not line.startswith(("PIPELINE_ID:", "JOB_ID:", "PAYLOAD_ID:")):
                gate.touch()
                break
        out.append(process.stdout.read())
        process.wait(timeout=60)
        err.seek(0)
        return subprocess.CompletedProcess(
            process.args, process.returncode, "".join(out), err.read()
        )


def test_a_run_and_everything_it_shows(
    aorta: Platform, files: Path, chain: Path, reader_gate: Path
) -> None:
    results = files / "results"
    ran = _run_opening(
        aorta, reader_gate, "-p", str(chain), "-f", str(files / "input"), "-o", str(results)
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    ids = _ids(ran.stdout)
    job, pipeline = ids["JOB_ID"], ids["PIPELINE_ID"]
    assert f"registered pipeline {pipeline}" in ran.stderr
    # Three operators wrote two files each, and every one was checked.
    assert "Downloaded 6 output file(s)" in ran.stderr and "; 6 checked" in ran.stderr

    # The history tells every operator's RUNNING step, the fast writer's too: the first poll
    # saw segment and writer PENDING (the gated reader held them), later ones COMPLETED.
    history = ran.stdout
    assert "PENDING -> COMPLETED" not in history
    for operator in ("segment", "writer"):
        assert f"operator {operator}  PENDING -> RUNNING" in history, history
        assert f"operator {operator}  RUNNING -> COMPLETED" in history, history

    # Every operator's log, prefixed, in DAG order; one operator's alone.
    logs = aorta("alice", "logs", job)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [
        line
        for name in ("reader", "segment", "writer")
        for line in (f"[{name}] {name} starts", f"[{name}] {name} done")
    ]
    one = aorta("alice", "logs", job, "writer")
    assert (one.returncode, one.stdout) == (0, "writer starts\nwriter done\n")
    unknown = aorta("alice", "logs", job, "-o", "writter")
    assert unknown.returncode == 3
    assert "has no operator 'writter'; its operators: reader, segment, writer" in unknown.stderr

    downloaded = aorta("alice", "download", "-j", job, "/operators/writer/*", str(files / "w"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert "2 checked" in downloaded.stdout + downloaded.stderr

    # The same file again reuses its pipeline; a pipeline named by id names the job after it.
    again = aorta("alice", "run", "-p", str(chain), "-f", str(files / "input"))
    assert again.returncode == 0, again.stderr
    assert f"using pipeline {pipeline} (unchanged)" in again.stderr
    by_id = aorta("alice", "run", "-p", pipeline, "-f", str(files / "input"))
    assert by_id.returncode == 0, by_id.stderr
    named = _describe(aorta, "alice", _ids(by_id.stdout)["JOB_ID"])["name"]
    assert isinstance(named, str) and named.startswith("views-chain-")
    listed = aorta("alice", "list", "pipelines", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)].count("views-chain") == 1


def test_a_cancel_shows_canceled_and_what_never_ran(
    aorta: Platform, files: Path, chain: Path
) -> None:
    slow = files / "slow.yml"
    # The sleeper's gate never opens: it runs until the cancel.
    gates = {"sleeper": files / "never-opened", "writer": None}
    slow.write_text(_definition("views-slow", files / "operator.py", gates))
    created = aorta("alice", "create", "pipeline", "-p", str(slow), "-q")
    assert created.returncode == 0, created.stderr
    made = aorta("alice", "create", "job", "-p", created.stdout.strip(), "-n", "slow", "-q")
    assert made.returncode == 0, made.stderr
    job = made.stdout.split()[0]
    assert aorta("alice", "start", "job", job).returncode == 0
    _wait_until(aorta, job, "sleeper", "RUNNING")

    running = aorta("alice", "delete", "job", job, "--yes")
    assert running.returncode == 1 and "cancel it first" in running.stderr

    # Following every operator's log ends when the job stops, having printed what came: the
    # cancel comes once the follower printed the running sleeper's first line, and it still runs.
    with aorta.popen("alice", "logs", job, "--follow", "--interval", "0.2") as following:
        assert following.stdout is not None and following.stderr is not None
        first = following.stdout.readline()
        assert following.poll() is None, first + following.stderr.read()
        assert aorta("alice", "cancel", "job", job).returncode == 0
        out = first + following.stdout.read()
        err = following.stderr.read()
        assert following.wait(timeout=60) == 0, err
    assert out.splitlines()[0] == "[sleeper] sleeper starts"
    assert "operator writer has not run (PENDING; the job is STOPPED, CANCELED)" in err
    _wait_until(aorta, job, "sleeper", "CANCELED")
    described = aorta("alice", "describe", "job", job)
    assert "⊘ sleeper  CANCELED" in described.stdout, described.stdout
    never = aorta("alice", "logs", job, "writer")
    assert never.returncode == 3
    assert "operator writer has not run (PENDING; the job is STOPPED, CANCELED)" in never.stderr


def test_delete_job_removes_its_logs_and_payload_bytes_and_only_its_owners(
    aorta: Platform, files: Path, chain: Path, reader_gate: Path
) -> None:
    reader_gate.touch()  # no view of this run needs the reader held
    ran = aorta("alice", "run", "-p", str(chain), "-f", str(files / "input"))
    assert ran.returncode == 0, ran.stderr
    ids = _ids(ran.stdout)
    job, payload = ids["JOB_ID"], ids["PAYLOAD_ID"]
    blobs = aorta.data / "blobs"
    assert _files_under(blobs / "payloads" / payload)
    assert _files_under(blobs / "logs" / job)
    assert _files_under(blobs / "checksums" / "payloads" / payload)

    theirs = aorta("bob", "delete", "job", job, "--yes")
    assert theirs.returncode == 1 and "belongs to another user" in theirs.stderr
    # The stopped job's payload goes with the job, never alone: not by its owner, and forced
    # only by an admin.
    alone = aorta("alice", "delete", "payload", payload)
    assert alone.returncode == 1 and "PAYLOAD_READ_ONLY" in alone.stderr, alone.stderr
    assert f"delete the job with `aorta delete job {job}`" in alone.stderr
    forced = aorta("alice", "delete", "payload", payload, "--force")
    assert forced.returncode != 0 and "only an admin may force" in forced.stderr, forced.stderr
    assert _files_under(blobs / "payloads" / payload)
    assert job in aorta("alice", "list", "jobs", "-q").stdout
    deleted = aorta("alice", "delete", "job", job, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert _files_under(blobs / "payloads" / payload) == []
    assert _files_under(blobs / "logs" / job) == []
    assert _files_under(blobs / "checksums" / "payloads" / payload) == []
    assert aorta("alice", "describe", "job", job).returncode == 3
    assert job not in aorta("alice", "list", "jobs", "-q").stdout
    # Recorded like every mutating call: who asked, and how it ended.
    audited = aorta("admin", "audit", "--job", job, "--json")
    assert audited.returncode == 0, audited.stderr
    records = {(r["method"], r["subject"], r["result"]) for r in json.loads(audited.stdout)}
    assert ("aorta.v1.Jobs/Delete", "alice", "ok") in records, records
    assert any(method.endswith("Jobs/Delete") and who == "bob" for method, who, _ in records)
