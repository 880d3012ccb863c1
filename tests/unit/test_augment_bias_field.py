import numpy as np
import pytest

from radaug.augment import BiasField, RandomBiasField
from radaug.augment.bias_field import bias_field, polynomial_terms


def test_field_is_smooth_positive_and_one_at_zero_coefficients():
    assert len(polynomial_terms(2, 2)) == 5 and len(polynomial_terms(3, 2)) == 9
    np.testing.assert_allclose(bias_field((8, 9), np.zeros(5), 2), 1.0)
    field = bias_field((8, 9, 10), np.full(9, 0.3), 2)
    assert field.shape == (8, 9, 10) and (field > 0).all()
    # Smooth by construction: log field is a polynomial of degree 2, so third differences vanish on every axis.
    for axis in range(3):
        np.testing.assert_allclose(np.diff(np.log(field), n=3, axis=axis), 0, atol=1e-9)


def test_linear_x_term_follows_numpy_axis_order():
    terms = polynomial_terms(2, 2)
    x_only = [i for i, (ex, ey) in enumerate(terms) if ex == 1 and ey == 0][0]
    coefficients = np.zeros(5)
    coefficients[x_only] = 1.0
    field = bias_field((4, 6), coefficients, 2)
    assert (np.diff(field, axis=1) > 0).all()  # grows along x = the last numpy axis
    np.testing.assert_allclose(np.diff(field, axis=0), 0)


def test_background_is_unchanged():
    image = np.full((8, 8), -1.5, np.float32)
    image[2:6, 2:6] = 2.0
    twin, _ = RandomBiasField(0.3).sample(np.random.default_rng(0), image, image > 0, (1, 1))
    out, _ = twin(image, (image > 0).astype(np.uint8), (1, 1))
    np.testing.assert_allclose(out[image == -1.5], -1.5)
    assert not np.allclose(out, image)


def test_invalid():
    with pytest.raises(ValueError):
        RandomBiasField(-0.1)
    with pytest.raises(ValueError):
        RandomBiasField(0.1, order=0)
    with pytest.raises(ValueError, match="coefficients"):
        BiasField([0.1], 2)(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), (1, 1))
