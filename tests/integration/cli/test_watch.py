"""`describe job --watch` off a terminal (a CI log, a pipe): the description once, then one
stamped line per change, then the final description; JSON lines and quiet mode as before."""

from __future__ import annotations

import json
import re

from tests.integration.cli.cli_support import Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform

_STAMPED = re.compile(r"\d\d:\d\d:\d\d  (?P<change>.+)")
_DURATION = re.compile(r"\(\d+s\)")


def _started_job(aorta: Aorta, samples: Samples) -> str:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    created = aorta("create", "job", "-p", pipeline_id, "-n", "study", "--start", "-q")
    assert created.exit_code == 0, created.output
    return created.stdout.split()[0]


def _history(block: str) -> list[str]:
    """The changes of the history block, without their stamps and with durations as `(Ns)`."""
    changes = []
    for line in block.splitlines():
        stamped = _STAMPED.fullmatch(line)
        assert stamped is not None, line
        changes.append(_DURATION.sub("(Ns)", stamped["change"]))
    return changes


def test_the_description_once_then_a_line_per_change_then_the_result(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    platform.steps_per_operator = 2  # polls where nothing changes must print nothing
    job_id = _started_job(aorta, samples)
    watched = aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05")
    assert watched.exit_code == 0, watched.output

    first, history, final = watched.stdout.split("\n\n")
    assert first.startswith(f"name: study\nid: {job_id}\n")
    assert "\nstate: RUNNING\nstatus: HEALTHY\n" in first
    assert [re.sub(r"  \d+s$", "", line) for line in first.splitlines()[-4:]] == [
        "operators",
        "└── ● reader  RUNNING",
        "    └── ○ segment  PENDING",
        "        └── ○ writer  PENDING",
    ]
    assert _history(history) == [
        "operator reader  RUNNING -> COMPLETED (Ns)",
        "operator segment  PENDING -> RUNNING",
        "operator segment  RUNNING -> COMPLETED (Ns)",
        "operator writer  PENDING -> RUNNING",
        "operator writer  RUNNING -> COMPLETED (Ns)",
        "job  RUNNING -> STOPPED, HEALTHY (Ns)",
    ]
    # The log ends with exactly what `describe job` says of the stopped job.
    assert final == aorta("describe", "job", "-j", job_id).stdout
    assert watched.stdout.count("\noperators\n") == 2


def test_a_fault_is_a_line_and_the_exit_code_is_still_1(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    platform.faults.add("segment")
    job_id = _started_job(aorta, samples)
    watched = aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05")
    assert watched.exit_code == 1
    _, history, final = watched.stdout.split("\n\n")
    assert _history(history) == [
        "operator reader  RUNNING -> COMPLETED (Ns)",
        "operator segment  PENDING -> RUNNING",
        "operator segment  RUNNING -> FAULTED (Ns)",
        "job  RUNNING, HEALTHY -> STOPPED, FAULTED (Ns)",
    ]
    assert "\nstate: STOPPED\nstatus: FAULTED\n" in final
    assert "○ writer  PENDING" in final


def test_a_job_already_stopped_is_described_once(aorta: Aorta, samples: Samples) -> None:
    job_id = _started_job(aorta, samples)
    aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05", "-q")
    watched = aorta("describe", "job", "-j", job_id, "--watch")
    assert watched.exit_code == 0
    assert watched.stdout == aorta("describe", "job", "-j", job_id).stdout


def test_json_mode_is_one_document_per_change(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    platform.steps_per_operator = 2
    job_id = _started_job(aorta, samples)
    watched = aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05", "--json")
    assert watched.exit_code == 0, watched.output
    documents = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [(doc["state"], [op["status"] for op in doc["operators"]]) for doc in documents] == [
        ("RUNNING", ["RUNNING", "PENDING", "PENDING"]),
        ("RUNNING", ["COMPLETED", "RUNNING", "PENDING"]),
        ("RUNNING", ["COMPLETED", "COMPLETED", "RUNNING"]),
        ("STOPPED", ["COMPLETED", "COMPLETED", "COMPLETED"]),
    ]
