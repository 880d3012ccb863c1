import json

import numpy as np
import pandas as pd
import pytest
import yaml

from radaug.augment import apply_chain, augment_fold, build_augmentation, photometric_settings, rejected_totals
from radaug.config import validate_config
from radaug.errors import ConfigError
from radaug.sampling import rebalancing_quotas

from ..conftest import REPO
from .augment_cases import disc_case

RULE = {"target_ratio": 1.0, "cap_per_case": 4.0}  # sampling.target_ratio, sampling.cap_per_case (schema defaults)


def _options(**photometric):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["augmentation"] = {"photometric": photometric}
    return validate_config(config)["augmentation"]


def _fold():
    cases = [disc_case((32, 32), radius=5 + i % 3, seed=i) for i in range(7)]
    train = pd.DataFrame({"case_id": [f"c{i}" for i in range(7)], "label": ["a"] * 5 + ["b"] * 2})
    return train, np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases])


def test_fold_is_augmented_to_the_rebalancing_quotas_and_every_sample_replays():
    train, images, masks = _fold()
    chain = build_augmentation(_options(), "CT")
    table, out_images, out_masks = augment_fold(train, images, masks, (1.0, 1.0), chain, classes=["a", "b"],
                                                seed=3, fold="r0f1", cap_per_case=2, target_ratio=1.0)
    quotas = rebalancing_quotas({"a": 5, "b": 2}, target_ratio=1.0, cap_per_case=2)
    assert table["label"].value_counts().to_dict() == {k: v for k, v in quotas.items() if v}
    assert set(table["case_id"]) <= set(train.loc[train["label"] == "b", "case_id"])  # parents: fold-train, same class
    assert (table["repeat"] == 0).all() and (table["fold"] == 1).all()
    assert table["sample_id"].is_unique
    for row, image, mask in zip(table.itertuples(), out_images, out_masks):
        parent = train.index[train["case_id"] == row.case_id][0]
        replay = apply_chain(json.loads(row.chain), images[parent], masks[parent], (1.0, 1.0))
        np.testing.assert_array_equal(replay[0], image)
        np.testing.assert_array_equal(replay[1], mask)
        assert set(np.unique(mask)) <= {0, 1} and row.roi_voxels == mask.sum() > 0
    assert {"RandomAffine", "RandomElasticDeformation"} <= set(rejected_totals(table))


def test_same_seed_same_fold_other_seed_other_samples():
    train, images, masks = _fold()
    chain = build_augmentation(_options(), "CT")
    args = dict(classes=["a", "b"], fold="r0f0", cap_per_case=2, target_ratio=1.0)
    a = augment_fold(train, images, masks, (1, 1), chain, seed=1, **args)
    b = augment_fold(train, images, masks, (1, 1), chain, seed=1, **args)
    c = augment_fold(train, images, masks, (1, 1), chain, seed=2, **args)
    pd.testing.assert_frame_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_3d_mr_fold():
    cases = [disc_case((12, 16, 16), radius=4, background=0.0, body=100.0, value=300.0, seed=i) for i in range(3)]
    train = pd.DataFrame({"case_id": ["x", "y", "z"], "label": ["a", "a", "b"]})
    chain = build_augmentation(_options(), "MR")
    table, out_images, _ = augment_fold(train, np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases]),
                                        (1.0, 1.0, 2.0), chain, classes=["a", "b"], seed=0, fold="r1f0", **RULE)
    assert len(table) == 1 and table["case_id"].iloc[0] == "z" and out_images.shape == (1, 12, 16, 16)
    assert [r["transform"] for r in json.loads(table["chain"].iloc[0])] == [
        "Affine", "ElasticDeformation", "Gain", "BiasField", "RicianNoise", "NormaliseIntensity"]


@pytest.mark.parametrize("key, value", [("gain", 0.1), ("bias_field", 0.2), ("rician_snr", [10, 20])])
def test_mr_augmentations_refused_on_ct_by_config_validation(key, value):
    with pytest.raises(ConfigError, match=f"augmentation.photometric.{key}"):
        _options(**{key: value})  # the smoke study is a CT phantom


def test_hu_noise_refused_on_mr():
    with pytest.raises(ConfigError, match="augmentation.photometric.noise_sd_hu.*Rician"):
        photometric_settings({"noise_sd_hu": 5.0}, "MR")


def test_defaults_per_modality_and_zero_disables():
    assert photometric_settings({}, "CT") == {"noise_sd_hu": 10.0, "blur_sigma_mm": 0.5, "bias_field_order": 2}
    assert photometric_settings({"gain": 0}, "CT")["noise_sd_hu"] == 10.0  # 0 means off, so allowed
    assert photometric_settings({"gain": None}, "MR")["gain"] == 0.1


def test_classical_is_a_valid_arm():
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["evaluation"]["arms"] = ["real", "classical"]
    assert validate_config(config)["evaluation"]["arms"] == ["real", "classical"]
