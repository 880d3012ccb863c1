"""Issue 18: a balanced cohort (every rebalancing quota 0) runs end to end.

Each patient has one lesion and the classes are equal, so 2 folds give balanced
training folds: the oversample, classical and generator arms add nothing, their
sample and feature tables are empty (no feature columns), and every stage must
treat that as an arm equal to 'real' and say so, through report and verify.
"""
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from .conftest import run_snakemake

pytestmark = pytest.mark.integration

CONFIG = {
    "study": {"name": "balanced", "seed": 3},
    "data": {"source": "phantom", "classes": ["benign", "malignant"],
             "phantom": {"n_patients": {"benign": 6, "malignant": 6}, "multi_lesion_fraction": 0.0,
                         "dim": 2, "size": 64}},
    "preprocess": {"patch_mode": "crop", "patch_size": 32, "batches": 1},
    "split": {"folds": 2, "near_duplicate_bits": 0},
    "generative": {"models": ["cvae"], "steps": 10, "batch_size": 8, "checkpoint_every": 10},
    "validation": {"min_rows": 2, "controls": False},
    "evaluation": {"arms": ["real", "oversample", "classical", "cvae"], "classifier": {"k_features": 5},
                   "bootstrap": 50},
}


def test_a_balanced_cohort_runs_end_to_end(tmp_path):
    config = tmp_path / "balanced.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    run_snakemake(tmp_path, config)
    study = tmp_path / "results/balanced"

    folds = pd.read_csv(study / "splits/folds.csv")
    train = folds[folds["role"] == "train"].groupby(["fold", "label"]).size().unstack()
    assert (train["benign"] == train["malignant"]).all(), train  # balanced: every quota is 0

    per_fold = pd.concat(pd.read_csv(p) for p in sorted((study / "evaluation/per_fold").glob("*.csv")))
    assert set(per_fold["arm"]) == {"real", "oversample", "classical", "cvae"}
    assert (per_fold["n_train_added"] == 0).all()
    summary = pd.read_csv(study / "evaluation/summary.csv")
    by_arm = summary.set_index(["arm", "metric"])
    for arm in ("oversample", "classical", "cvae"):
        assert (by_arm.loc[arm, "delta_vs_real"] == 0).all()  # real plus nothing
        assert not by_arm.loc[arm, "holm_significant"].any()
    verdicts = pd.read_csv(study / "validation/arm_verdicts.csv").set_index("arm")
    assert (verdicts.loc[["classical", "cvae"], "verdict"] == "nothing added").all()

    report = (study / "report.html").read_text(encoding="utf-8")
    for arm in ("oversample", "classical", "cvae"):
        assert f"Arm &#x27;{arm}&#x27; adds no rows in any fold" in report
    assert "Only 2 fold(s)" in report
    verify = subprocess.run([sys.executable, "-m", "radaug.cli", "verify", str(study)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert verify.returncode == 0, verify.stdout + verify.stderr
