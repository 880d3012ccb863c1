import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radaug.augment import Affine, RandomAffine, affine_matrix, transform_from_record

from .augment_cases import disc_case


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.0, 0.4), limit=st.floats(0.02, 0.3))
def test_every_accepted_affine_respects_the_volume_bound(seed, scale, limit):
    image, mask = disc_case((16, 16))
    twin, rejected = RandomAffine(rotation_deg=30, scale=scale, shear=0.1, max_volume_change=limit,
                                  max_attempts=1000).sample(np.random.default_rng(seed), image, mask, (1.0, 1.0))
    assert abs(np.linalg.det(np.array(twin.params["matrix"])) - 1) <= limit
    assert rejected >= 0


def test_rejections_are_counted():
    image, mask = disc_case((16, 16))
    random_affine = RandomAffine(scale=0.5, max_volume_change=0.02, max_attempts=10_000)
    rejected = [random_affine.sample(np.random.default_rng(s), image, mask, (1.0, 1.0))[1] for s in range(20)]
    assert sum(rejected) > 0  # scales ~ U(0.5, 1.5) per axis rarely give |det - 1| <= 0.02


@settings(max_examples=25, deadline=None)
@given(scales=st.tuples(st.floats(0.8, 1.2), st.floats(0.8, 1.2)), angle=st.floats(-30, 30),
       shear=st.floats(-0.1, 0.1))
def test_mask_stays_binary_and_its_volume_follows_det(scales, angle, shear):
    image, mask = disc_case((96, 96), radius=25)
    matrix = affine_matrix([angle], scales, [shear])
    out_image, out_mask = Affine(matrix, [0.0, 0.0], padding=-1000)(image, mask, (0.7, 0.7))
    assert set(np.unique(out_mask)) <= {0, 1}
    ratio = out_mask.sum() / mask.sum()
    # Nearest-neighbour error lives on the border: about perimeter/area = 2/r of the volume at most.
    assert ratio == pytest.approx(np.linalg.det(matrix), abs=2 / 25)


def test_3d_anisotropic_volume_follows_det():
    image, mask = disc_case((32, 40, 40), radius=10)
    matrix = affine_matrix([5, -4, 10], [1.1, 0.95, 1.05], [0.03, -0.02, 0.04])
    _, out_mask = Affine(matrix, [0.5, -0.5, 1.0])(image, mask, (0.8, 0.8, 1.5))
    assert out_mask.sum() / mask.sum() == pytest.approx(np.linalg.det(matrix), abs=0.05)


def test_padding_is_air_for_ct():
    image, mask = disc_case((32, 32))
    out, _ = Affine(np.eye(2), [20.0, 0.0], padding=-1000.0)(image, mask, (1.0, 1.0))
    assert (out[:, :15] == -1000.0).all()  # the left columns come from outside the patch


def test_same_seed_same_output_and_record_replays():
    image, mask = disc_case((32, 32))
    draws = [RandomAffine(interpolation="bspline").sample(np.random.default_rng(5), image, mask, (1.0, 2.0))[0]
             for _ in range(2)]
    assert draws[0].record() == draws[1].record()
    first = draws[0](image, mask, (1.0, 2.0))
    again = transform_from_record(draws[0].record())(image, mask, (1.0, 2.0))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


@pytest.mark.parametrize("kwargs", [{"rotation_deg": -1}, {"translation_mm": -1}, {"shear": -0.1}, {"scale": 1.0},
                                    {"max_volume_change": 0}, {"max_attempts": 0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        RandomAffine(**kwargs)


def test_singular_matrix_refused():
    with pytest.raises(ValueError, match="singular"):
        Affine([[1, 0], [0, 0]], [0, 0])


def test_unknown_interpolation_refused():
    image, mask = disc_case((16, 16))
    with pytest.raises(ValueError, match="interpolation"):
        Affine(np.eye(2), [0, 0], interpolation="cubic")(image, mask, (1, 1))


def test_exhausted_attempts_raise():
    image, mask = disc_case((16, 16))
    with pytest.raises(RuntimeError, match="scale"):
        RandomAffine(scale=0.9, max_volume_change=1e-9, max_attempts=3).sample(
            np.random.default_rng(0), image, mask, (1, 1))
