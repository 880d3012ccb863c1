"""Preprocess one batch of real cases into patches."""

from radaug.io import read_table, save_arrays, write_csv
from radaug.preprocess import preprocess_batch
from radaug.provenance import run_job


def main(smk):
    cohort = read_table(smk.input.cohort)
    opts = smk.params.options
    if opts["modality"] != "auto":
        cohort["modality"] = opts["modality"]
    table, arrays = preprocess_batch(
        cohort, int(smk.wildcards.batch), smk.params.n_batches,
        patch_size=opts["patch_size"], patch_mode=opts["patch_mode"], spacing=opts["spacing"],
        margin=opts["margin"], mask_label=smk.params.mask_label,
    )
    save_arrays(smk.output.patches, **arrays)
    write_csv(smk.output.table, table)


run_job(snakemake, main)  # noqa: F821
