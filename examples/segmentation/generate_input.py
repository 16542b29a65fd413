"""Writes the example pipeline's input: a synthetic abdominal CT volume as NIfTI.

The volume is 64 x 64 x 48 voxels of 1.5 x 1.5 x 3.0 mm, in Hounsfield units: air around an
elliptic body of soft tissue, four contrast-enhanced "organs" (a liver, a spleen, two kidneys)
as ellipsoids, and Gaussian noise. It is deterministic for a given seed, and `ground_truth`
says how many voxels of each organ it holds, so a test can check what the pipeline found.

Usage: python generate_input.py FOLDER [--seed N] [--truth FILE]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (64, 64, 48)
SPACING_MM = (1.5, 1.5, 3.0)
AIR_HU = -1000.0
TISSUE_HU = 20.0
NOISE_HU = 12.0
FILE_NAME = "ct.nii.gz"


@dataclass(frozen=True)
class Organ:
    """An ellipsoid of one intensity; `label` is the segmentation label it should receive."""

    name: str
    label: str
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float


ORGANS = (
    Organ("liver", "liver", center=(20, 28, 24), radii=(11, 10, 14), hu=110),
    Organ("spleen", "spleen", center=(46, 24, 26), radii=(6, 7, 9), hu=160),
    Organ("left kidney", "kidney", center=(22, 45, 20), radii=(4, 4, 7), hu=220),
    Organ("right kidney", "kidney", center=(42, 45, 20), radii=(4, 4, 7), hu=220),
)


def _inside(organ: Organ) -> np.ndarray:
    x, y, z = np.indices(SHAPE, dtype=np.float32)
    (cx, cy, cz), (rx, ry, rz) = organ.center, organ.radii
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0


def synthetic_ct(seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """The volume (float32, Hounsfield units) and the voxel count of each label."""
    x, y, _ = np.indices(SHAPE, dtype=np.float32)
    body = ((x - 32) / 29) ** 2 + ((y - 32) / 24) ** 2 <= 1.0
    volume = np.where(body, TISSUE_HU, AIR_HU).astype(np.float32)
    truth: dict[str, int] = {}
    for organ in ORGANS:
        inside = _inside(organ)
        volume[inside] = organ.hu
        truth[organ.label] = truth.get(organ.label, 0) + int(inside.sum())
    noise = np.random.default_rng(seed).normal(0.0, NOISE_HU, SHAPE).astype(np.float32)
    return volume + noise, truth


def ground_truth(seed: int = 0) -> dict[str, int]:
    """Voxels of each label in the volume `synthetic_ct(seed)` makes."""
    return synthetic_ct(seed)[1]


def write_input(folder: Path, seed: int = 0) -> Path:
    """Writes `ct.nii.gz` into `folder` (created if needed) and returns its path."""
    volume, _ = synthetic_ct(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    nib.save(nib.Nifti1Image(volume, np.diag([*SPACING_MM, 1.0])), path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write ct.nii.gz")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--truth", type=Path, help="also write the voxel count of each label")
    args = parser.parse_args(argv)
    path = write_input(args.folder, args.seed)
    if args.truth is not None:
        args.truth.write_text(json.dumps(ground_truth(args.seed), indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
