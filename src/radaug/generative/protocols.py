"""What the workflow may call on a generative model: two protocols, one per kind of model.

Every registered model (:data:`radaug.generative.REGISTRY`) is trained the same way
(:meth:`~radaug.generative.base.GenerativeModel.fit` on a fold's training patches, then
``save``/``load``), and makes new training rows in one of two ways:

* a :class:`ConditionalSampler` (:data:`radaug.generative.MODELS`: cvae, the GANs, ddpm)
  draws new (image, mask) pairs per class label from noise, optionally given the masks;
* a :class:`Translator` (:data:`radaug.generative.TRANSLATION_MODELS`: cyclegan) maps given
  patches of a source domain to a target domain; its ``fit`` takes domain codes
  (0 source, 1 target) where a sampler takes class labels, and each translated sample
  keeps its parent's mask and class.

The protocols are :func:`typing.runtime_checkable`, so ``isinstance(model, Translator)``
says which kind a model is (:mod:`radaug.generative.arm` dispatches the workflow's
training and sampling on it); ``tests/unit/test_generative_conformance.py`` checks that
every registered model satisfies exactly the protocol of its registry and passes that
protocol's conformance tests.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class TrainableModel(Protocol):
    """What every registered model offers: a name, hyperparameters, training and persistence."""

    name: ClassVar[str]
    hyperparams: dict[str, Any]
    step: int

    def fit(self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, **options: Any) -> pd.DataFrame:
        """Train on (N, *S) patches, binary masks and (N,) integer codes; return the loss log."""

    def save(self, path: str | os.PathLike) -> None:
        """Write the trained model (loadable with :func:`radaug.generative.load_model`)."""


@runtime_checkable
class ConditionalSampler(TrainableModel, Protocol):
    """A model that draws new (image, mask) pairs per class label (``fit`` takes class labels)."""

    condition_on_mask: bool

    def sample(self, labels: np.ndarray, *, seed: int, batch_size: int = 256,
               masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One (image in physical units, mask probability) pair per label; ``masks`` given when
        ``condition_on_mask``. The same seed gives the same pairs."""


@runtime_checkable
class Translator(TrainableModel, Protocol):
    """A model that translates given patches between two domains (``fit`` takes domain codes 0/1)."""

    @property
    def direction(self) -> str:
        """``"<source>-><target>"``, recorded with every translated sample."""

    def translate(self, images: np.ndarray, masks: np.ndarray, *, reverse: bool = False,
                  batch_size: int = 64) -> np.ndarray:
        """Translated images (physical units) of source patches; deterministic, masks unchanged."""
