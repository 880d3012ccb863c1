"""Reading medical images: NIfTI, NRRD, MHA, DICOM series folders, PNG/JPEG.

All readers return a scalar SimpleITK image of float32 intensities (colour
photographs are converted to luminance) and drop singleton trailing axes, so a
2D image stored as a 1-slice volume is 2D.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# ITU-R BT.601 luma weights, as used by PIL's "L" conversion.
_LUMA = (0.299, 0.587, 0.114)


GEOMETRY_TOLERANCE = 1e-4
"""Spacing, origin and direction of an image and its mask may differ by this much per component,
absolutely and relatively (``numpy.allclose(a, b, atol=tol, rtol=tol)``): float noise of writers."""


class UnsupportedDimensionError(OSError):
    """The file is an image, but not a 2D or 3D one (e.g. a 4D time series)."""


def read_image(path: str | Path, *, pixel_type=sitk.sitkFloat32) -> sitk.Image:
    """Read an image file or a DICOM series folder as a scalar image.

    ``pixel_type`` is the SimpleITK pixel type to cast to; ``None`` keeps the
    stored one (as PyRadiomics reads files), which preprocessing needs to
    resample exactly as PyRadiomics does.

    Raises
    ------
    UnsupportedDimensionError
        The image has more than three dimensions of size above 1 (a 4D series).
    OSError
        If SimpleITK cannot read it (message from SimpleITK included).
    """
    path = Path(path)
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        series = reader.GetGDCMSeriesIDs(str(path))
        if not series:
            raise OSError(f"{path} is a folder without a DICOM series")
        if len(series) > 1:
            raise OSError(f"{path} holds {len(series)} DICOM series; give one series per folder")
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
        image = reader.Execute()
    else:
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise OSError(f"SimpleITK cannot read {path}: {str(exc).strip().splitlines()[-1]}") from None
    image = _three_dimensions(image, path)
    image = _to_scalar(image)
    image = _squeeze(image)
    return image if pixel_type is None else sitk.Cast(image, pixel_type)


def _three_dimensions(image: sitk.Image, path: Path) -> sitk.Image:
    """A 4D+ image whose extra axes have size 1 as 3D; otherwise UnsupportedDimensionError."""
    dim = image.GetDimension()
    if dim <= 3:
        return image
    size = list(image.GetSize())
    if any(n != 1 for n in size[3:]):
        raise UnsupportedDimensionError(
            f"{path} is a {dim}D image of size {tuple(size)}; radaug reads 2D and 3D images. Extract the one "
            "3D volume to analyse (e.g. a time point or echo: SimpleITK image[:, :, :, t], or fslroi) into its "
            "own file and list that file in the manifest"
        )
    return sitk.Extract(image, size[:3] + [0] * (dim - 3), [0] * dim)


def geometry(image: sitk.Image) -> dict:
    return {
        "size": tuple(image.GetSize()),
        "spacing": tuple(image.GetSpacing()),
        "origin": tuple(image.GetOrigin()),
        "direction": tuple(image.GetDirection()),
    }


def geometry_mismatch(a: dict, b: dict, *, tol: float = GEOMETRY_TOLERANCE) -> list[str]:
    """Names of the geometry fields in which two headers differ.

    Size must be equal; spacing, origin and direction may differ per component by
    ``tol`` absolutely plus ``tol`` relatively (:data:`GEOMETRY_TOLERANCE`), so
    float noise of different writers (e.g. 0.7 vs 0.70000005 mm) is not a mismatch.
    """
    diffs = []
    if a["size"] != b["size"]:
        return ["size"]
    for key in ("spacing", "origin", "direction"):
        if not np.allclose(a[key], b[key], atol=tol, rtol=tol):
            diffs.append(key)
    return diffs


def array_to_image(array: np.ndarray, spacing) -> sitk.Image:
    """Numpy array (z, y, x) or (y, x) to a SimpleITK image with the given spacing (x, y[, z])."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    return image


def _to_scalar(image: sitk.Image) -> sitk.Image:
    n = image.GetNumberOfComponentsPerPixel()
    if n == 1:
        return image
    channels = [sitk.Cast(sitk.VectorIndexSelectionCast(image, i), sitk.sitkFloat32) for i in range(n)]
    if n in (3, 4):  # RGB or RGBA photograph: luminance, alpha ignored
        return channels[0] * _LUMA[0] + channels[1] * _LUMA[1] + channels[2] * _LUMA[2]
    raise OSError(f"image has {n} components per pixel; radaug reads scalar or RGB(A) images")


def _squeeze(image: sitk.Image) -> sitk.Image:
    size = list(image.GetSize())
    if image.GetDimension() == 3 and size[2] == 1:
        return sitk.Extract(image, size[:2] + [0], [0, 0, 0])
    return image
