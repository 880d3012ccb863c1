"""The base classes of the generative models: a trainable model, and a class-conditional one.

A model learns the joint distribution of an image patch and its ROI mask given a
class label and samples new (image, mask) pairs per class (:class:`ConditionalModel`),
or learns to translate patches between two domains (CycleGAN). Everything that does
not depend on the architecture lives here or in the modules beside it:

* **Two modes.** *Joint* (default): the model generates image and mask from
  noise and the label. *Mask-conditioned* (``condition_on_mask=True``): the
  model is given a binary lesion mask and the label and generates only the
  image (the mask is concatenated to the decoder's input at every scale, see
  :class:`~radaug.generative.layers.MaskConditionedDecoder`); ``sample`` then takes
  the masks, e.g. from an in-fold shape model (:mod:`radaug.shape`). Training data are the same.
* **Data contract.** ``fit`` takes ``images`` (N, S, S) or, for 3D models,
  (N, S, S, S) in physical units, binary ``masks`` of the same shape and integer
  ``labels`` (N,). Every network is dimension-generic: ``spatial_dims`` picks
  Conv2d or Conv3d layers, nothing else changes. Internally a patch is a
  2-channel tensor in [-1, 1]: the image mapped by a robust monotone
  :class:`IntensityMap` fitted on the training patches (affine, or, for the GAN
  family by default, through the patches' quantiles), and the mask mapped
  {0, 1} → {-1, 1}. ``sample`` inverts both maps: images come back in physical
  units, masks as probabilities in [0, 1] (binarisation is the caller's).
* **Training loop** (:mod:`radaug.generative.loop`). Uniform sampling of batches with
  replacement from one seeded :class:`torch.Generator`, which also draws every latent
  code and noise term; atomic checkpoints every ``checkpoint_every`` steps, so a
  resumed run ends byte-identical to an uninterrupted one on CPU.
* **Devices** (:mod:`radaug.generative.device`). ``"auto"`` picks CUDA when available;
  mixed precision on CUDA, float32 with deterministic algorithms on CPU.
* **Networks** (:mod:`radaug.generative.layers`): small DCGAN-style building blocks.
* **Protocols** (:mod:`radaug.generative.protocols`): what the workflow may call on a
  trained model of each kind, checked for every registered model by the conformance tests.
"""

from __future__ import annotations

import abc
import inspect
import io
import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Self

import numpy as np
import torch
from torch import nn

from radaug.io import sha256_array, write_bytes

from . import loop
from .device import amp_dtype, deterministic, select_device
from .layers import SPATIAL_DIMS, channel_widths

if TYPE_CHECKING:
    import pandas as pd

    from .selection import Selection

_PERCENTILES = (0.5, 99.5)


# --------------------------------------------------------------------------- #
# Argument checks
# --------------------------------------------------------------------------- #


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as ``int``; raise ValueError unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, minimum: float, inclusive: bool) -> float:
    """Return ``value`` as ``float``; raise ValueError unless finite and above ``minimum``.

    ``inclusive`` allows ``value == minimum``.
    """
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= minimum if inclusive else value > minimum)
    )
    if not ok:
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {bound} {minimum}, got {value!r}")
    return float(value)


def check_patch_size(patch_size: Any) -> int:
    """Return ``patch_size``; raise ValueError unless it is a power of two >= 16."""
    size = check_int("patch_size", patch_size, 16)
    if size & (size - 1):
        raise ValueError(f"patch_size must be a power of two >= 16, got {patch_size!r}")
    return size


def check_spatial_dims(spatial_dims: Any) -> int:
    """Return ``spatial_dims``; raise ValueError unless it is 2 or 3."""
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return int(spatial_dims)


# --------------------------------------------------------------------------- #
# Intensity scaling
# --------------------------------------------------------------------------- #


INTENSITY_MAPS = ("linear", "quantile")
"""How a model maps physical intensities onto the networks' [-1, 1] (:meth:`IntensityMap.fit`)."""

QUANTILE_KNOTS = 33
"""Knots of the ``quantile`` map: the 0.5th to 99.5th percentiles in 32 equal steps."""


@dataclass(frozen=True)
class IntensityMap:
    """Monotone map of physical intensities onto [-1, 1], and back.

    ``linear`` (no ``knots``): ``lo`` maps to -1 and ``hi`` to +1, affinely.
    ``quantile``: piecewise linear through ``knots`` (physical intensities, strictly
    increasing) and ``unit`` (their places in [-1, 1], strictly increasing from -1
    to 1), the training patches' percentiles at evenly spaced places: every
    intensity band gets network range in proportion to how many voxels hold it
    (a histogram equalisation, exactly invertible). Values outside [lo, hi] are
    clipped either way, so a few extreme voxels do not compress the range the
    networks see.

    Why the quantile map (the GAN family's default): a CT patch holds air at
    -1000 HU besides soft tissue and lesions within about -100..100 HU; the linear
    map of the 0.5th..99.5th percentiles then puts all tissue into the top 10% of
    [-1, 1], where the generator's tanh saturates, with a lesion texture of about
    ±10 HU at ±0.02. Measured on the
    2D phantom (fold r0f0, dcgan, 800 steps; BENCHMARKS.md "Why the GANs failed on
    the 2D phantom"): every sample of a class was nearly the same patch with a
    noisy ROI (texture gradient 14x the real one), coverage 0; with the quantile
    map the ROI statistics come close to the real ones.

    Attributes
    ----------
    lo, hi
        Physical intensities mapped to -1 and +1 (``lo < hi``).
    knots, unit
        The quantile map's knots and their places in [-1, 1]; empty for a linear map.
    """

    lo: float
    hi: float
    knots: tuple[float, ...] = ()
    unit: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # checkpoints hold lists; a map compares equal to the one it was saved from
        object.__setattr__(self, "knots", tuple(float(k) for k in self.knots))
        object.__setattr__(self, "unit", tuple(float(u) for u in self.unit))

    @classmethod
    def fit(cls, images: np.ndarray, kind: str = "linear") -> IntensityMap:
        """Fit a ``linear`` or ``quantile`` map (:data:`INTENSITY_MAPS`) on the training ``images``.

        ``lo`` and ``hi`` are the 0.5th and 99.5th percentiles; the quantile map's
        knots are :data:`QUANTILE_KNOTS` evenly spaced percentiles between them, a
        run of equal knots (e.g. air at exactly -1000 HU) merged into one at the mean
        of their places.

        Raises
        ------
        ValueError
            If the percentiles coincide (constant patches cannot be scaled), or
            ``kind`` is unknown.
        """
        if kind not in INTENSITY_MAPS:
            raise ValueError(f"intensity_map must be one of {INTENSITY_MAPS}, got {kind!r}")
        lo, hi = np.percentile(images, _PERCENTILES)
        if not hi > lo:
            raise ValueError(
                f"images have no intensity spread (percentiles {_PERCENTILES} are both {lo}); "
                "check the patch extraction"
            )
        if kind == "linear":
            return cls(float(lo), float(hi))
        knots = np.percentile(images, np.linspace(*_PERCENTILES, QUANTILE_KNOTS))
        unique, which = np.unique(knots, return_inverse=True)
        places = np.bincount(which, np.linspace(-1.0, 1.0, QUANTILE_KNOTS)) / np.bincount(which)
        places = (places - places[0]) / (places[-1] - places[0]) * 2.0 - 1.0  # the ends at -1 and +1
        return cls(float(unique[0]), float(unique[-1]), tuple(unique), tuple(places))

    def to_unit(self, images: np.ndarray) -> np.ndarray:
        """Map physical intensities to [-1, 1] (float32), clipping outliers."""
        images = np.asarray(images, np.float64)
        if self.knots:
            return np.interp(images, self.knots, self.unit).astype(np.float32)
        scaled = (images - self.lo) / (self.hi - self.lo) * 2.0 - 1.0
        return np.clip(scaled, -1.0, 1.0).astype(np.float32)

    def from_unit(self, scaled: np.ndarray) -> np.ndarray:
        """Map values in [-1, 1] back to physical intensities (float32)."""
        scaled = np.asarray(scaled, np.float64)
        if self.knots:
            return np.interp(scaled, self.unit, self.knots).astype(np.float32)
        physical = (scaled + 1.0) / 2.0 * (self.hi - self.lo) + self.lo
        return physical.astype(np.float32)

    def state(self) -> dict:
        """Plain values for a checkpoint; a linear map keeps the two keys it always had."""
        extra = {"knots": list(self.knots), "unit": list(self.unit)} if self.knots else {}
        return {"lo": self.lo, "hi": self.hi, **extra}


# --------------------------------------------------------------------------- #
# The base classes
# --------------------------------------------------------------------------- #


class GenerativeModel(abc.ABC):
    """A trainable model of (image, mask) patches: construction, training and persistence.

    Subclasses set :attr:`name`, build their networks in :meth:`_build_networks`
    and optimizers in :meth:`_build_optimizers`, and implement one optimisation
    step (:meth:`_train_step`); :meth:`fit` runs them in the shared training loop
    (:func:`radaug.generative.loop.train`). What a trained model then does is its
    protocol (:mod:`radaug.generative.protocols`): a :class:`ConditionalModel`
    samples new pairs per class, a translator (CycleGAN) translates given patches.

    Parameters
    ----------
    patch_size
        Side of the square (2D) or cubic (3D) patches, a power of two >= 16 (32 or
        64 in practice).
    n_classes
        Number of class labels; labels are 0 .. n_classes - 1.
    latent_dim
        Size of the latent code.
    base_channels
        Network width: feature channels at 8 pixels per side, doubling per halving
        of resolution (see :func:`channel_widths`).
    lr
        Adam learning rate.
    spatial_dims
        2 for (S, S) patches, 3 for (S, S, S) patches; selects Conv2d or Conv3d
        layers, nothing else changes.
    condition_on_mask
        Mask-conditioned mode: :meth:`sample` takes the masks and generates the
        images only. Recorded in ``hyperparams`` only when true, so a joint-mode
        model keeps the checkpoint bytes it had before the mode existed.
    **extra_hyperparams
        Model-specific hyperparameters (plain Python values), already validated.

    Attributes
    ----------
    hyperparams : dict
        Constructor arguments; ``type(model)(**model.hyperparams)`` rebuilds it.
    step : int
        Training steps done.
    selection : dict or None
        With in-fold model selection (:mod:`radaug.generative.selection`): the
        selection record (``selected_step``, ``metric``, ``stopped_early``,
        ``options``, ``curve``) of the weights the model holds; None without.
    intensity : IntensityMap or None
        Intensity scaling fitted on the training patches; None before ``fit``.
    device : torch.device
        Where the networks live.
    nets : torch.nn.ModuleDict
        The networks.
    """

    name: ClassVar[str]

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        latent_dim: int,
        base_channels: int,
        lr: float,
        spatial_dims: int = SPATIAL_DIMS,
        condition_on_mask: bool = False,
        **extra_hyperparams: Any,
    ) -> None:
        if not isinstance(condition_on_mask, bool):
            raise ValueError(f"condition_on_mask must be True or False, got {condition_on_mask!r}")
        self.condition_on_mask = condition_on_mask
        self.patch_size = check_patch_size(patch_size)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.n_classes = check_int("n_classes", n_classes, 1)
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.base_channels = check_int("base_channels", base_channels, 1)
        self.lr = check_float("lr", lr, minimum=0.0, inclusive=False)
        self.hyperparams: dict[str, Any] = {
            "patch_size": self.patch_size,
            "n_classes": self.n_classes,
            "latent_dim": self.latent_dim,
            "base_channels": self.base_channels,
            "lr": self.lr,
            "spatial_dims": self.spatial_dims,
            **({"condition_on_mask": True} if condition_on_mask else {}),
            **extra_hyperparams,
        }
        self.widths = channel_widths(self.patch_size, self.base_channels)
        self.patch_shape = (self.patch_size,) * self.spatial_dims
        self.step = 0
        self.selection: dict | None = None
        self.intensity: IntensityMap | None = None
        self.device = torch.device("cpu")
        self.nets = self._seeded_networks(0)
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._scaler = torch.amp.GradScaler("cpu", enabled=False)
        self._rng = torch.Generator()
        self._train_patches = self._train_labels = None
        self._batch_size = 0

    @property
    def selected_step(self) -> int | None:
        """The training step whose weights the model holds when chosen by in-fold selection; else None."""
        return None if self.selection is None else self.selection["selected_step"]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks ---------------------------------------------------- #

    @abc.abstractmethod
    def _build_networks(self) -> dict[str, nn.Module]:
        """Build freshly initialised networks (on CPU, from the global RNG)."""

    @abc.abstractmethod
    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Build optimizers for ``self.nets`` (already on ``self.device``)."""

    @abc.abstractmethod
    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a batch; return the loss components.

        Parameters
        ----------
        images
            (B, 2, S, S[, S]) patches in [-1, 1] on ``self.device``: image, then mask.
        labels
            (B,) int64 class labels on ``self.device``.

        A step that needs more real data (e.g. several critic updates per
        generator update) draws further batches with :meth:`_draw_batch`.
        """

    # -- helpers for subclasses -------------------------------------------- #

    def _draw_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch drawn uniformly with replacement by the training generator.

        Returns (B, 2, S, S[, S]) patches in [-1, 1] and (B,) labels on ``self.device``;
        only valid inside :meth:`fit`.
        """
        idx = torch.randint(len(self._train_labels), (self._batch_size,), generator=self._rng).to(self.device)
        return self._train_patches[idx], self._train_labels[idx]

    def _noise(self, *shape: int) -> torch.Tensor:
        """Standard normal noise from the training generator, on ``self.device``."""
        return torch.randn(shape, generator=self._rng).to(self.device)

    def _autocast(self) -> torch.autocast:
        """Mixed precision on CUDA; a no-op context on CPU."""
        dtype = amp_dtype(self.device)
        return torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def _optimize(self, loss: torch.Tensor, optimizer: str) -> None:
        """Backpropagate ``loss`` and step the named optimizer (through the loss scaler)."""
        opt = self._optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward()
        self._scaler.step(opt)
        self._scaler.update()

    # -- training ------------------------------------------------------------ #

    def fit(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        labels: np.ndarray,
        *,
        steps: int,
        batch_size: int = 32,
        seed: int = 0,
        device: str = "auto",
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 200,
        log_every: int = 50,
        log: Callable[[str], object] = print,
        selection: Selection | None = None,
    ) -> pd.DataFrame:
        """Train from scratch, or resume from a matching checkpoint, up to ``steps`` steps.

        Networks are re-initialised from ``seed``. If ``checkpoint_path`` exists and
        was written by a run with the same model, hyperparameters, data, seed,
        batch size and precision, training resumes from it and ends byte-identical
        (on CPU) to an uninterrupted run; otherwise it is overwritten.

        Parameters
        ----------
        images
            (N, S, S) or (N, S, S, S) patches in physical units (e.g. z-scored MR,
            CT in HU), matching ``spatial_dims``.
        masks
            Binary ROI masks (values 0 and 1) of the shape of ``images``.
        labels
            (N,) integer class labels in 0 .. n_classes - 1.
        steps
            Total number of optimisation steps (including resumed ones).
        batch_size
            Patches per step, drawn uniformly with replacement.
        seed
            Seeds network initialisation, batch sampling and all noise.
        device
            ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        checkpoint_path
            Where to write the training checkpoint atomically, every
            ``checkpoint_every`` steps and at the end; None disables checkpoints.
        checkpoint_every
            Steps between checkpoints.
        log_every
            Steps between loss-log rows and progress messages.
        log
            Receives progress messages.
        selection
            In-fold model selection (:class:`~radaug.generative.selection.Selection`,
            built on a holdout of training cases that are not in ``images``): the
            model is scored every ``every`` steps, training stops after ``patience``
            evaluations without improvement, and the model ends with the best
            weights and :attr:`selection` set. None (default): all ``steps``, last weights.

        Returns
        -------
        pandas.DataFrame
            One row per logged step: ``step``, the model's loss components averaged
            over the interval ending at that step, and ``images_per_s``.

        Raises
        ------
        ValueError
            If the data or an argument is invalid.
        """
        images, masks, labels = self._check_data(images, masks, labels)
        steps = check_int("steps", steps, 1)
        batch_size = check_int("batch_size", batch_size, 1)
        seed = check_int("seed", seed, 0)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        log_every = check_int("log_every", log_every, 1)
        dev = select_device(device)
        amp = amp_dtype(dev)
        config = {
            "model": self.name,
            "hyperparams": dict(self.hyperparams),
            "seed": seed,
            "batch_size": batch_size,
            "precision": "float32" if amp is None else f"{str(amp).removeprefix('torch.')}-mixed",
            # CPU reductions depend on the thread count: resuming under another one would not be byte-identical.
            "threads": torch.get_num_threads(),
            "data_sha256": [sha256_array(a) for a in (images, masks, labels)],
        }

        self.intensity = IntensityMap.fit(images, self.hyperparams.get("intensity_map", "linear"))
        patches = np.stack([self.intensity.to_unit(images), masks.astype(np.float32) * 2 - 1], axis=1)
        patches_t = torch.from_numpy(patches).to(dev)
        labels_t = torch.from_numpy(labels).to(dev)

        self.device = dev
        self.nets = self._seeded_networks(seed).to(dev)
        self._optimizers = self._build_optimizers()
        self._scaler = torch.amp.GradScaler(dev.type, enabled=amp == torch.float16)
        self._rng = torch.Generator().manual_seed(seed)
        self.step = 0
        self.selection = None
        self._train_patches, self._train_labels, self._batch_size = patches_t, labels_t, batch_size
        try:
            return loop.train(self, config, steps=steps, batch_size=batch_size, checkpoint_path=checkpoint_path,
                              checkpoint_every=checkpoint_every, log_every=log_every, log=log, selection=selection)
        finally:
            self._train_patches = self._train_labels = None

    def _check_data(
        self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate training data; return float32 images, uint8 masks, int64 labels."""
        images, masks = np.asarray(images), np.asarray(masks)
        if images.ndim != 1 + self.spatial_dims or images.shape[1:] != self.patch_shape or not len(images):
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.patch_shape))}) "
                             f"with N >= 1, got {images.shape}")
        if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
            raise ValueError("images must be finite numbers")
        if masks.shape != images.shape:
            raise ValueError(f"masks must have the shape of images {images.shape}, got {masks.shape}")
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("masks must be binary (values 0 and 1)")
        labels = self._check_labels(labels)
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
        return images.astype(np.float32), masks.astype(np.uint8), labels

    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        """Validate a 1-D array of class labels; return it as int64."""
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in 0 .. {self.n_classes - 1}, got {labels.min()} .. {labels.max()}")
        return labels.astype(np.int64)

    def _seeded_networks(self, seed: int) -> nn.ModuleDict:
        """Networks initialised from ``seed``, leaving the caller's global RNG untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            return nn.ModuleDict(self._build_networks())

    # -- persistence --------------------------------------------------------- #

    def _state(self) -> dict:
        """Everything needed to sample: hyperparameters, weights, intensity map, step."""
        if self.intensity is None:
            raise RuntimeError(f"{self.name} model is not trained; there is nothing to save")
        state = {
            "format": loop.CHECKPOINT_FORMAT,
            "model": self.name,
            "hyperparams": dict(self.hyperparams),
            "step": self.step,
            "intensity": self.intensity.state(),
            "state_dict": self.nets.state_dict(),
        }
        if self.selection is not None:  # only with in-fold selection: other checkpoints keep their bytes
            state["selection"] = self.selection
        return state

    def _write(self, path: str | os.PathLike, **extra: Any) -> None:
        # Through a buffer: torch.save names the archive's root folder after the file,
        # and a temporary file name would make equal checkpoints differ byte-wise.
        buffer = io.BytesIO()
        torch.save({**self._state(), **extra}, buffer)
        write_bytes(path, buffer.getvalue())

    def save(self, path: str | os.PathLike) -> None:
        """Write the trained model (no optimizer state) atomically to ``path``.

        The file holds ``format``, ``model`` (the name), ``hyperparams``, ``step``,
        ``intensity`` (``lo``, ``hi``) and ``state_dict``, all tensors or plain
        Python values, readable with ``torch.load(path, weights_only=True)``;
        with in-fold selection also ``selection`` (:attr:`selection`: the chosen
        step and the curve; ``state_dict`` then holds the chosen step's weights).
        Training checkpoints hold the same plus a ``training`` section.
        """
        self._write(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> Self:
        """Load a model written by :meth:`save` (or a training checkpoint) onto ``device``.

        Raises
        ------
        ValueError
            If the file holds another kind of model or an unknown checkpoint format.
        """
        ckpt = loop.read_checkpoint(path)
        if ckpt["model"] != cls.name:
            raise ValueError(
                f"{path} holds a {ckpt['model']!r} model, not {cls.name!r}; "
                "use radaug.generative.load_model to load any model"
            )
        return cls._from_state(ckpt, select_device(device))

    @classmethod
    def _from_state(cls, ckpt: dict, device: torch.device) -> Self:
        hyperparams = dict(ckpt["hyperparams"])
        if "intensity_map" in inspect.signature(cls).parameters and "knots" not in ckpt["intensity"]:
            # saved before the map was a hyperparameter (or linear): say the map it holds
            hyperparams.setdefault("intensity_map", "linear")
        model = cls(**hyperparams)
        model.nets.load_state_dict(ckpt["state_dict"])
        model.nets.to(device)
        model.device = device
        model.intensity = IntensityMap(**ckpt["intensity"])
        model.step = ckpt["step"]
        if "selection" in ckpt and "training" not in ckpt:  # a training checkpoint holds the current weights
            model.selection = ckpt["selection"]
        return model


class ConditionalModel(GenerativeModel):
    """A class-conditional generative model: samples new (image, mask) pairs per class label.

    The :class:`~radaug.generative.protocols.ConditionalSampler` of the registry
    (:data:`radaug.generative.MODELS`). Subclasses implement, besides the training hooks
    of :class:`GenerativeModel`, decoding of latent codes (:meth:`_generate`).
    """

    @abc.abstractmethod
    def _generate(
        self, z: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode latent codes ``z`` (B, *:meth:`_latent_shape`) under ``labels`` (B,).

        ``masks`` (B, 1, S, S[, S]) in {-1, 1} are the conditioning masks of a
        mask-conditioned model (None in joint mode); the returned mask
        probability is then that mask in {0, 1}.

        Returns
        -------
        image, mask_prob
            (B, S, S[, S]) tensors: image in [-1, 1], mask probability in [0, 1].
        """

    def _latent_shape(self) -> tuple[int, ...]:
        """Shape of one sample's latent draw handed to :meth:`_generate`: a code of ``latent_dim``.

        A model whose sampling needs more randomness (a diffusion model's initial
        noise and per-step noise) widens it, so that it is all drawn up front from
        the sample seed.
        """
        return (self.latent_dim,)

    # -- sampling ------------------------------------------------------------ #

    def sample(
        self, labels: np.ndarray, *, seed: int, batch_size: int = 256, masks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one (image, mask) pair per requested label.

        Latent codes come from the prior N(0, I), all drawn up front from a
        generator seeded with ``seed``, so they do not depend on ``batch_size``.

        Parameters
        ----------
        labels
            (M,) integer class labels, one per sample wanted.
        seed
            Seeds the latent codes.
        batch_size
            Samples decoded per forward pass.
        masks
            (M, S, S[, S]) binary masks to synthesise images for: required by a
            mask-conditioned model (``condition_on_mask``), refused by a joint one.

        Returns
        -------
        images : numpy.ndarray
            (M, S, S[, S]) float32 in physical units, within the fitted intensity range.
        mask_prob : numpy.ndarray
            float32 mask probabilities in [0, 1], shaped like ``images``.

        Raises
        ------
        RuntimeError
            If the model has been neither fitted nor loaded.
        ValueError
            If an argument is invalid.
        """
        if self.intensity is None:
            raise RuntimeError(f"{self.name} model is not trained; call fit() or load() first")
        labels = self._check_labels(labels)
        seed = check_int("seed", seed, 0)
        batch_size = check_int("batch_size", batch_size, 1)
        condition = self._check_condition_masks(masks, len(labels))
        z = torch.randn(len(labels), *self._latent_shape(), generator=torch.Generator().manual_seed(seed))
        images = np.empty((len(labels), *self.patch_shape), np.float32)
        out_masks = np.empty_like(images)
        was_training = self.nets.training
        self.nets.eval()
        try:
            with torch.inference_mode(), deterministic(self.device), self._autocast():
                for start in range(0, len(labels), batch_size):
                    chunk = slice(start, start + batch_size)
                    given = None if condition is None else condition[chunk].to(self.device)
                    image, mask = self._generate(
                        z[chunk].to(self.device), torch.from_numpy(labels[chunk]).to(self.device), given
                    )
                    images[chunk] = image.float().cpu().numpy()
                    out_masks[chunk] = mask.float().cpu().numpy()
        finally:
            self.nets.train(was_training)
        return self.intensity.from_unit(images), out_masks

    def _check_condition_masks(self, masks: np.ndarray | None, n: int) -> torch.Tensor | None:
        """Validate the masks given to :meth:`sample`; return them as (M, 1, *S) in {-1, 1}, or None."""
        if not self.condition_on_mask:
            if masks is not None:
                raise ValueError(f"{self.name} generates masks jointly (condition_on_mask=False); "
                                 "sample() takes no masks")
            return None
        if masks is None:
            raise ValueError(f"{self.name} is mask-conditioned: pass sample(..., masks=) with one binary mask "
                             "per label (e.g. from radaug.shape.ShapeModel)")
        masks = np.asarray(masks)
        if masks.shape != (n, *self.patch_shape):
            raise ValueError(f"masks must have shape ({n}, {', '.join(map(str, self.patch_shape))}), "
                             f"got {masks.shape}")
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("masks must be binary (values 0 and 1)")
        return torch.from_numpy(masks.astype(np.float32) * 2 - 1).unsqueeze(1)
