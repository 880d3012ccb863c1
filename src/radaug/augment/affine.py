"""Affine map: rotation, translation, anisotropic scaling and shear as one matrix."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .base import RandomTransform, Transform, grid_centre, padding_value, resample


def rotation_matrix(angles_deg) -> np.ndarray:
    """Rotation in physical (x, y[, z]) order: one angle in 2D; about x, y, z (applied in that order) in 3D."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=float))
    if angles.size == 1:
        c, s = np.cos(angles[0]), np.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine_matrix(rotation_deg, scales, shear) -> np.ndarray:
    """``M = R · H · S``: rotation, unit upper-triangular shear ``H``, diagonal scaling ``S``.

    ``det(M) = prod(scales)`` because ``det R = det H = 1``.
    """
    dim = len(scales)
    shear_matrix = np.eye(dim)
    shear_matrix[np.triu_indices(dim, 1)] = shear
    return rotation_matrix(rotation_deg) @ shear_matrix @ np.diag(scales)


class Affine(Transform):
    """Move the content by ``x' = M (x − c) + c + t`` about the patch centre ``c``.

    Parameters
    ----------
    matrix
        ``M`` in physical (x, y[, z]) order, row-major ``dim × dim``.
    translation_mm
        ``t`` in mm.
    interpolation
        ``"linear"`` or ``"bspline"`` for the image; the mask always uses nearest neighbour.
    padding
        Value of voxels mapped from outside the patch (air, −1000 HU, for CT; the
        background for MR).

    Notes
    -----
    Volumes scale by ``det(M)``; SimpleITK resamples with the inverse map
    ``p ↦ M⁻¹ (p − c − t) + c``.
    """

    name = "Affine"

    def __init__(self, matrix, translation_mm, interpolation: str = "linear", padding: float = 0.0):
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(translation_mm):
            raise ValueError(f"Affine: matrix {matrix.shape} and translation {translation_mm} do not match")
        if abs(np.linalg.det(matrix)) < 1e-9:
            raise ValueError("Affine: the matrix is singular")
        super().__init__(matrix=matrix, translation_mm=list(translation_mm), interpolation=interpolation,
                         padding=float(padding))

    def sitk_transform(self, shape, spacing) -> sitk.AffineTransform:
        matrix = np.asarray(self.params["matrix"], dtype=float)
        inverse = np.linalg.inv(matrix)
        transform = sitk.AffineTransform(len(spacing))
        transform.SetMatrix(inverse.ravel().tolist())
        transform.SetCenter(grid_centre(shape, spacing).tolist())
        transform.SetTranslation((-inverse @ np.asarray(self.params["translation_mm"], dtype=float)).tolist())
        return transform

    def apply(self, image, mask, spacing):
        return resample(image, mask, spacing, self.sitk_transform(image.shape, spacing),
                        interpolation=self.params["interpolation"], padding=self.params["padding"])


class RandomAffine(RandomTransform):
    """Random affine map with a bounded volume change.

    Per axis: rotation angle ``θ ~ U(−rotation_deg, rotation_deg)`` (one angle in
    2D, three in 3D), translation ``t ~ U(−translation_mm, translation_mm)``,
    scale ``s ~ U(1 − scale, 1 + scale)``; per off-diagonal element shear
    ``h ~ U(−shear, shear)``. A draw with ``|det(M) − 1| > max_volume_change`` is
    rejected and redrawn (at most ``max_attempts`` draws); the number of
    rejected draws is returned with the transform.

    Parameters
    ----------
    rotation_deg, translation_mm, scale, shear
        Bounds of the sampling distributions above (0 disables that part).
    max_volume_change
        Largest accepted ``|det(M) − 1|``, e.g. 0.2 for ±20 % volume.
    interpolation
        Image interpolation, ``"linear"`` or ``"bspline"``.
    padding
        Fill value outside the patch (see :class:`Affine`); None takes the image
        minimum (the background of an MR patch).
    max_attempts
        Draws before giving up with ``RuntimeError``.
    """

    def __init__(self, rotation_deg: float = 10.0, translation_mm: float = 2.0, scale: float = 0.1,
                 shear: float = 0.05, max_volume_change: float = 0.2, interpolation: str = "linear",
                 padding: float | None = None, max_attempts: int = 100):
        for key, value in (("rotation_deg", rotation_deg), ("translation_mm", translation_mm), ("shear", shear)):
            if value < 0:
                raise ValueError(f"RandomAffine: {key} must be >= 0, got {value}")
        if not 0 <= scale < 1:
            raise ValueError(f"RandomAffine: scale must be in [0, 1), got {scale}")
        if max_volume_change <= 0:
            raise ValueError(f"RandomAffine: max_volume_change must be > 0, got {max_volume_change}")
        if max_attempts < 1:
            raise ValueError(f"RandomAffine: max_attempts must be >= 1, got {max_attempts}")
        self.rotation_deg, self.translation_mm, self.scale, self.shear = rotation_deg, translation_mm, scale, shear
        self.max_volume_change, self.interpolation = max_volume_change, interpolation
        self.padding, self.max_attempts = padding, max_attempts

    def sample(self, rng, image, mask, spacing):
        dim = len(spacing)
        for attempt in range(self.max_attempts):
            angles = rng.uniform(-self.rotation_deg, self.rotation_deg, size=1 if dim == 2 else 3)
            translation = rng.uniform(-self.translation_mm, self.translation_mm, size=dim)
            scales = rng.uniform(1 - self.scale, 1 + self.scale, size=dim)
            shear = rng.uniform(-self.shear, self.shear, size=dim * (dim - 1) // 2)
            matrix = affine_matrix(angles, scales, shear)
            if abs(np.linalg.det(matrix) - 1) <= self.max_volume_change:
                return Affine(matrix, translation, self.interpolation, padding_value(self.padding, image)), attempt
        raise RuntimeError(f"RandomAffine: no draw within |det - 1| <= {self.max_volume_change} in "
                           f"{self.max_attempts} attempts; lower augmentation.affine.scale")
