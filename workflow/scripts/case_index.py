"""Gather the per-batch case tables into the study's case index."""

from radaug.preprocess import build_index
from radaug.io import read_table, write_csv
from radaug.snakemake_adapter import run_job


def main(smk):
    tables = [read_table(p) for p in smk.input.tables]
    write_csv(smk.output.index, build_index(tables))


run_job(snakemake, main)  # noqa: F821
