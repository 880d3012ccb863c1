import numpy as np
import pytest

from radaug.augment import ContourRandomisation, RandomContourRandomisation, transform_from_record

from .augment_cases import disc_case


def test_contour_moves_only_near_the_border_and_replays():
    image, mask = disc_case((48, 48), radius=12)
    twin, _ = RandomContourRandomisation(1.0, 2.0).sample(np.random.default_rng(0), image, mask, (1, 1))
    _, out = twin(image, mask, (1, 1))
    assert set(np.unique(out)) <= {0, 1}
    changed = out != mask
    assert changed.any()
    assert abs(int(out.sum()) - int(mask.sum())) < 0.3 * mask.sum()
    grids = np.meshgrid(*[np.arange(48) - 23.5] * 2, indexing="ij")
    radius = np.hypot(*grids)
    assert np.all(np.abs(radius[changed] - 12) < 6)  # within a few amplitudes of the border
    np.testing.assert_array_equal(out, transform_from_record(twin.record())(image, mask, (1, 1))[1])


def test_zero_amplitude_is_identity():
    image, mask = disc_case((24, 24), radius=6)
    np.testing.assert_array_equal(ContourRandomisation(0.0, 2.0, 1)(image, mask, (1, 1))[1], mask)


def test_tiny_roi_never_vanishes():
    image = np.zeros((16, 16), np.float32)
    mask = np.zeros((16, 16), np.uint8)
    mask[8, 8] = 1
    _, out = ContourRandomisation(5.0, 1.0, 3)(image, mask, (1, 1))
    assert out.sum() >= 1


def test_invalid():
    with pytest.raises(ValueError):
        ContourRandomisation(-1.0, 1.0, 0)
    with pytest.raises(ValueError):
        RandomContourRandomisation(1.0, 0.0)
