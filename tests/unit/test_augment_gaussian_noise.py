import numpy as np
import pytest

from radaug.augment import GaussianNoise, RandomGaussianNoise, transform_from_record


def test_noise_has_the_recorded_sd_and_zero_mean():
    image = np.zeros((200, 200), np.float32)
    out, _ = GaussianNoise(12.0, seed=1)(image, np.zeros_like(image, np.uint8), (1, 1))
    assert out.std() == pytest.approx(12.0, rel=0.02)
    assert abs(out.mean()) < 4 * 12.0 / 200


def test_same_seed_same_noise_and_replay():
    image = np.zeros((16, 16), np.float32)
    mask = np.zeros((16, 16), np.uint8)
    twin, _ = RandomGaussianNoise(10.0).sample(np.random.default_rng(4), image, mask, (1, 1))
    assert 0 <= twin.params["sd"] <= 10.0
    np.testing.assert_array_equal(twin(image, mask, (1, 1))[0],
                                  transform_from_record(twin.record())(image, mask, (1, 1))[0])


def test_invalid():
    with pytest.raises(ValueError):
        GaussianNoise(-1.0, 0)
    with pytest.raises(ValueError):
        RandomGaussianNoise(-1.0)
