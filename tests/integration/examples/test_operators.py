"""Each example operator on its own: run as `aorta operator run-local` runs it (the operator's
folder, its env.list, `local/` folders), and its algorithm in process."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from aorta.devkit import run_local
from tests.integration.examples.conftest import OPERATORS


def operator_folder(tmp_path: Path, name: str) -> Path:
    """A copy of the operator's folder, so its `local/` folders stay out of the checkout."""
    folder = tmp_path / name
    shutil.copytree(OPERATORS / name, folder)
    return folder


def test_each_operator_runs_on_its_own_with_its_env_list(
    tmp_path: Path, generator: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    scan = generator.write_input(tmp_path / "scan")
    reader = operator_folder(tmp_path, "reader")
    segmentation = operator_folder(tmp_path, "segmentation")
    writer = operator_folder(tmp_path, "writer")

    assert run_local(reader, input_dir=scan.parent) == 0
    shutil.copytree(reader / "local/output", segmentation / "local/input")
    assert run_local(segmentation) == 0
    shutil.copytree(segmentation / "local/output", writer / "local/mask")
    shutil.copytree(reader / "local/output", writer / "local/volume")
    assert run_local(writer) == 0

    assert json.loads((reader / "local/output/volume.json").read_text()) == {
        "source": "ct.nii.gz",
        "window_hu": [-200.0, 400.0],
        "shape": [64, 64, 48],
        "voxel_size_mm": [1.5, 1.5, 3.0],
    }
    report = json.loads((writer / "local/output/report.json").read_text())
    found = {row["name"]: row["voxels"] for row in report["labels"]}
    assert found == generator.ground_truth()
    assert report["job"]["name"] == "writer-local"
    text = (writer / "local/output/report.txt").read_text()
    assert "    1  liver" in text
    logged = capfd.readouterr().err
    assert "ct.nii.gz: 64x64x48 voxels, window -200..400 HU" in logged
    assert "kidney: 2 region(s)" in logged


def test_the_reader_says_what_it_expected(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    assert run_local(operator_folder(tmp_path, "reader"), input_dir=empty) == 1
    assert f"expected one NIfTI volume in {empty}, found none" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "NVIDIA_TRITON_GRPCURI is set but TRITON_MODEL_NAME is not"),
        (
            {
                "TRITON_MODEL_NAME": "organs",
                "TRITON_MODEL_INPUT": "in",
                "TRITON_MODEL_OUTPUT": "out",
            },
            "InferenceServerException",
        ),
    ],
)
def test_segmentation_with_a_triton_address_never_falls_back_silently(
    tmp_path: Path,
    generator: ModuleType,
    reader: ModuleType,
    capfd: pytest.CaptureFixture[str],
    overrides: dict[str, str],
    expected: str,
) -> None:
    folder = operator_folder(tmp_path, "segmentation")
    reader_run = operator_folder(tmp_path, "reader")
    assert run_local(reader_run, input_dir=generator.write_input(tmp_path / "scan").parent) == 0
    shutil.copytree(reader_run / "local/output", folder / "local/input")
    capfd.readouterr()

    # Port 1 on the loopback: nothing listens, the connection is refused at once.
    env = {"NVIDIA_TRITON_GRPCURI": "127.0.0.1:1", **overrides}
    assert run_local(folder, env_overrides=env) == 1

    assert expected in capfd.readouterr().err
    assert not (folder / "local/output/mask.nii.gz").exists()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_local_algorithm_finds_every_organ_whatever_the_noise(
    seed: int, generator: ModuleType, reader: ModuleType, segmentation: ModuleType
) -> None:
    volume, truth = generator.synthetic_ct(seed)
    labels = segmentation.segment_locally(reader.normalise(volume, -200, 400), (-200, 400))

    counts = {name: int((labels == label).sum()) for label, name, _ in segmentation.LABELS}
    for name, voxels in truth.items():
        assert abs(counts[name] - voxels) <= 0.01 * voxels, (seed, name, counts[name], voxels)
    assert [row["regions"] for row in segmentation.describe(labels)] == [1, 1, 2]


class FakeTriton:
    """A stand-in for `tritonclient.grpc` whose model returns `answer`."""

    def __init__(self, answer: np.ndarray) -> None:
        self.answer = answer
        self.requests: list[tuple[str, list[int], str]] = []
        fake = self

        class InferInput:
            def __init__(self, name: str, shape: list[int], datatype: str) -> None:
                fake.requests.append((name, shape, datatype))

            def set_data_from_numpy(self, data: np.ndarray) -> None:
                assert data.dtype == np.float32

        class InferenceServerClient:
            def __init__(self, url: str) -> None:
                assert url == "triton:8001"

            def infer(self, model: str, inputs: list[object], **options: object) -> SimpleNamespace:
                assert model == "organs"
                return SimpleNamespace(as_numpy=lambda name: fake.answer)

            def close(self) -> None:
                pass

        self.module = SimpleNamespace(
            InferInput=InferInput,
            InferenceServerClient=InferenceServerClient,
            InferRequestedOutput=lambda name: name,
        )


@pytest.mark.parametrize("as_scores", [False, True])
def test_segmentation_takes_labels_or_scores_from_triton(
    segmentation: ModuleType, monkeypatch: pytest.MonkeyPatch, as_scores: bool
) -> None:
    volume = np.zeros((4, 5, 6), dtype=np.float32)
    expected = np.random.default_rng(0).integers(0, 4, size=volume.shape).astype(np.uint8)
    answer = (
        np.eye(4, dtype=np.float32)[expected].transpose(3, 0, 1, 2)[None]
        if as_scores
        else expected[None]
    )
    fake = FakeTriton(answer)
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", fake.module)
    monkeypatch.setitem(sys.modules, "tritonclient", SimpleNamespace(grpc=fake.module))
    for name, value in {
        "TRITON_MODEL_NAME": "organs",
        "TRITON_MODEL_INPUT": "ct",
        "TRITON_MODEL_OUTPUT": "labels",
    }.items():
        monkeypatch.setenv(name, value)

    labels = segmentation.segment_with_triton("triton:8001", volume)

    assert labels.dtype == np.uint8
    assert np.array_equal(labels, expected)
    assert fake.requests == [("ct", [1, 4, 5, 6], "FP32")]


def test_segmentation_refuses_a_triton_answer_of_another_shape(
    segmentation: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTriton(np.zeros((1, 3, 3, 3), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", fake.module)
    monkeypatch.setitem(sys.modules, "tritonclient", SimpleNamespace(grpc=fake.module))
    for name, value in {
        "TRITON_MODEL_NAME": "organs",
        "TRITON_MODEL_INPUT": "ct",
        "TRITON_MODEL_OUTPUT": "labels",
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(RuntimeError, match=r"model organs returned shape \(1, 3, 3, 3\)"):
        segmentation.segment_with_triton("triton:8001", np.zeros((4, 5, 6), dtype=np.float32))
