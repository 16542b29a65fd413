"""Triton Python-backend model `segmentation`: labels the bright regions of a CT volume.

The `levels` parameter of config.pbtxt gives four typical intensities (normalised like the
input): soft tissue, then labels 1, 2 and 3. Each volume of the batch (float32) is smoothed with
a 3 x 3 x 3 mean; voxels brighter than halfway between soft tissue and label 1 are foreground.
Each 6-connected foreground region of at least `MIN_REGION_VOXELS` voxels takes the label whose
level is nearest its brightness (the upper quartile of the smoothed region), and its edge is
redrawn, one voxel around it at most, where the unsmoothed volume is brighter than halfway
between soft tissue and that level. Pure numpy and deterministic: the same volume always gives
the same labels.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

MIN_REGION_VOXELS = 30
"""Smaller bright regions are noise or vessels, not organs."""


def box_mean(volume):
    """The 3 x 3 x 3 mean of each voxel of a 3-D volume (edges repeated)."""
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


def _pairs(axis):
    """Index pairs of neighbouring slices along `axis`: (lower, upper)."""
    lower, upper = [slice(None)] * 3, [slice(None)] * 3
    lower[axis], upper[axis] = slice(0, -1), slice(1, None)
    return tuple(lower), tuple(upper)


def regions(mask):
    """The 6-connected regions of a boolean volume, numbered from 1 (0 outside).

    Each voxel starts with a number of its own and takes its neighbours' largest until nothing
    changes, so each region ends up with one number.
    """
    numbers = np.zeros(mask.shape, dtype=np.int64)
    numbers[mask] = np.arange(1, int(mask.sum()) + 1)
    while True:
        grown = numbers.copy()
        for axis in range(3):
            lower, upper = _pairs(axis)
            np.maximum(grown[lower], numbers[upper], out=grown[lower])
            np.maximum(grown[upper], numbers[lower], out=grown[upper])
        grown[~mask] = 0
        if np.array_equal(grown, numbers):
            return numbers
        numbers = grown


def label(volume, levels):
    """uint8 labels for one volume shaped (X, Y, Z); `levels` are the typical intensities of
    soft tissue then of labels 1, 2, 3."""
    tissue, organs = levels[0], levels[1:]
    smooth = box_mean(volume)
    numbers = regions(smooth >= (tissue + organs[0]) / 2)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    for number in np.unique(numbers[numbers > 0]):
        inside = numbers == number
        if inside.sum() < MIN_REGION_VOXELS:
            continue
        brightness = np.percentile(smooth[inside], 75)
        nearest = int(np.argmin(np.abs(organs - brightness)))
        edge = (tissue + organs[nearest]) / 2
        labels[dilate(inside) & (volume >= edge)] = nearest + 1
    return labels


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        text = config["parameters"]["levels"]["string_value"]
        self.levels = np.array([float(value) for value in text.split(",")], dtype=np.float32)
        if len(self.levels) != 4 or not np.all(np.diff(self.levels) > 0):
            raise ValueError(f"levels must be four increasing intensities: {text}")

    def execute(self, requests):
        responses = []
        for request in requests:
            volumes = pb_utils.get_input_tensor_by_name(request, "INPUT__0").as_numpy()
            if volumes.ndim != 4:
                error = pb_utils.TritonError(
                    f"INPUT__0 must be shaped (batch, X, Y, Z), not {volumes.shape}"
                )
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
                continue
            volumes = volumes.astype(np.float32)
            labels = np.stack([label(volume, self.levels) for volume in volumes])
            output = pb_utils.Tensor("OUTPUT__0", labels)
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
