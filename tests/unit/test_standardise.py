"""Nyúl–Udupa histogram standardisation (radaug.standardise): the map, the fit, the in-fold check."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug import standardise
from radaug.errors import ConfigError, LeakageError
from radaug.features import fold_rows
from radaug.io import save_arrays
from radaug.preprocess import load_patches, normalise_image, normalise_patch, preprocess_case


def _landmarks(rng, n):
    """``n`` cases' strictly increasing landmark vectors with different offsets and gains."""
    steps = rng.uniform(0.5, 3.0, size=(n, len(standardise.LANDMARK_PERCENTILES) - 1))
    return rng.uniform(-50, 300, size=(n, 1)) + np.concatenate([np.zeros((n, 1)), np.cumsum(steps, 1)], 1) * \
        rng.uniform(1, 40, size=(n, 1))


def test_worked_example_by_hand():
    """Two training cases; every number below computed by hand."""
    a = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], float)  # p1 = 0, p99 = 100: maps onto itself
    b = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 200], float)  # p99 = 200: maps to b / 2
    scale = standardise.standard_scale(np.stack([a, b]))
    expected = (a + b / 2) / 2  # [0, 6.25, 12.5, 20, 27.5, 35, 42.5, 50, 57.5, 65, 100]
    np.testing.assert_allclose(scale, expected)
    assert scale[1] == 6.25 and scale[-2] == 65.0
    values = standardise.apply(np.array([15.0, 300.0, -10.0, 80.0]), b, scale)
    # 15 lies between b's landmarks 10 and 20 (scale 12.5 .. 20): 12.5 + 0.5 * 7.5;
    # 300 continues the last segment (80 -> 65, 200 -> 100; slope 35/120): 100 + 100 * 35 / 120;
    # -10 continues the first (0 -> 0, 5 -> 6.25; slope 1.25); 80 is a landmark: 65.
    np.testing.assert_allclose(values, [16.25, 100 + 100 * 35 / 120, -12.5, 65.0], rtol=1e-6)


def test_map_is_monotone_and_piecewise_linear_and_landmarks_land_on_the_scale():
    rng = np.random.default_rng(0)
    landmarks = _landmarks(rng, 6)
    scale = standardise.standard_scale(landmarks)
    assert scale[0] == pytest.approx(standardise.STANDARD_RANGE[0]) and scale[-1] == pytest.approx(100.0)
    assert (np.diff(scale) > 0).all()
    for case in landmarks:
        # the case's own landmarks land exactly (float32) on the standard scale
        np.testing.assert_allclose(standardise.apply(case, case, scale), scale.astype(np.float32), rtol=1e-6,
                                   atol=1e-4)
        x = np.linspace(case[0] - 100, case[-1] + 100, 20001)
        y = standardise.apply(x, case, scale).astype(np.float64)
        assert (np.diff(y) >= -1e-4).all()  # monotone (float32 rounding aside)
        # piecewise linear: within each segment (and beyond the ends) the slope is constant
        knots = np.concatenate([[-np.inf], case[1:-1], [np.inf]])
        for lo, hi in zip(knots[:-1], knots[1:]):
            inside = (x > lo + 1e-6) & (x < hi - 1e-6)
            slopes = np.diff(y[inside]) / np.diff(x[inside])
            assert np.ptp(slopes) < 1e-3 * max(1.0, abs(slopes).max())


def test_tied_landmarks_keep_the_map_non_decreasing():
    case = np.array([0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80], float)  # a plateau (many zero voxels)
    scale = standardise.standard_scale(np.stack([case, case * 2 + 1]))
    y = standardise.apply(np.linspace(-5, 90, 1000), case, scale)
    assert np.isfinite(y).all() and (np.diff(y) >= 0).all()


def _head(rng, n_fg=1001, n_bg=1200):
    """A 'head': a dark background (air) and a bright foreground; 1001 foreground voxels put
    every landmark percentile on an order statistic."""
    fg = rng.gamma(4.0, 30.0, n_fg) + 300.0
    bg = rng.uniform(0, 5, n_bg)
    return rng.permutation(np.concatenate([fg, bg]))


def test_a_scanner_gain_and_offset_vanish_after_standardisation():
    """Two acquisitions that differ by intensity gain and offset (as between MR scanners) become equal;
    stored intensities ('none') stay apart; image_zscore, a global affine map too, also removes it."""
    rng = np.random.default_rng(1)
    a = _head(rng)
    b = 2.7 * a + 40.0
    train = np.stack([standardise.case_landmarks(_head(rng) * g) for g in (0.5, 1.0, 3.0)])
    scale = standardise.standard_scale(train)
    sa = standardise.apply(a, standardise.case_landmarks(a), scale)
    sb = standardise.apply(b, standardise.case_landmarks(b), scale)
    np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-3)
    assert not np.allclose(a, b)
    za, zb = (sitk.GetArrayFromImage(normalise_image(sitk.GetImageFromArray(x.reshape(31, 71)), "image_zscore")[0])
              for x in (a, b))
    np.testing.assert_allclose(za, zb, atol=1e-6)


def test_a_non_linear_scanner_difference_is_matched_at_the_landmarks_but_not_by_zscore():
    """What sets the method apart: a monotone non-linear intensity transfer (a gamma curve) moves
    every landmark of the foreground onto the same standard value; a z-score leaves them apart."""
    rng = np.random.default_rng(2)
    a = _head(rng)
    b = (a / 100.0) ** 1.8 * 60.0  # background stays below the mean: the foreground is the same voxels
    la, lb = standardise.case_landmarks(a), standardise.case_landmarks(b)
    np.testing.assert_allclose(lb, (la / 100.0) ** 1.8 * 60.0, rtol=1e-12)  # landmarks follow the transfer
    scale = standardise.standard_scale(np.stack([la, lb]))
    at = [np.flatnonzero(np.isclose(a, v))[0] for v in la]  # the voxels that are the landmarks
    sa, sb = standardise.apply(a, la, scale), standardise.apply(b, lb, scale)
    np.testing.assert_allclose(sa[at], sb[at], atol=1e-4)
    np.testing.assert_allclose(sa[at], scale, atol=1e-4)
    za, zb = ((x - x.mean()) / x.std() for x in (a, b))
    assert np.abs(za[at] - zb[at]).max() > 0.3


def test_foreground_is_the_voxels_above_the_mean_and_constant_images_are_refused():
    image = np.array([0, 0, 0, 0, 10, 20, 30.0])
    assert standardise.foreground(image).tolist() == [False] * 4 + [True] * 3
    np.testing.assert_allclose(standardise.case_landmarks(image)[[0, 5, -1]], [10.2, 20.0, 29.8])
    with pytest.raises(ValueError, match="constant"):
        standardise.case_landmarks(np.full(10, 3.0))
    with pytest.raises(ValueError, match="equal"):
        standardise.case_landmarks(np.array([0.0] * 10 + [5.0] * 20))
    text = standardise.landmarks_text(standardise.case_landmarks(image))
    np.testing.assert_array_equal(standardise.parse_landmarks(text), standardise.case_landmarks(image))


def _study(rng):
    """A case index with landmarks and a 2-fold split of 6 cases."""
    ids = [f"c{i}" for i in range(6)]
    landmarks = _landmarks(rng, 6)
    index = pd.DataFrame({"case_id": ids, "normalisation": "nyul",
                          "landmarks": [standardise.landmarks_text(v) for v in landmarks]})
    test0 = {"c0", "c1", "c2"}
    folds = pd.DataFrame([{"case_id": c, "repeat": 0, "fold": f, "role": "test" if (c in test0) == (f == 0)
                           else "train"} for f in (0, 1) for c in ids])
    return index, folds, dict(zip(ids, landmarks))


def test_each_fold_is_fitted_on_its_training_cases_only():
    index, folds, landmarks = _study(np.random.default_rng(3))
    for fold, train in ((0, ["c3", "c4", "c5"]), (1, ["c0", "c1", "c2"])):
        fitted = standardise.for_fold(index, folds, 0, fold)
        assert fitted.fitted_on == tuple(train) and fitted.fold == f"r0f{fold}"
        np.testing.assert_allclose(fitted.scale, standardise.standard_scale(np.stack([landmarks[c] for c in train])))
        everything = standardise.standard_scale(np.stack(list(landmarks.values())))
        assert not np.allclose(fitted.scale, everything)  # the test cases would have changed it
    assert standardise.for_fold(index.assign(normalisation="image_zscore"), folds, 0, 0) is None


def test_a_fit_with_a_test_case_is_a_leakage_error_naming_fold_and_case():
    index, folds, landmarks = _study(np.random.default_rng(4))
    leaky = standardise.fit(landmarks, ["c3", "c4", "c5", "c1"], fold="r0f0")
    with pytest.raises(LeakageError, match=r"fold r0f0: the histogram standardisation .* test case\(s\) \['c1'\]"):
        standardise.check_fitted_in_fold(leaky, folds, 0, 0)
    with pytest.raises(LeakageError, match=r"not training cases"):
        standardise.check_fitted_in_fold(standardise.fit({**landmarks, "zz": landmarks["c0"]}, ["c3", "zz"]),
                                         folds, 0, 0)
    standardise.check_fitted_in_fold(standardise.fit(landmarks, ["c3", "c5"]), folds, 0, 0)  # a subset is fine


def test_fold_images_once_without_standardisation_per_fold_with_it():
    index, folds, _ = _study(np.random.default_rng(5))
    images = np.random.default_rng(6).uniform(0, 300, (6, 4, 4)).astype(np.float32)
    ids = index["case_id"].to_numpy()
    once = standardise.fold_images(index.drop(columns="landmarks").assign(normalisation="none"), None, ids, images)
    assert len(once) == 1 and once[0][:2] == (None, None) and once[0][2] is images
    per_fold = standardise.fold_images(index, folds, ids, images)
    assert [(r, f) for r, f, _ in per_fold] == [(0, 0), (0, 1)]
    assert not np.allclose(per_fold[0][2], per_fold[1][2])
    with pytest.raises(ValueError, match="folds.csv"):
        standardise.fold_images(index, None, ids, images)
    with pytest.raises(ConfigError, match="landmarks"):
        standardise.index_landmarks(index.drop(columns="landmarks"))


def test_load_patches_applies_the_fold_map_to_images_only(tmp_path):
    index, folds, landmarks = _study(np.random.default_rng(7))
    images = np.random.default_rng(8).uniform(0, 300, (6, 4, 4)).astype(np.float32)
    masks = (images > 150).astype(np.uint8)
    save_arrays(tmp_path / "b.npz", case_id=index["case_id"].to_numpy(dtype=str), image=images, mask=masks)
    fitted = standardise.for_fold(index, folds, 0, 1)
    ids, out, out_masks = load_patches([tmp_path / "b.npz"], ["c4", "c0"], standardisation=fitted)
    assert ids.tolist() == ["c4", "c0"]
    np.testing.assert_array_equal(out_masks, masks[[4, 0]])
    np.testing.assert_allclose(out[0], standardise.apply(images[4], landmarks["c4"], fitted.scale))
    _, stored, _ = load_patches([tmp_path / "b.npz"], ["c4"])
    np.testing.assert_array_equal(stored[0], images[4])
    np.testing.assert_array_equal(normalise_patch(out[0], masks[4], "nyul"), out[0])  # no patch-level step


def test_fold_rows_picks_a_folds_rows_of_a_per_fold_table():
    once = pd.DataFrame({"case_id": ["a", "b"], "repeat": [np.nan] * 2, "fold": [np.nan] * 2, "x": [1, 2]})
    assert fold_rows(once, 0, 1) is once
    per_fold = pd.DataFrame({"case_id": ["a", "b", "a", "b"], "repeat": 0, "fold": [0, 0, 1, 1], "x": [1, 2, 3, 4]})
    assert fold_rows(per_fold, 0, 1)["x"].tolist() == [3, 4]
    with pytest.raises(Exception, match="no row of repeat 0, fold 2"):
        fold_rows(per_fold, 0, 2)


def test_preprocess_records_landmarks_of_the_whole_original_image_and_keeps_stored_intensities(tmp_path):
    rng = np.random.default_rng(9)
    array = rng.uniform(0, 10, (40, 40)).astype(np.float32)
    array[10:30, 8:32] += 200 + rng.gamma(3, 20, (20, 24)).astype(np.float32)
    mask = np.zeros((40, 40), np.uint8)
    mask[15:22, 14:20] = 1
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "image.nrrd"))
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / "mask.nrrd"))
    row = SimpleNamespace(case_id="a", patient_id="a", label="x", modality="MR", domain="", group="",
                          image=str(tmp_path / "image.nrrd"), mask=str(tmp_path / "mask.nrrd"),
                          image_sha256="", mask_sha256="")
    patch, record = preprocess_case(row, mask_label=None, patch_size=16, normalisation="nyul")
    stored, stored_record = preprocess_case(row, mask_label=None, patch_size=16, normalisation="none")
    np.testing.assert_array_equal(patch.image, stored.image)  # the map is applied per fold, later
    assert record["normalisation"] == "nyul" and "landmarks" not in stored_record
    np.testing.assert_array_equal(standardise.parse_landmarks(record["landmarks"]),
                                  standardise.case_landmarks(array))
    with pytest.raises(ValueError, match="CT"):
        preprocess_case(SimpleNamespace(**{**vars(row), "modality": "CT"}), mask_label=None, patch_size=16,
                        normalisation="nyul")


def test_config_refuses_nyul_for_ct():
    from radaug.config import resolve_params_file, validate_config

    base = {"study": {"name": "u"}, "data": {"source": "phantom", "classes": ["benign", "malignant"]},
            "preprocess": {"normalisation": "nyul"}}
    with pytest.raises(ConfigError, match="preprocess.normalisation' = nyul.*CT"):
        validate_config(base)
    config = validate_config({**base, "preprocess": {"normalisation": "nyul", "modality": "MR"}})
    # the default parameter file bins the standard scale (0-100), not z-scores
    assert resolve_params_file(config, "workflow").name == "radiomics_2d_nyul.yaml"
