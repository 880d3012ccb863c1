import numpy as np
import pytest

from radaug.errors import SamplingError
from radaug.sampling import (
    COULD_NOT_GENERATE, SAMPLING_COLUMNS, plausible_masks, rebalancing_quotas, rejection_reasons, sample_seeds,
    sample_with_quotas, shortfall_notes,
)


def test_quotas_balance_and_cap():
    assert rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=4) == {"no": 0, "yes": 256}
    assert rebalancing_quotas({"no": 320, "yes": 64}, target_ratio=1.0, cap_per_case=1) == {"no": 0, "yes": 64}
    assert rebalancing_quotas({"no": 100, "yes": 20}, target_ratio=0.5, cap_per_case=10) == {"no": 0, "yes": 30}


@pytest.mark.parametrize("kwargs", [{"target_ratio": 0}, {"target_ratio": 1.5}, {"cap_per_case": -1}])
def test_quota_arguments_validated(kwargs):
    with pytest.raises(ValueError):
        rebalancing_quotas({"a": 1, "b": 2}, **{"target_ratio": 1.0, "cap_per_case": 4, **kwargs})


def test_plausible_masks_rejects_empty_and_out_of_range():
    probs = np.zeros((3, 4, 4), np.float32)
    probs[1, :2, :2] = 0.9  # 4 voxels
    probs[2] = 0.8  # 16 voxels
    masks, ok = plausible_masks(probs, (2, 10))
    assert ok.tolist() == [False, True, False]
    assert set(np.unique(masks)) <= {0, 1}


class _Model:
    """Stand-in generator: mask size follows the seed, so some draws are rejected."""

    def sample(self, labels, seed):
        rng = np.random.default_rng(seed)
        image = rng.normal(size=(len(labels), 8, 8)).astype(np.float32)
        mask = np.zeros((len(labels), 8, 8), np.float32)
        mask[:, : rng.integers(0, 8), :4] = 1.0
        return image, mask


def test_sample_with_quotas_fills_quotas_reproducibly():
    args = dict(seed=1, fold="r0f0", model_name="m", max_attempts=50)
    ranges = {"a": (8, 24), "b": (8, 24)}
    first = sample_with_quotas(_Model(), {"a": 0, "b": 7}, ["a", "b"], ranges, **args)
    images, masks, records, sampling = first
    assert len(images) == 7 and all(r["label"] == "b" for r in records)
    counts = sampling.set_index("label")
    assert counts.loc["b", "rejected"] > 0  # masks of 0 or 4 voxels were redrawn
    assert counts.loc["b", "drawn"] == 7 + counts.loc["b", "rejected"] and not counts["short"].any()
    assert counts.loc["a", ["requested", "accepted", "drawn"]].tolist() == [0, 0, 0]
    again = sample_with_quotas(_Model(), {"a": 0, "b": 7}, ["a", "b"], ranges, **args)
    np.testing.assert_array_equal(np.stack(images), np.stack(again[0]))
    # each recorded seed reproduces its sample alone
    r = records[3]
    img, _ = _Model().sample(np.array([1]), seed=r["seed"])
    np.testing.assert_array_equal(img[0], images[3])


def test_sampling_gives_up_with_clear_message():
    with pytest.raises(SamplingError, match="plausible 'a' samples"):
        sample_with_quotas(_Model(), {"a": 5}, ["a"], {"a": (1000, 2000)}, seed=0, fold="r0f0",
                           model_name="m", max_attempts=3)


def test_sample_seeds_differ_by_coordinates():
    a = sample_seeds(0, "r0f0", "cvae", 1, 5, 0)
    assert len(set(a)) == 5
    assert not np.array_equal(a, sample_seeds(0, "r0f1", "cvae", 1, 5, 0))
    assert not np.array_equal(a, sample_seeds(0, "r0f0", "dcgan", 1, 5, 0))


def test_sampling_error_counts_rejections_per_reason_and_names_the_range():
    # _Model draws masks of 0-7 rows x 4 columns: empty (0 rows) or 4-28 voxels, all below 1000
    with pytest.raises(SamplingError) as caught:
        sample_with_quotas(_Model(), {"a": 5}, ["a"], {"a": (1000, 2000)}, seed=0, fold="r0f0",
                           model_name="m", max_attempts=3)
    message = str(caught.value)
    assert "ROI below range" in message and "[1000, 2000]" in message and "sampling.roi_size_slack" in message
    with pytest.raises(SamplingError, match="ROI above range"):
        sample_with_quotas(_Model(), {"a": 5}, ["a"], {"a": (1, 2)}, seed=0, fold="r0f0",
                           model_name="m", max_attempts=3)


def test_rejection_reasons_partition_the_rejected_masks():
    masks = np.zeros((4, 4, 4), np.uint8)
    masks[1, :1, :1] = 1  # 1 voxel: below
    masks[2, :2, :2] = 1  # 4 voxels: accepted
    masks[3] = 1  # 16 voxels: above
    counts = rejection_reasons(masks, (2, 10))
    assert counts == {"empty mask": 1, "ROI below range": 1, "ROI above range": 1}
    _, ok = plausible_masks(masks.astype(np.float32), (2, 10))
    assert sum(counts.values()) == int((~ok).sum())
    with pytest.raises(ValueError, match="low <= high"):
        rejection_reasons(masks, (10, 2))


class _MaskModel:
    """Stand-in mask-conditioned generator: the image is the given mask plus seeded noise."""

    def sample(self, labels, seed, masks=None):
        assert masks is not None and masks.shape == (len(labels), 8, 8)
        noise = np.random.default_rng(seed).normal(size=masks.shape).astype(np.float32)
        return masks + noise, masks.astype(np.float32)


class _Shapes:
    """Stand-in shape model: a square whose side follows the seed; origin names a parent."""

    def sample(self, label, seed):
        side = int(np.random.default_rng([seed, 1]).integers(1, 8))
        mask = np.zeros((8, 8), np.uint8)
        mask[:side, :side] = 1
        return mask, {"mask_origin": "deformed", "parent_case_id": f"{label}-{side}", "mask_record": "{}",
                      "shape_model_sha256": "abc"}


def test_sample_with_quotas_passes_shape_model_masks_and_records_their_origin():
    args = dict(seed=2, fold="r0f0", model_name="m", max_attempts=50, shapes=_Shapes())
    images, masks, records, sampling = sample_with_quotas(_MaskModel(), {"a": 6}, ["a"], {"a": (9, 36)}, **args)
    rejected = sampling.set_index("label").loc["a", "rejected"]
    assert len(records) == 6 and rejected > 0  # squares of side 1-2 were rejected and redrawn
    for image, mask, record in zip(images, masks, records):
        side = int(np.sqrt(mask.sum()))
        assert record["parent_case_id"] == f"a-{side}" and record["shape_model_sha256"] == "abc"
        assert record["roi_voxels"] == mask.sum()
        # the recorded seed reproduces mask and image together
        again_mask, _ = _Shapes().sample("a", record["seed"])
        again_image, _ = _MaskModel().sample(np.array([0]), seed=record["seed"], masks=again_mask[None])
        np.testing.assert_array_equal(again_mask, mask)
        np.testing.assert_array_equal(again_image[0], image)


class _EmptyMaskModel:
    """A generator that has learnt nothing: every mask it draws is empty."""

    def sample(self, labels, seed):
        image = np.random.default_rng(seed).normal(size=(len(labels), 8, 8)).astype(np.float32)
        return image, np.full((len(labels), 8, 8), 0.2, np.float32)  # probabilities below 0.5


def test_a_generator_of_empty_masks_records_its_shortfall_with_reasons():
    images, masks, records, sampling = sample_with_quotas(
        _EmptyMaskModel(), {"a": 0, "b": 4}, ["a", "b"], {"a": (4, 20), "b": (4, 20)}, seed=0, fold="r0f1",
        model_name="cvae", max_attempts=3, on_shortfall="record")
    assert images == [] and masks == [] and records == []
    assert list(sampling.columns) == list(SAMPLING_COLUMNS)
    b = sampling.set_index("label").loc["b"]
    # each of the 3 rounds redraws the 4 missing samples, all rejected as empty
    assert (b["requested"], b["accepted"], b["drawn"], b["rejected"]) == (4, 0, 12, 12)
    assert b["rejected_empty_mask"] == 12 and b["rejected_roi_below_range"] == b["rejected_roi_above_range"] == 0
    assert b["short"] and "12 empty mask" in b["reasons"] and "[4, 20]" in b["reasons"]
    assert not sampling.set_index("label").loc["a", "short"]  # a quota of 0 is never short

    # the arms the generator is part of could not generate, and the note says why; other arms are not named
    notes = shortfall_notes(sampling.assign(model="cvae", fold="r0f1"), ["real", "cvae", "classical+cvae", "dcgan"])
    assert set(notes) == {"cvae", "classical+cvae"}
    assert notes["cvae"].startswith(COULD_NOT_GENERATE)
    assert "'b' in r0f1: 0 of 4 plausible samples (12 drawn; rejected: 12 empty mask" in notes["cvae"]
    assert shortfall_notes(sampling.iloc[:0].assign(model="cvae", fold="r0f1"), ["cvae"]) == {}


def test_a_partial_shortfall_keeps_the_plausible_samples():
    # _Model's masks are 0-28 voxels: within (20, 28) only a few draws pass, so 30 cannot be filled in 2 rounds
    images, _, records, sampling = sample_with_quotas(
        _Model(), {"a": 30}, ["a"], {"a": (20, 28)}, seed=0, fold="r0f0", model_name="m", max_attempts=2,
        on_shortfall="record")
    a = sampling.set_index("label").loc["a"]
    assert 0 < a["accepted"] == len(images) == len(records) < 30 and a["short"]
    assert a["rejected"] == a["rejected_empty_mask"] + a["rejected_roi_below_range"] + a["rejected_roi_above_range"]
    assert a["drawn"] == a["accepted"] + a["rejected"]


def test_on_shortfall_stop_raises_naming_the_reasons():
    with pytest.raises(SamplingError) as caught:
        sample_with_quotas(_EmptyMaskModel(), {"a": 2}, ["a"], {"a": (4, 20)}, seed=0, fold="r0f0",
                           model_name="cvae", max_attempts=2, on_shortfall="stop")
    message = str(caught.value)
    assert "only 0 of 2 plausible 'a' samples after 2 rounds" in message
    assert "4 rejected: 4 empty mask" in message and "sampling.on_shortfall" in message
    with pytest.raises(ValueError, match="on_shortfall"):
        sample_with_quotas(_EmptyMaskModel(), {"a": 2}, ["a"], {"a": (4, 20)}, seed=0, fold="r0f0",
                           model_name="cvae", on_shortfall="ignore")


def test_quotas_fill_every_smaller_class_towards_the_largest():
    """Issue 23: K classes, the same target_ratio and cap_per_case rule for each."""
    counts = {"grade1": 40, "grade2": 25, "grade3": 10, "grade4": 2}
    assert rebalancing_quotas(counts, target_ratio=1.0, cap_per_case=4) == {"grade1": 0, "grade2": 15, "grade3": 30, "grade4": 8}
    assert rebalancing_quotas(counts, target_ratio=0.5, cap_per_case=10) == {
        "grade1": 0, "grade2": 0, "grade3": 10, "grade4": 18}
