"""Rebalancing quotas: how many extra training samples each class receives.

One rule for every arm that adds data (oversampling, classical augmentation,
each generator), computed from the fold's *training* class counts only, so all
arms of a fold add the same number of samples per class and compare fairly.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from radaug.errors import SamplingError


def rebalancing_quotas(
    class_counts: Mapping[str, int],
    target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
) -> dict[str, int]:
    """Extra samples per class so each class reaches ``target_ratio`` × the largest class.

    Parameters
    ----------
    class_counts
        Real training cases per class in this fold.
    target_ratio
        Desired size of every class relative to the largest one, in (0, 1].
        1.0 balances the classes fully.
    cap_per_case
        At most this many extra samples per real case of a class, so a class with
        very few cases is not flooded with data derived from them.

    Returns
    -------
    dict
        Class name → number of extra samples (0 for the largest class).

    Examples
    --------
    >>> rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=4)
    {'no': 0, 'yes': 256}
    >>> rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=2)
    {'no': 0, 'yes': 128}
    """
    if not 0 < target_ratio <= 1:
        raise ValueError(f"target_ratio must be in (0, 1], got {target_ratio}")
    if cap_per_case < 0:
        raise ValueError(f"cap_per_case must be >= 0, got {cap_per_case}")
    largest = max(class_counts.values())
    quotas = {}
    for name, count in class_counts.items():
        wanted = max(0, math.ceil(target_ratio * largest) - count)
        quotas[name] = int(min(wanted, math.floor(cap_per_case * count)))
    return quotas


def sample_seeds(seed: int, fold: str, model: str, label_index: int, count: int, attempt: int) -> np.ndarray:
    """Independent per-sample seeds, derived from the study seed and the sample's coordinates."""
    key = [seed, *map(ord, fold), *map(ord, model), label_index, attempt]
    return np.random.SeedSequence(key).generate_state(count, dtype=np.uint32).astype(np.int64)


def plausible_masks(mask_prob: np.ndarray, roi_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Binarise masks at 0.5 and accept those with an ROI size within ``roi_range`` (voxels)."""
    masks = (mask_prob >= 0.5).astype(np.uint8)
    sizes = masks.reshape(len(masks), -1).sum(axis=1)
    ok = (sizes > 0) & (sizes >= roi_range[0]) & (sizes <= roi_range[1])
    return masks, ok


REJECTION_REASONS = ("empty mask", "ROI below range", "ROI above range")
"""Why :func:`plausible_masks` rejects a sample, in the order they are checked."""


def rejection_reasons(masks: np.ndarray, roi_range: tuple[float, float]) -> dict[str, int]:
    """Count the binarised ``masks`` rejected per reason of :data:`REJECTION_REASONS`.

    A mask is counted once: empty first, then below ``roi_range[0]``, then above
    ``roi_range[1]`` voxels. The counts sum to the number rejected by
    :func:`plausible_masks` with the same range.
    """
    masks = np.asarray(masks)
    low, high = roi_range
    if not low <= high:
        raise ValueError(f"roi_range must be (low, high) with low <= high, got {roi_range}")
    sizes = masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:]))).astype(bool).sum(axis=1)
    empty = sizes == 0
    below = ~empty & (sizes < low)
    above = ~empty & ~below & (sizes > high)
    return {name: int(flags.sum()) for name, flags in zip(REJECTION_REASONS, (empty, below, above))}


def _reasons_text(counts: Mapping[str, int], roi_range: tuple[float, float]) -> str:
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    return (f"{', '.join(parts) or 'none'}; accepted ROI size range [{roi_range[0]:.4g}, {roi_range[1]:.4g}] "
            "voxels (the class's real training ROI sizes widened by sampling.roi_size_slack)")


def draw_samples(model, label: str, label_index: int, seeds: np.ndarray, shapes=None
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """One sample of class ``label`` per seed: images, mask probabilities and each mask's origin.

    A joint model draws ``model.sample([label_index], seed=s)``. A mask-conditioned
    model is given ``shapes.sample(label, s)`` (an in-fold :class:`radaug.shape.ShapeModel`)
    and synthesises the image for it; the origin (parent case and transform, or
    shape-model coefficients and hash) is returned for the sample table. The
    same seed reproduces both.
    """
    if shapes is None:
        drawn = [model.sample(np.array([label_index]), seed=int(s)) for s in seeds]
        origins = [{} for _ in seeds]
    else:
        drawn, origins = [], []
        for s in seeds:
            mask, origin = shapes.sample(label, int(s))
            drawn.append(model.sample(np.array([label_index]), seed=int(s), masks=mask[None]))
            origins.append(origin)
    return np.concatenate([d[0] for d in drawn]), np.concatenate([d[1] for d in drawn]), origins


def sample_with_quotas(model, quotas: Mapping[str, int], classes: list[str], roi_ranges: Mapping[str, tuple],
                       *, seed: int, fold: str, model_name: str, max_attempts: int = 20, shapes=None):
    """Draw each class's quota of plausible synthetic samples from a trained model.

    Each sample is drawn with its own recorded seed, so ``model.sample([label],
    seed=s)`` (given ``shapes``, with the mask ``shapes.sample(label, s)``)
    reproduces it exactly. Samples whose binarised mask is empty or
    whose ROI size falls outside the class's real range are rejected and
    redrawn, up to ``max_attempts`` rounds; rejections are counted.

    Returns
    -------
    images, masks, records
        Arrays of accepted samples and one record per sample (label, seed,
        attempt, roi_voxels and, given ``shapes``, the mask's origin:
        :data:`radaug.shape.ORIGIN_COLUMNS`), plus a dict of rejection counts per class.

    Raises
    ------
    SamplingError
        If a class cannot fill its quota within ``max_attempts`` rounds; the
        message counts the rejections per reason (:data:`REJECTION_REASONS`) and
        gives the accepted ROI size range.
    """
    images, masks, records, rejected = [], [], [], {}
    for label in classes:
        need = quotas.get(label, 0)
        c = classes.index(label)
        rejected[label] = 0
        reasons = dict.fromkeys(REJECTION_REASONS, 0)
        attempt = 0
        while need > 0:
            if attempt >= max_attempts:
                raise SamplingError(
                    f"{model_name} in fold {fold}: only {quotas[label] - need} of {quotas[label]} plausible "
                    f"'{label}' samples after {max_attempts} rounds ({rejected[label]} rejected: "
                    f"{_reasons_text(reasons, roi_ranges[label])}). Train longer (generative.steps), or raise "
                    "sampling.max_attempts / sampling.roi_size_slack (ROI size rejections), or drop the model "
                    "from generative.models."
                )
            seeds = sample_seeds(seed, fold, model_name, c, need, attempt)
            img, mask_prob, origins = draw_samples(model, label, c, seeds, shapes)
            binary, ok = plausible_masks(mask_prob, roi_ranges[label])
            rejected[label] += int((~ok).sum())
            for name, n in rejection_reasons(binary[~ok], roi_ranges[label]).items():
                reasons[name] += n
            for i in np.flatnonzero(ok):
                images.append(img[i])
                masks.append(binary[i])
                records.append({"label": label, "seed": int(seeds[i]), "attempt": attempt,
                                "roi_voxels": int(binary[i].sum()), **origins[i]})
            need -= int(ok.sum())
            attempt += 1
    return images, masks, records, rejected
