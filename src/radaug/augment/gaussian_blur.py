"""Mild Gaussian blur: a change of reconstruction kernel or resolution."""

from __future__ import annotations

import SimpleITK as sitk

from .base import RandomTransform, Transform, to_sitk


class GaussianBlur(Transform):
    """Smooth the image with an isotropic Gaussian of ``sigma_mm`` (physical units, any spacing).

    A Gaussian kernel preserves the mean of uniform regions, so CT anchors keep
    their HU away from edges. ``sigma_mm = 0`` leaves the image unchanged.
    """

    name = "GaussianBlur"

    def __init__(self, sigma_mm: float):
        if sigma_mm < 0:
            raise ValueError(f"GaussianBlur: sigma_mm must be >= 0, got {sigma_mm}")
        super().__init__(sigma_mm=float(sigma_mm))

    def apply(self, image, mask, spacing):
        sigma = self.params["sigma_mm"]
        if sigma == 0:
            return image, mask
        variance = [sigma ** 2] * image.ndim
        smooth = sitk.DiscreteGaussian(to_sitk(image, spacing), variance, 32, 0.01, True)
        return sitk.GetArrayFromImage(smooth), mask


class RandomGaussianBlur(RandomTransform):
    """``sigma_mm ~ U(0, max_sigma_mm)``."""

    def __init__(self, max_sigma_mm: float):
        if max_sigma_mm < 0:
            raise ValueError(f"RandomGaussianBlur: max_sigma_mm must be >= 0, got {max_sigma_mm}")
        self.max_sigma_mm = max_sigma_mm

    def sample(self, rng, image, mask, spacing):
        return GaussianBlur(rng.uniform(0, self.max_sigma_mm)), 0
