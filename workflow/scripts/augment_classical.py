"""The classical arm of one fold: augment the fold's training cases up to the rebalancing quotas
(radaug.augment.classical.classical_fold)."""
import numpy as np

from radaug.augment.classical import classical_fold
from radaug.io import read_table, save_arrays, write_csv
from radaug.snakemake_adapter import run_job


def main(smk):
    table, images, masks = classical_fold(
        index=read_table(smk.input.index), folds=read_table(smk.input.folds), patches=smk.input.patches,
        fold=smk.wildcards.fold, options=smk.params.options, classes=smk.params.classes, seed=smk.params.seed,
        sampling=smk.params.sampling)
    save_arrays(smk.output.samples, sample_id=table["sample_id"].to_numpy(dtype=str) if len(table)
                else np.zeros(0, dtype="<U1"), image=images, mask=masks)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
