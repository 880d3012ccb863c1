"""The validation jobs of the workflow as library calls: an arm of the study, the controls of a fold.

:func:`validate_arm_of_study` (rule ``validate``) validates one arm's added data in
every fold and class; :func:`validate_controls_of_fold` (rule
``validate_controls_fold``) scores the control arms in one fold's classes. Both take
the study's tables as read from its files and the paths of the patch archives, and
return the summary rows and the details (:class:`radaug.validate.details.ValidationDetails`);
the loops themselves are :func:`radaug.validate.study.validate_study_arm` and
:func:`radaug.validate.study.validate_controls`.

* Reference: the fold's real training cases; baselines: two halves of them.
  Memorization holdout: the fold's real test cases, which no generator saw.
* The rows validated are those the arm adds to each fold's training set in
  evaluation (:func:`radaug.arms.arm_added_rows`), smote and combined arms included
  (:func:`arm_candidates`). Copies of real training cases (oversample) are scored
  against their parents' patches in image space (:func:`candidate_patches`).
* With per-fold histogram standardisation (``preprocess.normalisation: nyul``) each
  fold's real rows and patches are its own (:func:`radaug.features.fold_rows`,
  :func:`radaug.standardise.for_fold`).
* An arm whose generator fell short of a quota in some fold (its sampling records,
  :func:`radaug.sampling.shortfall_notes`) is not validated: its tables are empty and
  ``validation_summary`` gives it the verdict ``could not generate``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from radaug.arms import arm_added_rows
from radaug.features import feature_columns, fold_rows
from radaug.io import load_arrays, read_table
from radaug.preprocess import load_patches
from radaug.sampling import shortfall_notes
from radaug.standardise import fold_standardisations, for_fold
from radaug.validate.details import ValidationDetails
from radaug.validate.images import physical_intensity_range
from radaug.validate.study import PatchSet, validate_controls, validate_study_arm

log = logging.getLogger(__name__)


def arm_candidates(arm: str, real: pd.DataFrame, folds: pd.DataFrame, arm_data: pd.DataFrame | None, *,
                   seed: int, target_ratio: float, cap_per_case: float) -> pd.DataFrame:
    """The rows ``arm`` adds in every fold (:func:`radaug.arms.arm_added_rows`), with ``repeat`` and ``fold``.

    Copies of real cases (``source == "real"``: oversample) get unique ids
    ``copy-<n>``, so each copy can be matched to its patch.
    """
    parts = []
    for (repeat, fold), split in folds.groupby(["repeat", "fold"]):
        rows = fold_rows(real, repeat, fold)
        train = rows[rows["case_id"].isin(split.loc[split["role"] == "train", "case_id"])]
        added = arm_added_rows(arm, train, arm_data, repeat=int(repeat), fold=int(fold), seed=seed,
                               target_ratio=target_ratio, cap_per_case=cap_per_case)
        parts.append(added.assign(repeat=repeat, fold=fold))
    candidates = pd.concat(parts, ignore_index=True)
    copies = (candidates["source"] == "real").to_numpy()
    candidates.loc[copies, "sample_id"] = [f"copy-{i}" for i in range(int(copies.sum()))]
    return candidates


def candidate_patches(candidates: pd.DataFrame, index: pd.DataFrame, folds: pd.DataFrame, patches: Sequence[str],
                      samples: Sequence[tuple[str, str]]) -> PatchSet | None:
    """(ids, images, masks) of every candidate row, or None where some rows have no image (smote).

    Copies of real cases are their fold's patches from the batch archives ``patches``
    (standardised with the fold's map, if any); generated and augmented rows come
    from ``samples``, pairs of (sample table, sample archive) paths.
    """
    ids, images, masks = [], [], []
    copies = candidates[candidates["source"] == "real"]
    for (repeat, fold), part in copies.groupby(["repeat", "fold"], sort=True):
        _, image, mask = load_patches(patches, list(part["case_id"]),
                                      standardisation=for_fold(index, folds, int(repeat), int(fold)))
        ids.append(part["sample_id"].astype(str).to_numpy()), images.append(image), masks.append(mask)
    for table_path, samples_path in samples:
        table = read_table(table_path)
        if table.empty:  # a fold where a generator that could not generate accepted nothing
            continue
        arrays = load_arrays(samples_path)
        ids.append(table["sample_id"].astype(str).to_numpy())
        images.append(arrays["image"]), masks.append(arrays["mask"])
    known = set(np.concatenate(ids)) if ids else set()
    if not known or not set(candidates["sample_id"].astype(str)) <= known:
        return None
    return np.concatenate(ids), np.concatenate(images), np.concatenate(masks)


def real_patch_sets(index: pd.DataFrame, folds: pd.DataFrame, patches: Sequence[str]
                    ) -> PatchSet | dict[tuple[int, int], PatchSet]:
    """Every real patch as stored, or, with per-fold standardisation, ``{(repeat, fold): patches}``."""
    sets = {(repeat, fold): load_patches(patches, standardisation=standardisation)
            for repeat, fold, standardisation in fold_standardisations(index, folds)}
    return sets.pop((None, None)) if (None, None) in sets else sets


def study_intensity_range(index: pd.DataFrame) -> tuple[float, float] | None:
    """The physically possible intensity range of the study's patches (its most common modality
    and normalisation; :func:`radaug.validate.images.physical_intensity_range`)."""
    modality = index["modality"].mode().iloc[0] if len(index) else "other"
    normalisation = index["normalisation"].mode().iloc[0] if len(index) else "none"
    return physical_intensity_range(modality, intensity_normalised=normalisation != "none")


def validate_arm_of_study(
    arm: str, *, real: pd.DataFrame, folds: pd.DataFrame, index: pd.DataFrame, patches: Sequence[str],
    arm_data: pd.DataFrame | None, samples: Sequence[tuple[str, str]], sampling: pd.DataFrame,
    options: Mapping, seed: int, target_ratio: float, cap_per_case: float,
) -> tuple[pd.DataFrame, ValidationDetails]:
    """Validate ``arm``'s added data in every fold and class (rule ``validate``).

    Parameters
    ----------
    real, folds, index
        The real feature table, the split and the case index.
    patches
        The preprocessed batch archives (read only with ``validation.image_checks``).
    arm_data
        Feature rows of the arm's file-backed components (generators, classical), or None.
    samples
        (sample table, sample archive) paths of those components, for the image-space checks.
    sampling
        The sampling records of the arm's generators (empty without generators).
    options, seed, target_ratio, cap_per_case
        The config's ``validation`` section, ``study.seed`` and ``sampling.target_ratio`` /
        ``sampling.cap_per_case`` (the built-in arms' quotas).
    """
    real_patches = real_patch_sets(index, folds, patches) if options["image_checks"] else None
    candidates = arm_candidates(arm, real, folds, arm_data, seed=seed, target_ratio=target_ratio,
                                cap_per_case=cap_per_case)
    short = shortfall_notes(sampling, [arm])
    if short:
        log.warning("arm %s is not validated: %s", arm, short[arm])
        candidates = candidates.iloc[:0]
    cand_patches = (candidate_patches(candidates, index, folds, patches, samples)
                    if real_patches is not None else None)
    return validate_study_arm(real, folds, candidates, arm=arm, feature_columns=feature_columns(real),
                              options=options, seed=seed, real_patches=real_patches,
                              candidate_patches=cand_patches, intensity_range=study_intensity_range(index),
                              return_details=True)


def validate_controls_of_fold(
    fold: str, *, real: pd.DataFrame, folds: pd.DataFrame, index: pd.DataFrame, patches: Sequence[str],
    shuffled: pd.DataFrame, options: Mapping, seed: int,
) -> tuple[pd.DataFrame, ValidationDetails]:
    """Score the control arms in fold ``fold``'s classes (rule ``validate_controls_fold``).

    ``shuffled`` holds the features of every real case's voxel-shuffled patch;
    the other arguments are those of :func:`validate_arm_of_study`. The folds'
    results, joined in fold order, are one call over every fold's
    (:func:`radaug.validate.study.validate_controls`).
    """
    real_patches = real_patch_sets(index, folds, patches) if options["image_checks"] else None
    return validate_controls(real, folds, feature_columns=feature_columns(real), options=options, seed=seed,
                             real_patches=real_patches, intensity_range=study_intensity_range(index),
                             shuffled=shuffled, return_details=True, fold=fold)
