"""Zips an example Triton model folder for `Models.UploadModel` (or `aorta create model -p`).

Usage: python examples/models/package_model.py [FOLDER] [ARCHIVE]
(defaults: examples/models/segmentation and segmentation.zip in the working folder).

The archive holds the folder under one top folder named after the model, as `zip -r` would
(the models service also accepts the folder's contents at the archive's top); it is the archive
`aorta create model -p FOLDER` streams, made by the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aorta.cli.failures import UsageFailure
from aorta.cli.model_archive import inspect_folder, zip_chunks

SEGMENTATION = Path(__file__).resolve().parent / "segmentation"


def main(arguments: list[str]) -> int:
    folder = Path(arguments[0]) if arguments else SEGMENTATION
    target = Path(arguments[1]) if len(arguments) > 1 else Path(f"{folder.name}.zip")
    try:
        model = inspect_folder(folder)
    except UsageFailure as failure:
        print(f"package_model: {failure}", file=sys.stderr)
        return 2
    with target.open("wb") as archive:
        for chunk in zip_chunks(model):
            archive.write(chunk)
    print(f"{target} ({target.stat().st_size} bytes): model {model.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
