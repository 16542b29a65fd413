"""Model commands: a Triton folder zipped on the fly, archives, lookups by id, prefix or name."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from aorta.api import models_pb2
from tests.integration.cli.cli_support import Aorta
from tests.integration.cli.fake_platform import FakePlatform


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "covid"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text('name: "covid"\nplatform: "pytorch_libtorch"\n')
    (folder / "1" / "model.pt").write_bytes(bytes(range(256)) * 2000)  # 512 kB, many chunks
    return folder


def test_a_model_folder_is_zipped_and_the_platform_receives_every_member(
    aorta: Aorta, platform: FakePlatform, model_folder: Path
) -> None:
    created = aorta("create", "model", "-f", model_folder, "--metadata", "owner=radiology")
    assert created.exit_code == 0, created.output
    model_id = created.stdout.strip().removeprefix("MODEL_ID:")
    stored = platform.models[model_id]
    assert (stored.name, stored.kind) == ("covid", models_pb2.MODEL_TYPE_PY_TORCH)
    assert stored.metadata == {"owner": "radiology"}
    assert stored.members == {
        "covid/config.pbtxt": (model_folder / "config.pbtxt").read_bytes(),
        "covid/1/model.pt": (model_folder / "1" / "model.pt").read_bytes(),
    }


def test_an_archive_is_sent_as_is_and_the_same_name_replaces(
    aorta: Aorta, platform: FakePlatform, tmp_path: Path
) -> None:
    archive = tmp_path / "liver.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("liver/config.pbtxt", 'name: "liver"\n')
        writer.writestr("liver/1/model.plan", b"\x01" * 10)
    first = aorta("create", "models", "-p", archive, "-t", "tensorrt", "-q").stdout.strip()
    second = aorta("create", "model", "-f", archive, "-t", "tensorrt", "--json")
    document = json.loads(second.stdout)
    assert document["name"] == "liver" and document["type"] == "tensorrt"
    assert list(platform.models) == [document["model_id"]] != [first]
    assert platform.models[document["model_id"]].archive == archive.read_bytes()


def test_list_describe_download_and_delete(
    aorta: Aorta, platform: FakePlatform, model_folder: Path, tmp_path: Path
) -> None:
    model_id = aorta("create", "model", "-f", model_folder, "-q").stdout.strip()
    listed = aorta("list", "models")
    assert listed.stdout.splitlines() == [
        "MODEL ID                          NAME   TYPE     METADATA",
        f"{model_id}  covid  pytorch",
    ]
    by_prefix = aorta("describe", "model", "-m", model_id[:6])
    assert by_prefix.stdout.splitlines() == ["name: covid", f"id: {model_id}", "type: pytorch"]
    by_name = json.loads(aorta("describe", "model", "-m", "covid", "--json").stdout)
    assert by_name["model_id"] == model_id

    downloaded = aorta("download", "model", "-m", model_id, tmp_path)
    assert downloaded.exit_code == 0, downloaded.output
    archive = tmp_path / "covid.zip"
    assert archive.read_bytes() == platform.models[model_id].archive
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        assert opened.read("covid/1/model.pt") == (model_folder / "1" / "model.pt").read_bytes()

    deleted = aorta("delete", "models", model_id[:8], "-q")
    assert deleted.stdout.strip() == model_id
    assert platform.models == {}
    assert aorta("describe", "model", "-m", model_id).exit_code == 3


def test_an_ambiguous_prefix_is_a_usage_error(
    aorta: Aorta, platform: FakePlatform, tmp_path: Path
) -> None:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("m/config.pbtxt", "")
    # 17 ids over 16 hex digits: two of them share their first character.
    for number in range(17):
        assert aorta("create", "model", "-f", archive, "-n", f"m{number}").exit_code == 0
    firsts = [model_id[0] for model_id in platform.models]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    result = aorta("describe", "model", "-m", shared)
    assert result.exit_code == 2
    assert f"'{shared}' names several models" in result.stderr


def test_a_folder_that_is_not_a_triton_model_is_refused(aorta: Aorta, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hi")
    result = aorta("create", "model", "-f", tmp_path / "junk")
    assert result.exit_code == 2
    assert "has no config.pbtxt" in result.stderr
