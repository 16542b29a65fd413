"""`aorta operator build`: an operator folder's image, built from its Containerfile.

The image is built with the `podman` (else `docker`) command into that tool's own image store:
for podman run as the platform's user, the store a Podman API service over the host's images
serves, which is where `aorta up` running operators in containers looks. Its name is the one the
folder's definition gives (`def/one-operator-pipeline.yml`, the scaffold's), so the definition
finds it unchanged. A Containerfile that declares `ARG OPERATOR_DIR` (the scaffold's) gets the
folder's current path, where the scaffold's command looks for main.py in the image too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from aorta.errors import Invalid, NotFound

CONTAINERFILE = "Containerfile"
DEFINITION = Path("def/one-operator-pipeline.yml")
BUILDERS = ("podman", "docker")
FOLDER_ARG = "OPERATOR_DIR"
_BASE_ARG = re.compile(r"^\s*ARG\s+BASE=(\S+)\s*$", re.MULTILINE)
_FOLDER_ARG = re.compile(rf"^\s*ARG\s+{FOLDER_ARG}(?:=|\s*$)", re.MULTILINE)


@dataclass(frozen=True)
class BuildPlan:
    """What `aorta operator build` runs: `command`, making `image`, which needs `base`."""

    image: str
    base: str | None
    command: list[str]


def image_name(folder: Path) -> str:
    """`image:tag` of the folder's operator: the definition's first operator's `container`
    (`tag` default `latest`), else the folder's name in lower case with `:latest`."""
    definition = folder / DEFINITION
    if definition.is_file():
        try:
            document = yaml.safe_load(definition.read_text())
            container = document["operators"][0]["container"]
            image, tag = str(container["image"]), str(container.get("tag") or "latest")
        except (yaml.YAMLError, KeyError, IndexError, TypeError) as error:
            raise Invalid(f"{definition} names no image of its first operator: {error}") from None
        return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:{tag}"
    return f"{folder.resolve().name.lower()}:latest"


def plan_build(
    folder: Path,
    environ: Mapping[str, str],
    *,
    image: str | None = None,
    builder: str | None = None,
) -> BuildPlan:
    """The build of `folder`'s Containerfile into `image` (default: `image_name(folder)`) with
    `builder` (default: podman, else docker, found on `environ`'s PATH), passing the folder's
    absolute path as `OPERATOR_DIR` when the Containerfile declares it. `NotFound` when the
    folder has no Containerfile or no builder is installed."""
    containerfile = folder / CONTAINERFILE
    if not containerfile.is_file():
        raise NotFound(f"{folder} has no {CONTAINERFILE}: is it an operator folder?")
    path = environ.get("PATH")
    chosen = builder or next((b for b in BUILDERS if shutil.which(b, path=path)), None)
    executable = shutil.which(chosen, path=path) if chosen else None
    if executable is None:
        what = f"{chosen} is not installed" if chosen else "neither podman nor docker is installed"
        raise NotFound(f"{what}: install podman (make setup does) or docker")
    name = image or image_name(folder)
    recipe = containerfile.read_text()
    base = _BASE_ARG.search(recipe)
    command = [executable, "build", "-t", name, "-f", str(containerfile)]
    if _FOLDER_ARG.search(recipe):
        command += ["--build-arg", f"{FOLDER_ARG}={folder.resolve()}"]
    return BuildPlan(name, base.group(1) if base else None, [*command, str(folder)])


def base_missing(plan: BuildPlan, environ: Mapping[str, str]) -> bool:
    """Whether the image the Containerfile builds on is absent from the builder's store."""
    if plan.base is None:
        return False
    found = subprocess.run(
        [plan.command[0], "image", "inspect", plan.base],
        env=dict(environ),
        capture_output=True,
        check=False,
    )
    return found.returncode != 0


def build(plan: BuildPlan, environ: Mapping[str, str]) -> int:
    """Runs the build, its output on this process's; returns the builder's exit code."""
    return subprocess.run(plan.command, env=dict(environ), check=False).returncode
