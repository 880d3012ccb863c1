"""ROI growth or shrinkage to a target volume change (Zwanenburg et al. 2019)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .base import RandomTransform, Transform, to_sitk


def signed_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Signed Euclidean distance to the ROI border in mm: negative inside, positive outside."""
    distance = sitk.SignedMaurerDistanceMap(to_sitk(mask.astype(np.uint8), spacing), insideIsPositive=False,
                                            squaredDistance=False, useImageSpacing=True)
    return sitk.GetArrayFromImage(distance)


def threshold_to_volume(level: np.ndarray, voxels: int) -> np.ndarray:
    """The ``voxels`` voxels of lowest ``level`` (ties broken by position): a mask of exactly that size."""
    voxels = int(np.clip(voxels, 1, level.size))
    order = np.argsort(level, axis=None, kind="stable")
    out = np.zeros(level.size, np.uint8)
    out[order[:voxels]] = 1
    return out.reshape(level.shape)


class VolumeAdaptation(Transform):
    """Grow (``fraction > 0``) or shrink the ROI by ``fraction`` of its volume; the image is unchanged.

    Voxels are added or removed in order of their signed distance to the
    border, i.e. a dilation or erosion to exactly the target volume
    ``round(V (1 + fraction))``, as in the volume adaptation perturbation of
    Zwanenburg et al. 2019 (*Sci Rep*, doi:10.1038/s41598-018-36938-4).
    """

    name = "VolumeAdaptation"

    def __init__(self, fraction: float):
        if fraction <= -1:
            raise ValueError(f"VolumeAdaptation: fraction must be > -1, got {fraction}")
        super().__init__(fraction=float(fraction))

    def apply(self, image, mask, spacing):
        if not mask.any():
            raise ValueError("VolumeAdaptation: the mask is empty")
        target = round(int(mask.sum()) * (1 + self.params["fraction"]))
        return image, threshold_to_volume(signed_distance(mask, spacing), target)


class RandomVolumeAdaptation(RandomTransform):
    """``fraction ~ U(−max_fraction, max_fraction)``."""

    def __init__(self, max_fraction: float):
        if not 0 <= max_fraction < 1:
            raise ValueError(f"RandomVolumeAdaptation: max_fraction must be in [0, 1), got {max_fraction}")
        self.max_fraction = max_fraction

    def sample(self, rng, image, mask, spacing):
        return VolumeAdaptation(rng.uniform(-self.max_fraction, self.max_fraction)), 0
