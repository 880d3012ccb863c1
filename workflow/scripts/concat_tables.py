"""Concatenate tables of the same shape (batches, arms) into one."""
import pandas as pd

from radaug.io import read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    frames = [read_table(p) for p in smk.input]
    write_csv(smk.output[0], pd.concat(frames, ignore_index=True))


run_job(snakemake, main)  # noqa: F821
