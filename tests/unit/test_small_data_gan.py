"""Small-data GAN switches: DiffAugment transforms, R1 penalty, generator weight averaging."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radaug.generative import get_model, load_model
from radaug.generative.small_data import (
    CUTOUT_RATIO,
    MASK_BACKGROUND,
    TRANSLATION_RATIO,
    diff_augment,
    parse_policy,
    ema_decay,
    r1_penalty,
    update_average,
)
from radaug.io import sha256_file

from .test_generative_conformance import FIT, SIZE, TINY, phantom_patches

SWITCHES = {"diffaugment": "color,translation,cutout", "r1_gamma": 10.0, "ema_beta": 0.9}


def _patches(n=6, dims=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand((n, 1) + (SIZE,) * dims, generator=g) * 2 - 1
    mask = (torch.rand((n, 1) + (SIZE,) * dims, generator=g) > 0.5).float() * 2 - 1
    return torch.cat([image, mask], dim=1)


def test_policy_parsing():
    assert parse_policy("") == ()
    assert parse_policy("color, translation,cutout") == ("brightness", "contrast", "translation", "cutout")
    assert parse_policy("brightness,color") == ("brightness", "contrast")
    with pytest.raises(ValueError, match="unknown transform 'saturation'"):
        parse_policy("color,saturation")
    with pytest.raises(ValueError, match="comma-separated"):
        parse_policy(["color"])


def test_photometric_transforms_touch_the_image_channel_only():
    x = _patches()
    rng = torch.Generator().manual_seed(1)
    bright = diff_augment(x, ("brightness",), rng)
    shift = (bright[:, 0] - x[:, 0]).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one constant per sample
    assert shift.abs().max() <= 0.5 and shift[:, 0].std() > 0
    contrast = diff_augment(x, ("contrast",), rng)
    assert torch.allclose(contrast[:, 0].mean(dim=(1, 2)), x[:, 0].mean(dim=(1, 2)), atol=1e-5)
    ratio = (contrast[:, 0] - contrast[:, 0].mean(dim=(1, 2), keepdim=True)).std(dim=(1, 2)) / x[:, 0].std(dim=(1, 2))
    assert ((ratio >= 0.5 - 1e-5) & (ratio <= 1.5 + 1e-5)).all()
    for out in (bright, contrast):
        assert torch.equal(out[:, 1], x[:, 1])


@pytest.mark.parametrize("dims", [2, 3])
def test_translation_shifts_image_and_mask_together_padding_the_mask_with_background(dims):
    # The image is padded with 0 (the reference's fill), the mask with background: a 0 in the
    # mask channel (probability 0.5) is a value no real mask has, and it leaked into the
    # generator's masks on the phantom (small_data module docstring).
    x = _patches(n=5, dims=dims) + 3.0  # no 0 or -1 in the input: the fill is recognisable
    out = diff_augment(x, ("translation",), torch.Generator().manual_seed(2))
    reach = int(SIZE * TRANSLATION_RATIO + 0.5)
    moved = 0
    for before, after in zip(x, out):
        matches = []
        for shift in np.ndindex(*(2 * reach + 1,) * dims):
            shift = tuple(s - reach for s in shift)
            expected = torch.zeros_like(before)
            expected[1] = MASK_BACKGROUND
            src = tuple(slice(max(0, -s), SIZE - max(0, s)) for s in shift)
            dst = tuple(slice(max(0, s), SIZE - max(0, -s)) for s in shift)
            expected[(slice(None), *dst)] = before[(slice(None), *src)]
            if torch.equal(after, expected):
                matches.append(shift)
        assert len(matches) == 1, "each sample is one integer shift within the reach"
        moved += any(matches[0])
    assert moved >= 3


@pytest.mark.parametrize("dims", [2, 3])
def test_cutout_zeroes_one_box_of_half_the_side_in_the_image_channel_only(dims):
    # A box cut out of the mask would make real lesions holed or empty (or, zero-filled,
    # probability 0.5), which the discriminator would then accept from the generator.
    x = _patches(n=8, dims=dims) + 3.0
    out = diff_augment(x, ("cutout",), torch.Generator().manual_seed(3))
    side = int(SIZE * CUTOUT_RATIO + 0.5)
    assert torch.equal(out[:, 1], x[:, 1]), "the mask channel is never cut"
    for before, after in zip(x, out):
        zero = after[0] == 0
        kept = ~zero
        assert torch.equal(after[0][kept], before[0][kept])
        idx = torch.nonzero(zero)
        extent = (idx.max(dim=0).values - idx.min(dim=0).values + 1)
        assert int(zero.sum()) == int(extent.prod()) and (extent <= side).all()  # one box, clipped at borders
    assert (out[:, 0] == 0).flatten(1).sum(dim=1).float().mean() > side**dims / 4


def test_augmentation_is_differentiable_and_seeded():
    x = _patches().requires_grad_(True)
    policy = parse_policy("color,translation,cutout")
    out = diff_augment(x, policy, torch.Generator().manual_seed(5))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x.detach(), policy, torch.Generator().manual_seed(5))
    assert torch.equal(out.detach(), again)
    assert not torch.equal(again, diff_augment(x.detach(), policy, torch.Generator().manual_seed(6)))
    assert diff_augment(x, (), torch.Generator()) is x


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    w = torch.randn(2, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    x = _patches().requires_grad_(True)
    outputs = (x * w).flatten(1).sum(dim=1)
    assert torch.isclose(r1_penalty(outputs, x), w.square().sum(), rtol=1e-5)
    assert torch.isclose(r1_penalty(outputs, x, scale=1024.0), w.square().sum(), rtol=1e-5)


def test_moving_average_decay_warms_up_to_beta():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)  # the first update moves the average 90% of the way
    assert ema_decay(0.999, 90) == pytest.approx(0.91)
    assert ema_decay(0.999, 10_000) == 0.999
    assert ema_decay(0.5, 20) == 0.5


def test_moving_average_update():
    live, average = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        live.weight.fill_(2.0)
        live.running_mean.fill_(5.0)
    update_average(average, live, 0.75)
    assert torch.allclose(average.weight, torch.full((3,), 1.25))  # 0.75 * 1 + 0.25 * 2
    assert torch.equal(average.running_mean, live.running_mean)


def test_switches_are_recorded_only_when_on_and_validated():
    plain = get_model("dcgan", patch_size=SIZE, n_classes=2, **TINY)
    assert not {"diffaugment", "r1_gamma", "ema_beta"} & set(plain.hyperparams)
    assert set(plain.nets) == {"generator", "discriminator"}
    on = get_model("lsgan", patch_size=SIZE, n_classes=2, **TINY, **SWITCHES)
    assert on.hyperparams["diffaugment"] == "brightness,contrast,translation,cutout"
    assert on.hyperparams["r1_gamma"] == 10.0 and on.hyperparams["ema_beta"] == 0.9
    for kwargs, match in [({"ema_beta": 1.0}, "below 1"), ({"r1_gamma": -1.0}, "r1_gamma"),
                          ({"diffaugment": "saturation"}, "unknown transform")]:
        with pytest.raises(ValueError, match=match):
            get_model("dcgan", patch_size=SIZE, n_classes=2, **TINY, **kwargs)


@pytest.mark.parametrize("name,dims", [("dcgan", 3), ("wgan_gp", 2)])
def test_gan_with_every_switch_trains_resumes_and_samples_from_the_average(name, dims, tmp_path):
    _, images, masks, labels = phantom_patches(dims, n=8)

    def make():
        return get_model(name, patch_size=SIZE, n_classes=2, spatial_dims=dims, **TINY, **SWITCHES)

    full = make()
    log = full.fit(images, masks, labels, steps=6, seed=2, **FIT)
    assert {"r1", "loss_d", "loss_g"} <= set(log.columns) and np.isfinite(log.drop(columns="step")).all().all()
    full.save(tmp_path / "full.pt")

    # interrupted after 3 steps and resumed: the same model, byte for byte
    part = make()
    part.fit(images, masks, labels, steps=3, seed=2, checkpoint_path=tmp_path / "ckpt.pt", checkpoint_every=3, **FIT)
    resumed = make()
    resumed.fit(images, masks, labels, steps=6, seed=2, checkpoint_path=tmp_path / "ckpt.pt", **FIT)
    resumed.save(tmp_path / "resumed.pt")
    assert sha256_file(tmp_path / "full.pt") == sha256_file(tmp_path / "resumed.pt")

    live = full.nets["generator"].state_dict()
    average = full.nets["generator_ema"].state_dict()
    assert any(not torch.equal(live[k], average[k]) for k in live if live[k].is_floating_point())

    requested = np.array([0, 1, 1])
    images_out, _ = full.sample(requested, seed=7)
    loaded = load_model(tmp_path / "full.pt")
    np.testing.assert_array_equal(loaded.sample(requested, seed=7)[0], images_out)
    # the samples come from the averaged generator, not the live one
    full.nets["generator_ema"].load_state_dict(live)
    assert not np.array_equal(full.sample(requested, seed=7)[0], images_out)
