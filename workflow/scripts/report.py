"""Assemble the standalone HTML study report from its data and the two pre-rendered sections."""
from pathlib import Path

from radaug.io import read_json, read_table, read_tables, write_text
from radaug.snakemake_adapter import run_job
from radaug.report import assemble_report


def main(smk):
    inp = smk.input
    html = assemble_report(
        config=smk.params.config,
        cohort=read_table(inp.index),
        folds=read_table(inp.folds),
        duplicates=read_table(inp.duplicates),
        evaluation=read_table(inp.evaluation),
        predictions=read_tables(inp.predictions),
        per_fold=read_tables(inp.per_fold),
        validation=read_table(inp.validation),
        arm_verdicts=read_table(inp.arm_verdicts),
        failures=read_tables(inp.failures),
        provenance=[read_json(p) for p in inp.provenance],
        validation_html=Path(inp.validation_html).read_text(encoding="utf-8"),
        generators_html=Path(inp.generators_html).read_text(encoding="utf-8"),
    )
    write_text(smk.output.html, html)


run_job(snakemake, main)  # noqa: F821
