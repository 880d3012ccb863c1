"""Issue 20, item 3: a 2D phantom study with in-fold generator selection runs end to end
(config/phantom_selection.yaml: generative.selection.enabled).

Checks: every generator and fold has its selection curve with exactly one chosen step;
the checkpoint holds that step's record; every sample row names it (selected_step); the
held-out cases are training cases of the fold and were not fitted on; the report shows
the curves.
"""
import pandas as pd
import pytest
import torch

from radaug.io import read_table

from ..conftest import REPO
from .conftest import FEW_NULL_DRAWS, config_with, run_snakemake

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("integration")]


def test_a_study_with_in_fold_selection_runs_end_to_end(tmp_path):
    # Without the control arms (a third of the study's job time): nothing here concerns them, and
    # the smoke and Nyúl–Udupa studies run them.
    config = config_with(REPO / "config/phantom_selection.yaml", tmp_path / "selection.yaml",
                         {"validation": {"controls": False, **FEW_NULL_DRAWS}})
    run_snakemake(tmp_path, config)
    study = tmp_path / "results/phantom_selection"
    folds = read_table(study / "splits/folds.csv")
    for model in ("cvae", "dcgan"):
        for fold in ("r0f0", "r0f1"):
            here = study / "models" / model / fold
            curve = read_table(here / "selection.csv")
            assert {"step", "frechet", "coverage", "frechet_benign", "coverage_malignant", "best",
                    "selected"} <= set(curve.columns)
            assert curve["selected"].sum() == 1 and (curve["step"] % 20 == 0).all()
            chosen = int(curve.loc[curve["selected"], "step"].iloc[0])
            record = torch.load(here / "checkpoint.pt", weights_only=True)["selection"]
            assert record["selected_step"] == chosen and record["metric"] == "frechet"
            samples = read_table(study / "synthetic" / model / f"{fold}.csv")
            assert len(samples) and (samples["selected_step"] == chosen).all()

            roles = read_table(here / "training_input.csv")
            part = folds[(folds["repeat"] == 0) & (folds["fold"] == int(fold[-1]))].set_index("case_id")
            held = roles.loc[roles["role"] == "selection", "case_id"]
            fitted = roles.loc[roles["role"] == "fit", "case_id"]
            assert len(held) >= 4 and (part.loc[held, "role"] == "train").all()
            assert not set(part.loc[held, "group"]) & set(part.loc[fitted, "group"])
    html = (study / "report/generators.html").read_text(encoding="utf-8")
    assert "Model selection" in html and "chosen step" in html
    assert pd.read_csv(study / "evaluation/summary.csv")["arm"].isin(["cvae", "dcgan"]).any()
