import numpy as np
import pytest
from scipy import stats

from radaug.augment import RandomRicianNoise, RicianNoise, rician_mean, transform_from_record


@pytest.mark.parametrize("amplitude, sigma", [(0.0, 1.0), (1.0, 1.0), (3.0, 1.5), (20.0, 2.0)])
def test_sample_mean_matches_the_rician_mean(amplitude, sigma):
    shape = (200, 200)
    image, _ = RicianNoise(sigma, seed=11)(np.full(shape, amplitude, np.float32), np.zeros(shape, np.uint8), (1, 1))
    # scipy's Rice distribution: b = A/sigma, scale = sigma; its mean and SD are independent of our formula.
    expected = stats.rice.mean(amplitude / sigma, scale=sigma)
    assert rician_mean(amplitude, sigma) == pytest.approx(expected, rel=1e-9)
    standard_error = stats.rice.std(amplitude / sigma, scale=sigma) / np.sqrt(image.size)
    assert abs(image.mean() - rician_mean(amplitude, sigma)) < 4 * standard_error


def test_rician_mean_limits():
    assert rician_mean(0.0, 2.0) == pytest.approx(2.0 * np.sqrt(np.pi / 2))  # Rayleigh
    assert rician_mean(1000.0, 1.0) == pytest.approx(np.sqrt(1000.0 ** 2 + 1.0), rel=1e-6)  # ~ sqrt(A^2 + s^2)


def test_target_snr_sets_sigma_and_background_is_kept():
    image = np.zeros((32, 32), np.float32) - 2.0  # background of a z-scored patch
    mask = np.zeros((32, 32), np.uint8)
    image[8:24, 8:24] = 8.0
    mask[8:24, 8:24] = 1
    twin, _ = RandomRicianNoise(20.0).sample(np.random.default_rng(0), image, mask, (1, 1))
    assert twin.params["sigma"] == pytest.approx(10.0 / 20.0)
    assert twin.params["background"] == -2.0
    out, out_mask = twin(image, mask, (1, 1))
    assert (out >= -2.0).all()  # a magnitude is never below the background
    np.testing.assert_array_equal(out_mask, mask)
    np.testing.assert_array_equal(out, transform_from_record(twin.record())(image, mask, (1, 1))[0])


@pytest.mark.parametrize("args", [(0.0,), (10.0, 5.0), (-1.0,)])
def test_invalid_snr(args):
    with pytest.raises(ValueError):
        RandomRicianNoise(*args)
