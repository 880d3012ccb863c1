"""Ground-truth tests of the diffusion parts of the ``ddpm`` model.

The interface contract (determinism, resume, persistence, 2D/3D, mask
conditioning) is checked by the family's conformance tests, which include
``ddpm`` through the registry. Here: the cosine schedule against the paper's
formula, the v/ε/x₀ conversions against each other, DDIM against its defining
identity (the true noise takes x_t back to x₀ in one step, and a whole sampler run
with an oracle network lands on x₀), and a toy that a conditional model must learn.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radaug.generative import get_model
from radaug.generative.ddpm import (
    DDPM,
    cosine_alpha_bar,
    ddim_step,
    ddim_timesteps,
    eps_from_x0,
    unet_widths,
    v_from_eps,
    x0_eps_from_v,
    x0_from_eps,
)


def test_cosine_schedule_matches_the_papers_formula():
    """Nichol & Dhariwal 2021, eq. 17: ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008."""
    T, s = 1000, 0.008
    alpha_bar = cosine_alpha_bar(T)

    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t) / f(0) for t in range(1, T + 1)])
    betas = 1 - alpha_bar / np.concatenate([[1.0], alpha_bar[:-1]])
    unclipped = betas < 0.999 - 1e-12
    assert unclipped[:-1].all() and not unclipped[-1]  # only the last β reaches the 0.999 clip at T = 1000
    np.testing.assert_allclose(alpha_bar[unclipped], expected[unclipped], rtol=1e-9, atol=1e-15)
    assert alpha_bar[0] == pytest.approx(1 - (1 - f(1) / f(0)), rel=1e-12) and alpha_bar[0] > 0.9999
    assert np.all(np.diff(alpha_bar) < 0) and 0 < alpha_bar[-1] < 1e-6
    assert betas.max() == pytest.approx(0.999)


def test_v_eps_and_x0_conversions_invert_each_other():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 2, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(6, 2, 8, 8, generator=gen, dtype=torch.float64)
    alpha_bar = torch.from_numpy(cosine_alpha_bar(1000)[[0, 10, 200, 500, 900, 998]])
    a = alpha_bar.view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = v_from_eps(x0, eps, alpha_bar)
    torch.testing.assert_close(v, a.sqrt() * eps - (1 - a).sqrt() * x0)
    x0_back, eps_back = x0_eps_from_v(x_t, v, alpha_bar)
    torch.testing.assert_close(x0_back, x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(eps_back, eps, rtol=0, atol=1e-12)
    torch.testing.assert_close(x0_from_eps(x_t, eps, alpha_bar), x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_from_x0(x_t, x0, alpha_bar), eps, rtol=0, atol=1e-9)


def test_ddim_with_the_true_noise_recovers_x0_and_stays_on_its_trajectory():
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 2, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(4, 2, 8, 8, generator=gen, dtype=torch.float64)
    schedule = torch.from_numpy(cosine_alpha_bar(1000))
    alpha_bar, alpha_bar_prev = schedule[[700] * 4], schedule[[300] * 4]
    a = alpha_bar.view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    x0_hat = x0_from_eps(x_t, eps, alpha_bar)
    # One step to ᾱ_prev = 1 is x₀ itself.
    torch.testing.assert_close(ddim_step(x0_hat, eps, alpha_bar, torch.ones(4, dtype=torch.float64), 0.0, None), x0,
                               rtol=0, atol=1e-9)
    # With η = 0 a step to an intermediate ᾱ keeps the same noise: x_prev = √ᾱ_prev x₀ + √(1-ᾱ_prev) ε.
    b = alpha_bar_prev.view(-1, 1, 1, 1)
    torch.testing.assert_close(ddim_step(x0_hat, eps, alpha_bar, alpha_bar_prev, 0.0, None),
                               b.sqrt() * x0 + (1 - b).sqrt() * eps, rtol=0, atol=1e-9)
    # With η = 1 the step adds σ z with the DDPM posterior's σ (Song et al. eq. 16).
    z = torch.randn(4, 2, 8, 8, generator=gen, dtype=torch.float64)
    sigma = ((1 - b) / (1 - a) * (1 - a / b)).sqrt()
    torch.testing.assert_close(ddim_step(x0_hat, eps, alpha_bar, alpha_bar_prev, 1.0, z),
                               b.sqrt() * x0 + (1 - b - sigma**2).sqrt() * eps + sigma * z, rtol=0, atol=1e-9)


def test_ddim_timesteps_span_the_schedule():
    steps = ddim_timesteps(1000, 50)
    assert len(steps) == 50 and steps[0] == 1000 and steps[-1] == 1 and np.all(np.diff(steps) < 0)
    assert list(ddim_timesteps(4, 4)) == [4, 3, 2, 1]


class _Oracle(torch.nn.Module):
    """A "network" that knows x₀ and returns the exact v (or ε) for any x_t: sampling must land on x₀."""

    def __init__(self, x0: torch.Tensor, alpha_bar: torch.Tensor, prediction: str) -> None:
        super().__init__()
        self.x0, self.alpha_bar, self.prediction = x0, alpha_bar, prediction

    def forward(self, inputs, t, labels):
        x_t = inputs[:, : self.x0.shape[1]]
        a = self.alpha_bar[t - 1].view(-1, *(1,) * (x_t.dim() - 1))
        x0 = self.x0.expand(len(x_t), *self.x0.shape[1:])
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * x0 if self.prediction == "v" else eps


@pytest.mark.parametrize(("prediction", "eta", "guidance"), [("v", 0.0, 0.3), ("eps", 0.0, 0.0), ("v", 1.0, 2.0)])
def test_sampler_with_an_oracle_network_returns_x0(prediction, eta, guidance):
    model = DDPM(16, 2, prediction=prediction, eta=eta, guidance_scale=guidance, sample_steps=8, ema_beta=0.0)
    x0 = torch.full((1, 2, 16, 16), -1.0)
    x0[0, 0] = torch.linspace(-0.9, 0.9, 256).view(16, 16)
    x0[0, 1, 4:12, 4:12] = 1.0
    model.nets["unet"] = _Oracle(x0, model._alpha_bar, prediction)
    z = torch.randn(3, *model._latent_shape(), generator=torch.Generator().manual_seed(0))
    assert z.shape == (3, 1 + (8 if eta else 0), 2, 16, 16)
    with torch.inference_mode():
        image, mask = model._generate(z, torch.tensor([0, 1, 1]))
    torch.testing.assert_close(image, x0[:, 0].expand(3, 16, 16), rtol=0, atol=1e-4)
    torch.testing.assert_close(mask, (x0[:, 1] > 0).float().expand(3, 16, 16), rtol=0, atol=0)


def test_unet_widths_and_invalid_hyperparameters():
    assert unet_widths(64, 16) == [16, 32, 64, 128]
    assert unet_widths(16, 4) == [4, 8]
    assert unet_widths(128, 8) == [8, 16, 32, 64, 64]
    defaults = get_model("ddpm", patch_size=32, n_classes=2).hyperparams
    assert {k: defaults[k] for k in ("prediction", "sample_steps", "eta", "diffusion_steps", "label_dropout")} == {
        "prediction": "v", "sample_steps": 50, "eta": 0.0, "diffusion_steps": 1000, "label_dropout": 0.1}
    for kwargs, match in [({"prediction": "x0"}, "prediction"), ({"sample_steps": 11, "diffusion_steps": 10},
                          "sample_steps"), ({"label_dropout": 1.0}, "label_dropout"),
                          ({"label_dropout": 0.0}, "label_dropout > 0"), ({"eta": 1.5}, "eta"),
                          ({"ema_beta": 1.0}, "ema_beta"), ({"guidance_scale": -1.0}, "guidance_scale")]:
        with pytest.raises(ValueError, match=match):
            get_model("ddpm", patch_size=32, n_classes=2, **kwargs)
    # Without label dropout, plain conditional sampling is allowed.
    assert get_model("ddpm", patch_size=32, n_classes=2, label_dropout=0.0, guidance_scale=0.0)


@pytest.fixture
def one_thread():
    """One torch thread for the duration (two threads on a loaded 2-core machine made the toy ~15x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_learns_a_two_class_toy_and_guidance_separates_the_classes(one_thread):
    """Class 0 patches are -100, class 1 patches +100 (plus noise), with one square ROI."""
    rng = np.random.default_rng(0)
    labels = np.arange(32) % 2
    images = (np.where(labels == 1, 100.0, -100.0)[:, None, None] + rng.normal(0, 5, (32, 16, 16))).astype(np.float32)
    masks = np.zeros((32, 16, 16), np.uint8)
    masks[:, 4:12, 4:12] = 1
    model = get_model("ddpm", patch_size=16, n_classes=2, base_channels=8, latent_dim=16, lr=2e-3, sample_steps=10,
                      guidance_scale=1.0)
    model.fit(images, masks, labels, steps=150, batch_size=8, seed=0, device="cpu", log=lambda message: None)
    generated, mask = model.sample(np.repeat([0, 1], 16), seed=1)
    gap = generated[16:].mean() - generated[:16].mean()
    assert gap > 0.5 * 200.0, gap
    assert generated[:16].mean() < 0 < generated[16:].mean()
    assert set(np.unique(mask)) <= {0.0, 1.0} and 0.5 * masks.mean() < mask.mean() < 2 * masks.mean()
