"""Tests of radaug.evaluate (per-fold evaluation of arms, leakage checks), radaug.classifier and radaug.statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from radaug.classifier import build_classifier
from radaug.errors import LeakageError, RadaugError
from radaug.evaluate import evaluate_arm
from radaug.features import META_COLUMNS, feature_columns
from radaug.statistics import corrected_resampled_ttest, summarise
from radaug.sampling import rebalancing_quotas

NEGATIVE, POSITIVE = "benign", "malignant"

RULE = {"target_ratio": 1.0, "cap_per_case": 4.0}  # sampling.target_ratio, sampling.cap_per_case (schema defaults)


def make_real(n_negative=45, n_positive=15, n_features=10, n_informative=2, shift=1.5, seed=0):
    """Real feature table; the positive class is shifted by ``shift`` SD on the informative features."""
    rng = np.random.default_rng(seed)
    labels = np.array([NEGATIVE] * n_negative + [POSITIVE] * n_positive)
    values = rng.normal(size=(labels.size, n_features))
    values[labels == POSITIVE, :n_informative] += shift
    case_ids = [f"case{i:03d}" for i in range(labels.size)]
    meta = pd.DataFrame({
        "sample_id": case_ids, "case_id": case_ids, "source": "real", "arm": "real",
        "repeat": np.nan, "fold": np.nan, "label": labels,
    })
    features = pd.DataFrame(values, columns=[f"original_firstorder_F{j}" for j in range(n_features)])
    return pd.concat([meta, features], axis=1)


def make_folds(real, n_splits=5, n_repeats=2):
    """Fold table in the folds.csv layout, stratified on the label."""
    rows = []
    for repeat in range(n_repeats):
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=repeat)
        for fold, (train, test) in enumerate(splitter.split(real, real["label"])):
            for role, index in (("train", train), ("test", test)):
                part = real.iloc[index]
                rows.append(pd.DataFrame({
                    "case_id": part["case_id"], "patient_id": part["case_id"], "group": "all",
                    "label": part["label"], "repeat": repeat, "fold": fold, "role": role,
                }))
    return pd.concat(rows, ignore_index=True)


def make_arm_data(real, folds, arm="gan", per_fold=6, seed=0):
    """Jittered copies of positive training cases of each fold, with their parent as case_id."""
    rng = np.random.default_rng(seed)
    features = feature_columns(real)
    rows = []
    for (repeat, fold), split in folds.groupby(["repeat", "fold"]):
        train_cases = split.loc[(split["role"] == "train") & (split["label"] == POSITIVE), "case_id"]
        parents = real.set_index("case_id").loc[train_cases.iloc[:per_fold]]
        synthetic = parents[features] + rng.normal(scale=0.1, size=parents[features].shape)
        synthetic.insert(0, "case_id", parents.index)
        synthetic.insert(0, "sample_id", [f"{arm}-r{repeat}-f{fold}-{i}" for i in range(len(parents))])
        synthetic = synthetic.assign(source="synthetic", arm=arm, repeat=repeat, fold=fold, label=POSITIVE)
        rows.append(synthetic.reset_index(drop=True))
    return pd.concat(rows, ignore_index=True)[list(real.columns)]


def first_test_case(folds, repeat=0, fold=0):
    split = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)]
    return split.loc[split["role"] == "test", "case_id"].iloc[0]


@pytest.fixture(scope="module")
def real():
    return make_real()


@pytest.fixture(scope="module")
def folds(real):
    return make_folds(real)


# --------------------------------------------------------------------------- classifier


def test_feature_columns_excludes_metadata(real):
    columns = feature_columns(real)
    assert len(columns) == 10
    assert not set(columns) & set(META_COLUMNS)


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest", "svm"])
def test_build_classifier_models_clip_k_and_predict_probabilities(real, model):
    x = real[feature_columns(real)].to_numpy(copy=True)
    y = (real["label"] == POSITIVE).to_numpy(dtype=int)
    x[:, 0] = 1.0  # a constant feature is dropped before selection
    pipeline = build_classifier(model=model, k_features=50, seed=1).fit(x, y)
    assert pipeline.named_steps["select"].get_support().sum() == 9
    probabilities = pipeline.predict_proba(x)
    assert probabilities.shape == (60, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_build_classifier_k_none_keeps_all_and_rejects_bad_arguments():
    assert "select" not in build_classifier(k_features=None).named_steps
    with pytest.raises(ValueError, match="unknown classifier model"):
        build_classifier(model="xgboost")
    with pytest.raises(ValueError, match="k_features"):
        build_classifier(k_features=0)


# --------------------------------------------------------------------------- evaluate_arm


def test_real_arm_on_informative_features_beats_chance(real, folds):
    per_fold, predictions = evaluate_arm(real, folds, "real", positive_class=POSITIVE, **RULE)
    assert list(per_fold.columns) == [
        "arm", "repeat", "fold", "n_train_real", "n_train_added", "n_test",
        "auc", "balanced_accuracy", "sensitivity", "specificity", "f1", "brier", "minority_recall",
    ]
    assert list(predictions.columns) == ["arm", "repeat", "fold", "case_id", "label", "y_true", "score",
                                         "minority"]
    assert (predictions["minority"] == 1).all()  # 15 malignant vs 45 benign: the positive class
    assert len(per_fold) == 10
    assert (per_fold["n_train_real"] == 48).all() and (per_fold["n_test"] == 12).all()
    assert (per_fold["n_train_added"] == 0).all()
    assert per_fold["auc"].mean() > 0.75
    # every case is tested exactly once per repeat, with y_true matching its label
    assert (predictions.groupby("repeat")["case_id"].nunique() == 60).all() and len(predictions) == 120
    assert ((predictions["label"] == POSITIVE) == (predictions["y_true"] == 1)).all()
    assert predictions["score"].between(0, 1).all()


def test_real_arm_on_noise_features_is_near_chance():
    noise = make_real(shift=0.0, seed=3)
    per_fold, _ = evaluate_arm(noise, make_folds(noise), "real", positive_class=POSITIVE, **RULE)
    assert 0.3 < per_fold["auc"].mean() < 0.7


@pytest.mark.parametrize("cap_per_case", [4.0, 1.0])
def test_oversample_adds_exactly_the_quota(real, folds, cap_per_case):
    per_fold, _ = evaluate_arm(real, folds, "oversample", positive_class=POSITIVE, cap_per_case=cap_per_case, target_ratio=1.0)
    for row in per_fold.itertuples():
        split = folds[(folds["repeat"] == row.repeat) & (folds["fold"] == row.fold) & (folds["role"] == "train")]
        quotas = rebalancing_quotas(split["label"].value_counts().to_dict(), target_ratio=1.0, cap_per_case=cap_per_case)
        assert row.n_train_added == sum(quotas.values())
    assert per_fold["n_train_added"].tolist() == [24 if cap_per_case == 4.0 else 12] * 10


def test_oversampled_rows_are_copies_that_fail_memorization(real, folds):
    """The oversample arm is validation's negative control: the same rows, all copies."""
    from radaug.arms import oversample
    from radaug.features import feature_columns
    from radaug.validate import validate_arm

    split = folds[(folds["repeat"] == 0) & (folds["fold"] == 0)]
    train = real[real["case_id"].isin(split.loc[split["role"] == "train", "case_id"])]
    test = real[real["case_id"].isin(split.loc[split["role"] == "test", "case_id"])]
    added = oversample(train, seed=3, repeat=0, fold=0, **RULE)
    pd.testing.assert_frame_equal(added, oversample(train, seed=3, repeat=0, fold=0, **RULE))
    assert set(added["case_id"]) <= set(train["case_id"])
    minority = added[added["label"] == POSITIVE]
    # min_rows=2: this fixture's fold has a handful of positive test cases (the default asks for 10)
    verdicts = validate_arm(train[train["label"] == POSITIVE], test[test["label"] == POSITIVE], minority,
                            feature_columns=feature_columns(real), min_rows=2).set_index("metric")["verdict"]
    assert verdicts["memorization_ratio"] == "fail"


def test_arm_data_rows_are_added_per_fold(real, folds):
    arm_data = make_arm_data(real, folds)
    per_fold, _ = evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=arm_data, **RULE)
    assert (per_fold["n_train_added"] == 6).all()
    assert (per_fold["arm"] == "gan").all()


def test_arm_data_with_test_case_parent_is_leakage(real, folds):
    arm_data = make_arm_data(real, folds)
    arm_data.loc[0, "case_id"] = first_test_case(folds)  # first row belongs to repeat 0, fold 0
    with pytest.raises(LeakageError, match="repeat 0, fold 0"):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=arm_data, **RULE)


def test_arm_data_with_unknown_parent_is_leakage(real, folds):
    arm_data = make_arm_data(real, folds)
    arm_data.loc[0, "case_id"] = "case-from-elsewhere"
    with pytest.raises(LeakageError, match="not training cases of this fold"):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=arm_data, **RULE)


def test_arm_data_with_copied_real_test_row_is_leakage(real, folds):
    arm_data = make_arm_data(real, folds)
    copied = real[real["case_id"] == first_test_case(folds)].assign(arm="gan", repeat=0, fold=0)
    with pytest.raises(LeakageError):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=pd.concat([arm_data, copied]), **RULE)


def test_arm_data_reusing_a_test_sample_id_is_leakage(real, folds):
    arm_data = make_arm_data(real, folds)
    arm_data.loc[0, "case_id"] = np.nan  # no parent, but the sample_id is a test sample's
    arm_data.loc[0, "sample_id"] = first_test_case(folds)
    with pytest.raises(LeakageError, match="share sample_ids"):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=arm_data, **RULE)


def test_case_in_train_and_test_of_a_fold_is_leakage(real, folds):
    test_case = first_test_case(folds)
    duplicate = folds[(folds["case_id"] == test_case) & (folds["repeat"] == 0) & (folds["fold"] == 0)]
    with pytest.raises(LeakageError, match="also appear in the training set"):
        evaluate_arm(real, pd.concat([folds, duplicate.assign(role="train")]), "real", positive_class=POSITIVE, **RULE)


def test_non_real_test_row_is_leakage(real, folds):
    tainted = real.copy()
    tainted.loc[tainted["case_id"] == first_test_case(folds), "source"] = "synthetic"
    with pytest.raises(LeakageError, match="test rows must be real"):
        evaluate_arm(tainted, folds, "real", positive_class=POSITIVE, **RULE)


def test_a_fold_without_arm_rows_trains_on_real_data_only(real, folds):
    """Zero rebalancing quota in a fold (e.g. balanced classes) adds nothing there."""
    arm_data = make_arm_data(real, folds)
    arm_data = arm_data[~((arm_data["repeat"] == 1) & (arm_data["fold"] == 3))]
    per_fold, _ = evaluate_arm(real, folds, "gan", positive_class=POSITIVE, arm_data=arm_data, **RULE)
    reference, _ = evaluate_arm(real, folds, "real", positive_class=POSITIVE, **RULE)
    empty = (per_fold["repeat"] == 1) & (per_fold["fold"] == 3)
    assert per_fold.loc[empty, "n_train_added"].item() == 0
    assert per_fold.loc[empty, "auc"].item() == reference.loc[empty.to_numpy(), "auc"].item()
    assert (per_fold.loc[~empty, "n_train_added"] > 0).all()
    with pytest.raises(ValueError, match="needs arm_data"):
        evaluate_arm(real, folds, "gan", positive_class=POSITIVE, **RULE)


def test_evaluate_is_deterministic_and_seeded(real, folds):
    folds = folds[folds["repeat"] == 0]
    first = evaluate_arm(real, folds, "oversample", positive_class=POSITIVE, seed=7, **RULE)
    second = evaluate_arm(real, folds, "oversample", positive_class=POSITIVE, seed=7, **RULE)
    other = evaluate_arm(real, folds, "oversample", positive_class=POSITIVE, seed=8, **RULE)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert not np.allclose(first[1]["score"], other[1]["score"])


# --------------------------------------------------------------------------- statistics


def test_corrected_resampled_ttest_matches_hand_computation():
    differences = [0.02, 0.05, -0.01, 0.04]
    # mean = 0.10 / 4 = 0.025; squared deviations 0.000025 + 0.000625 + 0.001225 + 0.000225 = 0.0021
    # variance (ddof=1) = 0.0021 / 3 = 0.0007; correction 1/4 + 12/48 = 0.5
    t_hand = 0.025 / math.sqrt(0.5 * 0.0007)  # = 1.336306...
    t, p = corrected_resampled_ttest(differences, n_train=48, n_test=12)
    assert t == pytest.approx(t_hand, rel=1e-12)
    assert t == pytest.approx(1.3363062095621219, rel=1e-12)
    assert p == pytest.approx(2 * stats.t.sf(t_hand, df=3), rel=1e-12)
    # the correction widens the naive paired t-test
    assert p > stats.ttest_1samp(differences, 0.0).pvalue


def test_corrected_resampled_ttest_degenerate_cases():
    assert all(math.isnan(v) for v in corrected_resampled_ttest([0.1], 48, 12))
    t, p = corrected_resampled_ttest([0.0, 0.0, 0.0], 48, 12)
    assert math.isnan(t) and p == 1.0
    # zero variance, non-zero mean: undefined (issue 18), not p = 0
    for differences in ([0.1, 0.1, 0.1], [-0.1, -0.1]):
        assert all(math.isnan(v) for v in corrected_resampled_ttest(differences, 48, 12))


def _per_fold(arm, auc, n_train_real=48, n_test=12):
    auc = np.asarray(auc, dtype=float)
    return pd.DataFrame({
        "arm": arm, "repeat": np.arange(auc.size) // 2, "fold": np.arange(auc.size) % 2,
        "n_train_real": n_train_real, "n_train_added": 0, "n_test": n_test,
        "auc": auc, "balanced_accuracy": auc - 0.1, "minority_recall": auc - 0.2, "specificity": auc,
    })


def test_summarise_copy_of_reference_has_zero_delta_and_p_one(real, folds):
    per_fold, _ = evaluate_arm(real, folds, "real", positive_class=POSITIVE, **RULE)
    summary = summarise(pd.concat([per_fold, per_fold.assign(arm="copy")]))
    assert list(summary.columns) == [
        "arm", "metric", "mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds", "holm_p_value",
        "effect_size", "pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high", "holm_significant",
    ]
    assert summary["arm"].tolist() == ["real"] * 7 + ["copy"] * 7
    copy = summary[summary["arm"] == "copy"]
    assert (copy["delta_vs_real"] == 0).all()
    assert (copy["p_value"] == 1.0).all() and (copy["holm_p_value"] == 1.0).all()
    reference = summary[summary["arm"] == "real"]
    assert (reference["delta_vs_real"] == 0).all() and reference["p_value"].isna().all()
    assert (summary["n_folds"] == 10).all()


def test_summarise_mean_ci_delta_and_p_match_hand_computation():
    reference = [0.70, 0.74, 0.68, 0.72]
    arm = [0.75, 0.76, 0.70, 0.78]
    summary = summarise(pd.concat([_per_fold("real", reference), _per_fold("gan", arm, n_train_real=40)]))
    row = summary[(summary["arm"] == "gan") & (summary["metric"] == "auc")].iloc[0]
    mean = sum(arm) / 4
    sd = math.sqrt(sum((a - mean) ** 2 for a in arm) / 3)
    # Nadeau-Bengio corrected standard error: sqrt((1/J + n_test/n_train) * s^2), J = 4 folds
    half_width = stats.t.ppf(0.975, df=3) * sd * math.sqrt(1 / 4 + 12 / 40)
    assert row["mean"] == pytest.approx(mean)
    assert row["ci_low"] == pytest.approx(mean - half_width)
    assert row["ci_high"] == pytest.approx(mean + half_width)
    differences = [a - r for a, r in zip(arm, reference)]
    assert row["delta_vs_real"] == pytest.approx(sum(differences) / 4)
    assert row["p_value"] == pytest.approx(corrected_resampled_ttest(differences, n_train=40, n_test=12)[1])
    half = summarise(_per_fold("real", reference), confidence=0.5).iloc[0]
    half_width_50 = stats.t.ppf(0.75, df=3) * np.std(reference, ddof=1) * math.sqrt(1 / 4 + 12 / 48)
    assert half["ci_low"] == pytest.approx(half["mean"] - half_width_50)
    assert half["ci_high"] == pytest.approx(half["mean"] + half_width_50)
    wide = summarise(_per_fold("real", [0.2, 0.99, 0.5, 0.98])).iloc[0]
    assert wide["ci_low"] == 0.0 and wide["ci_high"] == 1.0  # clipped to the metric's range


def test_summarise_holm_adjusts_across_arms_per_metric():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.6, 0.8, size=10)
    shifts = [0.0, 0.03, 0.08]
    arms = [_per_fold(f"arm{i}", reference + shift + rng.normal(0, 0.03, 10)) for i, shift in enumerate(shifts)]
    per_fold = pd.concat([_per_fold("real", reference), *arms])
    summary = summarise(per_fold)
    tested = summary[summary["arm"] != "real"]
    assert (tested["holm_p_value"] >= tested["p_value"]).all()
    assert (tested["holm_p_value"] > tested["p_value"]).any()
    assert summary.loc[summary["arm"] == "real", "holm_p_value"].isna().all()
    for _, group in tested.groupby("metric"):  # Holm: smallest p multiplied by the number of arms
        smallest = group["p_value"].idxmin()
        assert group.loc[smallest, "holm_p_value"] == pytest.approx(min(1.0, 3 * group.loc[smallest, "p_value"]))


def test_summarise_requires_matching_folds():
    per_fold = pd.concat([_per_fold("real", [0.7, 0.7, 0.8, 0.8]), _per_fold("gan", [0.7, 0.8, 0.8])])
    with pytest.raises(ValueError, match="exactly once"):
        summarise(per_fold)
    with pytest.raises(ValueError, match="reference arm"):
        summarise(per_fold, reference_arm="oversample")


def test_gate_by_validation_flags_or_leaves_out_failing_arms():
    from radaug.evaluate import gate_by_validation

    per_fold = pd.DataFrame({"arm": ["real", "good", "bad"], "auc": [0.7, 0.8, 0.6]})
    predictions = pd.DataFrame({"arm": ["real", "good", "bad", "bad"]})
    verdicts = pd.DataFrame({"arm": ["good", "bad", "control_positive"], "verdict": ["pass", "fail", "pass"],
                             "evaluate": [True, True, False], "flagged": [False, True, False]})
    kept, kept_predictions, gate = gate_by_validation(per_fold, predictions, verdicts)
    assert list(kept["arm"]) == ["real", "good", "bad"] and len(kept_predictions) == 4
    assert gate.set_index("arm")["validation_verdict"].to_dict() == {"real": "reference", "good": "pass", "bad": "fail"}
    assert gate.set_index("arm")["flagged"].to_dict() == {"real": False, "good": False, "bad": True}
    # validation.evaluate_failing_arms: false -> the failing arm is left out of the summary
    verdicts.loc[verdicts["arm"] == "bad", ["evaluate", "flagged"]] = [False, False]
    kept, kept_predictions, gate = gate_by_validation(per_fold, predictions, verdicts)
    assert list(kept["arm"]) == ["real", "good"] and list(kept_predictions["arm"]) == ["real", "good"]
    with pytest.raises(RadaugError, match="no validation verdict"):
        gate_by_validation(per_fold, predictions, verdicts[verdicts["arm"] != "good"])
    _, _, gate = gate_by_validation(per_fold, predictions, None)
    assert set(gate["arm"]) == {"real", "good", "bad"} and not gate["flagged"].any()
