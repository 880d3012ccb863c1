"""Validation summary of one candidate set: metric values, real-vs-real baselines, verdicts.

:func:`validate_arm` compares the candidate (synthetic or augmented) rows of one
fold and one class with the real training rows they were derived from, and
judges each metric against the same metric computed between two *real* sets
(training vs. holdout), so "how different is the candidate" is read against
"how different are two real samples of this size". The caller loops over
folds, arms and classes and adds those columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from radaug.errors import ConfigError, RadaugError
from radaug.validate.metrics import (
    METRICS,
    correlation_distance,
    frechet_distance,
    ks_fdr,
    memorization_ratio,
    share_closer_than_holdout,
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

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "ks_fdr": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.10},
    "correlation_distance": {"warn_factor": 1.5, "fail_factor": 2.5, "abs_tol": 0.05},
    "frechet_distance": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.0},
    "memorization_ratio": {"pass_min": 0.8, "fail_min": 0.5},
    "share_closer_than_holdout": {"warn_factor": 2.0, "fail_factor": 4.0, "abs_tol": 0.25},
}
"""Verdict thresholds per metric; do not mutate, pass overrides to :func:`validate_arm`.

Metrics to minimize pass if ``value <= baseline * warn_factor + abs_tol``, warn
if ``value <= baseline * fail_factor + abs_tol`` and fail otherwise.
``memorization_ratio`` passes if ``value >= pass_min``, warns if
``value >= fail_min`` and fails otherwise.

Rationale, from simulations with 10-100 correlated, partly skewed features and
40-300 training, 10-150 holdout and 20-1200 candidate rows per class: the
defaults should pass a perfect generator (fresh draws of the real distribution)
in about 95% of runs or more, and fail copies of training rows.

* ``ks_fdr``: under BH the chance of *any* false discovery is at most alpha when
  nothing differs, so the baseline is usually 0; ``abs_tol = 0.10`` tolerates
  one false discovery among 10 features.
* ``correlation_distance``: value/baseline stayed below 1.5 in 95% of runs
  (typically below 1.1 once the candidate has at least as many rows as the
  holdout); the value shrinks as candidate rows are added.
* ``frechet_distance``: the plug-in estimate is biased upwards by roughly F/n,
  which makes value/baseline heavy-tailed for few features (95th percentile up
  to about 4 with 10 features, about 1.3 with 50 or more); hence wider factors.
* ``memorization_ratio``: its 5th percentile stayed at or above 0.78; 0.5 means
  candidate rows sit twice as close to training rows as unseen real rows do.
* ``share_closer_than_holdout``: about 0.05 for a perfect generator, but the 5th
  percentile of a small holdout is noisy: ``value - 2 * baseline`` stayed below
  0.25 in 95% of runs with 10 holdout rows (0.16 with 25, 0.07 with 75).
  Near-copies (jitter of 0.1 SD) and SMOTE-style interpolation give
  ``value - 2 * baseline`` of 0.6-0.8 in median.
"""

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
        if METRICS[metric].direction == "minimize":
            consistent = 0 < rule["warn_factor"] <= rule["fail_factor"] and rule["abs_tol"] >= 0
            needed = "0 < warn_factor <= fail_factor and abs_tol >= 0"
        else:
            consistent = rule["fail_min"] <= rule["pass_min"]
            needed = "fail_min <= pass_min"
        if not consistent:
            raise ConfigError(f"thresholds.{metric}: need {needed}, got {rule}.")
    return merged


def _verdict(direction: str, value: float, baseline: float, rule: Mapping[str, float]) -> str:
    """Verdict of one metric value; see :data:`DEFAULT_THRESHOLDS` for the rules."""
    if direction == "maximize":
        if math.isnan(value):
            return "insufficient"
        if value >= rule["pass_min"]:
            return "pass"
        return "warn" if value >= rule["fail_min"] else "fail"
    if math.isnan(value) or math.isnan(baseline):
        return "insufficient"
    if value <= baseline * rule["warn_factor"] + rule["abs_tol"]:
        return "pass"
    if value <= baseline * rule["fail_factor"] + rule["abs_tol"]:
        return "warn"
    return "fail"


def _split_halves(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint halves of ``table``'s rows, drawn with a seeded permutation."""
    order = np.random.default_rng(seed).permutation(len(table))
    half = len(table) // 2
    return table.iloc[order[:half]], table.iloc[order[half:]]


def validate_arm(
    train_real: pd.DataFrame,
    holdout_real: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    feature_columns: list[str],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Validate the candidate rows of one fold, arm and class against real data.

    The reference is ``train_real``. For every metric in
    :data:`~radaug.validate.metrics.METRICS`:

    * ``value`` compares ``candidate`` with ``train_real``
      (``memorization_ratio(candidate, train_real, holdout_real)`` and
      likewise ``share_closer_than_holdout``). For the distribution metrics
      (``ks_fdr``, ``correlation_distance``, ``frechet_distance``) a candidate
      larger than the holdout is compared in :data:`N_SUBSAMPLES` seeded
      subsamples of the holdout's size and the median is reported: these
      estimates depend on sample size (the Fréchet distance is biased upwards by
      about F/n, the KS tests gain power with n), so value and baseline must be
      computed at the same size to be comparable.
    * ``baseline`` is the same metric for a real-vs-real comparison:
      ``train_real`` vs. ``holdout_real``. For the two memorization metrics that
      comparison is degenerate (the holdout would be compared with itself, a
      ratio of exactly 1), so the holdout rows are split into two seeded halves
      A and B and the baseline is ``metric(A, train_real, B)``: the spread the
      metric shows for real data that copies nothing.
    * ``verdict`` follows :data:`DEFAULT_THRESHOLDS`, updated with ``thresholds``;
      it is ``"insufficient"`` if the value, or the baseline a minimized metric
      is judged against, is NaN (a set with fewer than two rows, or no usable
      feature). The baseline of ``memorization_ratio`` is reported for context
      only; its verdict uses absolute limits.

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
        Seed of the holdout split for the memorization baselines and of the
        candidate subsamples.

    Returns
    -------
    pandas.DataFrame
        One row per metric with columns :data:`SUMMARY_COLUMNS`: ``metric``,
        ``value``, ``baseline``, ``direction``, ``verdict``, ``n_reference``,
        ``n_candidate``, ``n_holdout`` (row counts of the three tables).

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
    for name, table in tables.items():
        missing = [c for c in feature_columns if c not in table.columns]
        if missing:
            raise RadaugError(
                f"validate_arm: {name} lacks feature columns {missing[:5]} "
                f"({len(missing)} in all); pass tables extracted with the same feature set."
            )
    rules = merge_thresholds(thresholds)
    train, holdout, cand = (t[feature_columns] for t in (train_real, holdout_real, candidate))
    half_a, half_b = _split_halves(holdout, seed)
    matched = _size_matched(train, cand, len(holdout), seed)
    comparisons = {
        "ks_fdr": (matched(lambda r, c: ks_fdr(r, c, alpha)), ks_fdr(train, holdout, alpha)),
        "correlation_distance": (matched(correlation_distance), correlation_distance(train, holdout)),
        "frechet_distance": (matched(frechet_distance), frechet_distance(train, holdout)),
        "memorization_ratio": (
            memorization_ratio(cand, train, holdout),
            memorization_ratio(half_a, train, half_b),
        ),
        "share_closer_than_holdout": (
            share_closer_than_holdout(cand, train, holdout),
            share_closer_than_holdout(half_a, train, half_b),
        ),
    }
    rows = [
        {
            "metric": name,
            "value": value,
            "baseline": baseline,
            "direction": METRICS[name].direction,
            "verdict": _verdict(METRICS[name].direction, value, baseline, rules[name]),
            "n_reference": len(train),
            "n_candidate": len(cand),
            "n_holdout": len(holdout),
        }
        for name, (value, baseline) in comparisons.items()
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


N_SUBSAMPLES = 25


def _size_matched(reference: pd.DataFrame, candidate: pd.DataFrame, size: int, seed: int):
    """``metric(reference, candidate)`` evaluated on candidate subsamples of ``size`` rows.

    Returns a function of the metric giving the median over :data:`N_SUBSAMPLES`
    seeded subsamples (without replacement), or the metric of the whole candidate
    when it has at most ``size`` rows (or ``size`` < 2).
    """
    if len(candidate) <= size or size < 2:
        return lambda metric: metric(reference, candidate)
    rng = np.random.default_rng([seed, size, len(candidate)])
    draws = [np.sort(rng.choice(len(candidate), size=size, replace=False)) for _ in range(N_SUBSAMPLES)]
    return lambda metric: float(np.nanmedian([metric(reference, candidate.iloc[d]) for d in draws]))


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
