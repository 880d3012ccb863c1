"""Validate one arm's added data (rule validate) or the control arms (rule validate_controls)
in every fold and class against real-vs-real baselines.

Reference: the fold's real training cases; baselines: two halves of them.
Memorization holdout: the fold's real test cases, which no generator saw.
The oversample arm's rows are exact copies of training cases.
"""
import numpy as np
import pandas as pd

from radaug.evaluate import oversample
from radaug.features import feature_columns
from radaug.io import load_arrays, read_table, write_csv
from radaug.preprocess import load_patches
from radaug.provenance import run_job
from radaug.validate.images import physical_intensity_range
from radaug.validate.study import validate_controls, validate_study_arm


def main(smk):
    real = read_table(smk.input.real)
    folds = read_table(smk.input.folds)
    index = read_table(smk.input.index)
    columns = feature_columns(real)
    opts = smk.params.options
    real_patches = load_patches(smk.input.patches) if opts["image_checks"] else None
    modality = index["modality"].mode().iloc[0] if len(index) else "other"
    intensity_range = physical_intensity_range(modality, intensity_normalised=modality != "CT")
    if smk.rule == "validate_controls":
        table = validate_controls(real, folds, feature_columns=columns, options=opts, seed=smk.params.seed,
                                  real_patches=real_patches, intensity_range=intensity_range)
        write_csv(smk.output.table, table)
        return
    name = smk.wildcards.arm
    candidate_patches = None
    if name == "oversample":
        candidates = pd.concat(
            [oversample(real[real["case_id"].isin(fold_rows.loc[fold_rows["role"] == "train", "case_id"])],
                        seed=smk.params.seed, repeat=repeat, fold=fold, target_ratio=smk.params.target_ratio,
                        cap_per_case=smk.params.cap_per_case).assign(repeat=repeat, fold=fold)
             for (repeat, fold), fold_rows in folds.groupby(["repeat", "fold"])],
            ignore_index=True)
        candidates["sample_id"] = [f"oversample-{i}" for i in range(len(candidates))]
        if real_patches is not None:
            candidate_patches = (candidates["sample_id"].to_numpy(),
                                 *load_patches(smk.input.patches, list(candidates["case_id"]))[1:])
    else:
        candidates = pd.concat([read_table(p) for p in smk.input.arm], ignore_index=True)
        if real_patches is not None and smk.input.samples:
            tables = [read_table(t) for t in smk.input.sample_tables]
            arrays = [load_arrays(a) for a in smk.input.samples]
            candidate_patches = (np.concatenate([t["sample_id"].astype(str).to_numpy() for t in tables]),
                                 np.concatenate([a["image"] for a in arrays]),
                                 np.concatenate([a["mask"] for a in arrays]))
    table = validate_study_arm(real, folds, candidates, arm=name, feature_columns=columns, options=opts,
                               seed=smk.params.seed, real_patches=real_patches,
                               candidate_patches=candidate_patches, intensity_range=intensity_range)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
