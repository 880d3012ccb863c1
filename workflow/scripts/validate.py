"""Validate one arm's added data in every fold and class against real-vs-real baselines
(radaug.validate.jobs.validate_arm_of_study: which rows, which patches, and the arms that
could not generate). Next to the summary rows, the per-feature KS tests, fold-averaged
correlation differences (npz) and per-row distances to the closest training row go to
validation/details/<arm>/ (radaug.validate.details). The control jobs' split nulls and power
(split_nulls.npz) are looked up before a cell's are computed
(radaug.validate.summary.shared_split_nulls). The null draws run on the job's threads
(radaug.parallel: forked workers, the same values on any number).
"""
from radaug.io import load_arrays, read_table, read_tables, save_arrays, write_csv
from radaug.parallel import use_workers
from radaug.snakemake_adapter import run_job
from radaug.validate.details import correlation_arrays
from radaug.validate.jobs import validate_arm_of_study
from radaug.validate.summary import shared_split_nulls


def main(smk):
    shared = {}
    for path in smk.input.split_nulls:
        shared.update(load_arrays(path))
    with shared_split_nulls(shared), use_workers(smk.threads):
        table, details = validate_arm_of_study(
            smk.wildcards.arm, real=read_table(smk.input.real), folds=read_table(smk.input.folds, "folds"),
            index=read_table(smk.input.index, "case_index"), patches=smk.input.patches,
            arm_data=read_tables(smk.input.arm) if smk.input.arm else None,
            samples=list(zip(smk.input.sample_tables, smk.input.samples)),
            sampling=read_tables(smk.input.sampling, "sampling"), options=smk.params.options, seed=smk.params.seed,
            target_ratio=smk.params.target_ratio, cap_per_case=smk.params.cap_per_case)
    write_csv(smk.output.table, table)
    write_csv(smk.output.ks, details.ks)
    save_arrays(smk.output.correlation, **correlation_arrays(details.correlation))
    write_csv(smk.output.dcr, details.dcr)


run_job(snakemake, main)  # noqa: F821
