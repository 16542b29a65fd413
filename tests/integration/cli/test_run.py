"""`aorta run`: definition + input in, results out, exit code by outcome, in one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.cli_support import Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform


def test_run_creates_uploads_starts_watches_and_downloads(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    ran = aorta(
        "run",
        "-p",
        samples.definition,
        "-f",
        samples.input_dir,
        "-o",
        results,
        "--var",
        "LABEL=liver",
        "--interval",
        "0.05",
    )
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    labels = [line.partition(":")[0] for line in lines[:3]]
    assert labels == ["PIPELINE_ID", "JOB_ID", "PAYLOAD_ID"]
    job_id = lines[1].partition(":")[2]
    job = platform.jobs[job_id]
    assert job.name.startswith("seg-demo-")
    assert job.variables == [("LABEL", "liver")]
    # Off a terminal the watch is a history: a tree at the start and at the end, lines between.
    assert ran.stdout.count("\noperators\n") == 2
    assert "  job  RUNNING -> STOPPED, HEALTHY (" in ran.stdout
    assert "state: STOPPED\nstatus: HEALTHY" in ran.stdout.split("\n\n")[-1]
    files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
    assert files == [
        "reader/empty.dat",
        "reader/notes/readme.txt",
        "reader/scan.dcm",
        "reader/summary.txt",
        "segment/summary.txt",
        "writer/summary.txt",
    ]
    assert (results / "reader" / "scan.dcm").read_bytes() == samples.inputs["scan.dcm"][::-1]


def test_a_failed_run_exits_1_and_shows_the_faulted_operator_s_log(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    platform.faults.add("segment")
    ran = aorta(
        "run",
        "-p",
        samples.definition,
        "-f",
        samples.input_dir,
        "-o",
        tmp_path / "out",
        "--name",
        "bad-run",
        "--interval",
        "0.05",
    )
    assert ran.exit_code == 1
    assert "status: FAULTED" in ran.stdout
    assert "operator segment FAULTED; the last lines of its log:" in ran.stderr
    assert "  segment: error: the model rejected the input" in ran.stderr
    # What the operators before the fault wrote is still fetched.
    assert (tmp_path / "out" / "reader" / "summary.txt").is_file()


def test_run_reuses_a_registered_pipeline_and_speaks_json(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    ran = aorta(
        "run",
        "-p",
        pipeline_id,
        "-f",
        samples.input_dir / "scan.dcm",
        "--json",
        "--interval",
        "0.05",
    )
    assert ran.exit_code == 0, ran.output
    document = json.loads(ran.stdout)
    assert document["pipeline_id"] == pipeline_id
    assert (document["state"], document["status"]) == ("STOPPED", "HEALTHY")
    assert [op["name"] for op in document["operators"]] == ["reader", "segment", "writer"]
    assert document["downloaded"] == []
    assert len(platform.pipelines) == 1
    payload = platform.payloads[document["payload_id"]]
    assert payload.files["/input/scan.dcm"] == samples.inputs["scan.dcm"]


def test_run_quiet_prints_the_job_id_alone(aorta: Aorta, samples: Samples) -> None:
    ran = aorta(
        "run", "-p", samples.definition, "-f", samples.input_dir, "-q", "--interval", "0.05"
    )
    assert ran.exit_code == 0
    [job_id] = ran.stdout.splitlines()
    described = json.loads(aorta("describe", "job", job_id, "-o", "json").stdout)
    assert described["job_id"] == job_id


def test_run_takes_a_registered_pipeline_by_name(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    assert aorta("create", "pipeline", "-p", samples.definition).exit_code == 0
    ran = aorta("run", "-p", "seg-demo", "-f", samples.input_dir, "-o", "name")
    assert ran.exit_code == 0, ran.output
    [name] = ran.stdout.splitlines()
    assert name.startswith("job/") and len(platform.pipelines) == 1


def test_run_o_json_is_the_format_and_any_other_value_a_folder(
    aorta: Aorta, samples: Samples, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    as_json = aorta("run", "-p", samples.definition, "-f", samples.input_dir, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["status"] == "HEALTHY"
    assert not (tmp_path / "json").exists()
    into = aorta("run", "-p", samples.definition, "-f", samples.input_dir, "-o", "results")
    assert into.exit_code == 0, into.output
    assert (tmp_path / "results").is_dir()


def test_run_refuses_what_is_neither_a_file_nor_an_id(aorta: Aorta, samples: Samples) -> None:
    ran = aorta("run", "-p", "nothing-here.yml", "-f", samples.input_dir)
    assert ran.exit_code == 2
    assert "neither a definition file nor a pipeline id" in ran.stderr
