import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug.config import load_config
from radaug.errors import ConfigError
from radaug.manifest import read_manifest_table, validate_manifest
from radaug.preprocess import (RoiTruncatedError, build_index, derive_roi, extract_patch, load_patches,
                               patch_options, perceptual_hash, preprocess_batch, resolve_normalisation)


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
    patch = extract_patch(image, mask, modality="CT", patch_size=64, mode="crop", spacing=2.0, interpolator="linear")
    assert patch.spacing == (2.0, 2.0)
    assert patch.image.max() == pytest.approx(40.0)
    assert patch.image.min() == pytest.approx(-1000.0)  # outside the field of view: air
    assert not patch.roi_truncated


def test_roi_zscore_is_zscored_within_roi():
    rng = np.random.default_rng(0)
    image, mask, inside = _disc()
    arr = sitk.GetArrayFromImage(image) + rng.normal(0, 5, size=inside.shape).astype(np.float32)
    noisy = sitk.GetImageFromArray(arr)
    patch = extract_patch(noisy, mask, modality="MR", patch_size=32, mode="crop", normalisation="roi_zscore")
    roi = patch.image[patch.mask > 0]
    assert roi.mean() == pytest.approx(0, abs=1e-4)
    assert roi.std() == pytest.approx(1, abs=1e-3)


def test_fit_mode_scales_roi_into_patch():
    image, mask, inside = _disc(radius=20)
    fit = extract_patch(image, mask, modality="CT", patch_size=32, mode="fit", margin=0.1, interpolator="linear")
    assert fit.spacing == (1.0, 1.0) and not fit.roi_truncated
    area = fit.mask.sum() / fit.mask.size
    assert area == pytest.approx(np.pi / 4 / 1.2**2, rel=0.1)  # disc in its box with 10% margins


def _box_case(extent, size_xyz=(40, 36, 30), start=(7, 5, 9), dtype=np.int16, seed=0):
    """A textured integer image (x, y, z sizes) and a box ROI of ``extent`` voxels at ``start``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(-200, 200, size=size_xyz[::-1]).astype(dtype)
    mask = np.zeros(size_xyz[::-1], np.uint8)
    sl = tuple(slice(s, s + e) for s, e in zip(start[::-1], extent[::-1]))
    mask[sl] = 1
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-3.0, 11.0, 40.0))
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(image)
    return image, m, arr, mask


@pytest.mark.parametrize("extent", [(5, 6, 3), (6, 5, 4), (7, 7, 2)])
@pytest.mark.parametrize("patch_size", [(16, 16, 8), (15, 17, 5)])
def test_native_crop_is_an_index_crop_with_bit_identical_roi(extent, patch_size):
    image, mask, arr, roi = _box_case(extent)
    patch = extract_patch(image, mask, modality="CT", patch_size=list(patch_size), mode="crop")
    assert patch.image.shape == patch_size[::-1] and patch.spacing == pytest.approx((0.7, 0.8, 2.5))
    np.testing.assert_array_equal(np.sort(patch.image[patch.mask > 0]), np.sort(arr[roi > 0].astype(np.float32)))
    # the patch is the original lattice: find the window and compare every voxel inside the image
    first = np.argwhere(patch.mask)[0] - np.argwhere(roi)[0]  # patch index - image index, (z, y, x)
    for p_idx in np.argwhere(np.ones(patch.image.shape, bool))[::7]:
        i_idx = p_idx - first
        if (i_idx >= 0).all() and (i_idx < arr.shape).all():
            assert patch.image[tuple(p_idx)] == arr[tuple(i_idx)]
        else:
            assert patch.image[tuple(p_idx)] == -1000.0
    assert patch.mask.sum() == roi.sum()


@pytest.mark.parametrize("stored", ["RAS", "LPI", "SLP", "AIR"])
def test_volumes_in_any_stored_orientation_give_the_lps_patch(stored, tmp_path):
    """The same physical volume stored in another voxel order (RAS as NIfTI writes, axes permuted) gives the
    patch of its LPS copy, voxel for voxel and with the same per-axis patch size (16 on the S axis)."""
    from types import SimpleNamespace

    from radaug.preprocess import preprocess_case

    image, mask, _, _ = _box_case((5, 6, 3))
    patches = {}
    for code in ("LPS", stored):
        for name, volume in (("image", image), ("mask", mask)):
            sitk.WriteImage(sitk.DICOMOrient(volume, code), str(tmp_path / f"{name}_{code}.nrrd"))
        row = SimpleNamespace(case_id=code, patient_id=code, label="a", modality="CT", domain="", group="",
                              image=str(tmp_path / f"image_{code}.nrrd"), mask=str(tmp_path / f"mask_{code}.nrrd"),
                              image_sha256="", mask_sha256="")
        patches[code], record = preprocess_case(row, mask_label=None, patch_size=[16, 16, 8], mode="crop",
                                                orientation="LPS")
        assert record["orientation"] == "LPS"
        stored_code = preprocess_case(row, mask_label=None, patch_size=[16, 16, 8], mode="crop")[1]["orientation"]
        assert stored_code == code
    stored_array = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"image_{stored}.nrrd")))
    original = sitk.GetArrayFromImage(image)
    assert stored_array.shape != original.shape or not np.array_equal(stored_array, original)  # really reordered
    ref, other = patches["LPS"], patches[stored]
    assert other.image.shape == ref.image.shape == (8, 16, 16)
    np.testing.assert_array_equal(other.image, ref.image)
    np.testing.assert_array_equal(other.mask, ref.mask)
    assert other.spacing == pytest.approx(ref.spacing) == (0.7, 0.8, 2.5)


def test_truncated_roi_is_an_error_naming_the_size_that_fits():
    image, mask, *_ = _box_case((20, 9, 3))
    with pytest.raises(RoiTruncatedError, match=r"at least \[20, 9, 3\]"):
        extract_patch(image, mask, modality="CT", patch_size=[16, 16, 8], mode="crop")
    patch = extract_patch(image, mask, modality="CT", patch_size=[16, 16, 8], mode="crop", allow_truncation=True)
    assert patch.roi_truncated and patch.mask.sum() == 16 * 9 * 3


def test_patch_size_must_match_the_dimension():
    image, mask, *_ = _box_case((5, 5, 3))
    with pytest.raises(ValueError, match="3D"):
        extract_patch(image, mask, modality="CT", patch_size=[16, 16], mode="crop")


def test_resampling_lands_on_pyradiomics_lattice():
    """Every voxel of the patch equals PyRadiomics' resampleImage at the same point."""
    from radiomics import imageoperations

    image, mask, *_ = _box_case((9, 8, 3))
    spacing = [0.5, 0.6, 1.0]
    patch = extract_patch(image, mask, modality="CT", patch_size=[32, 32, 16], mode="crop", spacing=spacing)
    ref_img, ref_msk = imageoperations.resampleImage(image, sitk.Cast(mask, sitk.sitkUInt32),
                                                     resampledPixelSpacing=spacing, interpolator=sitk.sitkBSpline,
                                                     padDistance=5)
    ref = sitk.GetArrayFromImage(ref_img)
    ref_mask = sitk.GetArrayFromImage(ref_msk)
    offset = np.argwhere(patch.mask)[0] - np.argwhere(ref_mask)[0]
    assert patch.mask.sum() == ref_mask.sum()
    lo = np.maximum(0, -offset)  # overlap of the two windows, in reference indices
    hi = np.minimum(ref.shape, np.array(patch.image.shape) - offset)
    assert (hi - lo >= [3, 20, 20]).all()
    ours = patch.image[tuple(slice(a + o, b + o) for a, b, o in zip(lo, hi, offset))]
    np.testing.assert_array_equal(ours, ref[tuple(slice(a, b) for a, b in zip(lo, hi))].astype(np.float32))
    assert patch.spacing == pytest.approx(tuple(spacing))


def test_linear_mask_interpolation_uses_a_half_volume_threshold():
    image, mask, *_ = _box_case((6, 6, 2))
    near = extract_patch(image, mask, modality="CT", patch_size=[32, 32, 16], spacing=[0.35, 0.4, 1.25])
    lin = extract_patch(image, mask, modality="CT", patch_size=[32, 32, 16], spacing=[0.35, 0.4, 1.25],
                        mask_interpolation="linear")
    physical = 6 * 0.7 * 6 * 0.8 * 2 * 2.5
    voxel = 0.35 * 0.4 * 1.25
    assert lin.mask.sum() * voxel == pytest.approx(physical, rel=0.35)
    assert near.mask.sum() * voxel == pytest.approx(physical, rel=0.35)
    assert not np.array_equal(near.mask, lin.mask)


def test_image_zscore_is_pyradiomics_normalize_over_the_whole_image():
    image, mask, arr, roi = _box_case((5, 6, 3))
    patch = extract_patch(image, mask, modality="MR", patch_size=[16, 16, 8], normalisation="image_zscore")
    expected = (arr[roi > 0] - arr.mean()) / arr.std(ddof=1)
    np.testing.assert_allclose(np.sort(patch.image[patch.mask > 0]), np.sort(expected), rtol=1e-5, atol=1e-6)


def test_percentile_scaling_and_none():
    image, mask, arr, roi = _box_case((5, 6, 3))
    lo, hi = np.percentile(arr, [2, 98])
    patch = extract_patch(image, mask, modality="MR", patch_size=[16, 16, 8], normalisation="percentile",
                          percentiles=(2, 98))
    np.testing.assert_allclose(np.sort(patch.image[patch.mask > 0]), np.sort((arr[roi > 0] - lo) / (hi - lo)),
                               rtol=1e-5, atol=1e-6)
    raw = extract_patch(image, mask, modality="MR", patch_size=[16, 16, 8], normalisation="none")
    np.testing.assert_array_equal(np.sort(raw.image[raw.mask > 0]), np.sort(arr[roi > 0]).astype(np.float32))


def test_auto_normalisation_per_modality():
    assert resolve_normalisation("auto", "CT") == "none"
    assert resolve_normalisation("auto", "MR") == "image_zscore"
    assert resolve_normalisation("roi_zscore", "CT") == "roi_zscore"
    with pytest.raises(ConfigError, match="preprocess.normalisation"):
        resolve_normalisation("histogram", "MR")


def test_resegment_range_removes_roi_voxels_outside_it():
    image, mask, arr, roi = _box_case((6, 6, 3))
    patch = extract_patch(image, mask, modality="CT", patch_size=[16, 16, 8], resegment_range=[-50, 100])
    values = arr[roi > 0]
    assert patch.mask.sum() == ((values >= -50) & (values <= 100)).sum()
    assert patch.image[patch.mask > 0].min() >= -50 and patch.image[patch.mask > 0].max() <= 100
    with pytest.raises(ValueError, match="resegment_range"):
        extract_patch(image, mask, modality="CT", patch_size=[16, 16, 8], resegment_range=[500, 600])


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
    opts = patch_options(load_config("config/phantom.yaml")["preprocess"])
    tables, arrays = zip(*(preprocess_batch(cohort, b, 3, mask_label=None, **opts) for b in range(3)))
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


def test_build_index_refuses_mixed_orientations():
    t = pd.DataFrame({"case_id": ["a", "b", "c"], "spacing": ["1x1x2"] * 3, "orientation": ["LPS", "RAS", "LPS"]})
    with pytest.raises(ConfigError, match=r"case 'b' RAS.*preprocess.orientation: LPS"):
        build_index([t])
    assert len(build_index([t.assign(orientation="RAS")])) == 3
    assert len(build_index([t.assign(orientation=np.nan)])) == 3  # 2D: no orientation (empty in the CSV)


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
