"""A generator arm of one fold: train any registered model on the fold, then fill its quotas.

The workflow's two generator stages, one function each, for every model of the
registry; what differs between kinds of model is decided by the model's protocol
(:mod:`.protocols`), never by its name:

* :func:`~radaug.generative.fold_training.train_fold` (rule ``train_generator``,
  in :mod:`radaug.generative.fold_training`, apart so that the training jobs' code
  version does not hold this module's shape model and classical transforms): a
  :class:`~radaug.generative.protocols.ConditionalSampler` learns the fold's
  training cases under their class labels (and, with ``generative.selection``,
  keeps its best step); a :class:`~radaug.generative.protocols.Translator` learns
  the fold's training cases of its two domains under their domain codes.
* :func:`sample_fold` (rule ``sample_synthetic``): the fold's rebalancing quotas
  (:func:`radaug.sampling.class_quotas`, shared with the classical arm) filled by
  :func:`fill_quotas` (a sampler draws per class, rejecting implausible ROI sizes;
  a translator translates the fold's source-domain training cases), the samples
  normalised like the real patches, and their table (:data:`SAMPLE_COLUMNS` and
  the columns of the model's kind) with the provenance of every sample.

The classical arm's equivalent is :func:`radaug.augment.classical.augment_fold`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from radaug.features import parse_spacing
from radaug.io import sha256_file
from radaug.preprocess import load_patches, normalise_patch
from radaug.sampling import class_quotas, roi_ranges, sample_with_quotas
from radaug.shape import ORIGIN_COLUMNS, check_mask_parents, fit_in_fold as fit_shapes_in_fold, shape_model_options
from radaug.splits import fold_cases, parse_fold_key
from radaug.standardise import for_fold

from . import load_model
from .base import GenerativeModel
from .cyclegan import translate_with_quotas
from .protocols import ConditionalSampler, Translator
from .training import generator_config_sha256

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("sample_id", "label", "seed", "attempt", "roi_voxels")
"""First columns of every synthetic sample table (``synthetic/<model>/<fold>.csv``): the
sample (``<model>-<fold>-<n>``), its class, the seed that reproduces it and the round it was
accepted in, and its ROI size. The model's kind adds :data:`TRANSLATION_COLUMNS` (a
translator) or :data:`radaug.shape.ORIGIN_COLUMNS` (a mask-conditioned sampler); then
come :data:`PROVENANCE_COLUMNS`."""

TRANSLATION_COLUMNS = ("parent_case_id", "direction", "structure_agreement")
"""Columns of a translated sample: the training case it translates, the model's direction
(``source->target``) and the structure agreement that accepted it."""

PROVENANCE_COLUMNS = ("model", "model_sha256", "checkpoint_step", "generator_config_sha256", "repeat", "fold",
                      "quota", "rejected_in_class")
"""Last columns of every sample table: the model (name, checkpoint sha256 and step, config
hash), the fold, the class's quota and its rejected draws; with in-fold selection
(``generative.selection``) also ``selected_step``, the step whose weights drew the samples."""


class SampledFold(NamedTuple):
    """What :func:`sample_fold` returns (the files of rule ``sample_synthetic``)."""

    table: pd.DataFrame
    """One row per sample: :data:`SAMPLE_COLUMNS`, the kind's columns, :data:`PROVENANCE_COLUMNS`."""
    arrays: dict[str, np.ndarray]
    """``sample_id``, ``image`` and ``mask`` in table order, for :func:`radaug.io.save_arrays`."""
    sampling: pd.DataFrame
    """The sampling record: ``model``, ``fold`` and :data:`radaug.sampling.SAMPLING_COLUMNS`."""


def fill_quotas(model: GenerativeModel, quotas: Mapping[str, int], *, train: pd.DataFrame, index: pd.DataFrame,
                folds: pd.DataFrame, patches: Sequence[str], classes: list[str], fold: str, seed: int,
                sampling: Mapping[str, Any], shape_model: Mapping[str, Any], augmentation: Mapping[str, Any]
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[dict], pd.DataFrame, list[str]]:
    """Fill each class's quota of one fold with plausible samples of ``model``, whatever its kind.

    * A :class:`~radaug.generative.protocols.Translator` translates the fold's training
      cases of its source domain (in the fold's standardised intensities with ``nyul``);
      each sample keeps its parent's mask and class
      (:func:`radaug.generative.cyclegan.translate_with_quotas`).
    * A :class:`~radaug.generative.protocols.ConditionalSampler` draws per class and
      rejects samples whose ROI size is outside the class's real training range
      widened by ``sampling.roi_size_slack`` (:func:`radaug.sampling.sample_with_quotas`);
      a mask-conditioned one is given masks of the fold's shape model, fitted on the
      fold's training masks only (:func:`radaug.shape.fit_in_fold`).

    Parameters
    ----------
    quotas
        Class → samples wanted, in the order of ``classes`` (:func:`radaug.sampling.class_quotas`).
    train
        The fold's training cases (``case_id``, ``label``).
    index
        The case index (``case_id`` as a column).
    sampling, shape_model, augmentation
        The config sections ``sampling``, ``generative.shape_model`` and
        ``augmentation`` (the shape model's deformations are the classical arm's).

    Returns
    -------
    images, masks, records, sampling_record, columns
        The accepted samples, one record per sample, the sampling record (one row per
        class, :data:`radaug.sampling.SAMPLING_COLUMNS`) and the record columns of the
        sample table (after ``sample_id``), in order.
    """
    repeat, fold_number = parse_fold_key(fold)
    cases = index.set_index("case_id")
    columns = [c for c in SAMPLE_COLUMNS if c != "sample_id"]
    if isinstance(model, Translator):
        candidates = train.assign(domain=cases.loc[train["case_id"], "domain"].to_numpy())
        _, real_images, real_masks = load_patches(patches, list(candidates["case_id"]),
                                                  standardisation=for_fold(index, folds, repeat, fold_number))
        images, masks, records, record = translate_with_quotas(
            model, quotas, candidates, real_images, real_masks, seed=seed, fold=fold, log=log.info,
            on_shortfall=sampling["on_shortfall"])
        return images, masks, records, record, columns + list(TRANSLATION_COLUMNS)
    if not isinstance(model, ConditionalSampler):
        raise TypeError(f"{model.name} is neither a ConditionalSampler nor a Translator (radaug.generative.protocols)")
    ranges = roi_ranges(cases.loc[train["case_id"], "roi_voxels"], train["label"], classes,
                        slack=sampling["roi_size_slack"])
    shapes = None
    if model.condition_on_mask:
        shapes = fold_shape_model(train, index, folds, patches, fold, shape_model, augmentation)
        columns += list(ORIGIN_COLUMNS)
    images, masks, records, record = sample_with_quotas(
        model, quotas, classes, ranges, seed=seed, fold=fold, model_name=model.name,
        max_attempts=sampling["max_attempts"], shapes=shapes, on_shortfall=sampling["on_shortfall"])
    if shapes is not None:
        check_mask_parents([r["parent_case_id"] for r in records], train["case_id"], repeat, fold_number)
    return images, masks, records, record, columns


def fold_shape_model(train: pd.DataFrame, index: pd.DataFrame, folds: pd.DataFrame, patches: Sequence[str],
                     fold: str, shape_model: Mapping[str, Any], augmentation: Mapping[str, Any]):
    """The shape model of the fold's training masks (refused if a case is not a training case)."""
    repeat, fold_number = parse_fold_key(fold)
    ids, _, train_masks = load_patches(patches, list(train["case_id"]))
    shapes = fit_shapes_in_fold(folds=folds, cases=index, repeat=repeat, fold=fold_number, case_ids=ids,
                                masks=train_masks, labels=list(train.set_index("case_id").loc[ids, "label"]),
                                spacing=parse_spacing(index["spacing"].iloc[0]),
                                **shape_model_options(shape_model, augmentation))
    log.info("shape model %s: %s", shapes.sha256[:12], {
        label: f"{len(s.case_ids)} masks, {len(s.sd)} modes" for label, s in shapes.shapes.items()})
    return shapes


def sample_fold(checkpoint: str | os.PathLike, *, index: pd.DataFrame, folds: pd.DataFrame, patches: Sequence[str],
                fold: str, classes: list[str], sampling: Mapping[str, Any], training: Mapping[str, Any],
                shape_model: Mapping[str, Any], augmentation: Mapping[str, Any], seed: int) -> SampledFold:
    """The synthetic set of one generator and fold (rule ``sample_synthetic``).

    Loads the trained model, computes the fold's quotas from its training labels
    (``sampling.target_ratio``, ``sampling.cap_per_case``), fills them
    (:func:`fill_quotas`), normalises the samples like the real patches (``roi_zscore``:
    z-scored within the ROI) and builds the sample table. A class short of its quota
    stops the job (``sampling.on_shortfall: stop``, :class:`~radaug.errors.SamplingError`)
    or is recorded as such (``record``: the arm is then reported as could not generate).

    Parameters
    ----------
    checkpoint
        The trained model (``models/<model>/<fold>/checkpoint.pt``); its sha256 goes into the table.
    training
        The training options the model was trained with (for its config hash,
        :func:`radaug.generative.training.generator_config_sha256`).
    """
    repeat, fold_number = parse_fold_key(fold)
    train = fold_cases(folds, repeat, fold_number, "train")
    quotas = class_quotas(train["label"], classes, target_ratio=sampling["target_ratio"],
                          cap_per_case=sampling["cap_per_case"])
    model = load_model(checkpoint)
    images, masks, records, record, columns = fill_quotas(
        model, quotas, train=train, index=index, folds=folds, patches=patches, classes=classes, fold=fold,
        seed=seed, sampling=sampling, shape_model=shape_model, augmentation=augmentation)
    rejected = record.set_index("label")["rejected"].to_dict()
    log.info("quotas %s, rejected %s", quotas, rejected)
    for row in record[record["short"]].itertuples():
        log.warning("%s %s: only %d of %d plausible '%s' samples (%s); the arm is reported as could not generate "
                    "(sampling.on_shortfall: record)", model.name, fold, row.accepted, row.requested, row.label,
                    row.reasons)
    normalisation = index["normalisation"].mode().iloc[0]
    images = [normalise_patch(image, mask, normalisation) for image, mask in zip(images, masks)]
    table = pd.DataFrame.from_records(records, columns=columns)
    n = len(table)
    table.insert(0, "sample_id", [f"{model.name}-{fold}-{i:05d}" for i in range(n)])
    table = table.assign(model=model.name, model_sha256=sha256_file(checkpoint), checkpoint_step=model.step,
                         generator_config_sha256=generator_config_sha256(model.name, model.hyperparams,
                                                                         dict(training)),
                         repeat=repeat, fold=fold_number, quota=table["label"].map(quotas),
                         rejected_in_class=table["label"].map(rejected))
    if model.selection is not None:  # in-fold selection: the step whose weights drew the samples
        table["selected_step"] = model.selected_step
    record.insert(0, "fold", fold)
    record.insert(0, "model", model.name)
    arrays = {"sample_id": table["sample_id"].to_numpy(dtype=str) if n else np.zeros(0, dtype="<U1"),
              "image": np.stack(images) if n else np.zeros(0, np.float32),
              "mask": np.stack(masks) if n else np.zeros(0, np.uint8)}
    return SampledFold(table, arrays, record)
