"""Across-fold statistics per arm and metric: corrected tests, effect sizes, pooled bootstrap vs real."""
import pandas as pd

from radaug.evaluate import summarise
from radaug.io import read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    per_fold = pd.concat([read_table(p) for p in smk.input.per_fold], ignore_index=True)
    predictions = pd.concat([read_table(p) for p in smk.input.predictions],
                            ignore_index=True)
    summary = summarise(per_fold, predictions, reference_arm="real", alpha=smk.params.alpha,
                        n_bootstrap=smk.params.n_bootstrap, seed=smk.params.seed)
    write_csv(smk.output.summary, summary)


run_job(snakemake, main)  # noqa: F821
