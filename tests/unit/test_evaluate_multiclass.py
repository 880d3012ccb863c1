"""Evaluation of studies with more than two classes: metrics against scikit-learn, ground truth on the phantom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score, brier_score_loss, f1_score, recall_score, roc_auc_score,
)

from radaug.errors import RadaugError
from radaug.evaluate import (
    CLASSIFICATION_METRICS, evaluate_arm, metric_names, multiclass_metrics, per_fold_columns, prediction_columns,
    weighted_multiclass_metrics,
)
from radaug.statistics import paired_bootstrap_delta, summarise

from .phantom_features import phantom_lesion_features
from .test_evaluate import RULE, make_folds

CLASSES = ["benign", "malignant", "borderline"]


def _random_table(n=60, k=3, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    if ties:
        logits = np.round(logits, 0)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("k,ties", [(3, False), (4, False), (3, True)])
def test_multiclass_metrics_agree_with_sklearn(k, ties):
    y, proba = _random_table(k=k, seed=k, ties=ties)
    classes = [f"c{j}" for j in range(k)]
    m = multiclass_metrics(y, proba, classes, minority=2)
    pred = np.argmax(proba, axis=1)
    labels = list(range(k))
    assert m["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    assert m["brier"] == pytest.approx(brier_score_loss(y, proba, labels=labels, scale_by_half=True))
    recalls = recall_score(y, pred, average=None, labels=labels)
    for j, name in enumerate(classes):
        assert m[f"recall_{name}"] == pytest.approx(recalls[j])
        assert m[f"auc_{name}"] == pytest.approx(roc_auc_score(y == j, proba[:, j]))
    assert m["minority_recall"] == pytest.approx(recalls[2])
    assert list(m) == list(metric_names(classes))


def test_weighted_multiclass_metrics_equal_the_metrics_of_the_repeated_rows():
    y, proba = _random_table(n=30, seed=3)
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 3, size=(4, y.size))
    weights[:, :3] = 1  # every class present in every replicate
    minority = rng.integers(0, 3, size=y.size)
    weighted = weighted_multiclass_metrics(y, proba, weights, CLASSES, minority)
    for b in range(len(weights)):
        rows = np.repeat(np.arange(y.size), weights[b])
        expected = multiclass_metrics(y[rows], proba[rows], CLASSES, minority[rows])
        for metric, value in expected.items():
            assert weighted[metric][b] == pytest.approx(value, nan_ok=True), metric


def test_two_classes_keep_the_binary_metrics():
    assert metric_names(["a", "b"]) == CLASSIFICATION_METRICS
    assert "sensitivity" not in metric_names(CLASSES) and "recall_borderline" in metric_names(CLASSES)
    assert "proba_borderline" in prediction_columns(CLASSES)


def _three_class_features(n=(30, 20, 10), shift=2.0, n_features=8, seed=0):
    """Class j shifted by ``shift`` SD on feature j: each class separable from the others."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[c] * k for c, k in zip(CLASSES, n)])
    values = rng.normal(size=(labels.size, n_features))
    for j, c in enumerate(CLASSES):
        values[labels == c, j] += shift
    ids = [f"case{i:03d}" for i in range(labels.size)]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "real", "arm": "real",
                         "repeat": np.nan, "fold": np.nan, "label": labels})
    return pd.concat([meta, pd.DataFrame(values, columns=[f"original_firstorder_F{j}" for j in range(n_features)])],
                     axis=1)


@pytest.mark.parametrize("arm,options", [("real", {}), ("oversample", {}), ("smote", {}),
                                         ("real", {"selection": "l1", "k_features": 4}),
                                         ("real", {"model": "svm"})])
def test_evaluate_arm_with_three_classes(arm, options):
    real = _three_class_features()
    folds = make_folds(real, n_splits=3, n_repeats=1)
    per_fold, predictions = evaluate_arm(real, folds, arm, positive_class="malignant", classes=CLASSES,
                                         classifier=options, **RULE)
    assert list(per_fold.columns) == list(per_fold_columns(CLASSES))
    assert list(predictions.columns) == list(prediction_columns(CLASSES))
    assert (per_fold["auc"] > 0.7).all()  # planted, separable classes
    assert (predictions["minority"] == 2).all()  # borderline: fewest training cases
    proba = predictions[[f"proba_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1)
    assert (predictions["predicted"] == np.asarray(CLASSES)[proba.argmax(axis=1)]).all()
    if arm != "real":  # every minority class filled to the largest class of the training fold
        for fold, rows in folds[folds["role"] == "train"].groupby("fold"):
            counts = rows["label"].value_counts()
            expected = sum(counts.max() - n for n in counts)
            assert per_fold.loc[per_fold["fold"] == fold, "n_train_added"].item() == expected > 0
    # the per-fold metrics are those of the fold's predictions
    first = predictions[predictions["fold"] == 0]
    again = multiclass_metrics(first["y_true"], first[[f"proba_{c}" for c in CLASSES]].to_numpy(), CLASSES, 2)
    assert per_fold.iloc[0]["balanced_accuracy"] == pytest.approx(again["balanced_accuracy"])


def test_evaluate_arm_refuses_classes_that_differ_from_the_labels():
    real = _three_class_features()
    folds = make_folds(real, n_splits=3, n_repeats=1)
    with pytest.raises(RadaugError, match="data.classes"):
        evaluate_arm(real, folds, "real", positive_class="malignant", classes=["benign", "malignant"], **RULE)


@pytest.fixture(scope="module")
def phantom_features():
    """PyRadiomics features of 2D phantom lesions: 40 benign, 30 malignant, 30 borderline."""
    return phantom_lesion_features(["benign"] * 40 + ["malignant"] * 30 + ["borderline"] * 30, seed=2027)


def test_phantom_three_classes_oracle_raises_smallest_recall_and_identical_arm_changes_nothing(phantom_features):
    """Smallest class borderline (6 of 56) plus an 'oracle' arm of held-out real borderline cases.

    The oracle is a perfect augmentation of the smallest class: it must raise that
    class's recall (minority recall) significantly; an arm adding nothing must equal real.
    """
    table = phantom_features
    borderline = table[table["label"] == "borderline"]
    cohort = pd.concat([table[table["label"] == "benign"].iloc[:30], table[table["label"] == "malignant"].iloc[:20],
                        borderline.iloc[:6]], ignore_index=True)
    pool = borderline.iloc[6:]
    folds = make_folds(cohort, n_splits=4, n_repeats=2)
    oracle = pd.concat([pool.assign(sample_id="oracle-" + pool["sample_id"], case_id="", source="oracle",
                                    arm="oracle", repeat=r, fold=f)
                        for (r, f), _ in folds.groupby(["repeat", "fold"])], ignore_index=True)
    options = {"k_features": 10}
    run = dict(positive_class="malignant", target_ratio=1.0, cap_per_case=4.0, classes=CLASSES, classifier=options)
    results = [evaluate_arm(cohort, folds, "real", **run),
               evaluate_arm(cohort, folds, "oracle", arm_data=oracle, **run),
               evaluate_arm(cohort, folds, "null", arm_data=oracle.iloc[:0].assign(arm="null"), **run)]
    per_fold = pd.concat([r[0] for r in results])
    predictions = pd.concat([r[1] for r in results])
    assert (predictions["minority"] == CLASSES.index("borderline")).all()
    summary = summarise(per_fold, predictions, n_bootstrap=300, seed=0).set_index(["arm", "metric"])
    assert {"recall_borderline", "auc_malignant"} <= set(summary.index.get_level_values("metric"))
    planted = summary.loc[("oracle", "minority_recall")]
    assert planted["delta_vs_real"] > 0.2
    assert planted["holm_significant"] and planted["holm_p_value"] < 0.05
    assert planted["pooled_delta_ci_low"] > 0
    assert summary.loc[("oracle", "recall_borderline"), "delta_vs_real"] == planted["delta_vs_real"]
    null = summary.loc["null"]
    assert (null["delta_vs_real"] == 0).all() and not null["holm_significant"].any()
    assert (null[["pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high"]].to_numpy() == 0).all()


def test_paired_bootstrap_of_three_classes_uses_the_probabilities():
    y, proba = _random_table(n=30, seed=4)
    base = pd.DataFrame({"arm": "real", "repeat": 0, "fold": 0, "case_id": [f"c{i:02d}" for i in range(30)],
                         "label": np.asarray(CLASSES)[y], "y_true": y, "score": proba[np.arange(30), y],
                         "minority": 2, "predicted": np.asarray(CLASSES)[proba.argmax(axis=1)],
                         **{f"proba_{c}": proba[:, j] for j, c in enumerate(CLASSES)}})
    better = np.clip(proba + 0.5 * np.eye(3)[y], 0, None)
    better /= better.sum(axis=1, keepdims=True)
    arm = base.assign(arm="arm", **{f"proba_{c}": better[:, j] for j, c in enumerate(CLASSES)})
    table = paired_bootstrap_delta(pd.concat([base, arm]), "arm", metrics=list(metric_names(CLASSES)),
                                   n_bootstrap=200, seed=0)
    expected = (roc_auc_score(y, better, multi_class="ovr") - roc_auc_score(y, proba, multi_class="ovr"))
    assert table.loc["auc", "pooled_delta"] == pytest.approx(expected)
    assert table.loc["brier", "pooled_delta"] < 0  # sharper true-class probabilities
