"""writer: the pipeline's result: the final mask and a report of what was found.

Inputs `mask` (the segmentation's `mask.nii.gz` and `labels.json`) and `volume` (the reader's
`volume.nii.gz` and `volume.json`): the writer reads two upstream outputs.
Output: `result.nii.gz` (the mask), `report.json` (per label: voxels, volume in millilitres,
regions, mean normalised intensity) and `report.txt` (the same for people).
"""

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np

import clara

log = logging.getLogger("writer")


def folder_of(entries, name):
    """The folder of the entry called `name`, or `<operator>/name` whatever the operator."""
    for entry in entries:
        if entry.name == name or entry.name.endswith("/" + name):
            return Path(entry.path)
    names = ", ".join(entry.name for entry in entries) or "none"
    raise RuntimeError(f"no entry named {name!r} (entries: {names})")


def measure(mask, volume, voxel_ml, described):
    rows = []
    for row in described:
        inside = mask == row["label"]
        voxels = int(inside.sum())
        rows.append(
            {
                "label": row["label"],
                "name": row["name"],
                "voxels": voxels,
                "volume_ml": round(voxels * voxel_ml, 2),
                "regions": row["regions"],
                "mean_intensity": round(float(volume[inside].mean()), 4) if voxels else None,
            }
        )
    return rows


def as_text(report):
    shape = " x ".join(str(size) for size in report["shape"])
    spacing = " x ".join(f"{size:g}" for size in report["voxel_size_mm"])
    lines = [
        f"Organ segmentation of {report['source']} (job {report['job']['name']})",
        f"{shape} voxels of {spacing} mm, segmented with {report['method']}",
        "",
        f"{'label':>5}  {'organ':<8} {'voxels':>7} {'volume (ml)':>12} {'regions':>8}",
    ]
    for row in report["labels"]:
        lines.append(
            f"{row['label']:>5}  {row['name']:<8} {row['voxels']:>7} {row['volume_ml']:>12.2f} "
            f"{row['regions']:>8}"
        )
    return "\n".join(lines) + "\n"


def execute(driver, payload):
    masks = folder_of(payload.input_entries, "mask")
    volumes = folder_of(payload.input_entries, "volume")
    target = Path(payload.output_entries[0].path)
    target.mkdir(parents=True, exist_ok=True)
    mask_image = nib.load(masks / "mask.nii.gz")
    volume_image = nib.load(volumes / "volume.nii.gz")
    if mask_image.shape != volume_image.shape:
        raise RuntimeError(
            f"the mask has shape {mask_image.shape} but the volume {volume_image.shape}"
        )
    mask = np.asarray(mask_image.dataobj)
    volume = volume_image.get_fdata(dtype=np.float32)
    segmentation = json.loads((masks / "labels.json").read_text())
    description = json.loads((volumes / "volume.json").read_text())
    voxel_ml = float(np.prod(mask_image.header.get_zooms()[:3])) / 1000.0
    report = {
        "job": {"id": str(driver.job_id), "name": driver.job_name},
        "source": description["source"],
        "shape": list(mask.shape),
        "voxel_size_mm": description["voxel_size_mm"],
        "method": segmentation["method"],
        "labels": measure(mask, volume, voxel_ml, segmentation["labels"]),
    }
    nib.save(mask_image, target / "result.nii.gz")
    (target / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    text = as_text(report)
    (target / "report.txt").write_text(text)
    log.info("report written to %s\n%s", target, text)
    return True


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
