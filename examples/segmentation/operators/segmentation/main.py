"""segmentation: labels the liver, the spleen and the kidneys in the reader's volume.

Input `volume`: the reader's `volume.nii.gz` and `volume.json`.
Output `mask`: `mask.nii.gz` (uint8 labels: 0 background, 1 liver, 2 spleen, 3 kidney, same
affine) and `labels.json` (each label's name and how many separate regions it has).

Two ways to segment:

- With a Triton server (`NVIDIA_TRITON_GRPCURI` set, as the platform sets it for an operator
  that lists `models`): the volume, shaped (1, X, Y, Z), goes to the model named by
  `TRITON_MODEL_NAME` (input `TRITON_MODEL_INPUT`, output `TRITON_MODEL_OUTPUT`, optional
  `TRITON_MODEL_VERSION`), which returns labels shaped (1, X, Y, Z) or per-class scores shaped
  (1, classes, X, Y, Z). A failure there fails the operator: it never falls back silently.
- Without one: a classic pipeline on numpy alone. Smooth, keep what is brighter than soft
  tissue, split it into connected regions, give each region the label whose intensity is
  nearest, and redraw its edge halfway between soft tissue and that label's intensity.
"""

import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np

import clara

log = logging.getLogger("segmentation")

# label, name, typical intensity in Hounsfield units (contrast-enhanced CT)
LABELS = ((1, "liver", 110.0), (2, "spleen", 160.0), (3, "kidney", 220.0))
FOREGROUND_HU = 65.0
"""Brighter than soft tissue (about 20 HU) and darker than any organ above."""
MIN_REGION_VOXELS = 30
"""Smaller bright regions are noise or vessels, not organs."""
AIR_LEVEL = 0.1
"""Normalised intensities below this are air, not soft tissue."""


def folder_of(entries, name):
    """The folder of the entry called `name`, or `<operator>/name` whatever the operator."""
    for entry in entries:
        if entry.name == name or entry.name.endswith("/" + name):
            return Path(entry.path)
    names = ", ".join(entry.name for entry in entries) or "none"
    raise RuntimeError(f"no entry named {name!r} (entries: {names})")


def _pairs(axis):
    """Index pairs of neighbouring slices along `axis`: (lower, upper)."""
    lower, upper = [slice(None)] * 3, [slice(None)] * 3
    lower[axis], upper[axis] = slice(0, -1), slice(1, None)
    return tuple(lower), tuple(upper)


def box_mean(volume):
    """The 3 x 3 x 3 mean of each voxel (edges repeated)."""
    padded = np.pad(volume, 1, mode="edge")
    total = np.zeros_like(volume)
    x, y, z = volume.shape
    for dx in range(3):
        for dy in range(3):
            for dz in range(3):
                total += padded[dx : dx + x, dy : dy + y, dz : dz + z]
    return total / 27.0


def dilate(mask):
    """`mask` grown by one voxel along each axis."""
    grown = mask.copy()
    for axis in range(3):
        lower, upper = _pairs(axis)
        grown[lower] |= mask[upper]
        grown[upper] |= mask[lower]
    return grown


def regions(mask):
    """The 6-connected regions of a boolean volume: (region map, count); 0 is outside.

    Each voxel starts with a number of its own and takes its neighbours' largest until
    nothing changes, so each region ends up with one number.
    """
    numbers = np.zeros(mask.shape, dtype=np.int32)
    numbers[mask] = np.arange(1, int(mask.sum()) + 1, dtype=np.int32)
    while True:
        grown = numbers.copy()
        for axis in range(3):
            lower, upper = _pairs(axis)
            np.maximum(grown[lower], numbers[upper], out=grown[lower])
            np.maximum(grown[upper], numbers[lower], out=grown[upper])
        grown[~mask] = 0
        if np.array_equal(grown, numbers):
            break
        numbers = grown
    found, index = np.unique(numbers[mask], return_inverse=True)
    region_map = np.zeros(mask.shape, dtype=np.int32)
    region_map[mask] = index.reshape(-1) + 1
    return region_map, len(found)


def segment_locally(volume, window):
    """Labels (uint8, the volume's shape) from thresholds; `volume` is normalised over `window`."""
    low, high = window

    def level(hounsfield):
        return (hounsfield - low) / (high - low)

    smooth = box_mean(volume)
    foreground = smooth > level(FOREGROUND_HU)
    tissue = float(np.median(smooth[(smooth > AIR_LEVEL) & ~foreground]))
    region_map, count = regions(foreground)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    for number in range(1, count + 1):
        inside = region_map == number
        if inside.sum() < MIN_REGION_VOXELS:
            continue
        # The upper quartile: a region's edge is blurred, its inside is not.
        brightness = float(np.percentile(smooth[inside], 75))
        label, _, hounsfield = min(LABELS, key=lambda row: abs(level(row[2]) - brightness))
        edge = (tissue + level(hounsfield)) / 2
        labels[dilate(inside) & (volume > edge)] = label
    return labels


def segment_with_triton(url, volume):
    """Labels from the Triton model the environment names (see the module docstring)."""
    try:
        # Imported here: without a Triton server the operator needs no tritonclient.
        import tritonclient.grpc as triton
    except ImportError as error:
        raise RuntimeError(
            "NVIDIA_TRITON_GRPCURI is set but tritonclient is not installed: "
            "pip install 'tritonclient[grpc]'"
        ) from error

    def setting(name):
        value = os.environ.get(name)
        if not value:
            raise RuntimeError(f"NVIDIA_TRITON_GRPCURI is set but {name} is not")
        return value

    model = setting("TRITON_MODEL_NAME")
    input_name, output_name = setting("TRITON_MODEL_INPUT"), setting("TRITON_MODEL_OUTPUT")
    data = volume[np.newaxis].astype(np.float32)
    tensor = triton.InferInput(input_name, list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    client = triton.InferenceServerClient(url=url)
    try:
        result = client.infer(
            model,
            [tensor],
            model_version=os.environ.get("TRITON_MODEL_VERSION", ""),
            outputs=[triton.InferRequestedOutput(output_name)],
        )
    finally:
        client.close()
    output = result.as_numpy(output_name)
    if output.shape == (1, *volume.shape):
        return output[0].astype(np.uint8)
    if output.ndim == 5 and output.shape[0] == 1 and output.shape[2:] == volume.shape:
        return output[0].argmax(axis=0).astype(np.uint8)
    raise RuntimeError(
        f"model {model} returned shape {output.shape}; expected labels (1, *{volume.shape}) "
        f"or scores (1, classes, *{volume.shape})"
    )


def describe(labels):
    """Each label's name and number of regions, for `labels.json`."""
    return [
        {"label": label, "name": name, "regions": regions(labels == label)[1]}
        for label, name, _ in LABELS
    ]


def execute(driver, payload):
    source = folder_of(payload.input_entries, "volume")
    target = folder_of(payload.output_entries, "mask")
    target.mkdir(parents=True, exist_ok=True)
    image = nib.load(source / "volume.nii.gz")
    volume = image.get_fdata(dtype=np.float32)
    window = json.loads((source / "volume.json").read_text())["window_hu"]
    triton_url = os.environ.get("NVIDIA_TRITON_GRPCURI")
    if triton_url:
        labels, method = segment_with_triton(triton_url, volume), f"triton {triton_url}"
    else:
        labels, method = segment_locally(volume, window), "thresholds"
    nib.save(nib.Nifti1Image(labels, image.affine), target / "mask.nii.gz")
    described = {"method": method, "labels": describe(labels)}
    (target / "labels.json").write_text(json.dumps(described, indent=2) + "\n")
    for row in described["labels"]:
        log.info("%s: %d region(s)", row["name"], row["regions"])
    log.info("mask written to %s (%s)", target, method)
    return True


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
