"""Image-space checks of synthetic patches: memorization and physical plausibility.

These work on patch arrays ``(N, *patch)`` (images float, masks binary) as
written by the preprocess and sampling stages, not on features: a generator can
copy a training image closely while its radiomics features drift, and an image
can be physically impossible (an empty mask, CT values below air) while its
features look ordinary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

PHYSICAL_HU_RANGE = (-1024.0, 3071.0)
"""CT values a scanner can record (12-bit range with the usual -1024 offset), in HU."""

PLAUSIBILITY_COLUMNS = ["empty_mask", "intensity_out_of_range", "roi_voxels", "roi_size_out_of_range",
                        "implausible"]


def physical_intensity_range(modality: str, intensity_normalised: bool) -> tuple[float, float] | None:
    """The physically possible intensity range of a modality, or None if there is none to check.

    CT patches that keep Hounsfield units: :data:`PHYSICAL_HU_RANGE`. MR
    magnitudes are non-negative. Normalised intensities (any
    ``preprocess.normalisation`` but ``none``) and ``other`` have no range.
    """
    if intensity_normalised:
        return None
    if modality == "CT":
        return PHYSICAL_HU_RANGE
    if modality == "MR":
        return (0.0, math.inf)
    return None


def plausibility(
    images: np.ndarray,
    masks: np.ndarray,
    *,
    intensity_range: tuple[float, float] | None,
    roi_voxel_range: tuple[float, float] | None,
) -> pd.DataFrame:
    """Per-sample physical plausibility of patches.

    Parameters
    ----------
    images, masks
        ``(N, *patch)`` arrays; a mask voxel is ROI where it is non-zero.
    intensity_range
        Allowed closed intensity interval (see :func:`physical_intensity_range`);
        None skips the check.
    roi_voxel_range
        Allowed closed interval of ROI voxel counts, typically the min and max
        of the real training cases; None skips the check.

    Returns
    -------
    pandas.DataFrame
        One row per sample with :data:`PLAUSIBILITY_COLUMNS`: ``empty_mask``,
        ``intensity_out_of_range`` (any voxel outside the range, or non-finite),
        ``roi_voxels``, ``roi_size_out_of_range`` and ``implausible`` (any of the
        three checks failed).
    """
    images = np.asarray(images, dtype=float)
    masks = np.asarray(masks)
    if images.shape != masks.shape:
        raise ValueError(f"images {images.shape} and masks {masks.shape} must have the same shape.")
    axes = tuple(range(1, images.ndim))
    roi_voxels = (masks != 0).sum(axis=axes) if images.ndim > 1 else np.zeros(len(images), int)
    empty = roi_voxels == 0
    if intensity_range is None:
        out_of_range = ~np.isfinite(images).all(axis=axes)
    else:
        low, high = intensity_range
        out_of_range = ~((images >= low) & (images <= high)).all(axis=axes)
    if roi_voxel_range is None:
        size_out = np.zeros(len(images), dtype=bool)
    else:
        size_out = (roi_voxels < roi_voxel_range[0]) | (roi_voxels > roi_voxel_range[1])
    return pd.DataFrame({
        "empty_mask": empty,
        "intensity_out_of_range": out_of_range,
        "roi_voxels": roi_voxels,
        "roi_size_out_of_range": size_out,
        "implausible": empty | out_of_range | size_out,
    }, columns=PLAUSIBILITY_COLUMNS)


def patch_vectors(images: np.ndarray) -> np.ndarray:
    """Flattened patches, each z-scored over its own voxels and divided by sqrt(voxels).

    The Euclidean distance of two such vectors is the root-mean-square voxel
    difference of the two intensity-normalised patches (in [0, 2]): insensitive
    to a global intensity shift or scale, sensitive to structure. Constant
    patches become zero vectors.
    """
    flat = np.asarray(images, dtype=float).reshape(len(images), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    scaled = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    return scaled / math.sqrt(max(flat.shape[1], 1))


def image_distances_to_train(
    candidate: np.ndarray, train: np.ndarray, holdout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Patch-level normalised distance (see :func:`patch_vectors`) of candidate and holdout
    patches to their closest training patch: the image-space distance to closest record.

    Returns
    -------
    d_candidate, d_holdout
        ``(N_candidate,)`` and ``(N_holdout,)`` distances; all NaN if a set is empty.
    """
    if min(len(candidate), len(train), len(holdout)) == 0:
        return np.full(len(candidate), np.nan), np.full(len(holdout), np.nan)
    index = NearestNeighbors(n_neighbors=1).fit(patch_vectors(train))
    return (index.kneighbors(patch_vectors(candidate))[0][:, 0],
            index.kneighbors(patch_vectors(holdout))[0][:, 0])


def nearest_training_patches(candidate: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate patch's closest training patch in the distance of :func:`patch_vectors`.

    Returns
    -------
    distances, indices
        ``(N_candidate,)`` distances and positions in ``train`` (ties: the first);
        empty arrays if either set is empty.
    """
    if min(len(candidate), len(train)) == 0:
        return np.empty(0), np.empty(0, dtype=int)
    distances, indices = NearestNeighbors(n_neighbors=1).fit(patch_vectors(train)).kneighbors(
        patch_vectors(candidate))
    return distances[:, 0], indices[:, 0]


def image_memorization_ratio(candidate: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> float:
    """Median image-space DCR of candidate patches over that of holdout patches.

    The image-space counterpart of :func:`radaug.validate.metrics.memorization_ratio`:
    about 1 for patches as novel as unseen real ones, near 0 for copies of
    training patches. NaN if a set has fewer than two patches or the median
    holdout distance is 0.
    """
    if min(len(candidate), len(train), len(holdout)) < 2:
        return math.nan
    d_candidate, d_holdout = image_distances_to_train(candidate, train, holdout)
    scale = float(np.median(d_holdout))
    return float(np.median(d_candidate) / scale) if scale > 0 else math.nan


def implausible_share(images: np.ndarray, masks: np.ndarray, real_masks: np.ndarray,
                      intensity_range: tuple[float, float] | None) -> float:
    """Share of patches failing :func:`plausibility`, with the ROI size range of ``real_masks``.

    NaN if there are no patches or no real masks.
    """
    if len(images) == 0 or len(real_masks) == 0:
        return math.nan
    axes = tuple(range(1, np.asarray(real_masks).ndim))
    sizes = (np.asarray(real_masks) != 0).sum(axis=axes)
    table = plausibility(images, masks, intensity_range=intensity_range,
                         roi_voxel_range=(float(sizes.min()), float(sizes.max())))
    return float(table["implausible"].mean())


@dataclass(frozen=True)
class PatchPool:
    """Per-patch quantities of one validation cell, computed once for the image gates' null draws.

    Rows: the training patches, then the candidate's, then the holdout's (the
    order in which the exchange null pools the feature rows). ``distances``:
    every pair's distance of :func:`patch_vectors` (the distance
    :func:`image_memorization_ratio` measures); ``roi_voxels``: each mask's ROI
    size; ``flagged``: an empty mask or an intensity outside the physical range
    (:func:`plausibility`'s checks that do not depend on the other patches).
    """

    distances: np.ndarray
    roi_voxels: np.ndarray
    flagged: np.ndarray


def patch_pool(images: np.ndarray, masks: np.ndarray, intensity_range: tuple[float, float] | None) -> PatchPool:
    """The :class:`PatchPool` of pooled ``(N, *patch)`` images and masks.

    Hundreds of null draws each take the nearest training patch of dozens of
    patches; one Gram matrix of all pairs (a few hundred patches) replaces a
    nearest-neighbour search per draw.
    """
    vectors = patch_vectors(images)
    gram = vectors @ vectors.T
    norms = np.diag(gram)
    distances = np.sqrt(np.clip(norms[:, None] + norms[None, :] - 2 * gram, 0.0, None))
    np.fill_diagonal(distances, 0.0)
    table = plausibility(images, masks, intensity_range=intensity_range, roi_voxel_range=None)
    flagged = (table["empty_mask"] | table["intensity_out_of_range"]).to_numpy()
    return PatchPool(distances, table["roi_voxels"].to_numpy(), flagged)


def pooled_memorization_ratio(pool: PatchPool, train: np.ndarray, candidate: np.ndarray,
                              holdout: np.ndarray) -> float:
    """:func:`image_memorization_ratio` of the pool's rows ``candidate`` against ``train``, scaled by ``holdout``."""
    if min(len(candidate), len(train), len(holdout)) < 2:
        return math.nan
    to_train = pool.distances[:, train]
    scale = float(np.median(to_train[holdout].min(axis=1)))
    return float(np.median(to_train[candidate].min(axis=1)) / scale) if scale > 0 else math.nan


def pooled_implausible(pool: PatchPool, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Whether each of the pool's rows ``candidate`` is implausible (:func:`plausibility`), with the ROI size
    range of the rows ``reference`` (non-empty)."""
    sizes = pool.roi_voxels[reference]
    roi = pool.roi_voxels[candidate]
    return pool.flagged[candidate] | (roi < sizes.min()) | (roi > sizes.max())


def pooled_implausible_share(pool: PatchPool, reference: np.ndarray, candidate: np.ndarray) -> float:
    """:func:`implausible_share` of the pool's rows ``candidate`` with the ROI size range of ``reference``."""
    if len(candidate) == 0 or len(reference) == 0:
        return math.nan
    return float(np.mean(pooled_implausible(pool, reference, candidate)))
