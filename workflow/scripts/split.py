"""Stratified, patient- and near-duplicate-grouped folds."""
import pandas as pd

from radaug.io import write_csv
from radaug.provenance import run_job
from radaug.splits import make_folds


def main(smk):
    index = pd.read_csv(smk.input.index, dtype=str, keep_default_na=False)
    opts = smk.params.options
    folds = make_folds(index, folds=opts["folds"], repeats=opts["repeats"],
                       near_duplicate_bits=opts["near_duplicate_bits"], seed=smk.params.seed)
    write_csv(smk.output.folds, folds)


run_job(snakemake, main)  # noqa: F821
