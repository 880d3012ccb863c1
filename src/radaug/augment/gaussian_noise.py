"""Additive Gaussian noise in the image's own units (Hounsfield units for CT)."""

from __future__ import annotations

import numpy as np

from .base import RandomTransform, Transform, seed_from


class GaussianNoise(Transform):
    """Add ``N(0, sd²)`` noise, drawn with ``numpy.random.default_rng(seed)``; the mask is unchanged.

    For CT this is realistic quantum noise in HU: it has mean zero, so the air
    (−1000 HU) and water (0 HU) anchors and the ROI median keep their values.
    """

    name = "GaussianNoise"

    def __init__(self, sd: float, seed: int):
        if sd < 0:
            raise ValueError(f"GaussianNoise: sd must be >= 0, got {sd}")
        super().__init__(sd=float(sd), seed=int(seed))

    def apply(self, image, mask, spacing):
        rng = np.random.default_rng(self.params["seed"])
        return image + rng.normal(0.0, self.params["sd"], size=image.shape).astype(np.float32), mask


class RandomGaussianNoise(RandomTransform):
    """``sd ~ U(0, max_sd)``, plus a recorded noise seed."""

    def __init__(self, max_sd: float):
        if max_sd < 0:
            raise ValueError(f"RandomGaussianNoise: max_sd must be >= 0, got {max_sd}")
        self.max_sd = max_sd

    def sample(self, rng, image, mask, spacing):
        return GaussianNoise(rng.uniform(0, self.max_sd), seed_from(rng)), 0
