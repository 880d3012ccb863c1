"""Rician noise of MR magnitude images at a target signal-to-noise ratio."""

from __future__ import annotations

import numpy as np

from .base import RandomTransform, Transform, seed_from


def rician_mean(amplitude, sigma):
    """Mean of a Rician magnitude: ``σ √(π/2) L_½(−A²/2σ²)`` (Gudbjartsson & Patz 1995).

    Written with modified Bessel functions,
    ``L_½(x) = e^{x/2} [(1 − x) I₀(−x/2) − x I₁(−x/2)]``; scipy's exponentially
    scaled ``i0e``/``i1e`` keep it finite for large ``A/σ``.
    """
    from scipy.special import i0e, i1e

    x = -np.asarray(amplitude, dtype=float) ** 2 / (2 * sigma ** 2)
    laguerre = (1 - x) * i0e(-x / 2) - x * i1e(-x / 2)  # e^{x/2} I(−x/2) = i·e(−x/2) for x ≤ 0
    return sigma * np.sqrt(np.pi / 2) * laguerre


class RicianNoise(Transform):
    """Add ``N(0, σ²)`` to the real and imaginary parts of the signal, then take the magnitude.

    The magnitude is measured above the background ``b`` (radaug's MR patches
    are z-scored, so the background is their minimum):
    ``b + |(I − b + n_re) + i n_im|``. The magnitude of a signal with Gaussian
    noise in both channels is Rician distributed (Gudbjartsson & Patz 1995,
    *Magn Reson Med*, doi:10.1002/mrm.1910340618).
    """

    name = "RicianNoise"

    def __init__(self, sigma: float, seed: int, background: float = 0.0):
        if sigma < 0:
            raise ValueError(f"RicianNoise: sigma must be >= 0, got {sigma}")
        super().__init__(sigma=float(sigma), seed=int(seed), background=float(background))

    def apply(self, image, mask, spacing):
        rng = np.random.default_rng(self.params["seed"])
        b, sigma = self.params["background"], self.params["sigma"]
        real = (image - b) + rng.normal(0.0, sigma, size=image.shape)
        imaginary = rng.normal(0.0, sigma, size=image.shape)
        return (b + np.hypot(real, imaginary)).astype(np.float32), mask


class RandomRicianNoise(RandomTransform):
    """Noise level from a target SNR: ``σ = mean ROI signal above background / SNR``, ``SNR ~ U(min_snr, max_snr)``."""

    def __init__(self, min_snr: float, max_snr: float | None = None):
        max_snr = min_snr if max_snr is None else max_snr
        if not 0 < min_snr <= max_snr:
            raise ValueError(f"RandomRicianNoise: need 0 < min_snr <= max_snr, got {min_snr}, {max_snr}")
        self.min_snr, self.max_snr = min_snr, max_snr

    def sample(self, rng, image, mask, spacing):
        background = float(image.min())
        signal = float(np.mean(image[mask > 0] - background)) if mask.any() else float(np.mean(image - background))
        snr = rng.uniform(self.min_snr, self.max_snr)
        return RicianNoise(signal / snr, seed_from(rng), background), 0
