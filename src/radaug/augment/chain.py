"""Chains of random transforms, their records, and plausibility checks.

A :class:`RandomChain` draws one deterministic transform per stage from a
seeded generator and applies them in order. The result carries the *chain*:
the list of :meth:`~radaug.augment.base.Transform.record` dicts, enough for
:func:`apply_chain` to re-create the output exactly from the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..preprocess import DEFAULT_NORMALISATION, normalise_patch
from .base import RandomTransform, Transform, transform_from_record

CT_ANCHORS_HU = {"air": -1000.0, "water": 0.0}


class NormaliseIntensity(Transform):
    """The study's patch-level intensity normalisation (:func:`radaug.preprocess.normalise_patch`).

    ``roi_zscore`` z-scores within the ROI; every other method leaves the patch in
    the normalised space its real parent already lives in. So an augmented patch
    is measured exactly like a real one.
    """

    name = "NormaliseIntensity"

    def __init__(self, method: str):
        super().__init__(method=str(method))

    def apply(self, image, mask, spacing):
        if not mask.any():
            raise ValueError("NormaliseIntensity: the mask is empty")
        return normalise_patch(image, mask, self.params["method"]), mask


def check_ct_anchors(before: np.ndarray, after: np.ndarray, mask: np.ndarray, *, anchor_tolerance_hu: float,
                     roi_tolerance_hu: float, window_hu: float = 50.0, min_voxels: int = 50) -> list[str]:
    """Hounsfield units that should keep their meaning after a photometric change.

    The air (−1000 HU) and water (0 HU) anchors are the voxels whose value
    before lay within ``window_hu`` of the anchor (checked when at least
    ``min_voxels`` such voxels exist, on a regular subgrid of at least
    ~16,000 voxels for large cases); the median of their voxelwise HU change
    may be at most ``anchor_tolerance_hu`` in magnitude, and that of the ROI's
    voxels at most ``roi_tolerance_hu``. Zero-mean noise and a mild blur pass;
    any global rescaling or offset of HU fails.

    Returns
    -------
    list of str
        One line per violated anchor; empty when the change is plausible.
    """
    problems = []
    change = after - before
    # Anchors on a regular subgrid of at least ~16,000 voxels: the median's error is far below any
    # sensible tolerance, and a 128^3 case costs a fraction of the full pass.
    stride = max(1, int((before.size / 16384) ** (1 / before.ndim)))
    sub_before, sub_change = before[(slice(None, None, stride),) * before.ndim], \
        change[(slice(None, None, stride),) * before.ndim]
    for name, value in CT_ANCHORS_HU.items():
        region = np.abs(sub_before - value) <= window_hu
        if np.count_nonzero(region) >= min_voxels:
            shift = float(np.median(sub_change[region]))
            if abs(shift) > anchor_tolerance_hu:
                problems.append(f"{name} anchor ({value:g} HU) moved by {shift:+.1f} HU > {anchor_tolerance_hu:g}")
    roi = mask > 0
    if roi.any():
        shift = float(np.median(change[roi]))
        if abs(shift) > roi_tolerance_hu:
            problems.append(f"ROI median moved by {shift:+.1f} HU > {roi_tolerance_hu:g}")
    return problems


@dataclass
class Augmented:
    """An augmented (image, mask) with its chain of transform records and rejected draws per stage."""

    image: np.ndarray
    mask: np.ndarray
    chain: list[dict]
    rejected: dict[str, int] = field(default_factory=dict)


def apply_chain(chain: list[dict], image: np.ndarray, mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Re-create an augmented sample from its recorded chain (the inverse of nothing: a replay)."""
    for record in chain:
        image, mask = transform_from_record(record)(image, mask, spacing)
    return image, mask


class RandomChain:
    """Spatial stages, then photometric stages, then the study's intensity representation.

    Parameters
    ----------
    spatial, photometric
        Random transforms, applied in order; each may reject draws itself.
    modality
        ``"CT"``, ``"MR"`` or ``"other"``; CT enables the anchor checks.
    normalisation
        The patches' normalisation (the case index's ``normalisation``), re-applied
        at the end (:class:`NormaliseIntensity`); ``None`` takes the modality's default.
    ct_tolerances
        For CT: ``{"anchor_tolerance_hu": .., "roi_tolerance_hu": ..}``. A
        photometric draw that moves an anchor or the ROI median further
        (:func:`check_ct_anchors`) is rejected and all photometric stages are
        redrawn; the count is reported as ``rejected["ct_anchors"]``.
    max_attempts
        Photometric redraws before ``RuntimeError``.
    """

    def __init__(self, spatial: list[RandomTransform] = (), photometric: list[RandomTransform] = (), *,
                 modality: str, normalisation: str | None = None, ct_tolerances: dict | None = None,
                 max_attempts: int = 100):
        self.spatial, self.photometric = list(spatial), list(photometric)
        self.normalisation = normalisation or DEFAULT_NORMALISATION.get(modality, DEFAULT_NORMALISATION["other"])
        self.modality, self.ct_tolerances, self.max_attempts = modality, ct_tolerances, max_attempts

    def __call__(self, image: np.ndarray, mask: np.ndarray, spacing, rng: np.random.Generator) -> Augmented:
        image = np.asarray(image, dtype=np.float32)
        mask = np.asarray(mask, dtype=np.uint8)
        chain, rejected = [], {}
        for stage in self.spatial:
            twin, n = stage.sample(rng, image, mask, spacing)
            image, mask = twin(image, mask, spacing)
            chain.append(twin.record())
            rejected[type(stage).__name__] = rejected.get(type(stage).__name__, 0) + n
        if not mask.any():
            raise RuntimeError("the ROI left the patch under the spatial transforms; lower their ranges")
        before = image
        for attempt in range(self.max_attempts):
            image, drawn = before, []
            for stage in self.photometric:
                twin, n = stage.sample(rng, image, mask, spacing)
                image, _ = twin(image, mask, spacing)
                drawn.append(twin.record())
                rejected[type(stage).__name__] = rejected.get(type(stage).__name__, 0) + n
            if self.modality != "CT" or not self.ct_tolerances or not check_ct_anchors(
                    before, image, mask, **self.ct_tolerances):
                break
            rejected["ct_anchors"] = rejected.get("ct_anchors", 0) + 1
        else:
            raise RuntimeError(f"no photometric draw kept the CT anchors within {self.ct_tolerances} in "
                               f"{self.max_attempts} attempts; lower augmentation.photometric.noise_sd_hu "
                               "or blur_sigma_mm")
        chain += drawn
        final = NormaliseIntensity(self.normalisation)
        image, mask = final(image, mask, spacing)
        chain.append(final.record())
        return Augmented(image, mask, chain, rejected)
