"""`aorta operator init NAME`: a new operator folder, runnable at once.

The layout follows Clara's Operator Development Kit (docs/clara-compatibility.md, "Operator
Development Kit layout"), with an `env.list` that both `docker run --env-file` and
`aorta operator run-local` read:

    Containerfile  main.py  requirements.txt  env.list  README.md
    def/one-operator-pipeline.yml
    local/input/sample.txt  local/output/

The definition runs unchanged on `aorta up`, whether operators run as host processes or in
containers: its command runs `${{ OPERATOR_DIR }}/main.py`, a parameter whose default is the
folder's absolute path, and the Containerfile copies main.py to that same path in the image.
The operator reads and writes only through the driver's entries, which name the declared
container paths in a container and the run's folders on the host (docs/operators.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from aorta.devkit import templates
from aorta.errors import Conflict, Invalid
from aorta.operator_env import validate_name

PIPELINE_FILE = Path("def/one-operator-pipeline.yml")
INPUT_FOLDER = Path("local/input")
OUTPUT_FOLDER = Path("local/output")
OUTPUT_NAME = "output"
"""The name of the scaffold's one output, so its entry is `NAME/output`."""
FOLDER_PARAMETER = "OPERATOR_DIR"
"""The pipeline parameter naming the folder main.py is in."""

# Docker repository names must start and end with a letter or digit.
_IMAGE_SAFE = re.compile(r"[A-Za-z0-9](?:.*[A-Za-z0-9])?")
# The folder's path is written into a Containerfile and a command: no spaces, quotes or `$`.
_PATH_SAFE = re.compile(r"/[A-Za-z0-9._+@/-]*")


def init_operator(target: Path, name: str) -> list[Path]:
    """Writes a new operator called `name` into `target` and returns the files written.

    `name` must follow Clara's name rules (letters, digits, `-`, `_`; 1 to 255 characters) and
    start and end with a letter or digit, since its lower-case form is the image name; otherwise
    `Invalid`. `target` may be missing or an empty folder; anything else raises `Conflict` and
    nothing is written. Its absolute path becomes the path of main.py in the image and the
    default of the definition's `OPERATOR_DIR`, so it may hold only letters, digits and
    `._+@-/` (else `Invalid`).
    """
    validate_name(name, what="operator name")
    if not _IMAGE_SAFE.fullmatch(name):
        raise Invalid(f"operator name {name!r} must start and end with a letter or digit")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} already exists and is not an empty folder; nothing was written")
    folder = str(target.resolve())
    if not _PATH_SAFE.fullmatch(folder):
        raise Invalid(
            f"the operator folder {folder!r} becomes a path in its image and in its command: "
            "choose one whose path has only letters, digits and ._+@-/"
        )

    image = name.lower()
    values = {"name": name, "image": image, "folder": folder}
    files = {
        Path("Containerfile"): templates.CONTAINERFILE.substitute(values),
        Path("main.py"): templates.MAIN_PY.substitute(values),
        Path("requirements.txt"): templates.REQUIREMENTS.substitute(values),
        Path("env.list"): templates.ENV_LIST.substitute(values),
        Path("README.md"): templates.README.substitute(values),
        PIPELINE_FILE: templates.PIPELINE_HEADER.substitute(values)
        + _pipeline_yaml(name, image, folder),
        INPUT_FOLDER / "sample.txt": templates.SAMPLE_INPUT,
        OUTPUT_FOLDER / ".gitignore": templates.OUTPUT_GITIGNORE,
    }
    written = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def _pipeline_yaml(name: str, image: str, folder: str) -> str:
    script = "${{ " + FOLDER_PARAMETER + " }}/main.py"
    document = {
        "api-version": "0.4.0",
        "name": name,
        "orchestrator": "Clara",
        "parameters": {FOLDER_PARAMETER: folder},
        "operators": [
            {
                "name": name,
                "container": {
                    "image": image,
                    "tag": "latest",
                    "command": ["python", "-u", "-m", "aorta.driver.app", script],
                },
                "input": [{"path": "/input"}],
                "output": [{"name": OUTPUT_NAME, "path": "/output"}],
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)
