"""Tests of the arms' added rows (smote, combined arms) and of the in-fold feature filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radaug.arms import arm_added_rows, smote
from radaug.classifier import build_classifier
from radaug.errors import RadaugError
from radaug.evaluate import evaluate_arm, robust_feature_set
from radaug.features import feature_columns
from radaug.sampling import rebalancing_quotas

from .test_evaluate import NEGATIVE, POSITIVE, RULE, make_arm_data, make_folds, make_real


@pytest.fixture(scope="module")
def real():
    return make_real()


@pytest.fixture(scope="module")
def folds(real):
    return make_folds(real, n_repeats=1)


def _train(real, folds, repeat=0, fold=0):
    split = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)]
    return real[real["case_id"].isin(split.loc[split["role"] == "train", "case_id"])]


def test_smote_adds_the_quota_of_interpolated_rows_inside_the_class(real, folds):
    train = _train(real, folds)
    added = smote(train, seed=3, repeat=0, fold=0, **RULE)
    quotas = rebalancing_quotas(train["label"].value_counts().to_dict(), target_ratio=1.0, cap_per_case=4.0)
    assert added["label"].value_counts().to_dict() == {k: v for k, v in quotas.items() if v}
    assert list(added.columns) == list(train.columns)
    assert (added["source"] == "smote").all() and (added["arm"] == "smote").all()
    assert (added["case_id"] == "").all() and added["sample_id"].is_unique
    # every new row lies on a segment between two minority training cases: inside their bounding box
    features = feature_columns(train)
    minority = train.loc[train["label"] == POSITIVE, features]
    assert (added[features].to_numpy() >= minority.min().to_numpy() - 1e-9).all()
    assert (added[features].to_numpy() <= minority.max().to_numpy() + 1e-9).all()
    # none is a copy of a training case
    assert not (added[features].round(9).merge(minority.round(9), how="inner")).shape[0]
    pd.testing.assert_frame_equal(added, smote(train, seed=3, repeat=0, fold=0, **RULE))
    assert not np.allclose(added[features], smote(train, seed=4, repeat=0, fold=0, **RULE)[features])


def test_smote_needs_two_cases_of_a_grown_class(real, folds):
    train = _train(real, folds)
    lonely = pd.concat([train[train["label"] == NEGATIVE], train[train["label"] == POSITIVE].head(1)])
    with pytest.raises(RadaugError, match="at least two training cases"):
        smote(lonely, seed=0, repeat=0, fold=0, **RULE)
    balanced = pd.concat([train[train["label"] == NEGATIVE].head(12), train[train["label"] == POSITIVE]])
    assert smote(balanced, seed=0, repeat=0, fold=0, **RULE).empty


def test_arm_vocabulary_has_one_builder_per_built_in_arm_and_names_file_backed_parts():
    """radaug.arms is the one home of the arm names: every built-in arm but the reference has a
    builder, and the workflow's file-backed and generator parts of an arm come from it."""
    from radaug.arms import (
        _BUILDERS, BUILTIN_ARMS, CLASSICAL_ARM, REFERENCE_ARM, data_components, generator_components,
    )

    assert set(_BUILDERS) == set(BUILTIN_ARMS) - {REFERENCE_ARM}
    assert data_components("real") == [] and data_components("smote+oversample") == []
    assert data_components(f"{CLASSICAL_ARM}+cvae+smote") == [CLASSICAL_ARM, "cvae"]
    assert generator_components(f"{CLASSICAL_ARM}+cvae+smote") == ["cvae"]


def test_combined_arm_adds_the_union_of_its_parts(real, folds):
    train = _train(real, folds)
    gan = make_arm_data(real, folds, arm="gan")
    vae = make_arm_data(real, folds, arm="vae", seed=1).assign(sample_id=lambda t: "v" + t["sample_id"])
    data = pd.concat([gan, vae], ignore_index=True)
    combined = arm_added_rows("gan+vae+smote", train, data, repeat=0, fold=0, seed=1, **RULE)
    parts = [arm_added_rows(a, train, data if a != "smote" else None, repeat=0, fold=0, seed=1, **RULE)
             for a in ("gan", "vae", "smote")]
    pd.testing.assert_frame_equal(combined, pd.concat(parts, ignore_index=True))
    assert arm_added_rows("real", train, repeat=0, fold=0, seed=1, **RULE).empty
    per_fold, _ = evaluate_arm(real, folds, "gan+vae", positive_class=POSITIVE, arm_data=data, **RULE)
    assert (per_fold["n_train_added"] == 12).all()
    with pytest.raises(RadaugError, match="rows of arms"):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=data, **RULE)
    with pytest.raises(ValueError, match="do not pass arm_data"):
        evaluate_arm(real, folds, "smote", positive_class=POSITIVE, arm_data=data, **RULE)


def test_smote_arm_is_evaluated_on_real_test_cases_only(real, folds):
    per_fold, predictions = evaluate_arm(real, folds, "smote", positive_class=POSITIVE, seed=2, **RULE)
    assert (per_fold["n_train_added"] == 24).all()
    assert set(predictions["case_id"]) <= set(real["case_id"])
    assert per_fold["auc"].mean() > 0.7


def test_correlation_filter_drops_a_duplicated_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x = np.column_stack([x, x[:, 0] * 2 + 1e-6 * rng.normal(size=40)])  # copy of column 0
    y = (x[:, 0] > 0).astype(int)
    pipe = build_classifier(k_features=None, correlation_threshold=0.95).fit(x, y)
    assert pipe.named_steps["correlation"].get_support().tolist() == [True, True, True, False]
    off = build_classifier(k_features=None, correlation_threshold=None).fit(x, y)
    assert "correlation" not in off.named_steps
    with pytest.raises(ValueError, match="correlation_threshold"):
        build_classifier(correlation_threshold=1.5)


def test_l1_selection_keeps_the_informative_features_at_most_k():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8))
    y = (x[:, 2] - x[:, 5] + 0.3 * rng.normal(size=200) > 0).astype(int)
    pipe = build_classifier(selection="l1", k_features=2, C=0.1).fit(x, y)
    assert np.flatnonzero(pipe.named_steps["select"].get_support()).tolist() == [2, 5]
    # a penalty that zeroes every weight still keeps one feature
    strong = build_classifier(selection="l1", k_features=None, C=1e-6).fit(x, y)
    assert strong.named_steps["select"].get_support().sum() == 1
    with pytest.raises(ValueError, match="feature selection"):
        build_classifier(selection="lasso")


def test_robust_features_restrict_each_fold(real, folds):
    features = feature_columns(real)
    invariance = pd.DataFrame([
        {"repeat": 0, "fold": k, "feature": f, "icc1": 0.9, "robust": f in features[:3]}
        for k in range(5) for f in features
    ])
    assert robust_feature_set(invariance, 0, 1, features) == features[:3]
    options = {"k_features": None, "correlation_threshold": None, "robust_features": True}
    with pytest.raises(ValueError, match="invariance"):
        evaluate_arm(real, folds, "real", positive_class=POSITIVE, classifier=options, **RULE)
    restricted, _ = evaluate_arm(real, folds, "real", positive_class=POSITIVE, classifier=options,
                                 invariance=invariance, **RULE)
    # the same as a feature table that only has those three features
    only = real.drop(columns=features[3:])
    plain, _ = evaluate_arm(only, folds, "real", positive_class=POSITIVE,
                            classifier={**options, "robust_features": False}, **RULE)
    pd.testing.assert_frame_equal(restricted, plain)
    with pytest.raises(RadaugError, match="no feature is robust"):
        robust_feature_set(invariance.assign(robust=False), 0, 0, features)
    with pytest.raises(RadaugError, match="no rows for repeat 0, fold 9"):
        robust_feature_set(invariance, 0, 9, features)


def test_an_arm_that_adds_nothing_evaluates_like_real(real, folds):
    """Issue 18: balanced folds or cap_per_case 0 leave an arm's feature file with no rows and no
    feature columns (only the META_COLUMNS header); the arm is real plus nothing, not an error."""
    from radaug.features import META_COLUMNS

    empty = pd.DataFrame(columns=list(META_COLUMNS))
    per_fold_real, pred_real = evaluate_arm(real, folds, "real", positive_class=POSITIVE, **RULE)
    for arm in ("classical", "classical+smote"):
        per_fold, pred = evaluate_arm(real, folds, arm, positive_class=POSITIVE, arm_data=empty,
                                      cap_per_case=0, target_ratio=1.0)
        assert (per_fold["n_train_added"] == 0).all()
        np.testing.assert_array_equal(pred["score"].to_numpy(), pred_real["score"].to_numpy())
    # a table of several folds where only some folds added rows keeps working (NaN-free features)
    assert evaluate_arm(real, folds, "classical", positive_class=POSITIVE, arm_data=pd.DataFrame(),
                        cap_per_case=0, target_ratio=1.0)[0]["n_train_added"].eq(0).all()
