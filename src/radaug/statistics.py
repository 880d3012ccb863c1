"""Across-fold statistics of the evaluation: each arm compared with the reference, per metric.

:func:`summarise` is the evaluation summary: per arm and metric the mean over folds with a
Nadeau-Bengio corrected interval, the paired difference to the reference arm with the
corrected resampled t-test (:func:`corrected_resampled_ttest`), its Holm adjustment across
arms (:func:`holm_adjusted`), Cohen's d_z (:func:`standardised_effect`) and the difference of
pooled out-of-fold metrics with a paired case-bootstrap interval (:func:`paired_bootstrap_delta`).
:func:`inference_notes` says in words what a study's folds can support.

The per-fold tables and predictions come from :func:`radaug.evaluate.evaluate_arm`, whose
metric definitions the bootstrap reuses. scipy.stats and statsmodels are imported in the
functions that use them, so a job importing this module for a helper does not pay for them.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from radaug.arms import REFERENCE_ARM
from radaug.evaluate import (
    CLASSIFICATION_METRICS,
    PROBABILITY_PREFIX,
    probability_classes,
    summary_metrics,
    weighted_classification_metrics,
    weighted_multiclass_metrics,
)
from radaug.seeds import stream_rng

EVALUATION_SUMMARY_COLUMNS = (
    "arm", "metric", "mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds",
    "holm_p_value", "effect_size", "pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high",
    "holm_significant",
)
"""Contract columns first (``arm`` … ``n_folds``), then the additional statistics."""


def _paired_differences(differences, what: str) -> np.ndarray:
    """``differences`` as a 1-D float array, or ValueError naming the problem."""
    array = np.asarray(differences, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} needs a 1-D sequence of per-fold differences, got an array of shape "
                         f"{array.shape}; pass one difference per (repeat, fold)")
    if np.isnan(array).any():
        raise ValueError(f"{what}: differences {np.flatnonzero(np.isnan(array)).tolist()} are NaN; drop the "
                         "folds whose metric is undefined (e.g. AUC of a single-class test fold) first")
    return array


ZERO_VARIANCE = "zero variance"
"""Reason of a NaN :func:`corrected_resampled_ttest`: the per-fold differences are all equal and not zero."""


def corrected_resampled_ttest(differences, n_train: float, n_test: float) -> tuple[float, float]:
    """Corrected resampled t-test for paired scores of two arms over cross-validation folds.

    Nadeau & Bengio (2003), doi:10.1023/A:1024068626366: fold scores share training
    data, so the naive variance of their differences is too small. With ``J``
    differences of mean ``m`` and sample variance ``s²`` (``ddof=1``)::

        t = m / sqrt((1/J + n_test/n_train) * s²),  df = J - 1

    and the p-value is two-sided from Student's t.

    Parameters
    ----------
    differences
        Per-fold score differences (arm − reference), one per ``(repeat, fold)``: a
        1-D sequence without NaN.
    n_train, n_test
        Training and test set sizes of a fold (means over folds if they vary);
        finite and positive.

    Returns
    -------
    t, p : float
        ``(nan, nan)`` when fewer than two differences. When all differences are
        equal the test is undefined (zero variance): ``(nan, 1.0)`` if they are all
        zero (no difference at all) and ``(nan, nan)`` otherwise (see
        :data:`ZERO_VARIANCE`; typical of few, small test folds, where a metric
        takes few values), never a p-value of 0.

    Raises
    ------
    ValueError
        ``differences`` is not 1-D or holds NaN; ``n_train`` or ``n_test`` is not
        finite and positive.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite positive number (a fold's mean set size), got {value}")
    differences = _paired_differences(differences, "corrected_resampled_ttest")
    n = differences.size
    if n < 2:
        return float("nan"), float("nan")
    mean = differences.mean()
    if np.all(differences == differences[0]):  # zero variance (tested exactly: var() rounds)
        return float("nan"), (1.0 if mean == 0 else float("nan"))
    from scipy import stats

    t = mean / np.sqrt((1 / n + n_test / n_train) * differences.var(ddof=1))
    return float(t), float(2 * stats.t.sf(abs(t), n - 1))


def standardised_effect(differences) -> float:
    """Cohen's d_z of paired differences: ``mean / sd`` (``ddof=1``).

    The paired-samples effect size (Lakens 2013, doi:10.3389/fpsyg.2013.00863). ``0``
    when all differences are zero; NaN when they are equal and non-zero (zero
    variance: undefined, not infinite) and for fewer than two.

    Raises
    ------
    ValueError
        ``differences`` is not 1-D or holds NaN.
    """
    differences = _paired_differences(differences, "standardised_effect")
    if differences.size < 2:
        return float("nan")
    if np.all(differences == differences[0]):
        return 0.0 if differences[0] == 0 else float("nan")
    return float(differences.mean() / differences.std(ddof=1))


def _corrected_interval(values: np.ndarray, n_train: float, n_test: float,
                        confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean with the Nadeau-Bengio corrected variance, clipped to [0, 1].

    ``mean ± t_{(1+confidence)/2, J-1} · sqrt((1/J + n_test/n_train) · var)``: the
    correction accounts for overlapping training sets across folds, the same way as
    :func:`corrected_resampled_ttest`. All summarised metrics lie in [0, 1].
    """
    if values.size < 2:
        return float("nan"), float("nan")
    mean = values.mean()
    scale = np.sqrt((1.0 / values.size + n_test / n_train) * values.var(ddof=1))
    if scale == 0:
        return float(mean), float(mean)
    from scipy import stats

    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=scale)
    return float(max(low, 0.0)), float(min(high, 1.0))


_BOOTSTRAP_CELLS = 2_000_000
"""Replicates x rows per block of :func:`paired_bootstrap_delta` (about 16 MB per float matrix)."""


def paired_bootstrap_delta(
    predictions: pd.DataFrame,
    arm: str,
    reference_arm: str = REFERENCE_ARM,
    *,
    metrics=CLASSIFICATION_METRICS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap CI of the difference of pooled out-of-fold metrics, arm − reference.

    Out-of-fold predictions of both arms are pooled over all folds and paired by
    ``(repeat, fold, case_id)``. Each bootstrap replicate resamples **cases** with
    replacement (all repeats of a case together, so the repeats' dependence is
    kept), computes every metric of :func:`~radaug.evaluate.classification_metrics` on the pooled
    predictions of both arms and takes the difference; the interval is the
    percentile interval (Efron & Tibshirani 1993). The draws come from
    ``numpy.random.default_rng(seed)`` and depend only on the cases, so every arm
    is compared on the same replicates.

    Returns
    -------
    pandas.DataFrame
        Index ``metric``; columns ``pooled_delta`` (on all cases), ``ci_low``, ``ci_high``.

    Raises
    ------
    ValueError
        The two arms' predictions do not cover the same test cases, or cases are
        tested an unequal number of times.
    """
    key = ["repeat", "fold", "case_id"]
    a = predictions[predictions["arm"] == arm].set_index(key).sort_index()
    b = predictions[predictions["arm"] == reference_arm].set_index(key).sort_index()
    if a.index.has_duplicates or not a.index.equals(b.index):
        raise ValueError(f"arms {arm!r} and {reference_arm!r} must have predictions for the same test cases")
    if not np.array_equal(a["y_true"].to_numpy(), b["y_true"].to_numpy()):
        raise ValueError(f"arms {arm!r} and {reference_arm!r} disagree on the true labels of some cases")
    case = a.index.get_level_values("case_id").astype(str).to_numpy()
    order = np.argsort(case, kind="stable")
    cases, per_case = np.unique(case[order], return_counts=True)
    if per_case.min() != per_case.max():
        raise ValueError("every case must be tested equally often (once per repeat) for the paired bootstrap")
    shape = (cases.size, int(per_case[0]))
    y = a["y_true"].to_numpy(int)[order].reshape(shape)
    s_arm = a["score"].to_numpy(float)[order].reshape(shape)
    s_ref = b["score"].to_numpy(float)[order].reshape(shape)
    minority = (a["minority"].to_numpy(int) if "minority" in a else np.ones(len(a), int))[order].reshape(shape)
    classes = probability_classes(predictions)
    if classes:  # K > 2 classes: metrics of the class probabilities
        columns = [f"{PROBABILITY_PREFIX}{c}" for c in classes]
        p_arm, p_ref = a[columns].to_numpy(float)[order], b[columns].to_numpy(float)[order]

        def scores(weights):
            return (weighted_multiclass_metrics(y.ravel(), p_arm, weights, classes, minority.ravel()),
                    weighted_multiclass_metrics(y.ravel(), p_ref, weights, classes, minority.ravel()))
    else:
        def scores(weights):
            return (weighted_classification_metrics(y.ravel(), s_arm.ravel(), weights, minority.ravel()),
                    weighted_classification_metrics(y.ravel(), s_ref.ravel(), weights, minority.ravel()))

    def delta(case_counts: np.ndarray) -> np.ndarray:
        """(replicates, metrics) differences arm - reference, cases counted ``case_counts`` times."""
        weights = np.repeat(case_counts, shape[1], axis=1)  # rows are case-major: (case, repeat)
        ma, mb = scores(weights)
        return np.stack([ma[m] - mb[m] for m in metrics], axis=1)

    point = delta(np.ones((1, cases.size)))[0]
    rng = stream_rng("study", seed)
    draws = np.empty((n_bootstrap, len(metrics)))
    block = max(1, _BOOTSTRAP_CELLS // (cases.size * shape[1]))  # bounds the (replicates, rows) matrices
    for first in range(0, n_bootstrap, block):
        drawn = rng.integers(0, cases.size, (min(block, n_bootstrap - first), cases.size))
        replicate = np.repeat(np.arange(len(drawn)), cases.size)
        counts = np.bincount(replicate * cases.size + drawn.ravel(), minlength=drawn.size).reshape(drawn.shape)
        draws[first:first + len(drawn)] = delta(counts)
    tail = (1 - confidence) / 2 * 100
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0) if n_bootstrap else (point * np.nan,) * 2
    return pd.DataFrame({"pooled_delta": point, "ci_low": low, "ci_high": high}, index=pd.Index(metrics, name="metric"))

def summarise(
    per_fold: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    reference_arm: str = REFERENCE_ARM,
    metrics=None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Across-fold summary of each arm and metric, compared with the reference arm.

    Parameters
    ----------
    per_fold
        Concatenated ``per_fold`` tables of :func:`~radaug.evaluate.evaluate_arm`; every arm must
        cover the same ``(repeat, fold)`` pairs as the reference arm.
    predictions
        Concatenated ``predictions`` of :func:`~radaug.evaluate.evaluate_arm` for the pooled
        bootstrap; ``None`` leaves the ``pooled_*`` columns NaN.
    reference_arm
        Arm the others are compared with.
    metrics
        Metric columns of ``per_fold`` to summarise; default: :func:`~radaug.evaluate.summary_metrics`
        (those of :data:`~radaug.evaluate.CLASSIFICATION_METRICS` present, then the per-class metrics of a K-class study).
    confidence
        Level of the confidence intervals.
    alpha
        Level of ``holm_significant``.
    n_bootstrap, seed
        Bootstrap replicates and seed of :func:`paired_bootstrap_delta`.

    Returns
    -------
    pandas.DataFrame
        One row per arm (reference first) and metric, columns ``EVALUATION_SUMMARY_COLUMNS``:

        * ``mean``: mean over folds;
        * ``ci_low``, ``ci_high``: Student-t interval over the ``J`` fold values with
          the Nadeau & Bengio (2003) corrected variance ``(1/J + n_test/n_train) · s²``
          (folds share training cases, so the naive ``s²/J`` is too small), clipped to
          the metrics' range [0, 1] (``NaN`` for one fold, ``mean`` on both ends when
          all folds agree);
        * ``delta_vs_real``: mean of the paired per-fold differences arm − reference;
        * ``p_value``: :func:`corrected_resampled_ttest` of those differences with
          the arm's mean ``n_train_real`` and ``n_test``;
        * ``n_folds``: number of folds (``repeats × folds``);
        * ``holm_p_value``: ``p_value`` Holm-adjusted (Holm 1979) across the
          non-reference arms, per metric;
        * ``effect_size``: :func:`standardised_effect` (Cohen's d_z) of the differences;
        * ``pooled_delta``, ``pooled_delta_ci_low``, ``pooled_delta_ci_high``: the
          difference of the metric on pooled out-of-fold predictions and its
          paired case bootstrap interval (:func:`paired_bootstrap_delta`);
        * ``holm_significant``: ``holm_p_value < alpha``.

        The reference arm has ``delta_vs_real`` 0 and NaN tests. A test that is
        undefined (all per-fold differences equal and non-zero, fewer than two
        folds) has NaN ``p_value``, ``holm_p_value`` and ``effect_size`` and is
        never ``holm_significant``; :func:`inference_notes` says why.
    """
    if metrics is None:
        metrics = summary_metrics(per_fold)
    metrics = list(metrics)
    arms = list(dict.fromkeys(per_fold["arm"]))
    if reference_arm not in arms:
        raise ValueError(f"reference arm {reference_arm!r} is not in per_fold (arms: {arms})")
    arms.remove(reference_arm)
    by_arm = {arm: rows.set_index(["repeat", "fold"]) for arm, rows in per_fold.groupby("arm", sort=False)}
    reference = by_arm[reference_arm]
    rows = []
    for arm in [reference_arm, *arms]:
        scores = by_arm[arm]
        if scores.index.has_duplicates or set(scores.index) != set(reference.index):
            raise ValueError(
                f"arm {arm!r} must have each (repeat, fold) of reference arm {reference_arm!r} exactly once"
            )
        pooled = None
        if predictions is not None and arm != reference_arm:
            pooled = paired_bootstrap_delta(predictions, arm, reference_arm, metrics=metrics,
                                            n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        n_train, n_test = scores["n_train_real"].mean(), scores["n_test"].mean()
        for metric in metrics:
            values = scores[metric].to_numpy(dtype=float)
            low, high = _corrected_interval(values, n_train, n_test, confidence)
            if arm == reference_arm:
                delta, p_value, effect = 0.0, float("nan"), float("nan")
            else:
                differences = values - reference[metric].reindex(scores.index).to_numpy(dtype=float)
                delta = float(differences.mean())
                if np.isnan(differences).any():  # a fold's metric is undefined: so is the test
                    p_value, effect = float("nan"), float("nan")
                else:
                    _, p_value = corrected_resampled_ttest(differences, n_train=n_train, n_test=n_test)
                    effect = standardised_effect(differences)
            boot = pooled.loc[metric].tolist() if pooled is not None else [float("nan")] * 3
            rows.append((arm, metric, float(values.mean()), low, high, delta, p_value, len(values),
                         float("nan"), effect, *boot))
    summary = pd.DataFrame(rows, columns=list(EVALUATION_SUMMARY_COLUMNS[:-1]))
    for _, group in summary.groupby("metric", sort=False):
        tested = group["p_value"].dropna()  # the reference arm's p_value is NaN
        if len(tested):
            summary.loc[tested.index, "holm_p_value"] = holm_adjusted(tested.to_numpy())
    summary["holm_significant"] = summary["holm_p_value"] < alpha
    return summary


MIN_TEST_CASES_PER_CLASS = 3
"""Fewer test cases of a class in a fold make per-fold metrics too coarse for inference."""
MIN_FOLDS = 3
"""Fewer repeats × folds leave the corrected t-test with fewer than two degrees of freedom."""


def inference_notes(summary: pd.DataFrame, folds: pd.DataFrame | None = None, per_fold: pd.DataFrame | None = None,
                    *, reference_arm: str = REFERENCE_ARM) -> list[str]:
    """Plain-language warnings about what a study's statistics can support.

    Parameters
    ----------
    summary
        :func:`summarise`'s table (``arm, metric, delta_vs_real, p_value, n_folds``).
    folds
        Fold table (``repeat, fold, label, role``); checks the test cases per class
        and fold against :data:`MIN_TEST_CASES_PER_CLASS`.
    per_fold
        :func:`~radaug.evaluate.evaluate_arm`'s per-fold tables; names the arms that add no rows in
        any fold (they train on the real cases alone and evaluate like the reference).

    Returns
    -------
    list of str
        One sentence per finding, empty when there is nothing to warn about.
    """
    for name, table, needed in (("summary", summary, {"arm", "metric", "delta_vs_real", "p_value", "n_folds"}),
                                ("folds", folds, {"repeat", "fold", "label", "role"}),
                                ("per_fold", per_fold, {"arm", "n_train_added"})):
        if table is not None and not needed <= set(table.columns):
            raise ValueError(f"inference_notes: the {name} table lacks columns {sorted(needed - set(table.columns))}")
    notes = []
    n_folds = int(summary["n_folds"].max()) if len(summary) else 0
    if 0 < n_folds < MIN_FOLDS:
        notes.append(
            f"Only {n_folds} fold(s) (repeats × folds): the corrected resampled t-test has {max(n_folds - 1, 0)} "
            f"degree(s) of freedom; p-values and intervals are not meaningful. Use at least {MIN_FOLDS} "
            "folds or more repeats (split.folds, split.repeats) for inference."
        )
    if folds is not None and len(folds):
        test = folds[folds["role"] == "test"]
        counts = test.groupby(["repeat", "fold", "label"]).size().unstack(fill_value=0)
        small = counts.min(axis=None) if len(counts) else 0
        if len(counts) and small < MIN_TEST_CASES_PER_CLASS:
            worst = counts.min().idxmin()
            notes.append(
                f"Folds are too small for inference: some test folds hold only {int(small)} case(s) of class "
                f"'{worst}' (fewer than {MIN_TEST_CASES_PER_CLASS}), so per-fold sensitivity, specificity and "
                "recall take only a few values and per-fold differences are often identical. Read the deltas as "
                "descriptive; use fewer folds or more cases."
            )
    arms = summary[summary["arm"] != reference_arm]
    undefined = arms[arms["p_value"].isna() & (arms["delta_vs_real"] != 0) & (arms["n_folds"] >= 2)]
    for arm, rows in undefined.groupby("arm", sort=False):
        notes.append(
            f"Arm '{arm}': the per-fold differences of {', '.join(rows['metric'])} are identical in every fold "
            f"({ZERO_VARIANCE}), so the t-test is undefined: p-value, Holm p-value and effect size are left "
            "empty (NaN) and the difference is not called significant."
        )
    if per_fold is not None and len(per_fold):
        added = per_fold.groupby("arm", sort=False)["n_train_added"].sum()
        for arm in added.index[(added == 0).to_numpy()]:
            if arm != reference_arm:
                notes.append(
                    f"Arm '{arm}' adds no rows in any fold (the training folds are already balanced, or "
                    "sampling.cap_per_case is 0): it trains on the real cases alone and evaluates like "
                    f"'{reference_arm}'."
                )
    return notes


def holm_adjusted(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, by :func:`statsmodels.stats.multitest.multipletests`.

    NaN entries (tests that could not be computed) stay NaN and do not count as
    tests: ``[0.01, nan, 0.04]`` gives ``[0.02, nan, 0.04]``, as adjusting the two
    real p-values alone does.

    Its Holm branch calls ``gc.collect()``, which walks every live object (about
    0.08 s per call in a job that has imported pandas and scikit-learn). The
    objects alive before the call are frozen for its duration, so the collection
    only sees what the call itself allocates.

    Raises
    ------
    ValueError
        ``p_values`` is not 1-D, or holds values outside [0, 1] (or infinite).
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm_adjusted needs a 1-D sequence of p-values, got an array of shape {p.shape}")
    tested = ~np.isnan(p)
    outside = np.flatnonzero(tested & ((p < 0) | (p > 1)))
    if outside.size:
        raise ValueError(f"holm_adjusted: p-values must lie in [0, 1]; positions {outside.tolist()[:5]} hold "
                         f"{p[outside].tolist()[:5]}")
    adjusted = np.full(p.shape, np.nan)
    if not tested.any():
        return adjusted
    from statsmodels.stats.multitest import multipletests

    gc.freeze()
    try:
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    finally:
        gc.unfreeze()
    return adjusted
