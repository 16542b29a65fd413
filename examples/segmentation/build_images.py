"""Builds the example pipeline's operator images with podman (`make images`), no registry needed.

One image per operator of the pipeline whose script is in `operators/<operator>/main.py`, named
as the definition names it (`aorta/example-reader:0.1.0` becomes
`localhost/aorta/example-reader:0.1.0`, which an engine also finds by the definition's name).
Each holds the platform's SDK, the Python packages of the project's `examples` extra (plus
tritonclient, which the segmentation operator calls Triton with) and its script at
`/app/<operator>/main.py`, where the definition's `OPERATORS_DIR` (default `/app`) finds it. Its
entrypoint runs that script with the SDK's runner, so a definition that gives no `command` runs
it too. Images already built from the same files are left as they are.

Usage: python build_images.py [--pipeline FILE]...   (default: pipeline.yml next to this file)
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Sequence
from pathlib import Path

import yaml

from aorta.testing.images import build_python_operator_image
from aorta.testing.podman import PodmanCli

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OPERATORS = HERE / "operators"
TRITON_CLIENT = "tritonclient[grpc]==2.73.0"


def requirements() -> list[str]:
    """What the operators import beyond the SDK: the `examples` extra of pyproject.toml (one
    list of pins for the host and the images) and Triton's gRPC client."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["optional-dependencies"]["examples"], TRITON_CLIENT]


def operator_images(pipeline: Path) -> dict[str, str]:
    """Operator name to fully qualified image name, for each operator of `pipeline` that has
    a script here."""
    document = yaml.safe_load(pipeline.read_text())
    images = {}
    for operator in document["operators"]:
        container = operator["container"]
        if (OPERATORS / operator["name"] / "main.py").is_file():
            name = f"{container['image']}:{container.get('tag', 'latest')}"
            first = name.split("/")[0]
            qualified = "/" in name and ("." in first or ":" in first or first == "localhost")
            images[operator["name"]] = name if qualified else f"localhost/{name}"
    return images


def build_example_images(podman: PodmanCli, pipelines: Sequence[Path]) -> list[str]:
    """Builds (unless up to date) the images of `pipelines`' operators and returns their
    names."""
    built = []
    for pipeline in pipelines:
        for operator, image in operator_images(pipeline).items():
            script = f"/app/{operator}/main.py"
            built.append(
                build_python_operator_image(
                    podman,
                    image,
                    files={script: OPERATORS / operator / "main.py"},
                    requirements=requirements(),
                    entrypoint=["python", "-u", "-m", "aorta.driver.app", script],
                )
            )
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, action="append", help="definition to read")
    args = parser.parse_args(argv)
    for image in build_example_images(PodmanCli.host(), args.pipeline or [HERE / "pipeline.yml"]):
        print(image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
