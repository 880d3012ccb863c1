"""Across-fold statistics per arm and metric, with corrected tests against the real arm."""
import pandas as pd

from radaug.evaluate import summarise
from radaug.io import read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    per_fold = pd.concat([read_table(p) for p in smk.input.per_fold], ignore_index=True)
    write_csv(smk.output.summary, summarise(per_fold, reference_arm="real"))


run_job(snakemake, main)  # noqa: F821
