"""Class-conditional generative models of (image, mask) patches.

Every model implements :class:`GenerativeModel`: ``fit`` on real training patches
of one fold, ``sample`` new pairs per class, ``save``/``load`` checkpoints.

>>> sorted(MODELS)
['cvae', 'dcgan', 'lsgan', 'wgan_gp']
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from .base import GenerativeModel, IntensityMap, read_checkpoint, select_device
from .cvae import CVAE
from .gan import DCGAN, LSGAN, WGANGP, ConditionalGAN

MODELS: dict[str, type[GenerativeModel]] = {cls.name: cls for cls in (CVAE, DCGAN, LSGAN, WGANGP)}
"""Model name → class. A model added here is checked by the shared conformance tests."""

__all__ = [
    "CVAE", "DCGAN", "LSGAN", "MODELS", "WGANGP", "ConditionalGAN", "GenerativeModel", "IntensityMap",
    "get_model", "load_model", "select_device",
]


def _model_class(name: str) -> type[GenerativeModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown generative model {name!r}; choose one of {sorted(MODELS)}") from None


def get_model(name: str, **kwargs: Any) -> GenerativeModel:
    """Build the model called ``name`` with constructor arguments ``kwargs``.

    Parameters
    ----------
    name
        A key of :data:`MODELS`.
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
