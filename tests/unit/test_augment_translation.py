import numpy as np
import pytest

from radaug.augment import RandomTranslation

from .augment_cases import disc_case


def test_shift_is_sub_voxel_and_identity_matrix():
    image, mask = disc_case((32, 32))
    twin, _ = RandomTranslation(0.5).sample(np.random.default_rng(2), image, mask, (0.8, 2.0))
    np.testing.assert_array_equal(np.array(twin.params["matrix"]), np.eye(2))
    shift = np.abs(np.array(twin.params["translation_mm"])) / np.array([0.8, 2.0])
    assert (shift <= 0.5).all()
    out_image, out_mask = twin(image, mask, (0.8, 2.0))
    assert abs(int(out_mask.sum()) - int(mask.sum())) <= 0.1 * mask.sum()


def test_padding_defaults_to_the_image_minimum():
    image, mask = disc_case((16, 16), background=-3.0)
    twin, _ = RandomTranslation(0.5).sample(np.random.default_rng(0), image, mask, (1, 1))
    assert twin.params["padding"] == float(image.min())
    with pytest.raises(ValueError):
        RandomTranslation(-0.1)
