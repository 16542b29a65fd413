"""Zips an example Triton model folder for `Models.UploadModel` (or `aorta create model -p`).

Usage: python examples/models/package_model.py [FOLDER] [ARCHIVE]
(defaults: examples/models/segmentation and segmentation.zip in the working folder).

The archive holds the folder under one top folder named after the model, as `zip -r` would;
the models service also accepts the folder's contents at the archive's top.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEGMENTATION = HERE / "segmentation"


def zip_model(folder: Path = SEGMENTATION) -> bytes:
    """The ZIP archive of model folder `folder` (files in sorted order, so it is reproducible
    apart from the files' modification times)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def main(arguments: list[str]) -> int:
    folder = Path(arguments[0]) if arguments else SEGMENTATION
    target = Path(arguments[1]) if len(arguments) > 1 else Path(f"{folder.name}.zip")
    target.write_bytes(zip_model(folder))
    print(f"{target} ({target.stat().st_size} bytes): model {folder.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
