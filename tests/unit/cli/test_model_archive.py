"""A Triton model folder becomes a zip archive while it streams, under its model name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from aorta.cli.failures import UsageFailure
from aorta.cli.model_archive import guess_type, inspect_folder, zip_chunks


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "covid"
    (folder / "1").mkdir(parents=True)
    (folder / "2" / "model.savedmodel" / "variables").mkdir(parents=True)
    (folder / "config.pbtxt").write_text('name: "covid"\nplatform: "pytorch_libtorch"\n')
    (folder / "1" / "model.pt").write_bytes(bytes(range(256)) * 1000)
    (folder / "2" / "model.savedmodel" / "variables" / "v.bin").write_bytes(b"\x00" * 70_000)
    return folder


def test_the_archive_holds_the_folder_under_the_model_name(model_folder: Path) -> None:
    model = inspect_folder(model_folder)
    advanced: list[int] = []
    chunks = list(zip_chunks(model, lambda _name, n: advanced.append(n), chunk_size=4096))
    assert all(0 < len(c) <= 4096 for c in chunks)
    assert sum(advanced) == model.size
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == [
            "covid/1/model.pt",
            "covid/2/model.savedmodel/variables/v.bin",
            "covid/config.pbtxt",
        ]
        assert archive.read("covid/1/model.pt") == (model_folder / "1" / "model.pt").read_bytes()


def test_the_name_and_type_come_from_the_config(model_folder: Path) -> None:
    model = inspect_folder(model_folder)
    assert (model.name, model.model_type) == ("covid", "pytorch")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('platform: "tensorrt_plan"', "tensorrt"),
        ('platform: "tensorflow_graphdef"', "tensorflow"),
        ('backend: "pytorch"', "pytorch"),
        ('platform: "onnxruntime_onnx"', "unknown"),
        ("", "unknown"),
    ],
)
def test_the_type_is_guessed_from_the_platform_or_backend(config: str, expected: str) -> None:
    assert guess_type(config) == expected


def test_a_folder_without_a_config_is_refused_unless_raw(model_folder: Path) -> None:
    (model_folder / "config.pbtxt").unlink()
    with pytest.raises(UsageFailure, match=r"config\.pbtxt"):
        inspect_folder(model_folder)
    assert inspect_folder(model_folder, raw=True).name == "covid"


def test_a_folder_without_a_version_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\n')
    with pytest.raises(UsageFailure, match="version folder"):
        inspect_folder(tmp_path / "m")


def test_a_name_that_differs_from_the_config_is_refused(model_folder: Path) -> None:
    with pytest.raises(UsageFailure, match="Triton needs them equal"):
        inspect_folder(model_folder, "other")
