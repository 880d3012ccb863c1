"""Per-feature, per-pair and per-sample detail behind the validation summary.

``validation/summary.csv`` holds one number per fold, arm, class and metric.
The functions here keep what those numbers are made of, so a report (or a
notebook user) can show *which* features differ, *which* correlations break and
*how* the distances to the training rows are distributed:

* per feature: the two-sample KS statistic, p-value, Benjamini-Hochberg
  q-value and whether it differs at the FDR level (:func:`~radaug.validate.
  metrics.ks_fdr_breakdown`, the per-feature view of ``ks_fdr``);
* per feature pair: candidate minus real Pearson correlation
  (:func:`~radaug.validate.metrics.correlation_breakdown`, the per-pair view
  of ``correlation_distance``), averaged over folds per arm and class;
* per row: the distance to the closest real training row (DCR) of every
  candidate and every holdout row, in the training rows' z-score units
  (:func:`~radaug.validate.metrics.distance_to_closest_record`, the per-row
  view of ``memorization_ratio`` and ``share_closer_than_holdout``).

Unlike the summary, which compares the candidate with *half* of the training
rows at matched sample sizes (so that a real-vs-real baseline exists), the
details compare the candidate with **all** real training rows of the fold and
class: they describe the candidate, they do not judge it, so their numbers are
close to but not equal to the summary's.

Every function takes feature tables (pandas DataFrames) and returns tables; no
file is read or written, and no Snakemake is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from radaug.errors import RadaugError

KS_COLUMNS = ["fold", "arm", "class", "feature", "ks_statistic", "p_value", "q_value", "differs"]
"""Columns of :attr:`ValidationDetails.ks` (``validation/details/<arm>/ks.csv``)."""

CORRELATION_ARRAYS = ("feature", "arm", "class", "difference")
"""Arrays of ``validation/details/<arm>/correlation.npz`` (see :func:`correlation_arrays`)."""

DCR_COLUMNS = ["fold", "arm", "class", "set", "distance"]
"""Columns of :attr:`ValidationDetails.dcr` (``validation/details/<arm>/dcr.csv``)."""

DCR_SETS = ("candidate", "holdout")
"""Values of the ``set`` column of the DCR table."""


@dataclass(frozen=True)
class SetDetails:
    """Details of one candidate set (one fold, arm and class), see :func:`set_details`.

    Attributes
    ----------
    ks
        One row per tested feature: ``feature, ks_statistic, p_value, q_value, differs``.
    correlation_difference
        Square DataFrame indexed both ways by feature: candidate minus real
        Pearson correlation of the features non-constant in both sets.
    dcr
        One row per candidate and holdout row: ``set`` (``candidate`` or
        ``holdout``) and ``distance``.
    """

    ks: pd.DataFrame
    correlation_difference: pd.DataFrame
    dcr: pd.DataFrame


@dataclass(frozen=True)
class ValidationDetails:
    """Long detail tables of many candidate sets, see :func:`collect_details`.

    Attributes
    ----------
    ks
        Columns :data:`KS_COLUMNS`: per fold, arm, class and feature.
    correlation
        Per ``(arm, class)``: a square DataFrame indexed both ways by every
        feature (in feature order), the candidate-minus-real Pearson
        correlation averaged over the folds where both correlations are
        defined; NaN where no fold defines it (a feature constant in a set).
    dcr
        Columns :data:`DCR_COLUMNS`: per fold, arm, class and row.
    """

    ks: pd.DataFrame
    correlation: dict[tuple[str, str], pd.DataFrame]
    dcr: pd.DataFrame


def set_details(
    train_real: pd.DataFrame,
    holdout_real: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    feature_columns: list[str],
    alpha: float = 0.05,
) -> SetDetails:
    """Per-feature KS tests, correlation difference and DCR of one candidate set.

    Parameters
    ----------
    train_real
        Real training rows of one fold and class (the reference).
    holdout_real
        Real rows of the class that the candidate's generator never saw.
    candidate
        Candidate (synthetic, augmented or control) rows of the fold and class.
    feature_columns
        Features to compare; other columns are ignored.
    alpha
        FDR level of the KS tests (config ``validation.alpha``).

    Returns
    -------
    SetDetails
        See its attributes. Features that are non-finite in a set, or hold one
        value in both sets, are left out of the KS table; the correlation
        difference covers the features non-constant in both sets; DCR is
        empty when a set has fewer than two rows. See
        :func:`~radaug.validate.metrics.ks_fdr_breakdown`,
        :func:`~radaug.validate.metrics.correlation_breakdown` and
        :func:`~radaug.validate.metrics.distance_to_closest_record`.

    Raises
    ------
    RadaugError
        If ``feature_columns`` is empty or a table lacks some of them.
    """
    if not feature_columns:
        raise RadaugError("set_details: feature_columns is empty; pass the feature column names.")
    tables = {"train_real": train_real, "holdout_real": holdout_real, "candidate": candidate}
    for name, table in tables.items():
        missing = [c for c in feature_columns if c not in table.columns]
        if missing:
            raise RadaugError(
                f"set_details: {name} lacks feature columns {missing[:5]} ({len(missing)} in all); "
                "pass tables extracted with the same feature set."
            )
    train, holdout, cand = (t[feature_columns] for t in (train_real, holdout_real, candidate))
    from radaug.validate.metrics import correlation_breakdown, distance_to_closest_record, ks_fdr_breakdown

    ks = ks_fdr_breakdown(train, cand, alpha).table
    difference = correlation_breakdown(train, cand, "pearson").difference
    d_candidate, d_holdout = distance_to_closest_record(cand, train, holdout)
    dcr = pd.DataFrame({
        "set": [DCR_SETS[0]] * len(d_candidate) + [DCR_SETS[1]] * len(d_holdout),
        "distance": np.concatenate([d_candidate, d_holdout]),
    })
    return SetDetails(ks, difference, dcr[dcr["distance"].notna()].reset_index(drop=True))


def collect_details(
    sets: Iterable[tuple[str, str, str, SetDetails]], feature_columns: list[str]
) -> ValidationDetails:
    """Long tables of many candidate sets, correlation differences averaged over folds.

    Parameters
    ----------
    sets
        ``(fold, arm, class, details)`` per candidate set, in the order the
        rows should appear.
    feature_columns
        Features, in order, of the correlation matrices.

    Returns
    -------
    ValidationDetails
        Empty tables with the right columns when ``sets`` is empty.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
    >>> one = set_details(real, real.iloc[:10], real.copy(), feature_columns=["a", "b", "c"])
    >>> details = collect_details([("r0f0", "copy", "x", one)], ["a", "b", "c"])
    >>> details.correlation[("copy", "x")].to_numpy().tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    sets = list(sets)
    ks = _concat([_labelled(d.ks, fold, arm, label) for fold, arm, label, d in sets], KS_COLUMNS)
    dcr = _concat([_labelled(d.dcr, fold, arm, label) for fold, arm, label, d in sets], DCR_COLUMNS)
    correlation = fold_means([{(arm, label): d.correlation_difference} for _, arm, label, d in sets],
                             feature_columns)
    return ValidationDetails(ks, correlation, dcr)


def fold_means(correlations: Iterable[dict[tuple[str, str], pd.DataFrame]],
               feature_columns: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """Per ``(arm, class)``: the mean of its correlation differences over folds, where defined.

    Parameters
    ----------
    correlations
        Per fold, in fold order: ``(arm, class)`` -> a square DataFrame indexed
        both ways by feature (a :attr:`SetDetails.correlation_difference`, or a
        fold's :attr:`ValidationDetails.correlation`).
    feature_columns
        Features, in order, of the result.

    Returns
    -------
    dict
        ``(arm, class)`` in order of first appearance -> a matrix over
        ``feature_columns``: the mean over the folds that define each entry,
        NaN where none does. A fold's own mean is its matrix (NaN where
        undefined), so the workflow's per-fold ``validate_controls_fold`` jobs
        store their folds' means in float64 and ``validate_controls`` averages
        them here: bit for bit what :func:`collect_details` over every fold gives.
    """
    frames: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for correlation in correlations:
        for key, frame in correlation.items():
            frames.setdefault(key, []).append(frame)
    return {key: _mean_difference(kept, feature_columns) for key, kept in frames.items()}


def concat_details(parts: Iterable[ValidationDetails]) -> ValidationDetails:
    """One :class:`ValidationDetails` of several (e.g. the per-arm files of a study), rows kept in order.

    The parts hold different arms; per-fold correlations of the same arms are averaged by :func:`fold_means`.
    """
    parts = list(parts)

    correlation = {key: matrix for p in parts for key, matrix in p.correlation.items()}
    return ValidationDetails(_concat([p.ks for p in parts], KS_COLUMNS), correlation,
                             _concat([p.dcr for p in parts], DCR_COLUMNS))


def correlation_arrays(correlation: dict[tuple[str, str], pd.DataFrame],
                       dtype=np.float32) -> dict[str, np.ndarray]:
    """The fold-averaged correlation differences as plain arrays, for :func:`radaug.io.save_arrays`.

    Parameters
    ----------
    correlation
        :attr:`ValidationDetails.correlation`; every matrix over the same features.
    dtype
        Of ``difference``: float32 (default) keeps the file small and is exact
        to well below the 0.01 a map shows; float64 for per-fold parts that are
        averaged again (:func:`fold_means`).

    Returns
    -------
    dict
        ``feature`` (F,), ``arm`` and ``class`` (K,) text arrays and
        ``difference`` (K, F, F) of ``dtype``, one matrix per arm and class.

    Raises
    ------
    RadaugError
        If the matrices do not share their features.
    """
    keys = list(correlation)
    features = list(correlation[keys[0]].index) if keys else []
    if any(list(m.index) != features or list(m.columns) != features for m in correlation.values()):
        raise RadaugError("correlation_arrays: the matrices do not share their features; "
                          "build them with collect_details from one feature list.")
    stack = np.stack([correlation[k].to_numpy(dtype) for k in keys]) if keys else np.zeros((0, 0, 0), dtype)
    return {
        "feature": np.array(features, dtype=str),
        "arm": np.array([k[0] for k in keys], dtype=str),
        "class": np.array([k[1] for k in keys], dtype=str),
        "difference": stack,
    }


def correlation_from_arrays(arrays: dict[str, np.ndarray]) -> dict[tuple[str, str], pd.DataFrame]:
    """Inverse of :func:`correlation_arrays` (matrices as float64 DataFrames)."""
    missing = [name for name in CORRELATION_ARRAYS if name not in arrays]
    if missing:
        raise RadaugError(f"correlation arrays lack {missing}; read a details/<arm>/correlation.npz "
                          "written by the validate rule.")
    features = [str(f) for f in arrays["feature"]]
    return {
        (str(arm), str(label)): pd.DataFrame(matrix.astype(float), index=features, columns=features)
        for arm, label, matrix in zip(arrays["arm"], arrays["class"], arrays["difference"])
    }


def read_details(ks: str | os.PathLike, correlation: str | os.PathLike, dcr: str | os.PathLike) -> ValidationDetails:
    """Read one validate job's detail files (``validation/details/<arm>/{ks.csv,correlation.npz,dcr.csv}``).

    Parameters
    ----------
    ks, correlation, dcr
        Paths of the three files the ``validate`` (or ``validate_controls``) rule writes.

    Returns
    -------
    ValidationDetails
        As :func:`collect_details` returned it (correlation matrices in float32 precision).
    """
    from radaug.io import load_arrays, read_table

    return ValidationDetails(_concat([read_table(ks)], KS_COLUMNS),
                             correlation_from_arrays(load_arrays(correlation)),
                             _concat([read_table(dcr)], DCR_COLUMNS))


_DTYPES = {"fold": str, "arm": str, "class": str, "feature": str, "ks_statistic": float, "p_value": float,
           "q_value": float, "differs": bool, "set": str, "distance": float}


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Non-empty ``frames`` stacked in order, ``columns`` only, with fixed dtypes (also when empty)."""
    frames = [f for f in frames if len(f)]
    table = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    return table.astype({c: _DTYPES[c] for c in columns})


def _labelled(table: pd.DataFrame, fold: str, arm: str, label: str) -> pd.DataFrame:
    return table.assign(fold=fold, arm=arm, **{"class": label})


def _mean_difference(frames: list[pd.DataFrame], features: list[str]) -> pd.DataFrame:
    """Mean over ``frames`` (each reindexed to ``features``) where defined, NaN where no frame is."""
    stack = np.stack([f.reindex(index=features, columns=features).to_numpy(float) for f in frames])
    defined = np.isfinite(stack)
    n_defined = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(defined, stack, 0.0).sum(axis=0) / n_defined
    return pd.DataFrame(np.where(n_defined > 0, mean, np.nan), index=features, columns=features)
