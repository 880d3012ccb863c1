"""Concatenate the per-arm validation tables; write the per-arm verdicts evaluation and report read.

An arm whose generator fell short of a quota (the sampling records) gets the verdict 'could not generate'.
"""
from pathlib import Path

import pandas as pd

from radaug.io import read_table, read_tables, write_csv
from radaug.snakemake_adapter import run_job
from radaug.sampling import shortfall_notes
from radaug.validate.verdicts import STUDY_SUMMARY_COLUMNS, arm_verdicts


def main(smk):
    frames = [read_table(p) for p in smk.input.tables]
    summary = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=STUDY_SUMMARY_COLUMNS)
    write_csv(smk.output.summary, summary)
    # validation/arms/<arm>.csv: an arm whose table has no rows added nothing and gets its own verdict
    arms = [Path(p).stem for p in smk.input.tables if Path(p).parent.name == "arms" and Path(p).stem != "controls"]
    short = shortfall_notes(read_tables(smk.input.sampling), arms)
    write_csv(smk.output.arm_verdicts, arm_verdicts(
        summary, evaluate_failing_arms=smk.params.evaluate_failing_arms, arms=arms, could_not_generate=short,
        level=smk.params.level))


run_job(snakemake, main)  # noqa: F821
