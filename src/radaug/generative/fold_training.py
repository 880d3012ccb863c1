"""Training of a generator arm of one fold (rule ``train_generator``): any registered model, by its protocol.

:func:`train_fold` trains a :class:`~radaug.generative.protocols.ConditionalSampler`
on the fold's training cases under their class labels (and, with
``generative.selection``, keeps its best step), or a
:class:`~radaug.generative.protocols.Translator` on the fold's training cases of its
two domains under their domain codes. Sampling from the trained model is
:mod:`radaug.generative.arm`. The two halves live apart so that the training jobs'
code version (:func:`radaug.provenance.code_version`, which follows imports) does not
hold the sampling side's shape model and classical transforms: a change there does
not retrain every generator.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from radaug.preprocess import load_patches
from radaug.splits import fold_cases, parse_fold_key
from radaug.standardise import content_index, for_fold, scale_record

from . import get_model, mask_conditioned
from .base import ConditionalModel, GenerativeModel
from .cyclegan import domain_training_set
from .protocols import ConditionalSampler, Translator
from .selection import SelectionOptions, curve_table
from .training import fit_in_fold, loss_curve_png, selection_seed, training_seed

log = logging.getLogger(__name__)


class TrainedFold(NamedTuple):
    """What :func:`train_fold` returns (the files of rule ``train_generator``)."""

    model: GenerativeModel
    """The trained model (``save`` it to the checkpoint)."""
    losses: pd.DataFrame
    """The loss log without throughput (deterministic values only; throughput goes to the log)."""
    losses_png: bytes
    """The loss curves as a PNG."""
    training_input: pd.DataFrame
    """Every case the model saw, with the content hash of its patch."""
    curve: pd.DataFrame
    """The selection curve (no rows unless the model was selected in fold)."""



def build_model(name: str, images: np.ndarray, n_classes: int, *, conditioning: str,
                hyperparams: Mapping[str, Any]) -> GenerativeModel:
    """An untrained model ``name`` for patches like ``images`` (``(N, *S)``).

    A class-conditional model (a :class:`~radaug.generative.protocols.ConditionalSampler`)
    draws masks itself or is given them, as ``generative.conditioning`` says for its
    spatial dimensions (:func:`radaug.generative.mask_conditioned`); a translator keeps
    its parents' masks and takes no such option.
    """
    from . import REGISTRY

    spatial_dims = images.ndim - 1
    mode = {}
    if issubclass(REGISTRY.get(name, object), ConditionalModel):  # the ConditionalSampler implementation
        mode["condition_on_mask"] = mask_conditioned(conditioning, spatial_dims)
    return get_model(name, patch_size=images.shape[-1], n_classes=n_classes, spatial_dims=spatial_dims,
                     **mode, **hyperparams)


def training_codes(model: GenerativeModel, train: pd.DataFrame, classes: Sequence[str]
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """The fold's training cases ``model`` learns from and their integer codes, by its protocol.

    A sampler learns every case under its class index in ``classes``; a translator the
    cases of its two domains (``train`` needs a ``domain`` column) under their domain
    codes (0 source, 1 target; :func:`radaug.generative.cyclegan.domain_training_set`).
    """
    if isinstance(model, Translator):
        return domain_training_set(train, model.hyperparams["source_domain"], model.hyperparams["target_domain"])
    return train, np.array([list(classes).index(x) for x in train["label"]], dtype=np.int64)


def train_fold(name: str, *, index: pd.DataFrame, folds: pd.DataFrame, patches: Sequence[str], fold: str,
               classes: list[str], hyperparams: Mapping[str, Any], conditioning: str, training: Mapping[str, Any],
               seed: int, checkpoint_path: str | os.PathLike) -> TrainedFold:
    """Train model ``name`` on fold ``fold``'s training cases only (rule ``train_generator``).

    Parameters
    ----------
    name
        A model of :data:`radaug.generative.REGISTRY` (``generative.models``).
    index, folds
        The case index and the split table.
    patches
        The preprocessed batch archives. With ``preprocess.normalisation: nyul`` the
        model learns the fold's standardised intensities (:func:`radaug.standardise.for_fold`),
        and the training-patch leakage check compares standardised patches.
    fold
        Fold key (``r0f1``).
    classes
        The study's classes (``data.classes``).
    hyperparams, conditioning
        ``generative.<name>`` and the model's ``generative.conditioning``.
    training
        The training options of ``generative`` (``steps``, ``batch_size``, ``device``,
        ``checkpoint_every``, ``log_every``, and ``selection`` when it is enabled: a
        sampler is then selected in fold, :mod:`radaug.generative.selection`).
    seed
        ``study.seed``; training and selection seeds derive from it and the fold.
    checkpoint_path
        Work-in-progress checkpoint: a killed job resumes from it when rerun.
    """
    repeat, fold_number = parse_fold_key(fold)
    train = fold_cases(folds, repeat, fold_number, "train")
    if "domain" in index:
        train = train.merge(index[["case_id", "domain"]], on="case_id", how="left", validate="one_to_one")
    standardisation = for_fold(index, folds, repeat, fold_number)  # None unless preprocess.normalisation: nyul
    ids, images, masks = load_patches(patches, list(train["case_id"]), standardisation=standardisation)
    if standardisation is not None:
        log.info("histogram standardisation %s", scale_record(standardisation))
        # the training-patch check compares standardised training patches with standardised test patches
        index = content_index(index, *load_patches(patches, list(index["case_id"]), standardisation=standardisation))
    model = build_model(name, images, len(classes), conditioning=conditioning, hyperparams=hyperparams)
    cases, codes = training_codes(model, train, classes)
    if len(cases) != len(train):  # a translator learns the cases of its two domains only
        keep = pd.Index(train["case_id"]).get_indexer(cases["case_id"])
        ids, images, masks = ids[keep], images[keep], masks[keep]
    selection = None
    if "selection" in training and isinstance(model, ConditionalSampler):
        selection = SelectionOptions.from_config(training["selection"])
    losses, training_input = fit_in_fold(
        model, folds=folds, cases=index, repeat=repeat, fold=fold_number, case_ids=ids, images=images, masks=masks,
        labels=codes, label_names=list(cases["label"]), selection=selection,
        selection_seed=selection_seed(seed, repeat, fold_number), steps=training["steps"],
        batch_size=training["batch_size"], seed=training_seed(seed, repeat, fold_number), device=training["device"],
        checkpoint_path=checkpoint_path, checkpoint_every=training["checkpoint_every"],
        log_every=training["log_every"], log=log.info)
    if model.selection:
        log.info("selected step %s of %s (%s)", model.selected_step, model.step, model.selection["metric"])
    # a model not selected in fold (a translator, or selection off) has a curve without rows
    curve = curve_table(model.selection, classes) if model.selection else pd.DataFrame(columns=["step"])
    return TrainedFold(model, losses.drop(columns="images_per_s"), loss_curve_png(losses, f"{name}, fold {fold}"),
                       training_input, curve)
