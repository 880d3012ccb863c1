"""Transform protocol shared by every augmentation and perturbation.

TorchIO-style split (Pérez-García et al. 2021, doi:10.1016/j.cmpb.2021.106236):
a *random* transform only samples parameters from a seeded
:class:`numpy.random.Generator` and returns its *deterministic twin*, a
:class:`Transform` whose ``params`` fully determine its output. The twin's
:meth:`Transform.record` is plain JSON, and :func:`transform_from_record`
rebuilds it, so every augmented sample can be re-created and explained.

Arrays follow the rest of radaug: numpy order ``(y, x)`` or ``(z, y, x)``,
spacing in SimpleITK order ``(x, y[, z])`` in mm, image float32, mask uint8 {0, 1}.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import SimpleITK as sitk

_REGISTRY: dict[str, type["Transform"]] = {}


class Transform:
    """A deterministic transform of an (image, mask) pair, fully described by ``params``."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __init__(self, **params):
        self.params = {k: _plain(v) for k, v in params.items()}

    def __call__(self, image: np.ndarray, mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image, dtype=np.float32)
        mask = np.asarray(mask, dtype=np.uint8)
        if image.shape != mask.shape or image.ndim not in (2, 3) or len(spacing) != image.ndim:
            raise ValueError(f"{self.name}: image {image.shape}, mask {mask.shape} and spacing {tuple(spacing)} "
                             "must describe one 2D or 3D grid")
        out_image, out_mask = self.apply(image, mask, tuple(float(s) for s in spacing))
        return np.asarray(out_image, dtype=np.float32), np.asarray(out_mask, dtype=np.uint8)

    def apply(self, image, mask, spacing):  # pragma: no cover - abstract
        raise NotImplementedError

    def record(self) -> dict:
        """``{"transform": name, **params}``: JSON-serialisable, enough to rebuild the transform."""
        return {"transform": self.name, **self.params}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


class RandomTransform:
    """Samples the parameters of a deterministic :class:`Transform`.

    ``sample`` returns the twin and how many draws were rejected by the
    transform's plausibility check before it was accepted.
    """

    def sample(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, spacing
               ) -> tuple[Transform, int]:  # pragma: no cover - abstract
        raise NotImplementedError


def transform_from_record(record: dict) -> Transform:
    """Rebuild a deterministic transform from :meth:`Transform.record`."""
    record = dict(record)
    name = record.pop("transform", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown transform {name!r} in record; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**record)


def seed_from(rng: np.random.Generator) -> int:
    """A recorded seed for a transform that draws its own noise."""
    return int(rng.integers(0, 2**31 - 1))


def to_sitk(array: np.ndarray, spacing) -> sitk.Image:
    """A SimpleITK image of a patch: origin 0, identity direction, the given spacing."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    return image


def grid_centre(shape, spacing) -> np.ndarray:
    """Physical centre (x, y[, z]) of a patch grid with origin 0."""
    size = np.array(shape[::-1], dtype=float)
    return (size - 1) / 2.0 * np.asarray(spacing, dtype=float)


def resample(image: np.ndarray, mask: np.ndarray, spacing, transform: sitk.Transform, *,
             interpolation: str, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample image (linear or B-spline) and mask (nearest, stays binary) through one map.

    ``transform`` maps output points to input points (SimpleITK's convention).
    """
    interpolators = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline}
    if interpolation not in interpolators:
        raise ValueError(f"interpolation must be one of {sorted(interpolators)}, got {interpolation!r}")
    ref = to_sitk(image, spacing)
    out = sitk.Resample(ref, ref, transform, interpolators[interpolation], float(padding), sitk.sitkFloat32)
    msk = sitk.Resample(to_sitk(mask, spacing), ref, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(msk)


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def padding_value(padding: float | None, image: np.ndarray) -> float:
    """The configured fill value, or the image minimum (the background of an MR patch) when None."""
    return float(image.min()) if padding is None else float(padding)
