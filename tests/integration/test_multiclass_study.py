"""Issue 23: a three-class study (config/phantom_multiclass.yaml) runs end to end.

benign, malignant and borderline phantom lesions (borderline the smallest class); no
generator, so it stays fast: the arms real, oversample, smote and classical. Checks the
K-class contract of every stage that used to assume two classes: folds that test every
class, quotas that fill every smaller class towards the largest, one-vs-rest and
per-class metrics, the report's confusion matrices and smallest-class wording, verify.
"""
import subprocess
import sys

import pandas as pd
import pytest

from ..conftest import REPO
from .conftest import FEW_NULL_DRAWS, config_with, run_snakemake

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("integration")]

CLASSES = ["benign", "malignant", "borderline"]


def test_a_three_class_study_runs_end_to_end(tmp_path):
    config = config_with(REPO / "config/phantom_multiclass.yaml", tmp_path / "multiclass.yaml",
                         {"validation": FEW_NULL_DRAWS})
    run_snakemake(tmp_path, config)
    study = tmp_path / "results/phantom_multiclass"

    folds = pd.read_csv(study / "splits/folds.csv")
    test = folds[folds["role"] == "test"].groupby(["repeat", "fold", "label"]).size().unstack(fill_value=0)
    assert sorted(test.columns) == sorted(CLASSES) and (test > 0).all(axis=None), test
    train = folds[folds["role"] == "train"].groupby(["fold", "label"]).size().unstack(fill_value=0)

    per_fold = pd.concat(pd.read_csv(p) for p in sorted((study / "evaluation/per_fold").glob("*.csv")))
    assert {"recall_borderline", "auc_malignant", "minority_recall", "brier"} <= set(per_fold.columns)
    assert "sensitivity" not in per_fold.columns
    for fold, counts in train.iterrows():  # cap_per_case 2 never binds here: every class filled to the largest
        wanted = sum(min(counts.max() - n, 2 * n) for n in counts)
        added = per_fold[(per_fold["arm"] == "oversample") & (per_fold["fold"] == fold)]["n_train_added"]
        assert (added == wanted).all() and wanted > 0
    assert (per_fold[per_fold["arm"] == "real"]["n_train_added"] == 0).all()
    assert per_fold[["auc", "balanced_accuracy", "f1", "brier"]].stack().between(0, 1).all()

    predictions = pd.read_csv(study / "evaluation/predictions/real.csv")
    proba = predictions[[f"proba_{c}" for c in CLASSES]]
    assert ((proba.sum(axis=1) - 1).abs() < 1e-6).all()
    assert set(predictions["predicted"]) <= set(CLASSES)

    summary = pd.read_csv(study / "evaluation/summary.csv")
    assert {"recall_borderline", "auc_borderline"} <= set(summary["metric"])
    assert summary[summary["arm"] != "real"]["p_value"].notna().any()

    report = (study / "report.html").read_text(encoding="utf-8")
    assert "Confusion matrices of the pooled out-of-fold predictions" in report
    assert '<h2>Confusion matrices</h2>' in report and "ROC curves</" not in report  # K > 2: no ROC heading
    assert "recall of the smallest class &#x27;borderline&#x27;" in report
    verify = subprocess.run([sys.executable, "-m", "radaug.cli", "verify", str(study)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert verify.returncode == 0, verify.stdout + verify.stderr
