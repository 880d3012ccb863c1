"""Small-data GAN training: differentiable augmentation, R1 penalty, generator weight averaging.

A discriminator trained on a few dozen patches memorises them within a few
hundred steps; its gradients then stop guiding the generator, which collapses.
Three published measures, each a switch of the GAN family
(:class:`~radaug.generative.gan.ConditionalGAN`), counter this:

==================  ============================================================  ==================================
switch              what it does                                                  reference
==================  ============================================================  ==================================
``diffaugment``     the same kind of random, differentiable transform is applied  Zhao et al. 2020, arXiv:2006.10738
                    to real and generated patches before every discriminator
                    call (discriminator and generator steps alike), so the
                    discriminator cannot memorise the real patches and the
                    generator still learns the untransformed distribution
``r1_gamma``        ``γ/2 · E‖∇ₓD(x)‖²`` on real patches added to the             Mescheder et al. 2018,
                    discriminator loss: no gradient away from the data manifold   arXiv:1801.04406
``ema_beta``        samples come from an exponential moving average of the        Karras et al. 2018,
                    generator's weights, ``θ̄ ← β_t θ̄ + (1 - β_t) θ`` with the     arXiv:1710.10196; Yazıcı et al.
                    warm-up ``β_t = min(β, (1 + t) / (10 + t))`` after t updates  2019, arXiv:1806.04498
                    (:func:`ema_decay`)
==================  ============================================================  ==================================

The DiffAugment transforms follow the authors' reference implementation
(``DiffAugment_pytorch.py``): ``brightness`` adds U(-0.5, 0.5) per sample,
``contrast`` scales about the sample mean by U(0.5, 1.5), ``translation`` shifts
by up to 1/8 of the side with zero padding, ``cutout`` zeroes one square of half
the side at a random place. The reference's ``saturation`` (colour) has no
meaning for a one-channel image and is not offered; ``color`` stands for
brightness and contrast. Photometric transforms touch the image channel only;
translation moves image and mask together (the mask channel is part of the
patch the discriminator judges). All randomness comes from the model's training
generator, so training stays deterministic and resumable.

**The mask channel only ever shows valid masks.** The reference augments RGB
images, where the fill value 0 is an ordinary mid-grey. In the mask channel
({-1, 1}: background, lesion) 0 is a value no real mask has, a mask probability
of exactly 0.5: a zero fill shows the discriminator real patches with 0-valued
mask regions, a leaking augmentation in the sense of Karras et al. 2020
(arXiv:2006.06676, section 2). So translation pads the mask channel with
background (-1), and a shifted mask is still a valid mask; cutout acts on the
image channel only (a box cut out of a real mask would show it holed or empty),
and the image channel keeps the occlusion the paper wants. Context (BENCHMARKS.md,
"Why the GANs failed on the 2D phantom"): the study's dcgan with
``color,translation,cutout`` + R1 + EMA drew malignant masks of probability about
0.5 in one fold, and its discriminator scored real patches with a zeroed mask
channel nearly as real as real ones; no single switch did that (R1 alone came
closest), and the empty masks themselves were not reproduced outside that run, so
this fix is a correctness fix whose effect on that failure is not measured.
"""

from __future__ import annotations

import torch

DIFFAUGMENT_TRANSFORMS = ("brightness", "contrast", "translation", "cutout")
"""Transforms a ``diffaugment`` policy may name (``color`` = brightness, contrast)."""

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
MASK_BACKGROUND = -1.0
"""The mask channel's background value: what translation pads the mask with."""


def parse_policy(policy: str) -> tuple[str, ...]:
    """A comma-separated policy (e.g. ``"color,translation,cutout"``) as transform names; ``""`` is off.

    Raises
    ------
    ValueError
        If the policy names an unknown transform.
    """
    if not isinstance(policy, str):
        raise ValueError(f"diffaugment must be a comma-separated string, got {policy!r}")
    names: list[str] = []
    for token in (t.strip() for t in policy.split(",") if t.strip()):
        expanded = ("brightness", "contrast") if token == "color" else (token,)
        for name in expanded:
            if name not in DIFFAUGMENT_TRANSFORMS:
                raise ValueError(f"diffaugment: unknown transform {token!r}; use a comma-separated list of "
                                 f"{', '.join(('color',) + DIFFAUGMENT_TRANSFORMS)}")
            if name not in names:
                names.append(name)
    return tuple(names)


def _uniform(rng: torch.Generator, n: int, dims: int, device: torch.device) -> torch.Tensor:
    return torch.rand((n,) + (1,) * (dims + 1), generator=rng).to(device)


def _translate(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shift each sample by an integer offset up to ``TRANSLATION_RATIO`` of each side.

    The image channel is padded with 0 (the reference's fill), the mask channels with
    :data:`MASK_BACKGROUND`, so a shifted mask is still a valid mask.
    """
    n, spatial = len(x), x.shape[2:]
    fill = torch.full((1, x.shape[1]) + (1,) * len(spatial), MASK_BACKGROUND, dtype=x.dtype, device=x.device)
    fill[:, :1] = 0.0
    out = x
    for axis, size in enumerate(spatial):
        reach = int(size * TRANSLATION_RATIO + 0.5)
        if reach == 0:
            continue
        shift = torch.randint(-reach, reach + 1, (n,), generator=rng).to(x.device)
        index = torch.arange(size, device=x.device)[None, :] - shift[:, None]  # (n, size): source position
        valid = (index >= 0) & (index < size)
        index = index.clamp(0, size - 1)
        view = [n] + [1] * (x.dim() - 1)
        view[2 + axis] = size
        gathered = torch.take_along_dim(out, index.view(view).expand_as(out), dim=2 + axis)
        out = torch.where(valid.view(view), gathered, fill)
    return out


def _cutout(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Zero one axis-aligned box of ``CUTOUT_RATIO`` of each side per sample in the image channel (clipped at the border).

    The mask channels are left whole (see the module docstring: a holed or empty real
    mask would teach the discriminator to accept holed or empty generated ones).
    """
    n, spatial = len(x), x.shape[2:]
    inside = torch.ones((n, *spatial), dtype=torch.bool, device=x.device)
    for axis, size in enumerate(spatial):
        half = int(size * CUTOUT_RATIO + 0.5) // 2
        centre = torch.randint(0, size + (1 - size % 2), (n,), generator=rng).to(x.device)
        pos = torch.arange(size, device=x.device)[None, :]
        along = (pos >= centre[:, None] - half) & (pos < centre[:, None] + half)
        shape = [n] + [1] * len(spatial)
        shape[1 + axis] = size
        inside = inside & along.view(shape)
    return torch.cat([x[:, :1] * (~inside).unsqueeze(1).to(x.dtype), x[:, 1:]], dim=1)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """Apply a DiffAugment policy to (B, C, S, S[, S]) patches (channel 0 the image); differentiable in ``x``.

    Each transform draws its own random parameters per sample from ``rng``; with an
    empty policy ``x`` is returned unchanged.
    """
    dims = x.dim() - 2
    for name in policy:
        if name == "brightness":
            shift = _uniform(rng, len(x), dims, x.device) - 0.5
            x = torch.cat([x[:, :1] + shift, x[:, 1:]], dim=1)
        elif name == "contrast":
            image = x[:, :1]
            mean = image.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            scale = _uniform(rng, len(x), dims, x.device) + 0.5
            x = torch.cat([(image - mean) * scale + mean, x[:, 1:]], dim=1)
        elif name == "translation":
            x = _translate(x, rng)
        elif name == "cutout":
            x = _cutout(x, rng)
        else:  # parse_policy guards this
            raise ValueError(f"unknown DiffAugment transform {name!r}")
    return x


def r1_penalty(outputs: torch.Tensor, inputs: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``E‖∇ₓD(x)‖²`` of discriminator ``outputs`` w.r.t. real ``inputs`` (which require grad).

    ``scale`` is a float16 loss scaler's current scale: the gradient is taken of the
    scaled outputs and unscaled, as in PyTorch's AMP recipe for gradient penalties.
    """
    (grad,) = torch.autograd.grad(outputs.sum() * scale, inputs, create_graph=True)
    return (grad.float() / scale).flatten(1).square().sum(dim=1).mean()


def ema_decay(beta: float, updates: int) -> float:
    """The decay after ``updates`` previous updates: ``min(beta, (1 + updates) / (10 + updates))``.

    The warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``.
    Without it a decay of 0.999 averages over about 1,000 steps, longer than a
    CPU-budget run of a few hundred: the average would still be mostly the
    random initial generator (measured on the phantom at 300 steps: every
    sample's ROI outside the plausible range).
    """
    return min(beta, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_average(average: torch.nn.Module, live: torch.nn.Module, beta: float) -> None:
    """``θ̄ ← β θ̄ + (1 - β) θ`` for parameters; buffers (batch-norm statistics) are copied."""
    for p_avg, p in zip(average.parameters(), live.parameters(), strict=True):
        p_avg.lerp_(p.detach(), 1.0 - beta)
    for b_avg, b in zip(average.buffers(), live.buffers(), strict=True):
        b_avg.copy_(b)
