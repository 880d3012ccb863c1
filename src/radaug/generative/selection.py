"""In-fold model selection and early stopping of a generator (issue 20, item 3).

A generator trained for a fixed number of steps on a few dozen patches is sampled at
whatever state the last step left it in, which for a GAN may be after it collapsed.
With ``generative.selection.enabled`` each generator instead

1. holds out a *selection* part of its fold's **training** cases
   (:func:`selection_split`: whole near-duplicate/patient groups, stratified by class,
   seeded; never a test case, which :func:`check_selection_holdout` enforces with a
   :class:`~radaug.errors.LeakageError`) and trains on the rest;
2. every ``every`` steps (and at the last step) samples a fixed set of latent codes
   from the current weights (the EMA weights where EMA is on: ``sample`` uses
   them), computes :func:`cheap_features` of samples and held-out cases, and scores
   the step with the project's own validation metrics
   (:func:`radaug.validate.metrics.frechet_distance` and the coverage of
   :func:`radaug.validate.manifold.prdc`), averaged over the classes with at least
   two held-out cases (:class:`Selection`);
3. keeps a copy of the best weights so far, stops after ``patience`` evaluations
   without improvement (early stopping), and leaves the best weights in the model,
   whose checkpoint then records ``selected_step`` and the selection curve.

The selection state (curve, best weights, evaluations since the best) travels in the
training checkpoint, so a killed job resumes byte-identically (CPU).

Why not PyRadiomics every N steps: on 128 phantom patches of 32x32 it took 2.8-4.2 s
against 0.10-0.14 s for :func:`cheap_features` (first-order, shape, neighbour-difference
texture and contrast of the ROI, numpy over the whole batch), 29x, in the same run on the
loaded 2-core machine; 16 evaluations with PyRadiomics would add about a minute per
generator and fold, more than a 2D cvae's whole training (BENCHMARKS.md, "In-fold
generator selection").

What it was measured to do (2D phantom, 3 folds, cvae and dcgan; BENCHMARKS.md): the
chosen step was not consistently better than the last one on the PyRadiomics metrics,
hence off by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from radaug.errors import LeakageError
from radaug.splits import fold_cases, fold_key

if TYPE_CHECKING:
    from .base import ConditionalModel

SELECTION_METRICS = {"frechet": "min", "coverage": "max"}
"""Selection metrics and the direction that is better."""

CHEAP_FEATURES = (
    "roi_mean", "roi_sd", "roi_p10", "roi_p50", "roi_p90", "roi_skewness", "roi_kurtosis",
    "roi_voxels", "surface", "compactness", "gradient", "neighbour_corr", "context_diff",
)
"""Columns of :func:`cheap_features`."""

MIN_ROI_VOXELS = 4
"""Samples with a smaller ROI have no meaningful features and are left out of a score (counted)."""


def curve_table(record: dict, class_names: Sequence[str]) -> pd.DataFrame:
    """The selection curve of a model's selection record as a table (``selection.csv``).

    One row per evaluation: ``step``, ``frechet`` and ``coverage`` (means over the
    scored classes) and per class (``frechet_<class>``, ``coverage_<class>``),
    ``empty_share`` (samples without a usable ROI), ``best`` (best so far) and
    ``selected`` (the step whose weights the model keeps).
    """
    curve = pd.DataFrame(record["curve"])
    names = {f"{metric}_{i}": f"{metric}_{name}" for i, name in enumerate(class_names) for metric in SELECTION_METRICS}
    curve = curve.rename(columns=names)
    curve["selected"] = curve["step"] == record["selected_step"]
    return curve


# --------------------------------------------------------------------------- #
# Cheap features
# --------------------------------------------------------------------------- #


def cheap_features(images: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """A fast radiomics-like feature set of (N, *S) patches and binary masks, vectorised over N.

    First-order statistics of the ROI intensities (mean, SD, 10/50/90th percentiles,
    skewness, excess kurtosis), shape (voxel count, boundary faces, compactness
    ``voxels^((d-1)/d) / faces``), texture (mean absolute difference of ROI
    neighbours along every axis, and the correlation of neighbouring ROI intensities,
    a GLCM-correlation analogue at lag 1), and the contrast between the ROI mean and
    the mean of the rest of the patch. Nothing is divided by the ROI SD but the
    moments and the correlation: a nearly flat generated ROI must not produce huge
    values that dominate a Fréchet distance. Rows of samples with fewer than
    :data:`MIN_ROI_VOXELS` ROI voxels are NaN.
    """
    images = np.asarray(images, np.float64)
    roi = np.asarray(masks) > 0.5
    n, dims = len(images), images.ndim - 1
    flat_x, flat_m = images.reshape(n, -1), roi.reshape(n, -1)
    count = flat_m.sum(1).astype(np.float64)
    ok = count >= MIN_ROI_VOXELS
    safe = np.maximum(count, 1)
    mean = (flat_x * flat_m).sum(1) / safe
    centred = np.where(flat_m, flat_x - mean[:, None], 0.0)
    var = (centred ** 2).sum(1) / safe
    sd = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = (centred ** 3).sum(1) / safe / sd ** 3
        kurt = (centred ** 4).sum(1) / safe / var ** 2 - 3.0
    pct = np.full((3, n), np.nan)
    if ok.any():
        pct[:, ok] = np.nanpercentile(np.where(flat_m, flat_x, np.nan)[ok], (10, 50, 90), axis=1)
    faces = np.zeros(n)
    diff_sum, pairs = np.zeros(n), np.zeros(n)
    prod, sq_a, sq_b = np.zeros(n), np.zeros(n), np.zeros(n)
    padded = np.pad(roi, [(0, 0)] + [(1, 1)] * dims)  # ROI faces on the patch border count as surface
    for axis in range(1, dims + 1):
        edge_a, edge_b = _shifted(padded, axis)
        faces += (edge_a != edge_b).reshape(n, -1).sum(1)
        a_m, b_m = _shifted(roi, axis)
        a_x, b_x = _shifted(images, axis)
        both = (a_m & b_m).reshape(n, -1)
        da = (a_x.reshape(n, -1) - mean[:, None])
        db = (b_x.reshape(n, -1) - mean[:, None])
        diff_sum += np.where(both, np.abs(a_x - b_x).reshape(n, -1), 0.0).sum(1)
        pairs += both.sum(1)
        prod += np.where(both, da * db, 0.0).sum(1)
        sq_a += np.where(both, da * da, 0.0).sum(1)
        sq_b += np.where(both, db * db, 0.0).sum(1)
    outside = (~flat_m).sum(1)
    context = (flat_x * ~flat_m).sum(1) / np.maximum(outside, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gradient = diff_sum / np.maximum(pairs, 1)
        table = pd.DataFrame({
            "roi_mean": mean, "roi_sd": sd, "roi_p10": pct[0], "roi_p50": pct[1], "roi_p90": pct[2],
            "roi_skewness": skew, "roi_kurtosis": kurt, "roi_voxels": count, "surface": faces,
            "compactness": count ** ((dims - 1) / dims) / np.maximum(faces, 1),
            "gradient": gradient,
            "neighbour_corr": prod / np.sqrt(sq_a * sq_b),
            "context_diff": mean - context,
        })[list(CHEAP_FEATURES)]
    table.loc[~ok] = np.nan
    return table.replace([np.inf, -np.inf], np.nan)


def _shifted(array: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The two overlapping views ``a[..., :-1, ...]`` and ``a[..., 1:, ...]`` along ``axis``."""
    lo = [slice(None)] * array.ndim
    hi = [slice(None)] * array.ndim
    lo[axis], hi[axis] = slice(None, -1), slice(1, None)
    return array[tuple(lo)], array[tuple(hi)]


# --------------------------------------------------------------------------- #
# The selection holdout
# --------------------------------------------------------------------------- #


def selection_split(labels: Sequence, groups: Sequence, share: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Fit and selection-holdout positions of a fold's training cases; whole groups, stratified by class.

    Groups (near-duplicate/leakage groups, patients) are visited in a seeded random
    order; a group goes to the holdout while its class (the group's most frequent
    label) holds fewer than ``round(share * n_class)`` (at least 2) held-out cases and
    would keep at least 2 cases of that class for fitting.

    Returns
    -------
    fit, holdout
        Sorted row positions; disjoint, together all rows, no group on both sides.
    """
    labels = pd.Series(list(labels), dtype=object).astype(str).to_numpy()
    codes, _ = pd.factorize(pd.Series(list(groups), dtype=object).astype(str), sort=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    counts = pd.crosstab(codes, labels)  # cases per group and class
    main = counts.idxmax(axis=1)  # a group's most frequent class (ties: the first in sort order)
    totals = counts.sum()
    target = {c: max(2, int(round(share * n))) for c, n in totals.items()}
    held = pd.Series(0, index=counts.columns)
    in_holdout = np.zeros(n_groups, dtype=bool)
    for group in np.random.default_rng(seed).permutation(n_groups):
        label, size = main[group], counts.loc[group]
        if held[label] < target[label] and (totals - held - size)[size > 0].min() >= 2:
            in_holdout[group] = True
            held += size
    hold = in_holdout[codes]
    return np.flatnonzero(~hold), np.flatnonzero(hold)


def holdout_in_fold(folds: pd.DataFrame, repeat: int, fold: int, case_ids: Sequence[str], labels: Sequence,
                    share: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """:func:`selection_split` of a fold's training cases ``case_ids`` by their ``group`` in the split table, checked.

    Returns the fit and holdout positions into ``case_ids``; raises
    :class:`LeakageError` (:func:`check_selection_holdout`) if the holdout is not
    made of training cases of the fold apart from the fit part.
    """
    part = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)].set_index("case_id")
    ids = pd.Index(pd.Series(list(case_ids), dtype=str))
    known = ids.isin(part.index)
    column = "group" if "group" in part else "patient_id"
    # an unknown case is its own group here; the check below refuses it if it is held out
    groups = np.where(known, part[column].reindex(ids).astype(str).to_numpy(), "unknown:" + ids.to_numpy())
    fit, holdout = selection_split(labels, groups, share, seed)
    check_selection_holdout(folds, repeat, fold, ids[holdout], ids[fit])
    return fit, holdout


def check_selection_holdout(folds: pd.DataFrame, repeat: int, fold: int, holdout_ids, fit_ids) -> None:
    """Raise :class:`LeakageError` unless the selection holdout is a set of the fold's training cases apart from the fit part.

    Checked before training: every held-out case is a training case of the fold
    (a test case would select the checkpoint on the test set), none is also fitted,
    and no leakage group or patient has cases on both sides (the score would then
    reward memorising a near-duplicate).
    """
    key = fold_key(repeat, fold)
    train = fold_cases(folds, repeat, fold, "train").set_index("case_id")
    holdout = pd.Index(pd.Series(list(holdout_ids), dtype=str))
    fit = pd.Index(pd.Series(list(fit_ids), dtype=str))
    outside = holdout.difference(train.index)
    if len(outside):
        raise LeakageError(f"fold {key}: generator selection holdout has case(s) {list(outside[:5])} that are not "
                           "training cases of the fold (generative.selection must hold out training cases only)")
    both = holdout.intersection(fit)
    if len(both):
        raise LeakageError(f"fold {key}: case(s) {list(both[:5])} are both fitted and held out for generator selection")
    for column in ("group", "patient_id"):
        if column in train:
            shared = set(train.loc[holdout, column]) & set(train.loc[fit.intersection(train.index), column])
            if shared:
                raise LeakageError(f"fold {key}: generator selection holdout shares {column} {sorted(shared)[:5]} "
                                   "with the cases the generator is fitted on")


# --------------------------------------------------------------------------- #
# Scoring and the selection state
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SelectionOptions:
    """The ``generative.selection`` config section (without ``enabled``).

    Attributes
    ----------
    every
        Training steps between evaluations (the last step is always evaluated).
    patience
        Evaluations without improvement after which training stops (early stopping).
    holdout
        Share of each class's training cases held out for selection.
    samples
        Samples drawn per class at each evaluation (the same latent codes every time).
    metric
        ``frechet`` (lower is better) or ``coverage`` (higher is better), averaged over classes.
    """

    every: int = 100
    patience: int = 5
    holdout: float = 0.2
    samples: int = 64
    metric: str = "frechet"

    def __post_init__(self) -> None:
        if self.metric not in SELECTION_METRICS:
            raise ValueError(f"generative.selection.metric must be one of {sorted(SELECTION_METRICS)}, got {self.metric!r}")
        for name in ("every", "patience", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"generative.selection.{name} must be an integer >= 1, got {value!r}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"generative.selection.holdout must lie in (0, 1), got {self.holdout!r}")

    @classmethod
    def from_config(cls, section: dict) -> SelectionOptions:
        return cls(**{k: v for k, v in section.items() if k != "enabled"})

    def as_dict(self) -> dict:
        return {"every": self.every, "patience": self.patience, "holdout": self.holdout,
                "samples": self.samples, "metric": self.metric}


def score_features(candidate: pd.DataFrame, holdout: pd.DataFrame, scale: pd.DataFrame) -> dict[str, float]:
    """Fréchet distance and coverage of candidate vs held-out features, z-scored by ``scale`` (the fit cases).

    NaN rows (empty ROIs) are dropped; columns non-finite in ``scale`` too. Coverage
    uses k = min(5, held-out rows - 1) nearest neighbours.
    """
    from radaug.validate.manifold import prdc
    from radaug.validate.metrics import frechet_distance, zscore

    candidate, holdout, scale = (t.dropna(how="any") for t in (candidate, holdout, scale))
    if len(candidate) < 2 or len(holdout) < 2 or len(scale) < 2:
        return {"frechet": math.nan, "coverage": math.nan}
    frechet = frechet_distance(holdout, candidate, standardize_with=scale)
    hold_z, cand_z = zscore([holdout.to_numpy(float), candidate.to_numpy(float)], by=scale.to_numpy(float))
    k = min(5, len(hold_z) - 1)
    coverage = prdc(hold_z, cand_z, nearest_k=k).coverage if hold_z.shape[1] else math.nan
    return {"frechet": float(frechet), "coverage": float(coverage)}


class Selection:
    """The selection state of one training run: which steps were scored, the best one and its weights.

    Parameters
    ----------
    options
        :class:`SelectionOptions`.
    holdout_images, holdout_masks, holdout_labels
        The selection holdout (physical units, binary masks, integer labels).
    fit_images, fit_masks, fit_labels
        The cases the model is fitted on (their features z-score the scores).
    seed
        Seeds the latent codes drawn at every evaluation (the same ones each time).
    score
        Maps (candidate, holdout, scale) feature tables to metric values; the
        default is :func:`score_features`. Tests replace it with a constructed sequence.
    """

    def __init__(self, options: SelectionOptions, *, holdout_images, holdout_masks, holdout_labels,
                 fit_images, fit_masks, fit_labels, seed: int,
                 score: Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], dict[str, float]] = score_features):
        self.options, self.seed, self._score = options, int(seed), score
        self._holdout_labels = np.asarray(holdout_labels, np.int64)
        self._holdout_masks = np.asarray(holdout_masks)
        self._holdout = cheap_features(holdout_images, holdout_masks)
        self._scale = cheap_features(fit_images, fit_masks)
        self._fit_labels = np.asarray(fit_labels, np.int64)
        self.classes = [int(c) for c in np.unique(self._holdout_labels) if (self._holdout_labels == c).sum() >= 2]
        if not self.classes:
            raise ValueError("generative.selection: no class has 2 or more held-out cases; raise "
                             "generative.selection.holdout or turn selection off for this cohort")
        self.curve: list[dict] = []
        self.best_step: int | None = None
        self.best_score = math.nan
        self.best_state: dict[str, torch.Tensor] | None = None
        self.since_best = 0
        self.stopped = False

    # -- configuration and persistence --------------------------------------- #

    def config(self) -> dict:
        """What the run's result depends on besides the model's own config (checked on resume)."""
        return {**self.options.as_dict(), "seed": self.seed, "classes": self.classes,
                "holdout_rows": int(len(self._holdout_labels))}

    def state(self) -> dict:
        """The selection state for a training checkpoint (tensors and plain values only)."""
        return {"curve": [dict(r) for r in self.curve], "best_step": self.best_step, "best_score": self.best_score,
                "best_state": self.best_state, "since_best": self.since_best, "stopped": self.stopped}

    def load_state(self, state: dict) -> None:
        self.curve = [dict(r) for r in state["curve"]]
        self.best_step, self.best_score = state["best_step"], state["best_score"]
        self.best_state, self.since_best, self.stopped = state["best_state"], state["since_best"], state["stopped"]

    def record(self) -> dict:
        """The selection record kept in the saved model: chosen step, metric, options, curve."""
        return {"selected_step": self.best_step, "metric": self.options.metric, "stopped_early": self.stopped,
                "options": self.options.as_dict(), "curve": [dict(r) for r in self.curve]}

    # -- evaluation ---------------------------------------------------------- #

    def due(self, step: int, steps: int) -> bool:
        return step % self.options.every == 0 or step == steps

    def evaluate(self, model: ConditionalModel) -> dict[str, float]:
        """Metric values of the model's current (EMA) weights: per class and the mean over classes."""
        n = self.options.samples
        labels = np.repeat(np.asarray(self.classes, np.int64), n)
        masks = None
        if model.condition_on_mask:  # condition on the held-out masks of each class, cycled
            masks = np.concatenate([np.resize(self._holdout_masks[self._holdout_labels == c],
                                              (n, *self._holdout_masks.shape[1:])) for c in self.classes])
        images, mask_prob = model.sample(labels, seed=self.seed, masks=masks)
        features = cheap_features(images, mask_prob > 0.5)
        values: dict[str, float] = {"empty_share": float(features.isna().any(axis=1).mean())}
        for c in self.classes:
            scores = self._score(features[labels == c].reset_index(drop=True),
                                 self._holdout[self._holdout_labels == c].reset_index(drop=True),
                                 self._scale[self._fit_labels == c].reset_index(drop=True))
            values.update({f"{metric}_{c}": float(v) for metric, v in scores.items()})
        for metric in SELECTION_METRICS:
            per_class = [values.get(f"{metric}_{c}", math.nan) for c in self.classes]
            values[metric] = float(np.mean(per_class))
        return values

    def observe(self, step: int, values: dict[str, float], weights: Callable[[], dict[str, Any]]) -> bool:
        """Record the values of ``step``; keep ``weights()`` if it is the best so far. Returns whether it is.

        A NaN score (too few usable samples) never improves on a finite one; the
        first finite score always does. Ties keep the earlier step. After
        ``patience`` evaluations without improvement since the first finite score
        :attr:`stopped` is set.
        """
        score = values[self.options.metric]
        better = SELECTION_METRICS[self.options.metric] == "min"
        improved = math.isfinite(score) and (
            not math.isfinite(self.best_score)
            or (score < self.best_score if better else score > self.best_score))
        if improved:
            self.best_step, self.best_score, self.since_best = step, score, 0
            self.best_state = {k: v.detach().clone() for k, v in weights().items()}
        elif self.best_step is not None:  # patience runs from the first finite score
            self.since_best += 1
            self.stopped = self.since_best >= self.options.patience
        self.curve.append({"step": step, **values, "best": improved})
        return improved

    def step(self, model: ConditionalModel, log: Callable[[str], object]) -> None:
        """Evaluate ``model`` at its current step and update the state (used by the training loop)."""
        values = self.evaluate(model)
        improved = self.observe(model.step, values, model.nets.state_dict)
        metric = self.options.metric
        log(f"{model.name} step {model.step}: selection {metric}={values[metric]:.4g} coverage={values['coverage']:.3g}"
            f"{' (best)' if improved else ''}; best step {self.best_step}"
            + (f"; stopping after {self.options.patience} evaluations without improvement" if self.stopped else ""))

    def restore_best(self, model: ConditionalModel) -> None:
        """Load the best weights into ``model`` and record the chosen step on it.

        Without any finite score (no evaluation produced two usable samples per
        class) the model keeps its last weights, and the record says so
        (``selected_step`` is the last step, ``scored`` false).
        """
        record = self.record()
        if self.best_state is not None:
            model.nets.load_state_dict(self.best_state)
        else:
            record["selected_step"] = model.step
        record["scored"] = self.best_state is not None
        model.selection = record
