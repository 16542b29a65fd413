"""reader: loads the job's CT volume, windows it and scales it to 0..1 for the segmentation.

Input `payload`: exactly one NIfTI volume (`.nii` or `.nii.gz`) in Hounsfield units.
Output `volume`: `volume.nii.gz` (float32, 0 at the window's bottom, 1 at its top, same affine)
and `volume.json` (the source file, the window, the shape and the voxel size), which the
operators after it read.
Variables: `WINDOW_MIN` and `WINDOW_MAX`, the window in Hounsfield units (default -200, 400:
soft tissue and contrast-enhanced organs).

Run it with `python -u -m aorta.driver.app main.py` (or Clara's
`nvidia_clara_pipeline_driver.app`), as its container does.
"""

import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np

import clara

log = logging.getLogger("reader")


def folder_of(entries, name):
    """The folder of the entry called `name`, or `<operator>/name` whatever the operator."""
    for entry in entries:
        if entry.name == name or entry.name.endswith("/" + name):
            return Path(entry.path)
    names = ", ".join(entry.name for entry in entries) or "none"
    raise RuntimeError(f"no entry named {name!r} (entries: {names})")


def find_volume(folder):
    found = sorted(path for path in folder.rglob("*") if path.name.endswith((".nii", ".nii.gz")))
    if len(found) != 1:
        listed = ", ".join(str(path.relative_to(folder)) for path in found) or "none"
        raise RuntimeError(f"expected one NIfTI volume in {folder}, found {listed}")
    return found[0]


def window():
    low = float(os.environ.get("WINDOW_MIN", "-200"))
    high = float(os.environ.get("WINDOW_MAX", "400"))
    if not high > low:
        raise RuntimeError(f"WINDOW_MAX ({high:g}) must be above WINDOW_MIN ({low:g})")
    return low, high


def normalise(hounsfield, low, high):
    return np.clip((hounsfield - low) / (high - low), 0.0, 1.0).astype(np.float32)


def execute(driver, payload):
    source = find_volume(folder_of(payload.input_entries, "payload"))
    target = folder_of(payload.output_entries, "volume")
    target.mkdir(parents=True, exist_ok=True)
    low, high = window()
    image = nib.load(source)
    if len(image.shape) != 3:
        raise RuntimeError(f"{source.name} has shape {image.shape}; a 3-D volume is expected")
    volume = normalise(image.get_fdata(dtype=np.float32), low, high)
    nib.save(nib.Nifti1Image(volume, image.affine), target / "volume.nii.gz")
    description = {
        "source": source.name,
        "window_hu": [low, high],
        "shape": list(volume.shape),
        "voxel_size_mm": [round(float(size), 4) for size in image.header.get_zooms()[:3]],
    }
    (target / "volume.json").write_text(json.dumps(description, indent=2) + "\n")
    log.info(
        "%s: %s voxels, window %g..%g HU, written to %s",
        source.name,
        "x".join(str(size) for size in volume.shape),
        low,
        high,
        target,
    )
    return True


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
