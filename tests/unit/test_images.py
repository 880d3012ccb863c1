import numpy as np
import pytest
import SimpleITK as sitk

from radaug.images import read_image


def _write_dicom_series(folder, volume, spacing=(0.8, 0.8, 2.5), rescale=None):
    """Write a (z, y, x) int16 volume as a DICOM series (one file per slice).

    ``rescale=(slope, intercept)`` stores ``(value - intercept) / slope`` with those
    tags, as CT scanners store Hounsfield units.
    """
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
            **({"0028|1053": str(rescale[0]), "0028|1052": str(rescale[1])} if rescale else {}),
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


def test_dicom_ct_series_with_rescale_slope_and_intercept_reads_as_hounsfield_units(tmp_path):
    hu = (np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5) * 20 - 1000).astype(np.int16)
    _write_dicom_series(tmp_path / "series", hu, rescale=(2, -1024))
    stored = np.frombuffer((tmp_path / "series" / "slice000.dcm").read_bytes()[-2 * 30:], dtype="<u2")
    np.testing.assert_array_equal(stored, (hu[0].ravel() + 1024) // 2)  # the file holds scanner values
    image = read_image(tmp_path / "series", pixel_type=None)  # as preprocessing reads it
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), hu)  # slope and intercept applied


def test_folder_without_dicom(tmp_path):
    with pytest.raises(OSError, match="without a DICOM series"):
        read_image(tmp_path)


def test_single_slice_volume_is_2d(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((1, 7, 9), np.float32)), str(tmp_path / "s.nii.gz"))
    assert read_image(tmp_path / "s.nii.gz").GetDimension() == 2
