"""Fidelity and privacy metrics between a real reference set and a candidate set.

Every function compares *feature matrices*: numpy arrays of shape
``(n_samples, n_features)`` (a 1-D array is one feature) or pandas DataFrames of
numeric columns. When a DataFrame is given, the other sets are aligned to its
column names; plain arrays must have the same number of columns. No function
needs images or Snakemake.

Shared conventions:

* **Non-finite values**: a feature column holding NaN or ±inf in *any* of the
  compared sets is dropped from the comparison (radiomics extractors emit NaN
  for undefined features, e.g. texture features of one-voxel masks).
* **Too little data**: every set needs at least two rows; otherwise, or when no
  usable feature column is left, the metric is NaN.

Each metric is declared once in :data:`radaug.validate.registry.METRICS` with
its direction, range, protocol and function, so a verdict can be derived
without knowing the metric (see :mod:`radaug.validate.summary`). The helpers
that apply these conventions (:func:`aligned`, :func:`enough_rows`,
:func:`is_constant`, :func:`zscore`) are public here for the other modules.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import ndtri
from scipy.stats import false_discovery_control, ks_2samp, rankdata
from sklearn.neighbors import NearestNeighbors

from radaug.errors import RadaugError

FeatureMatrix = np.ndarray | pd.DataFrame
"""A feature matrix: rows are samples, columns are features."""


@dataclass(frozen=True)
class KSBreakdown:
    """Per-feature result of :func:`ks_fdr_breakdown`.

    Attributes
    ----------
    share
        Share of tested features that differ (the :func:`ks_fdr` value); NaN if
        no feature could be tested.
    table
        One row per tested feature with columns ``feature``, ``ks_statistic``,
        ``p_value``, ``q_value`` (Benjamini-Hochberg adjusted) and ``differs``
        (``q_value <= alpha``).
    constant
        Features skipped because both sets hold the same single value.
    non_finite
        Features dropped because a set holds NaN or ±inf in them.
    """

    share: float
    table: pd.DataFrame
    constant: tuple
    non_finite: tuple


@dataclass(frozen=True)
class CorrelationBreakdown:
    """Per-pair result of :func:`correlation_breakdown`.

    Attributes
    ----------
    distance
        The :func:`correlation_distance` value; NaN if no correlation is defined.
    reference, candidate
        Square correlation matrices (DataFrames indexed both ways by feature
        name, in the input's column order) of the features non-constant in both
        sets; empty if none.
    """

    distance: float
    reference: pd.DataFrame
    candidate: pd.DataFrame

    @property
    def difference(self) -> pd.DataFrame:
        """Candidate minus reference correlation, per feature pair, in [-2, 2]."""
        return self.candidate - self.reference


def aligned(*sets: FeatureMatrix) -> tuple[list, list[np.ndarray], list]:
    """Align feature sets column-wise and drop columns that are non-finite in any set.

    Returns
    -------
    names
        Kept feature names: the first DataFrame's column names, else column indices.
    matrices
        One float array per set, restricted to the kept columns.
    dropped
        Names of the columns dropped as non-finite.
    """
    frames = [s for s in sets if isinstance(s, pd.DataFrame)]
    names = list(frames[0].columns) if frames else None
    matrices = []
    for s in sets:
        if isinstance(s, pd.DataFrame):
            missing = [c for c in names if c not in s.columns]
            if missing:
                raise RadaugError(
                    f"Feature sets do not share columns: {missing[:5]} missing "
                    f"({len(missing)} in all). Pass tables with the same feature columns."
                )
            m = s[names].to_numpy(dtype=float)
        else:
            m = np.asarray(s, dtype=float)
            if m.ndim == 1:
                m = m[:, np.newaxis]
        if m.ndim != 2:
            raise RadaugError(
                f"A feature set has shape {m.shape}; pass a 2-D (samples × features) matrix."
            )
        matrices.append(m)
    widths = {m.shape[1] for m in matrices}
    if len(widths) > 1:
        raise RadaugError(
            f"Feature sets have different numbers of columns {sorted(widths)}; "
            "pass matrices with the same features in the same order."
        )
    if names is None:
        names = list(range(widths.pop()))
    finite = np.logical_and.reduce([np.isfinite(m).all(axis=0) for m in matrices])
    kept = [n for n, keep in zip(names, finite) if keep]
    dropped = [n for n, keep in zip(names, finite) if not keep]
    return kept, [m[:, finite] for m in matrices], dropped


def enough_rows(*matrices: np.ndarray) -> bool:
    """Whether every matrix has the two rows a metric needs at least."""
    return all(m.shape[0] >= 2 for m in matrices)


# Radiomics features are computed from float32 images: values that differ only by
# float32 rounding (e.g. the first-order mean of a z-scored ROI, 0 by construction)
# are constant for every purpose, and z-scoring them would divide by rounding noise.
CONSTANT_RTOL = 1e-5


def is_constant(m: np.ndarray) -> np.ndarray:
    """Boolean mask of columns constant up to float32 rounding (range ≤ 1e-5 × max(1, max|x|))."""
    scale = np.maximum(1.0, np.abs(m).max(axis=0)) if len(m) else 1.0
    return np.ptp(m, axis=0) <= CONSTANT_RTOL * scale


def zscore(matrices: list[np.ndarray], by: np.ndarray) -> list[np.ndarray]:
    """Z-score matrices with the column mean and sample std of ``by``.

    Columns constant in ``by`` cannot be scaled and are dropped.
    """
    keep = ~is_constant(by)
    mean = by[:, keep].mean(axis=0)
    std = by[:, keep].std(axis=0, ddof=1)
    return [(m[:, keep] - mean) / std for m in matrices]


def ks_2samp_columns(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided two-sample KS statistic and p-value of every column: :func:`scipy.stats.ks_2samp` (``axis=0``), faster.

    The statistic of each column is computed as scipy computes it (the same
    empirical-CDF counts and float operations, so bit for bit the same value), and
    scipy's ``ks_2samp`` is then run only on the first column of each *distinct*
    statistic not met before at these sample sizes (:data:`_KS_RESULTS`): its p-value depends only on the statistic and the two sample
    sizes (exact or asymptotic alike), so every column with that statistic gets the
    same result scipy would give it. A permutation null calls this thousands of times
    on about a hundred features whose statistics take a few dozen values at most:
    scipy's per-column call was about a quarter of a null-rule validation job
    (BENCHMARKS.md, validation calibration); ``tests/unit/test_validate.py`` checks the
    results equal scipy's.

    Parameters
    ----------
    reference, candidate
        ``(n1, F)`` and ``(n2, F)`` finite arrays.

    Returns
    -------
    statistic, p_value
        ``(F,)`` arrays.

    Raises
    ------
    ValueError
        If a set holds NaN or infinite values.
    """
    ref = np.asarray(reference, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if not (np.isfinite(ref).all() and np.isfinite(cand).all()):  # scipy's NaN result must not enter the cache
        raise ValueError("ks_2samp_columns: the sets hold NaN or infinite values; drop those columns first "
                         "(ks_fdr_breakdown does)")
    n1, n2 = len(ref), len(cand)
    values, count1 = _pooled_counts(ref, cand)
    # ECDF counts at each pooled value, read at the last of its ties (scipy: searchsorted side="right")
    count2 = np.arange(1, n1 + n2 + 1)[:, None] - count1
    diffs = count1 / n1 - count2 / n2
    last_of_ties = np.ones(values.shape, dtype=bool)
    last_of_ties[:-1] = values[1:] != values[:-1]
    d = np.maximum(np.clip(-np.where(last_of_ties, diffs, np.inf).min(axis=0), 0, 1),
                   np.where(last_of_ties, diffs, -np.inf).max(axis=0))
    distinct, first, inverse = np.unique(d, return_index=True, return_inverse=True)
    found = {k: _KS_RESULTS.get((n1, n2, float(v))) for k, v in enumerate(distinct)}
    new = [k for k, hit in found.items() if hit is None]
    if new:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
            result = ks_2samp(ref[:, first[new]], cand[:, first[new]], axis=0)
        if len(_KS_RESULTS) > _KS_CACHE_SIZE:
            _KS_RESULTS.clear()
        for k, statistic, p_value in zip(new, np.atleast_1d(result.statistic), np.atleast_1d(result.pvalue)):
            found[k] = _KS_RESULTS[(n1, n2, float(distinct[k]))] = (statistic, p_value)
    looked_up = np.array([found[k] for k in range(len(distinct))]).reshape(-1, 2)  # this call's own results
    inverse = inverse.ravel()
    return looked_up[inverse, 0], looked_up[inverse, 1]


_KS_CACHE_SIZE = 100_000
_KS_RESULTS: dict[tuple[int, int, float], tuple[float, float]] = {}
"""scipy's ``(statistic, p_value)`` by ``(n1, n2, statistic)``: a permutation null tests one
cell's sizes hundreds of times, and its statistics take a few dozen values."""


def ks_fdr_breakdown(
    reference: FeatureMatrix, candidate: FeatureMatrix, alpha: float = 0.05
) -> KSBreakdown:
    """Per-feature two-sample Kolmogorov-Smirnov tests with Benjamini-Hochberg FDR control.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    alpha
        False discovery rate level in (0, 1); a feature differs if its
        BH-adjusted p-value (q-value) is at most ``alpha``.

    Returns
    -------
    KSBreakdown
        The share of differing features and the per-feature table. Features
        holding the same single value in both sets carry no information and are
        skipped (listed in ``constant``); features constant at *different* values
        are tested and differ. Non-finite columns are dropped (``non_finite``).

    Notes
    -----
    Uses :func:`scipy.stats.ks_2samp` (two-sided; exact p-values for small
    samples, silently falling back to the asymptotic distribution where the
    exact computation fails) and :func:`scipy.stats.false_discovery_control`
    with ``method="bh"``.

    References
    ----------
    .. [1] Hodges, J. L. (1958). The significance probability of the Smirnov
       two-sample test. Arkiv för Matematik, 3(5), 469-486.
       :doi:`10.1007/BF02589501`
    .. [2] Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery
       rate: a practical and powerful approach to multiple testing. Journal of
       the Royal Statistical Society B, 57(1), 289-300.
       :doi:`10.1111/j.2517-6161.1995.tb02031.x`
    """
    share, tests, constant, non_finite = _ks_fdr_tests(reference, candidate, alpha)
    columns = ["feature", "ks_statistic", "p_value", "q_value", "differs"]
    table = pd.DataFrame(columns=columns) if tests is None else pd.DataFrame(dict(zip(columns, tests)))
    return KSBreakdown(share, table, constant, non_finite)


def _ks_fdr_tests(reference: FeatureMatrix, candidate: FeatureMatrix, alpha: float) -> tuple:
    """:func:`ks_fdr_breakdown`'s share, its table's columns (None where nothing is tested), the skipped
    constant and non-finite features: without the table, for :func:`ks_fdr` in the null draws."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    names, (ref, cand), non_finite = aligned(reference, candidate)
    if not enough_rows(ref, cand):
        return math.nan, None, (), tuple(non_finite)
    same_constant = is_constant(ref) & is_constant(cand) & (ref[0] == cand[0])
    constant = tuple(n for n, skip in zip(names, same_constant) if skip)
    tested = [n for n, skip in zip(names, same_constant) if not skip]
    if not tested:
        return math.nan, None, constant, tuple(non_finite)
    statistics, p_values = ks_2samp_columns(ref[:, ~same_constant], cand[:, ~same_constant])
    q_values = false_discovery_control(p_values, method="bh")
    differs = q_values <= alpha
    return float(differs.mean()), (tested, statistics, p_values, q_values, differs), constant, tuple(non_finite)


def ks_fdr(reference: FeatureMatrix, candidate: FeatureMatrix, alpha: float = 0.05) -> float:
    """Share of features whose marginal distributions differ at FDR level ``alpha``.

    The value of :func:`ks_fdr_breakdown`, which also gives the per-feature
    table; see there for tests, skipped features and references.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    alpha
        False discovery rate level in (0, 1).

    Returns
    -------
    float
        In [0, 1]; near 0 for samples of the same distribution. NaN if a set has
        fewer than two rows or no feature can be tested.
    """
    return _ks_fdr_tests(reference, candidate, alpha)[0]


def correlation_distance(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    method: Literal["pearson", "spearman"] = "pearson",
    norm: np.ndarray | None = None,
) -> float:
    """Relative Frobenius distance between feature correlation matrices.

    ``||C_ref - C_cand||_F / ||C_ref||_F``, the pairwise correlation difference of
    Goncalves et al. [1]_ made relative to the reference, so it does not grow
    with the number of features merely because the matrices get larger.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    method
        ``"pearson"`` (linear) or ``"spearman"`` (rank) correlation. Spearman
        correlation is Pearson correlation of the column ranks
        (:func:`scipy.stats.rankdata`, ties averaged).
    norm
        A correlation matrix (features x features, in the inputs' column order;
        arrays only) whose Frobenius norm over the features this comparison
        keeps divides instead of ``||C_ref||_F``. The permutation null of the
        validation gates passes the cell's training rows' correlation matrix in
        every draw (:func:`radaug.validate.summary._permutation_draws`): a
        re-partitioned reference side that mixes training rows with a candidate
        of weaker correlations has a smaller norm, and dividing by it inflated
        the draws (the noise control passed). Taken over the kept features, so
        a draw that drops a feature constant on one side is divided by the norm
        of the features it compares.

    Returns
    -------
    float
        In [0, inf); 0 if the correlation structures are identical. Features
        constant in either set have undefined correlations and are dropped, as
        are non-finite columns. NaN if a set has fewer than two rows or no
        feature is left.

    References
    ----------
    .. [1] Goncalves, A., Ray, P., Soper, B., Stevens, J., Coyle, L., & Sales,
       A. P. (2020). Generation and evaluation of synthetic patient data. BMC
       Medical Research Methodology, 20, 108. :doi:`10.1186/s12874-020-00977-1`
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    names, c_ref, c_cand = _correlation_matrices(reference, candidate, method)
    if c_ref is None:
        return math.nan
    if norm is None:  # correlation_breakdown's distance, without its tables
        norm = c_ref
    elif all(isinstance(n, (int, np.integer)) for n in names):
        kept = np.asarray(names, dtype=np.int64)
        norm = np.asarray(norm)[np.ix_(kept, kept)]
    else:
        raise ValueError("correlation_distance: a norm matrix needs array inputs (columns by position)")
    return float(np.linalg.norm(c_ref - c_cand) / np.linalg.norm(norm))


def correlation_breakdown(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    method: Literal["pearson", "spearman"] = "pearson",
) -> CorrelationBreakdown:
    """Both correlation matrices and their relative Frobenius distance.

    The per-pair view of :func:`correlation_distance` (which returns its
    ``distance``): ``breakdown.difference`` is the candidate-minus-reference
    correlation of every feature pair, the matrix a correlation-difference map
    draws. See :func:`correlation_distance` for the handling of constant and
    non-finite features and the reference.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    method
        ``"pearson"`` or ``"spearman"``.

    Returns
    -------
    CorrelationBreakdown
        Matrices labelled with the feature names (column indices for plain
        arrays); empty matrices and a NaN distance if a set has fewer than two
        rows or no feature is non-constant in both.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0)
    >>> ref = np.column_stack([x, x ** 2])
    >>> breakdown = correlation_breakdown(ref, ref)
    >>> float(breakdown.distance), float(np.abs(breakdown.difference.to_numpy()).max())
    (0.0, 0.0)
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    names, c_ref, c_cand = _correlation_matrices(reference, candidate, method)
    if c_ref is None:
        return CorrelationBreakdown(math.nan, pd.DataFrame(), pd.DataFrame())
    distance = float(np.linalg.norm(c_ref - c_cand) / np.linalg.norm(c_ref))
    return CorrelationBreakdown(distance, pd.DataFrame(c_ref, index=names, columns=names),
                                pd.DataFrame(c_cand, index=names, columns=names))


def _correlation_matrices(
    reference: FeatureMatrix, candidate: FeatureMatrix, method: str
) -> tuple[list, np.ndarray | None, np.ndarray | None]:
    """Names and correlation matrices of the features non-constant in both sets; ([], None, None) if none."""
    names, ref, cand = _correlated_columns(reference, candidate)
    if ref is None:
        return [], None, None
    if method == "spearman":
        ref, cand = rankdata(ref, axis=0), rankdata(cand, axis=0)
    c_ref = np.atleast_2d(np.corrcoef(ref, rowvar=False))
    c_cand = np.atleast_2d(np.corrcoef(cand, rowvar=False))
    return names, c_ref, c_cand


def _correlated_columns(
    reference: FeatureMatrix, candidate: FeatureMatrix
) -> tuple[list, np.ndarray | None, np.ndarray | None]:
    """Names and columns of the features finite in both sets and non-constant in both; ([], None, None) if none."""
    names, (ref, cand), _ = aligned(reference, candidate)
    if not enough_rows(ref, cand):
        return [], None, None
    keep = ~(is_constant(ref) | is_constant(cand))
    if not keep.any():
        return [], None, None
    return [n for n, k in zip(names, keep) if k], ref[:, keep], cand[:, keep]


def within_set_standardised(rows: np.ndarray, method: Literal["pearson", "spearman"]) -> np.ndarray:
    """One set's rows standardised on its own, as the correlation gates' permutation null pools them.

    ``"pearson"``: z-scores (column mean, sample SD); ``"spearman"``: column ranks
    (ties averaged) scaled to (0, 1) by ``n + 1``, so that sets of different
    sizes share a scale. A set's correlations are unchanged by either
    (:func:`radaug.validate.summary._permutation_draws` says why the null needs it).
    """
    rows = np.asarray(rows, dtype=float)
    if method == "spearman":
        return rankdata(rows, axis=0) / (len(rows) + 1)
    return (rows - rows.mean(axis=0)) / rows.std(axis=0, ddof=1)


CORRELATION_VARIANCE_FLOOR = 1e-6
"""Smallest large-sample variance :func:`correlation_weights` divides by (a numerical guard: the
default Br35H study's tumour features reach 3.5e-4, at |r| near 1)."""


def correlation_weights(rows: np.ndarray) -> np.ndarray:
    """Inverse large-sample variance of every feature pair's correlation, estimated from ``rows``.

    For two features ``x, y`` z-scored over ``rows`` with correlation ``r``,
    ``sqrt(n) (r_hat - r)`` has variance
    ``tau2 = (1 + r²/2) m22 - r (m31 + m13) + r²/4 (m40 + m04)``, ``m_ab = E[x^a y^b]``,
    whatever the distribution's tails (Steiger & Hakstian [1]_; ``(1 - r²)²`` for
    normal data). Heavy-tailed radiomics features have pairs whose correlation
    hangs on a few outlying cases: their ``tau2`` is tens of times the normal
    value, and :func:`correlation_contrast` weighs each pair by ``1 / tau2`` so
    that such pairs do not decide the whole distance.

    Parameters
    ----------
    rows
        Rows x features, finite, no constant column (the gates pass the training
        and candidate rows, each standardised on its own, pooled).

    Returns
    -------
    numpy.ndarray
        Features x features, symmetric; ``1 / max(tau2, CORRELATION_VARIANCE_FLOOR)``.

    References
    ----------
    .. [1] Steiger, J. H., & Hakstian, A. R. (1982). The asymptotic distribution of
       elements of a correlation matrix: theory and application. British Journal of
       Mathematical and Statistical Psychology, 35, 208-215.
       :doi:`10.1111/j.2044-8317.1982.tb00653.x`
    """
    z = np.asarray(rows, dtype=float)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    n = len(z)
    r = z.T @ z / n
    m22 = (z**2).T @ (z**2) / n
    m31 = (z**3).T @ z / n
    m40 = (z**4).mean(axis=0)
    tau2 = (1 + r**2 / 2) * m22 - r * (m31 + m31.T) + r**2 / 4 * (m40[:, None] + m40[None, :])
    return 1.0 / np.maximum(tau2, CORRELATION_VARIANCE_FLOOR)


def correlation_contrast(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    method: Literal["pearson", "spearman"] = "pearson",
    weights: np.ndarray | None = None,
) -> float:
    """Root mean square of the feature pairs' correlation differences in standard errors: the Pearson gate's null statistic.

    ``sqrt(mean_{i<j} w (r_ref - r_cand)² / (1/n_ref + 1/n_cand))``, ``w`` the
    inverse large-sample variance of each pair's correlation
    (:func:`correlation_weights` of the two sets each standardised on its own,
    :func:`within_set_standardised`, and pooled): each pair's difference is
    divided by its standard error, so the value is about 1 for two real
    samples of one population (asymptotically; exactly what the permutation
    null says) and grows as correlations differ. :func:`correlation_distance`
    gives every pair the same weight. The permutation null of the correlation
    distances re-partitions sets standardised on their own, which is not
    exact; on heavy-tailed radiomics features the unweighted Pearson distance,
    carried by a few outlier-driven pairs, false-failed fresh real rows (own
    p <= 0.05) in 0.205 of 200 cells of 32 training and 32 candidate rows of
    the default Br35H study's tumour class and 0.083 of 300 at 64 : 8; this
    statistic in 0.06 and 0.05 (BENCHMARKS.md, "The Pearson distance's null
    on heavy-tailed features").

    Parameters
    ----------
    reference, candidate, method
        As for :func:`correlation_distance`.
    weights
        Features x features (arrays only, columns by position), or None: computed
        from the two sets. The permutation draws pass the weights of the cell's
        pooled standardised rows, the same in every draw, as the tested value
        computes them (:func:`radaug.validate.summary._standardised_draw`); a
        draw that drops a feature constant on one side averages over the pairs
        it compares.

    Returns
    -------
    float
        In [0, inf); NaN where :func:`correlation_distance` is NaN or no pair is left.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    names, ref, cand = _correlated_columns(reference, candidate)
    if ref is None or ref.shape[1] < 2:
        return math.nan
    if weights is not None:
        if not all(isinstance(n, (int, np.integer)) for n in names):
            raise ValueError("correlation_contrast: a weights matrix needs array inputs (columns by position)")
        weights = np.asarray(weights)[np.ix_(names, names)]
    # each set's z-scores (of its ranks for Spearman) give its correlations (z'z / (n - 1), np.corrcoef's
    # values) and, for Pearson, the within-set standardised rows the weights are estimated from: computed
    # once instead of in np.corrcoef too (BENCHMARKS.md, "The tumour positive control over 400 cells")
    sets = (ref, cand)
    z_ref, z_cand = (within_set_standardised(rankdata(m, axis=0) if method == "spearman" else m, "pearson")
                     for m in sets)
    if weights is None:
        weights = correlation_weights(np.concatenate(
            [z_ref, z_cand] if method == "pearson" else [within_set_standardised(m, method) for m in sets]))
    upper = np.triu_indices(ref.shape[1], k=1)
    difference = (z_ref.T @ z_ref / (len(ref) - 1) - z_cand.T @ z_cand / (len(cand) - 1))[upper]
    squared = weights[upper] * difference**2 / (1 / len(ref) + 1 / len(cand))
    return float(np.sqrt(squared.mean()))


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr sqrtm(sigma1 @ sigma2)`` for symmetric positive semi-definite matrices.

    Uses ``tr sqrt(S1 S2) = tr sqrt(S1^½ S2 S1^½)``: the right-hand matrix is
    symmetric PSD, so two symmetric eigendecompositions replace the general
    matrix square root (about 100× faster at 100 features, and defined for
    singular covariances with no ``eps·I``; round-off below 0 is clipped, but
    a singular covariance's zero eigenvalues come out as round-off near 1e-16
    whose square roots add up: :func:`frechet_distance` computes sets with no
    more rows than features from their rows instead).
    """
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_from_moments(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians given their moments.

    ``||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` [1]_, the
    quantity behind FID [2]_ and the Fréchet Radiomics Distance [3]_. Note that
    it is the *squared* 2-Wasserstein distance, as in those papers.

    Parameters
    ----------
    mu1, mu2
        Mean vectors of length F (scalars for one feature).
    sigma1, sigma2
        Covariance matrices of shape (F, F) (scalars for one feature).

    Notes
    -----
    The trace of the matrix root is computed as ``Tr((S1^½ S2 S1^½)^½)`` from
    two symmetric eigendecompositions, which is defined for singular
    covariances and needs no ``eps·I`` regularisation (its round-off there is
    about 1e-8 of the value per zero eigenvalue's root; see :func:`frechet_distance`).

    Returns
    -------
    float
        In [0, inf); round-off below 0 is clipped to 0.

    References
    ----------
    .. [1] Dowson, D. C., & Landau, B. V. (1982). The Fréchet distance between
       multivariate normal distributions. Journal of Multivariate Analysis,
       12(3), 450-455. :doi:`10.1016/0047-259X(82)90077-X`
    .. [2] Heusel, M., Ramsauer, H., Unterthiner, T., Nessler, B., & Hochreiter,
       S. (2017). GANs trained by a two time-scale update rule converge to a
       local Nash equilibrium. NeurIPS 30. arXiv:1706.08500
    .. [3] Konz, N., Osuala, R., Verma, P., Chen, Y., Gu, H., Dong, H., Chen, Y.,
       Marshall, A., Garrucho, L., Kushibar, K., Lang, D. M., Kim, G. S.,
       Grimm, L. J., Lewin, J. M., Duncan, J. S., Schnabel, J. A., Lekadir, K.,
       & Mazurowski, M. A. (2024). Fréchet Radiomic Distance (FRD): A versatile
       metric for comparing medical imaging datasets. arXiv:2412.01496

    Examples
    --------
    Diagonal covariances reduce to ``||mu1 - mu2||² + Σ (σ1 - σ2)²``:

    >>> frechet_from_moments([0, 0], [[1, 0], [0, 4]], [1, 0], [[4, 0], [0, 4]])
    2.0
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    sigma1 = np.atleast_2d(np.asarray(sigma1, float))
    sigma2 = np.atleast_2d(np.asarray(sigma2, float))
    f = mu1.shape[0]
    if mu2.shape != (f,) or sigma1.shape != (f, f) or sigma2.shape != (f, f):
        raise ValueError(
            f"Moments do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {sigma2.shape}; expected (F,) means and (F, F) covariances."
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * _trace_sqrt_product(sigma1, sigma2)
    return max(float(value), 0.0)


def _standardised_pair(reference: FeatureMatrix, candidate: FeatureMatrix,
                       standardize_with: FeatureMatrix | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sets z-scored by ``standardize_with`` (default ``reference``); None if too few rows or features."""
    scale_set = reference if standardize_with is None else standardize_with
    _, (ref, cand, scale), _ = aligned(reference, candidate, scale_set)
    if not enough_rows(ref, cand, scale):
        return None
    ref, cand = zscore([ref, cand], by=scale)
    return None if ref.shape[1] == 0 else (ref, cand)


def frechet_distance(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    standardize_with: FeatureMatrix | None = None,
) -> float:
    """Fréchet Radiomics Distance between a reference and a candidate feature set.

    Features are z-scored with the column mean and sample standard deviation
    of ``standardize_with``, Gaussians are fitted to both sets (sample mean and
    covariance) and compared with :func:`frechet_from_moments`, following the
    Fréchet Radiomics Distance of Konz et al. [1]_. Z-scoring puts features of
    very different units on one scale; using one fixed set for it keeps values
    comparable across candidates.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    standardize_with
        Feature matrix whose statistics z-score both sets; default ``reference``.

    Returns
    -------
    float
        In [0, inf); 0 only for identical moments. Features constant in
        ``standardize_with`` cannot be z-scored and are dropped, as are
        non-finite columns. NaN if a set has fewer than two rows or no feature
        is left. The plug-in estimate is biased upwards for small samples
        (roughly by F/n per set), so compare it only to values from similar sample sizes.

    References
    ----------
    .. [1] Konz, N., et al. (2024). Fréchet Radiomic Distance (FRD): A versatile
       metric for comparing medical imaging datasets. arXiv:2412.01496
    """
    standardised = _standardised_pair(reference, candidate, standardize_with)
    return math.nan if standardised is None else _frechet_of_standardised(*standardised)


def _frechet_of_standardised(ref: np.ndarray, cand: np.ndarray) -> float:
    """:func:`frechet_from_moments` of two standardised sets' sample means and covariances."""
    if min(len(ref), len(cand)) <= ref.shape[1]:  # a singular covariance: from the rows, exactly and faster
        return _frechet_from_rows(ref, cand)
    return frechet_from_moments(
        ref.mean(axis=0),
        np.cov(ref, rowvar=False),
        cand.mean(axis=0),
        np.cov(cand, rowvar=False),
    )


def _frechet_from_rows(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`frechet_from_moments` of two sets' sample means and covariances, computed from their rows.

    With the centred rows ``A`` (n_a x F) and ``B``, ``cov(a) cov(b) = AᵀA BᵀB / ((n_a - 1)(n_b - 1))``,
    whose non-zero eigenvalues are the squared singular values of ``A Bᵀ`` (n_a x n_b): the trace of
    its square root is the sum of those singular values over ``sqrt((n_a - 1)(n_b - 1))``. For a set
    with no more rows than features (a singular covariance) one small SVD replaces two F x F
    eigendecompositions (32 rows of 93 features: 0.10 ms against 1.13 ms), and it is exact where they
    are not: eigh returns a singular covariance's zero eigenvalues as round-off near 1e-16, whose
    square roots (about 1e-8 each) add up (there, 2e-8 of the value against 40-digit arithmetic; this
    form 1e-16; ``tests/unit/test_validate.py``).
    """
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    diff = mean_a - mean_b
    a, b = a - mean_a, b - mean_b
    scale_a, scale_b = len(a) - 1, len(b) - 1
    root = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt(scale_a * scale_b)
    value = diff @ diff + (a * a).sum() / scale_a + (b * b).sum() / scale_b - 2 * root
    return max(float(value), 0.0)


def _nearest_train_distances(
    candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix, n_neighbors: int = 1
) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances (``(n, n_neighbors)``) of candidate and holdout rows to their nearest training rows.

    Features are z-scored by the training rows. None if the sets are too small
    or no feature is left.
    """
    _, (cand, tr, hold), _ = aligned(candidate, train, holdout)
    if not enough_rows(cand, tr, hold) or len(tr) < n_neighbors:
        return None
    cand, tr, hold = zscore([cand, tr, hold], by=tr)
    if tr.shape[1] == 0:
        return None
    index = NearestNeighbors(n_neighbors=n_neighbors).fit(tr)
    return index.kneighbors(cand)[0], index.kneighbors(hold)[0]


def _dcr(
    candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix
) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances to the closest training row, or None if the sets are too small."""
    distances = _nearest_train_distances(candidate, train, holdout)
    if distances is None:
        return None
    return distances[0][:, 0], distances[1][:, 0]


def distance_to_closest_record(
    candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each candidate and each holdout row to its closest training row.

    The distance-to-closest-record (DCR) of Park et al. [1]_, judged against
    real rows the generator never saw (the holdout) as proposed by Platzer &
    Reutterer [2]_: a candidate built from training rows should not sit closer
    to them than unseen real data does.

    Parameters
    ----------
    candidate
        Synthetic or augmented feature matrix.
    train
        Real rows the candidate was derived from.
    holdout
        Real rows of the same population that the candidate never saw.

    Returns
    -------
    d_candidate, d_holdout
        Distances in z-score units (features scaled by the training mean and
        sample std; features constant in ``train`` and non-finite columns
        dropped). All NaN if a set has fewer than two rows or no feature is left.

    References
    ----------
    .. [1] Park, N., Mohammadi, M., Gorde, K., Jajodia, S., Park, H., & Kim, Y.
       (2018). Data synthesis based on generative adversarial networks.
       Proceedings of the VLDB Endowment, 11(10), 1071-1083.
       :doi:`10.14778/3231751.3231757`
    .. [2] Platzer, M., & Reutterer, T. (2021). Holdout-based empirical
       assessment of mixed-type synthetic data. Frontiers in Big Data, 4,
       679939. :doi:`10.3389/fdata.2021.679939`
    """
    distances = _dcr(candidate, train, holdout)
    if distances is None:
        return np.full(len(candidate), np.nan), np.full(len(holdout), np.nan)
    return distances


def memorization_ratio(
    candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix
) -> float:
    """Median candidate DCR over median holdout DCR.

    See :func:`distance_to_closest_record` for the distances and references.

    Parameters
    ----------
    candidate, train, holdout
        Feature matrices with the same features.

    Returns
    -------
    float
        In [0, inf). About 1 if candidate rows are as far from the training
        rows as unseen real rows are; well below 1 if the candidate copies or
        barely perturbs training rows. NaN if a set has fewer than two rows, no
        feature is left, or the median holdout distance is 0 (holdout rows
        duplicate training rows, so there is no scale to compare with).
    """
    distances = _dcr(candidate, train, holdout)
    if distances is None:
        return math.nan
    d_candidate, d_holdout = distances
    scale = np.median(d_holdout)
    return float(np.median(d_candidate) / scale) if scale > 0 else math.nan


def share_closer_than_holdout(
    candidate: FeatureMatrix,
    train: FeatureMatrix,
    holdout: FeatureMatrix,
    quantile: float = 0.05,
) -> float:
    """Share of candidate rows closer to the training set than most unseen real rows.

    A candidate row counts if its distance to the closest training row is below
    the ``quantile`` of the holdout distances (see
    :func:`distance_to_closest_record` for the distances and references).

    Parameters
    ----------
    candidate, train, holdout
        Feature matrices with the same features.
    quantile
        Holdout distance quantile in (0, 1) used as the cut-off.

    Returns
    -------
    float
        In [0, 1]; about ``quantile`` for candidates as novel as unseen real
        data, near 1 for copies of training rows. NaN if a set has fewer than
        two rows or no feature is left.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    distances = _dcr(candidate, train, holdout)
    if distances is None:
        return math.nan
    d_candidate, d_holdout = distances
    return float(np.mean(d_candidate < np.quantile(d_holdout, quantile)))


def wasserstein_distance(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    standardize_with: FeatureMatrix | None = None,
) -> float:
    """Mean per-feature Wasserstein-1 distance on standardised features.

    Each feature is z-scored with the mean and sample standard deviation of
    ``standardize_with`` (default ``reference``), so the value is in reference
    standard deviations whatever the feature's unit, and the one-dimensional
    earth mover's distance (:func:`scipy.stats.wasserstein_distance`) between
    the two empirical distributions is averaged over features [1]_.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    standardize_with
        Feature matrix whose statistics z-score both sets; default ``reference``.

    Returns
    -------
    float
        In [0, inf); 0 for identical empirical marginals, about ``|shift|`` for
        a candidate shifted by ``shift`` standard deviations. Features constant
        in ``standardize_with`` and non-finite columns are dropped. NaN if a set
        has fewer than two rows or no feature is left.

    References
    ----------
    .. [1] Ramdas, A., García Trillos, N., & Cuturi, M. (2017). On Wasserstein
       two-sample testing and related families of nonparametric tests. Entropy,
       19(2), 47. :doi:`10.3390/e19020047`
    """
    standardised = _standardised_pair(reference, candidate, standardize_with)
    if standardised is None:
        return math.nan
    ref, cand = standardised
    return float(np.mean(wasserstein_1d_columns(ref, cand)))


def wasserstein_1d_columns(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance of every column of ``u`` to the same column of ``v`` (finite values).

    The quantity of :func:`scipy.stats.wasserstein_distance` with equal weights,
    ``sum_i |U(x_i) - V(x_i)| (x_(i+1) - x_i)`` over the pooled sorted values,
    computed for all columns at once: one sort of the pooled columns, the
    empirical CDFs as cumulative counts of each set's rows in that order. Within a
    run of tied values the counts are partial, but there ``x_(i+1) - x_i`` is 0,
    and at a run's last value they are the CDFs, as scipy's ``searchsorted``
    gives them. Equal to scipy column by column to rounding (tested); a validate
    job called scipy once per feature and draw, about 9% of its time.
    """
    values, from_u = _pooled_counts(u, v)
    from_u = from_u[:-1]
    rank = np.arange(1, len(values))[:, None]
    gaps = np.abs(from_u / len(u) - (rank - from_u) / len(v))
    return np.einsum("ij,ij->j", gaps, np.diff(values, axis=0))


def _pooled_counts(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column of ``u`` and ``v`` pooled and sorted, and how many of ``u``'s rows lie at or before each position.

    The two-sample ECDFs of every column at once (:func:`ks_2samp_columns`,
    :func:`wasserstein_1d_columns`); ``v``'s count at position ``i`` is ``i + 1``
    minus ``u``'s. Ties come in any order, so the counts are the ECDFs at the last
    value of a run of ties, as both callers read them.
    """
    pooled = np.concatenate([u, v], axis=0)
    order = np.argsort(pooled, axis=0)
    return np.take_along_axis(pooled, order, axis=0), np.cumsum(order < len(u), axis=0)


def strong_pairs_kept(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    threshold: float = 0.7,
    method: Literal["pearson", "spearman"] = "spearman",
) -> float:
    """Share of strongly correlated reference feature pairs that stay strong in the candidate.

    A pair of features is *strong* in the reference if ``|r| >= threshold``; it
    is kept if the candidate's correlation of the pair has the same sign and
    also reaches ``|r| >= threshold``. Radiomics features come in tightly
    correlated families (e.g. GLCM and GLRLM measures of one texture), and a
    generator that breaks them produces feature vectors no real lesion has.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    threshold
        Strength cut-off in (0, 1).
    method
        ``"spearman"`` (default, robust to monotone transforms) or ``"pearson"``.

    Returns
    -------
    float
        In [0, 1]; 1 if every strong pair is kept. NaN if a set has fewer than
        two rows, or the reference has no strong pair among the features that
        are non-constant in both sets.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    _, c_ref, c_cand = _correlation_matrices(reference, candidate, method)
    if c_ref is None:
        return math.nan
    upper = np.triu(np.ones_like(c_ref, dtype=bool), k=1)
    strong = upper & (np.abs(c_ref) >= threshold)
    if not strong.any():
        return math.nan
    kept = (np.sign(c_cand) == np.sign(c_ref)) & (np.abs(c_cand) >= threshold)
    return float(kept[strong].mean())


def strong_pairs_strength(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    threshold: float = 0.7,
    method: Literal["pearson", "spearman"] = "spearman",
    empty: float = math.nan,
) -> float:
    """Share of the strength of the reference's strong feature pairs that the candidate keeps.

    Over the pairs strong in the reference (``|r_ref| >= threshold``, as in
    :func:`strong_pairs_kept`): ``mean(sign(r_ref) * r_cand) / mean(|r_ref|)``.
    1 if the candidate correlates those pairs as strongly as the reference, 0
    if not at all, negative if it flips them. The continuous counterpart of
    :func:`strong_pairs_kept`, whose p-value under the null rule tests this
    statistic: the share kept counts a pair at 0.69 as lost, so a permuted side
    mixing training rows with noise keeps no strong pair and its draws sat where
    noise does (no power), while this share still separates them.

    Parameters
    ----------
    reference, candidate, threshold, method
        As for :func:`strong_pairs_kept`.
    empty
        The value where the reference has no strong pair. The permutation draws
        pass ``1 / threshold``, the largest value the share can take: a
        re-partitioned reference side without a strong pair has none to lose. Left
        NaN there, such draws (most of them where a side mixing training rows
        with noise weakens every correlation below the threshold) dropped out of
        the p-value's count, and the noise control passed.

    Returns
    -------
    float
        At most ``1 / threshold``. NaN if a set has fewer than two rows; ``empty``
        if no strong pair is left among the features non-constant in both sets.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    _, c_ref, c_cand = _correlation_matrices(reference, candidate, method)
    if c_ref is None:
        return math.nan
    strong = np.triu(np.abs(c_ref) >= threshold, k=1)
    if not strong.any():
        return empty
    return float(np.mean(np.sign(c_ref[strong]) * c_cand[strong]) / np.mean(np.abs(c_ref[strong])))


def frechet_means_distance(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    standardize_with: FeatureMatrix | None = None,
) -> float:
    """Means-only Fréchet radiomics distance: ``||mu_ref - mu_cand||²`` on z-scored features.

    The first term of :func:`frechet_distance`, reported separately as in Konz
    et al. [1]_: it isolates a shift of the feature means from differences in
    spread and correlation, and it is far less biased by small samples than the
    covariance term (its expected value under equal distributions is about
    ``F (1/n_ref + 1/n_cand)`` rather than growing with the covariance estimate).

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features.
    standardize_with
        Feature matrix whose statistics z-score both sets; default ``reference``.

    Returns
    -------
    float
        In [0, inf). Same column handling as :func:`frechet_distance`.

    References
    ----------
    .. [1] Konz, N., et al. (2024). Fréchet Radiomic Distance (FRD): A versatile
       metric for comparing medical imaging datasets. arXiv:2412.01496
    """
    standardised = _standardised_pair(reference, candidate, standardize_with)
    if standardised is None:
        return math.nan
    ref, cand = standardised
    diff = ref.mean(axis=0) - cand.mean(axis=0)
    return float(diff @ diff)


def pooled_normal_scores(reference: FeatureMatrix, candidate: FeatureMatrix) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sets' features as van der Waerden scores of their pooled ranks; None if too few rows or features.

    Each feature's values over both sets together are ranked (ties averaged) and
    replaced by the standard normal quantile ``Φ⁻¹(rank / (n + 1))`` of their
    rank [1]_, so every feature of the pool has the same bounded, normal
    marginal whatever its unit and tails. A row far outside the others takes the
    most extreme score of the pool (2.13 at 60 rows) instead of hundreds of
    standard deviations. Features constant in ``reference`` up to float32
    rounding (:func:`is_constant`) are dropped first, as z-scoring by the
    reference drops them from the distances of the values: ranking would spread
    their rounding noise over the whole normal range.

    References
    ----------
    .. [1] van der Waerden, B. L. (1952). Order tests for the two-sample problem
       and their power. Indagationes Mathematicae, 14, 453-458.
    """
    _, (ref, cand), _ = aligned(reference, candidate)
    if not enough_rows(ref, cand):
        return None
    varying = ~is_constant(ref)
    if not varying.any():
        return None
    pool = np.concatenate([ref[:, varying], cand[:, varying]])
    scores = ndtri(rankdata(pool, axis=0) / (len(pool) + 1))
    return scores[: len(ref)], scores[len(ref):]


def ranked_location_distances(reference: FeatureMatrix, candidate: FeatureMatrix) -> dict[str, float]:
    """Fréchet, means-only Fréchet and Wasserstein distances of the sets' pooled normal scores.

    The statistics the null rule tests for the gates ``frechet_distance``,
    ``frechet_means_distance`` and ``wasserstein_distance``
    (:data:`radaug.validate.registry.METRICS` ``null_function``): each distance
    as its own function computes it (z-scored by the reference), on the
    :func:`pooled_normal_scores` of the two sets instead of their values. On the
    values, a candidate with a few rows far from every real row was not
    recognised: those rows dominate every variance and mean, and a permutation
    of the pooled rows puts some on both sides, whose distances are then as
    large as the tested one (on the 2D phantom 33 of 57 GAN cells at over 10x
    the real-vs-real Fréchet distance passed its gate, p up to 0.5). On the
    scores such rows count as the extreme ranks they are, and a candidate whose
    rows lie beyond the real ones in most features is far from them in all
    three distances (the same cells: p at its floor). The permutation test stays
    exact: the tested partition and every re-partition of the same pool are
    scored by this same function. The reported ``value`` stays the distance of
    the values (Konz et al.'s Fréchet Radiomics Distance).

    Returns
    -------
    dict
        ``{"frechet_distance", "frechet_means_distance", "wasserstein_distance"}``:
        floats, NaN where a set has fewer than two rows or no feature is left.
    """
    names = ("frechet_distance", "frechet_means_distance", "wasserstein_distance")
    scores = pooled_normal_scores(reference, candidate)
    standardised = None if scores is None else _standardised_pair(*scores, None)
    if standardised is None:
        return dict.fromkeys(names, math.nan)
    ref, cand = standardised
    diff = ref.mean(axis=0) - cand.mean(axis=0)
    return dict(zip(names, (_frechet_of_standardised(ref, cand), float(diff @ diff),
                            float(np.mean(wasserstein_1d_columns(ref, cand))))))


def nearest_neighbour_distance_ratio(
    candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour distance ratio (NNDR) of candidate and holdout rows to the training rows.

    ``d1 / d2``, the distance to the closest training row over the distance to
    the second closest, in training z-score units. A row that copies a training
    row has NNDR near 0 even where training rows are dense (where the DCR alone
    is small for any row); an unseen real row sits between its neighbours and
    has NNDR well above 0 [1]_.

    Parameters
    ----------
    candidate, train, holdout
        Feature matrices with the same features; ``train`` needs at least two rows.

    Returns
    -------
    nndr_candidate, nndr_holdout
        Ratios in [0, 1]; all NaN if a set has fewer than two rows or no feature
        is left. A row whose two nearest training rows both sit at distance 0
        gets 0.

    References
    ----------
    .. [1] Guillaudeux, M., et al. (2023). Patient-centric synthetic data
       generation, no reason to risk re-identification in biomedical data
       analysis. npj Digital Medicine, 6, 37. :doi:`10.1038/s41746-023-00771-5`
    """
    distances = _nearest_train_distances(candidate, train, holdout, n_neighbors=2)
    if distances is None:
        return np.full(len(candidate), np.nan), np.full(len(holdout), np.nan)
    return tuple(_ratio_of_first_two(d) for d in distances)


def _ratio_of_first_two(d: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = d[:, 0] / d[:, 1]
    return np.where(d[:, 1] > 0, ratio, 0.0)


def nndr_ratio(candidate: FeatureMatrix, train: FeatureMatrix, holdout: FeatureMatrix) -> float:
    """Median candidate NNDR over median holdout NNDR (see :func:`nearest_neighbour_distance_ratio`).

    Returns
    -------
    float
        In [0, inf); about 1 for candidates as novel as unseen real rows, near
        0 for copies of training rows. NaN if the distances cannot be computed
        or the median holdout NNDR is 0.
    """
    d_candidate, d_holdout = nearest_neighbour_distance_ratio(candidate, train, holdout)
    scale = np.median(d_holdout) if len(d_holdout) else math.nan
    if not np.isfinite(scale) or scale <= 0:
        return math.nan
    return float(np.median(d_candidate) / scale)


def holdout_scores(candidate: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> dict[str, float]:
    """``memorization_ratio``, ``share_closer_than_holdout`` and ``nndr_ratio`` from one distance computation.

    The same values as :func:`memorization_ratio`, :func:`share_closer_than_holdout`
    and :func:`nndr_ratio` (same alignment, z-scoring and nearest neighbours,
    checked in the unit tests), but brute-force with
    :func:`scipy.spatial.distance.cdist` instead of a k-d tree per function: the
    null draws call it hundreds of times on small sets, where the index set-up
    dominated (their registry entries name it as ``null_function``).
    """
    from scipy.spatial.distance import cdist

    nan = dict.fromkeys(("memorization_ratio", "share_closer_than_holdout", "nndr_ratio"), math.nan)
    _, (cand, tr, hold), _ = aligned(candidate, train, holdout)
    if len(cand) < 2 or len(tr) < 2 or len(hold) < 2:
        return nan
    cand, tr, hold = zscore([cand, tr, hold], by=tr)
    if tr.shape[1] == 0:
        return nan
    d_cand, d_hold = (np.sort(np.partition(cdist(x, tr), 1, axis=1)[:, :2], axis=1) for x in (cand, hold))
    scale = np.median(d_hold[:, 0])
    nndr_cand, nndr_hold = (np.where(d[:, 1] > 0, d[:, 0] / np.where(d[:, 1] > 0, d[:, 1], 1), 0.0)
                            for d in (d_cand, d_hold))
    nndr_scale = np.median(nndr_hold)
    return {
        "memorization_ratio": float(np.median(d_cand[:, 0]) / scale) if scale > 0 else math.nan,
        "share_closer_than_holdout": float(np.mean(d_cand[:, 0] < np.quantile(d_hold[:, 0], 0.05))),
        "nndr_ratio": float(np.median(nndr_cand) / nndr_scale) if nndr_scale > 0 else math.nan,
    }
