"""Sub-voxel translation, the grid-shift perturbation of Zwanenburg et al. 2019."""

from __future__ import annotations

import numpy as np

from .affine import Affine
from .base import RandomTransform, padding_value


class RandomTranslation(RandomTransform):
    """Shift image and mask by ``t_i ~ U(−max_voxels, max_voxels) · spacing_i`` (an :class:`Affine` with ``M = I``)."""

    def __init__(self, max_voxels: float = 0.5, interpolation: str = "linear", padding: float | None = None):
        if max_voxels < 0:
            raise ValueError(f"RandomTranslation: max_voxels must be >= 0, got {max_voxels}")
        self.max_voxels, self.interpolation, self.padding = max_voxels, interpolation, padding

    def sample(self, rng, image, mask, spacing):
        dim = len(spacing)
        shift = rng.uniform(-self.max_voxels, self.max_voxels, size=dim) * np.asarray(spacing, dtype=float)
        return Affine(np.eye(dim), shift, self.interpolation, padding_value(self.padding, image)), 0
