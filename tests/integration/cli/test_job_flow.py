"""Clara's flow through the CLI against the fake platform: create pipeline -> create job with an
input folder -> start -> describe --watch until STOPPED -> logs -> download."""

from __future__ import annotations

import json
from pathlib import Path

from aorta.cli.files import CHUNK_SIZE
from tests.integration.cli.cli_support import (
    ROOT_PIPELINE,
    SEGMENT_OPERATOR,
    TRITON_SERVICE,
    Aorta,
    Samples,
)
from tests.integration.cli.fake_platform import FakePlatform


def _value(line: str, label: str) -> str:
    key, _, value = line.partition(":")
    assert key == label, line
    return value


def test_the_whole_clara_flow(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    created = aorta("create", "pipelines", "-p", samples.definition)
    assert created.exit_code == 0, created.output
    pipeline_id = _value(created.stdout.strip(), "PIPELINE_ID")
    # The definition and both files it imports, each under its path as the server resolves it.
    assert platform.pipelines[pipeline_id].files == {
        "pipeline.yml": ROOT_PIPELINE,
        "ops/segment.yml": SEGMENT_OPERATOR,
        "ops/triton.yml": TRITON_SERVICE,
    }

    job = aorta(
        "create",
        "job",
        "-p",
        pipeline_id,
        "-n",
        "study-1",
        "-f",
        samples.input_dir,
        "--metadata",
        "ward=icu",
    )
    assert job.exit_code == 0, job.output
    first, second = job.stdout.splitlines()[:2]
    job_id, payload_id = _value(first, "JOB_ID"), _value(second, "PAYLOAD_ID")
    assert platform.jobs[job_id].payload_id == payload_id
    # Exact names (relative to the folder) and bytes; 64 KiB chunks, all in one stream.
    stored = platform.payloads[payload_id].files
    assert stored == {f"/input/{name}": data for name, data in samples.inputs.items()}
    assert platform.upload_messages == [
        ("empty.dat", 0),
        ("notes/readme.txt", len("résumé of the study\n".encode())),
        ("scan.dcm", CHUNK_SIZE),
        ("scan.dcm", CHUNK_SIZE),
        ("scan.dcm", 153_600 - 2 * CHUNK_SIZE),
    ]

    started = aorta("start", "job", "-j", job_id, "--var", "LABEL=spleen")
    assert started.exit_code == 0, started.output
    assert platform.jobs[job_id].variables == [("LABEL", "spleen")]

    watched = aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05")
    assert watched.exit_code == 0, watched.output
    # Off a terminal: the description, a line per change, the final description.
    assert watched.stdout.startswith("name: study-1\n")
    assert "state: RUNNING" in watched.stdout
    assert "  operator segment  PENDING -> RUNNING\n" in watched.stdout
    last = watched.stdout.split("\n\n")[-1]
    assert "state: STOPPED\nstatus: HEALTHY\n" in last
    assert "✓ writer  COMPLETED" in last

    logs = aorta("logs", "-j", job_id, "-o", "segment")
    assert logs.exit_code == 0
    assert logs.stdout.splitlines() == ["segment: starting", "segment: step 1", "segment: done"]

    out = tmp_path / "results"
    fetched = aorta("download", "-j", job_id, "/operators/reader/*", out)
    assert fetched.exit_code == 0, fetched.output
    for name, data in samples.inputs.items():
        assert (out / name).read_bytes() == data[::-1]  # what the fake's reader wrote
        assert (out / name).read_bytes() == stored[f"/operators/reader/{name}"]
    assert (out / "summary.txt").read_text() == "reader: 3 inputs\n"
    assert not list(out.rglob(".*.part"))


def test_clara_s_download_form_and_a_whole_payload(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    job_id = _finished_job(aorta, samples)
    clara = aorta("download", f"{job_id}:/operators/*", tmp_path / "clara")
    assert clara.exit_code == 0, clara.output
    assert sorted(
        p.relative_to(tmp_path / "clara").as_posix()
        for p in (tmp_path / "clara").rglob("*")
        if p.is_file()
    ) == [
        "reader/empty.dat",
        "reader/notes/readme.txt",
        "reader/scan.dcm",
        "reader/summary.txt",
        "segment/summary.txt",
        "writer/summary.txt",
    ]
    payload_id = platform.jobs[job_id].payload_id
    everything = aorta("download", "--payload", payload_id, tmp_path / "all", "--json")
    assert everything.exit_code == 0
    document = json.loads(everything.stdout)
    assert document["payload_id"] == payload_id
    assert len(document["downloaded"]) == 9
    assert (tmp_path / "all" / "input" / "scan.dcm").read_bytes() == samples.inputs["scan.dcm"]


def test_a_pattern_that_matches_nothing_exits_3_and_lists_what_there_is(
    aorta: Aorta, samples: Samples, tmp_path: Path
) -> None:
    job_id = _finished_job(aorta, samples)
    result = aorta("download", "-j", job_id, "/operators/nobody/*", tmp_path)
    assert result.exit_code == 3
    assert "matches '/operators/nobody/*'" in result.stderr
    assert "/input/empty.dat" in result.stderr


def test_a_faulted_job_exits_1_and_its_log_says_why(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    platform.faults.add("segment")
    job_id = _finished_job(aorta, samples, expect=1)
    described = aorta("describe", "job", "-j", job_id)
    assert described.exit_code == 0  # describing worked; only --watch reports the outcome
    assert "status: FAULTED" in described.stdout
    assert "✗ segment  FAULTED" in described.stdout
    assert "○ writer  PENDING" in described.stdout
    logs = aorta("logs", "job", "-j", job_id, "-o", "segment")
    assert logs.stdout.splitlines()[-1] == "segment: error: the model rejected the input"


def test_logs_follow_prints_each_line_once_until_the_job_stops(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    platform.steps_per_operator = 3
    job_id = _created_job(aorta, samples, start=True)
    followed = aorta("logs", "-j", job_id, "-o", "writer", "--follow", "--interval", "0.05")
    assert followed.exit_code == 0
    assert followed.stdout.splitlines() == [
        "writer: starting",
        "writer: step 1",
        "writer: step 2",
        "writer: step 3",
        "writer: done",
    ]


def test_unknown_things_exit_3(aorta: Aorta, samples: Samples) -> None:
    missing = "0" * 32
    assert aorta("describe", "job", "-j", missing).exit_code == 3
    assert aorta("start", "job", "-j", missing).exit_code == 3
    assert aorta("describe", "pipeline", "-p", missing).exit_code == 3
    created = aorta("create", "job", "-p", missing, "-n", "x")
    assert created.exit_code == 3
    assert f"PIPELINE_NOT_FOUND -4097):\npipeline {missing} does not exist" in created.stderr
    job_id = _created_job(aorta, samples)
    unknown_operator = aorta("logs", "-j", job_id, "-o", "nobody")
    assert unknown_operator.exit_code == 3
    assert "has no operator 'nobody'" in unknown_operator.stderr


def test_a_refused_call_exits_1_with_the_server_s_message(aorta: Aorta, samples: Samples) -> None:
    job_id = _created_job(aorta, samples, start=True)
    again = aorta("start", "job", "-j", job_id)
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: starting job {job_id} failed (JOB_STATE_CONFLICT -8449):\n"
        "the job was already started\n"
    )


def test_cancel_and_list_with_filters(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    keep = _created_job(aorta, samples)
    gone = _created_job(aorta, samples)
    canceled = aorta("cancel", "job", "-j", gone, "--reason", "wrong patient", "--json")
    assert json.loads(canceled.stdout) == {"job_id": gone, "state": "STOPPED", "status": "CANCELED"}
    stopped = aorta("list", "jobs", "--state", "stopped", "-q")
    assert stopped.stdout.split() == [gone]
    pending = aorta("list", "jobs", "--state", "pending", "--status", "healthy", "-q")
    assert pending.stdout.split() == [keep]
    every = aorta("list", "jobs", "--created-after", "1h", "-q")
    assert every.stdout.split() == [gone, keep]  # newest first
    future = aorta("list", "jobs", "--created-after", "2999-01-01T00:00:00Z", "-q")
    assert future.stdout == ""
    table = aorta("list", "jobs")
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "JOB",
        "ID",
        "NAME",
        "STATE",
        "STATUS",
        "PRIORITY",
        "CREATED",
        "DURATION",
    ]
    assert [row.split()[0] for row in rows] == [gone, keep]


def _created_job(aorta: Aorta, samples: Samples, *, start: bool = False) -> str:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    args = ["create", "job", "-p", pipeline_id, "-n", "study", "-f", samples.input_dir, "-q"]
    result = aorta(*args, *(["--start"] if start else []))
    assert result.exit_code == 0, result.output
    return result.stdout.split()[0]


def _finished_job(aorta: Aorta, samples: Samples, expect: int = 0) -> str:
    job_id = _created_job(aorta, samples, start=True)
    watched = aorta("describe", "job", "-j", job_id, "--watch", "--interval", "0.05", "-q")
    assert watched.exit_code == expect, watched.output
    assert watched.stdout == f"{job_id}\n"
    return job_id
