"""What a study found, in words, by fixed rules: the report's first section.

Everything here is computed from the study's tables, never written by hand, and
the rules are fixed so that two studies are read alike:

* **Effect of an arm** (vs the real-only arm, from ``evaluation/summary.csv``): an
  arm *improved* or *lowered* a metric when its corrected resampled t-test is
  significant after Holm correction across arms (``holm_significant``) and the
  mean difference has that sign; otherwise the change is *not significant*,
  whatever its size. AUC (discrimination) and minority recall (the class a
  rebalancing study is about) are read; the pooled difference and its paired
  bootstrap interval are quoted when present.
* **Trust in an arm's data** (from ``validation/summary.csv``): each failing gate
  is named by the defect it detects (:data:`GATE_FAMILIES`), with the median
  value against the median real-vs-real baseline over the fold x class cells
  where it failed.
* **Controls** (from ``validation/arm_verdicts.csv``): whether each control arm
  behaved as designed (``control_ok``); for the positive control under the null
  rule, whether it failed more cells than chance explains (its ``note``), and for a
  negative control, where a gate that passed it had no power at that cell's sizes.
* **Overall reading**: one sentence per rule: which arms improved AUC (or none),
  which lowered it, which moved the decision threshold (minority recall up at
  an AUC not significantly changed), and which passed validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .arms import REFERENCE_ARM
from .io import is_true, truthy

GATE_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "memorization": ("memorises training cases", (
        "share_closer_than_holdout", "memorization_ratio", "nndr_ratio", "image_memorization_ratio")),
    "diversity": ("mode collapse (misses part of the real distribution)", ("coverage", "recall")),
    "detection": ("told apart from real", ("detection_auc",)),
    "distribution": ("feature distributions differ from real", (
        "frechet_distance", "ks_fdr", "frechet_means_distance", "wasserstein_distance")),
    "fidelity": ("samples off the real manifold", ("precision", "density")),
    "correlation": ("feature correlations differ from real", (
        "correlation_distance", "correlation_distance_spearman", "strong_pairs_kept")),
    "labels": ("label inconsistent with features", ("label_disagreement",)),
    "plausibility": ("implausible images or masks", ("implausible_share",)),
}
"""Gate family → (the defect in words, its metrics, the first one quoted)."""

_METRIC_WORDS = {"auc": "AUC", "minority_recall": "minority recall"}


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.2f}" if abs(x) >= 0.005 else f"{x:+.3f}"


def _value(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def effect(evaluation: pd.DataFrame, arm: str, metric: str) -> dict:
    """An arm's effect on one metric vs real: ``delta``, ``low``, ``high``, ``holm_p``, ``direction``, ``text``.

    ``direction`` is ``up``, ``down`` (Holm-significant) or ``none``; ``text`` reads
    e.g. ``+0.47 (95% CI 0.36 to 0.59; Holm p 0.024)``.
    """
    rows = evaluation[(evaluation["arm"] == arm) & (evaluation["metric"] == metric)]
    if rows.empty or pd.isna(rows.iloc[0].get("delta_vs_real")):
        return {"delta": math.nan, "low": math.nan, "high": math.nan, "holm_p": math.nan,
                "direction": "none", "text": "not evaluated"}
    r = rows.iloc[0]
    pooled = "pooled_delta" in r and pd.notna(r.get("pooled_delta"))
    delta = float(r["pooled_delta"] if pooled else r["delta_vs_real"])
    low = float(r.get("pooled_delta_ci_low", math.nan)) if pooled else math.nan
    high = float(r.get("pooled_delta_ci_high", math.nan)) if pooled else math.nan
    holm = float(r.get("holm_p_value", r.get("p_value", math.nan)))
    significant = is_true(r.get("holm_significant", False))
    mean_delta = float(r["delta_vs_real"])
    direction = ("up" if mean_delta > 0 else "down") if significant and mean_delta != 0 else "none"
    interval = f"95% CI {low:.2f} to {high:.2f}; " if pooled and not math.isnan(low) else ""
    p_text = f"Holm p {holm:.2g}" if not math.isnan(holm) else "p n/a"
    return {"delta": delta, "low": low, "high": high, "holm_p": holm, "direction": direction,
            "text": f"{_fmt(delta)} ({interval}{p_text})"}


def failing_gates(validation: pd.DataFrame, arm: str) -> list[str]:
    """Each failing gate family of an arm in words, e.g. ``mode collapse …: coverage 0.03 vs 0.97 (10 of 10 cells)``."""
    if validation is None or validation.empty:
        return []
    rows = validation[validation["arm"] == arm]
    judged = rows[~rows["verdict"].isin(["insufficient"])]
    cells = judged[["fold", "class"]].drop_duplicates()
    words = []
    for words_, metrics in GATE_FAMILIES.values():
        failed = judged[judged["metric"].isin(metrics) & (judged["verdict"] == "fail")]
        if failed.empty:
            continue
        metric = next(m for m in metrics if m in set(failed["metric"]))
        quoted = failed[failed["metric"] == metric]
        n_cells = len(failed[["fold", "class"]].drop_duplicates())
        words.append(f"{words_}: {metric.replace('_', ' ')} {_value(quoted['value'].median())} vs "
                     f"{_value(quoted['baseline'].median())} real-vs-real ({n_cells} of {len(cells)} cells)")
    return words


def arm_findings(evaluation: pd.DataFrame, validation: pd.DataFrame | None, arms: Sequence = ()) -> pd.DataFrame:
    """One row per non-reference arm: ``arm, auc, minority_recall, verdict, why`` in words (and the raw effects)."""
    order = [a for a in dict.fromkeys([*arms, *evaluation["arm"]]) if a != REFERENCE_ARM]
    rows = []
    for arm in order:
        part = evaluation[evaluation["arm"] == arm]
        verdict = str(part["validation_verdict"].iloc[0]) if "validation_verdict" in part and len(part) \
            and pd.notna(part["validation_verdict"].iloc[0]) else "n/a"
        note = str(part["note"].iloc[0]) if "note" in part and len(part) and pd.notna(part["note"].iloc[0]) else ""
        auc, recall = effect(evaluation, arm, "auc"), effect(evaluation, arm, "minority_recall")
        why = failing_gates(validation, arm) if validation is not None else []
        rows.append({"arm": arm, "auc": auc["text"], "minority_recall": recall["text"], "verdict": verdict,
                     "why": "; ".join(why) or note, "auc_direction": auc["direction"],
                     "recall_direction": recall["direction"], "recall_delta": recall["delta"]})
    return pd.DataFrame(rows, columns=["arm", "auc", "minority_recall", "verdict", "why", "auc_direction",
                                       "recall_direction", "recall_delta"])


def control_findings(arm_verdicts: pd.DataFrame | None, validation: pd.DataFrame | None = None) -> str:
    """One line on the control arms: whether each behaved as designed, and where one did not.

    A negative control misbehaves when a gate designed to fail it
    (:data:`radaug.validate.controls.EXPECTED_FAILURES`) passes in some judged cell;
    the positive control (held-out real data) when any gate fails it. With
    ``validation`` the line names those gates and cells.
    """
    from radaug.validate.controls import EXPECTED_FAILURES

    if arm_verdicts is None or arm_verdicts.empty or "control" not in arm_verdicts:
        return "Controls: none were run."
    controls = arm_verdicts[truthy(arm_verdicts["control"]).to_numpy()]
    if controls.empty:
        return "Controls: none were run."
    bad = controls[~truthy(controls["control_ok"]).to_numpy()]
    if bad.empty:
        return f"Controls: all {len(controls)} behaved as designed ({', '.join(controls['arm'])})."
    details = []
    for r in bad.itertuples():
        cells = pd.DataFrame(columns=["metric", "verdict"])
        if validation is not None and not validation.empty:
            cells = validation[(validation["arm"] == r.arm) & (validation["verdict"] != "insufficient")]
        if r.arm in EXPECTED_FAILURES:
            missed = cells[cells["metric"].isin(EXPECTED_FAILURES[r.arm]) & (cells["verdict"] != "fail")]
            what = _cells_per_metric(missed)
            details.append(f"{r.arm} passed gates designed to fail it ({what or 'see the validation section'})"
                           + _underpowered(missed))
        else:
            what = _cells_per_metric(cells[cells["verdict"] == "fail"])
            note = getattr(r, "note", "")
            note = "" if pd.isna(note) else str(note)
            details.append(f"{r.arm} failed {what or str(r.failing_metrics).replace(';', ', ')}"
                           + (f" ({note})" if note else ""))
    return (f"Controls: {len(controls) - len(bad)} of {len(controls)} behaved as designed; not: "
            f"{'; '.join(details)}. Read the validation verdicts with this in mind.")


def _cells_per_metric(cells: pd.DataFrame) -> str:
    """"coverage in 2 cells, ks fdr in 1 cell": how many of ``cells`` each metric has, in metric order."""
    return ", ".join(f"{m.replace('_', ' ')} in {n} cell{'s' * (n > 1)}"
                     for m, n in cells.groupby("metric", sort=True).size().items())


def _underpowered(missed: pd.DataFrame) -> str:
    """Where a negative control's missed gates could not have failed it: no power at those cells' sizes.

    A missed cell is *underpowered* when its ``min_detectable`` (radaug.validate.null) says the gate
    misses even the largest simulated defect of its kind at that cell's sizes.
    """
    if "min_detectable" not in missed.columns or missed.empty:
        return ""
    from radaug.validate.null import underpowered

    weak = missed[underpowered(missed["min_detectable"])]
    if weak.empty:
        return ""
    sizes = f"{int(weak['n_reference'].min())}-{int(weak['n_reference'].max())}" \
        if "n_reference" in weak.columns else "these"
    return (f"; underpowered in {len(weak)} of those {len(missed)} (with {sizes} real training cases the "
            f"gate misses even its largest simulated defect)")


def _names(arms: Sequence[str]) -> str:
    arms = list(arms)
    return arms[0] if len(arms) == 1 else ", ".join(arms[:-1]) + " and " + arms[-1]


def smallest_class(folds: pd.DataFrame | None, classes: Sequence[str] = ()) -> str | None:
    """The class whose recall ``minority_recall`` is, in a study with more than two classes.

    As :mod:`radaug.evaluate` picks it: per fold, the class with fewest training cases
    (ties: the first in ``classes``, the config's ``data.classes``). ``""`` when the folds
    disagree; ``None`` for two classes, whose summary speaks of "minority recall".
    """
    if folds is None or not {"label", "role", "repeat", "fold"} <= set(folds.columns):
        return None
    labels = list(classes) or sorted(folds["label"].astype(str).unique())
    if len(labels) <= 2:
        return None
    train = folds[folds["role"] == "train"]
    picked = {min(labels, key=lambda c: int((part["label"].astype(str) == c).sum()))
              for _, part in train.groupby(["repeat", "fold"])}
    return picked.pop() if len(picked) == 1 else ""


def recall_words(smallest: str | None) -> str:
    """How the summary names ``minority_recall``: "minority recall" (two classes) or the smallest class's recall."""
    if smallest is None:
        return "minority recall"
    return f"recall of the smallest class '{smallest}'" if smallest else "recall of each fold's smallest class"


def overall_reading(findings: pd.DataFrame, recall_name: str = "minority recall") -> str:
    """The study's answer in a few sentences, by the fixed rules of this module's docstring."""
    if findings.empty:
        return "Only the real-only arm was run: there is no augmentation to judge."
    evaluated = findings[~findings["auc"].eq("not evaluated")]
    sentences = []
    up = list(evaluated.loc[evaluated["auc_direction"] == "up", "arm"])
    down = list(evaluated.loc[evaluated["auc_direction"] == "down", "arm"])
    sentences.append(f"{_names(up)} improved AUC." if up else "No augmentation arm improved AUC.")
    if down:
        sentences.append(f"{_names(down)} lowered AUC.")
    threshold = evaluated[(evaluated["recall_direction"] == "up") & (evaluated["auc_direction"] == "none")]
    if len(threshold):
        deltas = "/".join(_fmt(d) for d in threshold["recall_delta"])
        sentences.append(f"{_names(list(threshold['arm']))} moved the decision threshold: {recall_name} "
                         f"{deltas} at an AUC not significantly changed.")
    lost = findings[findings["verdict"].isin(["could not generate", "not evaluated"])
                    | findings["auc"].eq("not evaluated")]
    if len(lost):
        sentences.append(f"Not evaluated: {_names(list(lost['arm']))} (see the status table).")
    passing = list(findings.loc[findings["verdict"] == "pass", "arm"])
    judged = findings[findings["verdict"].isin(["pass", "warn", "fail"])]
    if len(judged):
        sentences.append(f"{_names(passing)} passed validation." if passing
                         else "No augmented or synthetic arm passed validation: its data can be told apart "
                              "from real, or fails another gate (below).")
    unjudged = list(findings.loc[findings["verdict"] == "insufficient", "arm"])
    if unjudged:
        sentences.append(f"{_names(unjudged)} could not be judged by validation (too few rows per cell; "
                         "validation.min_rows).")
    return " ".join(sentences)


def data_quality_lines(cohort: pd.DataFrame, folds: pd.DataFrame, failures: pd.DataFrame | None = None) -> list[str]:
    """One line each: leakage grouping, truncated ROIs, failed samples."""
    lines = []
    if folds is not None and len(folds) and "group" in folds:
        first = folds.drop_duplicates("case_id")
        sizes = first.groupby("group").size()
        multi = sizes[sizes > 1]
        lines.append(f"Leakage: {len(first)} cases in {len(sizes)} groups (patients, manifest groups and "
                     f"near-duplicate images kept whole); {int(multi.sum())} cases in {len(multi)} multi-case "
                     f"groups, the largest {int(sizes.max())}; no group is on both sides of a fold (checked).")
    if cohort is not None and "roi_truncated" in cohort:
        truncated = int(truthy(cohort["roi_truncated"]).sum())
        lines.append(f"Truncated ROIs: {truncated} of {len(cohort)} cases." if truncated
                     else "Truncated ROIs: none.")
    if failures is not None:
        lines.append(f"Feature extraction failed for {len(failures)} synthetic or augmented samples "
                     "(excluded and listed in the report)." if len(failures)
                     else "Feature extraction failed for no sample.")
    return lines
