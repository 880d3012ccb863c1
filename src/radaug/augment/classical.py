"""The ``classical`` arm: physically plausible augmentation of a fold's training cases.

:func:`classical_fold` is what rule ``augment_classical`` runs for one fold; the
generator arms' equivalent is :func:`radaug.generative.arm.sample_fold`.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from ..errors import ConfigError, RadaugError
from ..features import parse_spacing
from ..preprocess import CT_AIR_HU, load_patches
from ..sampling import class_quotas
from ..splits import check_training_input, fold_cases, parse_fold_key
from ..standardise import for_fold
from .affine import RandomAffine
from .bias_field import RandomBiasField
from .chain import RandomChain
from .elastic_deformation import RandomElasticDeformation
from .gain import RandomGain
from .gaussian_blur import RandomGaussianBlur
from .gaussian_noise import RandomGaussianNoise
from .rician_noise import RandomRicianNoise

#: Photometric keys valid per modality, and their value when the config leaves them null.
PHOTOMETRIC_DEFAULTS = {
    "CT": {"noise_sd_hu": 10.0, "blur_sigma_mm": 0.5},
    "MR": {"gain": 0.1, "bias_field": 0.2, "rician_snr": [20.0, 40.0], "blur_sigma_mm": 0.0},
    "other": {"blur_sigma_mm": 0.0},
}
_WHY = {
    "noise_sd_hu": "Gaussian noise in Hounsfield units is a CT augmentation; MR noise is Rician "
                   "(use augmentation.photometric.rician_snr)",
    "gain": "a global gain rescales Hounsfield units, which must keep their meaning",
    "bias_field": "a multiplicative bias field rescales Hounsfield units, which must keep their meaning",
    "rician_snr": "Rician noise models MR magnitude images, not CT",
}
log = logging.getLogger(__name__)

PHOTOMETRIC_KEYS = ("noise_sd_hu", "blur_sigma_mm", "gain", "bias_field", "rician_snr")
AUGMENTED_COLUMNS = ("sample_id", "case_id", "label", "repeat", "fold", "seed", "roi_voxels", "rejected",
                     "chain")


def photometric_settings(photometric: dict, modality: str) -> dict:
    """The photometric settings of a modality: configured values, nulls replaced by the modality's defaults.

    Raises
    ------
    ConfigError
        A key that is invalid for the modality is set (e.g. ``gain`` on CT), naming the key.
    """
    if modality not in PHOTOMETRIC_DEFAULTS:
        raise ConfigError(f"unknown modality {modality!r}; expected one of {sorted(PHOTOMETRIC_DEFAULTS)}")
    allowed = PHOTOMETRIC_DEFAULTS[modality]
    settings = {}
    for key in PHOTOMETRIC_KEYS:
        value = photometric.get(key)
        if key not in allowed:
            if value not in (None, 0, 0.0):
                raise ConfigError(
                    f"config key 'augmentation.photometric.{key}' is invalid for {modality} data: "
                    f"{_WHY.get(key, 'not defined for this modality')}. Remove the key or set it to null."
                )
            continue
        settings[key] = allowed[key] if value is None else value
    settings["bias_field_order"] = photometric.get("bias_field_order", 2)
    return settings


def spatial_augmentation(options: dict, padding: float | None = None) -> list:
    """The enabled spatial stages (affine, then elastic) from the ``augmentation`` config section.

    Each enforces its plausibility bound: ``affine.max_volume_change`` on ``|det(A) - 1|``,
    ``elastic.min_jacobian`` on the Jacobian determinant of the dense field. Shared by the
    classical arm and the shape model's deformed masks (:mod:`radaug.shape`).
    """
    interpolation, attempts = options["interpolation"], options["max_attempts"]
    spatial = []
    affine = options["affine"]
    if affine["enabled"]:
        spatial.append(RandomAffine(affine["rotation_deg"], affine["translation_mm"], affine["scale"],
                                    affine["shear"], affine["max_volume_change"], interpolation, padding, attempts))
    elastic = options["elastic"]
    if elastic["enabled"]:
        spatial.append(RandomElasticDeformation(elastic["control_points"], elastic["max_displacement_mm"],
                                                elastic["min_jacobian"], interpolation, padding, attempts))
    return spatial


def build_augmentation(options: dict, modality: str, normalisation: str | None = None) -> RandomChain:
    """The random chain of the ``classical`` arm from the ``augmentation`` config section.

    ``normalisation`` is the patches' (case index column); ``None``: the modality's default.
    """
    padding = CT_AIR_HU if modality == "CT" else None  # MR/other: the patch background (its minimum)
    attempts = options["max_attempts"]
    spatial = spatial_augmentation(options, padding)
    settings = photometric_settings(options["photometric"], modality)
    photometric = []
    if settings.get("gain"):
        photometric.append(RandomGain(settings["gain"]))
    if settings.get("bias_field"):
        photometric.append(RandomBiasField(settings["bias_field"], settings["bias_field_order"]))
    if settings.get("blur_sigma_mm"):
        photometric.append(RandomGaussianBlur(settings["blur_sigma_mm"]))
    if settings.get("noise_sd_hu"):
        photometric.append(RandomGaussianNoise(settings["noise_sd_hu"]))
    if settings.get("rician_snr"):
        photometric.append(RandomRicianNoise(*settings["rician_snr"]))
    ct = options["ct_tolerances"] if modality == "CT" else None
    return RandomChain(spatial, photometric, modality=modality, normalisation=normalisation, ct_tolerances=ct,
                       max_attempts=attempts)


def augmentation_seed(seed: int, fold: str, label_index: int, k: int) -> int:
    """The seed of the ``k``-th augmented sample of a class in a fold, derived from the study seed."""
    key = [seed, *map(ord, fold), *map(ord, "classical"), label_index, k]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


def parent_cases(case_ids, quota: int, rng: np.random.Generator) -> list[str]:
    """``quota`` parents drawn evenly: every case ``⌊quota/n⌋`` or ``⌈quota/n⌉`` times, in a seeded order."""
    case_ids = list(case_ids)
    if quota and not case_ids:
        raise ValueError("a positive quota needs at least one training case")
    order = [case_ids[i] for i in rng.permutation(len(case_ids))] if case_ids else []
    return [order[k % len(order)] for k in range(quota)]


def augment_fold(train: pd.DataFrame, images: np.ndarray, masks: np.ndarray, spacing, chain: RandomChain, *,
                 classes: list[str], seed: int, fold: str, target_ratio: float = 1.0, cap_per_case: float = 4.0
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Augment one fold's training cases up to the rebalancing quotas.

    Parameters
    ----------
    train
        The fold's training cases (``case_id``, ``label``), aligned with ``images`` and ``masks``.
    images, masks
        Their preprocessed patches, ``(N, *patch)``.
    spacing
        Patch spacing (x, y[, z]) in mm.
    chain
        From :func:`build_augmentation`.
    classes
        Class names; a class's index enters its samples' seeds.
    seed, fold
        Study seed and fold key (``r0f1``); every sample's seed derives from them
        (:func:`augmentation_seed`).
    target_ratio, cap_per_case
        Rebalancing rule shared with every arm (:func:`radaug.sampling.class_quotas`).

    Returns
    -------
    table : pandas.DataFrame
        One row per sample with :data:`AUGMENTED_COLUMNS`; ``case_id`` is the
        parent, ``chain`` the JSON transform records (``apply_chain`` on the
        parent's patch re-creates the sample) and ``rejected`` the JSON count of
        rejected draws per stage.
    images, masks : numpy.ndarray
        The augmented patches, in table order.
    """
    repeat, fold_number = parse_fold_key(fold)
    labels = train["label"].to_numpy()
    quotas = class_quotas(labels, classes, target_ratio=target_ratio, cap_per_case=cap_per_case)
    position = {case: i for i, case in enumerate(train["case_id"])}
    rows, out_images, out_masks = [], [], []
    for label_index, label in enumerate(classes):
        members = sorted(train.loc[labels == label, "case_id"])
        parents = parent_cases(members, quotas[label], np.random.default_rng([seed, label_index, repeat,
                                                                                fold_number]))
        for k, parent in enumerate(parents):
            sample_seed = augmentation_seed(seed, fold, label_index, k)
            i = position[parent]
            try:
                result = chain(images[i], masks[i], spacing, np.random.default_rng(sample_seed))
            except RuntimeError as exc:
                raise RuntimeError(f"fold {fold}: augmenting case '{parent}' failed: {exc}") from exc
            rows.append({"case_id": parent, "label": label, "repeat": repeat, "fold": fold_number,
                         "seed": sample_seed, "roi_voxels": int(result.mask.sum()),
                         "rejected": compact_json(result.rejected), "chain": compact_json(result.chain)})
            out_images.append(result.image)
            out_masks.append(result.mask)
    table = pd.DataFrame(rows, columns=[c for c in AUGMENTED_COLUMNS if c != "sample_id"])
    table.insert(0, "sample_id", [f"classical-{fold}-{i:05d}" for i in range(len(table))])
    shape = images.shape[1:]
    return (table, np.stack(out_images) if out_images else np.zeros((0, *shape), np.float32),
            np.stack(out_masks) if out_masks else np.zeros((0, *shape), np.uint8))


def classical_fold(*, index: pd.DataFrame, folds: pd.DataFrame, patches, fold: str, options: dict,
                   classes: list[str], seed: int, sampling: dict) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The classical arm of one fold (rule ``augment_classical``): its training cases augmented
    up to the rebalancing quotas (:func:`augment_fold`).

    Parameters
    ----------
    index, folds
        The case index and the split table.
    patches
        The preprocessed batch archives; with ``preprocess.normalisation: nyul`` the
        cases are augmented in the fold's standardised intensities.
    fold
        Fold key (``r0f1``).
    options, sampling
        The config sections ``augmentation`` and ``sampling`` (``target_ratio``, ``cap_per_case``).
    classes, seed
        ``data.classes`` and ``study.seed``.

    Raises
    ------
    radaug.errors.LeakageError
        If a case to augment is not a training case of the fold.
    ConfigError
        If the fold's training cases mix modalities.
    RadaugError
        If augmenting a case fails (the message names it).
    """
    repeat, fold_number = parse_fold_key(fold)
    train = fold_cases(folds, repeat, fold_number, "train")
    check_training_input(folds, index, repeat, fold_number, train["case_id"])
    modalities = sorted(set(index.set_index("case_id").loc[train["case_id"], "modality"]))
    if len(modalities) != 1:
        raise ConfigError(f"fold {fold}: training cases mix modalities {modalities}; classical "
                          "augmentation needs one (set preprocess.modality)")
    # In the fold's standardised intensities with preprocess.normalisation: nyul (None otherwise).
    _, images, masks = load_patches(patches, list(train["case_id"]),
                                    standardisation=for_fold(index, folds, repeat, fold_number))
    try:
        normalisation = index.set_index("case_id").loc[train["case_id"], "normalisation"].mode().iloc[0]
        chain = build_augmentation(options, modalities[0], normalisation)
        table, out_images, out_masks = augment_fold(
            train, images, masks, parse_spacing(index["spacing"].iloc[0]), chain, classes=classes, seed=seed,
            fold=fold, target_ratio=sampling["target_ratio"], cap_per_case=sampling["cap_per_case"])
    except RuntimeError as exc:
        raise RadaugError(str(exc)) from exc
    log.info("%d augmented samples; rejected draws %s", len(table), rejected_totals(table))
    return table, out_images, out_masks


def compact_json(obj) -> str:
    """One-line JSON with sorted keys; floats written exactly (``repr``), so a chain replays bit for bit."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def rejected_totals(table: pd.DataFrame) -> dict[str, int]:
    """Rejected draws per stage, summed over an augmented table's ``rejected`` column."""
    totals: dict[str, int] = {}
    for text in table["rejected"]:
        for key, value in json.loads(text).items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals
