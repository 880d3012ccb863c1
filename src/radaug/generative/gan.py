"""Conditional GANs generating (image, mask) patches per class, or images for given masks, with a selectable objective.

A generative adversarial network (Goodfellow et al. 2014, arXiv:1406.2661) with
DCGAN architecture (Radford et al. 2016, arXiv:1511.06434), conditioned on the
class label (Mirza & Osindero 2014, arXiv:1411.1784). One class,
:class:`ConditionalGAN`, holds networks, conditioning and the training step; the
adversarial objective is a strategy (:class:`Objective`), and each registered model
fixes one:

========  ====================================  ==========================================
model     objective                             reference
========  ====================================  ==========================================
dcgan     non-saturating cross-entropy          Goodfellow et al. 2014, arXiv:1406.2661
lsgan     least squares (a=0, b=c=1)            Mao et al. 2017, arXiv:1611.04076
wgan_gp   Wasserstein, gradient penalty λ=10,   Gulrajani et al. 2017, arXiv:1704.00028
          ``n_critic`` critic steps, Adam
          betas (0, 0.9)
========  ====================================  ==========================================

The discriminator (the critic, for ``wgan_gp``) sees the label either through a
projection term (Miyato & Koyama 2018, arXiv:1802.05637) or through a learned
label embedding concatenated to its features (``conditioning="embedding"``); it can
be spectrally normalised (Miyato et al. 2018, arXiv:1802.05957).

With ``condition_on_mask`` the generator is given the lesion mask at every
decoder scale (:class:`~radaug.generative.layers.MaskConditionedDecoder`) and
synthesises the image only; the discriminator still sees (image, mask) pairs, a
real image with its mask against a generated image with the mask it was
generated for, so it judges whether the image fits the mask.

The networks are small enough to train on one CPU core in about a minute, and
GANs that small collapse easily to one output per class. Two measures counter
this: the discriminator is half as wide as the generator, and it sees the
minibatch standard deviation of its features (Karras et al. 2018,
arXiv:1710.10196, who also train it with WGAN-GP). Collapse is still possible for
short runs, so check the diversity of the samples.

Three small-data switches, off by default, target the same failure at its cause, a
discriminator that memorises a few dozen training patches
(:mod:`radaug.generative.small_data`): ``diffaugment`` (DiffAugment, Zhao et al.
2020), ``r1_gamma`` (R1 penalty, Mescheder et al. 2018) and ``ema_beta`` (samples
from a moving average of the generator's weights). Each is recorded in
``hyperparams`` only when on, so a model trained without them keeps its
checkpoint bytes and generator-config hash.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import small_data
from .base import INTENSITY_MAPS, ConditionalModel, check_float, check_int
from .layers import EMBED_DIM, PATCH_CHANNELS, SPATIAL_DIMS, build_decoder, down_stack

CONDITIONINGS = ("projection", "embedding")
"""How the discriminator sees the class label."""


def minibatch_stddev(h: torch.Tensor) -> torch.Tensor:
    """Append the batch's mean feature standard deviation as one constant channel.

    Lets the discriminator see the diversity of a batch, which counters mode
    collapse (Karras et al. 2018, arXiv:1710.10196, section 3).
    """
    std = torch.sqrt(h.var(dim=0, correction=0) + 1e-8).mean()
    return torch.cat([h, std.expand(h.shape[0], 1, *h.shape[2:])], dim=1)


class ConditionalDiscriminator(nn.Module):
    """Patch and label → real/fake logit (or critic value).

    A convolution stack without batch norm (which a gradient penalty forbids),
    followed by a minibatch-stddev channel, maps the patch to flattened features
    ``h``. With ``conditioning="projection"`` the output is
    ``w·h + b + embed(label)·h``; with ``"embedding"`` it is ``w·[h, embed(label)] + b``.

    Parameters
    ----------
    n_classes
        Number of class labels.
    widths
        Channels per resolution level, as from :func:`~radaug.generative.layers.channel_widths`.
    conditioning
        ``"projection"`` or ``"embedding"``.
    spectral_norm
        Apply spectral normalisation (Miyato et al. 2018, arXiv:1802.05957) to the
        convolutions and the linear layer (not to the label embedding; the
        projection embedding starts at zero).
    dims
        Spatial dimensions of the patches, 2 or 3.
    """

    def __init__(
        self, n_classes: int, widths: list[int], *, conditioning: str, spectral_norm: bool, dims: int = SPATIAL_DIMS
    ) -> None:
        super().__init__()
        features = (widths[-1] + 1) * 4**dims
        self.conditioning = conditioning
        self.trunk = down_stack(PATCH_CHANNELS, widths, batch_norm=False, dims=dims)
        if conditioning == "projection":
            self.linear = nn.Linear(features, 1)
            self.embed = nn.Embedding(n_classes, features)
            nn.init.zeros_(self.embed.weight)  # start unconditional; N(0, 1) would swamp w·h
        else:
            self.linear = nn.Linear(features + EMBED_DIM, 1)
            self.embed = nn.Embedding(n_classes, EMBED_DIM)
        if spectral_norm:
            for module in [*self.trunk, self.linear]:
                if isinstance(getattr(module, "weight", None), nn.Parameter):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, patches: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Outputs (B,) for patches (B, 2, S, S[, S]) under labels (B,)."""
        h = minibatch_stddev(self.trunk(patches)).flatten(1)
        if self.conditioning == "projection":
            return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)
        return self.linear(torch.cat([h, self.embed(labels)], dim=1)).squeeze(1)


# --------------------------------------------------------------------------- #
# Objectives
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Objective:
    """An adversarial objective: discriminator and generator losses on raw outputs.

    Attributes
    ----------
    name
        Short name, as logged.
    betas
        Adam betas recommended with this objective.
    gradient_penalty
        Whether the critic is made 1-Lipschitz by a gradient penalty.
    """

    name: str
    betas: tuple[float, float]
    gradient_penalty: bool = False

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Loss of the discriminator given its outputs on real and generated patches."""
        if self.name == "non_saturating":
            return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
                fake, torch.zeros_like(fake)
            )
        if self.name == "least_squares":
            return 0.5 * ((real - 1).square().mean() + fake.square().mean())
        return fake.mean() - real.mean()  # wasserstein: the critic maximises E[D(x)] - E[D(G(z))]

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Loss of the generator given the discriminator's outputs on its patches."""
        if self.name == "non_saturating":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # -log D(G(z))
        if self.name == "least_squares":
            return 0.5 * (fake - 1).square().mean()
        return -fake.mean()

    def score(self, outputs: torch.Tensor) -> float:
        """A readable summary of discriminator outputs: mean probability (cross-entropy) or mean value."""
        return (torch.sigmoid(outputs) if self.name == "non_saturating" else outputs).mean().item()


NON_SATURATING = Objective("non_saturating", betas=(0.5, 0.999))
"""Goodfellow et al. 2014 with the non-saturating generator loss ``-log D(G(z))``."""

LEAST_SQUARES = Objective("least_squares", betas=(0.5, 0.999))
"""Mao et al. 2017 (arXiv:1611.04076), coding a=0 (fake), b=1 (real), c=1 (generator target)."""

WASSERSTEIN_GP = Objective("wasserstein", betas=(0.0, 0.9), gradient_penalty=True)
"""Gulrajani et al. 2017 (arXiv:1704.00028): Wasserstein critic with gradient penalty."""


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #


class ConditionalGAN(ConditionalModel):
    """Conditional GAN over 2-channel (image, mask) patches; the subclass fixes the objective.

    The generator ends in tanh on both channels; the mask probability is
    ``(channel + 1) / 2``. The discriminator has half the generator's channels at
    every level. Both networks use Adam with the objective's betas. Each step runs
    ``n_critic`` discriminator updates, each on a fresh real batch and a generated
    batch with the real batch's labels (plus the gradient penalty
    ``gp_weight · E[(‖∇D(x̂)‖₂ - 1)²]`` on random interpolates x̂ for the Wasserstein
    objective), then one generator update on the last generated batch.

    Parameters
    ----------
    patch_size
        Side of the square or cubic patches, a power of two >= 16.
    n_classes
        Number of class labels.
    latent_dim
        Size of the generator's latent code.
    base_channels
        Network width (see :func:`~radaug.generative.layers.channel_widths`).
    lr
        Adam learning rate of both networks.
    spectral_norm
        Spectrally normalise the discriminator.
    conditioning
        ``"projection"`` (Miyato & Koyama 2018) or ``"embedding"`` (label embedding
        concatenated to the discriminator's features).
    n_critic
        Discriminator updates per generator update (>= 1).
    gp_weight
        Weight λ of the gradient penalty (Wasserstein objective only; >= 0).
    spatial_dims
        2 or 3: 2D or 3D patches.
    condition_on_mask
        Mask-conditioned mode: the generator is given the real batch's masks and
        generates the images for them.
    diffaugment
        DiffAugment policy applied to every patch the discriminator sees, e.g.
        ``"color,translation,cutout"`` (the authors' choice for few-shot data);
        ``""`` is off (:func:`~radaug.generative.small_data.diff_augment`).
    r1_gamma
        Weight γ of the R1 penalty ``γ/2 · E‖∇ₓD(x)‖²`` on (augmented) real patches;
        0 is off, the paper uses 10.
    ema_beta
        Decay β of the moving average of generator weights that :meth:`sample`
        uses, with a warm-up (:func:`~radaug.generative.small_data.ema_decay`);
        0 is off, 0.999 is usual.
    intensity_map
        ``"quantile"`` (default) or ``"linear"``: how physical intensities are mapped
        onto the generator's tanh range (:class:`~radaug.generative.base.IntensityMap`;
        the linear map saturated tanh on CT patches with air, the GANs' failure on
        the 2D phantom).

    Logged losses: ``loss_d`` (discriminator or critic), ``loss_g`` (generator),
    ``d_real`` and ``d_fake`` (mean discriminator probability, or mean output for
    least squares and Wasserstein, on real and generated patches); for the
    Wasserstein objective also ``gradient_penalty``; with ``r1_gamma`` also ``r1``.
    """

    objective: ClassVar[Objective]
    default_n_critic: ClassVar[int] = 1

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        latent_dim: int = 64,
        base_channels: int = 32,
        lr: float = 2e-4,
        spectral_norm: bool = False,
        conditioning: str = "projection",
        n_critic: int | None = None,
        gp_weight: float = 10.0,
        spatial_dims: int = 2,
        condition_on_mask: bool = False,
        diffaugment: str = "",
        r1_gamma: float = 0.0,
        ema_beta: float = 0.0,
        intensity_map: str = "quantile",
    ) -> None:
        if not isinstance(spectral_norm, bool):
            raise ValueError(f"spectral_norm must be True or False, got {spectral_norm!r}")
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        n_critic = check_int("n_critic", self.default_n_critic if n_critic is None else n_critic, 1)
        gp_weight = check_float("gp_weight", gp_weight, minimum=0.0, inclusive=True)
        if intensity_map not in INTENSITY_MAPS:
            raise ValueError(f"intensity_map must be one of {INTENSITY_MAPS}, got {intensity_map!r}")
        extra = {"spectral_norm": spectral_norm, "conditioning": conditioning, "n_critic": n_critic,
                 "intensity_map": intensity_map}
        if self.objective.gradient_penalty:
            extra["gp_weight"] = gp_weight
        elif gp_weight != 10.0:
            raise ValueError(f"gp_weight applies to the Wasserstein objective (wgan_gp) only, not {self.name}")
        policy = small_data.parse_policy(diffaugment)
        r1_gamma = check_float("r1_gamma", r1_gamma, minimum=0.0, inclusive=True)
        ema_beta = check_float("ema_beta", ema_beta, minimum=0.0, inclusive=True)
        if ema_beta >= 1.0:
            raise ValueError(f"ema_beta must be below 1 (0 is off, 0.999 usual), got {ema_beta}")
        # recorded only when on: a model without them keeps its checkpoint bytes and config hash
        if policy:
            extra["diffaugment"] = ",".join(policy)
        if r1_gamma:
            extra["r1_gamma"] = r1_gamma
        if ema_beta:
            extra["ema_beta"] = ema_beta
        self._policy, self._r1_gamma, self._ema_beta = policy, r1_gamma, ema_beta
        super().__init__(
            patch_size, n_classes, latent_dim=latent_dim, base_channels=base_channels, lr=lr,
            spatial_dims=spatial_dims, condition_on_mask=condition_on_mask, **extra,
        )

    def _build_networks(self) -> dict[str, nn.Module]:
        nets = {
            "generator": build_decoder(self.latent_dim, self.n_classes, self.widths, dims=self.spatial_dims,
                                       condition_on_mask=self.condition_on_mask),
            "discriminator": ConditionalDiscriminator(
                self.n_classes,
                [max(1, width // 2) for width in self.widths],
                conditioning=self.hyperparams["conditioning"],
                spectral_norm=self.hyperparams["spectral_norm"],
                dims=self.spatial_dims,
            ),
        }
        if self.hyperparams.get("ema_beta"):
            nets["generator_ema"] = copy.deepcopy(nets["generator"]).requires_grad_(False)
        return nets

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            key: torch.optim.Adam(self.nets[key].parameters(), lr=self.lr, betas=self.objective.betas)
            for key in ("generator", "discriminator")
        }

    def _augment(self, patches: torch.Tensor) -> torch.Tensor:
        """``patches`` through the DiffAugment policy; unchanged without one."""
        return small_data.diff_augment(patches, self._policy, self._rng) if self._policy else patches

    def _judge(self, patches: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Discriminator outputs on ``patches``, through the DiffAugment policy (if any)."""
        return self.nets["discriminator"](self._augment(patches), labels).float()

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``E[(‖∇D(x̂)‖₂ - 1)²]`` at x̂ = ε·real + (1 - ε)·fake, ε ~ U(0, 1) per sample.

        Under a float16 gradient scaler the gradient is taken of the scaled output
        and unscaled, as in PyTorch's AMP recipe for gradient penalties.
        """
        eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), generator=self._rng).to(self.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        with self._autocast():
            out = self.nets["discriminator"](mixed, labels).float()
        (grad,) = torch.autograd.grad(self._scaler.scale(out.sum()), mixed, create_graph=True)
        grad = grad.float() / self._scaler.get_scale()
        return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        discriminator = self.nets["discriminator"]
        objective, n_critic = self.objective, self.hyperparams["n_critic"]
        gp_total = r1_total = 0.0
        for critic_step in range(n_critic):
            if critic_step:
                images, labels = self._draw_batch()
            z = self._noise(len(labels), self.latent_dim)
            # R1 differentiates D at its input, the augmented real patches: augment before D, outside _judge
            real = self._augment(images).detach().requires_grad_(True) if self._r1_gamma else images
            with self._autocast():
                fake = self._fake(z, labels, images)
                real_out = discriminator(real, labels).float() if self._r1_gamma else self._judge(real, labels)
                fake_out = self._judge(fake.detach(), labels)
                loss_d = objective.discriminator_loss(real_out, fake_out)
            if objective.gradient_penalty:
                penalty = self._gradient_penalty(images, fake.detach().float(), labels)
                loss_d = loss_d + self.hyperparams["gp_weight"] * penalty
                gp_total += penalty.item()
            if self._r1_gamma:
                scale = self._scaler.get_scale() if self._scaler.is_enabled() else 1.0
                r1 = small_data.r1_penalty(real_out, real, scale)
                loss_d = loss_d + 0.5 * self._r1_gamma * r1
                r1_total += r1.item()
            self._optimize(loss_d, "discriminator")

        # The generator has not changed since it made `fake`: its graph is still valid.
        discriminator.requires_grad_(False)
        with self._autocast():
            loss_g = objective.generator_loss(self._judge(fake, labels))
        self._optimize(loss_g, "generator")
        discriminator.requires_grad_(True)
        if self._ema_beta:
            beta = small_data.ema_decay(self._ema_beta, self.step)
            small_data.update_average(self.nets["generator_ema"], self.nets["generator"], beta)
        losses = {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": objective.score(real_out),
            "d_fake": objective.score(fake_out),
        }
        if objective.gradient_penalty:
            losses["gradient_penalty"] = gp_total / n_critic
        if self._r1_gamma:
            losses["r1"] = r1_total / n_critic
        return losses

    def _fake(self, z: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """A generated (B, 2, ...) batch: both channels, or the image for the real batch's masks."""
        if not self.condition_on_mask:
            return torch.tanh(self.nets["generator"](z, labels))
        masks = real[:, 1:2]
        return torch.cat([torch.tanh(self.nets["generator"](z, labels, masks)), masks.to(real.dtype)], dim=1)

    def _generate(
        self, z: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        generator = self.nets["generator_ema" if self._ema_beta else "generator"]
        if self.condition_on_mask:
            return torch.tanh(generator(z, labels, masks))[:, 0], (masks[:, 0] + 1) / 2
        out = torch.tanh(generator(z, labels))
        return out[:, 0], (out[:, 1] + 1) / 2


class DCGAN(ConditionalGAN):
    """Conditional DCGAN with the non-saturating loss (Goodfellow et al. 2014; Radford et al. 2016)."""

    name = "dcgan"
    objective = NON_SATURATING


class LSGAN(ConditionalGAN):
    """Conditional least-squares GAN (Mao et al. 2017, arXiv:1611.04076)."""

    name = "lsgan"
    objective = LEAST_SQUARES


class WGANGP(ConditionalGAN):
    """Conditional Wasserstein GAN with gradient penalty (Gulrajani et al. 2017, arXiv:1704.00028).

    Defaults follow the paper: λ = 10, ``n_critic = 5``, Adam betas (0, 0.9).
    """

    name = "wgan_gp"
    objective = WASSERSTEIN_GP
    default_n_critic = 5
