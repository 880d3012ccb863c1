"""The voxel-shuffled image control: what the shuffle keeps, what it destroys, its seeding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from radaug.validate.controls import (
    shuffle_control_patches,
    shuffle_roi_voxels,
    shuffle_seed,
    shuffled_sample_id,
)


def _lesion(shape=(32, 32), seed=0):
    """A smooth intensity ramp with a disc (ball in 3D) ROI: strong spatial structure inside."""
    grid = np.indices(shape, dtype=np.float32)
    image = grid.sum(axis=0) * 10.0 + np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
    centre = (np.array(shape) - 1) / 2
    mask = (((grid - centre.reshape(-1, *[1] * len(shape))) ** 2).sum(axis=0) <= (min(shape) / 3) ** 2)
    return image, mask.astype(np.uint8)


def _neighbour_difference(image, mask):
    """Mean absolute difference between ROI voxels and their ROI neighbours along the first axis."""
    both = mask[1:].astype(bool) & mask[:-1].astype(bool)
    return float(np.abs(image[1:] - image[:-1])[both].mean())


@pytest.mark.parametrize("shape", [(32, 32), (12, 16, 16)])
def test_shuffle_keeps_the_roi_histogram_outside_and_mask_and_destroys_texture(shape):
    image, mask = _lesion(shape)
    image_before, mask_before = image.copy(), mask.copy()
    shuffled = shuffle_roi_voxels(image, mask, seed=3)
    inside = mask.astype(bool)
    assert shuffled.shape == image.shape and shuffled.dtype == image.dtype
    np.testing.assert_array_equal(np.sort(shuffled[inside]), np.sort(image[inside]))  # same histogram
    np.testing.assert_array_equal(shuffled[~inside], image[~inside])  # outside untouched
    np.testing.assert_array_equal(image, image_before)  # inputs not modified
    np.testing.assert_array_equal(mask, mask_before)
    assert (shuffled[inside] != image[inside]).mean() > 0.9  # nearly every ROI voxel moved
    # a smooth ramp becomes noise: neighbours differ far more than before
    assert _neighbour_difference(shuffled, mask) > 3 * _neighbour_difference(image, mask)


def test_shuffle_is_seeded():
    image, mask = _lesion()
    np.testing.assert_array_equal(shuffle_roi_voxels(image, mask, 5), shuffle_roi_voxels(image, mask, 5))
    assert not np.array_equal(shuffle_roi_voxels(image, mask, 5), shuffle_roi_voxels(image, mask, 6))


def test_empty_roi_gives_an_unchanged_copy():
    image, _ = _lesion()
    shuffled = shuffle_roi_voxels(image, np.zeros(image.shape, np.uint8), seed=0)
    np.testing.assert_array_equal(shuffled, image)
    assert shuffled is not image


def test_non_binary_mask_counts_every_non_zero_voxel_as_roi():
    image, mask = _lesion()
    labelled = mask * 2  # a label map with value 2 inside
    np.testing.assert_array_equal(shuffle_roi_voxels(image, labelled, 1), shuffle_roi_voxels(image, mask, 1))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ"):
        shuffle_roi_voxels(np.zeros((4, 4)), np.zeros((4, 5)), seed=0)


@settings(max_examples=40, deadline=None)
@given(data=arrays(np.float32, (6, 7), elements=st.floats(-1000, 1000, width=32)),
       roi=arrays(np.bool_, (6, 7)), seed=st.integers(0, 2**32 - 1))
def test_shuffle_is_a_permutation_of_the_roi_for_any_image(data, roi, seed):
    shuffled = shuffle_roi_voxels(data, roi, seed)
    np.testing.assert_array_equal(np.sort(shuffled[roi]), np.sort(data[roi]))
    np.testing.assert_array_equal(shuffled[~roi], data[~roi])


def test_control_patches_do_not_depend_on_batching_or_order():
    cases = [_lesion(seed=s) for s in range(4)]
    ids = [f"case{s}" for s in range(4)]
    images, masks = np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases])
    sample_ids, shuffled, kept_masks = shuffle_control_patches(ids, images, masks, seed=7)
    assert list(sample_ids) == [shuffled_sample_id(i) for i in ids] == [f"shuffled-case{s}" for s in range(4)]
    np.testing.assert_array_equal(kept_masks, masks)
    # two batches, in another order: each case comes out the same
    for batch in ([3, 1], [2, 0]):
        _, part, _ = shuffle_control_patches([ids[i] for i in batch], images[batch], masks[batch], seed=7)
        np.testing.assert_array_equal(part, shuffled[batch])
    # each case has its own permutation, and the study seed changes them all
    assert len({shuffle_seed(7, i) for i in ids}) == len(ids)
    _, other_seed, _ = shuffle_control_patches(ids, images, masks, seed=8)
    assert all(not np.array_equal(a, b) for a, b in zip(other_seed, shuffled))


def test_control_patches_check_their_lengths():
    image, mask = _lesion()
    with pytest.raises(ValueError, match="2 case ids, 1 images"):
        shuffle_control_patches(["a", "b"], image[None], mask[None], seed=0)
    ids, images, masks = shuffle_control_patches([], np.zeros((0, 4, 4), np.float32), np.zeros((0, 4, 4)), 0)
    assert len(ids) == len(images) == len(masks) == 0
