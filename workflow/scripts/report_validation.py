"""Render the report's validation section (verdict tables and figures) as an HTML fragment."""
from radaug.io import read_table, write_text
from radaug.snakemake_adapter import run_job
from radaug.report import render_validation, report_classes
from radaug.validate.details import concat_details, read_details


def main(smk):
    inp = smk.input
    details = concat_details(
        read_details(*paths) for paths in zip(inp.validation_ks, inp.validation_correlation, inp.validation_dcr))
    classes = report_classes(smk.params.classes, read_table(inp.index))
    write_text(smk.output.html, render_validation(read_table(inp.validation), classes, details))


run_job(snakemake, main)  # noqa: F821
