"""Score the control arms in one fold's classes (radaug.validate.jobs.validate_controls_of_fold).

The details go to validation/controls/<fold>/ with correlation differences in float64,
for validate_controls to average over the folds (its join is byte for byte one job over
every fold). split_nulls.npz holds every cell's real-vs-real split null and power, which
the validate jobs read instead of computing them again
(radaug.validate.summary.shared_split_nulls). The null draws run on the job's threads
(radaug.parallel: forked workers, the same values on any number).
"""
import numpy as np

from radaug.io import read_table, read_tables, save_arrays, write_csv
from radaug.parallel import use_workers
from radaug.snakemake_adapter import run_job
from radaug.validate.details import correlation_arrays
from radaug.validate.jobs import validate_controls_of_fold
from radaug.validate.summary import shared_split_nulls, split_null_arrays


def main(smk):
    with shared_split_nulls() as split_nulls, use_workers(smk.threads):
        table, details = validate_controls_of_fold(
            smk.wildcards.fold, real=read_table(smk.input.real), folds=read_table(smk.input.folds, "folds"),
            index=read_table(smk.input.index, "case_index"), patches=smk.input.patches,
            shuffled=read_tables(smk.input.shuffled), options=smk.params.options, seed=smk.params.seed)
    write_csv(smk.output.table, table)
    write_csv(smk.output.ks, details.ks)
    save_arrays(smk.output.correlation, **correlation_arrays(details.correlation, np.float64))
    write_csv(smk.output.dcr, details.dcr)
    save_arrays(smk.output.split_nulls, **split_null_arrays(split_nulls))


run_job(snakemake, main)  # noqa: F821
