"""Conditional denoising diffusion model generating (image, mask) patches per class, or images for given masks.

A denoising diffusion probabilistic model (Ho, Jain & Abbeel 2020,
arXiv:2006.11239) over the same 2-channel patches in [-1, 1] as the other
models:

* **Forward process.** ``x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε`` over ``diffusion_steps``
  discrete steps with the cosine schedule of Nichol & Dhariwal 2021
  (arXiv:2102.09672): ``ᾱ_t = f(t) / f(0)``, ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``,
  ``s = 0.008``, each ``β_t = 1 - ᾱ_t/ᾱ_{t-1}`` clipped at 0.999 (:func:`cosine_alpha_bar`).
* **Network.** A small U-Net (:class:`ConditionalUNet`): residual blocks with
  group norm and SiLU, one per resolution level from the patch size down to 8,
  skip connections, and a sinusoidal time embedding plus a learned class
  embedding added in every block. No attention layers (CPU cost). Conv2d or
  Conv3d by ``spatial_dims``, like every network of the family.
* **Target.** ``prediction="v"`` (default) regresses ``v = √ᾱ ε - √(1-ᾱ) x_0``
  (Salimans & Ho 2022, arXiv:2202.00512), ``"eps"`` the noise ε as in Ho et al.;
  the loss is the mean squared error (Ho et al.'s simplified objective).
* **Classifier-free guidance** (Ho & Salimans 2022, arXiv:2207.12598): during
  training each label is replaced by a learned "no label" token with probability
  ``label_dropout``; at sampling the prediction is ``(1 + w)·f(x, c) - w·f(x, ∅)``
  with ``w = guidance_scale`` (0: plain conditional sampling, one network call per step).
* **Sampling.** DDIM (Song, Meng & Ermon 2021, arXiv:2010.02502) over
  ``sample_steps`` evenly spaced steps of the training schedule; ``eta = 0``
  (default) is deterministic given the initial noise, ``eta = 1`` is DDPM-like.
  The predicted ``x_0`` is clipped to [-1, 1] at every step. In joint mode the
  mask channel of the final ``x_0`` is thresholded at 0 (probability 0.5), so
  masks come back binary.
* **Mask conditioning** (``condition_on_mask``): the network is given the lesion
  mask as an extra input channel at every step and denoises the image channel only.
* **Weights for sampling.** An exponential moving average of the network's
  weights (``ema_beta``, with the warm-up of
  :func:`~radaug.generative.small_data.ema_decay`), as in Ho et al.

All randomness of training (batches, time steps, noise, label dropout) comes from
the model's training generator; all randomness of sampling (the initial noise and,
with ``eta > 0``, the noise of every step) is drawn up front from the sample seed
(:meth:`DDPM._latent_shape`), so samples do not depend on the batch size.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import small_data
from .base import ConditionalModel, check_float, check_int
from .layers import PATCH_CHANNELS, SPATIAL_DIMS, layer

PREDICTIONS = ("v", "eps")
"""What the network predicts: the velocity v (Salimans & Ho 2022) or the noise ε (Ho et al. 2020)."""

COSINE_OFFSET = 0.008
"""The offset s of the cosine schedule (Nichol & Dhariwal 2021)."""

MAX_BETA = 0.999
"""β_t is clipped here, which keeps ᾱ > 0 at the last step (Nichol & Dhariwal 2021)."""

LOWEST_RESOLUTION = 8
"""The U-Net halves the resolution down to this many voxels per side."""

MAX_WIDTH_MULTIPLIER = 8


# --------------------------------------------------------------------------- #
# The diffusion process
# --------------------------------------------------------------------------- #


def cosine_alpha_bar(diffusion_steps: int, offset: float = COSINE_OFFSET) -> np.ndarray:
    """ᾱ_t for t = 1 .. T of the cosine schedule, as a float64 array of length T.

    ``ᾱ_t = Π_{i<=t} (1 - β_i)`` with ``β_i = min(1 - f(i)/f(i-1), 0.999)`` and
    ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``; away from the clipped last steps this
    is ``f(t) / f(0)`` (Nichol & Dhariwal 2021, eq. 17). Index ``k`` of the array
    is step ``t = k + 1``.
    """
    t = np.arange(diffusion_steps + 1, dtype=np.float64) / diffusion_steps
    f = np.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.minimum(1 - f[1:] / f[:-1], MAX_BETA)
    return np.cumprod(1 - betas)


def _bcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample values (B,) shaped to broadcast against (B, C, S, ...)."""
    return values.view(-1, *(1,) * (like.dim() - 1))


def v_from_eps(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The velocity ``v = √ᾱ ε - √(1-ᾱ) x_0`` (Salimans & Ho 2022); ``alpha_bar`` per sample (B,)."""
    a = _bcast(alpha_bar, x0)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def x0_eps_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_0, ε)`` from a noisy ``x_t`` and its velocity: ``x_0 = √ᾱ x_t - √(1-ᾱ) v``, ``ε = √(1-ᾱ) x_t + √ᾱ v``."""
    a = _bcast(alpha_bar, x_t)
    return a.sqrt() * x_t - (1 - a).sqrt() * v, (1 - a).sqrt() * x_t + a.sqrt() * v


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """``x_0 = (x_t - √(1-ᾱ) ε) / √ᾱ``."""
    a = _bcast(alpha_bar, x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """``ε = (x_t - √ᾱ x_0) / √(1-ᾱ)``."""
    a = _bcast(alpha_bar, x_t)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor, alpha_bar_prev: torch.Tensor,
              eta: float, noise: torch.Tensor | None) -> torch.Tensor:
    """One DDIM update (Song et al. 2021, eq. 12) from the predicted ``x0`` and ``eps`` at ᾱ to ᾱ_prev.

    ``x_prev = √ᾱ_prev x_0 + √(1 - ᾱ_prev - σ²) ε + σ z`` with
    ``σ = η √((1-ᾱ_prev)/(1-ᾱ)) √(1 - ᾱ/ᾱ_prev)``; ``noise`` (z) is unused when η = 0.
    """
    a, a_prev = _bcast(alpha_bar, x0), _bcast(alpha_bar_prev, x0)
    sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
    x_prev = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
    return x_prev if eta == 0 else x_prev + sigma * noise


def ddim_timesteps(diffusion_steps: int, sample_steps: int) -> np.ndarray:
    """``sample_steps`` evenly spaced training steps, descending from T to 1 (1-based)."""
    return np.unique(np.linspace(1, diffusion_steps, sample_steps).round().astype(np.int64))[::-1].copy()


# --------------------------------------------------------------------------- #
# The network
# --------------------------------------------------------------------------- #


def _norm(channels: int) -> nn.GroupNorm:
    """Group norm with up to 8 groups that divide ``channels`` (for any number of spatial dims)."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


def sinusoidal_embedding(t: torch.Tensor, size: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding (B, 2·⌈size/2⌉) of time steps ``t`` (B,), as in Ho et al."""
    half = max(1, (size + 1) // 2)
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time-and-class embedding added in between, plus a skip."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, dims: int) -> None:
        super().__init__()
        conv = layer("Conv", dims)
        self.norm1, self.conv1 = _norm(in_channels), conv(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2, self.conv2 = _norm(out_channels), conv(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if in_channels == out_channels else conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + _bcast_channels(self.embed(F.silu(emb)), h)
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def _bcast_channels(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, C) values shaped to broadcast against (B, C, S, ...)."""
    return values.view(*values.shape, *(1,) * (like.dim() - 2))


def unet_widths(patch_size: int, base_channels: int) -> list[int]:
    """Channels per U-Net level, from the patch size down to 8 per side: ``base_channels`` doubling per
    halving, at most 8×. For 64-pixel patches and ``base_channels=16``: 16, 32, 64, 128."""
    levels = int(math.log2(patch_size // LOWEST_RESOLUTION)) + 1
    return [base_channels * min(2**level, MAX_WIDTH_MULTIPLIER) for level in range(levels)]


class ConditionalUNet(nn.Module):
    """Noisy patch, time step and class label → prediction of ε or v (a small DDPM U-Net).

    Parameters
    ----------
    in_channels, out_channels
        2 and 2 in joint mode (image and mask are denoised together); 2 and 1
        mask-conditioned (noisy image and the given mask in, image prediction out).
    n_classes
        Number of class labels; the embedding has one more row, the "no label"
        token of classifier-free guidance (index ``n_classes``).
    widths
        Channels per resolution level, as from :func:`unet_widths`.
    embed_dim
        Width of the time and class embeddings.
    dims
        Spatial dimensions, 2 or 3.
    """

    def __init__(self, in_channels: int, out_channels: int, n_classes: int, widths: list[int], embed_dim: int,
                 *, dims: int = SPATIAL_DIMS) -> None:
        super().__init__()
        conv = layer("Conv", dims)
        self.embed_dim = embed_dim
        self.time_mlp = nn.Sequential(nn.Linear(2 * max(1, (embed_dim + 1) // 2), embed_dim), nn.SiLU(),
                                      nn.Linear(embed_dim, embed_dim))
        self.label_embed = nn.Embedding(n_classes + 1, embed_dim)
        self.stem = conv(in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            self.down_blocks.append(ResidualBlock(previous, width, embed_dim, dims))
            if level < len(widths) - 1:
                self.downsample.append(conv(width, width, 3, stride=2, padding=1))
            previous = width
        self.middle = ResidualBlock(widths[-1], widths[-1], embed_dim, dims)
        self.upsample = nn.ModuleList(conv(w, w, 3, padding=1) for w in widths[:0:-1])
        self.up_blocks = nn.ModuleList(
            ResidualBlock(2 * widths[-1] if level == len(widths) - 1 else widths[level + 1] + widths[level],
                          widths[level], embed_dim, dims)
            for level in range(len(widths) - 1, -1, -1)
        )
        self.head = nn.Sequential(_norm(widths[0]), nn.SiLU(), conv(widths[0], out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``x`` (B, in_channels, S, ...), ``t`` (B,) steps 1..T, ``labels`` (B,) with n_classes = no label."""
        emb = self.time_mlp(sinusoidal_embedding(t, self.embed_dim)) + self.label_embed(labels)
        h = self.stem(x)
        skips = []
        for level, block in enumerate(self.down_blocks):
            h = block(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle(h, emb)
        for i, block in enumerate(self.up_blocks):
            if i > 0:
                h = self.upsample[i - 1](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.head(h)


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #


class DDPM(ConditionalModel):
    """Class-conditional diffusion model with classifier-free guidance and DDIM sampling.

    Parameters
    ----------
    patch_size, n_classes, spatial_dims, condition_on_mask, lr
        As for every model (:class:`~radaug.generative.base.ConditionalModel`).
    latent_dim
        Width of the time and class embeddings. A diffusion model has no latent
        code of its own size: its "latent" is the initial noise, shaped like the
        patch.
    base_channels
        U-Net channels at full resolution, doubling per halving (:func:`unet_widths`).
    diffusion_steps
        Steps T of the forward process (1000 in Ho et al. and Nichol & Dhariwal).
    prediction
        ``"v"`` or ``"eps"``: what the network regresses.
    label_dropout
        Probability of training a step's label as "no label" (classifier-free
        guidance; 0.1 or 0.2 in Ho & Salimans). 0 disables guidance.
    guidance_scale
        Guidance weight w at sampling; 0 samples the conditional model alone.
    sample_steps
        DDIM steps at sampling (at most ``diffusion_steps``).
    eta
        DDIM stochasticity: 0 deterministic (default), 1 DDPM-like.
    ema_beta
        Decay of the weight average sampled from (0: sample the trained weights).

    Logged losses: ``loss`` (mean squared error of the prediction).
    """

    name = "ddpm"

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        latent_dim: int = 64,
        base_channels: int = 8,
        lr: float = 2e-4,
        diffusion_steps: int = 1000,
        prediction: str = "v",
        label_dropout: float = 0.1,
        guidance_scale: float = 0.3,
        sample_steps: int = 50,
        eta: float = 0.0,
        ema_beta: float = 0.9999,
        spatial_dims: int = SPATIAL_DIMS,
        condition_on_mask: bool = False,
    ) -> None:
        diffusion_steps = check_int("diffusion_steps", diffusion_steps, 2)
        sample_steps = check_int("sample_steps", sample_steps, 1)
        if sample_steps > diffusion_steps:
            raise ValueError(f"sample_steps must be at most diffusion_steps={diffusion_steps}, got {sample_steps}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        label_dropout = check_float("label_dropout", label_dropout, minimum=0.0, inclusive=True)
        if label_dropout >= 1.0:
            raise ValueError(f"label_dropout must be below 1 (0.1 usual, 0 disables guidance), got {label_dropout}")
        guidance_scale = check_float("guidance_scale", guidance_scale, minimum=0.0, inclusive=True)
        if guidance_scale and not label_dropout:
            raise ValueError("guidance_scale > 0 needs label_dropout > 0: without label dropout the model never "
                             "learns the unconditional prediction that guidance extrapolates from")
        eta = check_float("eta", eta, minimum=0.0, inclusive=True)
        if eta > 1.0:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        ema_beta = check_float("ema_beta", ema_beta, minimum=0.0, inclusive=True)
        if ema_beta >= 1.0:
            raise ValueError(f"ema_beta must be below 1 (0 is off, 0.9999 in Ho et al.), got {ema_beta}")
        self._alpha_bar = torch.from_numpy(cosine_alpha_bar(diffusion_steps)).float()
        self._timesteps = ddim_timesteps(diffusion_steps, sample_steps)
        super().__init__(
            patch_size, n_classes, latent_dim=latent_dim, base_channels=base_channels, lr=lr,
            spatial_dims=spatial_dims, condition_on_mask=condition_on_mask,
            diffusion_steps=diffusion_steps, prediction=prediction, label_dropout=label_dropout,
            guidance_scale=guidance_scale, sample_steps=sample_steps, eta=eta, ema_beta=ema_beta,
        )

    @property
    def _out_channels(self) -> int:
        """Channels denoised: the image only when mask-conditioned, else image and mask."""
        return 1 if self.condition_on_mask else PATCH_CHANNELS

    def _build_networks(self) -> dict[str, nn.Module]:
        unet = ConditionalUNet(PATCH_CHANNELS, self._out_channels, self.n_classes,
                               unet_widths(self.patch_size, self.base_channels), self.latent_dim,
                               dims=self.spatial_dims)
        nets = {"unet": unet}
        if self.hyperparams["ema_beta"]:
            nets["unet_ema"] = copy.deepcopy(unet).requires_grad_(False)
        return nets

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.Adam(self.nets["unet"].parameters(), lr=self.lr)}

    def _predict(self, net: nn.Module, x_t: torch.Tensor, masks: torch.Tensor | None, t: torch.Tensor,
                 labels: torch.Tensor) -> torch.Tensor:
        """The network's output for the noisy channels ``x_t`` (the given mask appended when mask-conditioned)."""
        inputs = x_t if masks is None else torch.cat([x_t, masks], dim=1)
        return net(inputs, t, labels).float()

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        x0 = images[:, : self._out_channels]
        masks = images[:, 1:2] if self.condition_on_mask else None
        t = torch.randint(1, self.hyperparams["diffusion_steps"] + 1, (len(x0),), generator=self._rng)
        alpha_bar = self._alpha_bar[t - 1].to(self.device)
        eps = self._noise(*x0.shape)
        dropped = torch.rand(len(x0), generator=self._rng).to(self.device) < self.hyperparams["label_dropout"]
        labels = torch.where(dropped, torch.full_like(labels, self.n_classes), labels)
        a = _bcast(alpha_bar, x0)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        target = v_from_eps(x0, eps, alpha_bar) if self.hyperparams["prediction"] == "v" else eps
        with self._autocast():
            out = self._predict(self.nets["unet"], x_t, masks, t.to(self.device), labels)
        loss = F.mse_loss(out, target)
        self._optimize(loss, "unet")
        if self.hyperparams["ema_beta"]:
            beta = small_data.ema_decay(self.hyperparams["ema_beta"], self.step)
            small_data.update_average(self.nets["unet_ema"], self.nets["unet"], beta)
        return {"loss": loss.item()}

    def _latent_shape(self) -> tuple[int, ...]:
        """The initial noise x_T and, with ``eta > 0``, one noise draw per DDIM step: all from the sample seed."""
        steps = 1 + (len(self._timesteps) if self.hyperparams["eta"] else 0)
        return (steps, self._out_channels, *self.patch_shape)

    def _guided(self, net: nn.Module, x_t: torch.Tensor, masks: torch.Tensor | None, t: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Prediction with classifier-free guidance: ``(1 + w) f(x, c) - w f(x, ∅)``, both in one batch."""
        w = self.hyperparams["guidance_scale"]
        if not w:
            return self._predict(net, x_t, masks, t, labels)
        both = self._predict(net, torch.cat([x_t, x_t]), None if masks is None else torch.cat([masks, masks]),
                             torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, self.n_classes)]))
        conditional, unconditional = both.chunk(2)
        return (1 + w) * conditional - w * unconditional

    def _generate(
        self, z: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.nets["unet_ema" if self.hyperparams["ema_beta"] else "unet"]
        eta = self.hyperparams["eta"]
        alpha_bars = self._alpha_bar.to(self.device)
        x = x0 = z[:, 0]
        for i, t in enumerate(self._timesteps):
            t_batch = torch.full((len(x),), int(t), dtype=torch.int64, device=self.device)
            alpha_bar = alpha_bars[t_batch - 1]
            if i + 1 < len(self._timesteps):
                alpha_bar_prev = alpha_bars[torch.full_like(t_batch, int(self._timesteps[i + 1]) - 1)]
            else:  # the last step lands on x_0 itself: ᾱ_0 = 1
                alpha_bar_prev = torch.ones_like(alpha_bar)
            out = self._guided(net, x, masks, t_batch, labels)
            if self.hyperparams["prediction"] == "v":
                x0, _ = x0_eps_from_v(x, out, alpha_bar)
            else:
                x0 = x0_from_eps(x, out, alpha_bar)
            x0 = x0.clamp(-1.0, 1.0)
            eps = eps_from_x0(x, x0, alpha_bar)
            x = ddim_step(x0, eps, alpha_bar, alpha_bar_prev, eta, z[:, i + 1] if eta else None)
        image = x0[:, 0]
        if self.condition_on_mask:
            return image, (masks[:, 0] + 1) / 2
        return image, (x0[:, 1] > 0).to(image.dtype)
