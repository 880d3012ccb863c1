"""Global MR gain (receiver/scaling differences between acquisitions)."""

from __future__ import annotations

from .base import RandomTransform, Transform


class Gain(Transform):
    """Scale the signal above the background: ``b + g (I − b)``.

    MR intensities have no absolute unit, so a global gain is a realistic change;
    on CT it would break Hounsfield units and config validation refuses it.
    With ``preprocess.normalisation: roi_zscore`` the patch is z-scored within the
    ROI afterwards, which removes a global gain; with the MR default
    (``image_zscore``, applied to the whole original image before cropping) the
    gain is kept.
    """

    name = "Gain"

    def __init__(self, gain: float, background: float = 0.0):
        if gain <= 0:
            raise ValueError(f"Gain: gain must be > 0, got {gain}")
        super().__init__(gain=float(gain), background=float(background))

    def apply(self, image, mask, spacing):
        b = self.params["background"]
        return b + self.params["gain"] * (image - b), mask


class RandomGain(RandomTransform):
    """``g ~ U(1 − max_change, 1 + max_change)``; the background is the image minimum."""

    def __init__(self, max_change: float):
        if not 0 <= max_change < 1:
            raise ValueError(f"RandomGain: max_change must be in [0, 1), got {max_change}")
        self.max_change = max_change

    def sample(self, rng, image, mask, spacing):
        return Gain(rng.uniform(1 - self.max_change, 1 + self.max_change), float(image.min())), 0
