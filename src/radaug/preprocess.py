"""Preprocessing of real cases: ROI, lattice-exact crops or IBSI-style resampling, intensities, patches.

A case becomes a fixed-size patch (image + binary mask), the representation every
later stage uses (generators, features, validation), so real, augmented and
synthetic data are always measured alike. Real images must reach PyRadiomics as
PyRadiomics itself would see them, so the patch is taken on the image's own
voxel lattice whenever possible:

* ``crop`` at native spacing (``preprocess.spacing: null``, or a spacing equal to
  the image's): a pure **index crop** of the original voxels, padded where the
  patch leaves the image. No interpolation: ROI intensities are bit-identical to
  the file's, and PyRadiomics features of the patch equal PyRadiomics features of
  the original image and mask.
* ``crop`` with a ``preprocess.spacing``: the case is resampled **once** onto the
  lattice PyRadiomics' ``resampledPixelSpacing`` uses (``imageoperations.resampleImage``;
  IBSI, Zwanenburg et al. 2020, doi:10.1148/radiol.2020191145): voxel ``k`` of the
  new lattice sits at continuous index ``0.5 (s'/s - 1) + k s'/s`` of the original
  image, i.e. the outer corner of the first original voxel and of the first new
  voxel coincide. The image is interpolated in its stored pixel type (B-spline by
  default, as PyRadiomics), the mask by nearest neighbour (PyRadiomics) or
  linearly with a partial-volume threshold of 0.5 (IBSI). The patch is a window
  of that lattice centred on the ROI, so features equal PyRadiomics' with
  ``resampledPixelSpacing`` set.
* ``fit``: the ROI bounding box plus a margin, scaled into the patch (nominal
  spacing 1.0; shape features are then in patch-voxel units). For 2D photographs
  without physical spacing (the Br35H example), not for radiomics of real lesions.

Patch sizes are per axis, ``(x, y[, z])`` in SimpleITK's order, so anisotropic
volumes need not be padded to cubes. A ROI that does not fit its patch is an
error naming the case and the size that would fit, unless
``preprocess.allow_truncation`` is set.

Intensity normalisation (:data:`NORMALISATIONS`) is a recorded choice, per case
in the case index (column ``normalisation``):

* ``none``: stored intensities (CT: Hounsfield units);
* ``image_zscore``: ``(x - mean) / sd`` over the **whole original image**, before
  resampling, exactly PyRadiomics' ``normalize: true`` (``sitk.Normalize``);
* ``percentile``: ``(x - p_lo) / (p_hi - p_lo)`` with percentiles of the whole
  original image (``preprocess.percentiles``);
* ``roi_zscore``: z-score within the patch's ROI (makes first-order Mean and
  Variance constant: an explicit choice, no longer a default);
* ``nyul``: Nyúl–Udupa histogram standardisation (:mod:`radaug.standardise`).
  The patch keeps its stored intensities; the case's landmarks (percentiles 1,
  10, ..., 90, 99 of the whole original image, before resampling, within its
  foreground: voxels above the image mean) go to the case index (column
  ``landmarks``). The standard scale is learned per fold from the fold's
  training cases and applied when a fold's patches are loaded
  (:func:`load_patches` with ``standardisation``). Not for CT (Hounsfield units
  are already a standard scale).

``auto`` takes :data:`DEFAULT_NORMALISATION` per modality. Every method but
``nyul`` is a per-case map, fitted on nothing but the case itself, so it cannot
leak information between folds; ``nyul`` learns one thing across cases (the
standard scale) and learns it in-fold, checked by
:func:`radaug.standardise.check_fitted_in_fold`. Synthetic and augmented patches
live in the same normalised space as the real patches their models learned from;
:func:`normalise_patch` re-applies the patch-level method (``roi_zscore``) to
them, while the image-level methods, defined on a whole original image, were
already applied to every patch a generator or augmenter saw (for ``nyul``: the
fold's map, applied to every patch a fold's generator or augmenter loads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import imagehash
import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image

from . import duplicates, standardise
from .errors import ConfigError, ManifestError
from .images import read_image
from .io import load_arrays, sha256_array

CT_AIR_HU = -1000.0
ROI_METHOD = "otsu foreground; holes filled; largest connected component"
INTERPOLATORS = {"bspline": sitk.sitkBSpline, "linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}
"""Image interpolators of ``preprocess.interpolator`` (B-spline is PyRadiomics' default)."""
MASK_INTERPOLATIONS = ("nearest", "linear")
"""``nearest``: PyRadiomics; ``linear``: IBSI, partial-volume fraction >= :data:`MASK_THRESHOLD` is ROI."""
MASK_THRESHOLD = 0.5
NORMALISATIONS = ("none", "image_zscore", "percentile", "roi_zscore", standardise.METHOD)
DEFAULT_NORMALISATION = {"CT": "none", "MR": "image_zscore", "other": "image_zscore"}
"""CT keeps Hounsfield units (physical, comparable across scanners); MR and other
modalities have arbitrary units that vary per acquisition, so each image is
z-scored over its whole field of view (PyRadiomics' ``normalize``), which keeps
the ROI's mean and variance relative to the rest of the image as features."""
IMAGE_LEVEL_NORMALISATIONS = ("image_zscore", "percentile")
SUPPORT_MARGIN = {"bspline": 24, "linear": 2, "nearest": 2}
"""Voxels beyond a grid's extent that interpolation reads (see :func:`_support`)."""
MAX_PATCH_VOXELS = 1 << 24
"""Largest patch (voxels): 64 MiB of float32 per patch; batches hold many."""


@dataclass(frozen=True)
class Patch:
    image: np.ndarray  # float32, (y, x) or (z, y, x)
    mask: np.ndarray  # uint8 {0, 1}
    spacing: tuple[float, ...]  # (x, y[, z]) in mm, as SimpleITK orders it
    roi_truncated: bool


class RoiTruncatedError(ValueError):
    """A ROI does not fit its patch; the message names the patch size that would fit."""


def patch_shape(patch_size, dim: int) -> tuple[int, ...]:
    """Patch size per axis ``(x, y[, z])`` from ``preprocess.patch_size`` (one int, or one per axis).

    Raises
    ------
    ValueError
        If a list has another length than the image dimension.
    """
    if isinstance(patch_size, (int, np.integer)):
        return (int(patch_size),) * dim
    sizes = tuple(int(s) for s in patch_size)
    if len(sizes) != dim:
        raise ValueError(f"preprocess.patch_size {list(sizes)} has {len(sizes)} entries but the image is {dim}D: "
                         f"give {dim} sizes (x, y{', z' if dim == 3 else ''}) or one number")
    return sizes


def target_spacing(spacing, dim: int) -> np.ndarray | None:
    """``preprocess.spacing`` as one value per axis ``(x, y[, z])``, or None (native)."""
    if spacing is None:
        return None
    if isinstance(spacing, (int, float, np.number)):
        return np.full(dim, float(spacing))
    values = np.array([float(s) for s in spacing])
    if len(values) != dim:
        raise ValueError(f"preprocess.spacing {values.tolist()} has {len(values)} entries but the image is {dim}D: "
                         f"give {dim} spacings or one number")
    return values


def resolve_normalisation(method: str, modality: str) -> str:
    """The normalisation a case gets: ``method``, or the modality's default for ``auto``."""
    if method == "auto":
        return DEFAULT_NORMALISATION.get(modality, DEFAULT_NORMALISATION["other"])
    if method not in NORMALISATIONS:
        raise ConfigError(f"config key 'preprocess.normalisation': unknown method {method!r}; "
                          f"use auto or one of {list(NORMALISATIONS)}.")
    if method == standardise.METHOD and modality == "CT":
        raise ValueError("preprocess.normalisation: nyul (histogram standardisation) is for images in arbitrary "
                         "units such as MR; CT intensities are Hounsfield units, already a standard scale: use "
                         "preprocess.normalisation: none (or auto) for CT, or set the case's modality")
    return method


def derive_roi(image: sitk.Image) -> sitk.Image:
    """ROI of an image without a mask: Otsu foreground, holes filled, largest component.

    For the Br35H brain MR photographs this is the head/brain region.
    """
    foreground = sitk.OtsuThreshold(image, 0, 1)
    foreground = sitk.BinaryFillhole(foreground)
    components = sitk.RelabelComponent(sitk.ConnectedComponent(foreground), sortByObjectSize=True)
    largest = sitk.Cast(components == 1, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(largest).any():
        raise ValueError("Otsu thresholding found no foreground")
    return largest


def binarise_mask(mask: sitk.Image, mask_label: int | str | None) -> sitk.Image:
    """The ROI as a 0/1 image: voxels equal to ``mask_label`` (1 if None), or non-zero for ``"nonzero"``."""
    if mask_label == "nonzero":
        return sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    value = 1 if mask_label is None else mask_label
    return sitk.Cast(sitk.BinaryThreshold(mask, value - 0.5, value + 0.5, 1, 0), sitk.sitkUInt8)


def normalise_image(image: sitk.Image, method: str, percentiles=(1.0, 99.0)) -> tuple[sitk.Image, float, float]:
    """Image-level normalisation over the whole image; returns ``(image, scale, shift)``.

    ``normalised = scale * stored + shift``. ``image_zscore`` is ``sitk.Normalize``,
    the call behind PyRadiomics' ``normalize: true``, so the two agree voxel for
    voxel. Other methods (``none``, ``roi_zscore`` and ``nyul``, whose map is
    applied per fold later) return the image unchanged (scale 1, shift 0).

    Raises
    ------
    ValueError
        If the image is constant (nothing to scale by).
    """
    if method == "image_zscore":
        stats = sitk.StatisticsImageFilter()
        stats.Execute(image)
        if not stats.GetSigma() > 0:
            raise ValueError("the image is constant, so it cannot be z-scored (preprocess.normalisation)")
        return sitk.Normalize(image), 1.0 / stats.GetSigma(), -stats.GetMean() / stats.GetSigma()
    if method == "percentile":
        lo, hi = np.percentile(sitk.GetArrayViewFromImage(image), percentiles)
        if not hi > lo:
            raise ValueError(f"percentiles {list(percentiles)} of the image are equal ({lo:g}): nothing to scale by; "
                             "choose other preprocess.percentiles or another preprocess.normalisation")
        scale = 1.0 / (float(hi) - float(lo))
        return sitk.ShiftScale(sitk.Cast(image, sitk.sitkFloat64), -float(lo), scale), scale, -float(lo) * scale
    return image, 1.0, 0.0


def normalise_patch(image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Patch-level normalisation: ``roi_zscore`` z-scores within the ROI; other methods leave the patch as is.

    Applied to real patches after cropping and to every synthetic and augmented
    patch, so all are in one intensity space (see the module docstring).
    """
    image = np.asarray(image)
    if method != "roi_zscore":
        return image.astype(np.float32)
    roi = image[mask > 0]
    if not roi.size:
        raise ValueError("roi_zscore needs a non-empty mask")
    sd = float(roi.std())
    return ((image - float(roi.mean())) / (sd if sd > 0 else 1.0)).astype(np.float32)


def roi_box(mask: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Index start and size ``(x, y[, z])`` of the ROI's bounding box (label 1)."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    if not stats.HasLabel(1):
        raise ValueError("the mask is empty")
    box = np.array(stats.GetBoundingBox(1))
    dim = mask.GetDimension()
    return box[:dim], box[dim:]


def _centred_start(first: np.ndarray, extent: np.ndarray, size: np.ndarray) -> np.ndarray:
    """First index of a ``size`` window centred on ``extent`` voxels starting at ``first`` (integer lattice)."""
    return first - (size - extent) // 2


def _truncation_message(extent, size, spacing) -> str:
    fits = [int(e) for e in extent]
    return (f"the ROI spans {fits} voxels (x, y[, z]) at spacing {[float(f'{s:.6g}') for s in spacing]} mm, "
            f"more than the patch {[int(s) for s in size]}: set preprocess.patch_size to at least {fits} "
            f"(per axis; generators need a power of two such as {[1 << math.ceil(math.log2(max(f, 16))) for f in fits]}), "
            "or a coarser preprocess.spacing, or preprocess.allow_truncation: true to cut the ROI")


def crop_on_lattice(image: sitk.Image, start, size, pad: float, dtype=np.float32) -> np.ndarray:
    """The voxels ``start .. start + size - 1`` (per axis, ``(x, y[, z])``) of an image, as a ``(z,) y, x`` array.

    A pure index crop: voxels inside the image are copied unchanged (cast to
    ``dtype``), voxels outside are ``pad``.
    """
    source = sitk.GetArrayViewFromImage(image)
    start, size = np.asarray(start, int)[::-1], np.asarray(size, int)[::-1]  # array (z, y, x) order
    out = np.full(tuple(size), pad, dtype=dtype)
    lo = np.maximum(start, 0)
    hi = np.minimum(start + size, source.shape)
    if (hi > lo).all():
        src = tuple(slice(a, b) for a, b in zip(lo, hi))
        dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start))
        out[dst] = source[src]
    return out


def _lattice_grid(image: sitk.Image, spacing: np.ndarray, start, size) -> sitk.Image:
    """Reference grid of voxels ``start .. start + size - 1`` of the resampling lattice at ``spacing``.

    The lattice is PyRadiomics' (``imageoperations.resampleImage``): new voxel ``k``
    lies at continuous index ``0.5 (s' - s) / s + k / (s / s')`` of the image,
    computed with the same floating-point expression so both land on the same
    points.
    """
    native = np.array(image.GetSpacing())
    origin_index = 0.5 * (spacing - native) / native + np.asarray(start, float) / (native / spacing)
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(image.TransformContinuousIndexToPhysicalPoint(origin_index.tolist()))
    return grid


def _resample_mask(mask: sitk.Image, grid: sitk.Image, how: str) -> np.ndarray:
    if how == "nearest":
        out = sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        return sitk.GetArrayFromImage(out)
    if how != "linear":
        raise ValueError(f"unknown mask interpolation {how!r}; use one of {list(MASK_INTERPOLATIONS)}")
    fraction = sitk.Resample(sitk.Cast(mask, sitk.sitkFloat32), grid, sitk.Transform(), sitk.sitkLinear, 0.0,
                             sitk.sitkFloat32)
    return (sitk.GetArrayFromImage(fraction) >= MASK_THRESHOLD).astype(np.uint8)


def _resampled_window(image, mask, spacing, size, how) -> tuple[np.ndarray, np.ndarray]:
    """First lattice index and extent of the resampled ROI (per axis ``(x, y[, z])``)."""
    native = np.array(image.GetSpacing())
    start, extent = roi_box(mask)
    ratio = native / spacing
    lo = np.floor((start - 0.5) * ratio).astype(int) - 1  # generous: the exact extent is measured below
    hi = np.ceil((start + extent - 0.5) * ratio).astype(int) + 1
    region = _resample_mask(mask, _lattice_grid(image, spacing, lo, hi - lo + 1), how)
    if not region.any():
        raise ValueError(f"the ROI vanished when resampled to spacing {spacing.tolist()} mm "
                         "(thinner than one voxel): choose a finer preprocess.spacing")
    nonzero = np.nonzero(region)  # (z, y, x) order
    first = np.array([a.min() for a in nonzero])[::-1]
    last = np.array([a.max() for a in nonzero])[::-1]
    return lo + first, last - first + 1


def _support(image: sitk.Image, grid: sitk.Image, margin: int) -> sitk.Image:
    """The part of ``image`` that interpolation onto ``grid`` reads: the grid's extent plus ``margin`` voxels.

    A cubic B-spline's coefficients come from a recursive filter over whole image
    lines, but the influence of a voxel ``d`` voxels away decays as
    ``(2 - sqrt 3)^d`` (Unser 1999, doi:10.1109/79.799930): at the
    :data:`SUPPORT_MARGIN` of 24 voxels, 2e-14 of the image's range, far below
    float32 resolution. Interpolating from this region instead of a whole CT
    volume makes resampling several times faster; the fidelity tests check
    that the features still equal PyRadiomics' (which interpolates from the
    whole image) to 1e-6.
    """
    dim = image.GetDimension()
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in grid.GetSize()])).T.reshape(-1, dim)
    points = [grid.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners]
    index = np.array([image.TransformPhysicalPointToContinuousIndex(p) for p in points])
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + margin, np.array(image.GetSize()) - 1)
    if (hi < lo).any():
        return image  # the grid lies outside the image: every voxel is padding
    return sitk.RegionOfInterest(image, (hi - lo + 1).tolist(), lo.tolist())


def fit_grid(mask: sitk.Image, size, margin: float) -> sitk.Image:
    """``fit`` mode: the ROI's bounding box plus ``margin`` scaled into a ``size`` grid (isotropic spacing)."""
    dim = mask.GetDimension()
    start, extent = roi_box(mask)
    native = np.array(mask.GetSpacing())
    direction = np.array(mask.GetDirection()).reshape(dim, dim)
    centre = np.array(mask.TransformContinuousIndexToPhysicalPoint((start + (extent - 1) / 2.0).tolist()))
    new_spacing = np.full(dim, (extent * native * (1 + 2 * margin) / np.asarray(size)).max())
    origin = centre - direction @ ((np.asarray(size) - 1) / 2.0 * new_spacing)
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(new_spacing.tolist())
    grid.SetOrigin(origin.tolist())
    grid.SetDirection(direction.ravel().tolist())
    return grid


def extract_patch(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    modality: str,
    patch_size,
    mode: str = "crop",
    spacing=None,
    margin: float = 0.1,
    interpolator: str = "bspline",
    mask_interpolation: str = "nearest",
    normalisation: str = "auto",
    percentiles=(1.0, 99.0),
    resegment_range=None,
    allow_truncation: bool = False,
) -> Patch:
    """A case's patch: normalise, crop on the lattice (or resample once, or fit), re-segment.

    Parameters
    ----------
    image, mask
        The case as stored (any pixel type; the mask binary uint8, with the
        image's geometry).
    modality
        ``CT``, ``MR`` or ``other``: the padding (air for CT) and the ``auto``
        normalisation.
    patch_size
        One size or one per axis ``(x, y[, z])``, in voxels.
    mode
        ``crop`` or ``fit`` (module docstring).
    spacing
        ``None`` (native lattice), one spacing or one per axis, in mm.
    interpolator, mask_interpolation
        Keys of :data:`INTERPOLATORS` and :data:`MASK_INTERPOLATIONS`.
    normalisation, percentiles
        One of ``auto`` and :data:`NORMALISATIONS`; percentiles for ``percentile``.
    resegment_range
        ``[lo, hi]`` in stored units (CT: HU) or ``None``: ROI voxels outside are
        removed from the mask (IBSI re-segmentation; shape features then describe
        the re-segmented ROI).
    allow_truncation
        Crop a ROI larger than the patch instead of refusing it.

    Raises
    ------
    RoiTruncatedError
        If the ROI does not fit the patch (naming the size that would).
    ValueError
        If the ROI vanishes on the patch grid, or the image cannot be normalised.
    """
    dim = image.GetDimension()
    size = np.array(patch_shape(patch_size, dim))
    if np.prod(size) > MAX_PATCH_VOXELS:
        raise ValueError(f"preprocess.patch_size {size.tolist()} makes {int(np.prod(size)):,} voxels per patch, more "
                         f"than the limit of {MAX_PATCH_VOXELS:,}: use a smaller patch (or a coarser "
                         "preprocess.spacing so the ROI fits a smaller one)")
    method = resolve_normalisation(normalisation, modality)
    image, scale, shift = normalise_image(image, method, percentiles)
    if modality == "CT":
        pad = CT_AIR_HU * scale + shift
    else:
        stats = sitk.MinimumMaximumImageFilter()
        stats.Execute(image)
        pad = stats.GetMinimum()
    native = np.array(image.GetSpacing())
    target = target_spacing(spacing, dim)
    truncated = False
    if mode == "crop" and (target is None or np.allclose(native, target)):
        first, extent = roi_box(mask)
        truncated = bool((extent > size).any())
        if truncated and not allow_truncation:
            raise RoiTruncatedError(_truncation_message(extent, size, native))
        start = _centred_start(first, extent, size)
        img_arr = crop_on_lattice(image, start, size, pad)
        msk_arr = crop_on_lattice(mask, start, size, 0, dtype=np.uint8)
        out_spacing = tuple(float(s) for s in native)
    elif mode in ("crop", "fit"):
        if mode == "crop":
            first, extent = _resampled_window(image, mask, target, size, mask_interpolation)
            truncated = bool((extent > size).any())
            if truncated and not allow_truncation:
                raise RoiTruncatedError(_truncation_message(extent, size, target))
            grid = _lattice_grid(image, target, _centred_start(first, extent, size), size)
        else:
            grid = fit_grid(mask, size, margin)
        if interpolator not in INTERPOLATORS:
            raise ValueError(f"unknown interpolator {interpolator!r}; use one of {list(INTERPOLATORS)}")
        source = _support(image, grid, SUPPORT_MARGIN[interpolator])
        resampled = sitk.Resample(source, grid, sitk.Transform(), INTERPOLATORS[interpolator], float(pad),
                                  image.GetPixelID())
        img_arr = sitk.GetArrayFromImage(resampled).astype(np.float32)
        msk_arr = _resample_mask(mask, grid, mask_interpolation)
        out_spacing = (1.0,) * dim if mode == "fit" else tuple(float(s) for s in grid.GetSpacing())
    else:
        raise ValueError(f"unknown patch mode {mode!r}; use crop or fit")
    if resegment_range is not None:
        lo, hi = (float(v) * scale + shift for v in resegment_range)
        msk_arr = (msk_arr.astype(bool) & (img_arr >= lo) & (img_arr <= hi)).astype(np.uint8)
    if not msk_arr.any():
        raise ValueError("the ROI vanished on the patch grid (smaller than one patch voxel, or emptied by "
                         "preprocess.resegment_range)")
    img_arr = normalise_patch(img_arr, msk_arr, method)
    return Patch(img_arr, msk_arr, out_spacing, roi_truncated=truncated)


def perceptual_hash(image: np.ndarray) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) of a patch, as 16 hex digits.

    Robust to contrast changes and, because the patch is the ROI's neighbourhood,
    to different crops of the same slice. 3D patches hash their central slice.
    """
    plane = image[image.shape[0] // 2] if image.ndim == 3 else image
    lo, hi = np.percentile(plane, [1, 99])
    scaled = np.clip((plane - lo) / ((hi - lo) or 1.0), 0, 1)
    return str(imagehash.phash(Image.fromarray((scaled * 255).astype(np.uint8))))


def patch_options(preprocess: dict) -> dict:
    """Keyword arguments of :func:`extract_patch` from the config section ``preprocess``."""
    return {
        "patch_size": preprocess["patch_size"], "mode": preprocess["patch_mode"], "spacing": preprocess["spacing"],
        "margin": preprocess["margin"], "interpolator": preprocess["interpolator"],
        "mask_interpolation": preprocess["mask_interpolation"], "normalisation": preprocess["normalisation"],
        "percentiles": tuple(preprocess["percentiles"]), "resegment_range": preprocess["resegment_range"],
        "allow_truncation": preprocess["allow_truncation"], "orientation": preprocess["orientation"],
    }


ORIENTATIONS = ("stored", "LPS")
"""``preprocess.orientation``: keep the files' voxel order, or reorient volumes to LPS (:func:`orient`)."""


def orientation_code(image: sitk.Image) -> str:
    """The DICOM orientation code of a 3D image's voxel axes (e.g. ``LPS``, ``RAS``); ``""`` in 2D."""
    if image.GetDimension() != 3:
        return ""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def orient(image: sitk.Image, orientation: str) -> sitk.Image:
    """A 3D image in the voxel order ``orientation`` asks for (:data:`ORIENTATIONS`); 2D unchanged.

    ``LPS`` permutes and flips the voxel axes (``sitk.DICOMOrient``) so that
    patch axis ``(x, y, z)`` is left-right, posterior-anterior,
    inferior-superior whatever the file's order: a per-axis ``patch_size`` such
    as ``[64, 64, 16]`` puts its 16 on the slice axis, and generators never see
    part of a cohort mirrored. No voxel is interpolated; an oblique direction
    keeps its obliquity, its axes going to the nearest canonical ones. It is not
    the default because PyRadiomics' surface mesh (marching cubes) depends on the
    voxel order: shape features of a reoriented volume can differ from
    PyRadiomics' on the file by about 0.5% (every other feature class agrees to
    1e-6).
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; use one of {list(ORIENTATIONS)}")
    if image.GetDimension() != 3 or orientation == "stored":
        return image
    return sitk.DICOMOrient(image, orientation)


def read_case(row, mask_label: int | None, orientation: str = "stored") -> tuple[sitk.Image, sitk.Image, str]:
    """A cohort row's image (stored pixel type), binary mask (or derived ROI) and ROI source, in ``orientation``."""
    image = read_image(row.image, pixel_type=None)
    if row.mask:
        mask = binarise_mask(read_image(row.mask, pixel_type=sitk.sitkFloat64), mask_label)
        mask.CopyInformation(image)
        return orient(image, orientation), orient(mask, orientation), "mask"
    image = orient(image, orientation)
    return image, derive_roi(image), ROI_METHOD


def duplicate_signature(image: sitk.Image) -> tuple[str, str]:
    """``(dup_hash, dup_thumb)`` of a case's image as read (:func:`read_case`): the case index's near-duplicate columns.

    The signature is of the original image, not of the derived patch (two copies of one
    slice can get different ROIs). A 2D image's ``dup_thumb`` is its framed rank thumbnail
    (the window rule); a volume's is its 3D foreground thumbnail with the voxel size in mm
    (:func:`radaug.duplicates.volume_thumbnail`, the volume rule), read in LPS.
    ``tests/unit/test_duplicates_br35h.py`` signs real images through this.
    """
    if image.GetDimension() == 3:
        volume, spacing = duplicates.canonical_volume(image)
        return duplicates.signature(volume), duplicates.encode_volume(*duplicates.volume_thumbnail(volume, spacing))
    return duplicates.thumbnail_signature(duplicates.canonical_array(image))


def preprocess_case(row, *, mask_label: int | None, orientation: str = "stored", **options) -> tuple[Patch, dict]:
    """Read one cohort row, build its ROI and patch, and describe what was done.

    ``orientation`` is ``preprocess.orientation`` (:func:`orient`); ``options`` are
    :func:`extract_patch`'s keyword arguments (:func:`patch_options` gives both).
    The record's ``orientation`` is the voxel order the patch was cut in.
    """
    image, mask, roi_source = read_case(row, mask_label, orientation)
    patch = extract_patch(image, mask, modality=row.modality, **options)
    dup_hash, dup_thumb = duplicate_signature(image)
    record = {
        "case_id": row.case_id, "patient_id": row.patient_id, "label": row.label,
        "modality": row.modality, "domain": row.domain, "group": row.group,
        "image_sha256": row.image_sha256, "mask_sha256": row.mask_sha256,
        "content_sha256": sha256_array(np.stack([patch.image, patch.mask.astype(np.float32)])),
        "phash": perceptual_hash(patch.image),
        "dup_hash": dup_hash, "dup_thumb": dup_thumb,
        "roi_source": roi_source, "roi_voxels": int(patch.mask.sum()),
        "roi_truncated": patch.roi_truncated,
        "normalisation": resolve_normalisation(options.get("normalisation", "auto"), row.modality),
        "spacing": "x".join(f"{s:.6g}" for s in patch.spacing),
        "orientation": orientation_code(image),
    }
    if record["normalisation"] == standardise.METHOD:  # only then: other studies' case indexes stay as they were
        record[standardise.LANDMARKS_COLUMN] = standardise.landmarks_text(
            standardise.case_landmarks(sitk.GetArrayViewFromImage(image)))
    return patch, record


def batch_members(cohort: pd.DataFrame, batch: int, n_batches: int) -> pd.DataFrame:
    """Cases of one batch: every ``n_batches``-th case of the cohort sorted by case_id."""
    ordered = cohort.sort_values("case_id", ignore_index=True)
    return ordered.iloc[batch::n_batches]


def preprocess_batch(cohort: pd.DataFrame, batch: int, n_batches: int, **options) -> tuple[pd.DataFrame, dict]:
    """Preprocess the cases of one batch.

    Returns the per-case table and the arrays ``case_id`` (str), ``image``
    (float32, (N, *patch)) and ``mask`` (uint8) to store with
    :func:`radaug.io.save_arrays`.

    Raises
    ------
    ManifestError
        Naming the case that could not be preprocessed.
    """
    records, images, masks = [], [], []
    for row in batch_members(cohort, batch, n_batches).itertuples(index=False):
        try:
            patch, record = preprocess_case(row, **options)
        except (ValueError, OSError, RuntimeError) as exc:
            raise ManifestError(f"case '{row.case_id}' ({row.image}): preprocessing failed: {exc}") from exc
        records.append(record)
        images.append(patch.image)
        masks.append(patch.mask)
    table = pd.DataFrame.from_records(records)
    arrays = {
        "case_id": np.array([r["case_id"] for r in records], dtype=str),
        "image": np.stack(images) if images else np.zeros((0,), np.float32),
        "mask": np.stack(masks) if masks else np.zeros((0,), np.uint8),
    }
    return table, arrays


def load_patches(paths, case_ids=None, standardisation=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load patches from batch archives, optionally only the given cases (in that order).

    ``standardisation`` (a fold's :class:`radaug.standardise.Standardisation`, from
    :func:`radaug.standardise.for_fold`; None for every other normalisation) maps
    the images into the fold's standard scale; masks are never changed.
    Returns ``(case_id, image, mask)`` arrays.
    """
    parts = [load_arrays(p) for p in paths]
    ids = np.concatenate([p["case_id"] for p in parts])
    images = np.concatenate([p["image"] for p in parts])
    masks = np.concatenate([p["mask"] for p in parts])
    if case_ids is None:
        if standardisation is not None:
            images = standardisation.apply(ids, images)
        return ids, images, masks
    position = {c: i for i, c in enumerate(ids)}
    missing = [c for c in case_ids if c not in position]
    if missing:
        raise KeyError(f"cases not found in the preprocessed batches: {missing[:5]}")
    take = np.array([position[c] for c in case_ids], dtype=int)
    ids, images, masks = ids[take], images[take], masks[take]
    if standardisation is not None:
        images = standardisation.apply(ids, images)
    return ids, images, masks


def build_index(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The study's case index from the per-batch tables.

    Every later stage assumes one patch geometry per study, so cases must share
    dimensionality, patch spacing and (3D) the voxel order of the patches.

    Raises
    ------
    ConfigError
        If patch spacings differ (set ``preprocess.spacing`` or use fit mode), or
        volumes are stored in different orientations (set ``preprocess.orientation: LPS``).
    """
    index = pd.concat(tables, ignore_index=True).sort_values("case_id", ignore_index=True)
    batch_of = {case: i for i, t in enumerate(tables) for case in t["case_id"]}
    index["batch"] = index["case_id"].map(batch_of)
    spacings = index["spacing"].unique()
    if len(spacings) > 1:
        examples = index.drop_duplicates("spacing").head(3)
        detail = ", ".join(f"case '{c}' {s}" for c, s in zip(examples["case_id"], examples["spacing"]))
        raise ConfigError(
            f"cases have different patch spacings ({detail}); set config key 'preprocess.spacing' "
            "to resample them to one spacing, or use preprocess.patch_mode: fit."
        )
    codes = index["orientation"].astype(object).fillna("") if "orientation" in index else pd.Series([""])
    if codes.nunique() > 1:
        examples = index.assign(orientation=codes).drop_duplicates("orientation").head(3)
        detail = ", ".join(f"case '{c}' {o}" for c, o in zip(examples["case_id"], examples["orientation"]))
        raise ConfigError(
            f"volumes are stored in different voxel orientations ({detail}): their patches would put "
            "different anatomical axes on the same patch axis. Set config key 'preprocess.orientation: LPS' "
            "to reorient every volume first (no interpolation), or store the images alike."
        )
    return index
