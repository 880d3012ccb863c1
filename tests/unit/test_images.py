import numpy as np
import pytest
import SimpleITK as sitk

from radaug.images import read_image


def _write_dicom_series(folder, volume, spacing=(0.8, 0.8, 2.5)):
    """Write a (z, y, x) int16 volume as a DICOM series (one file per slice)."""
    folder.mkdir()
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1"
    for z in range(volume.shape[0]):
        plane = image[:, :, z]
        for tag, value in {
            "0020|000e": series_uid, "0020|0013": str(z + 1), "0008|0060": "CT",
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, z)))),
            "0020|0037": "1\\0\\0\\0\\1\\0", "0018|0050": str(spacing[2]), "0028|0030": "0.8\\0.8",
        }.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(plane)


def test_dicom_series_folder(tmp_path):
    volume = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5)
    _write_dicom_series(tmp_path / "series", volume)
    image = read_image(tmp_path / "series")
    assert image.GetSize() == (5, 6, 4)
    assert image.GetSpacing() == pytest.approx((0.8, 0.8, 2.5))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.astype(np.float32))


def test_folder_without_dicom(tmp_path):
    with pytest.raises(OSError, match="without a DICOM series"):
        read_image(tmp_path)


def test_single_slice_volume_is_2d(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((1, 7, 9), np.float32)), str(tmp_path / "s.nii.gz"))
    assert read_image(tmp_path / "s.nii.gz").GetDimension() == 2
