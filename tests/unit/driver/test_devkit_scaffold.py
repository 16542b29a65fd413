"""`init_operator` and the env-file reader, without running anything."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from aorta.devkit import init_operator, read_env_file
from aorta.errors import Conflict, Invalid
from aorta.operator_env import OUTPUT_PATHS, parse_paths


def test_init_writes_a_complete_operator_folder(tmp_path: Path) -> None:
    target = tmp_path / "Liver-Seg"
    written = init_operator(target, "Liver-Seg")
    relative = sorted(str(p.relative_to(target)) for p in written)
    assert relative == [
        "Containerfile",
        "README.md",
        "def/one-operator-pipeline.yml",
        "env.list",
        "local/input/sample.txt",
        "local/output/.gitignore",
        "main.py",
        "requirements.txt",
    ]
    assert all(p.is_file() for p in written)
    ast.parse((target / "main.py").read_text())
    requirements = (target / "requirements.txt").read_text().splitlines()
    assert all(line.startswith("#") for line in requirements)  # the SDK is in the base image


def test_main_py_has_the_same_path_on_the_host_and_in_the_image(tmp_path: Path) -> None:
    target = tmp_path / "seg"
    init_operator(target, "seg")
    folder = str(target.resolve())
    lines = (target / "Containerfile").read_text().splitlines()
    assert "ARG BASE=localhost/aorta/python-operator:latest" in lines
    assert "FROM ${BASE}" in lines
    assert f"ARG OPERATOR_DIR={folder}" in lines
    assert lines[-3:] == [
        "WORKDIR ${OPERATOR_DIR}",
        "COPY main.py ./",
        'ENTRYPOINT ["python", "-u", "-m", "aorta.driver.app", "main.py"]',
    ]
    document = yaml.safe_load((target / "def/one-operator-pipeline.yml").read_text())
    assert document["parameters"] == {"OPERATOR_DIR": folder}
    (operator,) = document["operators"]
    command = ["python", "-u", "-m", "aorta.driver.app", "${{ OPERATOR_DIR }}/main.py"]
    assert operator["container"]["command"] == command


def test_the_readme_uses_aortas_commands(tmp_path: Path) -> None:
    init_operator(tmp_path / "seg", "seg")
    readme = (tmp_path / "seg" / "README.md").read_text()
    for command in (
        "aorta operator run-local",
        "aorta run -p def/one-operator-pipeline.yml -f local/input -o results",
        "aorta operator build",
        "NVIDIA_CLARA_OUTPUTPATHS",
    ):
        assert command in readme
    assert "clara create" not in readme and "docker run" not in readme


def test_init_refuses_a_folder_whose_path_cannot_be_written_into_an_image(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="only letters, digits"):
        init_operator(tmp_path / "my operator", "op")
    assert not (tmp_path / "my operator").exists()


def test_the_pipeline_definition_matches_the_env_list(tmp_path: Path) -> None:
    init_operator(tmp_path, "liver-seg")
    document = yaml.safe_load((tmp_path / "def/one-operator-pipeline.yml").read_text())
    assert document["api-version"] == "0.4.0"
    assert document["name"] == "liver-seg"
    (operator,) = document["operators"]
    assert operator == {
        "name": "liver-seg",
        "container": {
            "image": "liver-seg",
            "tag": "latest",
            "command": ["python", "-u", "-m", "aorta.driver.app", "${{ OPERATOR_DIR }}/main.py"],
        },
        "input": [{"path": "/input"}],
        "output": [{"name": "output", "path": "/output"}],
    }
    env = read_env_file(tmp_path / "env.list", {})
    assert env == {
        "NVIDIA_CLARA_NOSYNCLOCK": "1",
        "NVIDIA_CLARA_STAGENAME": "liver-seg",
        "NVIDIA_CLARA_INPUTPATHS": "payload:/input",
        "NVIDIA_CLARA_OUTPUTPATHS": "liver-seg/output:/output",
    }
    (output,) = parse_paths(env[OUTPUT_PATHS], variable=OUTPUT_PATHS)
    assert output.path == operator["output"][0]["path"]


def test_the_image_name_is_lower_case(tmp_path: Path) -> None:
    init_operator(tmp_path, "Liver_Seg")
    document = yaml.safe_load((tmp_path / "def/one-operator-pipeline.yml").read_text())
    assert document["operators"][0]["container"]["image"] == "liver_seg"


def test_init_into_an_existing_empty_folder(tmp_path: Path) -> None:
    assert init_operator(tmp_path, "op")


def test_init_refuses_a_non_empty_folder_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(Conflict, match="not an empty folder"):
        init_operator(tmp_path, "op")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    file = tmp_path / "notes.txt"
    with pytest.raises(Conflict):
        init_operator(file, "op")


@pytest.mark.parametrize(
    "name", ["", "has space", "dots.not.allowed", "-lead", "trail_", "op\n", "x" * 256]
)
def test_init_refuses_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(Invalid):
        init_operator(tmp_path / "op", name)
    assert not (tmp_path / "op").exists()


def test_read_env_file_follows_docker_rules(tmp_path: Path) -> None:
    path = tmp_path / "env.list"
    path.write_text("# comment\n\n  # indented comment\nA=1\nB=x=y\nC=\nFROM_HOST\nNOT_ON_HOST\n")
    assert read_env_file(path, {"FROM_HOST": "h"}) == {
        "A": "1",
        "B": "x=y",
        "C": "",
        "FROM_HOST": "h",
    }
    path.write_text("A=1\n=oops\n")
    with pytest.raises(Invalid, match=r"env.list:2"):
        read_env_file(path, {})
