"""`aorta operator run-local`: run an operator folder on this machine, as a job would run it.

The operator gets the environment its `env.list` describes, with the container paths in
`NVIDIA_CLARA_INPUTPATHS`/`OUTPUTPATHS` moved to host folders under `local/`, and runs through
the same runner its container starts (`python -u -m aorta.driver.app main.py`), with this
interpreter. The definition's `container.command` is not used: it names paths inside the image
(`/app/main.py`), which do not exist on the host.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from aorta import ids
from aorta.errors import Invalid
from aorta.operator_env import (
    INPUT_PATHS,
    JOB_ID,
    JOB_NAME,
    NOSYNCLOCK,
    OUTPUT_PATHS,
    PAYLOAD_ENTRY,
    RESERVED_NAMES,
    STAGE_NAME,
    PathEntry,
    format_paths,
    parse_paths,
)

ENV_FILE = "env.list"
SCRIPT = "main.py"
LOCAL_FOLDER = "local"


def read_env_file(path: Path, host_environ: Mapping[str, str]) -> dict[str, str]:
    """Reads a `docker run --env-file` file: `NAME=value` lines, taken verbatim.

    Blank lines and lines starting with `#` are skipped; a bare `NAME` takes its value from
    `host_environ` and is skipped when the host has none, as docker does. A line starting with
    `=` raises `Invalid` naming the file and the line number.
    """
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name = name.lstrip()
        if not name:
            raise Invalid(f"{path}:{number}: a variable name is missing before '='")
        if equals:
            values[name] = value
        elif name in host_environ:
            values[name] = host_environ[name]
    return values


def run_local(
    folder: Path,
    *,
    input_dir: Path | None = None,
    output_dir: Path | None = None,
    env_overrides: Mapping[str, str] | None = None,
) -> int:
    """Runs the operator in `folder` as a subprocess and returns its exit code.

    Environment, in order: this process's environment without the operator contract variables
    (so a stale shell export cannot leak in), then `env.list`, then `env_overrides`, then:

    - each path entry whose path is absolute (a container path such as `/input`) is moved to
      `folder/local/<path>` (`/input` -> `local/input`); relative paths are host paths, relative
      to `folder`. `input_dir` replaces the folder of the `payload` entry, `output_dir` that of
      the first output entry. Output folders are created; a missing input folder is `Invalid`.
    - `NVIDIA_CLARA_NOSYNCLOCK=1`; unless set, a fresh `NVIDIA_CLARA_JOBID`,
      `NVIDIA_CLARA_STAGENAME` (the folder's name) and `NVIDIA_CLARA_JOBNAME` (`<stage>-local`).

    The operator's stdout and stderr are this process's. Raises `Invalid` when `env.list` or
    `main.py` is missing, or a path entry is malformed.
    """
    folder = folder.resolve()
    for required in (ENV_FILE, SCRIPT):
        if not (folder / required).is_file():
            raise Invalid(f"{folder} has no {required}: is it an operator folder?")
    host = {k: v for k, v in os.environ.items() if k not in RESERVED_NAMES}
    env = host | read_env_file(folder / ENV_FILE, os.environ) | dict(env_overrides or {})

    inputs = _to_host(folder, parse_paths(env.get(INPUT_PATHS, ""), variable=INPUT_PATHS))
    outputs = _to_host(folder, parse_paths(env.get(OUTPUT_PATHS, ""), variable=OUTPUT_PATHS))
    inputs = tuple(
        PathEntry(e.name, str(input_dir.resolve()))
        if input_dir is not None and e.name == PAYLOAD_ENTRY
        else e
        for e in inputs
    )
    if output_dir is not None and outputs:
        outputs = (PathEntry(outputs[0].name, str(output_dir.resolve())), *outputs[1:])
    for entry in inputs:
        if not Path(entry.path).is_dir():
            raise Invalid(f"input {entry.name!r}: folder {entry.path} does not exist")
    for entry in outputs:
        Path(entry.path).mkdir(parents=True, exist_ok=True)

    stage = env.get(STAGE_NAME) or folder.name
    env |= {
        INPUT_PATHS: format_paths(inputs),
        OUTPUT_PATHS: format_paths(outputs),
        NOSYNCLOCK: "1",
        JOB_ID: env.get(JOB_ID) or ids.new_id(),
        STAGE_NAME: stage,
        JOB_NAME: env.get(JOB_NAME) or f"{stage}-local",
    }
    command = [sys.executable, "-u", "-m", "aorta.driver.app", str(folder / SCRIPT)]
    return subprocess.run(command, cwd=folder, env=env, check=False).returncode


def _to_host(folder: Path, entries: tuple[PathEntry, ...]) -> tuple[PathEntry, ...]:
    mapped = []
    for entry in entries:
        container = PurePosixPath(entry.path)
        if container.is_absolute():
            host = folder / LOCAL_FOLDER / Path(*container.parts[1:])
        else:
            host = folder / entry.path
        mapped.append(PathEntry(entry.name, str(host)))
    return tuple(mapped)
