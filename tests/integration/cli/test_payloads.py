"""Payload commands: reusable payloads, uploads under chosen names, listings, deletion."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.integration.cli.cli_support import Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_create_upload_describe_and_delete_a_reusable_payload(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    created = aorta("create", "payload", "--metadata", "site=north")
    assert created.exit_code == 0
    payload_id = created.stdout.strip().removeprefix("PAYLOAD_ID:")
    assert len(payload_id) == 32

    renamed = aorta("upload", "--payload", payload_id, samples.input_dir / "scan.dcm", "ct/1.dcm")
    assert renamed.exit_code == 0, renamed.output
    notes_sha256 = sha256(samples.inputs["notes/readme.txt"])
    folder = aorta("upload", "--payload", payload_id, samples.input_dir / "notes", "docs", "--json")
    assert json.loads(folder.stdout) == {
        "payload_id": payload_id,
        "uploaded": [{"name": "docs/readme.txt", "size": 22, "sha256": notes_sha256}],
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
        "NAME                    SIZE      MODE  SHA-256",
        f"/input/ct/1.dcm         153.6 kB  644   {sha256(samples.inputs['scan.dcm'])}",
        f"/input/docs/readme.txt  22 bytes  644   {notes_sha256}",
    ]
    document = json.loads(aorta("describe", "payload", "--payload", payload_id, "--json").stdout)
    assert document["files"][0] == {
        "name": "/input/ct/1.dcm",
        "size": 153_600,
        "mode": 0o644,
        "sha256": sha256(samples.inputs["scan.dcm"]),
    }

    assert aorta("delete", "payload", "--payload", payload_id).exit_code == 0
    assert payload_id not in platform.payloads
    assert aorta("describe", "payload", "--payload", payload_id).exit_code == 3


def test_list_payloads_shows_the_payload_of_every_job(aorta: Aorta, samples: Samples) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    created = json.loads(aorta("create", "job", "-p", pipeline_id, "-n", "a", "-o", "json").stdout)
    job_id, payload_id = created["job_id"], created["payload_id"]
    listed = json.loads(aorta("list", "payloads", "--json").stdout)
    assert listed == [
        {"payload_id": payload_id, "job_id": job_id, "job_name": "a", "job_state": "PENDING"}
    ]
    assert aorta("list", "payloads", "-q").stdout == f"{payload_id}\n"


def test_a_started_jobs_payload_is_deleted_alone_only_with_force(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    created = aorta("create", "job", "-p", pipeline_id, "-n", "a", "--start", "--json")
    payload_id = json.loads(created.stdout)["payload_id"]
    refused = aorta("delete", "payload", payload_id)
    assert refused.exit_code == 1
    assert "PAYLOAD_READ_ONLY" in refused.stderr
    assert payload_id in platform.payloads
    assert aorta("delete", "payload", payload_id, "--force").exit_code == 0
    assert payload_id not in platform.payloads


def test_uploading_to_a_started_job_is_refused(aorta: Aorta, samples: Samples) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    created = aorta("create", "job", "-p", pipeline_id, "-n", "a", "--start", "--json")
    payload_id = json.loads(created.stdout)["payload_id"]
    refused = aorta("upload", "--payload", payload_id, samples.input_dir)
    assert refused.exit_code == 1
    assert "PAYLOAD_READ_ONLY" in refused.stderr and "its job has started" in refused.stderr


def test_a_download_is_checked_against_the_checksum_recorded_at_upload(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    payload_id = aorta("create", "payload", "-q").stdout.strip()
    assert aorta("upload", "--payload", payload_id, samples.input_dir / "scan.dcm").exit_code == 0
    scan = samples.inputs["scan.dcm"]

    fetched = aorta("download", "--payload", payload_id, "/input/*", tmp_path / "ok", "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["downloaded"] == [
        {
            "name": "/input/scan.dcm",
            "size": len(scan),
            "path": str(tmp_path / "ok" / "scan.dcm"),
            "sha256": sha256(scan),
            "verified": True,
        }
    ]

    # The stored bytes change behind the recorded checksum: the download must not pass.
    platform.payloads[payload_id].files["/input/scan.dcm"] = b"X" + scan[1:]
    damaged = aorta("download", "--payload", payload_id, "/input/*", tmp_path / "bad")
    assert damaged.exit_code == 1
    assert "download of /input/scan.dcm is damaged" in damaged.stderr
    assert f"the platform recorded {sha256(scan)}" in damaged.stderr
    assert list((tmp_path / "bad").iterdir()) == []  # neither the file nor its partial copy


def test_a_file_without_a_recorded_checksum_downloads_unchecked(
    aorta: Aorta, platform: FakePlatform, tmp_path: Path
) -> None:
    payload_id = aorta("create", "payload", "-q").stdout.strip()
    # As an operator's output is: stored, but with no checksum recorded.
    platform.payloads[payload_id].files["/operators/seg/mask.raw"] = b"mask"
    fetched = aorta("download", "--payload", payload_id, "/operators/*", tmp_path, "--json")
    assert fetched.exit_code == 0, fetched.output
    (entry,) = json.loads(fetched.stdout)["downloaded"]
    assert (entry["sha256"], entry["verified"]) == (sha256(b"mask"), False)
    assert (tmp_path / "seg" / "mask.raw").read_bytes() == b"mask"


def test_creating_a_job_with_files_reports_their_recorded_checksums(
    aorta: Aorta, samples: Samples
) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    created = aorta(
        "create", "job", "-p", pipeline_id, "-n", "a", "-f", samples.input_dir / "notes", "--json"
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["uploaded"] == [
        {
            "name": "readme.txt",
            "size": 22,
            "sha256": sha256(samples.inputs["notes/readme.txt"]),
        }
    ]
