"""Elastic deformation by a cubic B-spline displacement field, without folding."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .base import RandomTransform, Transform, padding_value, resample, to_sitk


def _bspline_transform(shape, spacing, control_points: int, coefficients) -> sitk.BSplineTransform:
    reference = to_sitk(np.zeros(shape, np.float32), spacing)
    mesh = [max(1, control_points - 3)] * len(spacing)  # a cubic mesh of m cells has m + 3 control points
    transform = sitk.BSplineTransformInitializer(reference, mesh, 3)
    coefficients = np.asarray(coefficients, dtype=float).ravel()
    if coefficients.size != len(transform.GetParameters()):
        raise ValueError(f"ElasticDeformation: {coefficients.size} coefficients, the {control_points}-point "
                         f"grid needs {len(transform.GetParameters())}")
    transform.SetParameters(coefficients.tolist())
    return transform


def displacement_field(shape, spacing, transform: sitk.Transform) -> sitk.Image:
    """A transform's displacement ``u(x)`` at every voxel of the patch grid (vector image, mm)."""
    reference = to_sitk(np.zeros(shape, np.float32), spacing)
    return sitk.TransformToDisplacementField(transform, sitk.sitkVectorFloat64, reference.GetSize(),
                                             reference.GetOrigin(), reference.GetSpacing(), reference.GetDirection())


def jacobian_determinant(shape, spacing, transform: sitk.Transform | None = None, *, field: sitk.Image | None = None
                         ) -> np.ndarray:
    """Jacobian determinant of ``x ↦ x + u(x)`` of the actual displacement field on the patch grid."""
    if field is None:
        field = displacement_field(shape, spacing, transform)
    return sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(field))


class ElasticDeformation(Transform):
    """Deform image and mask by a cubic B-spline displacement field.

    Parameters
    ----------
    control_points
        Control points per axis (≥ 4: a cubic B-spline needs at least one cell).
    coefficients
        Control-point displacements in mm, in SimpleITK's BSplineTransform
        parameter order (all x components, then y[, then z]).
    interpolation, padding
        As for :class:`~radaug.augment.affine.Affine`.
    """

    name = "ElasticDeformation"

    def __init__(self, control_points: int, coefficients, interpolation: str = "linear", padding: float = 0.0):
        if control_points < 4:
            raise ValueError(f"ElasticDeformation: control_points must be >= 4, got {control_points}")
        super().__init__(control_points=int(control_points), coefficients=list(np.ravel(coefficients)),
                         interpolation=interpolation, padding=float(padding))

    def sitk_transform(self, shape, spacing) -> sitk.BSplineTransform:
        return _bspline_transform(shape, spacing, self.params["control_points"], self.params["coefficients"])

    def field(self, shape, spacing) -> sitk.Image:
        """The dense displacement field on the patch grid (computed once per grid and kept)."""
        key = (tuple(shape), tuple(spacing))
        if getattr(self, "_field_key", None) != key:
            self._field = displacement_field(shape, spacing, self.sitk_transform(shape, spacing))
            self._field_key = key
        return self._field

    def apply(self, image, mask, spacing):
        # Resampling through the dense field evaluates the B-spline once per voxel (shared with the
        # Jacobian check) instead of once per voxel and image; at grid points it is the same map.
        dense = sitk.DisplacementFieldTransform(sitk.Image(self.field(image.shape, spacing)))  # takes a copy
        return resample(image, mask, spacing, dense, interpolation=self.params["interpolation"],
                        padding=self.params["padding"])


class RandomElasticDeformation(RandomTransform):
    """Random B-spline deformation whose field neither folds nor tears.

    Each control-point displacement component is drawn as
    ``u ~ U(−max_displacement_mm, max_displacement_mm)``. The Jacobian
    determinant of the resulting dense field is computed on the patch grid
    (:func:`jacobian_determinant`); a draw with ``min det J <= min_jacobian``
    (folding when ≤ 0, extreme local compression otherwise) is rejected and
    redrawn, counted in the returned rejection number. This is the failure mode
    TorchIO's documentation warns about (large displacements on a fine grid).

    Parameters
    ----------
    control_points
        Control points per axis (≥ 4).
    max_displacement_mm
        Bound of each control-point displacement component.
    min_jacobian
        Smallest accepted Jacobian determinant (> 0).
    interpolation, padding
        As for :class:`ElasticDeformation`; ``padding=None`` takes the image minimum.
    max_attempts
        Draws before giving up with ``RuntimeError``.
    """

    def __init__(self, control_points: int = 5, max_displacement_mm: float = 2.0, min_jacobian: float = 0.5,
                 interpolation: str = "linear", padding: float | None = None, max_attempts: int = 100):
        if control_points < 4:
            raise ValueError(f"RandomElasticDeformation: control_points must be >= 4, got {control_points}")
        if max_displacement_mm < 0:
            raise ValueError(f"RandomElasticDeformation: max_displacement_mm must be >= 0, got {max_displacement_mm}")
        if min_jacobian <= 0:
            raise ValueError(f"RandomElasticDeformation: min_jacobian must be > 0, got {min_jacobian}")
        if max_attempts < 1:
            raise ValueError(f"RandomElasticDeformation: max_attempts must be >= 1, got {max_attempts}")
        self.control_points, self.max_displacement_mm = control_points, max_displacement_mm
        self.min_jacobian, self.interpolation = min_jacobian, interpolation
        self.padding, self.max_attempts = padding, max_attempts

    def sample(self, rng, image, mask, spacing):
        n = self.control_points ** len(spacing) * len(spacing)
        for attempt in range(self.max_attempts):
            coefficients = rng.uniform(-self.max_displacement_mm, self.max_displacement_mm, size=n)
            twin = ElasticDeformation(self.control_points, coefficients, self.interpolation,
                                      padding_value(self.padding, image))
            if jacobian_determinant(image.shape, spacing, field=twin.field(image.shape, spacing)).min() \
                    > self.min_jacobian:
                return twin, attempt
        raise RuntimeError(f"RandomElasticDeformation: no field with Jacobian > {self.min_jacobian} in "
                           f"{self.max_attempts} attempts; lower augmentation.elastic.max_displacement_mm")
