"""Smooth multiplicative MR bias field (coil sensitivity / B1 inhomogeneity)."""

from __future__ import annotations

import itertools

import numpy as np

from .base import RandomTransform, Transform


def polynomial_terms(dim: int, order: int) -> list[tuple[int, ...]]:
    """Exponent tuples (x, y[, z]) of all monomials of total degree 1..order."""
    return [e for e in itertools.product(range(order + 1), repeat=dim) if 0 < sum(e) <= order]


def bias_field(shape, coefficients, order: int) -> np.ndarray:
    """``exp(Σ c_k · x^a y^b z^c)`` on normalised coordinates in [−1, 1] per axis."""
    dim = len(shape)
    axes = [np.linspace(-1, 1, n) if n > 1 else np.zeros(1) for n in shape[::-1]]  # x, y[, z]
    grids = np.meshgrid(*axes, indexing="ij")  # each indexed (x, y[, z])
    log_field = np.zeros(grids[0].shape)
    terms = polynomial_terms(dim, order)
    if len(coefficients) != len(terms):
        raise ValueError(f"BiasField: order {order} in {dim}D needs {len(terms)} coefficients, got {len(coefficients)}")
    for c, exponents in zip(coefficients, terms):
        log_field += c * np.prod([g ** e for g, e in zip(grids, exponents)], axis=0)
    return np.exp(log_field).transpose(*range(dim)[::-1])  # back to numpy (.., y, x) order


class BiasField(Transform):
    """Multiply the signal above the background by a smooth field ``exp(P(x))``.

    ``P`` is a polynomial of degree ``order`` without constant term (the
    form of TorchIO's and MONAI's bias-field augmentation, after Sudre et al.
    2017, doi:10.1007/978-3-319-66179-7_11).
    """

    name = "BiasField"

    def __init__(self, coefficients, order: int, background: float = 0.0):
        super().__init__(coefficients=list(coefficients), order=int(order), background=float(background))

    def apply(self, image, mask, spacing):
        b = self.params["background"]
        field = bias_field(image.shape, self.params["coefficients"], self.params["order"])
        return b + (image - b) * field.astype(np.float32), mask


class RandomBiasField(RandomTransform):
    """Each coefficient ``c ~ U(−max_coefficient, max_coefficient)``; background = image minimum."""

    def __init__(self, max_coefficient: float, order: int = 2):
        if max_coefficient < 0:
            raise ValueError(f"RandomBiasField: max_coefficient must be >= 0, got {max_coefficient}")
        if order < 1:
            raise ValueError(f"RandomBiasField: order must be >= 1, got {order}")
        self.max_coefficient, self.order = max_coefficient, order

    def sample(self, rng, image, mask, spacing):
        n = len(polynomial_terms(image.ndim, self.order))
        coefficients = rng.uniform(-self.max_coefficient, self.max_coefficient, size=n)
        return BiasField(coefficients, self.order, float(image.min())), 0
