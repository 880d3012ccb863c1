"""Validate one arm's added data in every fold and class against real-vs-real baselines.

Reference: the fold's real training cases. Holdout (for baselines and the
memorization comparison): the fold's real test cases, which the generator never saw.
The rows validated are those the arm adds to each fold's training set in evaluation
(radaug.evaluate.arm_added_rows): smote and combined arms included. The oversample
arm's rows are exact copies of training cases (a negative control).
"""
import pandas as pd

from radaug.evaluate import arm_added_rows
from radaug.features import feature_columns
from radaug.io import read_table, write_csv
from radaug.provenance import run_job
from radaug.splits import fold_cases, fold_key
from radaug.validate import SUMMARY_COLUMNS, validate_arm


def main(smk):
    real = read_table(smk.input.real)
    folds = read_table(smk.input.folds)
    name = smk.wildcards.arm
    arm = pd.concat([read_table(p) for p in smk.input.arm], ignore_index=True) if smk.input.arm else None
    columns = feature_columns(real)
    opts = smk.params.options
    rows = []
    for (repeat, fold), _ in folds.groupby(["repeat", "fold"]):
        train = real[real["case_id"].isin(fold_cases(folds, repeat, fold, "train")["case_id"])]
        test = real[real["case_id"].isin(fold_cases(folds, repeat, fold, "test")["case_id"])]
        candidate = arm_added_rows(name, train, arm, repeat=int(repeat), fold=int(fold), seed=smk.params.seed,
                                   target_ratio=smk.params.target_ratio, cap_per_case=smk.params.cap_per_case)
        for label in sorted(set(candidate["label"])):
            table = validate_arm(train[train["label"] == label], test[test["label"] == label],
                                 candidate[candidate["label"] == label], feature_columns=columns,
                                 thresholds=opts["thresholds"], alpha=opts["alpha"], seed=smk.params.seed)
            table.insert(0, "class", label)
            table.insert(0, "arm", name)
            table.insert(0, "fold", fold_key(repeat, fold))
            rows.append(table)
    empty = pd.DataFrame(columns=["fold", "arm", "class", *SUMMARY_COLUMNS])
    write_csv(smk.output.table, pd.concat(rows, ignore_index=True) if rows else empty)


run_job(snakemake, main)  # noqa: F821
