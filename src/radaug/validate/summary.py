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

import contextlib
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from radaug.errors import RadaugError
from radaug.parallel import map_draws
from radaug.seeds import stream_key, stream_rng
from radaug.splits import grouped_halves
# The registry names its functions by import path and imports them on first use; imported here too, their
# modules count in the validate jobs' code version (provenance.code_files follows import statements).
from radaug.validate import detection as _detection, images as _images, manifold as _manifold  # noqa: F401
from radaug.validate.images import (PatchPool, patch_pool, pooled_implausible, pooled_implausible_share,
                                    pooled_memorization_ratio)
from radaug.validate.null import POWER_TARGET, NullDraws, critical_p, defective, minimum_detectable, tie_scale
from radaug.validate.metrics import _correlation_matrices, correlation_weights, is_constant, within_set_standardised
from radaug.validate.registry import HOLDOUT_PROTOCOLS, METRICS, PROTOCOLS
from radaug.validate.thresholds import merge_thresholds, overall_verdict, verdict
from radaug.validate.verdicts import NULL_RULE_COLUMNS, SUMMARY_COLUMNS

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

FACTOR_MIN_ROWS = 10
"""Fewest rows a comparison needs under the factor rules: at 8 rows per side one unusual real
case moved Fréchet distance and detection AUC past their fixed factors for held-out real data
(the positive control) on Br35H."""


MIN_DEFINED_DRAWS = 0.5
"""Under the null rule a gate needs at least this share of its null draws defined for a verdict."""


def default_min_rows(rule: str, nearest_k: int) -> int:
    """Fewest rows a comparison needs for a verdict where ``validation.min_rows`` is not set.

    Under the factor rules :data:`FACTOR_MIN_ROWS`. Under the null rule ``nearest_k + 1``, the
    fewest at which every statistic is defined (recall's k-NN balls are drawn within the
    candidate rows): its permutation tests are exact by construction with singleton groups,
    and each gate's ``min_detectable`` states how little it can see there. Measured on
    resampled Br35H cells of 64 training and 8 candidate and holdout rows
    (``benchmarks/bench_positive_control.py``, BENCHMARKS.md): 9 of 300 cells failed fresh real
    rows, but 18 of 200 drawn from the default study's own 80 tumour cases, not explained yet.
    """
    return FACTOR_MIN_ROWS if rule == "factor" else nearest_k + 1


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
    min_rows: int | None = None,
    train_other: pd.DataFrame | None = None,
    patches: Patches | None = None,
    group_column: str | None = "case_id",
    detection: bool = True,
    rule: str = "factor",
    level: float = 0.05,
    null_splits: int = 200,
    null_detection_splits: int = 10,
    power_repeats: int = 20,
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

    Every metric is an entry of :data:`radaug.validate.registry.METRICS`, computed
    by its ``function`` as its ``protocol`` says (one comparison per protocol
    here, :data:`_COMPARE`). Verdicts follow
    :data:`~radaug.validate.thresholds.DEFAULT_THRESHOLDS` updated with ``thresholds``.

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
        Partial overrides of :data:`~radaug.validate.thresholds.DEFAULT_THRESHOLDS`, e.g.
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
        with verdict ``"insufficient"``. ``None`` (config ``validation.min_rows``
        unset): :func:`default_min_rows` of ``rule`` and ``nearest_k``.
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
    rule
        ``"null"``: a gate fails when its min-P adjusted p-value against the
        null draws is at most ``level``, warns when it is at most ``2 * level``,
        and passes otherwise (a gate without a null, none at present, keeps the
        factor rule; ``implausible_share`` also fails outright where a candidate
        patch is physically impossible and no real one is); ``"factor"``: every gate by
        the factor rules of ``thresholds``. See :mod:`radaug.validate.null`.
        This function's default is the cheap ``"factor"``; a study's is the
        config's ``validation.rule``, ``"null"`` unless set.
    level
        Level of the null rule: the whole-cell false-fail rate it allows.
    null_splits
        Null draws (seeded group-preserving splits) per cell for every gate but
        the detection AUC; 0 computes no null (p-values NaN, factor verdicts).
    null_detection_splits
        Null draws of the detection AUC (a cross-validated forest each).
    power_repeats
        Simulated defective cells per defect size for ``min_detectable``; 0 skips
        the power simulation.

    Returns
    -------
    pandas.DataFrame
        One row per computed metric, in :data:`~radaug.validate.registry.METRICS`
        order, with columns :data:`SUMMARY_COLUMNS`: ``p_value`` (per gate),
        ``p_adjusted`` (min-P across the cell's gates), ``n_null`` (null draws)
        and ``min_detectable`` (the smallest defect the gate fails with 80%
        power at this cell's sizes, in words; empty where not simulated).
        Under ``rule="null"`` also :data:`NULL_RULE_COLUMNS`: ``verdict_rule``
        says which rule reached each verdict and, where the factor rule stood
        in for the null (e.g. a NaN tested value), why.

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
    if rule not in ("null", "factor"):
        raise RadaugError(f"validate_arm: rule must be 'null' or 'factor', got {rule!r} (config validation.rule).")
    if min_rows is None:
        min_rows = default_min_rows(rule, nearest_k)
    rules = merge_thresholds(thresholds)
    # Float matrices once, in feature_columns order: every metric below takes many row
    # subsets of them, and pandas indexing there cost about a third of validation's time.
    train, holdout, cand = (t[feature_columns].to_numpy(dtype=float)
                            for t in (train_real, holdout_real, candidate))
    row_groups = _row_groups(train_real, group_column)
    splits = [grouped_halves(row_groups, stream_key("baseline_split", seed, split=r)) for r in range(N_SPLITS)]
    # Per split: half A, and size-matched draws of candidate rows and of half B's rows.
    by_split = [(a, *_size_matched_draws(b, len(cand), stream_key("baseline_split", seed, split=r)))
                for r, (a, b) in enumerate(splits)]
    candidate_sets = [(a, c) for a, draws, _ in by_split for c in draws]
    if patches is not None:
        _check_patches(patches, train, holdout, cand)
    cell = _Cell(train, holdout, cand, splits, by_split, candidate_sets,
                 baseline_sets=[(a, b) for a, _, draws in by_split for b in draws],
                 settings={"alpha": alpha, "nearest_k": nearest_k}, seed=seed,
                 groups=_groups(train_real, candidate, group_column) if detection else None, patches=patches,
                 train_other=None if train_other is None else train_other[feature_columns].to_numpy(dtype=float))
    available = {"detection": detection, "image_holdout": patches is not None,
                 "image_plausibility": patches is not None, "labels": train_other is not None}
    computed: dict[str, tuple[float, float]] = {}
    for protocol in PROTOCOLS:
        names = [name for name, spec in METRICS.items() if spec.protocol == protocol]
        if names and available.get(protocol, True):
            computed.update(_COMPARE[protocol](cell, names))
    comparisons = {name: computed[name] for name in METRICS if name in computed}
    compared_rows = min(len(cand), min((len(b) for b in splits[0]), default=0))

    def rows_of(name: str) -> int:
        return len(holdout) if METRICS[name].protocol in HOLDOUT_PROTOCOLS else compared_rows

    def enough(name: str) -> bool:
        return rows_of(name) >= min_rows

    tested = [name for name in comparisons if METRICS[name].null is not None and enough(name)]
    tested_values, p_values, adjusted, permuted, detectable, impossible = {}, {}, {}, None, {}, {}
    if rule == "null" and null_splits > 0 and tested:
        group_rows = _groups(train_real, candidate, group_column)
        g_train = _row_groups(train_real, group_column)  # a row without a group id is its own group
        g_cand = group_rows[1] if group_rows else np.array([f"candidate-row-{i}" for i in range(len(candidate))])
        # the holdout's groups only where the training rows have them: else its labels are its own
        g_hold = _row_groups(holdout_real, group_column if group_column in train_real.columns else None,
                             own="holdout-row-")
        tested_set = _tested_set(len(train), len(cand), seed)
        other = cell.train_other
        images = _image_pool(patches, tested)
        # Hundreds of small matrices (100 x 100 eigendecompositions for Fréchet): BLAS threads only
        # contend; with one thread an eigendecomposition took 7 ms instead of 370 ms on a loaded machine.
        with threadpool_limits(1):
            split_null, detectable = NullDraws({}, {}), {}
            if power_repeats or any(METRICS[name].null == "split" for name in tested):
                # The real-vs-real split null depends on the real rows and the candidate's size, not on the
                # candidate: arms of one cell (same real rows and holdout) share it, and its power, in one
                # process (_SPLIT_CACHE) and across jobs (shared_split_nulls). Half B is drawn to the candidate's
                # size, so a candidate as large as the training rows or larger is one size here.
                n_matched = min(len(cand), len(train))
                n_detection = null_detection_splits if detection else 0
                real = hashlib.sha1(b"".join([train.tobytes(), holdout.tobytes(), "|".join(row_groups).encode(),
                                              b"||", "|".join(map(str, g_hold)).encode(),
                                              b"||other", repr(None if other is None else other.shape).encode(),
                                              b"" if other is None else other.tobytes(),
                                              b"||" if images is None else _real_patch_digest(patches)]))
                key = _split_key((real.hexdigest(), train.shape, holdout.shape, n_matched, tuple(tested), seed, alpha,
                                  nearest_k, null_splits, power_repeats, n_detection, level))
                split_null, detectable = _split_null_lookup(key, lambda: _split_null_and_power(
                    train, holdout, n_matched, row_groups, tested, cell.settings, seed=seed, holdout_groups=g_hold,
                    null_splits=null_splits, level=level, power_repeats=power_repeats, n_detection=n_detection,
                    other=other, images=images))
            tested_values = _tested_values(comparisons, tested, train, cand, holdout, tested_set, candidate_sets[0],
                                           g_train, g_cand, cell.settings, seed, other=other, images=images)
            permuted = _permutation_draws(
                train, cand, holdout, tested_set, g_train, g_cand, split_null,
                tested, cell.settings, seed=seed, n_draws=null_splits,
                n_detection=null_detection_splits if detection else 0, g_hold=g_hold, other=other,
                images=images)
        p_values = {name: permuted.p_value(name, tested_values[name]) for name in tested}
        adjusted = permuted.adjusted({name: tested_values[name] for name in tested})
        impossible = _physically_impossible(images, len(train), len(cand), tested)

    defined = {name: int(np.isfinite(draws).sum()) for name, draws in permuted.values.items()} if permuted else {}

    def abstains(name: str) -> str:
        """Why the null rule gives ``name`` no verdict in a cell it has rows enough for, or ``""``.

        Below the factor rules' own minimum the factor rule does not stand in for a missing null
        p-value; and a null with fewer than half its draws defined (a permuted side of whole
        near-duplicate groups too small for a statistic, e.g. PRDC's k-NN balls) is a null
        conditioned on the draws' sizes, not the exact test, so it judges nothing.
        """
        if rule != "null" or name in impossible:
            return ""
        if math.isnan(adjusted.get(name, math.nan)):
            return "" if rows_of(name) >= FACTOR_MIN_ROWS else (
                f"insufficient: no null p-value, and {rows_of(name)} rows are below the factor rules' "
                f"{FACTOR_MIN_ROWS}")
        drawn = null_detection_splits if METRICS[name].protocol == "detection" else null_splits
        if defined.get(name, 0) < MIN_DEFINED_DRAWS * drawn:
            return (f"insufficient: {defined.get(name, 0)} of {drawn} null draws defined (the rows' near-duplicate groups are "
                    f"large for {rows_of(name)} rows)")
        return ""

    abstained = {name: abstains(name) for name in comparisons}

    def judged(name: str, value: float, baseline: float) -> str:
        if not enough(name) or abstained[name]:
            return "insufficient"
        if name in impossible:
            return "fail"
        if rule == "factor" or math.isnan(adjusted.get(name, math.nan)):
            return verdict(value, baseline, rules[name])
        if math.isnan(value):
            return "insufficient"
        return "fail" if adjusted[name] <= level else "warn" if adjusted[name] <= 2 * level else "pass"

    def verdict_rule(name: str, value: float) -> str:
        """Which rule :func:`judged` used for ``name`` under the null rule, and why the factor rule stood in."""
        if not enough(name):
            return ""
        if name in impossible:
            return (f"physical: {impossible[name]} of {len(cand)} candidate patches physically impossible (empty "
                    "mask or intensity outside the physical range), no real training patch")
        if abstained[name]:
            return abstained[name]
        if METRICS[name].null is None:
            return "factor: no null for this gate"
        if null_splits <= 0:
            return "factor: no null draws (validation.null_splits is 0)"
        if not math.isnan(adjusted.get(name, math.nan)):
            return "" if math.isnan(value) else "null"
        if math.isnan(tested_values.get(name, math.nan)):
            return "factor: tested value is NaN"
        return "factor: no finite null draws"

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
            "tested_value": tested_values.get(name, math.nan),
            "p_value": p_values.get(name, math.nan),
            "p_adjusted": adjusted.get(name, math.nan),
            "n_null": defined.get(name, 0),
            "min_detectable": detectable.get(name, ""),
            **({"verdict_rule": verdict_rule(name, value)} if rule == "null" else {}),
        }
        for name in METRICS
        if name in comparisons
        for value, baseline in [comparisons[name]]
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS + (NULL_RULE_COLUMNS if rule == "null" else []))


@dataclass(frozen=True)
class _Cell:
    """What the protocols of one :func:`validate_arm` call compare: float matrices, splits, settings, extras.

    ``splits``: the halves (A, B) of the training rows; ``by_split``: per split,
    half A and the size-matched draws of candidate rows and of half B's rows;
    ``candidate_sets`` / ``baseline_sets``: (A, draw) pairs of every split;
    ``groups``: group labels of training and candidate rows for the detection
    folds (None: rows independent, or no detection).
    """

    train: np.ndarray
    holdout: np.ndarray
    cand: np.ndarray
    splits: list
    by_split: list
    candidate_sets: list
    baseline_sets: list
    settings: dict
    seed: int
    groups: tuple | None = None
    patches: Patches | None = None
    train_other: np.ndarray | None = None


def _families(names, settings) -> list[tuple[list[str], Callable]]:
    """``names`` grouped by the function call that computes them (one group per PRDC), with the bound function."""
    groups: dict = {}
    for name in names:
        spec = METRICS[name]
        groups.setdefault(spec.call(), ([], spec.bound(settings)))[0].append(name)
    return list(groups.values())


def _value(result, name: str) -> float:
    """A metric's value from its function's result: the result, or its entry for a family's mapping."""
    return result[name] if isinstance(result, Mapping) else result


def _compare_features(cell: _Cell, names) -> dict[str, tuple[float, float]]:
    """Protocol ``features``: medians over the size-matched (half A, candidate) and (half A, half B) draws."""
    train, cand = cell.train, cell.cand
    families = _families(names, cell.settings)
    pairs = [(train, cand, a, c) for a, c in cell.candidate_sets] + [(train, train, a, b) for a, b in cell.baseline_sets]

    def scored(i: int) -> list:
        first, second, a, b = pairs[i]
        return [function(first[a], second[b]) for _, function in families]

    scores = map_draws(scored, len(pairs))
    values, baselines = scores[:len(cell.candidate_sets)], scores[len(cell.candidate_sets):]
    compared = {}
    for f, (family, _) in enumerate(families):
        for name in family:
            compared[name] = (_nanmedian([_value(v[f], name) for v in values]),
                              _nanmedian([_value(b[f], name) for b in baselines]))
    return compared


def _compare_detection(cell: _Cell, names) -> dict[str, tuple[float, float]]:
    """Protocol ``detection``: as ``features``, on the first draw of :data:`N_DETECTION_SPLITS` splits, with groups."""
    train, cand, seed = cell.train, cell.cand, cell.seed
    g_train, g_cand = cell.groups if cell.groups else (None, None)
    splits = cell.by_split[:N_DETECTION_SPLITS]
    # (split, side) pairs: the candidate's draw (side 0) and half B's (side 1) against half A
    tasks = [(name, split, side) for name in names for split in range(len(splits)) for side in (0, 1)]
    functions = {name: METRICS[name].bound(cell.settings) for name in names}

    def scored(i: int) -> float:
        name, split, side = tasks[i]
        a, (c, *_), (b, *_) = splits[split]
        other, other_groups = ((cand[c], None if g_cand is None else g_cand[c]) if side == 0
                               else (train[b], None if g_train is None else g_train[b]))
        return functions[name](train[a], other, seed=seed, groups_reference=None if g_train is None else g_train[a],
                               groups_candidate=other_groups)

    scores = dict(zip(tasks, map_draws(scored, len(tasks))))
    return {name: (_nanmedian([scores[name, split, 0] for split in range(len(splits))]),
                   _nanmedian([scores[name, split, 1] for split in range(len(splits))])) for name in names}


def _compare_holdout(cell: _Cell, names, train=None, holdout=None, cand=None) -> dict[str, tuple[float, float]]:
    """Protocol ``holdout``: the candidate against all training rows; baseline: each split's half B vs its half A."""
    train, holdout, cand = (cell.train if train is None else train, cell.holdout if holdout is None else holdout,
                            cell.cand if cand is None else cand)
    compared = {}
    for name in names:
        function = METRICS[name].bound(cell.settings)
        compared[name] = (function(cand, train, holdout),
                          _nanmedian([function(train[b], train[a], holdout) for a, b in cell.splits]))
    return compared


def _compare_image_holdout(cell: _Cell, names) -> dict[str, tuple[float, float]]:
    """Protocol ``image_holdout``: ``holdout`` on the image patches."""
    p = cell.patches
    return _compare_holdout(cell, names, p.train_images, p.holdout_images, p.candidate_images)


def _compare_image_plausibility(cell: _Cell, names) -> dict[str, tuple[float, float]]:
    """Protocol ``image_plausibility``: candidate patches against all training masks; baseline: B against A's."""
    p = cell.patches
    compared = {}
    for name in names:
        function = METRICS[name].bound(cell.settings)
        compared[name] = (
            function(p.candidate_images, p.candidate_masks, p.train_masks, p.intensity_range),
            _nanmedian([function(p.train_images[b], p.train_masks[b], p.train_masks[a], p.intensity_range)
                        for a, b in cell.splits]),
        )
    return compared


def _compare_labels(cell: _Cell, names) -> dict[str, tuple[float, float]]:
    """Protocol ``labels``: the function returns value and baseline itself."""
    return {name: METRICS[name].bound(cell.settings)(cell.train, cell.train_other, cell.cand, seed=cell.seed)
            for name in names}


_COMPARE: dict[str, Callable[[_Cell, list], dict[str, tuple[float, float]]]] = {
    "features": _compare_features,
    "detection": _compare_detection,
    "holdout": _compare_holdout,
    "image_holdout": _compare_image_holdout,
    "image_plausibility": _compare_image_plausibility,
    "labels": _compare_labels,
}
"""How :func:`validate_arm` computes value and baseline, per protocol of :data:`radaug.validate.registry.PROTOCOLS`."""


def _tested_set(n_train: int, n_candidate: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the null rule's test: all training rows, and the candidate drawn (seeded) to at most as many."""
    c = np.arange(n_candidate)
    if n_candidate > n_train >= 2:
        c = np.sort(stream_rng("null_tested", seed, n_train=n_train, n_candidate=n_candidate).choice(n_candidate, n_train,
                                                                                     replace=False))
    return np.arange(n_train), c


def _tested_values(comparisons, tested, train, cand, holdout, tested_set, first_set, g_train, g_cand,
                   settings, seed, *, other=None, images: PatchPool | None = None) -> dict[str, float]:
    """The statistic each gate's p-value tests under the null rule, scored as a permutation draw is.

    A two-sample statistic on all the cell's data: the candidate (drawn to at most
    the training size, :func:`_tested_set`) against **all** real training rows
    of the fold and class, for the set, correlation and PRDC gates and the
    detection AUC. The reported ``value`` is a median over :data:`N_SPLITS`
    halves A and candidate subsamples (what the factor rules compare with the
    real-vs-real baseline); it varies less than one draw and so is not
    exchangeable with the draws of :func:`_permutation_draws`, and a half holds
    half the data (less power). Each gate is scored by its registry entry's
    ``null_function`` where it has one (``strong_pairs_kept``: the share of the
    strong pairs' correlation kept; ``label_disagreement``: the candidate's
    lean towards the other classes, ``other``, of
    :func:`radaug.validate.detection.label_margin`). The holdout gates test all candidate rows
    against all training rows, which is exactly their ``value``; so does the
    image memorization ratio, on the pooled patch distances of ``images``
    (:func:`radaug.validate.images.pooled_memorization_ratio`, equal to its
    ``value`` up to rounding), and the implausible share scores the tested
    candidate draw against all training masks; a
    ``features`` gate with a ``split`` null (none at present) would test the
    candidate's size-matched draw against split 0's half A (``first_set``), as
    the real-split draws are built.
    """
    a, c = tested_set
    single = [name for name in tested if METRICS[name].null != "split"
              and METRICS[name].protocol not in ("detection", "holdout")]
    values = _scores(train[a], cand[c], holdout, single, settings, other=other)
    split_gates = [name for name in tested if METRICS[name].null == "split" and METRICS[name].protocol != "holdout"]
    if split_gates:
        half_a, matched = first_set
        values.update(_scores(train[half_a], cand[matched], holdout, split_gates, settings))
    n_train, n_cand = len(train), len(cand)
    for name in tested:
        if METRICS[name].protocol == "holdout":
            values[name] = comparisons[name][0]
        elif METRICS[name].protocol == "image_holdout":
            values[name] = pooled_memorization_ratio(images, np.arange(n_train), n_train + np.arange(n_cand),
                                                     n_train + n_cand + np.arange(len(holdout)))
        elif METRICS[name].protocol == "image_plausibility":
            values[name] = pooled_implausible_share(images, a, n_train + c)
        elif METRICS[name].protocol == "detection":
            values[name] = METRICS[name].bound(settings)(train[a], cand[c], seed=seed, groups_reference=g_train[a],
                                                         groups_candidate=g_cand[c])
    return values


def _permuted_sides(groups: np.ndarray, n_first: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random re-partition of pooled rows into two sides, whole groups at a time.

    Groups are taken in a random order into the first side while it holds fewer
    than ``n_first`` rows (nearer ``n_first`` with the group than without it);
    with singleton groups the sizes are exact. ``groups``: labels, or integer
    codes from :func:`_group_codes` (what the draws pass: factorizing once).
    """
    groups = np.asarray(groups)
    codes = groups if np.issubdtype(groups.dtype, np.integer) else _group_codes(groups)
    order = rng.permutation(codes.max() + 1 if len(codes) else 0)
    sizes = np.bincount(codes)[order]
    before = np.cumsum(sizes) - sizes
    first_groups = order[before + sizes / 2 <= n_first]
    first = np.isin(codes, first_groups)
    return np.flatnonzero(first), np.flatnonzero(~first)


def _group_codes(groups: np.ndarray) -> np.ndarray:
    """Integer code of each row's group label, for :func:`_permuted_sides`."""
    return pd.factorize(pd.Series(groups, dtype=object))[0]


def _permutation_draws(train, cand, holdout, tested_set, g_train, g_cand, split_null: NullDraws, gates, settings,
                       *, seed, n_draws, n_detection, g_hold=None, other=None,
                       images: PatchPool | None = None) -> NullDraws:
    """Permutation null of the cell's tested statistics (:func:`_tested_values`), ``n_draws`` draws.

    Under the null hypothesis "the candidate is a real sample of the population
    the fold's cases come from", the candidate's rows are exchangeable with
    other real rows the generator never saw. Each draw re-partitions pooled
    rows, whole groups at a time (:func:`_permuted_sides`), into sides of the
    tested sizes and scores one side against the other as the candidate is.
    The draws are conditional on this cell's own rows, so the p-value is exact
    by construction (Phipson & Smyth 2010; with singleton groups; whole groups
    make the sides' sizes approximate). Permutation units are groups prefixed by
    side: a synthetic sample's siblings move together, and a parent case and its
    samples are separate units; the detection AUC's cross-validation keeps the
    unprefixed groups, as for the tested value. Three families, paired by draw
    index in the min-P adjustment:

    * **set, PRDC gates, detection AUC and label disagreement**: the training
      rows and the candidate draw of the tested statistic (:func:`_tested_set`)
      are pooled and re-partitioned; label disagreement's classifier is fit on
      each draw's reference side against the real rows of the other classes
      (``other``, fixed) and scores the other side
      (:func:`radaug.validate.detection.label_margin`); the implausible share
      scores each draw's second side against the ROI size range of its
      reference side, from the per-patch checks of ``images``
      (:func:`radaug.validate.images.pooled_implausible_share`).
    * **correlation gates** (Pearson and Spearman correlation distance,
      strong pairs kept): the same re-partitions, of the two sets each first
      standardised *on its own* (registry ``standardise``: z-scores, or
      within-set ranks scaled to (0, 1)), on the features non-constant and
      finite in both. A correlation is unchanged by this, so the tested value is
      too; without it a candidate that also differs in location or scale (the
      noise control) makes every permuted side a two-population mixture with
      spurious correlations, and the gates lost their power. Each side of a draw
      mixes training and candidate rows, so its correlations are weaker than
      the training rows' where the candidate's are: the Spearman distance
      therefore divides every draw by the *training rows'* correlation norm, as
      the tested value does (:func:`_standardised_draw`). Sets standardised
      on their own are not exchangeable, so this null is not exact; on
      heavy-tailed radiomics features, where a few outlier-driven pairs carry
      most of the unweighted distance, the Pearson distance (then tested like
      the Spearman one) false-failed fresh real rows in about 0.2 of cells of
      32 training and 32 candidate Br35H tumour rows.
      The Pearson distance's p-value therefore tests the root mean square of
      the pairs' correlation differences, each divided by its standard error
      (its correlation's large-sample variance, estimated from the
      standardised pool and the same in every draw;
      :func:`radaug.validate.metrics.correlation_contrast`); the Spearman
      distance, on bounded ranks, stays unweighted (weighted, it became
      conservative: 0 of 100 cells at 64 : 8; BENCHMARKS.md, "The Pearson
      distance's null on heavy-tailed features"). Strong pairs kept
      tests the share of the strong pairs' correlation kept, a draw without a
      strong pair on its reference side counting as keeping all
      (:func:`radaug.validate.metrics.strong_pairs_strength`; the share of pairs
      kept is 0 on most sides that mix training rows with noise). Measured on
      phantom lesions (``benchmarks/bench_correlation_null.py``, BENCHMARKS.md):
      calibrated at 20 and 40 rows a side, noise fails each gate in every cell
      at n = 40. (A real-vs-real split null was used before, half B against
      half A of the training rows, with the candidate's size-matched draw
      tested against one half A: fresh real rows got p <= 0.05 in 0.085
      (Pearson), 0.060 (Spearman) and 0.133 (strong pairs) of 200 cells of 40
      training and 20 candidate rows of a two-mode population, since its draws
      re-use the training rows on both sides and so are not exchangeable with a
      tested value on fresh rows. Which null a gate has is the ``null`` of its
      registry entry, :data:`radaug.validate.registry.METRICS`.)
    * **holdout gates** (is the candidate closer to the training rows than
      real unseen cases are?): the exchange null (:func:`_exchange_draws`):
      all training, candidate and holdout rows re-partitioned into three sets
      of the tested sizes, whole groups at a time, a candidate row sharing a
      group with training rows (a copy, a sample derived from a training case)
      moving with them; scored against the pseudo-training rows as the tested
      value is against all training rows. Draw ``d`` is paired with permutation
      ``d`` in the min-P adjustment. Two nulls were tried before: real-vs-real
      splits of the training rows (half B against half A with the fixed holdout;
      anti-conservative at small n: P(p <= 0.05) 0.105 for the memorization
      ratio on 200 simulated cells of 40 training, 20 candidate and 10 holdout
      rows, and 7 of 45 Br35H cells at n <= 20 failed fresh real rows), and a
      re-partition of candidate and holdout rows only (exact, but a permuted
      holdout side then holds copies, and the copy control lost its power).
      The image memorization ratio has the same exchange null, on the pooled
      patch distances of ``images``.
    """
    a, c = tested_set
    pool = np.concatenate([train[a], cand[c]])
    # Permutation units: groups prefixed by side, so a parent case and its samples move independently;
    # cross-validation groups of the detection AUC: unprefixed, as the tested value uses them.
    cv_groups = np.concatenate([g_train[a].astype(str), g_cand[c].astype(str)])
    pool_groups = _group_codes(np.concatenate([np.char.add("r:", g_train[a].astype(str)),
                                               np.char.add("c:", g_cand[c].astype(str))]))
    values = {name: np.full(n_draws, np.nan) for name in gates}
    specs = {name: METRICS[name] for name in gates}
    set_gates = [name for name, spec in specs.items()
                 if (spec.protocol == "features" and spec.standardise is None) or spec.protocol == "labels"]
    standardised = [name for name, spec in specs.items()
                    if spec.protocol == "features" and spec.standardise is not None and spec.null != "split"]
    pearson = [name for name in standardised if specs[name].standardise == "zscore"]
    spearman = [name for name in standardised if specs[name].standardise == "rank"]
    detection = {name: spec.bound(settings) for name, spec in specs.items() if spec.protocol == "detection"}
    plausibility = [name for name, spec in specs.items() if spec.protocol == "image_plausibility"]
    image_rows = np.concatenate([a, len(train) + c])  # each pooled row's row of ``images``
    z_pool, rank_pool = _standardised_pools(train[a], cand[c]) if pearson or spearman else (pool, pool)
    standardised = {name: _standardised_draw(specs[name], settings, z_pool if name in pearson else rank_pool, len(a))
                    for name in standardised}

    def permuted(draw: int) -> dict[str, float]:
        rng = stream_rng("null_permutation", seed, draw=draw)
        ref, side = _permuted_sides(pool_groups, len(a), rng)
        scores = _scores(pool[ref], pool[side], holdout, set_gates, settings, draw=True, other=other)
        scores.update({name: standardised[name](z_pool[ref], z_pool[side]) for name in pearson})
        scores.update({name: standardised[name](rank_pool[ref], rank_pool[side]) for name in spearman})
        scores.update({name: pooled_implausible_share(images, image_rows[ref], image_rows[side])
                       for name in plausibility})
        if draw < n_detection:
            scores.update({name: auc(pool[ref], pool[side], seed=seed, groups_reference=cv_groups[ref],
                                     groups_candidate=cv_groups[side]) for name, auc in detection.items()})
        return scores

    _fill(values, map_draws(permuted, n_draws))
    for name in detection:
        values[name] = values[name][:n_detection]
    values.update({name: split_null.values[name] for name, spec in specs.items() if spec.null == "split"})
    g_hold = np.array([f"holdout-row-{i}" for i in range(len(holdout))]) if g_hold is None else g_hold
    values.update(_exchange_draws(train, cand, holdout, g_train, g_cand, g_hold,
                                  [name for name, spec in specs.items() if spec.null == "exchange"],
                                  settings, seed=seed, n_draws=n_draws, images=images))
    return NullDraws(values, {name: spec.direction for name, spec in specs.items()}, frozenset(detection),
                     _tie_scales(gates), seed=seed)


def _exchange_draws(train, cand, holdout, g_train, g_cand, g_hold, gates, settings: Mapping | None = None, *, seed,
                    n_draws, images: PatchPool | None = None, image_rows=None) -> dict[str, np.ndarray]:
    """Exchange null of the holdout gates: ``n_draws`` re-partitions of all the cell's rows into the three sets.

    The holdout gates ask whether the candidate rows sit closer to the training
    rows than real rows the generator never saw (the holdout) do. Under the null
    hypothesis "the candidate is a real sample unseen by the generator", the
    training, candidate and holdout rows are three samples of one population, so
    each draw re-partitions the pooled rows, whole groups at a time
    (:func:`_three_sides`), into a pseudo-training set, a pseudo-candidate and a
    pseudo-holdout of the tested sizes, and scores them exactly as the tested
    value is scored (:func:`_scores`: each gate's registry ``null_function``,
    :func:`radaug.validate.metrics.holdout_scores`, z-scored by the
    pseudo-training rows, nearest neighbours among them; ``settings`` as for
    the other nulls). Same statistic,
    same sizes, same reference set size: the test is exact by construction (with
    singleton groups; whole groups make the sizes approximate).

    **Groups are not prefixed by set**: a candidate row that shares its group
    with training rows (a copy of a training case, or a sample derived from one,
    whose ``case_id`` is that case) moves with them as one unit. No draw
    therefore puts a row on the other side of its own copy or parent, while the
    tested comparison does: the null holds no copies, and a candidate of copies
    gets the smallest p-value, ``1 / (1 + N)``. A row equal to a training row
    joins that row's group whatever its own label (a copy without a ``case_id``). Fresh real candidates share no
    group with the training rows (folds keep groups whole), so for them the
    re-partition is the plain permutation of three exchangeable samples.

    It replaced a real-vs-real split null (half B of the training rows against
    half A, with the fixed holdout): its sizes were not the tested comparison's
    (a reference of half the training rows), its holdout never varied, and with
    few near-duplicate groups among the training rows its draws took a handful
    of distinct values, beyond which a fresh real candidate got p = 1 / (1 + N):
    on resampled Br35H cells at n <= 20 it failed fresh real rows in 7 of 45 cells
    (BENCHMARKS.md, validation calibration, "holdout gates"). A re-partition of
    the candidate and holdout rows only (training rows fixed) is exact too, but
    moves copies to the pseudo-holdout, and with few groups no draw separates
    them: the copy control lost its power at n = 10.

    The image memorization ratio (protocol ``image_holdout``) is scored on the
    same draws from the pooled patch distances of ``images``
    (:func:`radaug.validate.images.pooled_memorization_ratio`); ``image_rows``:
    the row of ``images`` of each pooled row (training, candidate, holdout rows
    in order; default: the same positions).

    Returns the draws of every gate in ``gates`` (NaN where a set has fewer than
    two rows or no feature is left).
    """
    values = {name: np.full(n_draws, np.nan) for name in gates}
    if not gates:
        return values
    pool = np.concatenate([train, cand, holdout])
    labels = np.concatenate([np.asarray(g, dtype=str).astype(object) for g in (g_train, g_cand, g_hold)])
    # A row equal to a training row (an exact copy, whatever its group label says) joins that row's group.
    parent = {row.tobytes(): label for row, label in zip(np.ascontiguousarray(train, dtype=float), labels)}
    for i in range(len(train), len(pool)):
        labels[i] = parent.get(np.ascontiguousarray(pool[i], dtype=float).tobytes(), labels[i])
    codes = _group_codes(labels)
    targets = (len(train), len(cand), len(holdout))
    image_gates = [name for name in gates if METRICS[name].protocol == "image_holdout"]
    image_rows = np.arange(len(pool)) if image_rows is None else np.asarray(image_rows)

    def exchanged(draw: int) -> dict[str, float]:
        t, c, h = _three_sides(codes, targets, stream_rng("null_exchange", seed, draw=draw))
        scores = _scores(pool[t], pool[c], pool[h], gates, settings or {}, draw=True)
        scores.update({name: pooled_memorization_ratio(images, image_rows[t], image_rows[c], image_rows[h])
                       for name in image_gates})
        return scores

    _fill(values, map_draws(exchanged, n_draws))
    return values


def _three_sides(codes: np.ndarray, targets, rng: np.random.Generator) -> list[np.ndarray]:
    """A random re-partition of pooled rows into sets of about ``targets`` rows, whole groups at a time.

    Groups (integer ``codes``, :func:`_group_codes`) are laid out in a random
    order and each goes to the set whose stretch of the cumulative ``targets``
    holds the group's middle row, as :func:`_permuted_sides` does for two sets:
    with singleton groups the sizes are exact.
    """
    order = rng.permutation(codes.max() + 1 if len(codes) else 0)
    sizes = np.bincount(codes)[order]
    middle = np.cumsum(sizes) - sizes / 2
    side = np.empty(len(order), dtype=int)
    side[order] = np.searchsorted(np.cumsum(targets)[:-1], middle, side="left")
    rows = side[codes]
    return [np.flatnonzero(rows == k) for k in range(len(targets))]


def _standardised_draw(spec, settings, pool: np.ndarray, n_train: int) -> Callable:
    """The function scoring one permutation draw of a standardised correlation gate.

    The gate's null statistic with its registry entry's ``draw_keywords``
    (:meth:`radaug.validate.registry.MetricSpec.bound` with ``draw``). ``pool``:
    the cell's standardised pool (:func:`_standardised_pools`), its first
    ``n_train`` rows the training rows. A gate whose entry has ``pair_weights``
    (the Pearson distance, whose null statistic is
    :func:`radaug.validate.metrics.correlation_contrast`) gets its ``weights``
    fixed to :func:`radaug.validate.metrics.correlation_weights` of the whole
    pool, as the tested value computes them. One with ``training_norm`` (the
    Spearman distance) gets its ``norm`` fixed to the training rows'
    correlation matrix (the training part of the pool, whose correlations are
    the training rows'), as the tested value has it; each draw divides by its
    norm over the features the draw compares (a feature constant on one
    permuted side drops out of both). The draws are then the permutation
    distribution of ``||C_ref - C_cand||_F`` itself, on the tested value's scale: with
    each draw divided by its own reference side's norm, a side mixing training
    rows with a weakly correlated candidate (noise) had a smaller norm and a
    larger distance, and the noise control passed the (then unweighted) Pearson
    correlation distance in 9 of 20 phantom cells at n = 40 (BENCHMARKS.md,
    validation calibration).
    ``strong_pairs_strength`` scores a draw whose reference side has no strong
    pair at its largest value (its ``draw_keywords``: ``empty``), so that every
    draw counts in the p-value.
    """
    function = spec.bound(settings, draw=True)
    if spec.training_norm:
        method = spec.keywords.get("method", "pearson")
        train = pool[:n_train]
        kept, c_train, _ = _correlation_matrices(train, train, method)
        n_features = np.shape(pool)[1]
        full = np.full((n_features, n_features), np.nan)  # a feature the training rows lack: NaN draws
        if c_train is not None:
            full[np.ix_(kept, kept)] = c_train
        function = functools.partial(function, norm=full)
    if spec.pair_weights:
        function = functools.partial(function, weights=correlation_weights(pool))
    return function


def _standardised_pools(train: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled training and candidate rows, each set standardised on its own, for the correlation gates' draws.

    Returns the z-scored pool (Pearson) and the within-set rank pool, ranks
    scaled to (0, 1) so sets of different sizes share a scale (Spearman;
    :func:`radaug.validate.metrics.within_set_standardised`). Only features
    finite in every row and non-constant in both sets are kept: the
    correlation gates drop the others from the tested value too.
    """
    keep = (np.isfinite(train).all(axis=0) & np.isfinite(cand).all(axis=0)
            & ~is_constant(train) & ~is_constant(cand))
    sets = [m[:, keep] for m in (train, cand)]
    return tuple(np.concatenate([within_set_standardised(m, method) for m in sets])
                 for method in ("pearson", "spearman"))


_SPLIT_CACHE: dict[str, tuple[NullDraws, dict[str, str]]] = {}
"""Real-vs-real split null and ``min_detectable`` of recent cells (see :func:`validate_arm`), by
:func:`_split_key`."""

_SPLIT_CACHE_SIZE = 8

_SHARED_SPLIT_NULLS: list[dict[str, tuple[NullDraws, dict[str, str]]]] = []
"""The tables of the open :func:`shared_split_nulls` blocks (innermost last)."""


def _split_key(parts: tuple) -> str:
    """A cell's split-null key: the SHA-256 of the ``repr`` of what its split null and power depend on, and of
    the code that computes them (:func:`_library_version`), so a table written by other code is never read."""
    return hashlib.sha256(repr((_library_version(), parts)).encode()).hexdigest()


@functools.cache
def _library_version() -> str:
    """:func:`radaug.provenance.code_version` of this module and every radaug module it imports."""
    from radaug.provenance import code_version

    return code_version(__file__)


def clear_caches() -> None:
    """Forget this process's split nulls and detection AUCs (:data:`_SPLIT_CACHE`, :data:`_DETECTION_MEMO`), e.g.
    before timing a cell or computing it independently of an earlier one."""
    _SPLIT_CACHE.clear()
    _DETECTION_MEMO.clear()


def _split_null_lookup(key: str, compute: Callable[[], tuple[NullDraws, dict[str, str]]]
                       ) -> tuple[NullDraws, dict[str, str]]:
    """The split null and ``min_detectable`` of the cell ``key``: from the innermost shared table, else
    this process's recent cells, else ``compute()`` (added to both)."""
    shared = _SHARED_SPLIT_NULLS[-1] if _SHARED_SPLIT_NULLS else None
    if shared is not None and key in shared:
        return shared[key]
    if key not in _SPLIT_CACHE:
        while len(_SPLIT_CACHE) >= _SPLIT_CACHE_SIZE:
            _SPLIT_CACHE.pop(next(iter(_SPLIT_CACHE)))
        _SPLIT_CACHE[key] = compute()
    if shared is not None:
        shared[key] = _SPLIT_CACHE[key]
    return _SPLIT_CACHE[key]


@contextlib.contextmanager
def shared_split_nulls(arrays: Mapping[str, np.ndarray] | None = None):
    """A table of cells' real-vs-real split nulls and ``min_detectable`` that :func:`validate_arm` reads and fills.

    Within the block every cell's split null and power (what a cell's arms
    share: they depend on its real rows and the candidate's size only) are
    looked up in the yielded table before they are computed, and added to it
    after. ``arrays``: a table another job wrote (:func:`split_null_arrays`;
    the validate jobs read the control jobs' tables), preloaded. A preloaded
    entry is what the computation would give on the same machine, bit for bit
    (the same seeded draws, one BLAS thread; the image gates' patch distances
    come from a Gram matrix over all the cell's patches, whose real-vs-real
    entries do not depend on the candidate's patches with OpenBLAS here, which
    another BLAS need not promise), so a job's results do not depend on whether
    its cells were found. A cell is found only where its real rows, holdout,
    other classes, real patches, gates, sizes, settings, seed and the code
    (:func:`_split_key`) are the cell's own: an arm with fewer candidate rows
    than training rows of a class, for one, computes that cell itself.
    """
    table: dict[str, tuple[NullDraws, dict[str, str]]] = {}
    if arrays is not None:
        for name in arrays:
            if name.endswith(".detectable"):
                key = name[: -len(".detectable")]
                detectable = json.loads(arrays[name].tobytes().decode())
                table[key] = (NullDraws.from_arrays(arrays, key), detectable)
    _SHARED_SPLIT_NULLS.append(table)
    try:
        yield table
    finally:
        _SHARED_SPLIT_NULLS.pop()


def split_null_arrays(table: Mapping[str, tuple[NullDraws, dict[str, str]]]) -> dict[str, np.ndarray]:
    """A :func:`shared_split_nulls` table as arrays for :func:`radaug.io.save_arrays` (no pickle)."""
    arrays: dict[str, np.ndarray] = {}
    for key, (null, detectable) in table.items():
        arrays.update(null.to_arrays(key))
        arrays[f"{key}.detectable"] = np.frombuffer(json.dumps(detectable, sort_keys=True).encode(), dtype=np.uint8)
    return arrays


_IMAGE_PROTOCOLS = ("image_holdout", "image_plausibility")
"""Protocols of the image gates, scored from a cell's :class:`~radaug.validate.images.PatchPool`."""

def _scores(reference: np.ndarray, candidate: np.ndarray, holdout: np.ndarray, names,
            settings: Mapping, *, draw: bool = False, other: np.ndarray | None = None) -> dict[str, float]:
    """The gates ``names`` of one candidate set against one reference, by the statistic the null rule tests.

    Only gates of the ``features`` and ``holdout`` protocols, and of ``labels``
    given ``other`` (real rows of the other classes, the classifier's other
    side), are scored (others are left out of the result), each by its registry
    entry's ``null_function`` (else its ``function``) with ``settings``
    (``alpha``, ``nearest_k``); a function shared by several gates (PRDC, the
    holdout gates) is called once for them all.
    ``draw``: the set is a null draw or a simulated defective set (every caller but
    the tested value, :func:`_tested_values`), scored with the entry's
    ``draw_keywords`` too, so every null path scores a degenerate draw alike.
    """
    results: dict = {}
    scores = {}
    for name in names:
        spec = METRICS[name]
        if spec.protocol not in ("features", "holdout", "labels") or (spec.protocol == "labels" and other is None):
            continue
        key = spec.call(null=True, draw=draw)
        if key not in results:
            function = spec.bound(settings, null=True, draw=draw)
            results[key] = (function(reference, candidate) if spec.protocol == "features"
                            else function(reference, other, candidate) if spec.protocol == "labels"
                            else function(candidate, reference, holdout))
        result = results[key]
        scores[name] = _value(result, name)
    return scores


def _split_null_and_power(train, holdout, n_candidate, row_groups, tested, settings, *, seed,
                          null_splits, level, power_repeats, n_detection=0, holdout_groups=None,
                          other=None, images: PatchPool | None = None) -> tuple[NullDraws, dict[str, str]]:
    """A cell's real-vs-real split null and each gate's ``min_detectable``.

    The split null (:func:`_null_draws`) gives a gate with registry ``null: split``
    its draws (none at present: the holdout gates have the exchange null,
    :func:`_exchange_draws`, since 2026-12-02); with ``power_repeats`` it covers
    every tested gate, for the power simulation (the detection AUC in its first
    ``n_detection`` draws, with the predictive tail of
    :func:`radaug.validate.null.predictive_p_value`, as in the permutation null). The
    candidate's own test is the permutation null (:func:`_permutation_draws`) on
    all training rows (the holdout gates: on all rows of the cell); its critical value depends
    on the candidate, which a defect simulation does not have, and a defect needs
    real rows its reference never saw. Power is therefore simulated on the splits
    (defects from half B, reference half A) and read against the critical value
    of a null of that comparison: the power of the test on half the data, a conservative
    statement of the permutation test's power at this cell's sizes. That null is
    the split draws for the permutation gates, and for the holdout gates
    (``null: exchange``) their own null on the halves: half A, the first split's
    half B at the candidate's size and the holdout (``holdout_groups``: its
    group labels) re-partitioned into three sets of those sizes
    (:func:`_exchange_draws`), paired with the split draws by draw index in the
    min-P adjustment as the tested exchange draws are with the permutation
    draws. (Until 2026-12-02 the holdout gates' power was read against the split
    null, anti-conservative for them at n <= 20, so their ``min_detectable``
    could be optimistic; BENCHMARKS.md, validation calibration.) The split draws
    and the defective sets are scored as the permutation draws are, with each
    gate's registry ``draw_keywords`` (:func:`_scores` with ``draw``): strong
    pairs kept scores a half A without a strong pair at ``1 / threshold``, as a
    permuted side is. Those draws were NaN here before and dropped out of the
    split null (up to 96% of its draws on weakly correlated 4-feature cells); no
    stated ``min_detectable`` changed on the cells measured (BENCHMARKS.md,
    validation calibration), since a defective set on such a half A has no
    strong pair to lose either. Label disagreement (given ``other``, the real
    rows of the other classes) is fit against one seeded half of ``other``
    in the split draws and the defective sets, and its defect's rows of another
    class come from the other half (:func:`_other_halves`): a row the classifier
    was fit on would be recognised too easily. The image gates (given
    ``images``, the cell's :class:`~radaug.validate.images.PatchPool`) take the
    same draws: the implausible share of half B against half A's ROI size range,
    the image memorization ratio in the exchange draws on the halves. The
    detection AUC (a cross-validated forest per draw and defective set, the
    costliest part) has had its power simulated since 2026-12-03; before, it
    had none and stayed out of this null's min-P adjustment.
    """
    gates = [name for name in tested if METRICS[name].null == "split"
             or (power_repeats and (METRICS[name].protocol != "detection" or n_detection))]
    exchange = [name for name in gates if METRICS[name].null == "exchange"]
    other_fit, other_pool = _other_halves(other, seed)
    null = _null_draws(train, holdout, n_candidate, row_groups, [name for name in gates if name not in exchange],
                       settings, seed=seed, n_splits=null_splits, n_detection=n_detection, other=other_fit,
                       images=images)
    if not power_repeats:
        return null, {}
    if exchange:
        a, b = _null_split(row_groups, n_candidate, seed, 0)
        g_hold = (np.array([f"holdout-row-{i}" for i in range(len(holdout))]) if holdout_groups is None
                  else np.asarray(holdout_groups))
        null.values.update(_exchange_draws(train[a], train[b], holdout, np.asarray(row_groups)[a],
                                           np.asarray(row_groups)[b], g_hold, exchange, settings,
                                           seed=seed, n_draws=null_splits, images=images,
                                           image_rows=np.concatenate([a, b, _holdout_rows(images, holdout)])))
        null.directions.update({name: METRICS[name].direction for name in exchange})
        null.scales.update(_tie_scales(exchange))
    return null, _power(train, holdout, n_candidate, row_groups, null, critical_p(null.min_p(), level),
                        settings, seed=seed, repeats=power_repeats, other=other_fit, other_pool=other_pool,
                        images=images)


def _image_pool(patches: Patches | None, tested) -> PatchPool | None:
    """The cell's :class:`~radaug.validate.images.PatchPool` (training, candidate, holdout patches), if an image
    gate is tested."""
    if patches is None or not any(METRICS[name].protocol in _IMAGE_PROTOCOLS for name in tested):
        return None
    p = patches
    return patch_pool(np.concatenate([p.train_images, p.candidate_images, p.holdout_images]),
                      np.concatenate([p.train_masks, p.candidate_masks, p.holdout_masks]), p.intensity_range)


def _physically_impossible(images: PatchPool | None, n_train: int, n_cand: int, tested) -> dict[str, int]:
    """Image-plausibility gates that fail outright: candidate patches with an empty mask or an intensity outside
    the physical range, where no real patch of the cell (training or holdout) has one; gate -> number of such
    candidate patches.

    The permutation test of the implausible share cannot see one such patch (it
    moves between the sides like any row: one of 15 candidate patches among 45
    gives p = 1/3), yet where no real case of the cell has one it is a defect
    whatever the sample size. This verdict is outside the level's promise: real
    patches *can* be flagged (a B-spline resampling overshoots the physical range
    at sharp edges; a native crop keeps a scanner's padding value), and a fresh
    real candidate with such a patch fails where the cell's other real patches
    happen to have none.
    """
    if images is None or images.flagged[:n_train].any() or images.flagged[n_train + n_cand:].any():
        return {}
    count = int(images.flagged[n_train:n_train + n_cand].sum())
    return {name: count for name in tested if METRICS[name].protocol == "image_plausibility"} if count else {}


def _holdout_rows(images: PatchPool | None, holdout: np.ndarray) -> np.ndarray:
    """Rows of the holdout's patches in the cell's patch pool: its last rows."""
    n = 0 if images is None else len(images.roi_voxels)
    return np.arange(n - len(holdout), n)


def _real_patch_digest(patches: Patches) -> bytes:
    """A digest of the real patches and the intensity range, for the split null's cache key."""
    digest = hashlib.sha1()
    for array in (patches.train_images, patches.train_masks, patches.holdout_images, patches.holdout_masks):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(patches.intensity_range).encode())
    return digest.digest()


def _other_halves(other: np.ndarray | None, seed) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The other classes' rows in two seeded halves: the power simulation's classifier side and its defect's rows.

    None without ``other``; with fewer than four rows both halves are all of them.
    """
    if other is None:
        return None, None
    if len(other) < 4:
        return other, other
    order = stream_rng("label_other_halves", seed, n=len(other)).permutation(len(other))
    return other[np.sort(order[: len(other) // 2])], other[np.sort(order[len(other) // 2:])]


def _null_split(row_groups, n_candidate: int, seed: int, draw: int):
    """Half A and B's rows drawn to the candidate's matched size, for null draw ``draw``."""
    a, b = grouped_halves(row_groups, stream_key("null_split", seed, draw=draw))
    size = min(n_candidate, len(b))
    if len(b) > size >= 2:
        b = np.sort(stream_rng("null_split", seed, draw=draw).choice(b, size=size, replace=False))
    return a, b


def _null_draws(train, holdout, n_candidate, row_groups, gates, settings, *, seed, n_splits, n_detection=0,
                other=None, images: PatchPool | None = None) -> NullDraws:
    """``n_splits`` real-vs-real split draws of every gate in ``gates`` at the candidate's size.

    A detection AUC among ``gates`` gets the first ``n_detection`` draws only (a
    cross-validated forest each, folds grouped by ``row_groups``) and, as in the
    permutation null, the predictive tail (:func:`radaug.validate.null.predictive_p_value`). ``other``: the other classes' rows label
    disagreement's classifier is fit against (none: not scored); ``images``: the
    cell's patch pool, whose first rows are the training rows' (the implausible share).
    """
    plausibility = [name for name in gates if METRICS[name].protocol == "image_plausibility"]
    detection = {name: _shared_detection(METRICS[name].bound(settings)) for name in gates
                 if METRICS[name].protocol == "detection"}
    row_groups = np.asarray(row_groups).astype(str)
    values = {name: np.full(n_splits, np.nan) for name in gates}

    def split(draw: int) -> dict[str, float]:
        a, b = _null_split(row_groups, n_candidate, seed, draw)
        scores = _scores(train[a], train[b], holdout, gates, settings, draw=True, other=other)
        scores.update({name: pooled_implausible_share(images, a, b) for name in plausibility})
        if draw < n_detection:
            scores.update({name: auc(train[a], train[b], seed=seed, groups_reference=row_groups[a],
                                     groups_candidate=row_groups[b]) for name, auc in detection.items()})
        return scores

    _fill(values, _shared_map(split, n_splits))
    for name in detection:
        values[name] = values[name][:n_detection]
    return NullDraws(values, {name: METRICS[name].direction for name in gates}, frozenset(detection),
                     scales=_tie_scales(gates), seed=seed)


def _tie_scales(gates) -> dict[str, str]:
    """Each gate's tie-break scale (:func:`radaug.validate.null.tie_scale`), from the range of the statistic its
    null tests (registry ``null_range``, else ``range``)."""
    return {name: tie_scale(METRICS[name].null_range or METRICS[name].range) for name in gates}


def _power(train, holdout, n_candidate, row_groups, null: NullDraws, critical: float, settings, *,
           seed, repeats, other=None, other_pool=None, images: PatchPool | None = None) -> dict[str, str]:
    """``min_detectable`` of every gate with a ``defect`` (:data:`~radaug.validate.null.DEFECTS`) in the registry.

    ``other``: the other classes' rows label disagreement is fit against; ``other_pool``: other rows of
    those classes, the rows its ``mislabelled`` defect puts in (see :func:`_split_null_and_power`).
    The image gates' defects are built on the rows of ``images`` (:func:`_image_defect_value`); the
    detection AUC's folds keep each defective row in its source case's group (``row_groups``).
    """
    from radaug.validate.null import DEFECTS

    by_kind: dict[str, list[str]] = {}
    for name in null.values:
        if METRICS[name].defect:
            by_kind.setdefault(METRICS[name].defect, []).append(name)
    row_groups = np.asarray(row_groups).astype(str)
    splits = [_null_split(row_groups, n_candidate, seed, draw) for draw in range(repeats)]
    holdout_rows = _holdout_rows(images, holdout)
    found = {}
    for kind, names in by_kind.items():
        rates: dict[float, dict[str, float]] = {}
        pending = list(names)  # gates not yet at the target: a gate is simulated up to its smallest detected size
        forests = {name: _shared_detection(METRICS[name].bound(settings)) for name in names
                   if METRICS[name].protocol == "detection"}
        for size in DEFECTS[kind][1]:
            detection = {name: auc for name, auc in forests.items() if name in pending}

            def defect_values(draw: int, size=size, pending=list(pending), detection=detection) -> dict[str, float]:
                a, b = splits[draw]
                rng = stream_rng("power_defect", seed, draw=draw, size_milli=int(size * 1000))
                bad, source = defective(kind, size, train[a], train[b], len(b), rng, other=other_pool,
                                        sources=True) if any(
                    METRICS[name].protocol not in _IMAGE_PROTOCOLS for name in pending) else (None, None)
                values = {} if bad is None else _scores(train[a], bad, holdout, pending, settings, draw=True,
                                                        other=other)
                if detection:
                    groups = np.where(source >= 0, row_groups[b][np.maximum(source, 0)],
                                      [f"defect-row-{i}" for i in range(len(source))])
                    values.update({name: auc(train[a], bad, seed=seed, groups_reference=row_groups[a],
                                             groups_candidate=groups) for name, auc in detection.items()})
                for name in pending:
                    if METRICS[name].protocol in _IMAGE_PROTOCOLS:
                        values[name] = _image_defect_value(
                            name, size, a, b, holdout_rows, images,
                            stream_rng("power_defect_image", seed, draw=draw, size_milli=int(size * 1000)))
                return values

            fails = dict.fromkeys(pending, 0)
            for values in _shared_map(defect_values, len(splits)):
                for name, value in values.items():
                    fails[name] += null.ranking_p(name, value) <= critical
            rates[size] = {name: fails[name] / max(len(splits), 1) for name in pending}
            pending = [name for name in pending if rates[size][name] < POWER_TARGET]
            if not pending:
                break
        for name in names:
            found[name] = minimum_detectable(kind, lambda s, n=name: rates.get(s, {}).get(n, 1.0))
    return found


_DETECTION_MEMO: dict[str, float] = {}
"""Detection AUCs of recent split draws and defective sets, by a digest of their inputs
(:func:`_shared_detection`)."""

_DETECTION_MEMO_SIZE = 4096


def _shared_detection(auc: functools.partial) -> Callable[..., float]:
    """``auc`` (a bound ``detection_auc``, :meth:`~radaug.validate.registry.MetricSpec.bound`) remembering its
    recent values by a digest of its inputs.

    A cell's split-null keys differ by their gates (with or without the image
    gates: a control arm with patches and one without) while their split draws
    and defective sets, hence their detection AUCs, are the same; a forest each,
    these are the power simulation's costliest part.
    """
    def shared(reference, candidate, *, seed, groups_reference, groups_candidate):
        digest = hashlib.sha256()
        for part in (reference, candidate):
            digest.update(repr(part.shape).encode() + np.ascontiguousarray(part).tobytes())
        for part in (groups_reference, groups_candidate):
            digest.update("\x1f".join(map(str, part)).encode() + b"\x1e")
        function = f"{auc.func.__module__}.{auc.func.__qualname__}|{sorted(auc.keywords.items())!r}"
        key = f"{digest.hexdigest()}|{seed}|{function}"
        if key not in _DETECTION_MEMO:
            _trim_detection_memo(_DETECTION_MEMO_SIZE - 1)
            _DETECTION_MEMO[key] = auc(reference, candidate, seed=seed, groups_reference=groups_reference,
                                       groups_candidate=groups_candidate)
        return _DETECTION_MEMO[key]

    return shared


def _shared_map(task: Callable[[int], dict[str, float]], n: int) -> list[dict[str, float]]:
    """:func:`radaug.parallel.map_draws` of draws that may grow forests through :func:`_shared_detection`:
    the AUCs computed in worker processes join this process's :data:`_DETECTION_MEMO`."""
    values = map_draws(task, n, keep=_DETECTION_MEMO)
    _trim_detection_memo(_DETECTION_MEMO_SIZE)
    return values


def _trim_detection_memo(size: int) -> None:
    """Forget the oldest of :data:`_DETECTION_MEMO`'s AUCs until it holds at most ``size``."""
    while len(_DETECTION_MEMO) > size:
        _DETECTION_MEMO.pop(next(iter(_DETECTION_MEMO)))


def _fill(values: dict[str, np.ndarray], draws: list[dict[str, float]]) -> None:
    """Write each draw's scores (one dict per draw, in draw order) into the gates' arrays of ``values``."""
    for draw, scores in enumerate(draws):
        for name, score in scores.items():
            values[name][draw] = score


def _image_defect_value(name: str, size: float, a: np.ndarray, b: np.ndarray, holdout_rows: np.ndarray,
                        images: PatchPool, rng: np.random.Generator) -> float:
    """An image gate's value on half B's patches with its defect of ``size`` (reference: half A's patches).

    ``copies`` (image memorization ratio): a share ``size`` of B's patches
    replaced by patches of A, at distance 0 from their training patch.
    ``implausible`` (implausible share): a share ``size`` of B's patches made
    implausible (as an empty mask or an intensity outside the physical range would).
    """
    changed = rng.random(len(b)) < size
    if METRICS[name].defect == "copies":
        rows = b.copy()
        rows[changed] = a[rng.integers(len(a), size=int(changed.sum()))]
        return pooled_memorization_ratio(images, a, rows, holdout_rows)
    if METRICS[name].defect == "implausible":
        return float(np.mean(changed | pooled_implausible(images, a, b)))
    raise ValueError(f"no image defect {METRICS[name].defect!r} for gate {name!r}")


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


def _row_groups(table: pd.DataFrame, column: str | None, own: str | None = None) -> np.ndarray:
    """Group label of each row of ``table`` by ``column``; each row its own group if absent.

    ``own``: the prefix of a row's own label (``own`` + position) where its group
    is missing; None: ``row-`` for a missing value, the bare position without the
    column (the training rows' labels; ``grouped_halves`` sorts them). The
    holdout's rows pass ``"holdout-row-"`` so that its own labels never meet the
    training rows' in the exchange null, which pools the sets unprefixed.
    """
    if column is None or column not in table.columns:
        return np.array([f"{own or ''}{i}" for i in range(len(table))])
    own = pd.Series([f"{own or 'row-'}{i}" for i in range(len(table))], index=table.index)
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


