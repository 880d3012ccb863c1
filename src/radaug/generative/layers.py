"""Network building blocks shared by the generative models (dimension-generic: 2D or 3D).

The networks are small DCGAN-style convolution stacks (Radford et al. 2016,
arXiv:1511.06434): strided 4-wide convolutions halve the resolution down to 4 per
side, transposed ones double it back up. :func:`layer` picks the 2D or 3D variant
of a torch layer, so every network here and in the models serves both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SPATIAL_DIMS = 2
"""Default number of spatial dimensions; every network also accepts 3 (cubic patches)."""

PATCH_CHANNELS = 2
"""Image and mask: generated jointly, or the mask given and the image generated (mask conditioning)."""

EMBED_DIM = 16
"""Size of the learned class-label embedding fed to the decoder networks."""


def layer(kind: str, dims: int = SPATIAL_DIMS) -> type[nn.Module]:
    """The ``dims``-dimensional variant of a layer, e.g. ``Conv``, 3 → ``nn.Conv3d``."""
    return getattr(nn, f"{kind}{dims}d")


def channel_widths(patch_size: int, base_channels: int) -> list[int]:
    """Feature channels at each resolution level, from ``patch_size / 2`` down to 4.

    The width at resolution ``r`` is ``base_channels · 8 / r`` (at least 1):
    ``base_channels`` at 8 per side, doubling with every halving of resolution.
    Anchoring the widths to resolution rather than to the first layer keeps the
    expensive high-resolution layers narrow; for 64-pixel patches and the default
    ``base_channels=32`` the levels 32, 16, 8, 4 get 8, 16, 32, 64 channels.
    """
    resolutions = [patch_size >> level for level in range(1, int(math.log2(patch_size)) - 1)]
    return [max(1, base_channels * 8 // r) for r in resolutions]


def down_stack(in_channels: int, widths: list[int], *, batch_norm: bool, dims: int = SPATIAL_DIMS) -> nn.Sequential:
    """Strided convolutions halving the resolution per level.

    Maps (B, in_channels, S, S[, S]) to (B, widths[-1], 4, 4[, 4]). Each level is a
    4-wide stride-2 convolution and LeakyReLU(0.2); with ``batch_norm`` every level
    but the first also gets batch normalisation, as in DCGAN. ``dims`` (2 or 3)
    selects 2D or 3D layers.
    """
    conv, norm = layer("Conv", dims), layer("BatchNorm", dims)
    layers: list[nn.Module] = []
    for level, width in enumerate(widths):
        normed = batch_norm and level > 0
        layers.append(conv(in_channels, width, 4, stride=2, padding=1, bias=not normed))
        if normed:
            layers.append(norm(width))
        layers.append(nn.LeakyReLU(0.2))
        in_channels = width
    return nn.Sequential(*layers)


class ConditionalDecoder(nn.Module):
    """Latent code and class label → raw 2-channel patch (a DCGAN generator).

    The label's learned embedding is concatenated to the latent code (Mirza &
    Osindero 2014, arXiv:1411.1784); a 4-wide transposed convolution turns this
    1-pixel input into a 4-per-side feature map, and stride-2 transposed
    convolutions with batch norm and ReLU double it up to the patch size. The output
    is pre-activation; each model applies its own output nonlinearity.

    Parameters
    ----------
    latent_dim
        Size of the latent code.
    n_classes
        Number of class labels.
    widths
        Channels per resolution level, as from :func:`channel_widths`.
    dims
        Spatial dimensions of the patches, 2 or 3.
    """

    def __init__(self, latent_dim: int, n_classes: int, widths: list[int], *, dims: int = SPATIAL_DIMS) -> None:
        super().__init__()
        self.dims = dims
        conv_t, norm = layer("ConvTranspose", dims), layer("BatchNorm", dims)
        self.embed = nn.Embedding(n_classes, EMBED_DIM)
        layers: list[nn.Module] = [
            conv_t(latent_dim + EMBED_DIM, widths[-1], 4, bias=False),
            norm(widths[-1]),
            nn.ReLU(),
        ]
        for wide, narrow in zip(widths[:0:-1], widths[-2::-1]):
            layers += [conv_t(wide, narrow, 4, stride=2, padding=1, bias=False), norm(narrow), nn.ReLU()]
        layers.append(conv_t(widths[0], PATCH_CHANNELS, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Decode ``z`` (B, latent_dim) under ``labels`` (B,) to (B, 2, S, S[, S]) logits."""
        code = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(code.view(*code.shape, *(1,) * self.dims))


def resize_mask(mask: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Average-pool a (B, 1, S, S[, S]) mask in [-1, 1] to ``size``: the occupied fraction, rescaled."""
    pool = F.adaptive_avg_pool3d if mask.dim() == 5 else F.adaptive_avg_pool2d
    return mask if tuple(mask.shape[2:]) == tuple(size) else pool(mask, size)


class MaskConditionedDecoder(nn.Module):
    """Latent code, class label and lesion mask → raw 1-channel image (mask-conditioned generator).

    The DCGAN decoder of :class:`ConditionalDecoder` with the conditioning mask
    concatenated as one extra channel to the input of every transposed
    convolution, at that layer's resolution (average-pooled: the fraction of the
    coarse voxel inside the ROI), and once more at full resolution before a final
    3-wide convolution. Re-injecting the mask at every scale, after the batch
    norm that would otherwise wash a one-off input out, is the point of SPADE
    (Park et al. 2019, arXiv:1903.07291), obtained here by concatenation, which
    adds one input channel per layer instead of a modulation network per layer.

    Parameters
    ----------
    latent_dim, n_classes, widths, dims
        As for :class:`ConditionalDecoder`.
    """

    def __init__(self, latent_dim: int, n_classes: int, widths: list[int], *, dims: int = SPATIAL_DIMS) -> None:
        super().__init__()
        self.dims = dims
        conv, conv_t, norm = layer("Conv", dims), layer("ConvTranspose", dims), layer("BatchNorm", dims)
        self.embed = nn.Embedding(n_classes, EMBED_DIM)
        self.stem = nn.Sequential(conv_t(latent_dim + EMBED_DIM, widths[-1], 4, bias=False), norm(widths[-1]),
                                  nn.ReLU())
        self.ups = nn.ModuleList(
            nn.Sequential(conv_t(wide + 1, narrow, 4, stride=2, padding=1, bias=False), norm(narrow), nn.ReLU())
            for wide, narrow in zip(widths[::-1], widths[::-1][1:] + widths[:1])
        )
        self.head = conv(widths[0] + 1, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Decode ``z`` (B, latent_dim) under ``labels`` (B,) and ``mask`` (B, 1, S, S[, S]) in [-1, 1].

        Returns (B, 1, S, S[, S]) pre-activation image values.
        """
        code = torch.cat([z, self.embed(labels)], dim=1)
        h = self.stem(code.view(*code.shape, *(1,) * self.dims))
        for up in self.ups:
            h = up(torch.cat([h, resize_mask(mask, h.shape[2:])], dim=1))
        return self.head(torch.cat([h, mask], dim=1))


def build_decoder(latent_dim: int, n_classes: int, widths: list[int], *, dims: int, condition_on_mask: bool
                  ) -> nn.Module:
    """The generator network of a mode: :class:`MaskConditionedDecoder` or :class:`ConditionalDecoder`."""
    cls = MaskConditionedDecoder if condition_on_mask else ConditionalDecoder
    return cls(latent_dim, n_classes, widths, dims=dims)
