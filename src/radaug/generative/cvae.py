"""Conditional variational autoencoder generating (image, mask) patches per class, or images for given masks.

A variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114) whose encoder
and decoder both see the class label, i.e. a conditional VAE (Sohn, Lee & Yan
2015, "Learning Structured Output Representation using Deep Conditional
Generative Models", NeurIPS). New patches of a class are decoded from latent codes
drawn from the prior N(0, I) under that class's label.

With ``condition_on_mask`` the lesion mask is part of the condition: the encoder
sees it (as the second input channel, as in joint mode), the decoder receives it
at every scale (:class:`~radaug.generative.layers.MaskConditionedDecoder`) and
reconstructs the image only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ConditionalModel, check_float
from .layers import EMBED_DIM, PATCH_CHANNELS, build_decoder, down_stack


def _batch_mean_of_sums(values: torch.Tensor) -> torch.Tensor:
    """Sum (B, ...) values over everything but the batch axis, then average over it."""
    return values.flatten(1).sum(dim=1).mean()


class ConditionalEncoder(nn.Module):
    """Patch and label → posterior mean and log-variance.

    A DCGAN-style convolution stack with batch norm maps the patch to features, to
    which the label's learned embedding is concatenated before a linear layer.

    Parameters
    ----------
    latent_dim
        Size of the latent code.
    n_classes
        Number of class labels.
    widths
        Channels per resolution level, as from :func:`~radaug.generative.layers.channel_widths`.
    dims
        Spatial dimensions of the patches, 2 or 3.
    """

    def __init__(self, latent_dim: int, n_classes: int, widths: list[int], *, dims: int = 2) -> None:
        super().__init__()
        self.trunk = down_stack(PATCH_CHANNELS, widths, batch_norm=True, dims=dims)
        self.embed = nn.Embedding(n_classes, EMBED_DIM)
        self.head = nn.Linear(widths[-1] * 4**dims + EMBED_DIM, 2 * latent_dim)

    def forward(self, patches: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each (B, latent_dim), for patches (B, 2, S, S[, S])."""
        h = torch.cat([self.trunk(patches).flatten(1), self.embed(labels)], dim=1)
        return self.head(h).chunk(2, dim=1)


class CVAE(ConditionalModel):
    """Conditional VAE over 2-channel (image, mask) patches.

    The decoder's image channel ends in tanh, its mask channel is a logit. The loss
    per patch is the squared error of the image channel plus the binary
    cross-entropy of the mask channel, each summed over pixels, plus ``beta`` times
    the KL divergence of the posterior from N(0, I); it is averaged over the batch.
    ``beta = 1`` gives the evidence lower bound of Kingma & Welling; the
    reparameterisation trick carries gradients through the sampled code.

    Parameters
    ----------
    patch_size
        Side of the square or cubic patches, a power of two >= 16.
    n_classes
        Number of class labels.
    latent_dim
        Size of the latent code.
    base_channels
        Network width (see :func:`~radaug.generative.layers.channel_widths`).
    lr
        Adam learning rate.
    beta
        Weight of the KL term (>= 0).
    spatial_dims
        2 or 3: 2D or 3D patches.
    condition_on_mask
        Mask-conditioned mode: the decoder is given the mask and the loss has no
        mask term.

    Logged losses: ``loss`` (total), ``recon_image``, ``recon_mask`` (joint mode
    only) and ``kl``.
    """

    name = "cvae"

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        latent_dim: int = 32,
        base_channels: int = 32,
        lr: float = 1e-3,
        beta: float = 1.0,
        spatial_dims: int = 2,
        condition_on_mask: bool = False,
    ) -> None:
        super().__init__(
            patch_size, n_classes, latent_dim=latent_dim, base_channels=base_channels, lr=lr,
            spatial_dims=spatial_dims, condition_on_mask=condition_on_mask,
            beta=check_float("beta", beta, minimum=0.0, inclusive=True),
        )

    def _build_networks(self) -> dict[str, nn.Module]:
        return {
            "encoder": ConditionalEncoder(self.latent_dim, self.n_classes, self.widths, dims=self.spatial_dims),
            "decoder": build_decoder(self.latent_dim, self.n_classes, self.widths, dims=self.spatial_dims,
                                     condition_on_mask=self.condition_on_mask),
        }

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.nets.parameters(), lr=self.lr)}

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        with self._autocast():
            mu, logvar = self.nets["encoder"](images, labels)
            mu, logvar = mu.float(), logvar.float()
            z = mu + torch.exp(0.5 * logvar) * self._noise(*mu.shape)
            out = self._decode(z, labels, images[:, 1:2]).float()
        recon = {"recon_image": _batch_mean_of_sums((torch.tanh(out[:, 0]) - images[:, 0]).square())}
        if not self.condition_on_mask:
            recon["recon_mask"] = _batch_mean_of_sums(
                F.binary_cross_entropy_with_logits(out[:, 1], (images[:, 1] + 1) / 2, reduction="none")
            )
        kl = _batch_mean_of_sums(-0.5 * (1 + logvar - mu.square() - logvar.exp()))
        loss = sum(recon.values()) + self.hyperparams["beta"] * kl
        self._optimize(loss, "vae")
        return {key: value.item() for key, value in {"loss": loss, **recon, "kl": kl}.items()}

    def _decode(self, z: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Decoder output: 2 channels (image, mask logit) in joint mode, the image channel given ``masks``."""
        if self.condition_on_mask:
            return self.nets["decoder"](z, labels, masks)
        return self.nets["decoder"](z, labels)

    def _generate(
        self, z: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._decode(z, labels, masks)
        if self.condition_on_mask:
            return torch.tanh(out[:, 0]), (masks[:, 0] + 1) / 2
        return torch.tanh(out[:, 0]), torch.sigmoid(out[:, 1])
