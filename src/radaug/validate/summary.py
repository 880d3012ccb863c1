"""Validation summary of one candidate set: metric values, real-vs-real baselines, verdicts.

:func:`validate_arm` compares the candidate (synthetic or augmented) rows of one
fold and one class with the real training rows they were derived from, and
judges each metric against the same metric computed between two *real* sets:
two disjoint, seeded halves A and B of the fold's real training rows of the
class. "How different is the candidate" is thus read against "how different
are two real samples of this size". The caller loops over folds, arms and
classes and adds those columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from radaug.errors import ConfigError, RadaugError
from radaug.splits import grouped_halves
from radaug.validate.detection import detection_auc, label_disagreement
from radaug.validate.images import image_memorization_ratio, plausibility
from radaug.validate.manifold import prdc
from radaug.validate.metrics import (
    METRICS,
    _aligned,
    _zscore,
    correlation_distance,
    frechet_distance,
    frechet_means_distance,
    ks_fdr,
    memorization_ratio,
    nndr_ratio,
    share_closer_than_holdout,
    strong_pairs_kept,
    wasserstein_distance,
)

VERDICTS = ("pass", "warn", "fail", "insufficient")
"""Possible verdicts, from best to no verdict at all."""

SUMMARY_COLUMNS = [
    "metric",
    "value",
    "baseline",
    "direction",
    "verdict",
    "n_reference",
    "n_candidate",
    "n_holdout",
]
"""Columns of the table :func:`validate_arm` returns, in order."""

_MINIMIZE = ("warn_factor", "fail_factor", "abs_tol")
_MAXIMIZE_RELATIVE = ("pass_factor", "fail_factor", "abs_tol")
_MAXIMIZE_ABSOLUTE = ("pass_min", "fail_min")

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "ks_fdr": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.10},
    "wasserstein_distance": {"warn_factor": 1.5, "fail_factor": 3.0, "abs_tol": 0.05},
    "correlation_distance": {"warn_factor": 1.5, "fail_factor": 2.0, "abs_tol": 0.05},
    "correlation_distance_spearman": {"warn_factor": 1.5, "fail_factor": 2.0, "abs_tol": 0.05},
    "strong_pairs_kept": {"pass_factor": 0.6, "fail_factor": 0.4, "abs_tol": 0.05},
    "frechet_distance": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.0},
    "frechet_means_distance": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.05},
    "precision": {"pass_factor": 0.8, "fail_factor": 0.6, "abs_tol": 0.05},
    "recall": {"pass_factor": 0.8, "fail_factor": 0.6, "abs_tol": 0.05},
    "density": {"pass_factor": 0.7, "fail_factor": 0.5, "abs_tol": 0.05},
    "coverage": {"pass_factor": 0.9, "fail_factor": 0.8, "abs_tol": 0.02},
    "detection_auc": {"warn_factor": 1.0, "fail_factor": 1.2, "abs_tol": 0.10},
    "memorization_ratio": {"pass_min": 0.8, "fail_min": 0.5},
    "share_closer_than_holdout": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.25},
    "nndr_ratio": {"pass_min": 0.7, "fail_min": 0.4},
    "image_memorization_ratio": {"pass_min": 0.8, "fail_min": 0.5},
    "label_disagreement": {"warn_factor": 1.5, "fail_factor": 2.5, "abs_tol": 0.10},
    "implausible_share": {"warn_factor": 1.5, "fail_factor": 3.0, "abs_tol": 0.02},
}
"""Verdict thresholds per metric; do not mutate, pass overrides to :func:`validate_arm`.

Three kinds of rule, told apart by their keys:

* metrics to **minimize** (``warn_factor, fail_factor, abs_tol``) pass if
  ``value <= baseline * warn_factor + abs_tol``, warn if
  ``value <= baseline * fail_factor + abs_tol`` and fail otherwise;
* metrics to **maximize relative to the baseline** (``pass_factor, fail_factor,
  abs_tol``) pass if ``value >= baseline * pass_factor - abs_tol``, warn if
  ``value >= baseline * fail_factor - abs_tol`` and fail otherwise;
* ratios to a holdout (``pass_min, fail_min``: ``memorization_ratio``,
  ``nndr_ratio``, ``image_memorization_ratio``, about 1 for novel data) pass if
  ``value >= pass_min``, warn if ``value >= fail_min`` and fail otherwise; their
  baseline is reported for context only.

Rationale, from simulations with 10-100 correlated, partly skewed features and
40-300 training, 10-150 holdout and 20-1200 candidate rows per class: the
defaults should pass a perfect generator (fresh draws of the real distribution)
in about 95% of runs or more, and fail copies of training rows.

* ``ks_fdr``: under BH the chance of *any* false discovery is at most alpha when
  nothing differs, so the baseline is usually 0; ``abs_tol = 0.10`` tolerates
  one false discovery among 10 features.
* ``correlation_distance``: value/baseline stayed below 1.5 in 95% of runs;
  independent noise gives about 1 against radiomics baselines of 0.3-0.4.
* ``strong_pairs_kept``: with 30 rows per set the share of kept strong pairs
  of fresh real draws varied from about 0.6 to 1 (phantom, 102 features).
* ``frechet_distance``: the plug-in estimate is biased upwards by roughly F/n,
  which makes value/baseline heavy-tailed for few features (95th percentile up
  to about 4 with 10 features, about 1.3 with 50 or more); hence wider factors.
* ``coverage``: about 0.95-1 for matching sets of a few hundred rows (k = 5);
  a candidate that lacks a mode holding a share ``s`` of the real rows loses
  about ``s`` of coverage, so the gate fails a missing mode of 20% or more.
* ``detection_auc``: baseline about 0.5 for large sets, but 0.4-0.7 with
  30 rows per set; passes up to ``baseline + 0.1`` and fails above
  ``1.2 * baseline + 0.1`` (0.7 for a baseline of 0.5).
* ``memorization_ratio``: its 5th percentile stayed at or above 0.78; 0.5 means
  candidate rows sit twice as close to training rows as unseen real rows do.
* ``share_closer_than_holdout``: about 0.05 for a perfect generator, but the 5th
  percentile of a small holdout is noisy: ``value - 2 * baseline`` stayed below
  0.25 in 95% of runs with 10 holdout rows.
"""


def _rule_kind(metric: str, rule: Mapping) -> tuple[str, ...]:
    for kind in (_MINIMIZE, _MAXIMIZE_RELATIVE, _MAXIMIZE_ABSOLUTE):
        if set(kind) == set(rule):
            return kind
    raise ConfigError(f"thresholds.{metric}: cannot tell the rule kind from keys {sorted(rule)}.")


def merge_thresholds(overrides: Mapping | None) -> dict[str, dict[str, float]]:
    """Defaults updated per metric and key with ``overrides``; checked for consistency."""
    merged = {metric: dict(rule) for metric, rule in DEFAULT_THRESHOLDS.items()}
    for metric, rule in (overrides or {}).items():
        if metric not in merged:
            raise ConfigError(
                f"thresholds: unknown metric {metric!r}; use one of {sorted(merged)}."
            )
        if not isinstance(rule, Mapping):
            raise ConfigError(
                f"thresholds.{metric}: expected a mapping of {sorted(merged[metric])}, "
                f"got {rule!r}."
            )
        unknown = set(rule) - set(merged[metric])
        if unknown:
            raise ConfigError(
                f"thresholds.{metric}: unknown keys {sorted(unknown)}; "
                f"use {sorted(merged[metric])}."
            )
        for key, value in rule.items():
            try:
                merged[metric][key] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"thresholds.{metric}.{key}: expected a number, got {value!r}."
                ) from None
    for metric, rule in merged.items():
        kind = _rule_kind(metric, rule)
        if kind == _MINIMIZE:
            consistent = 0 < rule["warn_factor"] <= rule["fail_factor"] and rule["abs_tol"] >= 0
            needed = "0 < warn_factor <= fail_factor and abs_tol >= 0"
        elif kind == _MAXIMIZE_RELATIVE:
            consistent = 0 <= rule["fail_factor"] <= rule["pass_factor"] and rule["abs_tol"] >= 0
            needed = "0 <= fail_factor <= pass_factor and abs_tol >= 0"
        else:
            consistent = rule["fail_min"] <= rule["pass_min"]
            needed = "fail_min <= pass_min"
        if not consistent:
            raise ConfigError(f"thresholds.{metric}: need {needed}, got {rule}.")
    return merged


def verdict(value: float, baseline: float, rule: Mapping[str, float]) -> str:
    """Verdict of one metric value under one rule; see :data:`DEFAULT_THRESHOLDS`.

    Returns ``"insufficient"`` if the value, or a baseline the rule needs, is NaN.
    """
    kind = _rule_kind("?", rule)
    if math.isnan(value):
        return "insufficient"
    if kind == _MAXIMIZE_ABSOLUTE:
        if value >= rule["pass_min"]:
            return "pass"
        return "warn" if value >= rule["fail_min"] else "fail"
    if math.isnan(baseline):
        return "insufficient"
    if kind == _MINIMIZE:
        if value <= baseline * rule["warn_factor"] + rule["abs_tol"]:
            return "pass"
        return "warn" if value <= baseline * rule["fail_factor"] + rule["abs_tol"] else "fail"
    if value >= baseline * rule["pass_factor"] - rule["abs_tol"]:
        return "pass"
    return "warn" if value >= baseline * rule["fail_factor"] - rule["abs_tol"] else "fail"


@dataclass(frozen=True)
class Patches:
    """Image patches of the three sets of one fold, arm and class, for the image-space checks.

    Each ``*_images`` / ``*_masks`` pair is ``(N, *patch)`` and row-aligned with
    the corresponding feature table given to :func:`validate_arm`.

    Attributes
    ----------
    intensity_range
        Physically possible intensity interval of the modality, or None
        (see :func:`radaug.validate.images.physical_intensity_range`).
    """

    train_images: np.ndarray
    train_masks: np.ndarray
    holdout_images: np.ndarray
    holdout_masks: np.ndarray
    candidate_images: np.ndarray
    candidate_masks: np.ndarray
    intensity_range: tuple[float, float] | None = None


N_SPLITS = 5
"""Seeded, group-preserving splits of the real training rows into halves A and B.

One split is one draw of "two real samples"; with few cases per class a single
draw made the baseline (and so the verdict) depend on which cases fell where.
Values and baselines are medians over all splits."""

N_SUBSAMPLES = 25
"""Size-matching subsamples of the larger side (candidate or half B) in all, spread evenly over the splits."""

N_DETECTION_SPLITS = 3
"""Splits that ``detection_auc`` is computed on (one cross-validated forest each side per split)."""


def validate_arm(
    train_real: pd.DataFrame,
    holdout_real: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    feature_columns: list[str],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    nearest_k: int = 5,
    min_rows: int = 10,
    train_other: pd.DataFrame | None = None,
    patches: Patches | None = None,
    group_column: str | None = "case_id",
    detection: bool = True,
) -> pd.DataFrame:
    """Validate the candidate rows of one fold, arm and class against real data.

    The real training rows of the class are split into two seeded, disjoint
    halves A and B (the real-vs-real baseline of the issue: the same population,
    no row shared), whole groups at a time (``group_column``, see
    :func:`radaug.splits.grouped_halves`): near-duplicates split across the
    halves would make the baseline look better than two independent real
    samples can.

    * **Distribution metrics** (KS + FDR, Wasserstein-1, correlation distances,
      strong pairs, Fréchet and means-only Fréchet, precision/recall/density/
      coverage, detection AUC): ``value = metric(A, candidate)`` and
      ``baseline = metric(A, B)``, each the median over :data:`N_SPLITS`
      seeded splits into halves (:data:`N_DETECTION_SPLITS` for the detection
      AUC). These estimates depend on sample size, so the larger of candidate
      and B is subsampled to the other's size (:data:`N_SUBSAMPLES` draws in
      all). Features are z-scored by A for Wasserstein, Fréchet and PRDC.
    * **Memorization** (``memorization_ratio``, ``share_closer_than_holdout``,
      ``nndr_ratio`` and, given ``patches``, ``image_memorization_ratio``):
      ``value = metric(candidate, train_real, holdout_real)``, where the holdout
      is real data the generator never saw (the fold's test cases in the
      workflow); ``baseline = metric(B, A, holdout_real)``, median over the
      splits: real rows that copy nothing.
    * ``label_disagreement`` (needs ``train_other``): see
      :func:`~radaug.validate.detection.label_disagreement`; the baseline is the
      out-of-fold disagreement on the real training rows.
    * ``implausible_share`` (needs ``patches``): the share of candidate patches
      failing :func:`~radaug.validate.images.plausibility`, with the ROI size
      range of all real training patches; baseline: the share of B outside A's
      range.

    Verdicts follow :data:`DEFAULT_THRESHOLDS` updated with ``thresholds``.

    Parameters
    ----------
    train_real
        Real training rows of this fold and class (the rows the candidate was
        derived from).
    holdout_real
        Real rows of this class that neither the candidate nor its generator saw.
    candidate
        Synthetic or augmented rows of this fold, arm and class.
    feature_columns
        Feature columns to compare; other columns (ids, labels) are ignored.
    thresholds
        Partial overrides of :data:`DEFAULT_THRESHOLDS`, e.g.
        ``{"frechet_distance": {"fail_factor": 5.0}}``.
    alpha
        FDR level of ``ks_fdr``.
    seed
        Seed of the halves, the subsamples and the classifiers.
    nearest_k
        k of the PRDC k-NN balls.
    min_rows
        Fewest rows a comparison needs for a verdict: the size-matched
        candidate (distribution and image-plausibility metrics) or the holdout
        (memorization metrics); below it the value and baseline are reported
        with verdict ``"insufficient"``. The workflow uses config
        ``validation.min_rows`` (10): with 8 rows per side one unusual real case
        moved Fréchet distance and detection AUC past their gates for held-out
        real data (the positive control) on Br35H.
    train_other
        Real training rows of the other classes; enables ``label_disagreement``.
    patches
        Image patches row-aligned with the three tables; enables the image-space checks.
    group_column
        Column naming the group of dependent rows (the real case a row is or was
        derived from, or its near-duplicate group: the workflow passes ``group``
        of ``splits/folds.csv``). The real halves never split a group, and the
        detection folds keep a group together; candidate rows where it is
        missing are their own group. None: every row independent.
    detection
        Whether to compute ``detection_auc`` (the slowest metric).

    Returns
    -------
    pandas.DataFrame
        One row per computed metric, in :data:`~radaug.validate.metrics.METRICS`
        order, with columns :data:`SUMMARY_COLUMNS`.

    Raises
    ------
    RadaugError
        If ``feature_columns`` is empty or a table lacks some of them.
    ConfigError
        If ``thresholds`` names an unknown metric or key, or is inconsistent.
    """
    if not feature_columns:
        raise RadaugError(
            "validate_arm: feature_columns is empty; pass the feature column names."
        )
    tables = {"train_real": train_real, "holdout_real": holdout_real, "candidate": candidate}
    if train_other is not None:
        tables["train_other"] = train_other
    for name, table in tables.items():
        missing = [c for c in feature_columns if c not in table.columns]
        if missing:
            raise RadaugError(
                f"validate_arm: {name} lacks feature columns {missing[:5]} "
                f"({len(missing)} in all); pass tables extracted with the same feature set."
            )
    rules = merge_thresholds(thresholds)
    train, holdout, cand = (t[feature_columns] for t in (train_real, holdout_real, candidate))
    row_groups = _row_groups(train_real, group_column)
    splits = [grouped_halves(row_groups, [seed, r]) for r in range(N_SPLITS)]
    # Per split: half A, and size-matched draws of candidate rows and of half B's rows.
    by_split = [(a, *_size_matched_draws(b, len(cand), [seed, r])) for r, (a, b) in enumerate(splits)]
    candidate_sets = [(a, c) for a, draws, _ in by_split for c in draws]
    baseline_sets = [(a, b) for a, _, draws in by_split for b in draws]

    def compared(metric: Callable) -> tuple[float, float]:
        values = [metric(train.iloc[a], cand.iloc[c]) for a, c in candidate_sets]
        baselines = [metric(train.iloc[a], train.iloc[b]) for a, b in baseline_sets]
        return _nanmedian(values), _nanmedian(baselines)

    ks = lambda r, c: ks_fdr(r, c, alpha)  # noqa: E731
    spearman = lambda r, c: correlation_distance(r, c, "spearman")  # noqa: E731
    distribution = {
        "ks_fdr": ks, "wasserstein_distance": wasserstein_distance, "correlation_distance": correlation_distance,
        "correlation_distance_spearman": spearman, "strong_pairs_kept": strong_pairs_kept,
        "frechet_distance": frechet_distance, "frechet_means_distance": frechet_means_distance,
    }
    comparisons: dict[str, tuple[float, float]] = {name: compared(metric) for name, metric in distribution.items()}
    prdc_values = [_prdc_zscored(train.iloc[a], cand.iloc[c], nearest_k) for a, c in candidate_sets]
    prdc_baselines = [_prdc_zscored(train.iloc[a], train.iloc[b], nearest_k) for a, b in baseline_sets]
    for name in ("precision", "recall", "density", "coverage"):
        comparisons[name] = (_nanmedian([v[name] for v in prdc_values]),
                             _nanmedian([b[name] for b in prdc_baselines]))
    if detection:
        groups = _groups(train_real, candidate, group_column)
        g_train, g_cand = groups if groups else (None, None)
        values, baselines = [], []
        for a, (c, *_), (b, *_) in by_split[:N_DETECTION_SPLITS]:
            def auc(other: pd.DataFrame, other_groups) -> float:
                return detection_auc(train.iloc[a], other, seed=seed,
                                     groups_reference=None if g_train is None else g_train[a],
                                     groups_candidate=other_groups)

            values.append(auc(cand.iloc[c], None if g_cand is None else g_cand[c]))
            baselines.append(auc(train.iloc[b], None if g_train is None else g_train[b]))
        comparisons["detection_auc"] = (_nanmedian(values), _nanmedian(baselines))

    def against_holdout(metric: Callable) -> tuple[float, float]:
        """Candidate vs all training rows; baseline: each split's half B vs its half A."""
        return metric(cand, train, holdout), _nanmedian(
            [metric(train.iloc[b], train.iloc[a], holdout) for a, b in splits])

    comparisons["memorization_ratio"] = against_holdout(memorization_ratio)
    comparisons["share_closer_than_holdout"] = against_holdout(share_closer_than_holdout)
    comparisons["nndr_ratio"] = against_holdout(nndr_ratio)
    if patches is not None:
        _check_patches(patches, train, holdout, cand)
        train_images, train_masks = patches.train_images, patches.train_masks
        comparisons["image_memorization_ratio"] = (
            image_memorization_ratio(patches.candidate_images, train_images, patches.holdout_images),
            _nanmedian([image_memorization_ratio(train_images[b], train_images[a], patches.holdout_images)
                        for a, b in splits]),
        )
    if train_other is not None:
        comparisons["label_disagreement"] = label_disagreement(
            train, train_other[feature_columns], cand, seed=seed)
    if patches is not None:
        comparisons["implausible_share"] = (
            _implausible_share(patches.candidate_images, patches.candidate_masks,
                               train_masks, patches.intensity_range),
            _nanmedian([_implausible_share(train_images[b], train_masks[b], train_masks[a],
                                           patches.intensity_range) for a, b in splits]),
        )
    compared_rows = min(len(cand), min((len(b) for b in splits[0]), default=0))
    holdout_metrics = ("memorization_ratio", "share_closer_than_holdout", "nndr_ratio", "image_memorization_ratio")

    def judged(name: str, value: float, baseline: float) -> str:
        enough = (len(holdout) if name in holdout_metrics else compared_rows) >= min_rows
        return verdict(value, baseline, rules[name]) if enough else "insufficient"

    rows = [
        {
            "metric": name,
            "value": value,
            "baseline": baseline,
            "direction": METRICS[name].direction,
            "verdict": judged(name, value, baseline),
            "n_reference": len(train),
            "n_candidate": len(cand),
            "n_holdout": len(holdout),
        }
        for name in METRICS
        if name in comparisons
        for value, baseline in [comparisons[name]]
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _nanmedian(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.median(values[~np.isnan(values)])) if (~np.isnan(values)).any() else math.nan


def _size_matched_draws(idx_b: np.ndarray, n_candidate: int, seed) -> tuple[list, list]:
    """Row draws of the candidate and of half B (given by its rows) at the same size, for one split.

    Compare like with like: the larger of the two is subsampled (seeded) to the
    other's size, so neither side gains power or coverage from size. A side
    that needs no subsampling is one draw (all its rows); a subsampled side is
    ``ceil(N_SUBSAMPLES / N_SPLITS)`` fresh draws.
    """
    size = min(n_candidate, len(idx_b))
    rng = np.random.default_rng([*seed, size, n_candidate, len(idx_b)])
    per_split = -(-N_SUBSAMPLES // N_SPLITS)

    def draws(n: int) -> list[np.ndarray]:
        if n <= size or size < 2:
            return [np.arange(n)]
        return [np.sort(rng.choice(n, size=size, replace=False)) for _ in range(per_split)]

    return draws(n_candidate), [idx_b[d] for d in draws(len(idx_b))]


def _prdc_zscored(reference: pd.DataFrame, candidate: pd.DataFrame, nearest_k: int) -> dict[str, float]:
    """PRDC on features z-scored by ``reference`` (non-finite and constant columns dropped)."""
    _, (ref, cand), _ = _aligned(reference, candidate)
    if len(ref) < 2 or len(cand) < 2:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)
    ref, cand = _zscore([ref, cand], by=ref)
    if ref.shape[1] == 0:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)
    return prdc(ref, cand, nearest_k).as_dict()


def _row_groups(table: pd.DataFrame, column: str | None) -> np.ndarray:
    """Group label of each row of ``table`` by ``column``; each row its own group if absent."""
    if column is None or column not in table.columns:
        return np.arange(len(table)).astype(str)
    own = pd.Series([f"row-{i}" for i in range(len(table))], index=table.index)
    values = table[column]
    return values.where(values.notna() & (values.astype(str) != ""), own).astype(str).to_numpy()


def _groups(train_real: pd.DataFrame, candidate: pd.DataFrame, column: str | None):
    """Group labels of training and candidate rows for grouped detection folds, or None."""
    if column is None or column not in train_real.columns:
        return None
    g_train = train_real[column].astype(str).to_numpy()
    if column in candidate.columns:
        own = pd.Series([f"candidate-row-{i}" for i in range(len(candidate))], index=candidate.index)
        g_cand = candidate[column].where(candidate[column].notna() & (candidate[column].astype(str) != ""), own)
        g_cand = g_cand.astype(str).to_numpy()
    else:
        g_cand = np.array([f"candidate-row-{i}" for i in range(len(candidate))])
    return g_train, g_cand


def _check_patches(patches: Patches, train, holdout, cand) -> None:
    for name, images, masks, table in (
        ("train", patches.train_images, patches.train_masks, train),
        ("holdout", patches.holdout_images, patches.holdout_masks, holdout),
        ("candidate", patches.candidate_images, patches.candidate_masks, cand),
    ):
        if len(images) != len(table) or len(masks) != len(table):
            raise RadaugError(
                f"validate_arm: {len(images)} {name} images and {len(masks)} masks for "
                f"{len(table)} {name} feature rows; pass patches row-aligned with the tables."
            )


def _implausible_share(images, masks, real_masks, intensity_range) -> float:
    if len(images) == 0 or len(real_masks) == 0:
        return math.nan
    axes = tuple(range(1, np.asarray(real_masks).ndim))
    sizes = (np.asarray(real_masks) != 0).sum(axis=axes)
    table = plausibility(images, masks, intensity_range=intensity_range,
                         roi_voxel_range=(float(sizes.min()), float(sizes.max())))
    return float(table["implausible"].mean())


def overall_verdict(verdicts: Iterable[str]) -> str:
    """Combine verdicts: the worst of fail > warn > pass, ignoring "insufficient".

    Parameters
    ----------
    verdicts
        Verdicts from :func:`validate_arm` (any of :data:`VERDICTS`).

    Returns
    -------
    str
        ``"fail"`` if any verdict fails, else ``"warn"`` if any warns, else
        ``"pass"`` if any passes, else ``"insufficient"`` (also for no verdicts).

    Raises
    ------
    ValueError
        If a verdict is not one of :data:`VERDICTS`.
    """
    seen = set(verdicts)
    unknown = seen - set(VERDICTS)
    if unknown:
        raise ValueError(f"Unknown verdicts {sorted(unknown)}; expected some of {VERDICTS}.")
    for verdict in ("fail", "warn", "pass"):
        if verdict in seen:
            return verdict
    return "insufficient"


ARM_VERDICT_COLUMNS = ["arm", "control", "verdict", "n_fail", "n_warn", "failing_metrics",
                       "evaluate", "flagged", "control_ok"]
"""Columns of :func:`arm_verdicts`' table (``validation/arm_verdicts.csv``)."""


def arm_verdicts(summary: pd.DataFrame, *, evaluate_failing_arms: bool = True) -> pd.DataFrame:
    """One verdict per arm over all folds, classes and metrics, for evaluation and report.

    Parameters
    ----------
    summary
        The validation summary (columns ``fold, arm, class`` plus :data:`SUMMARY_COLUMNS`).
    evaluate_failing_arms
        Config ``validation.evaluate_failing_arms``: whether an arm whose
        verdict is ``fail`` is still evaluated (then ``flagged``) or skipped.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ARM_VERDICT_COLUMNS`: ``control`` (a control arm of
        :mod:`radaug.validate.controls`, never evaluated), ``verdict``
        (:func:`overall_verdict`), counts of failing and warning
        fold × class × metric cells, ``failing_metrics`` (";"-joined),
        ``evaluate``, ``flagged`` (evaluated although failing) and
        ``control_ok``: for a positive control, whether no gate fails; for a
        negative control, whether every gate it must fail does fail in every
        fold and class where it has a verdict; empty for real arms.
    """
    from radaug.validate.controls import CONTROL_ARMS, EXPECTED_FAILURES

    rows = []
    for arm, table in summary.groupby("arm", sort=False):
        overall = overall_verdict(table["verdict"])
        failing = sorted(set(table.loc[table["verdict"] == "fail", "metric"]))
        control = arm in CONTROL_ARMS
        if arm == "control_positive":
            control_ok = "true" if not failing else "false"
        elif arm in EXPECTED_FAILURES:
            judged = table[table["metric"].isin(EXPECTED_FAILURES[arm]) & (table["verdict"] != "insufficient")]
            control_ok = "true" if len(judged) and (judged["verdict"] == "fail").all() else "false"
        else:
            control_ok = ""
        evaluate = not control and (overall != "fail" or evaluate_failing_arms)
        rows.append({
            "arm": arm,
            "control": control,
            "verdict": overall,
            "n_fail": int((table["verdict"] == "fail").sum()),
            "n_warn": int((table["verdict"] == "warn").sum()),
            "failing_metrics": ";".join(failing),
            "evaluate": evaluate,
            "flagged": evaluate and overall == "fail",
            "control_ok": control_ok,
        })
    return pd.DataFrame(rows, columns=ARM_VERDICT_COLUMNS)
