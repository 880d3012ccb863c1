"""The report's summary rules (radaug.findings) on constructed evaluation and validation tables."""

from __future__ import annotations

import math

import pandas as pd

from radaug import findings


def _evaluation(rows):
    """rows: arm -> {metric: (delta, holm_p, significant)}; pooled deltas equal the mean deltas."""
    out = [{"arm": "real", "metric": m, "delta_vs_real": 0.0, "holm_p_value": math.nan, "holm_significant": False,
            "pooled_delta": 0.0, "pooled_delta_ci_low": 0.0, "pooled_delta_ci_high": 0.0,
            "validation_verdict": "reference", "note": ""} for m in ("auc", "minority_recall")]
    for arm, (metrics, verdict) in rows.items():
        for metric, (delta, p, sig) in metrics.items():
            out.append({"arm": arm, "metric": metric, "delta_vs_real": delta, "holm_p_value": p,
                        "holm_significant": sig, "pooled_delta": delta, "pooled_delta_ci_low": delta - 0.1,
                        "pooled_delta_ci_high": delta + 0.1, "validation_verdict": verdict, "note": ""})
    return pd.DataFrame(out)


def _validation(arm, cells):
    """cells: list of (metric, value, baseline, verdict), repeated for folds 0 and 1 of class 'a'."""
    return pd.DataFrame([{"fold": f"r0f{f}", "arm": arm, "class": "a", "metric": m, "value": v, "baseline": b,
                          "verdict": verdict} for f in (0, 1) for m, v, b, verdict in cells])


HELPS = ({"auc": (0.06, 0.01, True), "minority_recall": (0.10, 0.2, False)}, "pass")
HURTS = ({"auc": (-0.07, 0.04, True), "minority_recall": (0.05, 0.5, False)}, "fail")
FAILS_BUT_HELPS = ({"auc": (0.05, 0.02, True), "minority_recall": (0.2, 0.03, True)}, "fail")
THRESHOLD = ({"auc": (0.01, 0.9, False), "minority_recall": (0.47, 0.02, True)}, "fail")
NOTHING = ({"auc": (0.02, 0.6, False), "minority_recall": (0.03, 0.7, False)}, "warn")


def test_each_kind_of_arm_is_read_correctly():
    evaluation = _evaluation({"cvae": HELPS, "classical": HURTS, "dcgan": FAILS_BUT_HELPS, "smote": THRESHOLD,
                              "lsgan": NOTHING})
    validation = pd.concat([
        _validation("dcgan", [("coverage", 0.03, 0.97, "fail"), ("recall", 0.1, 0.9, "fail"),
                              ("detection_auc", 1.0, 0.53, "fail"), ("precision", 0.9, 0.9, "pass")]),
        _validation("classical", [("share_closer_than_holdout", 0.3, 0.05, "fail"), ("coverage", 0.9, 0.97, "pass")]),
        _validation("cvae", [("coverage", 0.9, 0.97, "pass")]),
    ])
    table = findings.arm_findings(evaluation, validation, ["real", "cvae", "classical", "dcgan", "smote", "lsgan"])
    by_arm = table.set_index("arm")
    assert list(table["arm"]) == ["cvae", "classical", "dcgan", "smote", "lsgan"]
    assert by_arm.loc["cvae", "auc"] == "+0.06 (95% CI -0.04 to 0.16; Holm p 0.01)"
    assert by_arm.loc["cvae", "auc_direction"] == "up" and by_arm.loc["classical", "auc_direction"] == "down"
    assert by_arm.loc["lsgan", "auc_direction"] == "none" and by_arm.loc["smote", "recall_direction"] == "up"
    why = by_arm.loc["dcgan", "why"]
    assert "mode collapse" in why and "coverage 0.03 vs 0.97 real-vs-real (2 of 2 cells)" in why
    assert "told apart from real: detection auc 1 vs 0.53" in why and "off the real manifold" not in why
    assert by_arm.loc["classical", "why"].startswith("memorises training cases: share closer than holdout 0.3")
    assert by_arm.loc["cvae", "why"] == ""

    reading = findings.overall_reading(table)
    assert "cvae and dcgan improved AUC." in reading
    assert "classical lowered AUC." in reading
    assert "smote moved the decision threshold: minority recall +0.47" in reading
    assert "lsgan" not in reading.split("passed")[0].split("threshold")[-1]  # not significant: not a finding
    assert "cvae passed validation." in reading


def test_no_improvement_and_no_passing_arm():
    table = findings.arm_findings(_evaluation({"lsgan": NOTHING, "classical": HURTS}), None)
    reading = findings.overall_reading(table)
    assert reading.startswith("No augmentation arm improved AUC. classical lowered AUC.")
    assert "No augmented or synthetic arm passed validation" in reading


def test_arms_too_small_to_judge_are_not_called_failures():
    table = findings.arm_findings(_evaluation({"cvae": (NOTHING[0], "insufficient")}), None)
    reading = findings.overall_reading(table)
    assert "passed validation" not in reading
    assert "cvae could not be judged by validation (too few rows per cell" in reading


def test_an_arm_that_could_not_generate_is_named_not_judged():
    evaluation = _evaluation({"cvae": HELPS})
    evaluation = pd.concat([evaluation, pd.DataFrame([{
        "arm": "dcgan", "metric": m, "delta_vs_real": math.nan, "validation_verdict": "could not generate",
        "note": "dcgan fell short in r0f0"} for m in ("auc", "minority_recall")])], ignore_index=True)
    table = findings.arm_findings(evaluation, None)
    row = table.set_index("arm").loc["dcgan"]
    assert row["auc"] == "not evaluated" and row["why"] == "dcgan fell short in r0f0"
    assert "Not evaluated: dcgan" in findings.overall_reading(table)


def test_control_and_data_quality_lines():
    verdicts = pd.DataFrame({"arm": ["control_negative_copy", "control_positive", "control_negative_noise", "cvae"],
                             "control": [True, True, True, False], "control_ok": ["True", "False", "False", ""],
                             "failing_metrics": ["", "coverage;ks_fdr", "coverage", ""]})
    validation = pd.concat([
        _validation("control_positive", [("coverage", 0.3, 0.9, "fail"), ("ks_fdr", 0.1, 0.0, "pass")]),
        _validation("control_negative_noise", [("coverage", 0.1, 0.9, "fail"), ("precision", 0.8, 0.9, "pass"),
                                               ("density", 0.2, 1.0, "insufficient")]),
    ])
    line = findings.control_findings(verdicts, validation)
    assert line.startswith("Controls: 1 of 3 behaved as designed; not: control_positive failed coverage in 2 cells; "
                           "control_negative_noise passed gates designed to fail it (precision in 2 cells).")
    assert "control_positive failed coverage, ks_fdr" in findings.control_findings(verdicts)  # without the cells
    assert findings.control_findings(verdicts.iloc[[0]]) == \
        "Controls: all 1 behaved as designed (control_negative_copy)."
    folds = pd.DataFrame({"case_id": list("abcde"), "group": ["g1", "g1", "g1", "g2", "g3"]})
    cohort = pd.DataFrame({"case_id": list("abcde"), "roi_truncated": [False, True, False, False, False]})
    lines = findings.data_quality_lines(cohort, folds, pd.DataFrame({"sample_id": ["s1"]}))
    assert lines[0].startswith("Leakage: 5 cases in 3 groups") and "3 cases in 1 multi-case groups, the largest 3" in lines[0]
    assert lines[1] == "Truncated ROIs: 1 of 5 cases."
    assert lines[2].startswith("Feature extraction failed for 1 synthetic")


def test_k_class_summary_names_the_smallest_class():
    """Issue 23: with more than two classes the summary names the smallest class's recall."""
    def folds(counts_per_fold):  # training cases per class in each fold, as radaug.evaluate counts them
        return pd.DataFrame([{"repeat": 0, "fold": k, "role": "train", "label": label}
                             for k, counts in enumerate(counts_per_fold) for label, n in counts.items()
                             for _ in range(n)])

    three = folds([{"a": 5, "b": 3, "c": 2}, {"a": 4, "b": 3, "c": 2}])
    assert findings.smallest_class(three) == "c"
    assert findings.smallest_class(three[three["label"] != "c"]) is None  # two classes: "minority recall"
    tie = folds([{"a": 5, "b": 2, "c": 2}])  # ties go to the first of data.classes, as in evaluation
    assert findings.smallest_class(tie, ["a", "c", "b"]) == "c" and findings.smallest_class(tie, ["a", "b", "c"]) == "b"
    assert findings.smallest_class(folds([{"a": 5, "b": 2, "c": 3}, {"a": 5, "b": 3, "c": 2}])) == ""
    assert findings.recall_words("") == "recall of each fold's smallest class"
    assert findings.recall_words(None) == "minority recall"
    table = pd.DataFrame([{"arm": "oracle", "auc": "+0.01", "minority_recall": "+0.30", "verdict": "pass", "why": "",
                           "auc_direction": "none", "recall_direction": "up", "recall_delta": 0.3}])
    reading = findings.overall_reading(table, findings.recall_words("c"))
    assert "moved the decision threshold: recall of the smallest class 'c' +0.30" in reading
