"""Rebalancing quotas: how many extra training samples each class receives.

One rule for every arm that adds data (oversampling, classical augmentation,
each generator), computed from the fold's *training* class counts only, so all
arms of a fold add the same number of samples per class and compare fairly.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from radaug.errors import SamplingError


def rebalancing_quotas(
    class_counts: Mapping[str, int],
    target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
) -> dict[str, int]:
    """Extra samples per class so each class reaches ``target_ratio`` × the largest class.

    Parameters
    ----------
    class_counts
        Real training cases per class in this fold.
    target_ratio
        Desired size of every class relative to the largest one, in (0, 1].
        1.0 balances the classes fully.
    cap_per_case
        At most this many extra samples per real case of a class, so a class with
        very few cases is not flooded with data derived from them.

    Returns
    -------
    dict
        Class name → number of extra samples (0 for the largest class).

    Examples
    --------
    >>> rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=4)
    {'no': 0, 'yes': 256}
    >>> rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=2)
    {'no': 0, 'yes': 128}
    """
    if not 0 < target_ratio <= 1:
        raise ValueError(f"target_ratio must be in (0, 1], got {target_ratio}")
    if cap_per_case < 0:
        raise ValueError(f"cap_per_case must be >= 0, got {cap_per_case}")
    largest = max(class_counts.values())
    quotas = {}
    for name, count in class_counts.items():
        wanted = max(0, math.ceil(target_ratio * largest) - count)
        quotas[name] = int(min(wanted, math.floor(cap_per_case * count)))
    return quotas


def class_quotas(labels: Iterable[str], classes: list[str], *, target_ratio: float, cap_per_case: float
                 ) -> dict[str, int]:
    """A fold's quotas per class of ``classes`` (in that order) from its training ``labels``.

    The one way the classical arm (:func:`radaug.augment.classical.augment_fold`)
    and every generator arm (:func:`radaug.generative.arm.sample_fold`) count a
    fold's training cases; a class without training cases counts 0 and gets no quota.

    >>> class_quotas(["no"] * 5 + ["yes"] * 2, ["no", "yes", "maybe"], target_ratio=1.0, cap_per_case=4)
    {'no': 0, 'yes': 3, 'maybe': 0}
    """
    labels = np.asarray(list(labels))
    counts = {c: int(np.sum(labels == c)) for c in classes}
    return rebalancing_quotas(counts, target_ratio, cap_per_case)


def roi_ranges(roi_voxels: pd.Series, labels: Iterable[str], classes: list[str], *, slack: float
               ) -> dict[str, tuple[float, float]]:
    """The ROI sizes (voxels) a generated sample of each class may have: the class's real
    training range widened by ``slack`` (``sampling.roi_size_slack``) on both sides.

    ``roi_voxels`` are the fold's training cases' ROI sizes, ``labels`` their classes;
    classes without training cases get no range.

    >>> ranges = roi_ranges(pd.Series([10, 20, 40]), ["a", "a", "b"], ["a", "b", "c"], slack=1.0)
    >>> {c: (float(low), float(high)) for c, (low, high) in ranges.items()}
    {'a': (5.0, 40.0), 'b': (20.0, 80.0)}
    """
    roi = roi_voxels.astype(int).groupby(np.asarray(list(labels)))
    factor = 1 + slack
    low, high = roi.min(), roi.max()
    return {c: (low[c] / factor, high[c] * factor) for c in classes if c in low}


def sample_seeds(seed: int, fold: str, model: str, label_index: int, count: int, attempt: int) -> np.ndarray:
    """Independent per-sample seeds, derived from the study seed and the sample's coordinates."""
    key = [seed, *map(ord, fold), *map(ord, model), label_index, attempt]
    return np.random.SeedSequence(key).generate_state(count, dtype=np.uint32).astype(np.int64)


def plausible_masks(mask_prob: np.ndarray, roi_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Binarise masks at 0.5 and accept those with an ROI size within ``roi_range`` (voxels)."""
    masks = (mask_prob >= 0.5).astype(np.uint8)
    sizes = masks.reshape(len(masks), -1).sum(axis=1)
    ok = (sizes > 0) & (sizes >= roi_range[0]) & (sizes <= roi_range[1])
    return masks, ok


REJECTION_REASONS = ("empty mask", "ROI below range", "ROI above range")
"""Why :func:`plausible_masks` rejects a sample, in the order they are checked."""


def rejection_reasons(masks: np.ndarray, roi_range: tuple[float, float]) -> dict[str, int]:
    """Count the binarised ``masks`` rejected per reason of :data:`REJECTION_REASONS`.

    A mask is counted once: empty first, then below ``roi_range[0]``, then above
    ``roi_range[1]`` voxels. The counts sum to the number rejected by
    :func:`plausible_masks` with the same range.
    """
    masks = np.asarray(masks)
    low, high = roi_range
    if not low <= high:
        raise ValueError(f"roi_range must be (low, high) with low <= high, got {roi_range}")
    sizes = masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:]))).astype(bool).sum(axis=1)
    empty = sizes == 0
    below = ~empty & (sizes < low)
    above = ~empty & ~below & (sizes > high)
    return {name: int(flags.sum()) for name, flags in zip(REJECTION_REASONS, (empty, below, above))}


LOW_STRUCTURE = "structure below min_structure"
"""Why a CycleGAN translation is rejected (:func:`radaug.generative.cyclegan.translate_with_quotas`)."""

ON_SHORTFALL = ("record", "stop")
"""Config ``sampling.on_shortfall``: what a generator that cannot fill a quota does.

``record`` keeps the plausible samples it has, writes the shortfall to its sampling
record and marks every arm it is part of :data:`COULD_NOT_GENERATE`; ``stop`` raises
:class:`~radaug.errors.SamplingError` (the job, and so the study, stops).
"""

COULD_NOT_GENERATE = "could not generate"
"""Verdict of an arm whose generator fell short of a quota in some fold (``on_shortfall: record``):
it is neither validated nor evaluated, and validation, evaluation and the report say so."""


def _reason_column(reason: str) -> str:
    return "rejected_" + reason.lower().replace(" ", "_")


REASON_COLUMNS = {reason: _reason_column(reason) for reason in (*REJECTION_REASONS, LOW_STRUCTURE)}
"""Column of the sampling record that counts each rejection reason."""

SAMPLING_COLUMNS = ("label", "requested", "accepted", "drawn", "rejected", *REASON_COLUMNS.values(),
                    "short", "reasons")
"""Columns of a sampling record: one row per class of one model and fold.

``requested`` (the quota), ``accepted`` (plausible samples kept), ``drawn`` (all
draws), ``rejected`` (``drawn - accepted``) and its split per reason, ``short``
(``accepted < requested``) and ``reasons``, the rejections in words with the
accepted range, as the :class:`~radaug.errors.SamplingError` of ``on_shortfall:
stop`` names them. The workflow writes it for every model and fold to
``synthetic/<model>/sampling/<fold>.csv`` with ``model`` and ``fold`` (the fold key).
"""


def _reasons_text(counts: Mapping[str, int], roi_range: tuple[float, float]) -> str:
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    return (f"{', '.join(parts) or 'none'}; accepted ROI size range [{roi_range[0]:.4g}, {roi_range[1]:.4g}] "
            "voxels (the class's real training ROI sizes widened by sampling.roi_size_slack)")


def class_record(label: str, requested: int, accepted: int, reasons: Mapping[str, int], text: str) -> dict:
    """One row of a sampling record (:data:`SAMPLING_COLUMNS`); ``reasons`` counts rejections per reason."""
    unknown = set(reasons) - set(REASON_COLUMNS)
    if unknown:
        raise ValueError(f"unknown rejection reasons {sorted(unknown)}; known: {list(REASON_COLUMNS)}")
    rejected = int(sum(reasons.values()))
    return {"label": label, "requested": int(requested), "accepted": int(accepted), "drawn": int(accepted) + rejected,
            "rejected": rejected, **{column: int(reasons.get(reason, 0)) for reason, column in REASON_COLUMNS.items()},
            "short": int(accepted) < int(requested), "reasons": text if rejected else ""}


def sampling_table(rows: Iterable[dict]) -> pd.DataFrame:
    """A sampling record from :func:`class_record` rows (no rows: the columns alone)."""
    return pd.DataFrame(list(rows), columns=list(SAMPLING_COLUMNS))


def check_on_shortfall(on_shortfall: str) -> None:
    if on_shortfall not in ON_SHORTFALL:
        raise ValueError(f"on_shortfall must be one of {ON_SHORTFALL}, got {on_shortfall!r}")


def draw_samples(model, label: str, label_index: int, seeds: np.ndarray, shapes=None
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """One sample of class ``label`` per seed: images, mask probabilities and each mask's origin.

    A joint model draws ``model.sample([label_index], seed=s)``. A mask-conditioned
    model is given ``shapes.sample(label, s)`` (an in-fold :class:`radaug.shape.ShapeModel`)
    and synthesises the image for it; the origin (parent case and transform, or
    shape-model coefficients and hash) is returned for the sample table. The
    same seed reproduces both.
    """
    if shapes is None:
        drawn = [model.sample(np.array([label_index]), seed=int(s)) for s in seeds]
        origins = [{} for _ in seeds]
    else:
        drawn, origins = [], []
        for s in seeds:
            mask, origin = shapes.sample(label, int(s))
            drawn.append(model.sample(np.array([label_index]), seed=int(s), masks=mask[None]))
            origins.append(origin)
    return np.concatenate([d[0] for d in drawn]), np.concatenate([d[1] for d in drawn]), origins


def sample_with_quotas(model, quotas: Mapping[str, int], classes: list[str], roi_ranges: Mapping[str, tuple],
                       *, seed: int, fold: str, model_name: str, max_attempts: int = 20, shapes=None,
                       on_shortfall: str = "stop"):
    """Draw each class's quota of plausible synthetic samples from a trained model.

    Each sample is drawn with its own recorded seed, so ``model.sample([label],
    seed=s)`` (given ``shapes``, with the mask ``shapes.sample(label, s)``)
    reproduces it exactly. Samples whose binarised mask is empty or
    whose ROI size falls outside the class's real range are rejected and
    redrawn, up to ``max_attempts`` rounds; rejections are counted per reason
    (:data:`REJECTION_REASONS`).

    Parameters
    ----------
    on_shortfall
        What a class that is still short after ``max_attempts`` rounds does
        (:data:`ON_SHORTFALL`): ``stop`` raises, ``record`` keeps the samples
        drawn so far and marks the class ``short`` in the sampling record.

    Returns
    -------
    images, masks, records, sampling
        Arrays of accepted samples and one record per sample (label, seed,
        attempt, roi_voxels and, given ``shapes``, the mask's origin:
        :data:`radaug.shape.ORIGIN_COLUMNS`), plus the sampling record: one
        row per class of ``classes`` (:data:`SAMPLING_COLUMNS`).

    Raises
    ------
    SamplingError
        With ``on_shortfall="stop"``, if a class cannot fill its quota within
        ``max_attempts`` rounds; the message counts the rejections per reason
        and gives the accepted ROI size range.
    """
    check_on_shortfall(on_shortfall)
    images, masks, records, rows = [], [], [], []
    for label in classes:
        need = requested = quotas.get(label, 0)
        c = classes.index(label)
        reasons = dict.fromkeys(REJECTION_REASONS, 0)
        attempt = 0
        while need > 0 and attempt < max_attempts:
            seeds = sample_seeds(seed, fold, model_name, c, need, attempt)
            img, mask_prob, origins = draw_samples(model, label, c, seeds, shapes)
            binary, ok = plausible_masks(mask_prob, roi_ranges[label])
            for name, n in rejection_reasons(binary[~ok], roi_ranges[label]).items():
                reasons[name] += n
            for i in np.flatnonzero(ok):
                images.append(img[i])
                masks.append(binary[i])
                records.append({"label": label, "seed": int(seeds[i]), "attempt": attempt,
                                "roi_voxels": int(binary[i].sum()), **origins[i]})
            need -= int(ok.sum())
            attempt += 1
        text = _reasons_text(reasons, roi_ranges[label]) if label in roi_ranges else ""
        row = class_record(label, requested, requested - need, reasons, text)
        rows.append(row)
        if need > 0 and on_shortfall == "stop":
            raise SamplingError(
                f"{model_name} in fold {fold}: only {row['accepted']} of {requested} plausible "
                f"'{label}' samples after {max_attempts} rounds ({row['rejected']} rejected: {text}). Train longer "
                "(generative.steps), or raise sampling.max_attempts / sampling.roi_size_slack (ROI size "
                "rejections), or drop the model from generative.models; sampling.on_shortfall: record keeps "
                "the other arms of the study running."
            )
    return images, masks, records, sampling_table(rows)


def shortfall_notes(sampling: pd.DataFrame, arms: Iterable[str]) -> dict[str, str]:
    """The arms that could not generate, each with a note saying which generator fell short where and why.

    Parameters
    ----------
    sampling
        Sampling records of every model and fold (:data:`SAMPLING_COLUMNS` with
        ``model`` and ``fold``, the fold key), concatenated; may be empty.
    arms
        Arm names; a combined arm (``classical+cvae``) could not generate when
        any of its generators fell short.

    Returns
    -------
    dict
        Arm → note (:data:`COULD_NOT_GENERATE` and the short classes per
        model and fold with the rejections per reason), for the arms concerned only.
    """
    if sampling.empty:
        return {}
    short = sampling[sampling["short"].astype(str).str.lower() == "true"]
    by_model = {}
    for model, rows in short.groupby("model", sort=True):
        parts = [f"'{r.label}' in {r.fold}: {int(r.accepted)} of {int(r.requested)} plausible samples "
                 f"({int(r.drawn)} drawn; rejected: {r.reasons or 'none'})" for r in rows.itertuples()]
        by_model[model] = f"{model} fell short of its quota: " + "; ".join(parts)
    from radaug.arms import arm_components  # here: radaug.arms imports this module for the quotas

    notes = {}
    for arm in arms:
        fallen = [by_model[c] for c in arm_components(arm) if c in by_model]
        if fallen:
            notes[arm] = f"{COULD_NOT_GENERATE}: " + " | ".join(fallen)
    return notes
