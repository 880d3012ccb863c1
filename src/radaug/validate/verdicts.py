"""The validation tables' contract and the per-arm verdicts read from them.

``validation/summary.csv`` (one row per fold, arm, class and metric; columns
:data:`STUDY_SUMMARY_COLUMNS`) is written by :mod:`radaug.validate.study` from
:func:`radaug.validate.summary.validate_arm`; ``validation/arm_verdicts.csv``
(:data:`ARM_VERDICT_COLUMNS`) is :func:`arm_verdicts` of it, read by evaluation
and the report. This module needs only pandas (scipy's binomial test is
imported where a positive control's failures are weighed), so the jobs that
join and judge tables do not import the scientific stack that computes them
(issue 24).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from radaug.validate.thresholds import overall_verdict

SUMMARY_COLUMNS = [
    "metric",
    "value",
    "baseline",
    "direction",
    "verdict",
    "n_reference",
    "n_candidate",
    "n_holdout",
    "tested_value",
    "p_value",
    "p_adjusted",
    "n_null",
    "min_detectable",
]
"""Columns of the table :func:`validate_arm` returns, in order."""

NULL_RULE_COLUMNS = ["verdict_rule"]
"""Columns :func:`validate_arm` appends under ``rule="null"`` (under the factor rule its table keeps
:data:`SUMMARY_COLUMNS` byte for byte). ``verdict_rule``: ``null`` where the verdict was read off
``p_adjusted``; ``factor: <why>`` where the factor rule stood in (a gate without a null, no null
draws, a NaN tested value, no finite null draws); ``insufficient: <why>`` where the cell has rows enough
but the null cannot judge it (fewer than half the null draws defined, or no null p-value below the factor
rules' 10 rows); empty where the cell has too few rows (``validation.min_rows``)."""

STUDY_SUMMARY_COLUMNS = ["fold", "arm", "class", *SUMMARY_COLUMNS]
"""Columns of ``validation/summary.csv`` and of the per-arm tables: :data:`SUMMARY_COLUMNS` per fold, arm and class."""


ARM_VERDICT_COLUMNS = ["arm", "control", "verdict", "n_fail", "n_warn", "failing_metrics",
                       "evaluate", "flagged", "control_ok", "note"]
"""Columns of :func:`arm_verdicts`' table (``validation/arm_verdicts.csv``)."""


NOTHING_ADDED = "nothing added"
"""Verdict of an arm that adds no rows in any fold: nothing to validate, evaluated like ``real``."""


def arm_verdicts(summary: pd.DataFrame, *, evaluate_failing_arms: bool = True, arms=None,
                 could_not_generate: Mapping[str, str] | None = None, level: float = 0.05) -> pd.DataFrame:
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

        Every arm of ``arms`` without a row in ``summary`` (it added no rows in
        any fold: balanced training folds, ``sampling.cap_per_case: 0``) gets the
        verdict :data:`NOTHING_ADDED`, is evaluated and not flagged.

        Every arm of ``could_not_generate`` gets the verdict
        :data:`radaug.sampling.COULD_NOT_GENERATE` whatever its rows in
        ``summary``, is not evaluated, and its ``note`` says which generator
        fell short where and why. ``note`` is empty for the other real arms (controls: see ``level``).
    arms
        The arms that were validated (optional); see above.
    could_not_generate
        Arm → note of the arms whose generator fell short of a quota in some
        fold (:func:`radaug.sampling.shortfall_notes`).
    level
        Config ``validation.level``. Under the null rule (a ``p_adjusted``
        column) real data fails up to this share of fold x class cells by
        design, so the positive control is ``control_ok`` unless its failing
        cells are more than chance explains (one-sided binomial test at 0.05);
        its ``note`` gives the count and the chance rate. A negative control's
        ``note`` names the missed cells where the gate had no power
        (``min_detectable`` "none up to ...").
    """
    from radaug.sampling import COULD_NOT_GENERATE
    from radaug.validate.controls import CONTROL_ARMS, EXPECTED_FAILURES

    could_not_generate = dict(could_not_generate or {})
    rows = []
    for arm, note in could_not_generate.items():
        rows.append({"arm": arm, "control": False, "verdict": COULD_NOT_GENERATE, "n_fail": 0, "n_warn": 0,
                     "failing_metrics": "", "evaluate": False, "flagged": False, "control_ok": "", "note": note})
    for arm, table in summary.groupby("arm", sort=False):
        if arm in could_not_generate:
            continue
        overall = overall_verdict(table["verdict"])
        failing = sorted(set(table.loc[table["verdict"] == "fail", "metric"]))
        control = arm in CONTROL_ARMS
        note = ""
        if arm == "control_positive":
            control_ok, note = _positive_control_ok(table, level)
        elif arm in EXPECTED_FAILURES:
            judged = table[table["metric"].isin(EXPECTED_FAILURES[arm]) & (table["verdict"] != "insufficient")]
            control_ok = "true" if len(judged) and (judged["verdict"] == "fail").all() else "false"
            note = _underpowered_note(judged[judged["verdict"] != "fail"])
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
            "note": note,
        })
    seen = {row["arm"] for row in rows}
    for arm in arms or ():
        if arm not in seen:
            rows.append({"arm": arm, "control": False, "verdict": NOTHING_ADDED, "n_fail": 0, "n_warn": 0,
                         "failing_metrics": "", "evaluate": True, "flagged": False, "control_ok": "", "note": ""})
    return pd.DataFrame(rows, columns=ARM_VERDICT_COLUMNS)


def _positive_control_ok(table: pd.DataFrame, level: float) -> tuple[str, str]:
    """``control_ok`` and note of the positive control: no failing cell, or (null rule) no more than chance.

    Only gates judged against their null carry the level's promise: a failure of a gate that
    kept its factor rule (no ``p_adjusted``: label disagreement, the image-space checks) is
    never put down to chance.
    """
    failing = table[table["verdict"] == "fail"]
    if failing.empty:
        return "true", ""
    if "p_adjusted" not in table.columns or not table["p_adjusted"].notna().any() or "fold" not in table.columns:
        return "false", ""
    factor_failures = failing[failing["p_adjusted"].isna()]
    if len(factor_failures):
        return "false", ("fails gates without a null (factor rule): "
                         + ", ".join(sorted(set(factor_failures["metric"].astype(str)))))
    from scipy.stats import binomtest

    judged = table[table["verdict"] != "insufficient"]
    n_cells = len(judged[["fold", "class"]].drop_duplicates())
    n_failed = len(failing[["fold", "class"]].drop_duplicates())
    p = binomtest(n_failed, max(n_cells, n_failed), level, alternative="greater").pvalue
    note = (f"{n_failed} of {n_cells} cells failed; real data fails up to {level:g} of cells by design "
            f"(binomial p = {p:.2g} for this many or more)")
    return ("true" if p > 0.05 else "false"), note


def _underpowered_note(missed: pd.DataFrame) -> str:
    """Where a negative control's gates passed although designed to fail it, and had no power there."""
    if missed.empty:
        return ""
    weak = missed
    if "min_detectable" in missed.columns:
        from radaug.validate.null import underpowered

        weak = missed[underpowered(missed["min_detectable"])]
    n = len(missed)
    if "min_detectable" not in missed.columns or weak.empty:
        return f"{n} designed failures missed"
    return (f"{n} designed failures missed, {len(weak)} of them underpowered (the gate misses even its "
            f"largest simulated defect at that cell's {int(weak['n_reference'].min())}-"
            f"{int(weak['n_reference'].max())} real training cases)")
