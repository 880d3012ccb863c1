import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radaug.augment import RandomVolumeAdaptation, VolumeAdaptation

from .augment_cases import disc_case


@settings(max_examples=30, deadline=None)
@given(fraction=st.floats(-0.5, 0.5))
def test_volume_changes_by_the_fraction_and_the_roi_grows_outward(fraction):
    image, mask = disc_case((40, 40), radius=8)
    out_image, out_mask = VolumeAdaptation(fraction)(image, mask, (0.8, 1.2))
    assert out_mask.sum() == round(mask.sum() * (1 + fraction))
    np.testing.assert_array_equal(out_image, image)
    if fraction >= 0:
        assert (out_mask >= mask).all()  # a dilation keeps the original ROI
    else:
        assert (out_mask <= mask).all()  # an erosion stays inside it


def test_invalid_and_empty():
    with pytest.raises(ValueError):
        VolumeAdaptation(-1.0)
    with pytest.raises(ValueError):
        RandomVolumeAdaptation(1.0)
    with pytest.raises(ValueError, match="empty"):
        VolumeAdaptation(0.1)(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), (1, 1))
