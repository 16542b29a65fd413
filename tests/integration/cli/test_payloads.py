"""Payload commands: reusable payloads, uploads under chosen names, listings, deletion."""

from __future__ import annotations

import json

from cli_support import Aorta, Samples
from fake_platform import FakePlatform


def test_create_upload_describe_and_delete_a_reusable_payload(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    created = aorta("create", "payload", "--metadata", "site=north")
    assert created.exit_code == 0
    payload_id = created.stdout.strip().removeprefix("PAYLOAD_ID:")
    assert len(payload_id) == 32

    renamed = aorta("upload", "--payload", payload_id, samples.input_dir / "scan.dcm", "ct/1.dcm")
    assert renamed.exit_code == 0, renamed.output
    folder = aorta("upload", "--payload", payload_id, samples.input_dir / "notes", "docs", "--json")
    assert json.loads(folder.stdout) == {
        "payload_id": payload_id,
        "uploaded": [{"name": "docs/readme.txt", "size": 22}],
    }
    assert platform.payloads[payload_id].files == {
        "/input/ct/1.dcm": samples.inputs["scan.dcm"],
        "/input/docs/readme.txt": samples.inputs["notes/readme.txt"],
    }

    described = aorta("describe", "payload", "--payload", payload_id)
    assert described.stdout.splitlines() == [
        f"id: {payload_id}",
        "type: REUSABLE",
        "job: -",
        "files: 2 (153.6 kB)",
        "",
        "NAME                    SIZE      MODE",
        "/input/ct/1.dcm         153.6 kB  644",
        "/input/docs/readme.txt  22 bytes  644",
    ]
    document = json.loads(aorta("describe", "payload", "--payload", payload_id, "--json").stdout)
    assert document["files"][0] == {"name": "/input/ct/1.dcm", "size": 153_600, "mode": 0o644}

    assert aorta("delete", "payload", "--payload", payload_id).exit_code == 0
    assert payload_id not in platform.payloads
    assert aorta("describe", "payload", "--payload", payload_id).exit_code == 3


def test_list_payloads_shows_the_payload_of_every_job(aorta: Aorta, samples: Samples) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    job_id, payload_id = aorta("create", "job", "-p", pipeline_id, "-n", "a", "-q").stdout.split()
    listed = json.loads(aorta("list", "payloads", "--json").stdout)
    assert listed == [
        {"payload_id": payload_id, "job_id": job_id, "job_name": "a", "job_state": "PENDING"}
    ]
    assert aorta("list", "payloads", "-q").stdout == f"{payload_id}\n"


def test_uploading_to_a_started_job_is_refused(aorta: Aorta, samples: Samples) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    _, payload_id = aorta(
        "create", "job", "-p", pipeline_id, "-n", "a", "--start", "-q"
    ).stdout.split()
    refused = aorta("upload", "--payload", payload_id, samples.input_dir)
    assert refused.exit_code == 1
    assert "PAYLOAD_READ_ONLY" in refused.stderr and "its job has started" in refused.stderr
