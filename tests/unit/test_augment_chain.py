import numpy as np
import pytest

from radaug.augment import (GaussianBlur, RandomAffine, RandomChain, RandomGaussianBlur, RandomGaussianNoise,
                            apply_chain, check_ct_anchors)
from radaug.augment.gain import RandomGain
from radaug.augment.base import RandomTransform

from .augment_cases import disc_case

TOLERANCES = {"anchor_tolerance_hu": 10.0, "roi_tolerance_hu": 10.0}


def test_ct_anchors_hold_under_noise_and_mild_blur():
    image, mask = disc_case((64, 64), radius=10)
    chain = RandomChain([], [RandomGaussianBlur(0.5), RandomGaussianNoise(10.0)], modality="CT",
                        ct_tolerances=TOLERANCES)
    for seed in range(5):
        result = chain(image, mask, (1.0, 1.0), np.random.default_rng(seed))
        assert check_ct_anchors(image, result.image, mask, **TOLERANCES) == []
        assert np.median(result.image[image < -900]) == pytest.approx(-1000, abs=10)


def test_check_finds_a_global_rescaling():
    image, mask = disc_case((64, 64), radius=10)
    problems = check_ct_anchors(image, image * 1.05, mask, **TOLERANCES)
    assert any("air" in p for p in problems)  # -1000 HU -> -1050 HU


class _RandomHUShift(RandomTransform):
    """A photometric change that breaks HU half of the time (shift of 0 or 50 HU)."""

    def sample(self, rng, image, mask, spacing):
        from radaug.augment import Gain

        return Gain(1.0 + 0.05 * rng.integers(0, 2), background=0.0), 0


def test_implausible_photometric_draws_are_rejected_and_counted():
    image, mask = disc_case((64, 64), radius=10)
    chain = RandomChain([], [_RandomHUShift()], modality="CT", ct_tolerances=TOLERANCES)
    results = [chain(image, mask, (1, 1), np.random.default_rng(s)) for s in range(8)]
    assert sum(r.rejected.get("ct_anchors", 0) for r in results) > 0
    for r in results:
        assert r.chain[0]["gain"] == 1.0  # only the HU-preserving draw was accepted


def test_chain_replays_exactly_and_same_seed_same_output():
    image, mask = disc_case((32, 32))
    chain = RandomChain([RandomAffine()], [RandomGaussianBlur(0.5), RandomGaussianNoise(10)], modality="CT",
                        ct_tolerances=TOLERANCES)
    a = chain(image, mask, (1, 1), np.random.default_rng(9))
    b = chain(image, mask, (1, 1), np.random.default_rng(9))
    np.testing.assert_array_equal(a.image, b.image)
    assert a.chain == b.chain
    replay_image, replay_mask = apply_chain(a.chain, image, mask, (1, 1))
    np.testing.assert_array_equal(replay_image, a.image)
    np.testing.assert_array_equal(replay_mask, a.mask)
    assert [r["transform"] for r in a.chain] == ["Affine", "GaussianBlur", "GaussianNoise", "NormaliseIntensity"]


def test_roi_zscore_chain_ends_z_scored_in_the_roi():
    image, mask = disc_case((32, 32), background=0.0, body=100.0, value=300.0)
    result = RandomChain([], [], modality="MR", normalisation="roi_zscore")(image, mask, (1, 1),
                                                                            np.random.default_rng(0))
    assert result.image[mask > 0].mean() == pytest.approx(0, abs=1e-4)
    assert result.image[mask > 0].std() == pytest.approx(1, abs=1e-4)


def test_image_level_normalisation_keeps_the_augmented_intensities():
    """Real MR patches are z-scored over their whole image before cropping (image_zscore, the MR default);
    an augmented patch stays in that space, so a gain change survives instead of being normalised away."""
    image, mask = disc_case((32, 32), background=0.0, body=1.0, value=3.0)
    result = RandomChain([], [RandomGain(0.2)], modality="MR")(image, mask, (1, 1), np.random.default_rng(0))
    assert result.chain[-1] == {"transform": "NormaliseIntensity", "method": "image_zscore"}
    gain = result.chain[0]["gain"]
    background = result.chain[0]["background"]
    np.testing.assert_allclose(result.image, background + gain * (image - background), rtol=1e-6)


def test_unknown_record_refused():
    with pytest.raises(ValueError, match="unknown transform"):
        apply_chain([{"transform": "Teleport"}], np.zeros((4, 4)), np.zeros((4, 4)), (1, 1))


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="grid"):
        GaussianBlur(1.0)(np.zeros((4, 4)), np.zeros((4, 5)), (1, 1))
