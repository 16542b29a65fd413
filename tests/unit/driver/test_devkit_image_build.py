"""`aorta operator build`'s plan: the image is named as the folder's definition says, built on
the Containerfile's base, by podman or docker; what is missing is said, nothing is run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aorta.devkit import init_operator
from aorta.devkit.image_build import image_name, plan_build
from aorta.errors import Invalid, NotFound


def fake_builder(folder: Path, name: str) -> dict[str, str]:
    """An environment whose PATH holds only an executable `name` in `folder`."""
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return {"PATH": str(folder)}


def test_the_scaffold_is_built_under_the_name_its_definition_gives(tmp_path: Path) -> None:
    folder = tmp_path / "Seg-Op"
    init_operator(folder, "Seg-Op")
    environ = fake_builder(tmp_path / "bin", "podman")
    plan = plan_build(folder, environ)
    assert plan.image == image_name(folder) == "seg-op:latest"
    assert plan.base == "localhost/aorta/python-operator:latest"
    podman = str(tmp_path / "bin" / "podman")
    containerfile = str(folder / "Containerfile")
    expected = [podman, "build", "-t", "seg-op:latest", "-f", containerfile]
    moved = f"OPERATOR_DIR={folder.resolve()}"
    assert plan.command == [*expected, "--build-arg", moved, str(folder)]


def test_a_tag_given_wins_and_docker_serves_when_podman_is_missing(tmp_path: Path) -> None:
    init_operator(tmp_path / "op", "op")
    environ = fake_builder(tmp_path / "bin", "docker")
    plan = plan_build(tmp_path / "op", environ, image="registry.local/op:1.2")
    assert plan.image == "registry.local/op:1.2"
    assert plan.command[:4] == [str(tmp_path / "bin" / "docker"), "build", "-t", plan.image]


def test_a_containerfile_of_ones_own_gets_no_folder_argument(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM busybox\nCOPY run.sh /run.sh\n")
    plan = plan_build(tmp_path, fake_builder(tmp_path / "bin", "podman"))
    assert "--build-arg" not in plan.command and plan.base is None


def test_an_image_named_with_its_tag_and_a_folder_without_definition(tmp_path: Path) -> None:
    folder = tmp_path / "Reader"
    (folder / "def").mkdir(parents=True)
    assert image_name(folder) == "reader:latest"
    definition = folder / "def" / "one-operator-pipeline.yml"
    definition.write_text("operators:\n- container: {image: 'host:5000/x/reader:0.8', tag: 1}\n")
    assert image_name(folder) == "host:5000/x/reader:0.8"
    definition.write_text("operators: []\n")
    with pytest.raises(Invalid, match="names no image"):
        image_name(folder)


def test_what_is_missing_is_said(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="has no Containerfile"):
        plan_build(tmp_path, dict(os.environ))
    init_operator(tmp_path / "op", "op")
    with pytest.raises(NotFound, match="neither podman nor docker is installed"):
        plan_build(tmp_path / "op", {"PATH": str(tmp_path / "nothing")})
    with pytest.raises(NotFound, match="docker is not installed"):
        plan_build(tmp_path / "op", {"PATH": str(tmp_path / "nothing")}, builder="docker")
