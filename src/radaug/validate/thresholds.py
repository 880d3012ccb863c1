"""Verdict rules of the validation: thresholds relative to the real-vs-real baseline.

Kept apart from the metrics so that checking a config's
``validation.thresholds`` (at every Snakemake start) needs no scientific stack:
the default rules and directions come from :mod:`radaug.validate.registry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from radaug.errors import ConfigError
from radaug.validate.registry import METRICS, RULE_KEYS, rule_keys_for

VERDICTS = ("pass", "warn", "fail", "insufficient")
"""Possible verdicts, from best to no verdict at all."""

(_MINIMIZE,), (_MAXIMIZE_RELATIVE, _MAXIMIZE_ABSOLUTE) = RULE_KEYS["minimize"], RULE_KEYS["maximize"]

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {name: dict(spec.thresholds) for name, spec in METRICS.items()}
"""Verdict thresholds per metric (each :class:`~radaug.validate.registry.MetricSpec`'s ``thresholds``);
do not mutate, pass overrides to :func:`validate_arm`.

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

A metric's rule must suit its direction (:data:`~radaug.validate.registry.RULE_KEYS`):
:func:`merge_thresholds` refuses, naming the config key, a rule of the other direction.

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


def merge_thresholds(overrides: Mapping | None) -> dict[str, dict[str, float]]:
    """Defaults updated per metric and key with ``overrides``; checked for consistency.

    Every merged rule is checked against its metric's direction
    (:data:`~radaug.validate.registry.RULE_KEYS`): a key of the other direction's
    rules is refused with a :class:`~radaug.errors.ConfigError` naming
    ``validation.thresholds.<metric>`` and the keys to use.
    """
    merged = {metric: dict(rule) for metric, rule in DEFAULT_THRESHOLDS.items()}
    for metric, rule in (overrides or {}).items():
        key = f"validation.thresholds.{metric}"
        if metric not in merged:
            raise ConfigError(
                f"validation.thresholds: unknown metric {metric!r}; use one of {sorted(merged)}."
            )
        if not isinstance(rule, Mapping):
            raise ConfigError(
                f"{key}: expected a mapping of {sorted(merged[metric])}, "
                f"got {rule!r}."
            )
        unknown = set(rule) - set(merged[metric])
        if unknown:
            direction = METRICS[metric].direction
            other = {k for kind in RULE_KEYS[_OPPOSITE[direction]] for k in kind} - set(merged[metric])
            why = (f"{sorted(unknown & other)} belong to rules of metrics to {_OPPOSITE[direction]}, and "
                   f"{metric} is to {direction} ({_MEANING[direction]}); " if unknown & other else "")
            raise ConfigError(
                f"{key}: unknown keys {sorted(unknown)}; {why}"
                f"use {sorted(merged[metric])}."
            )
        for name, value in rule.items():
            try:
                merged[metric][name] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{key}.{name}: expected a number, got {value!r}."
                ) from None
    for metric, rule in merged.items():
        spec = METRICS[metric]
        kind = rule_keys_for(rule, spec.direction)
        if kind is None:
            raise ConfigError(
                f"validation.thresholds.{metric}: keys {sorted(rule)} make no rule for a metric to "
                f"{spec.direction} ({_MEANING[spec.direction]}); use one of "
                f"{[list(k) for k in RULE_KEYS[spec.direction]]}."
            )
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
            raise ConfigError(f"validation.thresholds.{metric}: need {needed}, got {rule}.")
    return merged


_OPPOSITE = {"minimize": "maximize", "maximize": "minimize"}
_MEANING = {"minimize": "smaller values are more trustworthy", "maximize": "larger values are more trustworthy"}


def verdict(value: float, baseline: float, rule: Mapping[str, float]) -> str:
    """Verdict of one metric value under one rule; see :data:`DEFAULT_THRESHOLDS`.

    Returns ``"insufficient"`` if the value, or a baseline the rule needs, is NaN.
    Raises ValueError for keys that make no rule (rules from :func:`merge_thresholds` always do).
    """
    kind = rule_keys_for(rule)
    if kind is None:
        raise ValueError(f"verdict: keys {sorted(rule)} make no verdict rule; expected one of "
                         f"{[list(k) for kinds in RULE_KEYS.values() for k in kinds]} (merge_thresholds checks a config's rules)")
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
