"""The in-fold shape model (radaug.shape): ground truth on discs, bounds of deformed masks, in-fold parents."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from radaug.augment import RandomAffine, RandomElasticDeformation, jacobian_determinant
from radaug.augment.elastic_deformation import ElasticDeformation
from radaug.data.phantom import phantom_case
from radaug.errors import LeakageError
from radaug.shape import (ORIGIN_COLUMNS, ShapeModel, check_mask_parents, fit_in_fold, largest_component,
                          signed_distance_map)

SIZE = 32
RADII = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])


def discs(radii=RADII, size=SIZE, centre=(15.5, 15.5)):
    yy, xx = np.mgrid[:size, :size]
    return np.stack([((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r).astype(np.uint8) for r in radii])


def disc_model(**kwargs):
    ids = [f"d{int(r)}" for r in RADII]
    return ShapeModel.fit(ids, discs(), ["a"] * len(ids), (1.0, 1.0), **kwargs)


def equivalent_radius(mask):
    return np.sqrt(mask.sum() / np.pi)


def test_pca_of_discs_recovers_one_dominant_mode():
    """Signed distance maps of concentric discs differ by a constant (the radius): one mode."""
    shapes = disc_model().shapes["a"]
    assert len(shapes.sd) == 1 and shapes.explained[0] > 0.99
    # The mode's standard deviation is that of the radii, spread over the patch's voxels (maps in mm).
    per_voxel = shapes.sd[0] * np.abs(shapes.modes[0]).mean()
    assert per_voxel == pytest.approx(RADII.std(ddof=1), rel=0.1)
    # The coefficient of each disc along the mode is monotone in its radius.
    coefficients = [(signed_distance_map(d, (1.0, 1.0)).ravel() - shapes.mean) @ shapes.modes[0] for d in discs()]
    order = np.sign(np.diff(coefficients))
    assert (order == order[0]).all() and order[0] != 0
    # The mean shape is the disc of the mean radius.
    assert equivalent_radius(disc_model().mean_mask("a")) == pytest.approx(RADII.mean(), abs=0.5)


def test_shape_model_samples_stay_within_two_sd_and_plausible():
    model = disc_model(ssm_share=1.0, max_sd=2.0)
    sd_radius = RADII.std(ddof=1)
    low, high = RADII.mean() - 2 * sd_radius - 1, RADII.mean() + 2 * sd_radius + 1
    radii = []
    for seed in range(150):
        mask, origin = model.sample("a", seed)
        assert origin["mask_origin"] == "ssm" and origin["parent_case_id"] == ""
        coefficients = json.loads(origin["mask_record"])["coefficients"]
        assert max(abs(b) for b in coefficients) <= 2.0
        assert ndimage.label(mask)[1] == 1  # one connected lesion
        radii.append(equivalent_radius(mask))
        filled = ndimage.binary_fill_holes(mask)
        assert filled.sum() == mask.sum()  # no holes
    radii = np.array(radii)
    assert radii.min() >= low and radii.max() <= high
    assert radii.std() > 0.5 * sd_radius  # the draws use the mode, not only the mean


def test_max_sd_bounds_the_coefficients():
    model = disc_model(ssm_share=1.0, max_sd=0.5)
    coefficients = [json.loads(model.sample("a", s)[1]["mask_record"])["coefficients"][0] for s in range(100)]
    assert max(map(abs, coefficients)) <= 0.5 and np.std(coefficients) > 0.1


def test_deformed_masks_respect_the_volume_bound():
    bound = 0.15
    affine = RandomAffine(rotation_deg=20, translation_mm=1.0, scale=0.25, shear=0.1, max_volume_change=bound)
    masks = discs(np.array([9.0, 10.0, 11.0]))
    model = ShapeModel.fit(["a", "b", "c"], masks, ["x"] * 3, (1.0, 1.0), deformations=[affine], ssm_share=0.0)
    for seed in range(60):
        mask, origin = model.sample("x", seed)
        (record,) = json.loads(origin["mask_record"])["chain"]
        det = np.linalg.det(np.asarray(record["matrix"]))
        assert abs(det - 1) <= bound
        parent = masks[["a", "b", "c"].index(origin["parent_case_id"])]
        # nearest-neighbour resampling changes the volume as det(A) predicts, up to voxels on the border
        assert mask.sum() / parent.sum() == pytest.approx(det, abs=0.06)


def test_deformed_masks_respect_the_jacobian_bound():
    min_jacobian = 0.7
    elastic = RandomElasticDeformation(control_points=5, max_displacement_mm=2.5, min_jacobian=min_jacobian)
    model = ShapeModel.fit(["a", "b"], discs(np.array([7.0, 9.0])), ["x"] * 2, (1.0, 1.0),
                           deformations=[elastic], ssm_share=0.0)
    changed = 0
    for seed in range(20):
        mask, origin = model.sample("x", seed)
        (record,) = json.loads(origin["mask_record"])["chain"]
        twin = ElasticDeformation(record["control_points"], record["coefficients"])
        field = twin.field(mask.shape, (1.0, 1.0))
        assert jacobian_determinant(mask.shape, (1.0, 1.0), field=field).min() > min_jacobian
        changed += not np.array_equal(mask, discs(np.array([7.0 if origin["parent_case_id"] == "a" else 9.0]))[0])
    assert changed >= 15


def test_parents_are_training_cases_of_the_class_and_replay():
    rng = np.random.default_rng(0)
    cases = [phantom_case(rng, label, "fine", dim=2, size=SIZE) for label in ["benign", "malignant"] * 5]
    ids = [f"c{i}" for i in range(10)]
    labels = ["benign", "malignant"] * 5
    masks = np.stack([c[1] for c in cases])
    model = ShapeModel.fit(ids, masks, labels, (1.0, 1.0), deformations=[RandomAffine(), RandomElasticDeformation()])
    seen = set()
    for label in ("benign", "malignant"):
        members = {i for i, x in zip(ids, labels) if x == label}
        for seed in range(40):
            mask, origin = model.sample(label, seed)
            assert set(origin) == set(ORIGIN_COLUMNS) and origin["shape_model_sha256"] == model.sha256
            if origin["mask_origin"] == "deformed":
                assert origin["parent_case_id"] in members
                seen.add(origin["mask_origin"])
            else:
                seen.add("ssm")
            np.testing.assert_array_equal(model.replay(label, origin), mask)
    assert seen == {"deformed", "ssm"}
    with pytest.raises(ValueError, match="no training masks of class"):
        model.sample("other", 0)


def test_deterministic_from_the_seed():
    kwargs = {"deformations": [RandomAffine(), RandomElasticDeformation()]}
    first, second = disc_model(**kwargs), disc_model(**kwargs)
    assert first.sha256 == second.sha256
    for seed in (0, 1, 7):
        (m1, o1), (m2, o2) = first.sample("a", seed), second.sample("a", seed)
        np.testing.assert_array_equal(m1, m2)
        assert o1 == o2
    assert disc_model(max_sd=1.0).sha256 != first.sha256
    other = ShapeModel.fit(["x"], discs(np.array([5.0])), ["a"], (1.0, 1.0))
    with pytest.raises(ValueError, match="another shape model"):
        other.replay("a", first.sample("a", 0)[1])


def test_fit_in_fold_refuses_test_cases_and_foreign_parents():
    masks = discs(np.array([4.0, 5.0, 6.0, 7.0]))
    ids = ["c0", "c1", "c2", "c3"]
    folds = pd.DataFrame({"case_id": ids, "patient_id": ids, "group": ids, "label": "a", "repeat": 0, "fold": 0,
                          "role": ["train", "train", "train", "test"]})
    cases = pd.DataFrame({"case_id": ids})
    model = fit_in_fold(folds=folds, cases=cases, repeat=0, fold=0, case_ids=ids[:3], masks=masks[:3],
                        labels=["a"] * 3, spacing=(1.0, 1.0), ssm_share=0.0)
    parents = [model.sample("a", s)[1]["parent_case_id"] for s in range(20)]
    assert set(parents) <= set(ids[:3])
    check_mask_parents(parents + [""], ids[:3], 0, 0)
    with pytest.raises(LeakageError, match="test case"):
        fit_in_fold(folds=folds, cases=cases, repeat=0, fold=0, case_ids=ids, masks=masks, labels=["a"] * 4,
                    spacing=(1.0, 1.0))
    with pytest.raises(LeakageError, match="not training cases"):
        check_mask_parents(["c0", "c3"], ids[:3], 0, 0)


def test_3d_masks_and_a_single_case_class():
    rng = np.random.default_rng(3)
    cases = [phantom_case(rng, "malignant", "fine", dim=3, size=16) for _ in range(6)]
    masks = np.stack([c[1] for c in cases])
    model = ShapeModel.fit([f"m{i}" for i in range(6)] + ["b0"], np.concatenate([masks, masks[:1]]),
                           ["malignant"] * 6 + ["benign"], (1.0, 1.0, 1.0), ssm_share=1.0)
    sizes = masks.reshape(6, -1).sum(axis=1)
    for seed in range(20):
        mask, origin = model.sample("malignant", seed)
        assert origin["mask_origin"] == "ssm" and ndimage.label(mask)[1] == 1
        assert 0.5 * sizes.min() <= mask.sum() <= 1.5 * sizes.max()
    # one benign mask: no shape modes, so every draw is that mask (deformed by no transform here)
    mask, origin = model.sample("benign", 0)
    assert origin["mask_origin"] == "deformed" and origin["parent_case_id"] == "b0"
    np.testing.assert_array_equal(mask, masks[0])


def test_invalid_inputs():
    with pytest.raises(ValueError, match="binary"):
        ShapeModel.fit(["a"], discs(np.array([5.0])) * 2, ["x"], (1.0, 1.0))
    with pytest.raises(ValueError, match="empty mask"):
        ShapeModel.fit(["a"], np.zeros((1, 8, 8), np.uint8), ["x"], (1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        ShapeModel.fit(["a"], discs(np.array([5.0])), ["x"], (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="ssm_share"):
        disc_model(ssm_share=1.5)


def test_signed_distance_map_thresholds_back_to_the_mask():
    mask = discs(np.array([5.0]))[0]
    level = signed_distance_map(mask, (0.5, 2.0))
    np.testing.assert_array_equal(level < 0, mask.astype(bool))
    assert level[mask == 1].max() <= -0.5 and level[mask == 0].min() >= 0.5


def test_largest_component():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:2] = 1
    mask[4:8, 4:8] = 1
    out = largest_component(mask)
    assert out.sum() == 16 and out[0, 0] == 0
    assert largest_component(np.zeros((4, 4), np.uint8)).sum() == 0
