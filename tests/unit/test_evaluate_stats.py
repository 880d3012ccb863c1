"""Statistics of radaug.statistics and metrics of radaug.evaluate against hand-computed values, and ground truth on the phantom."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score, brier_score_loss, f1_score, recall_score, roc_auc_score,
)

from radaug.evaluate import CLASSIFICATION_METRICS, classification_metrics, evaluate_arm, weighted_classification_metrics
from radaug.statistics import (
    ZERO_VARIANCE, corrected_resampled_ttest, holm_adjusted, inference_notes, paired_bootstrap_delta,
    standardised_effect, summarise,
)

from .phantom_features import phantom_lesion_features
from .test_evaluate import POSITIVE, RULE, make_folds, make_real


def test_classification_metrics_match_hand_computation():
    y = [1, 1, 0, 0, 0]
    score = [0.9, 0.4, 0.6, 0.2, 0.1]  # predicted labels 1, 0, 1, 0, 0
    m = classification_metrics(y, score, minority=1)
    assert m["sensitivity"] == 0.5 and m["specificity"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["f1"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1: 2/(2+1+1)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04 + 0.01) / 5)
    assert m["auc"] == pytest.approx(5 / 6)  # 0.9 beats 3 negatives, 0.4 beats 2, of 6 pairs
    assert m["minority_recall"] == 0.5
    assert classification_metrics(y, score, minority=0)["minority_recall"] == pytest.approx(2 / 3)
    assert set(m) == set(CLASSIFICATION_METRICS)


def test_classification_metrics_agree_with_sklearn_on_ties_and_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, size=30)
        score = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=30)  # ties and the threshold itself
        m = classification_metrics(y, score)
        pred = (score > 0.5).astype(int)
        assert m["auc"] == pytest.approx(roc_auc_score(y, score))
        assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
        assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
        assert m["specificity"] == pytest.approx(recall_score(y, pred, pos_label=0))
        assert m["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
        assert m["brier"] == pytest.approx(brier_score_loss(y, score))
    assert math.isnan(classification_metrics([1, 1], [0.2, 0.8])["auc"])


def test_weighted_metrics_equal_the_metrics_of_the_repeated_rows():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=25)
    score = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=25)  # ties and the threshold itself
    minority = rng.integers(0, 2, size=25)
    weights = rng.integers(0, 4, size=(6, 25))
    weights[1] = np.where(y == 1, weights[1], 0)  # a replicate without negatives: AUC undefined
    weighted = weighted_classification_metrics(y, score, weights, minority)
    for b, counts in enumerate(weights):
        rows = np.repeat(np.arange(25), counts)
        expected = classification_metrics(y[rows], score[rows], minority[rows])
        for metric in CLASSIFICATION_METRICS:
            np.testing.assert_allclose(weighted[metric][b], expected[metric], rtol=1e-12, err_msg=metric)
    assert math.isnan(weighted["auc"][1]) and math.isnan(weighted["specificity"][1])


def test_holm_adjustment_matches_hand_computation():
    # sorted p 0.01, 0.02, 0.04 times 3, 2, 1 = 0.03, 0.04, 0.04 (running maximum)
    np.testing.assert_allclose(holm_adjusted([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm_adjusted([0.5, 0.6]), [1.0, 1.0])


def test_standardised_effect_matches_hand_computation():
    # mean 0.025, sd sqrt(0.0021 / 3) = 0.0264575...; d_z = 0.9449...
    assert standardised_effect([0.02, 0.05, -0.01, 0.04]) == pytest.approx(0.025 / math.sqrt(0.0007))
    assert standardised_effect([0.0, 0.0]) == 0.0
    assert math.isnan(standardised_effect([0.1, 0.1]))  # zero variance: undefined, not inf (issue 18)
    assert math.isnan(standardised_effect([0.1]))


def _predictions(arm, score, y, repeats=1):
    n = len(y) // repeats
    return pd.DataFrame({
        "arm": arm, "repeat": np.repeat(np.arange(repeats), n), "fold": 0,
        "case_id": [f"c{i:02d}" for i in range(n)] * repeats, "label": "x",
        "y_true": y, "score": score, "minority": 1,
    })


def test_paired_bootstrap_matches_a_replicate_drawn_by_hand():
    rng = np.random.default_rng(5)
    y = np.array([1] * 8 + [0] * 12)
    real = _predictions("real", rng.uniform(size=20), y)
    arm = _predictions("arm", np.clip(real["score"] + 0.3 * y - 0.1, 0, 1), y)
    both = pd.concat([real, arm], ignore_index=True)
    table = paired_bootstrap_delta(both, "arm", n_bootstrap=1, seed=11)
    pooled = roc_auc_score(y, arm["score"]) - roc_auc_score(y, real["score"])
    assert table.loc["auc", "pooled_delta"] == pytest.approx(pooled)
    # the one replicate: cases drawn by default_rng(11).integers(0, 20, 20), cases sorted by id
    draw = np.random.default_rng(11).integers(0, 20, 20)
    by_hand = roc_auc_score(y[draw], arm["score"].to_numpy()[draw]) - roc_auc_score(y[draw], real["score"].to_numpy()[draw])
    assert table.loc["auc", "ci_low"] == pytest.approx(by_hand)
    assert table.loc["auc", "ci_high"] == pytest.approx(by_hand)
    many = paired_bootstrap_delta(both, "arm", n_bootstrap=500, seed=11)
    assert (many["ci_low"] <= many["pooled_delta"] + 1e-12).all() and (many["pooled_delta"] <= many["ci_high"] + 1e-12).all()
    pd.testing.assert_frame_equal(many, paired_bootstrap_delta(both, "arm", n_bootstrap=500, seed=11))
    same = paired_bootstrap_delta(pd.concat([real, real.assign(arm="copy")]), "copy", n_bootstrap=200)
    assert (same.to_numpy() == 0).all()


def test_paired_bootstrap_resamples_cases_with_all_their_repeats():
    y = np.array([1, 0, 1, 0] * 2)
    real = _predictions("real", np.linspace(0.1, 0.8, 8), y, repeats=2)
    arm = real.assign(arm="arm")
    mismatched = arm.iloc[1:]
    with pytest.raises(ValueError, match="same test cases"):
        paired_bootstrap_delta(pd.concat([real, mismatched]), "arm")
    uneven = pd.concat([real, arm]).iloc[:-1]
    uneven = pd.concat([uneven[uneven["arm"] == "real"].iloc[:-1], uneven[uneven["arm"] == "arm"]])
    with pytest.raises(ValueError, match="equally often"):
        paired_bootstrap_delta(uneven, "arm")


def test_summary_keeps_contract_columns_first_and_flags_holm_significance():
    real = make_real()
    folds = make_folds(real, n_splits=3, n_repeats=2)
    results = [evaluate_arm(real, folds, arm, positive_class=POSITIVE, **RULE) for arm in ("real", "oversample")]
    per_fold = pd.concat([r[0] for r in results])
    predictions = pd.concat([r[1] for r in results])
    summary = summarise(per_fold, predictions, n_bootstrap=50, seed=1)
    assert list(summary.columns[:8]) == [
        "arm", "metric", "mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds"]
    assert (summary["n_folds"] == 6).all()
    over = summary[summary["arm"] == "oversample"].set_index("metric")
    assert (over["holm_significant"] == (over["holm_p_value"] < 0.05)).all()
    assert over["pooled_delta"].notna().all()
    assert summary.loc[summary["arm"] == "real", "pooled_delta"].isna().all()
    pd.testing.assert_frame_equal(summary, summarise(per_fold, predictions, n_bootstrap=50, seed=1))


# --------------------------------------------------------------------------- ground truth


@pytest.fixture(scope="module")
def phantom_features():
    """PyRadiomics features of 2D phantom lesions: 60 benign, 40 malignant (one rng per case)."""
    return phantom_lesion_features(["benign"] * 60 + ["malignant"] * 40, seed=2026)


def test_phantom_planted_effect_is_detected_and_an_identical_arm_is_not(phantom_features):
    """A tiny minority (8 malignant of 68) plus an 'oracle' arm of held-out real malignant cases.

    The oracle arm is a perfect augmentation: real cases from the same distribution,
    never tested. It must raise minority recall significantly (Holm-adjusted corrected
    t-test and a bootstrap CI above 0); an arm that adds nothing is identical to
    real and must show no difference.
    """
    table = phantom_features
    malignant = table[table["label"] == "malignant"]
    cohort = pd.concat([table[table["label"] == "benign"], malignant.iloc[:8]], ignore_index=True)
    pool = malignant.iloc[8:]
    folds = make_folds(cohort, n_splits=4, n_repeats=2)
    oracle = []
    for (repeat, fold), _ in folds.groupby(["repeat", "fold"]):
        oracle.append(pool.assign(sample_id="oracle-" + pool["sample_id"], case_id="", source="oracle",
                                  arm="oracle", repeat=repeat, fold=fold))
    oracle = pd.concat(oracle, ignore_index=True)
    options = {"k_features": 10}
    results = [
        evaluate_arm(cohort, folds, "real", positive_class="malignant", classifier=options, **RULE),
        evaluate_arm(cohort, folds, "oracle", positive_class="malignant", classifier=options, arm_data=oracle, **RULE),
        evaluate_arm(cohort, folds, "null", positive_class="malignant", classifier=options,
                     arm_data=oracle.iloc[:0].assign(arm="null"), **RULE),
    ]
    summary = summarise(pd.concat([r[0] for r in results]), pd.concat([r[1] for r in results]),
                        n_bootstrap=300, seed=0).set_index(["arm", "metric"])
    planted = summary.loc[("oracle", "minority_recall")]
    assert planted["delta_vs_real"] > 0.2
    assert planted["holm_significant"] and planted["holm_p_value"] < 0.05
    assert planted["pooled_delta_ci_low"] > 0
    assert planted["effect_size"] > 0.8  # a large standardised effect
    null = summary.loc["null"]
    assert (null["delta_vs_real"] == 0).all() and not null["holm_significant"].any()
    assert (null[["pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high"]].to_numpy() == 0).all()


# --------------------------------------------------------------------------- issue 18: bad input, zero variance


def test_holm_leaves_nan_out_of_the_family_like_statsmodels():
    from statsmodels.stats.multitest import multipletests

    adjusted = holm_adjusted([0.01, float("nan"), 0.04])
    reference = multipletests([0.01, 0.04], method="holm")[1]
    np.testing.assert_allclose(adjusted[[0, 2]], reference)
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.04])
    assert math.isnan(adjusted[1])
    assert np.isnan(holm_adjusted([float("nan"), float("nan")])).all()


@pytest.mark.parametrize("bad", [[0.01, 1.2], [-0.1, 0.5], [0.2, float("inf")]])
def test_holm_refuses_p_values_outside_0_1(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjusted(bad)


def test_holm_refuses_a_2d_input():
    with pytest.raises(ValueError, match="1-D"):
        holm_adjusted([[0.01, 0.02], [0.03, 0.04]])


def test_ttest_refuses_2d_differences_and_nonfinite_sizes():
    with pytest.raises(ValueError, match="1-D"):
        corrected_resampled_ttest([[0.1, 0.2], [0.3, 0.1]], 48, 12)
    with pytest.raises(ValueError, match="n_train"):
        corrected_resampled_ttest([0.1, 0.2, 0.0], float("nan"), 12)
    with pytest.raises(ValueError, match="n_test"):
        corrected_resampled_ttest([0.1, 0.2, 0.0], 48, float("inf"))
    with pytest.raises(ValueError, match="NaN"):
        corrected_resampled_ttest([0.1, float("nan"), 0.0], 48, 12)
    with pytest.raises(ValueError, match="1-D"):
        standardised_effect([[0.1, 0.2]])


def _identical_delta_per_fold():
    """Two folds of three test cases: the arm's recall delta is +1/3 in both folds."""
    rows = []
    for fold in (0, 1):
        rows.append({"arm": "real", "repeat": 0, "fold": fold, "n_train_real": 6, "n_train_added": 0,
                     "n_test": 3, "minority_recall": 1 / 3, "auc": 0.5 + 0.1 * fold})
        rows.append({"arm": "cvae", "repeat": 0, "fold": fold, "n_train_real": 6, "n_train_added": 4,
                     "n_test": 3, "minority_recall": 2 / 3, "auc": 0.55 + 0.2 * fold})
        rows.append({"arm": "classical", "repeat": 0, "fold": fold, "n_train_real": 6, "n_train_added": 0,
                     "n_test": 3, "minority_recall": 1 / 3, "auc": 0.5 + 0.1 * fold})
    return pd.DataFrame(rows)


def test_identical_nonzero_deltas_are_undefined_and_never_significant():
    per_fold = _identical_delta_per_fold()
    summary = summarise(per_fold, metrics=["minority_recall", "auc"]).set_index(["arm", "metric"])
    row = summary.loc[("cvae", "minority_recall")]
    assert row["delta_vs_real"] == pytest.approx(1 / 3)
    assert math.isnan(row["p_value"]) and math.isnan(row["holm_p_value"]) and math.isnan(row["effect_size"])
    assert not row["holm_significant"]
    # an arm identical to real: delta 0, p = 1, not significant
    same = summary.loc[("classical", "minority_recall")]
    assert same["delta_vs_real"] == 0 and same["p_value"] == 1.0 and not same["holm_significant"]


def test_inference_notes_name_zero_variance_small_folds_and_empty_arms():
    per_fold = _identical_delta_per_fold()
    summary = summarise(per_fold, metrics=["minority_recall", "auc"])
    folds = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(12)], "repeat": 0, "fold": [0] * 6 + [1] * 6,
        "role": (["train"] * 3 + ["test"] * 3) * 2, "label": ["a", "b", "a", "a", "b", "b"] * 2,
    })
    notes = inference_notes(summary, folds, per_fold)
    text = "\n".join(notes)
    assert f"Arm 'cvae'" in text and ZERO_VARIANCE in text and "minority_recall" in text
    assert "Only 2 fold(s)" in text
    assert "fewer than 3" in text
    assert "Arm 'classical' adds no rows" in text
    assert "Arm 'cvae' adds no rows" not in text
    assert inference_notes(summary.iloc[:0]) == []
    with pytest.raises(ValueError, match="lacks columns"):
        inference_notes(summary, folds.drop(columns="role"))
