"""Gather the per-batch case tables into the study's case index."""
import pandas as pd

from radaug.preprocess import build_index
from radaug.io import write_csv
from radaug.provenance import run_job


def main(smk):
    tables = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in smk.input.tables]
    write_csv(smk.output.index, build_index(tables))


run_job(snakemake, main)  # noqa: F821
