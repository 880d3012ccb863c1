import numpy as np
import pytest

from radaug.augment import GaussianBlur, RandomGaussianBlur


def test_blur_keeps_uniform_regions_and_smooths_noise():
    rng = np.random.default_rng(0)
    image = (rng.normal(0, 10, size=(64, 64)) + 40).astype(np.float32)
    out, _ = GaussianBlur(1.0)(image, np.zeros_like(image, np.uint8), (0.5, 0.5))
    assert out.std() < image.std() / 2
    assert out.mean() == pytest.approx(image.mean(), abs=0.5)


def test_sigma_in_mm_respects_spacing_in_3d():
    image = np.zeros((9, 9, 9), np.float32)
    image[4, 4, 4] = 1.0
    out, _ = GaussianBlur(1.0)(image, np.zeros_like(image, np.uint8), (1.0, 1.0, 3.0))
    # z voxels are 3 mm apart: the spread along z (numpy axis 0) is smaller in voxels than along x.
    assert out[5, 4, 4] < out[4, 4, 5]


def test_zero_sigma_is_identity_and_draws_are_bounded():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(GaussianBlur(0.0)(image, np.zeros((4, 4), np.uint8), (1, 1))[0], image)
    twin, _ = RandomGaussianBlur(0.7).sample(np.random.default_rng(0), image, image, (1, 1))
    assert 0 <= twin.params["sigma_mm"] <= 0.7
    with pytest.raises(ValueError):
        RandomGaussianBlur(-0.1)
