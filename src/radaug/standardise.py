"""Nyúl–Udupa histogram standardisation, fitted on each fold's training cases only.

Nyúl, Udupa & Zhang 2000, "New variants of a method of MRI scale standardization",
IEEE TMI 19:143, doi:10.1109/42.836373. MR intensities have no physical unit: the
same tissue reads differently on two scanners, or on one scanner after a gain
change. Histogram standardisation maps every image's intensity histogram onto one
*standard scale* so that a landmark (say the median of the foreground) lands on the
same value in every image:

1. **Landmarks, per case** (:func:`case_landmarks`): the percentiles
   :data:`LANDMARK_PERCENTILES` (1, 10, 20, ..., 90, 99: Nyúl's decile landmarks
   with ``pc1 = 1``, ``pc2 = 99``) of the case's **whole original image** (before
   resampling and cropping) within its foreground, the voxels brighter than the
   image's mean (TorchIO's ``masking_method='mean'``; it drops the air around a
   head or body, whose share of the field of view varies from case to case).
   Computed once at preprocess time; nothing is learned across cases, so they
   are stored in the case index (column ``landmarks``).
2. **Fit, per fold** (:func:`fit`): each training case's landmarks are mapped
   linearly so that its ``pc1``, ``pc2`` land on :data:`STANDARD_RANGE`
   ``(0, 100)``; the mean of these mapped landmarks is the standard scale. This
   is the one step that learns from several cases, so it sees the fold's
   **training** cases only (:func:`for_fold`, checked by :func:`check_fitted_in_fold`):
   a standard scale learned with test cases would carry their intensity
   distribution into training, the leakage path the project's other in-fold
   invariants close.
3. **Apply, per case** (:func:`apply`): the piecewise-linear map that sends the
   case's own landmarks onto the standard scale, extended beyond the end
   landmarks by its first and last segments. Image only; the mask is untouched.

The reference implementation read for this module is TorchIO's
``HistogramStandardization`` (Pérez-García et al. 2021,
doi:10.1016/j.cmpb.2021.106236; ``torchio/transforms/preprocessing/intensity/
histogram_standardization.py``), itself adapted from NiftyNet; same landmarks,
standard range and averaging. Differences: TorchIO's foreground defaults to every
voxel, and it computes the landmarks from the tensor it transforms, whereas radaug
computes them on the original image and applies the map to patches of it.

In the workflow, a fold's patches (real, and through them every generator and
augmentation of the fold) are standardised with that fold's map
(:func:`radaug.preprocess.load_patches` with ``standardisation``), so real
features depend on the fold: ``features/real.csv`` then holds one row per case
and fold, and every consumer takes the fold's rows with
:func:`radaug.features.fold_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ConfigError, LeakageError

METHOD = "nyul"
"""The ``preprocess.normalisation`` value that selects this module."""
LANDMARK_PERCENTILES = (1.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 99.0)
STANDARD_RANGE = (0.0, 100.0)
"""Where every training case's 1st and 99th percentile land (Nyúl's ``[s1, s2]``; TorchIO's default)."""
LANDMARKS_COLUMN = "landmarks"


def foreground(image: np.ndarray) -> np.ndarray:
    """The voxels a case's landmarks are computed from: those brighter than the image's mean."""
    image = np.asarray(image, dtype=np.float64)
    return image > image.mean()


def case_landmarks(image: np.ndarray) -> np.ndarray:
    """A case's landmarks: :data:`LANDMARK_PERCENTILES` of its whole image within :func:`foreground`.

    Raises
    ------
    ValueError
        If the image is constant or its 1st and 99th foreground percentiles are
        equal (nothing to scale by).
    """
    image = np.asarray(image, dtype=np.float64)
    values = image[foreground(image)]
    if not values.size:
        raise ValueError("the image is constant, so it has no foreground to standardise (preprocess.normalisation: "
                         "nyul); use another preprocess.normalisation")
    landmarks = np.percentile(values, LANDMARK_PERCENTILES)
    if not landmarks[-1] > landmarks[0]:
        raise ValueError(f"the image's foreground percentiles {LANDMARK_PERCENTILES[0]:g} and "
                         f"{LANDMARK_PERCENTILES[-1]:g} are equal ({landmarks[0]:g}): nothing to standardise by "
                         "(preprocess.normalisation: nyul); use another preprocess.normalisation")
    return landmarks


def landmarks_text(landmarks) -> str:
    """Landmarks as the case index stores them: space-separated, exact (``repr``) floats."""
    return " ".join(repr(float(v)) for v in landmarks)


def parse_landmarks(text: str) -> np.ndarray:
    """The landmark vector of one case-index cell (:func:`landmarks_text`)."""
    values = np.array([float(v) for v in str(text).split()])
    if len(values) != len(LANDMARK_PERCENTILES):
        raise ValueError(f"a case's landmarks {text!r} have {len(values)} values, expected "
                         f"{len(LANDMARK_PERCENTILES)}; preprocess the cohort again")
    return values


def standard_scale(landmarks: np.ndarray) -> np.ndarray:
    """The standard scale of a set of cases' landmarks (one row per case).

    Each row is mapped linearly so that its first and last landmark land on
    :data:`STANDARD_RANGE`; the scale is the mean of the mapped rows.
    """
    landmarks = np.atleast_2d(np.asarray(landmarks, dtype=np.float64))
    s1, s2 = STANDARD_RANGE
    low, high = landmarks[:, :1], landmarks[:, -1:]
    return (s1 + (landmarks - low) * (s2 - s1) / (high - low)).mean(axis=0)


def apply(image: np.ndarray, landmarks: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Map intensities piecewise-linearly so that ``landmarks`` land on ``scale`` (float32, same shape).

    Between two landmarks the map is the line through them; below the first and
    above the last it continues the first and last segment. Where a case has two
    equal landmarks (a plateau in its histogram) the empty segment is skipped and
    the map jumps, as in TorchIO; it stays non-decreasing.
    """
    x = np.asarray(image, dtype=np.float64)
    landmarks, scale = np.asarray(landmarks, np.float64), np.asarray(scale, np.float64)
    width = np.diff(landmarks)
    slope = np.where(width > 0, np.diff(scale) / np.where(width > 0, width, 1.0), 0.0)
    intercept = scale[:-1] - slope * landmarks[:-1]
    segment = np.clip(np.searchsorted(landmarks, x, side="right") - 1, 0, len(landmarks) - 2)
    return (slope[segment] * x + intercept[segment]).astype(np.float32)


@dataclass(frozen=True)
class Standardisation:
    """One fold's histogram standardisation: its standard scale and the cases it was fitted on.

    ``landmarks`` holds every case's own landmarks (train and test: a test case is
    mapped with the scale learned from the training cases, never fitted on).
    """

    scale: np.ndarray
    fitted_on: tuple[str, ...]
    landmarks: Mapping[str, np.ndarray] = field(repr=False)
    fold: str = ""

    def apply(self, case_ids: Iterable[str], images: np.ndarray) -> np.ndarray:
        """The patches ``images`` of ``case_ids`` standardised (float32; masks are not touched)."""
        case_ids = [str(c) for c in case_ids]
        missing = [c for c in case_ids if c not in self.landmarks]
        if missing:
            raise KeyError(f"no landmarks for cases {missing[:5]} in the case index")
        images = np.asarray(images)
        if not len(case_ids):
            return images.astype(np.float32)
        return np.stack([apply(image, self.landmarks[c], self.scale) for c, image in zip(case_ids, images)])


def index_landmarks(index: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every case's landmarks from the case index (its ``landmarks`` column)."""
    if LANDMARKS_COLUMN not in index:
        raise ConfigError("the case index has no landmarks column: it was preprocessed without "
                          "preprocess.normalisation: nyul; preprocess the cohort again")
    return {str(c): parse_landmarks(t) for c, t in zip(index["case_id"], index[LANDMARKS_COLUMN])}


def fit(landmarks: Mapping[str, np.ndarray], case_ids: Iterable[str], fold: str = "") -> Standardisation:
    """The standardisation fitted on ``case_ids`` (the rest of ``landmarks`` is only mapped, never fitted on)."""
    fitted_on = tuple(sorted({str(c) for c in case_ids}))
    if not fitted_on:
        raise ValueError(f"fold {fold}: no training case to fit the histogram standardisation on")
    scale = standard_scale(np.stack([landmarks[c] for c in fitted_on]))
    return Standardisation(scale=scale, fitted_on=fitted_on, landmarks=dict(landmarks), fold=fold)


def check_fitted_in_fold(standardisation: Standardisation, folds: pd.DataFrame, repeat: int, fold: int) -> None:
    """Raise :class:`LeakageError` unless the standardisation was fitted on training cases of the fold only."""
    from .splits import fold_key

    part = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)]
    train = set(part.loc[part["role"] == "train", "case_id"].astype(str))
    test = set(part.loc[part["role"] == "test", "case_id"].astype(str))
    fitted = set(standardisation.fitted_on)
    where = f"fold {fold_key(repeat, fold)}: the histogram standardisation (preprocess.normalisation: nyul)"
    if fitted & test:
        raise LeakageError(f"{where} was fitted on test case(s) {sorted(fitted & test)[:5]}: its landmarks must be "
                           "learned from the fold's training cases only")
    if fitted - train:
        raise LeakageError(f"{where} was fitted on case(s) {sorted(fitted - train)[:5]} that are not training cases "
                           "of the fold")


def uses_standardisation(index: pd.DataFrame) -> bool:
    """Whether the study's cases were preprocessed with ``preprocess.normalisation: nyul``."""
    return "normalisation" in index and len(index) > 0 and (index["normalisation"] == METHOD).any()


def for_fold(index: pd.DataFrame, folds: pd.DataFrame, repeat: int, fold: int) -> Standardisation | None:
    """The fold's standardisation, fitted on its training cases and checked; None when the study does not use one."""
    if not uses_standardisation(index):
        return None
    from .splits import fold_key

    part = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)]
    train = part.loc[part["role"] == "train", "case_id"]
    standardisation = fit(index_landmarks(index), train, fold=fold_key(repeat, fold))
    check_fitted_in_fold(standardisation, folds, repeat, fold)
    return standardisation


def fold_standardisations(index: pd.DataFrame, folds: pd.DataFrame | None):
    """``[(repeat, fold, standardisation)]`` for every fold, or ``[(None, None, None)]`` without standardisation.

    The loop of a job that measures real cases: once per study without
    standardisation, once per fold with it.
    """
    if not uses_standardisation(index):
        return [(None, None, None)]
    if folds is None:
        raise ValueError("the cases are standardised per fold (preprocess.normalisation: nyul), so measuring them "
                         "needs splits/folds.csv as an input")
    keys = folds[["repeat", "fold"]].drop_duplicates().sort_values(["repeat", "fold"])
    return [(int(r), int(f), for_fold(index, folds, int(r), int(f))) for r, f in keys.itertuples(index=False)]


def scale_record(standardisation: Standardisation) -> dict:
    """What a job logs about a fold's standardisation: scale and the training cases it was fitted on."""
    return {"fold": standardisation.fold, "scale": [round(float(v), 6) for v in standardisation.scale],
            "fitted_on": list(standardisation.fitted_on)}


def fold_images(index: pd.DataFrame, folds: pd.DataFrame | None, case_ids, images: np.ndarray):
    """``[(repeat, fold, images)]``: the patches as each fold sees them, or once (repeat, fold None) as stored.

    For jobs that measure every real case (real features, their voxel-shuffled
    control): once per study, or once per fold with per-fold standardisation.
    """
    return [(repeat, fold, images if standardisation is None else standardisation.apply(case_ids, images))
            for repeat, fold, standardisation in fold_standardisations(index, folds)]


def content_index(index: pd.DataFrame, case_ids, images: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """The case index with ``content_sha256`` of the given (standardised) patches.

    The training-patch leakage check (:func:`radaug.generative.training.check_training_patches`)
    compares the hashes of the arrays a model sees with the test cases' hashes; with
    a fold's standardisation both must be hashes of the fold's standardised patches.
    """
    from .io import sha256_array

    hashes = {str(c): sha256_array(np.stack([np.asarray(i, np.float32), np.asarray(m).astype(np.float32)]))
              for c, i, m in zip(case_ids, images, masks)}
    return index.assign(content_sha256=index["case_id"].astype(str).map(hashes))
