"""Generate the seeded digital phantom cohort (images, masks, manifest.csv)."""
from radaug.data.phantom import make_phantom_cohort
from radaug.snakemake_adapter import run_job


def main(smk):
    make_phantom_cohort(smk.output.cohort, seed=smk.params.seed, **smk.params.options)


run_job(snakemake, main)  # noqa: F821
