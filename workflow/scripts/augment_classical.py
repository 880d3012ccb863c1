"""The classical arm of one fold: augment the fold's training cases up to the rebalancing quotas."""
import numpy as np

from radaug.augment import augment_fold, build_augmentation, rejected_totals
from radaug.errors import ConfigError, RadaugError
from radaug.features import parse_spacing
from radaug.io import read_table, save_arrays, write_csv
from radaug.preprocess import load_patches
from radaug.snakemake_adapter import log, run_job
from radaug.splits import check_training_input, fold_cases, parse_fold_key
from radaug.standardise import for_fold


def main(smk):
    repeat, fold = parse_fold_key(smk.wildcards.fold)
    index = read_table(smk.input.index)
    folds = read_table(smk.input.folds)
    train = fold_cases(folds, repeat, fold, "train")
    check_training_input(folds, index, repeat, fold, train["case_id"])
    modalities = sorted(set(index.set_index("case_id").loc[train["case_id"], "modality"]))
    if len(modalities) != 1:
        raise ConfigError(f"fold {smk.wildcards.fold}: training cases mix modalities {modalities}; classical "
                          "augmentation needs one (set preprocess.modality)")
    # In the fold's standardised intensities with preprocess.normalisation: nyul (None otherwise).
    _, images, masks = load_patches(smk.input.patches, list(train["case_id"]),
                                    standardisation=for_fold(index, folds, repeat, fold))
    try:
        normalisation = index.set_index("case_id").loc[train["case_id"], "normalisation"].mode().iloc[0]
        chain = build_augmentation(smk.params.options, modalities[0], normalisation)
        table, out_images, out_masks = augment_fold(
            train, images, masks, parse_spacing(index["spacing"].iloc[0]), chain,
            classes=smk.params.classes, seed=smk.params.seed, fold=smk.wildcards.fold,
            target_ratio=smk.params.sampling["target_ratio"], cap_per_case=smk.params.sampling["cap_per_case"])
    except RuntimeError as exc:
        raise RadaugError(str(exc)) from exc
    log.info("%d augmented samples; rejected draws %s", len(table), rejected_totals(table))
    save_arrays(smk.output.samples, sample_id=table["sample_id"].to_numpy(dtype=str) if len(table)
                else np.zeros(0, dtype="<U1"), image=out_images, mask=out_masks)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
