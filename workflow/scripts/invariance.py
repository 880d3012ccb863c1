"""ICC of every feature across perturbations of one fold's real training cases (in the fold's
intensities with per-fold standardisation: radaug.features.fold_rows)."""

from radaug.features import feature_columns, fold_rows
from radaug.io import read_table, read_tables, write_csv
from radaug.snakemake_adapter import log, run_job
from radaug.splits import fold_cases, parse_fold_key
from radaug.validate.invariance import invariance_table, perturbation_index


def main(smk):
    repeat, fold = parse_fold_key(smk.wildcards.fold)
    perturbed = fold_rows(read_tables(smk.input.perturbed), repeat, fold)
    perturbed["perturbation"] = perturbation_index(perturbed["sample_id"])
    train = fold_cases(read_table(smk.input.folds), repeat, fold, "train")
    table = invariance_table(perturbed, feature_columns(perturbed.drop(columns="perturbation")), train["case_id"],
                             repeat=repeat, fold=fold, statistic=smk.params.icc, threshold=smk.params.threshold)
    log.info("%d of %d features robust (%s >= %s)", int(table["robust"].sum()), len(table), smk.params.icc,
             smk.params.threshold)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
