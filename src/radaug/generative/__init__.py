"""Generative models of (image, mask) patches, and their registry.

Every model is a :class:`GenerativeModel`: ``fit`` on real training patches of one
fold (the shared loop of :mod:`.loop`), ``save``/``load`` checkpoints. What it then
does is one of two protocols (:mod:`.protocols`): the class-conditional models of
:data:`MODELS` (:class:`ConditionalModel`) ``sample`` new pairs per class; the
translation models of :data:`TRANSLATION_MODELS` (CycleGAN) ``translate`` given
patches between domains. Modules: ``base`` (the base classes, argument checks,
intensity map), ``layers`` (network blocks), ``loop`` (training loop, loss log,
checkpoints), ``device`` (device, mixed precision, determinism), one module per model,
and ``arm`` (what the workflow runs for any model: train it on a fold, fill the fold's
quotas with it; in the generator jobs, the one place that tells the two protocols apart).

>>> sorted(MODELS)
['cvae', 'dcgan', 'ddpm', 'lsgan', 'wgan_gp']
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from .base import ConditionalModel, GenerativeModel, IntensityMap
from .cvae import CVAE
from .cyclegan import CycleGAN
from .ddpm import DDPM
from .device import select_device
from .gan import DCGAN, LSGAN, WGANGP, ConditionalGAN
from .loop import read_checkpoint
from .protocols import ConditionalSampler, Translator

MODELS: dict[str, type[ConditionalModel]] = {cls.name: cls for cls in (CVAE, DCGAN, DDPM, LSGAN, WGANGP)}
"""Model name → class, for the models that sample new pairs per class (:class:`ConditionalSampler`)."""

TRANSLATION_MODELS: dict[str, type[GenerativeModel]] = {CycleGAN.name: CycleGAN}
"""Model name → class, for the models that translate given patches between domains (:class:`Translator`)."""

REGISTRY: dict[str, type[GenerativeModel]] = {**MODELS, **TRANSLATION_MODELS}
"""Every registered model; each passes the conformance tests of its protocol
(``tests/unit/test_generative_conformance.py``)."""

CONDITIONING_MODES = ("auto", "joint", "mask")
"""Values of the ``generative.conditioning`` config key."""

__all__ = [
    "CONDITIONING_MODES", "CVAE", "DCGAN", "DDPM", "LSGAN", "MODELS", "REGISTRY", "TRANSLATION_MODELS", "WGANGP",
    "ConditionalGAN", "ConditionalModel", "ConditionalSampler", "CycleGAN", "GenerativeModel", "IntensityMap",
    "Translator", "get_model", "load_model", "mask_conditioned", "select_device",
]


def mask_conditioned(conditioning: str, spatial_dims: int) -> bool:
    """Whether a noise-to-image model runs mask-conditioned under ``generative.conditioning``.

    ``"auto"`` is mask conditioning for 3D patches and joint generation for 2D:
    small 3D cohorts give a generator too few shapes to invent plausible 3D lesion
    masks from noise, while the default 2D study was measured in joint mode.

    >>> mask_conditioned("auto", 3), mask_conditioned("auto", 2), mask_conditioned("mask", 2)
    (True, False, True)
    """
    if conditioning not in CONDITIONING_MODES:
        raise ValueError(f"conditioning must be one of {CONDITIONING_MODES}, got {conditioning!r}")
    return conditioning == "mask" or (conditioning == "auto" and spatial_dims == 3)


def _model_class(name: str) -> type[GenerativeModel]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown generative model {name!r}; choose one of {sorted(REGISTRY)}") from None


def get_model(name: str, **kwargs: Any) -> GenerativeModel:
    """Build the model called ``name`` with constructor arguments ``kwargs``.

    Parameters
    ----------
    name
        A key of :data:`REGISTRY` (:data:`MODELS` or :data:`TRANSLATION_MODELS`).
    **kwargs
        ``patch_size``, ``n_classes`` and the model's hyperparameters.

    Raises
    ------
    ValueError
        If ``name`` is unknown, an argument is missing, unknown or invalid.
    """
    cls = _model_class(name)
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        params = ", ".join(inspect.signature(cls).parameters)
        raise ValueError(f"{name}: {exc}; the arguments are {params}") from None
    return cls(**kwargs)


def load_model(path: str | os.PathLike, device: str = "cpu") -> GenerativeModel:
    """Load a saved model or training checkpoint of any kind onto ``device``.

    Raises
    ------
    ValueError
        If the file is not a radaug checkpoint or names an unknown model.
    """
    ckpt = read_checkpoint(path)
    return _model_class(ckpt["model"])._from_state(ckpt, select_device(device))
