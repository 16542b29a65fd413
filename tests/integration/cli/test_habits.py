"""The habits kubectl, argo and Clara CLI users bring, against the fake platform: `-o
json|yaml|wide|name` (and `--output`, `--json`), `get`, `stop`, `delete job`, positional ids,
jobs and pipelines by id prefix or name, `-q` with one id per created thing, and their exit
codes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml

from tests.integration.cli.cli_support import Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform


def _pipeline(aorta: Aorta, samples: Samples) -> str:
    created = aorta("create", "pipeline", "-p", samples.definition, "-q")
    assert created.exit_code == 0, created.output
    return created.stdout.strip()


def _job(aorta: Aorta, pipeline: str, name: str = "study", *extra: str) -> str:
    created = aorta("create", "job", "-p", pipeline, "-n", name, "-q", *extra)
    assert created.exit_code == 0, created.output
    [job_id] = created.stdout.splitlines()
    return job_id


def _columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def _finish(aorta: Aorta, job_id: str) -> None:
    assert aorta("describe", "job", job_id, "--watch", "--interval", "0.05", "-q").exit_code == 0


def test_list_jobs_in_every_output_mode(aorta: Aorta, samples: Samples) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples))
    as_json = json.loads(aorta("list", "jobs", "-o", "json").stdout)
    assert [job["job_id"] for job in as_json] == [job_id]
    assert json.loads(aorta("list", "jobs", "--output", "json").stdout) == as_json
    assert json.loads(aorta("list", "jobs", "--output=json").stdout) == as_json
    assert json.loads(aorta("list", "jobs", "--json").stdout) == as_json
    assert yaml.safe_load(aorta("list", "jobs", "-o", "yaml").stdout) == as_json
    assert aorta("list", "jobs", "-o", "name").stdout == f"job/{job_id}\n"
    assert aorta("list", "jobs", "-q").stdout == f"{job_id}\n"


def test_wide_adds_the_pipeline_payload_creator_operators_and_reason(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    pipeline = _pipeline(aorta, samples)
    job_id = _job(aorta, pipeline)
    header, row = aorta("list", "jobs", "-o", "wide").stdout.splitlines()
    assert _columns(header)[-5:] == ["PIPELINE", "PAYLOAD ID", "CREATED BY", "OPERATORS", "REASON"]
    assert row.split()[0] == job_id
    assert row.split()[-5:] == [pipeline, platform.jobs[job_id].payload_id, "-", "3", "-"]
    narrow = aorta("list", "jobs").stdout.splitlines()[0]
    assert "OPERATORS" not in narrow
    pipelines = aorta("list", "pipelines", "-o", "wide").stdout.splitlines()
    assert _columns(pipelines[0])[2:] == ["CREATED BY", "OPERATORS", "METADATA"]
    assert pipelines[1].split()[-2:] == ["3", "-"]


def test_get_is_list_without_an_id_and_describe_with_one(aorta: Aorta, samples: Samples) -> None:
    pipeline = _pipeline(aorta, samples)
    job_id = _job(aorta, pipeline)
    for noun in ("jobs", "pipelines", "payloads", "models"):
        got, listed = aorta("get", noun, "-o", "json"), aorta("list", noun, "-o", "json")
        assert got.exit_code == listed.exit_code == 0, got.output
        assert json.loads(got.stdout) == json.loads(listed.stdout)
    described = json.loads(aorta("describe", "job", "-j", job_id, "--json").stdout)
    assert json.loads(aorta("get", "job", job_id, "-o", "json").stdout) == described
    assert json.loads(aorta("get", "jobs", "-j", job_id, "-o", "json").stdout) == described
    assert aorta("get", "job", job_id).stdout.startswith("name: study\n")
    got_pipeline = json.loads(aorta("get", "pipeline", "seg-demo", "-o", "json").stdout)
    assert got_pipeline["pipeline_id"] == pipeline


def test_create_job_q_prints_the_job_id_alone_and_json_both(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    pipeline = _pipeline(aorta, samples)
    job_id = _job(aorta, pipeline, "study", "-f", str(samples.input_dir))
    assert job_id in platform.jobs
    created = aorta("create", "job", "-p", pipeline, "-n", "other", "-o", "json")
    document = json.loads(created.stdout)
    assert platform.jobs[document["job_id"]].payload_id == document["payload_id"]
    named = aorta("create", "job", "-p", pipeline, "-n", "third", "-o", "name")
    assert named.stdout.startswith("job/") and len(named.stdout.splitlines()) == 1
    assert aorta("create", "pipeline", "-p", samples.definition, "-o", "name").stdout.startswith(
        "pipeline/"
    )


def test_a_pipeline_is_named_by_its_name_the_newest_of_that_name(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    _pipeline(aorta, samples)
    newest = _pipeline(aorta, samples)
    job_id = _job(aorta, "seg-demo")
    assert platform.jobs[job_id].pipeline.pipeline_id == newest
    assert _job(aorta, newest[:8]) in platform.jobs
    missing = aorta("create", "job", "-p", "organ-segmentation", "-n", "x")
    assert missing.exit_code == 3
    assert "no pipeline has the id, id prefix or name 'organ-segmentation'" in missing.stderr


def test_jobs_by_positional_id_prefix_and_name(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    pipeline = _pipeline(aorta, samples)
    first = _job(aorta, pipeline, "scan")
    second = _job(aorta, pipeline, "scan")
    by_prefix = aorta("describe", "job", first[:6], "-o", "json")
    assert json.loads(by_prefix.stdout)["job_id"] == first
    by_name = aorta("describe", "job", "scan", "-o", "name")
    assert by_name.stdout == f"job/{second}\n"
    assert aorta("describe", "job", "-j", first[:6], "-q").stdout == f"{first}\n"
    assert aorta("start", "job", first[:8], "-q").stdout == f"{first}\n"
    missing = aorta("describe", "job", "nothing-by-this-name")
    assert missing.exit_code == 3
    assert "no job has the id, id prefix or name 'nothing-by-this-name'" in missing.stderr


def test_an_ambiguous_prefix_lists_the_candidates_and_exits_2(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples), "scan")
    twin = "abcd" + "e" * 28
    platform.jobs[twin] = dataclasses.replace(platform.jobs[job_id], job_id=twin, name="twin")
    platform.jobs["abcd" + "f" * 28] = dataclasses.replace(
        platform.jobs[job_id], job_id="abcd" + "f" * 28, name="other"
    )
    ambiguous = aorta("describe", "job", "abcd")
    assert ambiguous.exit_code == 2
    assert "'abcd' is the start of several job ids; give more of one:" in ambiguous.stderr
    assert f"  {twin}  twin  " in ambiguous.stderr
    assert json.loads(aorta("describe", "job", "abcde", "--json").stdout)["name"] == "twin"


def test_stop_is_cancel_and_takes_the_job_as_an_argument(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    pipeline = _pipeline(aorta, samples)
    job_id = _job(aorta, pipeline, "scan", "--start")
    stopped = aorta("stop", "job", job_id, "-o", "json")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["status"] == "CANCELED"
    other = _job(aorta, pipeline, "other", "--start")
    canceled = aorta("cancel", "job", "other")
    assert canceled.exit_code == 0
    assert canceled.stdout == f"Job {other} canceled: STOPPED, CANCELED.\n"


def test_delete_job_needs_yes_off_a_terminal_and_a_stopped_job(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples), "scan", "--start")
    payload_id = platform.jobs[job_id].payload_id
    unconfirmed = aorta("delete", "job", job_id)
    assert unconfirmed.exit_code == 2
    assert "cannot be undone: add --yes" in unconfirmed.stderr
    running = aorta("delete", "job", job_id, "--yes")
    assert running.exit_code == 1
    assert "JOB_STATE_CONFLICT" in running.stderr and job_id in platform.jobs
    _finish(aorta, job_id)
    deleted = aorta("delete", "job", "scan", "--yes", "-o", "json")
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {
        "job_id": job_id,
        "deleted": True,
        "payload_id": payload_id,
        "logs_removed": 3,
    }
    assert job_id not in platform.jobs and payload_id not in platform.payloads
    assert aorta("describe", "job", job_id).exit_code == 3


def test_payloads_and_downloads_take_positional_ids(
    aorta: Aorta, samples: Samples, platform: FakePlatform, tmp_path: Path
) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples), "scan", "-f", str(samples.input_dir))
    payload_id = platform.jobs[job_id].payload_id
    described = json.loads(aorta("describe", "payload", payload_id, "-o", "json").stdout)
    assert described["payload_id"] == payload_id
    assert aorta("describe", "payload", payload_id, "-o", "name").stdout == (
        f"payload/{payload_id}\n"
    )
    by_payload = aorta("download", "payload", payload_id, "/input/notes", tmp_path / "p")
    assert by_payload.exit_code == 0, by_payload.output
    assert (tmp_path / "p" / "notes" / "readme.txt").read_bytes() == samples.inputs[
        "notes/readme.txt"
    ]
    by_job = aorta("download", "job", "scan", "/input/scan.dcm", tmp_path / "j", "-q")
    assert by_job.exit_code == 0, by_job.output
    assert by_job.stdout == f"{tmp_path / 'j' / 'scan.dcm'}\n"


def test_version_q_and_help(aorta: Aorta) -> None:
    assert aorta("version", "-o", "yaml").exit_code == 0
    assert "server" in yaml.safe_load(aorta("version", "-o", "yaml").stdout)
    assert len(aorta("version", "-q").stdout.splitlines()) == 1
    helped = aorta("help", "describe", "job")
    assert helped.exit_code == 0 and "Usage: aorta describe job [OPTIONS] [JOB]" in helped.output


def test_upload_takes_the_payload_first_or_through_its_option(
    aorta: Aorta, samples: Samples, platform: FakePlatform
) -> None:
    payload_id = aorta("create", "payload", "-q").stdout.strip()
    positional = aorta("upload", payload_id, samples.input_dir / "scan.dcm", "ct/1.dcm", "-q")
    assert positional.exit_code == 0, positional.output
    assert positional.stdout == f"{payload_id}\n"
    flagged = aorta("upload", "--payload", payload_id, samples.input_dir / "empty.dat")
    assert flagged.exit_code == 0, flagged.output
    assert sorted(platform.payloads[payload_id].files) == ["/input/ct/1.dcm", "/input/empty.dat"]
    missing = aorta("upload", payload_id, "no-such-file")
    assert (missing.exit_code, "no-such-file does not exist" in missing.stderr) == (2, True)
    assert aorta("upload", payload_id).exit_code == 2


def test_list_jobs_filters_by_a_pipeline_name(aorta: Aorta, samples: Samples) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples))
    assert aorta("list", "jobs", "--pipeline", "seg-demo", "-q").stdout == f"{job_id}\n"
    assert aorta("list", "jobs", "--pipeline", "liver", "-q").exit_code == 3


def test_watching_in_yaml_is_a_stream_of_documents(aorta: Aorta, samples: Samples) -> None:
    job_id = _job(aorta, _pipeline(aorta, samples), "scan", "--start")
    watched = aorta("describe", "job", job_id, "--watch", "--interval", "0.05", "-o", "yaml")
    assert watched.exit_code == 0, watched.output
    documents = list(yaml.safe_load_all(watched.stdout))
    assert len(documents) > 2
    assert (documents[-1]["state"], documents[-1]["status"]) == ("STOPPED", "HEALTHY")
    named = aorta("describe", "job", job_id, "--watch", "--interval", "0.05", "-o", "name")
    assert named.stdout == f"job/{job_id}\n"
