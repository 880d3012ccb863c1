"""Evaluate one arm: classifier fit on fold-train real (+ arm data), scored on fold-test real only.

An arm whose generator fell short of a quota in some fold (its sampling records) is not
evaluated: its tables have no rows, and the evaluation summary says why.
"""
import pandas as pd

from radaug.arms import REFERENCE_ARM
from radaug.evaluate import evaluate_arm, per_fold_columns, prediction_columns
from radaug.io import read_table, read_tables, write_csv
from radaug.snakemake_adapter import log, run_job
from radaug.sampling import shortfall_notes


def main(smk):
    short = shortfall_notes(read_tables(smk.input.sampling), [smk.wildcards.arm])
    if short:
        log.warning("arm %s is not evaluated: %s", smk.wildcards.arm, short[smk.wildcards.arm])
        write_csv(smk.output.per_fold, pd.DataFrame(columns=list(per_fold_columns(smk.params.classes))))
        write_csv(smk.output.predictions, pd.DataFrame(columns=list(prediction_columns(smk.params.classes))))
        return
    real = read_table(smk.input.real)
    folds = read_table(smk.input.folds)
    arm_data = None
    if smk.input.arm:
        arm_data = read_tables(smk.input.arm)
    invariance = None
    if smk.input.invariance:
        invariance = read_tables(smk.input.invariance)
    per_fold, predictions = evaluate_arm(
        real, folds, smk.wildcards.arm, positive_class=smk.params.positive_class, classes=smk.params.classes,
        arm_data=arm_data,
        classifier=smk.params.classifier, invariance=invariance, target_ratio=smk.params.target_ratio,
        cap_per_case=smk.params.cap_per_case, seed=smk.params.seed,
    )
    if smk.wildcards.arm != REFERENCE_ARM and not per_fold["n_train_added"].any():
        log.info("arm %s adds no rows in any fold (balanced training folds or sampling.cap_per_case 0): it trains "
                 "on the real cases alone and evaluates like 'real'", smk.wildcards.arm)
    write_csv(smk.output.per_fold, per_fold)
    write_csv(smk.output.predictions, predictions)


run_job(snakemake, main)  # noqa: F821
