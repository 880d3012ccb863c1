"""Preprocess one batch of real cases into patches."""

from radaug.io import read_table, save_arrays, write_csv
from radaug.preprocess import patch_options, preprocess_batch
from radaug.snakemake_adapter import run_job


def main(smk):
    cohort = read_table(smk.input.cohort)
    opts = smk.params.options
    if opts["modality"] != "auto":
        cohort["modality"] = opts["modality"]
    table, arrays = preprocess_batch(cohort, int(smk.wildcards.batch), smk.params.n_batches,
                                     mask_label=smk.params.mask_label, **patch_options(opts))
    save_arrays(smk.output.patches, **arrays)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
