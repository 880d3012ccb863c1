"""Detection, label consistency, image-space checks, new distribution metrics and per-arm verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radaug.errors import RadaugError
from radaug.validate import (
    PHYSICAL_HU_RANGE,
    arm_verdicts,
    detection_auc,
    frechet_means_distance,
    image_memorization_ratio,
    label_disagreement,
    image_distances_to_train,
    nearest_neighbour_distance_ratio,
    nearest_training_patches,
    patch_vectors,
    physical_intensity_range,
    plausibility,
    strong_pairs_kept,
    verdict,
    wasserstein_distance,
)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(42)


def test_detection_auc_half_for_same_distribution_and_high_for_shift(rng):
    a, b = rng.normal(size=(150, 5)), rng.normal(size=(150, 5))
    assert detection_auc(a, b, seed=1) == pytest.approx(0.5, abs=0.1)
    assert detection_auc(a, b + 1.5, seed=1) > 0.9
    with pytest.raises(ValueError, match="both"):
        detection_auc(a, b, groups_reference=np.arange(150))


def test_detection_auc_falls_back_to_ungrouped_folds_with_one_group(rng):
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 3
    grouped = detection_auc(a, b, groups_reference=["x"] * 40, groups_candidate=["y"] * 40, seed=0)
    assert grouped == pytest.approx(detection_auc(a, b, seed=0))


def test_label_disagreement_low_for_own_class_high_for_other(rng):
    pos, neg = rng.normal(1.5, 1, size=(80, 4)), rng.normal(-1.5, 1, size=(80, 4))
    own, own_baseline = label_disagreement(pos, neg, rng.normal(1.5, 1, size=(50, 4)))
    other, _ = label_disagreement(pos, neg, rng.normal(-1.5, 1, size=(50, 4)))
    assert own < 0.15 and own_baseline < 0.15 and other > 0.85


def test_wasserstein_is_the_shift_in_standard_deviations(rng):
    a = rng.normal(size=(4000, 3))
    assert wasserstein_distance(a, a) == 0.0
    assert wasserstein_distance(a, a + 2 * a.std(axis=0, ddof=1)) == pytest.approx(2.0, rel=1e-6)


def test_wasserstein_columns_equal_scipy_column_by_column(rng):
    """The vectorised Wasserstein-1 is scipy's on every column: sizes, ties, constant columns, one row a side."""
    from scipy.stats import wasserstein_distance as scipy_w1

    from radaug.validate.metrics import wasserstein_1d_columns

    for trial in range(60):
        n, m = rng.integers(1, 120, size=2)
        u = rng.normal(size=(n, 6))
        v = rng.standard_t(2, size=(m, 6)) * 2 + 0.3
        if trial % 3 == 0:  # ties within and across the sets
            u, v = np.round(u, 1), np.round(v, 1)
        u[:, 0] = 1.0  # constant in one set
        v[:, 1] = u[0, 1]  # constant, equal to a value of the other set
        expected = [scipy_w1(u[:, j], v[:, j]) for j in range(6)]
        np.testing.assert_allclose(wasserstein_1d_columns(u, v), expected, rtol=1e-12, atol=1e-14)


def test_frechet_means_is_the_squared_mean_shift(rng):
    a = rng.normal(size=(500, 2))
    shifted = a + np.array([1.0, 2.0]) * a.std(axis=0, ddof=1)
    assert frechet_means_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)


def test_strong_pairs_kept_sees_broken_and_flipped_pairs(rng):
    x = rng.normal(size=(300, 1))
    real = np.hstack([x, x + 0.1 * rng.normal(size=(300, 1)), rng.normal(size=(300, 1))])
    assert strong_pairs_kept(real, real) == 1.0
    flipped = real * np.array([1.0, -1.0, 1.0])
    assert strong_pairs_kept(real, flipped) == 0.0
    broken = np.hstack([real[:, :1], rng.permutation(real[:, 1:2]), real[:, 2:]])
    assert strong_pairs_kept(real, broken) == 0.0
    assert math.isnan(strong_pairs_kept(real[:, 1:], real[:, 1:]))  # no strong pair left


def test_nndr_is_zero_for_copies(rng):
    train = rng.normal(size=(100, 4))
    d_copies, d_holdout = nearest_neighbour_distance_ratio(train[:20], train, rng.normal(size=(30, 4)))
    assert np.allclose(d_copies, 0.0) and (d_holdout > 0.2).mean() > 0.8


def test_plausibility_flags_each_failure(rng):
    images = rng.normal(40, 10, size=(4, 8, 8)).astype(np.float32)
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 1
    masks[1] = 0  # empty
    images[2, 0, 0] = -3000.0  # below any CT scanner's range
    masks[3, :, :] = 1  # 64 voxels, outside the real 10-20
    table = plausibility(images, masks, intensity_range=PHYSICAL_HU_RANGE, roi_voxel_range=(10, 20))
    assert table["implausible"].tolist() == [False, True, True, True]
    assert table["empty_mask"].tolist() == [False, True, False, False]
    assert table["intensity_out_of_range"].tolist() == [False, False, True, False]
    assert table["roi_size_out_of_range"].tolist() == [False, True, False, True]
    assert physical_intensity_range("MR", intensity_normalised=False) == (0.0, math.inf)
    assert physical_intensity_range("MR", intensity_normalised=True) is None


def test_patch_distance_ignores_intensity_scale_and_catches_copies(rng):
    images = rng.normal(size=(30, 12, 12))
    np.testing.assert_allclose(patch_vectors(3 * images + 100), patch_vectors(images), atol=1e-12)
    train, holdout = images[:20], images[20:]
    assert image_memorization_ratio(train[:10] * 2 + 5, train, holdout) == pytest.approx(0.0, abs=1e-6)
    assert image_memorization_ratio(rng.normal(size=(10, 12, 12)), train, holdout) == pytest.approx(1.0, abs=0.2)


def test_nearest_training_patch_is_the_copied_one_at_the_memorization_distance(rng):
    train = rng.normal(size=(20, 12, 12))
    candidate = np.stack([train[7] * 2 + 5, rng.normal(size=(12, 12)), train[3]])
    distances, nearest = nearest_training_patches(candidate, train)
    assert nearest[0] == 7 and nearest[2] == 3 and distances[[0, 2]] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(distances, image_distances_to_train(candidate, train, train[:2])[0])
    brute = np.linalg.norm(patch_vectors(candidate)[:, None] - patch_vectors(train)[None], axis=2)
    assert nearest[1] == brute[1].argmin() and distances[1] == pytest.approx(brute[1].min())
    assert [a.size for a in nearest_training_patches(candidate[:0], train)] == [0, 0]


def test_verdict_rules_of_each_kind():
    minimize = {"warn_factor": 1.5, "fail_factor": 2.0, "abs_tol": 0.0}
    assert [verdict(v, 1.0, minimize) for v in (1.4, 1.9, 2.1)] == ["pass", "warn", "fail"]
    maximize = {"pass_factor": 0.9, "fail_factor": 0.8, "abs_tol": 0.0}
    assert [verdict(v, 1.0, maximize) for v in (0.95, 0.85, 0.7)] == ["pass", "warn", "fail"]
    assert verdict(math.nan, 1.0, maximize) == "insufficient"
    assert verdict(0.5, math.nan, maximize) == "insufficient"


def test_arm_verdicts_flag_failing_arms_and_check_controls():
    rows = [
        ("r0f0", "cvae", "a", "ks_fdr", "fail"),
        ("r0f0", "cvae", "a", "coverage", "pass"),
        ("r0f0", "oversample", "a", "ks_fdr", "pass"),
        ("r0f0", "control_positive", "a", "ks_fdr", "pass"),
        ("r0f0", "control_negative_copy", "a", "memorization_ratio", "fail"),
        ("r0f0", "control_negative_copy", "a", "nndr_ratio", "pass"),
        ("r0f0", "control_negative_label", "a", "label_disagreement", "fail"),
    ]
    summary = pd.DataFrame(rows, columns=["fold", "arm", "class", "metric", "verdict"])
    table = arm_verdicts(summary).set_index("arm")
    assert table.loc["cvae", "verdict"] == "fail" and table.loc["cvae", "flagged"]
    assert table.loc["cvae", "evaluate"] and table.loc["cvae", "failing_metrics"] == "ks_fdr"
    assert not table.loc["oversample", "flagged"]
    assert table.loc["control_positive", "control_ok"] == "true"
    assert table.loc["control_negative_copy", "control_ok"] == "false"  # nndr_ratio did not fail
    assert table.loc["control_negative_label", "control_ok"] == "true"
    assert not table.loc["control_positive", "evaluate"]
    strict = arm_verdicts(summary, evaluate_failing_arms=False).set_index("arm")
    assert not strict.loc["cvae", "evaluate"] and not strict.loc["cvae", "flagged"]


def test_an_arm_without_rows_gets_its_own_verdict_and_is_evaluated():
    """Issue 18: an arm that added nothing (balanced folds, cap_per_case 0) has no validation rows."""
    from radaug.evaluate import gate_by_validation
    from radaug.validate.verdicts import NOTHING_ADDED

    summary = pd.DataFrame([("r0f0", "cvae", "a", "ks_fdr", "pass")],
                           columns=["fold", "arm", "class", "metric", "verdict"])
    table = arm_verdicts(summary, arms=["cvae", "classical"]).set_index("arm")
    assert table.loc["classical", "verdict"] == NOTHING_ADDED
    assert table.loc["classical", "evaluate"] and not table.loc["classical", "flagged"]
    per_fold = pd.DataFrame({"arm": ["real", "classical"], "repeat": 0, "fold": 0})
    kept, _, verdicts = gate_by_validation(per_fold, per_fold.assign(case_id="c"), table.reset_index())
    assert list(kept["arm"]) == ["real", "classical"]
    assert verdicts.set_index("arm").loc["classical", "validation_verdict"] == NOTHING_ADDED


def test_an_arm_whose_generator_fell_short_could_not_generate_in_validation_evaluation_and_report(tmp_path):
    """Issue 17: a generator of only empty masks -> a shortfall record -> 'could not generate' at every stage."""
    from radaug.evaluate import gate_by_validation, summary_with_verdicts
    from radaug.io import read_table, write_csv
    from radaug.report import arm_status
    from radaug.sampling import COULD_NOT_GENERATE, sample_with_quotas, shortfall_notes

    class EmptyMasks:
        def sample(self, labels, seed):
            return np.zeros((len(labels), 8, 8), np.float32), np.zeros((len(labels), 8, 8), np.float32)

    _, _, _, sampling = sample_with_quotas(EmptyMasks(), {"a": 0, "b": 3}, ["a", "b"], {"a": (4, 9), "b": (4, 9)},
                                           seed=0, fold="r0f0", model_name="cvae", max_attempts=2,
                                           on_shortfall="record")
    arms = ["real", "oversample", "cvae", "classical+cvae"]
    notes = shortfall_notes(sampling.assign(model="cvae", fold="r0f0"), arms[1:])
    summary = pd.DataFrame([("r0f0", arm, "b", "ks_fdr", "pass") for arm in ("oversample", "cvae")],
                           columns=["fold", "arm", "class", "metric", "verdict"])
    verdicts = arm_verdicts(summary, arms=arms[1:], could_not_generate=notes).set_index("arm")
    for arm in ("cvae", "classical+cvae"):
        assert verdicts.loc[arm, "verdict"] == COULD_NOT_GENERATE and not verdicts.loc[arm, "evaluate"]
        assert "6 empty mask" in verdicts.loc[arm, "note"]  # 2 rounds of 3 draws, why they were rejected
    assert verdicts.loc["oversample", "verdict"] == "pass" and verdicts.loc["oversample", "note"] == ""

    # the evaluate jobs of arms that could not generate write no rows; the summary still lists them
    per_fold = pd.DataFrame({"arm": ["real", "oversample"], "repeat": 0, "fold": 0, "auc": [0.7, 0.8]})
    kept, _, gate = gate_by_validation(per_fold, per_fold.assign(case_id="c"), verdicts.reset_index(), arms=arms)
    assert list(kept["arm"]) == ["real", "oversample"]
    assert gate.set_index("arm")["evaluated"].to_dict() == {
        "real": True, "oversample": True, "cvae": False, "classical+cvae": False}
    stats = pd.DataFrame({"arm": ["real", "oversample"], "metric": "auc", "mean": [0.7, 0.8], "ci_low": [0.6, 0.7],
                          "ci_high": [0.8, 0.9], "n_folds": 1, "holm_significant": False})
    table = summary_with_verdicts(stats, gate)
    assert list(table["arm"]) == arms and table.loc[table["arm"] == "cvae", "mean"].isna().all()
    assert (table.set_index("arm").loc["cvae", "validation_verdict"] == COULD_NOT_GENERATE)
    # the report reads it back under the evaluation summary's contract, left-out rows included
    path = tmp_path / "summary.csv"
    write_csv(path, table)
    assert list(read_table(path, contract="evaluation_summary")["arm"]) == arms
    status = arm_status(table, arms).set_index("arm")["status"].to_dict()
    assert status == {"real": "reference", "oversample": "evaluated", "cvae": COULD_NOT_GENERATE,
                      "classical+cvae": COULD_NOT_GENERATE}

    # an arm to be evaluated without results is an error, not a silent gap
    with pytest.raises(RadaugError, match="no per-fold results"):
        gate_by_validation(per_fold, per_fold, verdicts.assign(evaluate=True).reset_index(), arms=arms)
