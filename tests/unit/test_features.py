import numpy as np
import pandas as pd
import pytest

from radaug.errors import ConfigError
from radaug.features import META_COLUMNS, extract_patches, feature_columns, make_extractor

from ..conftest import REPO

PARAMS = REPO / "workflow/resources/radiomics_2d_ct.yaml"


def _meta(n):
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "case_id": "", "source": "synthetic",
                         "arm": "cvae", "repeat": 0, "fold": 1, "label": "benign"})


def _disc(radius, value=60.0, noise=10.0, seed=0):
    yy, xx = np.mgrid[:32, :32]
    mask = ((yy - 16) ** 2 + (xx - 16) ** 2 < radius**2).astype(np.uint8)
    image = np.random.default_rng(seed).normal(value, noise, size=(32, 32)).astype(np.float32)
    return image, mask


def test_features_of_known_shapes():
    small, big = _disc(5), _disc(10)
    images, masks = np.stack([small[0], big[0]]), np.stack([small[1], big[1]])
    features, failures = extract_patches(make_extractor(PARAMS), images, masks, (0.5, 0.5), _meta(2))
    assert failures.empty
    assert list(features.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)
    area = features["original_shape2D_PixelSurface"].to_numpy()
    np.testing.assert_allclose(area, masks.reshape(2, -1).sum(1) * 0.25)  # spacing is honoured
    assert features["original_firstorder_Mean"].to_numpy() == pytest.approx([60, 60], abs=4)
    assert len(feature_columns(features)) > 80


def test_degenerate_mask_is_recorded_not_fatal():
    good = _disc(8)
    bad_mask = np.zeros((32, 32), np.uint8)
    bad_mask[3, 3] = 1  # one voxel: below minimumROISize
    features, failures = extract_patches(make_extractor(PARAMS), np.stack([good[0], good[0]]),
                                         np.stack([good[1], bad_mask]), (1.0, 1.0), _meta(2))
    assert features["sample_id"].tolist() == ["s0"]
    assert failures["sample_id"].tolist() == ["s1"] and failures["reason"].iloc[0]


def test_params_rejected_by_pyradiomics(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("setting:\n  binWidth: -3\n  notASetting: 1\n")
    with pytest.raises(ConfigError, match="features.params"):
        make_extractor(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        make_extractor(tmp_path / "none.yaml")


def test_itk_threads_leave_features_unchanged_and_are_restored():
    """The single-thread ITK speed-up gives the same values as PyRadiomics at ITK's default threads."""
    import SimpleITK as sitk

    from radaug.data.phantom import phantom_case
    from radaug.features import itk_threads

    rng = np.random.default_rng(4)
    cases = [phantom_case(rng, label, "fine", dim=2, size=48) for label in ("benign", "malignant", "benign")]
    images = np.stack([c[0] for c in cases]).astype(np.float32)
    masks = np.stack([(c[1] > 0).astype(np.uint8) for c in cases])
    extractor = make_extractor(PARAMS)
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    plain = []  # the code path without any thread setting: PyRadiomics on ITK's default thread count
    for image, mask in zip(images, masks):
        img = sitk.GetImageFromArray(image)
        msk = sitk.GetImageFromArray(mask)
        msk.CopyInformation(img)
        plain.append({k: float(v) for k, v in extractor.execute(img, msk).items() if k.startswith("original_")})
    plain = pd.DataFrame(plain)
    for threads in (1, 3):
        features, failures = extract_patches(extractor, images, masks, (1.0, 1.0), _meta(3), threads=threads)
        assert failures.empty
        pd.testing.assert_frame_equal(features[list(plain.columns)], plain, check_exact=True)
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
    with pytest.raises(ValueError, match="at least 1"), itk_threads(0):
        pass


def test_write_extraction_tolerates_up_to_max_failed_and_writes_nothing_beyond(tmp_path):
    from radaug.errors import RadaugError
    from radaug.features import write_extraction

    features = pd.DataFrame({"sample_id": ["a"], "original_firstorder_Mean": [1.0]})
    failures = pd.DataFrame({"sample_id": ["b", "c"], "reason": ["ValueError: empty ROI", "ValueError: 1 voxel"]})
    paths = {"features_path": tmp_path / "f.csv", "failures_path": tmp_path / "f.failures.csv"}
    write_extraction(features, failures, **paths, max_failed=2, what="samples", fix="Do X.")
    pd.testing.assert_frame_equal(pd.read_csv(paths["features_path"]), features, check_dtype=False)
    paths = {"features_path": tmp_path / "g.csv", "failures_path": tmp_path / "g.failures.csv"}
    with pytest.raises(RadaugError, match=r"failed for 2 samples, more than study.max_failed_samples = 1 "
                                          r"\(first reasons: b: ValueError: empty ROI; c: .*\)\. Do X\."):
        write_extraction(features, failures, **paths, max_failed=1, what="samples", fix="Do X.")
    assert not paths["features_path"].exists() and paths["failures_path"].exists()
