"""Ground truth on the phantom cohort, with real PyRadiomics features of phantom lesions.

We know which texture modes exist (fine, coarse, and a rare calcified one), so
we know what each gate must say:

* a "generator" that never produces the rare subtype: coverage drops and its gate fails;
* copies (and lightly noised copies) of training cases: the memorization gates fail;
* held-out real cases (the good sampler): every gate passes;
* the negative controls fail the gates they are built to fail, the voxel-shuffled
  one with real PyRadiomics features of shuffled phantom lesions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radaug.data.phantom import phantom_case
from radaug.features import extract_patches, make_extractor
from radaug.validate import PHYSICAL_HU_RANGE, Patches, copy_control, noise_control, validate_arm
from radaug.validate.controls import EXPECTED_FAILURES, shuffle_control_patches, shuffled_control_features

PARAMS = Path(__file__).resolve().parents[2] / "workflow/resources/radiomics_2d_ct.yaml"
MODES = ["fine", "coarse", "rare"]
WITH_RARE = [0.35, 0.35, 0.30]  # a rare mode large enough that losing it must show
NOT_FEATURES = {"sample_id", "case_id", "source", "arm", "repeat", "fold", "label", "subtype"}


def _cohort(extractor, seed: int, n: int, label: str, modes, p=None):
    rng = np.random.default_rng(seed)
    subtypes = rng.choice(modes, size=n, p=p)
    images, masks = map(np.stack, zip(*(phantom_case(rng, label, s, dim=2, size=48) for s in subtypes)))
    ids = [f"s{seed}-{i}" for i in range(n)]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "real", "arm": "real",
                         "repeat": 0, "fold": 0, "label": label})
    table, failures = extract_patches(extractor, images, masks, (1.0, 1.0), meta)
    assert failures.empty, failures
    return table.assign(subtype=subtypes), images, masks


@pytest.fixture(scope="module")
def phantom():
    """PyRadiomics features (and patches) of phantom lesions, extracted once for this module."""
    extractor = make_extractor(PARAMS)
    sets = {
        "train": _cohort(extractor, 1, 60, "malignant", MODES, WITH_RARE),
        "holdout": _cohort(extractor, 2, 30, "malignant", MODES, WITH_RARE),
        "held_out_real": _cohort(extractor, 3, 30, "malignant", MODES, WITH_RARE),
        "no_rare": _cohort(extractor, 4, 60, "malignant", ["fine", "coarse"]),
        "benign": _cohort(extractor, 5, 30, "benign", MODES, WITH_RARE),
    }
    columns = [c for c in sets["train"][0].columns if c not in NOT_FEATURES]
    return sets, columns


def _validate(phantom, candidate, images=None, masks=None, seed=3, rule="null"):
    sets, columns = phantom
    (train, train_images, train_masks), (holdout, holdout_images, holdout_masks) = sets["train"], sets["holdout"]
    patches = None
    if images is not None:
        patches = Patches(train_images, train_masks, holdout_images, holdout_masks, images, masks,
                          PHYSICAL_HU_RANGE)
    summary = validate_arm(train, holdout, candidate, feature_columns=columns, train_other=sets["benign"][0],
                           patches=patches, seed=seed, rule=rule)
    return summary.set_index("metric")


def test_held_out_real_cases_pass_every_gate(phantom):
    table, images, masks = phantom[0]["held_out_real"]
    summary = _validate(phantom, table, images, masks)
    assert len(summary) == 18  # every metric, the image-space ones included
    # Under the null rule this fixed draw failed strong_pairs_kept (value 0.59) while that gate had the
    # anti-conservative real-vs-real split null; on the permutation null (issue 21) it passes (p 0.055,
    # adjusted 0.40). A cell of real data may still fail at the level (5%) by design.
    assert (summary["verdict"] != "fail").all(), summary[summary["verdict"] == "fail"]
    factor = _validate(phantom, table, images, masks, rule="factor")
    assert (factor["verdict"] == "pass").all(), factor[factor["verdict"] != "pass"]


@pytest.mark.parametrize("seed", [3, 4])
def test_generator_missing_the_rare_mode_fails_coverage(phantom, seed):
    """With one real-vs-real split the coverage baseline was a single noisy draw and this
    verdict depended on the seed (it passed at seed 2); medians over splits steady it."""
    table, images, masks = phantom[0]["no_rare"]
    summary = _validate(phantom, table, images, masks, seed=seed)
    assert summary.loc["coverage", "value"] < 0.85 * summary.loc["coverage", "baseline"]
    assert summary.loc["coverage", "verdict"] == "fail"
    # Every sample it makes is a realistic lesion: precision and memorization do not object.
    assert summary.loc["precision", "verdict"] == "pass"
    assert summary.loc["memorization_ratio", "verdict"] == "pass"


@pytest.mark.parametrize("noise_sd", [0.0, 0.1])
def test_copies_and_lightly_noised_copies_fail_memorization(phantom, noise_sd):
    sets, columns = phantom
    train, train_images, train_masks = sets["train"]
    take = copy_control(train, len(train), seed=0)
    copies = train.iloc[take].copy()
    rng = np.random.default_rng(0)
    copies[columns] += noise_sd * train[columns].std().to_numpy() * rng.normal(size=(len(copies), len(columns)))
    summary = _validate(phantom, copies, train_images[take], train_masks[take])
    for gate in EXPECTED_FAILURES["control_negative_copy"]:
        assert summary.loc[gate, "verdict"] == "fail", gate
    assert summary.loc["ks_fdr", "verdict"] == "pass"  # copies match the distribution


def test_noise_control_fails_every_fidelity_gate(phantom):
    sets, columns = phantom
    summary = _validate(phantom, noise_control(sets["train"][0], columns, 60, seed=1))
    failed = summary.loc[list(EXPECTED_FAILURES["control_negative_noise"]), "verdict"]
    assert (failed == "fail").all(), failed[failed != "fail"]


def test_other_class_presented_as_this_class_fails_label_consistency(phantom):
    benign = phantom[0]["benign"][0]
    summary = _validate(phantom, benign.iloc[copy_control(benign, 60, seed=0)])
    assert summary.loc["label_disagreement", "verdict"] == "fail"


def test_voxel_shuffled_training_cases_fail_the_manifold_gates(phantom):
    """Shuffled ROIs keep shape and first-order features exactly and fail the gates on the rest."""
    sets, columns = phantom
    train, train_images, train_masks = sets["train"]
    shuffled, failures = shuffled_control_features(make_extractor(PARAMS), train["case_id"], train["label"],
                                                   train_images, train_masks, (1.0, 1.0), seed=11)
    assert failures.empty, failures
    assert (shuffled["case_id"] == train["case_id"].to_numpy()).all()
    _, images, masks = shuffle_control_patches(train["case_id"], train_images, train_masks, seed=11)
    kept = [c for c in columns if "_shape2D_" in c or "_firstorder_" in c]
    np.testing.assert_allclose(shuffled[kept], train[kept], rtol=1e-6)  # shape and histogram untouched
    texture = [c for c in columns if c.split("_")[1] in {"glcm", "glrlm", "glszm", "ngtdm"}]
    assert not np.isclose(shuffled[texture], train[texture], rtol=1e-3).all(axis=0).any()  # every one moved
    summary = _validate(phantom, shuffled, images, masks)
    for gate in EXPECTED_FAILURES["control_negative_shuffle"]:
        assert summary.loc[gate, "verdict"] == "fail", gate
    # With 60 cases per set, the distribution gates see the texture shift too (the smoke
    # study's 8-case classes cannot, so these are not required of the control).
    # They fail under the factor rules; under the null rule's adjustment across 14 gates KS and the
    # means-only Fréchet only warn at 60 cases (a measured loss of power, README Limitations).
    factor = _validate(phantom, shuffled, images, masks, rule="factor")
    for gate in ("ks_fdr", "frechet_means_distance", "detection_auc"):
        assert factor.loc[gate, "verdict"] == "fail", gate
        assert summary.loc[gate, "verdict"] in ("fail", "warn"), gate
    # Not a copy in feature space, and still a plausible image.
    for gate in ("memorization_ratio", "share_closer_than_holdout", "nndr_ratio", "implausible_share"):
        assert summary.loc[gate, "verdict"] == "pass", gate
