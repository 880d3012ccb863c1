"""Stratified, patient- and near-duplicate-grouped folds, and the near-duplicate audit."""

from radaug.io import read_table, write_csv
from radaug.snakemake_adapter import run_job
from radaug.splits import split_study


def main(smk):
    index = read_table(smk.input.index, "case_index")
    folds, audit = split_study(index, smk.params.options, smk.params.seed, threads=smk.threads)
    write_csv(smk.output.folds, folds)
    write_csv(smk.output.duplicates, audit)


run_job(snakemake, main)  # noqa: F821
