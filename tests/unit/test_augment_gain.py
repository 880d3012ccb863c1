import numpy as np
import pytest

from radaug.augment import Gain, RandomGain


def test_gain_scales_signal_above_background():
    image = np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32)
    out, _ = Gain(2.0, background=-1.0)(image, np.zeros((2, 2), np.uint8), (1, 1))
    np.testing.assert_allclose(out, [[-1.0, 1.0], [3.0, 7.0]])


def test_random_gain_bounds_and_background():
    image = np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32)
    twin, _ = RandomGain(0.1).sample(np.random.default_rng(0), image, image, (1, 1))
    assert 0.9 <= twin.params["gain"] <= 1.1 and twin.params["background"] == -1.0
    with pytest.raises(ValueError):
        RandomGain(1.0)
    with pytest.raises(ValueError):
        Gain(0.0)
