"""In-fold shape model: plausible lesion masks for mask-conditioned image synthesis.

A mask-conditioned generator (``condition_on_mask``, :mod:`radaug.generative`)
synthesises the image for a given lesion mask. The masks come from a
:class:`ShapeModel` fitted on **one fold's training masks only**, per class, with
two sources:

* ``deformed``: a training mask of the class under the classical arm's spatial
  transforms (:func:`radaug.augment.spatial_augmentation`: an affine map with
  ``|det(A) - 1| <= augmentation.affine.max_volume_change`` and a B-spline
  deformation whose Jacobian determinant stays above
  ``augmentation.elastic.min_jacobian``; masks resampled by nearest neighbour).
  Its origin is the parent case and the transform chain, which
  :func:`radaug.augment.apply_chain` replays.
* ``ssm``: a statistical shape model in the style of Leventon, Grimson & Faugeras
  (2000, "Statistical shape influence in geodesic active contours", CVPR): the
  class's masks are centred (centroid moved to the patch centre by a whole-voxel
  shift), represented by their signed distance maps (mm, negative inside), and
  PCA of those maps keeps the leading modes that explain ``variance`` of their
  variance. A sample draws each mode's coefficient from a standard normal
  truncated to ``±max_sd`` SD, thresholds ``mean + Σ b_k σ_k φ_k`` at 0, keeps
  the largest connected component and moves it to the class's mean ROI
  position. Its origin is the coefficients and the model's sha256.

Each draw is a function of the fitted model and one seed, so the sampler's
recorded per-sample seed reproduces the mask (and :meth:`ShapeModel.replay`
rebuilds it from the recorded origin). :func:`fit_in_fold` refuses, before
fitting, masks of a case that is not a training case of the fold
(:func:`radaug.splits.check_training_input`); :func:`check_mask_parents` checks
the drawn parents again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from .augment.base import RandomTransform
from .augment.chain import apply_chain
from .augment.classical import compact_json, spatial_augmentation
from .errors import LeakageError
from .io import canonical_json, sha256_array, sha256_bytes
from .splits import check_training_input, fold_key

MASK_SOURCES = ("deformed", "ssm")
"""Where a shape-model mask comes from (the ``mask_origin`` of a synthetic sample)."""

ORIGIN_COLUMNS = ("mask_origin", "parent_case_id", "mask_record", "shape_model_sha256")
"""Columns a mask-conditioned sample adds to the synthetic sample table."""


@dataclass(frozen=True)
class ClassShapes:
    """The fitted shape data of one class.

    Attributes
    ----------
    case_ids
        The fold-training cases whose masks were fitted, in ``masks`` order.
    masks
        Their masks (uint8), the parents of ``deformed`` draws.
    mean
        Mean signed distance map of the centred masks (flattened, float32).
    modes
        (k, V) orthonormal PCA modes (float32); k may be 0.
    sd
        (k,) standard deviation of the maps along each mode (mm).
    explained
        (k,) share of the total variance each mode explains.
    offset
        Whole-voxel shift from the patch centre to the class's mean ROI centroid.
    """

    case_ids: tuple[str, ...]
    masks: np.ndarray
    mean: np.ndarray
    modes: np.ndarray
    sd: np.ndarray
    explained: np.ndarray
    offset: tuple[int, ...]


def signed_distance_map(mask: np.ndarray, spacing) -> np.ndarray:
    """Signed Euclidean distance in mm, negative inside: ``-d(voxel, background)`` inside, ``d(voxel, ROI)`` outside.

    Every ROI voxel is at most ``-min(spacing)`` and every background voxel at least
    ``+min(spacing)``, so thresholding at 0 gives the mask back exactly and the
    zero level lies half-way between the ROI's border voxels and their neighbours
    (:func:`radaug.augment.volume_adaptation.signed_distance` puts the border voxels
    themselves at 0, which suits ranking voxels, not thresholding an average).
    """
    sampling = tuple(float(s) for s in spacing)[::-1]  # numpy axis order
    inside = mask.astype(bool)
    return (ndimage.distance_transform_edt(~inside, sampling=sampling)
            - ndimage.distance_transform_edt(inside, sampling=sampling))


def _centroid_shift(mask: np.ndarray) -> np.ndarray:
    """Whole-voxel shift that moves the mask's centroid to the patch centre."""
    centre = (np.asarray(mask.shape) - 1) / 2.0
    return np.round(centre - np.argwhere(mask).mean(axis=0)).astype(int)


def _shift(mask: np.ndarray, shift) -> np.ndarray:
    return ndimage.shift(mask.astype(np.uint8), shift, order=0, mode="constant", cval=0)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a binary mask (empty stays empty; ties: the first)."""
    labelled, n = ndimage.label(mask)
    if n <= 1:
        return (labelled > 0).astype(np.uint8)
    sizes = np.bincount(labelled.ravel())[1:]
    return (labelled == 1 + int(np.argmax(sizes))).astype(np.uint8)


def _fit_class(case_ids: Sequence[str], masks: np.ndarray, spacing, variance: float) -> ClassShapes:
    centred = [_shift(m, _centroid_shift(m)) for m in masks]
    maps = np.stack([signed_distance_map(m, spacing).ravel() for m in centred]).astype(np.float64)
    mean = maps.mean(axis=0)
    centred_maps = maps - mean
    n = len(maps)
    offsets = np.stack([-_centroid_shift(m) for m in masks])
    offset = tuple(int(v) for v in np.round(offsets.mean(axis=0)))
    if n < 2:
        empty = np.zeros((0, mean.size), np.float32)
        return ClassShapes(tuple(case_ids), masks, mean.astype(np.float32), empty, np.zeros(0), np.zeros(0), offset)
    # PCA through the n x n Gram matrix: n is a few dozen masks, V up to 128^3 voxels.
    eigval, eigvec = np.linalg.eigh(centred_maps @ centred_maps.T)
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    total = eigval.clip(min=0).sum()
    keep = eigval > max(total, 1e-300) * 1e-9
    if total <= 0 or not keep.any():
        empty = np.zeros((0, mean.size), np.float32)
        return ClassShapes(tuple(case_ids), masks, mean.astype(np.float32), empty, np.zeros(0), np.zeros(0), offset)
    explained = eigval[keep] / total
    k = int(np.searchsorted(np.cumsum(explained), variance - 1e-12) + 1)
    k = min(k, int(keep.sum()))
    modes = (centred_maps.T @ eigvec[:, :k] / np.sqrt(eigval[:k])).T
    # A deterministic sign per mode: its largest-magnitude element is positive.
    signs = np.sign(modes[np.arange(k), np.abs(modes).argmax(axis=1)])
    modes *= signs[:, None]
    sd = np.sqrt(eigval[:k] / (n - 1))
    return ClassShapes(tuple(case_ids), masks, mean.astype(np.float32), modes.astype(np.float32), sd,
                       explained[:k], offset)


class ShapeModel:
    """Per-class lesion shapes of one fold's training masks: deformed real masks and a PCA shape model.

    Build with :meth:`fit` (or :func:`fit_in_fold`, which checks the fold first).

    Parameters
    ----------
    shapes
        Class name → :class:`ClassShapes`.
    spacing
        Patch spacing (x, y[, z]) in mm.
    deformations
        Random spatial transforms applied in order to a parent mask
        (:func:`radaug.augment.spatial_augmentation`).
    ssm_share
        Probability that a draw comes from the PCA shape model rather than a deformed mask.
    max_sd
        Bound of each mode's coefficient, in standard deviations.
    """

    def __init__(self, shapes: Mapping[str, ClassShapes], spacing, *, deformations: Sequence[RandomTransform] = (),
                 ssm_share: float = 0.5, max_sd: float = 2.0, variance: float = 0.95) -> None:
        if not 0 <= ssm_share <= 1:
            raise ValueError(f"ssm_share must be in [0, 1], got {ssm_share}")
        if not max_sd > 0:
            raise ValueError(f"max_sd must be > 0, got {max_sd}")
        self.shapes = dict(shapes)
        self.spacing = tuple(float(s) for s in spacing)
        self.deformations = list(deformations)
        self.ssm_share, self.max_sd, self.variance = float(ssm_share), float(max_sd), float(variance)
        self.sha256 = self._hash()

    @classmethod
    def fit(cls, case_ids: Sequence[str], masks: np.ndarray, labels: Sequence[str], spacing, *,
            deformations: Sequence[RandomTransform] = (), ssm_share: float = 0.5, max_sd: float = 2.0,
            variance: float = 0.95) -> ShapeModel:
        """Fit the shape model of each class on its masks.

        Parameters
        ----------
        case_ids, masks, labels
            The fold-training cases, their binary masks (N, *S) and class names.
        spacing
            Patch spacing (x, y[, z]) in mm (signed distances and transforms are physical).
        deformations, ssm_share, max_sd
            As for the class.
        variance
            The PCA keeps the fewest leading modes explaining at least this share of
            the variance of the signed distance maps, in (0, 1].

        Raises
        ------
        ValueError
            Inconsistent inputs, a non-binary or empty mask.
        """
        masks = np.asarray(masks)
        case_ids, labels = [str(c) for c in case_ids], [str(x) for x in labels]
        if masks.ndim not in (3, 4) or len(masks) != len(case_ids) or len(labels) != len(case_ids) or not len(masks):
            raise ValueError(f"ShapeModel.fit: {len(case_ids)} case ids, {len(labels)} labels and masks of shape "
                             f"{masks.shape} do not describe one non-empty set of 2D or 3D masks")
        if len(spacing) != masks.ndim - 1:
            raise ValueError(f"ShapeModel.fit: spacing {tuple(spacing)} does not match {masks.ndim - 1}D masks")
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("ShapeModel.fit: masks must be binary (values 0 and 1)")
        sizes = masks.reshape(len(masks), -1).sum(axis=1)
        if (sizes == 0).any():
            empty = [case_ids[i] for i in np.flatnonzero(sizes == 0)]
            raise ValueError(f"ShapeModel.fit: empty mask(s) of {empty[:5]}")
        if not 0 < variance <= 1:
            raise ValueError(f"variance must be in (0, 1], got {variance}")
        masks = masks.astype(np.uint8)
        label_array = np.asarray(labels)
        shapes = {}
        for label in sorted(set(labels)):
            rows = np.flatnonzero(label_array == label)
            shapes[label] = _fit_class([case_ids[i] for i in rows], masks[rows], spacing, variance)
        return cls(shapes, spacing, deformations=deformations, ssm_share=ssm_share, max_sd=max_sd,
                   variance=variance)

    # -- sampling --------------------------------------------------------- #

    def sample(self, label: str, seed: int) -> tuple[np.ndarray, dict]:
        """One mask of class ``label``, drawn from the generator seeded with ``seed``.

        Returns
        -------
        mask : numpy.ndarray
            uint8 mask of the patch shape (may be empty for an extreme shape-model
            draw; the sampler's plausibility check rejects it).
        origin : dict
            :data:`ORIGIN_COLUMNS`: ``mask_origin`` (``deformed`` or ``ssm``),
            ``parent_case_id`` (``""`` for ``ssm``), ``mask_record`` (JSON: the
            transform ``chain`` or the mode ``coefficients`` in SD units) and
            ``shape_model_sha256``.
        """
        shapes = self._class(label)
        rng = np.random.default_rng(int(seed))
        use_ssm = rng.random() < self.ssm_share and len(shapes.sd) > 0
        if use_ssm:
            coefficients = rng.standard_normal(len(shapes.sd))
            while (outside := np.abs(coefficients) > self.max_sd).any():
                coefficients[outside] = rng.standard_normal(int(outside.sum()))
            record = {"coefficients": [float(b) for b in coefficients]}
            return self._ssm_mask(shapes, coefficients), self._origin("ssm", "", record)
        parent = int(rng.integers(len(shapes.case_ids)))
        image, mask = np.zeros(shapes.masks.shape[1:], np.float32), shapes.masks[parent]
        chain = []
        for transform in self.deformations:
            twin, _ = transform.sample(rng, image, mask, self.spacing)
            image, mask = twin(image, mask, self.spacing)
            chain.append(twin.record())
        return mask.astype(np.uint8), self._origin("deformed", shapes.case_ids[parent], {"chain": chain})

    def replay(self, label: str, origin: Mapping) -> np.ndarray:
        """Rebuild a mask from the ``origin`` :meth:`sample` returned with it (as stored in a sample table).

        Raises
        ------
        ValueError
            If the origin is from another shape model or names an unknown source or parent.
        """
        if origin["shape_model_sha256"] != self.sha256:
            raise ValueError("the mask was drawn from another shape model (shape_model_sha256 differs)")
        shapes = self._class(label)
        record = json.loads(origin["mask_record"])
        if origin["mask_origin"] == "ssm":
            return self._ssm_mask(shapes, np.asarray(record["coefficients"], float))
        if origin["mask_origin"] != "deformed" or origin["parent_case_id"] not in shapes.case_ids:
            raise ValueError(f"unknown mask origin {origin['mask_origin']!r} / parent {origin['parent_case_id']!r}")
        parent = shapes.masks[shapes.case_ids.index(origin["parent_case_id"])]
        _, mask = apply_chain(record["chain"], np.zeros(parent.shape, np.float32), parent, self.spacing)
        return mask.astype(np.uint8)

    def mean_mask(self, label: str) -> np.ndarray:
        """The class's mean shape (all coefficients 0), at its mean position."""
        shapes = self._class(label)
        return self._ssm_mask(shapes, np.zeros(len(shapes.sd)))

    def _ssm_mask(self, shapes: ClassShapes, coefficients: np.ndarray) -> np.ndarray:
        level = shapes.mean.astype(np.float64) + (coefficients * shapes.sd) @ shapes.modes.astype(np.float64)
        mask = largest_component((level < 0).reshape(shapes.masks.shape[1:]))
        return _shift(mask, shapes.offset)

    def _class(self, label: str) -> ClassShapes:
        try:
            return self.shapes[label]
        except KeyError:
            raise ValueError(f"the shape model has no training masks of class {label!r} "
                             f"(classes: {sorted(self.shapes)})") from None

    def _origin(self, source: str, parent: str, record: dict) -> dict:
        return {"mask_origin": source, "parent_case_id": parent, "mask_record": compact_json(record),
                "shape_model_sha256": self.sha256}

    def _hash(self) -> str:
        """sha256 of everything a draw depends on: the fitted arrays, the case ids and the options."""
        description = {
            "spacing": self.spacing, "ssm_share": self.ssm_share, "max_sd": self.max_sd, "variance": self.variance,
            "deformations": [{"type": type(t).__name__, **vars(t)} for t in self.deformations],
            "classes": {
                label: {"case_ids": list(s.case_ids), "offset": list(s.offset),
                        "arrays": [sha256_array(a) for a in (s.masks, s.mean, s.modes, s.sd)]}
                for label, s in sorted(self.shapes.items())
            },
        }
        return sha256_bytes(canonical_json(description).encode())


def shape_model_options(shape_model: Mapping, augmentation: Mapping) -> dict:
    """The keyword arguments of :meth:`ShapeModel.fit` from the validated config sections.

    ``generative.shape_model`` gives ``ssm_share``, ``max_sd`` and ``variance``; the
    deformations are the classical arm's spatial stages with their bounds
    (``augmentation.affine`` and ``augmentation.elastic``; masks by nearest
    neighbour, padding 0 on the placeholder image).
    """
    return {"deformations": spatial_augmentation(augmentation, padding=0.0), "ssm_share": shape_model["ssm_share"],
            "max_sd": shape_model["max_sd"], "variance": shape_model["variance"]}


def fit_in_fold(*, folds: pd.DataFrame, cases: pd.DataFrame, repeat: int, fold: int, case_ids: Sequence[str],
                masks: np.ndarray, labels: Sequence[str], spacing, **options) -> ShapeModel:
    """Fit a :class:`ShapeModel` on masks of one fold's training cases, after checking that they are.

    Raises
    ------
    radaug.errors.LeakageError
        Before fitting, if a case is not a training case of the fold or shares a
        patient, group or content with a test case.
    """
    check_training_input(folds, cases, repeat, fold, case_ids)
    return ShapeModel.fit(case_ids, masks, labels, spacing, **options)


def check_mask_parents(parents: Sequence[str], train_case_ids: Sequence[str], repeat: int, fold: int) -> None:
    """Raise :class:`LeakageError` unless every non-empty parent is a training case of the fold."""
    train = set(map(str, train_case_ids))
    foreign = sorted({str(p) for p in parents if isinstance(p, str) and p and p not in train})
    if foreign:
        raise LeakageError(f"fold {fold_key(repeat, fold)}: synthetic masks derive from {foreign[:5]}, which are "
                           "not training cases of this fold")
