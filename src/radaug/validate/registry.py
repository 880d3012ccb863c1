"""Every validation metric, declared once: what it measures, how it is computed and judged.

One :class:`MetricSpec` per metric in :data:`METRICS` carries its name,
direction, range, protocol (what it compares), function, default verdict rule,
null distribution, the defect its power is stated for and the negative controls
that must fail it. :func:`radaug.validate.summary.validate_arm`, the null draws,
the controls, the thresholds and the plots iterate this registry; none of them
lists metric names. Adding a metric is one entry here and its function
(ARCHITECTURE.md, "where to change what").

The registry names functions by import path (``"module:attribute"``) and imports
them on first use, so this module needs no scientific stack: checking a config's
``validation.thresholds`` at every Snakemake start reads directions from here.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

PROTOCOLS: dict[str, str] = {
    "features": (
        "function(reference, candidate) on feature matrices; value: median over size-matched draws of "
        "function(half A, candidate), baseline: the same of function(half A, half B), over seeded "
        "group-preserving halves A and B of the real training rows"),
    "detection": (
        "a classifier telling candidate from reference rows, function(reference, candidate, seed=, "
        "groups_reference=, groups_candidate=); value and baseline as for 'features', on fewer splits"),
    "holdout": (
        "function(candidate, train, holdout) on feature matrices; value: the candidate against all "
        "training rows, baseline: median of function(half B, half A, holdout); judged on the holdout's size"),
    "image_holdout": (
        "function(candidate, train, holdout) on image patches (needs patches); value and baseline as for "
        "'holdout'"),
    "image_plausibility": (
        "function(images, masks, real_masks, intensity_range) on image patches (needs patches); value: "
        "the candidate against all training masks, baseline: median of half B against half A's masks"),
    "labels": (
        "function(train_class, train_other, candidate, seed=) -> (value, baseline) on feature matrices "
        "(needs the real training rows of the other classes)"),
}
"""How a metric's value and real-vs-real baseline are computed, by protocol name
(:func:`radaug.validate.summary.validate_arm` implements each)."""

HOLDOUT_PROTOCOLS = ("holdout", "image_holdout")
"""Protocols whose verdict needs enough holdout rows (the others need enough compared rows)."""

NULLS = ("permutation", "exchange", "split")
"""Null distributions of the null rule (:mod:`radaug.validate.null`): ``permutation``: re-partitions of
the pooled training and candidate rows; ``exchange``: re-partitions of all the cell's training, candidate and
holdout rows into three sets of the tested sizes, whole groups at a time, a copy always beside its parent
(the holdout gates, :func:`radaug.validate.summary._exchange_draws`);
``split``: seeded real-vs-real splits of the training rows, half B against half A (no gate at present;
the power simulation's null; see :func:`radaug.validate.summary._permutation_draws` for which gate uses
which and why)."""

RULE_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "minimize": (("warn_factor", "fail_factor", "abs_tol"),),
    "maximize": (("pass_factor", "fail_factor", "abs_tol"), ("pass_min", "fail_min")),
}
"""Per direction, the key sets of the verdict rules a metric of that direction may have
(:data:`radaug.validate.thresholds.DEFAULT_THRESHOLDS` says what each rule does)."""


@dataclass(frozen=True)
class MetricSpec:
    """Declaration of one validation metric.

    Attributes
    ----------
    name
        Key in :data:`METRICS` and value of the ``metric`` column of summaries.
    direction
        ``"minimize"`` if smaller values mean more trustworthy candidates,
        ``"maximize"`` otherwise.
    range
        Closed interval ``(low, high)`` of possible values; ``math.inf`` if unbounded.
    description
        One line on what the metric measures.
    protocol
        What the metric compares and how its value and baseline are computed:
        a key of :data:`PROTOCOLS`.
    function
        ``"module:attribute"`` of the function computing it, called as its
        protocol says. Metrics computed together (PRDC) share one function that
        returns a mapping of their values by name; it is called once for them all.
    thresholds
        Default verdict rule; its keys must be one of :data:`RULE_KEYS` of the
        direction (checked at import and by :func:`radaug.validate.thresholds.merge_thresholds`).
    keywords
        Fixed keyword arguments of ``function`` (e.g. ``method="spearman"``).
    settings
        Keyword arguments of ``function`` taken from :func:`validate_arm`'s
        arguments of the same name (``alpha``, ``nearest_k``).
    null
        The gate's null distribution under ``validation.rule: null`` (one of
        :data:`NULLS`), or None: the gate keeps its factor rule.
    null_function
        The function of the statistic the null rule tests (the ``tested_value``
        and every null draw) instead of ``function``; None: ``function``. Either
        a faster function giving the same values (the holdout gates: hundreds
        of calls per cell), a continuous counterpart of a value that the
        permutation cannot resolve (``strong_pairs_kept``: the share kept is 0
        on every side that mixes training rows with noise; see
        :func:`radaug.validate.metrics.strong_pairs_strength`), or a version
        whose approximate null holds its level (``correlation_distance``: the
        pairs' correlation differences in standard errors,
        :func:`radaug.validate.metrics.correlation_contrast`), or a version that
        a few far-out rows cannot hide from (the Fréchet, means-only Fréchet and
        Wasserstein distances, tested on the pooled normal scores,
        :func:`radaug.validate.metrics.ranked_location_distances`).
    standardise
        How the permutation null standardises each set on its own before pooling
        them (``"zscore"`` or ``"rank"``; correlation gates), or None: pooled as is.
    draw_keywords
        Fixed keyword arguments of the null statistic (``null_function``, else
        ``function``) in every *draw*: the permutation draws, the real-vs-real
        split draws and the power simulation's defective sets alike, but not the
        cell's tested value. They say how a draw scores a degenerate side that the
        tested value reports as NaN: ``strong_pairs_strength`` gets ``empty=1 /
        threshold`` (a reference side without a strong pair has none to lose, so
        the draw counts at the largest share instead of dropping out of the null).
    null_range
        The range of the statistic the null tests where it is not ``range``
        (a ``null_function`` on another scale), or None. It sets the scale of
        the min-P tie-break (:func:`radaug.validate.null.tie_scale`).
    training_norm
        Whether each permutation draw also gets ``norm=``: the training rows'
        correlation matrix in the statistic's ``method`` (correlation distances),
        so the draws divide by the norm the tested value divides by
        (:func:`radaug.validate.summary._standardised_draw`). Needs a
        ``permutation`` null and ``standardise``; the split draws compare real
        halves and keep their reference's own norm.
    pair_weights
        Whether each permutation draw also gets ``weights=``: the feature pairs'
        weights of the cell's standardised pool, which the tested value computes
        from the same rows (the Pearson distance's null statistic,
        :func:`radaug.validate.metrics.correlation_contrast`, which divides by no
        norm). Needs a ``permutation`` null and ``standardise``; the split draws
        compute their own.
    defect
        The defect of :data:`radaug.validate.null.DEFECTS` the gate is designed to
        see, whose smallest detectable size is its ``min_detectable``, or None: no
        power simulation. (``detection_auc`` had none until 2026-12-03, a
        cross-validated forest per draw and defect size being too slow for every
        cell; see :func:`radaug.validate.summary.shared_split_nulls`.)
    must_fail
        Negative control arms (:mod:`radaug.validate.controls`) that must fail this gate.
    """

    name: str
    direction: Literal["minimize", "maximize"]
    range: tuple[float, float]
    description: str
    protocol: str
    function: str
    thresholds: Mapping[str, float]
    keywords: Mapping[str, object] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    null: Literal["permutation", "exchange", "split"] | None = None
    null_function: str | None = None
    standardise: Literal["zscore", "rank"] | None = None
    draw_keywords: Mapping[str, object] = field(default_factory=dict)
    null_range: tuple[float, float] | None = None
    training_norm: bool = False
    pair_weights: bool = False
    defect: str | None = None
    must_fail: tuple[str, ...] = ()

    def call(self, *, null: bool = False, draw: bool = False) -> tuple[str, tuple]:
        """The function call that computes this metric: metrics with equal calls are one family, computed once.

        ``null``: the null statistic's call (``null_function`` if set); ``draw``: a
        null draw's call (the null statistic with ``draw_keywords`` too).
        """
        path = (self.null_function or self.function) if null or draw else self.function
        return path, tuple(sorted({**self.keywords, **(self.draw_keywords if draw else {})}.items()))

    def bound(self, settings: Mapping[str, object], *, null: bool = False, draw: bool = False) -> Callable:
        """The function of :meth:`call` with its keywords and settings bound."""
        path, keywords = self.call(null=null, draw=draw)
        return functools.partial(resolve(path), **dict(keywords), **{k: settings[k] for k in self.settings})


@functools.cache
def resolve(path: str) -> Callable:
    """The object at ``"module:attribute"``, imported on first use."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


_M = "radaug.validate.metrics:"
_PRDC = "radaug.validate.manifold:prdc_zscored"
_HOLDOUT_FAST = _M + "holdout_scores"
_RANKED = _M + "ranked_location_distances"
_NOISE, _COPY = "control_negative_noise", "control_negative_copy"
_STRONG = 0.7  # strong_pairs_kept's |r| threshold, also the largest share 1 / 0.7 its null statistic can take
_LABEL, _SHUFFLE = "control_negative_label", "control_negative_shuffle"

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "ks_fdr", "minimize", (0.0, 1.0),
            "Share of features whose marginal distributions differ "
            "(two-sample KS test, Benjamini-Hochberg FDR).",
            "features", _M + "ks_fdr", {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.10},
            settings=("alpha",), null="permutation", defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "wasserstein_distance", "minimize", (0.0, math.inf),
            "Mean per-feature Wasserstein-1 distance, in reference standard deviations; its p-value "
            "tests the distance of the pooled normal scores (ranked_location_distances).",
            "features", _M + "wasserstein_distance", {"warn_factor": 1.5, "fail_factor": 3.0, "abs_tol": 0.05},
            null="permutation", null_function=_RANKED, defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "correlation_distance", "minimize", (0.0, math.inf),
            "Relative Frobenius distance between the Pearson correlation matrices; its p-value tests "
            "the pairs' correlation differences in standard errors (correlation_contrast).",
            "features", _M + "correlation_distance", {"warn_factor": 1.5, "fail_factor": 2.0, "abs_tol": 0.05},
            null="permutation", null_function=_M + "correlation_contrast", standardise="zscore", pair_weights=True,
            defect="decorrelation", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "correlation_distance_spearman", "minimize", (0.0, math.inf),
            "Relative Frobenius distance between the Spearman correlation matrices.",
            "features", _M + "correlation_distance", {"warn_factor": 1.5, "fail_factor": 2.0, "abs_tol": 0.05},
            keywords={"method": "spearman"}, null="permutation", standardise="rank", training_norm=True,
            defect="decorrelation", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "strong_pairs_kept", "maximize", (0.0, 1.0),
            f"Share of strongly correlated real feature pairs (Spearman |r| >= {_STRONG:g}) whose "
            "candidate correlation keeps sign and strength; its p-value tests the share of "
            "those pairs' correlation the candidate keeps (strong_pairs_strength).",
            "features", _M + "strong_pairs_kept", {"pass_factor": 0.6, "fail_factor": 0.4, "abs_tol": 0.05},
            keywords={"threshold": _STRONG}, null="permutation", null_function=_M + "strong_pairs_strength",
            standardise="rank", draw_keywords={"empty": 1.0 / _STRONG}, null_range=(-math.inf, 1.0 / _STRONG),
            defect="decorrelation", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "frechet_distance", "minimize", (0.0, math.inf),
            "Frechet distance between Gaussians fitted to z-scored features "
            "(Frechet Radiomics Distance); its p-value tests the distance of the pooled normal scores.",
            "features", _M + "frechet_distance", {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.0},
            null="permutation", null_function=_RANKED, defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "frechet_means_distance", "minimize", (0.0, math.inf),
            "Means-only Frechet radiomics distance: squared distance of the z-scored feature means; its "
            "p-value tests the distance of the pooled normal scores.",
            "features", _M + "frechet_means_distance", {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.05},
            null="permutation", null_function=_RANKED, defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "precision", "maximize", (0.0, 1.0),
            "Share of candidate rows inside the real k-NN manifold (fidelity; Naeem et al. 2020).",
            "features", _PRDC, {"pass_factor": 0.8, "fail_factor": 0.6, "abs_tol": 0.05},
            settings=("nearest_k",), null="permutation", defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "recall", "maximize", (0.0, 1.0),
            "Share of real rows inside the candidate k-NN manifold (diversity).",
            "features", _PRDC, {"pass_factor": 0.8, "fail_factor": 0.6, "abs_tol": 0.05},
            settings=("nearest_k",), null="permutation", defect="variance_shrink",
        ),
        MetricSpec(
            "density", "maximize", (0.0, math.inf),
            "Mean number of real k-NN balls holding a candidate row, over k (about 1 if matched).",
            "features", _PRDC, {"pass_factor": 0.7, "fail_factor": 0.5, "abs_tol": 0.05},
            settings=("nearest_k",), null="permutation", defect="mean_shift", must_fail=(_NOISE, _SHUFFLE),
        ),
        MetricSpec(
            "coverage", "maximize", (0.0, 1.0),
            "Share of real k-NN balls holding a candidate row; drops when a mode is missing "
            "(mode collapse).",
            "features", _PRDC, {"pass_factor": 0.9, "fail_factor": 0.8, "abs_tol": 0.02},
            settings=("nearest_k",), null="permutation", defect="missing_mode", must_fail=(_NOISE, _SHUFFLE),
        ),
        MetricSpec(
            "detection_auc", "minimize", (0.0, 1.0),
            "Cross-validated AUC of a random forest telling candidate from real rows "
            "(0.5 = indistinguishable).",
            "detection", "radaug.validate.detection:detection_auc",
            {"warn_factor": 1.0, "fail_factor": 1.2, "abs_tol": 0.10},
            null="permutation", defect="mean_shift", must_fail=(_NOISE,),
        ),
        MetricSpec(
            "memorization_ratio", "maximize", (0.0, math.inf),
            "Median distance of candidate rows to the closest training row over "
            "the same for unseen real rows; about 1 if nothing is copied.",
            "holdout", _M + "memorization_ratio", {"pass_min": 0.8, "fail_min": 0.5},
            null="exchange", null_function=_HOLDOUT_FAST, defect="copies", must_fail=(_COPY,),
        ),
        MetricSpec(
            "share_closer_than_holdout", "minimize", (0.0, 1.0),
            "Share of candidate rows closer to a training row than the 5th "
            "percentile of unseen real rows.",
            "holdout", _M + "share_closer_than_holdout", {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.25},
            null="exchange", null_function=_HOLDOUT_FAST, defect="copies", must_fail=(_COPY,),
        ),
        MetricSpec(
            "nndr_ratio", "maximize", (0.0, math.inf),
            "Median nearest-neighbour distance ratio (closest / second closest training row) "
            "of candidate rows over that of unseen real rows; near 0 for copies.",
            "holdout", _M + "nndr_ratio", {"pass_min": 0.7, "fail_min": 0.4},
            null="exchange", null_function=_HOLDOUT_FAST, defect="copies", must_fail=(_COPY,),
        ),
        MetricSpec(
            "image_memorization_ratio", "maximize", (0.0, math.inf),
            "memorization_ratio in image space: patch-level normalised distance to the "
            "closest training patch, candidate over unseen real.",
            "image_holdout", "radaug.validate.images:image_memorization_ratio", {"pass_min": 0.8, "fail_min": 0.5},
            null="exchange", defect="copies", must_fail=(_COPY,),
        ),
        MetricSpec(
            "label_disagreement", "minimize", (0.0, 1.0),
            "Share of candidate rows that a classifier fit on real training features "
            "assigns to another class than intended.",
            "labels", "radaug.validate.detection:label_disagreement",
            {"warn_factor": 1.5, "fail_factor": 2.5, "abs_tol": 0.10},
            null="permutation", null_function="radaug.validate.detection:label_margin",
            null_range=(-math.inf, math.inf), defect="mislabelled",
            must_fail=(_LABEL,),
        ),
        MetricSpec(
            "implausible_share", "minimize", (0.0, 1.0),
            "Share of physically implausible patches: empty mask, intensities outside "
            "the modality's physical range, or ROI size outside the real range.",
            "image_plausibility", "radaug.validate.images:implausible_share",
            {"warn_factor": 1.5, "fail_factor": 3.0, "abs_tol": 0.02},
            null="permutation", defect="implausible",
        ),
    )
}
"""Every validation metric by name, in the order summaries list them."""


def rule_keys_for(keys, direction: str | None = None) -> tuple[str, ...] | None:
    """The key set of :data:`RULE_KEYS` that ``keys`` make up (of ``direction``, or of either), or None."""
    kinds = RULE_KEYS[direction] if direction else [kind for kinds in RULE_KEYS.values() for kind in kinds]
    return next((kind for kind in kinds if set(kind) == set(keys)), None)


def family(name: str) -> tuple[str, ...]:
    """Metrics computed by the same function call as ``name`` (itself included), in registry order."""
    spec = METRICS[name]
    return tuple(m.name for m in METRICS.values() if m.call() == spec.call())


def must_fail(control: str) -> tuple[str, ...]:
    """The gates a negative control arm must fail, in registry order."""
    return tuple(m.name for m in METRICS.values() if control in m.must_fail)


def _check() -> None:
    """Every entry names a known protocol, null and direction, and a rule its direction allows."""
    for spec in METRICS.values():
        problems = [
            f"protocol {spec.protocol!r} is not one of {sorted(PROTOCOLS)}" if spec.protocol not in PROTOCOLS else "",
            f"direction {spec.direction!r} is not one of {sorted(RULE_KEYS)}" if spec.direction not in RULE_KEYS
            else "" if rule_keys_for(spec.thresholds, spec.direction) else
            f"rule keys {sorted(spec.thresholds)} are none of {RULE_KEYS[spec.direction]} ({spec.direction})",
            f"null {spec.null!r} is not one of {NULLS}" if spec.null not in (*NULLS, None) else "",
            "null 'exchange' needs protocol 'holdout' or 'image_holdout' (its draws re-partition training, "
            "candidate and holdout rows)" if spec.null == "exchange" and spec.protocol not in HOLDOUT_PROTOCOLS
            else "",
            f"protocol 'holdout' needs null 'exchange', 'split' or none, not {spec.null!r} (a permutation of "
            "training and candidate rows has no holdout side)"
            if spec.protocol == "holdout" and spec.null not in ("exchange", "split", None) else "",
            "training_norm needs null 'permutation' and a standardise" if spec.training_norm
            and (spec.null != "permutation" or spec.standardise is None) else "",
            "pair_weights needs null 'permutation' and a standardise" if spec.pair_weights
            and (spec.null != "permutation" or spec.standardise is None) else "",
            "draw_keywords 'empty' must be 1 / its threshold (the largest share a draw can keep)"
            if "empty" in spec.draw_keywords and "threshold" in spec.keywords
            and spec.draw_keywords["empty"] != 1.0 / spec.keywords["threshold"] else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(f"radaug.validate.registry: metric {spec.name!r}: {'; '.join(problems)}.")


_check()
