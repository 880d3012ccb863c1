"""Concatenate tables of the same shape (batches, arms) into one."""
from radaug.io import read_tables, write_csv
from radaug.snakemake_adapter import run_job


def main(smk):
    write_csv(smk.output[0], read_tables(smk.input))


run_job(snakemake, main)  # noqa: F821
