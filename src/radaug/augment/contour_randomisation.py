"""Contour randomisation: a plausible alternative delineation of the same ROI."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .base import RandomTransform, Transform, seed_from, to_sitk
from .volume_adaptation import signed_distance


class ContourRandomisation(Transform):
    """Move the ROI border by a smooth random offset of RMS ``amplitude_mm``.

    The new ROI is ``{x : d(x) + a·f(x) < 0}`` where ``d`` is the signed
    distance to the border (mm, half a voxel outside the ROI) and ``f`` Gaussian white noise smoothed with
    ``smoothness_mm`` and scaled to unit standard deviation, drawn with
    ``numpy.random.default_rng(seed)``. Zwanenburg et al. 2019
    (doi:10.1038/s41598-018-36938-4) randomise contours with supervoxels; a
    smooth level-set offset is a simpler stand-in with the same intent (border
    uncertainty of a few voxels, ROI kept in place).
    """

    name = "ContourRandomisation"

    def __init__(self, amplitude_mm: float, smoothness_mm: float, seed: int):
        if amplitude_mm < 0 or smoothness_mm <= 0:
            raise ValueError(f"ContourRandomisation: need amplitude_mm >= 0 and smoothness_mm > 0, "
                             f"got {amplitude_mm}, {smoothness_mm}")
        super().__init__(amplitude_mm=float(amplitude_mm), smoothness_mm=float(smoothness_mm), seed=int(seed))

    def apply(self, image, mask, spacing):
        if not mask.any():
            raise ValueError("ContourRandomisation: the mask is empty")
        rng = np.random.default_rng(self.params["seed"])
        noise = to_sitk(rng.normal(size=mask.shape).astype(np.float32), spacing)
        field = sitk.GetArrayFromImage(
            sitk.DiscreteGaussian(noise, [self.params["smoothness_mm"] ** 2] * mask.ndim, 64, 0.01, True))
        field = field / (field.std() or 1.0)
        # Maurer's distance is 0 on the ROI's own border voxels and >= one spacing outside: the border lies
        # half a voxel out, so amplitude 0 returns the mask unchanged.
        level = signed_distance(mask, spacing) - 0.5 * min(spacing) + self.params["amplitude_mm"] * field
        out = (level < 0).astype(np.uint8)
        if not out.any():  # an offset larger than a tiny ROI: keep its innermost voxel
            out.flat[int(np.argmin(level))] = 1
        return image, out


class RandomContourRandomisation(RandomTransform):
    """Fixed amplitude and smoothness; a new recorded noise seed per draw."""

    def __init__(self, amplitude_mm: float, smoothness_mm: float = 2.0):
        if amplitude_mm < 0 or smoothness_mm <= 0:
            raise ValueError("RandomContourRandomisation: need amplitude_mm >= 0 and smoothness_mm > 0")
        self.amplitude_mm, self.smoothness_mm = amplitude_mm, smoothness_mm

    def sample(self, rng, image, mask, spacing):
        return ContourRandomisation(self.amplitude_mm, self.smoothness_mm, seed_from(rng)), 0
