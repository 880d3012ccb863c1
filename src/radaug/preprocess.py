"""Preprocessing of real cases: ROI, resampling, modality-aware intensities, patches.

A case becomes a fixed-size patch (image + binary mask), the representation every
later stage uses (generators, features, validation), so real, augmented and
synthetic data are always measured alike. The patch grid is built in physical
space and the image is resampled onto it in one step:

* ``crop``: a ``patch_size`` grid at the study spacing, centred on the ROI's
  bounding box (lesion plus context; the ROI must fit, else it is recorded as
  truncated).
* ``fit``: the ROI bounding box plus a margin, scaled into the patch
  (nominal spacing 1.0; shape features are then in patch-voxel units).

Intensities: CT keeps Hounsfield units (padding with air, -1000 HU); MR and
other modalities are z-scored within the ROI (padding with the image minimum
before normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image

from . import duplicates
from .errors import ConfigError, ManifestError
from .images import read_image
from .io import load_arrays, sha256_array

CT_AIR_HU = -1000.0
ROI_METHOD = "otsu foreground; holes filled; largest connected component"


@dataclass(frozen=True)
class Patch:
    image: np.ndarray  # float32, (y, x) or (z, y, x)
    mask: np.ndarray  # uint8 {0, 1}
    spacing: tuple[float, ...]  # (x, y[, z]) in mm, as SimpleITK orders it
    roi_truncated: bool


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


def binarise_mask(mask: sitk.Image, mask_label: int | None) -> sitk.Image:
    value = 1 if mask_label is None else mask_label
    return sitk.Cast(sitk.BinaryThreshold(mask, value - 0.5, value + 0.5, 1, 0), sitk.sitkUInt8)


def patch_grid(mask: sitk.Image, *, patch_size: int, mode: str, spacing: float | None, margin: float) -> sitk.Image:
    """The reference grid of a case's patch, in the mask's orientation."""
    dim = mask.GetDimension()
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    x0, *rest = stats.GetBoundingBox(1)  # index start (dim values) then size (dim values)
    start = np.array([x0, *rest[: dim - 1]], dtype=float)
    size = np.array(rest[dim - 1:], dtype=float)
    native = np.array(mask.GetSpacing())
    direction = np.array(mask.GetDirection()).reshape(dim, dim)
    centre_index = start + (size - 1) / 2.0
    centre = np.array(mask.TransformContinuousIndexToPhysicalPoint(centre_index.tolist()))
    if mode == "fit":
        extent = (size * native).max() * (1 + 2 * margin)
        new_spacing = np.full(dim, extent / patch_size)
    elif mode == "crop":
        new_spacing = np.full(dim, spacing) if spacing else native
    else:
        raise ValueError(f"unknown patch mode {mode!r}")
    half = (patch_size - 1) / 2.0 * new_spacing
    origin = centre - direction @ half
    grid = sitk.Image([patch_size] * dim, sitk.sitkUInt8)
    grid.SetSpacing(new_spacing.tolist())
    grid.SetOrigin(origin.tolist())
    grid.SetDirection(direction.ravel().tolist())
    return grid


def extract_patch(
    image: sitk.Image,
    mask: sitk.Image,
    *,
    modality: str,
    patch_size: int,
    mode: str = "crop",
    spacing: float | None = None,
    margin: float = 0.1,
) -> Patch:
    """Resample image (linear) and mask (nearest) onto the case's patch grid and set intensities."""
    grid = patch_grid(mask, patch_size=patch_size, mode=mode, spacing=spacing, margin=margin)
    array = sitk.GetArrayViewFromImage(image)
    pad = CT_AIR_HU if modality == "CT" else float(array.min())
    img = sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, pad, sitk.sitkFloat32)
    msk = sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    img_arr = sitk.GetArrayFromImage(img).astype(np.float32)
    msk_arr = sitk.GetArrayFromImage(msk).astype(np.uint8)
    if not msk_arr.any():
        raise ValueError("the ROI vanished when resampled onto the patch grid (ROI smaller than one patch voxel)")
    img_arr = normalise_intensity(img_arr, msk_arr, modality)
    out_spacing = (1.0,) * image.GetDimension() if mode == "fit" else tuple(grid.GetSpacing())
    return Patch(img_arr, msk_arr, out_spacing, roi_truncated=not _roi_inside(mask, grid))


def _roi_inside(mask: sitk.Image, grid: sitk.Image) -> bool:
    """Whether every corner of the ROI's bounding box falls inside the patch grid."""
    dim = mask.GetDimension()
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    box = stats.GetBoundingBox(1)
    start, size = np.array(box[:dim]), np.array(box[dim:])
    lo, hi = start - 0.5, start + size - 0.5  # voxel edges
    for corner in np.array(np.meshgrid(*zip(lo, hi))).T.reshape(-1, dim):
        point = mask.TransformContinuousIndexToPhysicalPoint(corner.tolist())
        index = np.array(grid.TransformPhysicalPointToContinuousIndex(point))
        if (index < -0.5 - 1e-6).any() or (index > np.array(grid.GetSize()) - 0.5 + 1e-6).any():
            return False
    return True


def normalise_intensity(image: np.ndarray, mask: np.ndarray, modality: str) -> np.ndarray:
    """CT: unchanged (Hounsfield units). MR/other: z-score with the ROI's mean and SD."""
    if modality == "CT":
        return image.astype(np.float32)
    roi = image[mask > 0]
    sd = float(roi.std())
    return ((image - float(roi.mean())) / (sd if sd > 0 else 1.0)).astype(np.float32)


def perceptual_hash(image: np.ndarray) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) of a patch, as 16 hex digits.

    Robust to contrast changes and, because the patch is the ROI's neighbourhood,
    to different crops of the same slice. 3D patches hash their central slice.
    """
    plane = image[image.shape[0] // 2] if image.ndim == 3 else image
    lo, hi = np.percentile(plane, [1, 99])
    scaled = np.clip((plane - lo) / ((hi - lo) or 1.0), 0, 1)
    return str(imagehash.phash(Image.fromarray((scaled * 255).astype(np.uint8))))


def preprocess_case(row, *, patch_size: int, patch_mode: str, spacing: float | None, margin: float,
                    mask_label: int | None) -> tuple[Patch, dict]:
    """Read one cohort row, build its ROI and patch, and describe what was done."""
    image = read_image(row.image)
    if row.mask:
        mask = binarise_mask(read_image(row.mask, pixel_type=sitk.sitkFloat64), mask_label)
        mask.CopyInformation(image)
        roi_source = "mask"
    else:
        mask = derive_roi(image)
        roi_source = ROI_METHOD
    patch = extract_patch(image, mask, modality=row.modality, patch_size=patch_size,
                          mode=patch_mode, spacing=spacing, margin=margin)
    record = {
        "case_id": row.case_id, "patient_id": row.patient_id, "label": row.label,
        "modality": row.modality, "domain": row.domain, "group": row.group,
        "image_sha256": row.image_sha256, "mask_sha256": row.mask_sha256,
        "content_sha256": sha256_array(np.stack([patch.image, patch.mask.astype(np.float32)])),
        "phash": perceptual_hash(patch.image),
        "dup_hash": duplicates.signature(duplicates.canonical_array(image)),  # of the original image
        "roi_source": roi_source, "roi_voxels": int(patch.mask.sum()),
        "roi_truncated": patch.roi_truncated,
        "spacing": "x".join(f"{s:.6g}" for s in patch.spacing),
    }
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


def load_patches(paths, case_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load patches from batch archives, optionally only the given cases (in that order).

    Returns ``(case_id, image, mask)`` arrays.
    """
    parts = [load_arrays(p) for p in paths]
    ids = np.concatenate([p["case_id"] for p in parts])
    images = np.concatenate([p["image"] for p in parts])
    masks = np.concatenate([p["mask"] for p in parts])
    if case_ids is None:
        return ids, images, masks
    position = {c: i for i, c in enumerate(ids)}
    missing = [c for c in case_ids if c not in position]
    if missing:
        raise KeyError(f"cases not found in the preprocessed batches: {missing[:5]}")
    take = np.array([position[c] for c in case_ids], dtype=int)
    return ids[take], images[take], masks[take]


def build_index(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The study's case index from the per-batch tables.

    Every later stage assumes one patch geometry per study, so cases must share
    dimensionality and patch spacing.

    Raises
    ------
    ConfigError
        If patch spacings differ (set ``preprocess.spacing`` or use fit mode).
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
    return index
