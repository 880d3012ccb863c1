import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug.errors import ConfigError
from radaug.manifest import read_manifest_table, validate_manifest
from radaug.preprocess import (build_index, derive_roi, extract_patch, load_patches, perceptual_hash,
                               preprocess_batch)


def _disc(size=64, radius=12, value=100.0, background=0.0, spacing=(1.0, 1.0)):
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2 + 6) ** 2 < radius**2
    image = sitk.GetImageFromArray(np.where(inside, value, background).astype(np.float32))
    image.SetSpacing(spacing)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask, inside


def test_derived_roi_is_the_foreground_without_holes():
    image, _, inside = _disc()
    arr = sitk.GetArrayFromImage(image)
    arr[32, 32] = 0  # a hole
    arr[2, 2] = 100  # a speck outside
    roi = sitk.GetArrayFromImage(derive_roi(sitk.GetImageFromArray(arr)))
    np.testing.assert_array_equal(roi.astype(bool), inside)


def test_ct_keeps_hounsfield_units_and_pads_with_air():
    image, mask, _ = _disc(value=40.0, background=-1000.0)
    patch = extract_patch(image, mask, modality="CT", patch_size=64, mode="crop", spacing=2.0)
    assert patch.spacing == (2.0, 2.0)
    assert patch.image.max() == pytest.approx(40.0)
    assert patch.image.min() == pytest.approx(-1000.0)  # outside the field of view: air
    assert not patch.roi_truncated


def test_mr_is_zscored_within_roi():
    rng = np.random.default_rng(0)
    image, mask, inside = _disc()
    arr = sitk.GetArrayFromImage(image) + rng.normal(0, 5, size=inside.shape).astype(np.float32)
    noisy = sitk.GetImageFromArray(arr)
    patch = extract_patch(noisy, mask, modality="MR", patch_size=32, mode="crop")
    roi = patch.image[patch.mask > 0]
    assert roi.mean() == pytest.approx(0, abs=1e-4)
    assert roi.std() == pytest.approx(1, abs=1e-3)


def test_fit_mode_scales_roi_into_patch_and_crop_flags_truncation():
    image, mask, inside = _disc(radius=20)
    fit = extract_patch(image, mask, modality="CT", patch_size=32, mode="fit", margin=0.1)
    assert fit.spacing == (1.0, 1.0) and not fit.roi_truncated
    area = fit.mask.sum() / fit.mask.size
    assert area == pytest.approx(np.pi / 4 / 1.2**2, rel=0.1)  # disc in its box with 10% margins
    crop = extract_patch(image, mask, modality="CT", patch_size=16, mode="crop")
    assert crop.roi_truncated


def test_perceptual_hash_ignores_contrast_but_not_content():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(64, 64)).cumsum(0).cumsum(1).astype(np.float32)
    bits = lambda x, y: bin(int(perceptual_hash(x), 16) ^ int(perceptual_hash(y), 16)).count("1")
    assert bits(a, 3 * a + 7) <= 2
    assert bits(a, rng.normal(size=(64, 64)).cumsum(0).cumsum(1).astype(np.float32)) > 12


def test_batches_cover_the_cohort_once(phantom_cohort):
    base, _ = phantom_cohort
    cohort = validate_manifest(read_manifest_table(base / "manifest.csv"), base_dir=base,
                               classes=["benign", "malignant"], default_modality="CT")
    opts = dict(patch_size=32, patch_mode="crop", spacing=None, margin=0.1, mask_label=None)
    tables, arrays = zip(*(preprocess_batch(cohort, b, 3, **opts) for b in range(3)))
    index = build_index(list(tables))
    assert sorted(index["case_id"]) == sorted(cohort["case_id"])
    assert index["content_sha256"].is_unique
    ids = np.concatenate([a["case_id"] for a in arrays])
    assert sorted(ids) == sorted(cohort["case_id"])
    assert all(a["image"].shape[1:] == (32, 32) for a in arrays)


def test_build_index_refuses_mixed_spacings():
    t = pd.DataFrame({"case_id": ["a", "b"], "spacing": ["1x1", "2x2"]})
    with pytest.raises(ConfigError, match="preprocess.spacing"):
        build_index([t])


def test_load_patches_selects_cases(tmp_path):
    from radaug.io import save_arrays

    save_arrays(tmp_path / "b0.npz", case_id=np.array(["a", "c"]), image=np.zeros((2, 4, 4), np.float32) + [[[0]], [[2]]],
                mask=np.ones((2, 4, 4), np.uint8))
    save_arrays(tmp_path / "b1.npz", case_id=np.array(["b"]), image=np.ones((1, 4, 4), np.float32),
                mask=np.ones((1, 4, 4), np.uint8))
    ids, images, _ = load_patches([tmp_path / "b0.npz", tmp_path / "b1.npz"], ["c", "b"])
    assert ids.tolist() == ["c", "b"] and images[:, 0, 0].tolist() == [2, 1]
    with pytest.raises(KeyError, match="zz"):
        load_patches([tmp_path / "b0.npz"], ["zz"])
