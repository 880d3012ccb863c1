"""Validate one arm's added data in every fold and class (rule validate), or the control arms
in one fold's classes (rule validate_controls_fold), against real-vs-real baselines.

Reference: the fold's real training cases; baselines: two halves of them.
Memorization holdout: the fold's real test cases, which no generator saw.
The rows validated are those the arm adds to each fold's training set in evaluation
(radaug.arms.arm_added_rows): smote and combined arms included. Copies of real
training cases (oversample) are scored against their parents' patches in image space.
Next to the summary rows, the per-feature KS tests, fold-averaged correlation differences (npz) and
per-row distances to the closest training row go to validation/details/<arm>/ (radaug.validate.details);
a control fold's go to validation/controls/<fold>/ with correlation differences in float64, for
validate_controls to average over the folds.
With per-fold histogram standardisation (preprocess.normalisation: nyul) each fold's real rows and
patches are its own (radaug.features.fold_rows, radaug.standardise.for_fold).
An arm whose generator fell short of a quota in some fold (its sampling records) is not validated:
its tables are empty and validation_summary gives it the verdict 'could not generate'.
"""
import numpy as np
import pandas as pd

from radaug.arms import arm_added_rows
from radaug.features import feature_columns, fold_rows
from radaug.io import load_arrays, read_table, read_tables, save_arrays, write_csv
from radaug.preprocess import load_patches
from radaug.snakemake_adapter import log, run_job
from radaug.sampling import shortfall_notes
from radaug.standardise import fold_standardisations, for_fold
from radaug.validate.details import correlation_arrays
from radaug.validate.images import physical_intensity_range
from radaug.validate.study import validate_controls, validate_study_arm


def arm_candidates(smk, name: str, real: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """The rows the arm adds in every fold, with repeat and fold; copies of real cases get unique ids."""
    arm_data = read_tables(smk.input.arm) if smk.input.arm else None
    parts = []
    for (repeat, fold), split in folds.groupby(["repeat", "fold"]):
        rows = fold_rows(real, repeat, fold)
        train = rows[rows["case_id"].isin(split.loc[split["role"] == "train", "case_id"])]
        added = arm_added_rows(name, train, arm_data, repeat=int(repeat), fold=int(fold), seed=smk.params.seed,
                               target_ratio=smk.params.target_ratio, cap_per_case=smk.params.cap_per_case)
        parts.append(added.assign(repeat=repeat, fold=fold))
    candidates = pd.concat(parts, ignore_index=True)
    copies = (candidates["source"] == "real").to_numpy()
    candidates.loc[copies, "sample_id"] = [f"copy-{i}" for i in range(int(copies.sum()))]
    return candidates


def candidate_patches(smk, candidates: pd.DataFrame, index: pd.DataFrame, folds: pd.DataFrame):
    """(ids, images, masks) of every candidate row, or None where some rows have no image (smote).

    Copies of real cases are their fold's patches (standardised with the fold's map, if any).
    """
    ids, images, masks = [], [], []
    copies = candidates[candidates["source"] == "real"]
    for (repeat, fold), part in copies.groupby(["repeat", "fold"], sort=True):
        _, image, mask = load_patches(smk.input.patches, list(part["case_id"]),
                                      standardisation=for_fold(index, folds, int(repeat), int(fold)))
        ids.append(part["sample_id"].astype(str).to_numpy()), images.append(image), masks.append(mask)
    for table_path, samples_path in zip(smk.input.sample_tables, smk.input.samples):
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


def real_patch_sets(smk, index: pd.DataFrame, folds: pd.DataFrame):
    """Every real patch as stored, or, with per-fold standardisation, ``{(repeat, fold): patches}``."""
    sets = {(repeat, fold): load_patches(smk.input.patches, standardisation=standardisation)
            for repeat, fold, standardisation in fold_standardisations(index, folds)}
    return sets.pop((None, None)) if (None, None) in sets else sets


def write_details(smk, details, dtype=np.float32) -> None:
    write_csv(smk.output.ks, details.ks)
    save_arrays(smk.output.correlation, **correlation_arrays(details.correlation, dtype))
    write_csv(smk.output.dcr, details.dcr)


def main(smk):
    real = read_table(smk.input.real)
    folds = read_table(smk.input.folds)
    index = read_table(smk.input.index)
    columns = feature_columns(real)
    opts = smk.params.options
    real_patches = real_patch_sets(smk, index, folds) if opts["image_checks"] else None
    modality = index["modality"].mode().iloc[0] if len(index) else "other"
    normalisation = index["normalisation"].mode().iloc[0] if len(index) else "none"
    intensity_range = physical_intensity_range(modality, intensity_normalised=normalisation != "none")
    if smk.rule == "validate_controls_fold":
        shuffled = read_tables(smk.input.shuffled)
        table, details = validate_controls(real, folds, feature_columns=columns, options=opts,
                                           seed=smk.params.seed, real_patches=real_patches,
                                           intensity_range=intensity_range, shuffled=shuffled,
                                           return_details=True, fold=smk.wildcards.fold)
        write_csv(smk.output.table, table)
        write_details(smk, details, np.float64)
        return
    name = smk.wildcards.arm
    candidates = arm_candidates(smk, name, real, folds)
    short = shortfall_notes(read_tables(smk.input.sampling), [name])
    if short:
        log.warning("arm %s is not validated: %s", name, short[name])
        candidates = candidates.iloc[:0]
    patches = candidate_patches(smk, candidates, index, folds) if real_patches is not None else None
    table, details = validate_study_arm(real, folds, candidates, arm=name, feature_columns=columns,
                                        options=opts, seed=smk.params.seed, real_patches=real_patches,
                                        candidate_patches=patches, intensity_range=intensity_range,
                                        return_details=True)
    write_csv(smk.output.table, table)
    write_details(smk, details)


run_job(snakemake, main)  # noqa: F821
