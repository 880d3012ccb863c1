"""Conditional GAN generating (image, mask) patches per class.

A generative adversarial network (Goodfellow et al. 2014, arXiv:1406.2661) with
DCGAN architecture and optimiser settings (Radford et al. 2016, arXiv:1511.06434),
conditioned on the class label (Mirza & Osindero 2014, arXiv:1411.1784): the
generator receives a label embedding next to the latent code, the discriminator a
projection term (Miyato & Koyama 2018, arXiv:1802.05637). The generator is trained
with the non-saturating loss of Goodfellow et al.

The networks are small enough to train on one CPU core in about a minute, and
GANs that small collapse easily to one output per class. Two measures counter
this: the discriminator is half as wide as the generator, and it sees the
minibatch standard deviation of its features (Karras et al. 2018,
arXiv:1710.10196). Collapse is still possible for short runs, so check the
diversity of the samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import PATCH_CHANNELS, SPATIAL_DIMS, ConditionalDecoder, GenerativeModel, down_stack


def minibatch_stddev(h: torch.Tensor) -> torch.Tensor:
    """Append the batch's mean feature standard deviation as one constant channel.

    Lets the discriminator see the diversity of a batch, which counters mode
    collapse (Karras et al. 2018, arXiv:1710.10196, section 3).
    """
    std = torch.sqrt(h.var(dim=0, correction=0) + 1e-8).mean()
    return torch.cat([h, std.expand(h.shape[0], 1, *h.shape[2:])], dim=1)


class ProjectionDiscriminator(nn.Module):
    """Patch and label → real/fake logit.

    A convolution stack without batch norm, followed by a minibatch-stddev channel,
    maps the patch to flattened features ``h``; the logit is
    ``w·h + b + embed(label)·h``, so the label enters as a projection term.

    Parameters
    ----------
    n_classes
        Number of class labels.
    widths
        Channels per resolution level, as from :func:`~radaug.generative.base.channel_widths`.
    spectral_norm
        Apply spectral normalisation (Miyato et al. 2018, arXiv:1802.05957) to the
        convolutions and the linear layer (not to the projection embedding, which
        starts at zero).
    """

    def __init__(self, n_classes: int, widths: list[int], *, spectral_norm: bool) -> None:
        super().__init__()
        features = (widths[-1] + 1) * 4**SPATIAL_DIMS
        self.trunk = down_stack(PATCH_CHANNELS, widths, batch_norm=False)
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(n_classes, features)
        nn.init.zeros_(self.embed.weight)  # start unconditional; N(0, 1) would swamp w·h
        if spectral_norm:
            for module in [*self.trunk, self.linear]:
                if isinstance(getattr(module, "weight", None), nn.Parameter):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, patches: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for patches (B, 2, S, S) under labels (B,)."""
        h = minibatch_stddev(self.trunk(patches)).flatten(1)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


class CGAN(GenerativeModel):
    """Conditional DCGAN over 2-channel (image, mask) patches.

    The generator ends in tanh on both channels; the mask probability is
    ``(channel + 1) / 2``. The discriminator has half the generator's channels at
    every level. Both networks use Adam with betas (0.5, 0.999). Each step
    updates the discriminator on a real and a generated batch (binary cross-entropy),
    then the generator on the same generated batch with the non-saturating loss
    ``-log D(G(z))``. Generated patches carry the labels of the real batch.

    Parameters
    ----------
    patch_size
        Side of the square patches, a power of two >= 16.
    n_classes
        Number of class labels.
    latent_dim
        Size of the generator's latent code.
    base_channels
        Network width (see :func:`~radaug.generative.base.channel_widths`).
    lr
        Adam learning rate of both networks.
    spectral_norm
        Spectrally normalise the discriminator.

    Logged losses: ``loss_d`` (discriminator), ``loss_g`` (generator), ``d_real`` and
    ``d_fake`` (mean discriminator probability of real and generated patches).
    """

    name = "cgan"

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        latent_dim: int = 64,
        base_channels: int = 32,
        lr: float = 2e-4,
        spectral_norm: bool = False,
    ) -> None:
        if not isinstance(spectral_norm, bool):
            raise ValueError(f"spectral_norm must be True or False, got {spectral_norm!r}")
        super().__init__(
            patch_size, n_classes, latent_dim=latent_dim, base_channels=base_channels, lr=lr,
            spectral_norm=spectral_norm,
        )

    def _build_networks(self) -> dict[str, nn.Module]:
        return {
            "generator": ConditionalDecoder(self.latent_dim, self.n_classes, self.widths),
            "discriminator": ProjectionDiscriminator(
                self.n_classes,
                [max(1, width // 2) for width in self.widths],
                spectral_norm=self.hyperparams["spectral_norm"],
            ),
        }

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            key: torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.5, 0.999))
            for key, net in self.nets.items()
        }

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        generator, discriminator = self.nets["generator"], self.nets["discriminator"]
        z = self._noise(len(labels), self.latent_dim)
        with self._autocast():
            fake = torch.tanh(generator(z, labels))
            real_logits = discriminator(images, labels).float()
            fake_logits = discriminator(fake.detach(), labels).float()
            loss_d = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self._optimize(loss_d, "discriminator")

        discriminator.requires_grad_(False)
        with self._autocast():
            gen_logits = discriminator(fake, labels).float()
            loss_g = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
        self._optimize(loss_g, "generator")
        discriminator.requires_grad_(True)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(),
        }

    def _generate(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.tanh(self.nets["generator"](z, labels))
        return out[:, 0], (out[:, 1] + 1) / 2
