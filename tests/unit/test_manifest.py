"""Every class of bad manifest input gives a clear error naming the case."""
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug.errors import ManifestError
from radaug.manifest import read_manifest_table, validate_manifest

CLASSES = ["benign", "malignant"]


def _validate(table, base, **kw):
    return validate_manifest(table, base_dir=base, classes=CLASSES, **kw)


def test_valid_phantom_manifest(phantom_cohort):
    base, table = phantom_cohort
    cohort = _validate(read_manifest_table(base / "manifest.csv"), base)
    assert len(cohort) == len(table)
    assert cohort["image_sha256"].str.len().eq(64).all()
    assert cohort["dim"].eq(2).all()


def _write(path, array, spacing=(1.0, 1.0), origin=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    if origin:
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def small_case(tmp_path):
    img = np.random.default_rng(0).normal(size=(20, 20)).astype(np.float32)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 1
    _write(tmp_path / "img.nii.gz", img)
    _write(tmp_path / "mask.nii.gz", mask)
    rows = [{"case_id": f"c{i}", "patient_id": f"p{i}", "image": "img.nii.gz", "mask": "mask.nii.gz",
             "label": CLASSES[i % 2]} for i in range(4)]
    return tmp_path, pd.DataFrame(rows)


def _expect(table, base, pattern, **kw):
    with pytest.raises(ManifestError, match=pattern) as info:
        _validate(table, base, **kw)
    return str(info.value)


def test_missing_file(small_case):
    base, t = small_case
    t.loc[1, "image"] = "gone.nii.gz"
    _expect(t, base, r"case 'c1': image file .*gone.nii.gz does not exist")


def test_unreadable_image(small_case):
    base, t = small_case
    (base / "junk.nii.gz").write_bytes(b"not an image")
    t.loc[0, "image"] = "junk.nii.gz"
    _expect(t, base, r"case 'c0': image is unreadable")


def test_nan_voxels(small_case):
    base, t = small_case
    arr = np.ones((20, 20), np.float32)
    arr[3, 3] = np.nan
    _write(base / "nan.mha", arr)  # ITK's NIfTI reader turns NaN into 0; MetaImage keeps it
    t.loc[2, "image"] = "nan.mha"
    _expect(t, base, r"case 'c2': .*NaN or infinite")


@pytest.mark.parametrize("kwargs, field", [
    ({"spacing": (2.0, 1.0)}, "spacing"),
    ({"origin": (5.0, 0.0)}, "origin"),
])
def test_geometry_mismatch(small_case, kwargs, field):
    base, t = small_case
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 1
    _write(base / "m2.nii.gz", mask, **kwargs)
    t.loc[3, "mask"] = "m2.nii.gz"
    _expect(t, base, rf"case 'c3': image and mask geometry differ \({field}")


def test_mask_size_and_dimension_mismatch(small_case):
    base, t = small_case
    _write(base / "m3.nii.gz", np.ones((4, 20, 20), np.uint8), spacing=(1.0, 1.0, 1.0))
    t.loc[0, "mask"] = "m3.nii.gz"
    _expect(t, base, r"case 'c0': image and mask geometry differ \(size")


def test_empty_mask(small_case):
    base, t = small_case
    _write(base / "empty.nii.gz", np.zeros((20, 20), np.uint8))
    t.loc[1, "mask"] = "empty.nii.gz"
    _expect(t, base, r"case 'c1': mask .* is empty")


def test_multilabel_mask_needs_mask_label(small_case):
    base, t = small_case
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 2:5], mask[8:12, 8:12] = 1, 2
    _write(base / "multi.nii.gz", mask)
    t["mask"] = "multi.nii.gz"
    _expect(t, base, r"not binary .* set data.mask_label")
    assert len(_validate(t, base, mask_label=2)) == 4
    _expect(t, base, r"no voxel with data.mask_label = 3", mask_label=3)


def test_duplicate_ids_unknown_labels_and_mixed_patients(small_case):
    base, t = small_case
    t.loc[1, "case_id"] = "c0"
    t.loc[2, "label"] = "cancer"
    t.loc[3, "patient_id"] = "p0"  # p0 now has benign and malignant cases
    msg = _expect(t, base, r"3 problem")
    assert "case 'c0': case_id appears more than once" in msg
    assert "label 'cancer' is not one of" in msg
    assert "patient 'p0' has cases in several classes" in msg


def test_mixed_patients_allowed_when_configured(small_case):
    base, t = small_case
    t["patient_id"] = "p0"
    assert len(_validate(t, base, allow_mixed_patient_labels=True)) == 4


def test_single_class(small_case):
    base, t = small_case
    t["label"] = "benign"
    _expect(t, base, r"no case of class\(es\) \['malignant'\]")


def test_csv_problems(tmp_path):
    (tmp_path / "latin.csv").write_bytes("case_id,patient_id,image,label\nc\xe9,p,x,benign\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest_table(tmp_path / "latin.csv")
    (tmp_path / "cols.csv").write_text("case,image,label\n")
    with pytest.raises(ManifestError, match=r"lacks required column\(s\) \['case_id', 'patient_id'\]"):
        read_manifest_table(tmp_path / "cols.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest_table(tmp_path / "none.csv")


def test_png_is_read_as_grey(tmp_path):
    from PIL import Image

    rgb = np.zeros((12, 12, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "a.png")
    t = pd.DataFrame([{"case_id": f"c{i}", "patient_id": f"p{i}", "image": "a.png", "label": CLASSES[i % 2]}
                      for i in range(2)])
    cohort = _validate(t, tmp_path)
    assert cohort["dim"].tolist() == [2, 2]


def test_paths_inside_the_working_directory_are_stored_relative(small_case):
    base, t = small_case
    cohort = _validate(t, base, relative_to=base.parent)
    assert cohort["image"].iloc[0] == f"{base.name}/img.nii.gz"
    assert _validate(t, base)["image"].iloc[0] == str((base / "img.nii.gz").resolve())
