"""Representative bad inputs through Snakemake, and what a different seed changes.

The full catalogue runs at library level (tests/unit/test_bad_inputs.py); here a
few entries run the real ``cohort`` rule (or the Snakefile's start-up check) on a
tiny user manifest, to show the run stops before writing the stage's results.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radaug.io import sha256_file

from ..conftest import REPO
from .conftest import run_snakemake

pytestmark = pytest.mark.integration

CLASSES = ["benign", "malignant"]
PARAMS = str(REPO / "workflow/resources/radiomics_2d_ct.yaml")


@pytest.fixture(scope="module")
def user_cohort(tmp_path_factory):
    """A small 2D phantom cohort written as a user's manifest folder (outside any working directory)."""
    from radaug.data.phantom import make_phantom_cohort

    folder = tmp_path_factory.mktemp("user_data")
    make_phantom_cohort(folder, n_patients={"benign": 8, "malignant": 5}, dim=2, size=48, seed=3)
    return folder


def _study(tmp_path, cohort_folder, edit=None, seed=1, **data):
    """A working directory with a copy of the manifest (optionally edited) and a config; returns (workdir, config)."""
    table = pd.read_csv(cohort_folder / "manifest.csv", dtype=str, keep_default_na=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    for column in ("image", "mask"):
        table[column] = [str(cohort_folder / p) if p else "" for p in table[column]]
    if edit:
        table = edit(data_dir, table)
    table.to_csv(data_dir / "manifest.csv", index=False)
    config = {"study": {"name": "user", "seed": seed},
              "data": {"source": "manifest", "classes": CLASSES, "manifest": str(data_dir / "manifest.csv"), **data},
              "preprocess": {"patch_mode": "crop", "patch_size": 32, "batches": 1},
              "split": {"folds": 3}, "features": {"params": PARAMS}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir, tmp_path / "config.yaml"


def _nan_image(data_dir, table):
    array = np.ones((48, 48), np.float32)
    array[10, 10] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(array), str(data_dir / "nan.mha"))
    table.loc[0, "image"] = str(data_dir / "nan.mha")
    table.loc[0, "mask"] = ""
    return table


def _truncated_image(data_dir, table):
    data = open(table.loc[1, "image"], "rb").read()
    (data_dir / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    table.loc[1, "image"] = "cut.nii.gz"
    return table


def _missing_mask(data_dir, table):
    table.loc[2, "mask"] = "gone.nii.gz"
    return table


def _latin1(data_dir, table):
    table.loc[0, "case_id"] = "caf\xe9"
    return table


@pytest.mark.parametrize("edit, data, expected", [
    (_nan_image, {}, [r"case '\S+': image .*nan\.mha contains NaN", "fix or drop the case"]),
    (_truncated_image, {}, [r"image .*cut\.nii\.gz is truncated", "copy or export the file again"]),
    (_missing_mask, {}, [r"mask file .*gone\.nii\.gz does not exist", "correct the path"]),
    (None, {"data_root": "."}, [r"image path \S+ resolves to .*outside data\.data_root",
                                "move the file inside data.data_root"]),
], ids=["nan-voxels", "truncated-image", "missing-mask", "path-outside-data-root"])
def test_cohort_job_refuses_and_writes_nothing(user_cohort, tmp_path, edit, data, expected):
    import re

    workdir, config = _study(tmp_path, user_cohort, edit, **data)
    out = run_snakemake(workdir, config, "--until", "cohort", check=False)
    assert "ManifestError" in out, out[-3000:]
    for pattern in expected:
        assert re.search(pattern, out), (pattern, out[-3000:])
    study = workdir / "results/user"
    written = sorted(p.relative_to(study) for p in study.rglob("*") if p.is_file() and p.parts[-2:][0] != "logs")
    assert [p for p in written if p.parts[0] != "logs"] == [], written


@pytest.mark.parametrize("edit, config_changes, expected", [
    (_latin1, {}, "is not UTF-8"),
    (None, {"split": {"folds": 6}}, "Use at most 5 folds"),
], ids=["non-utf8-manifest", "fewer-patients-than-folds"])
def test_workflow_start_refuses_before_any_job(user_cohort, tmp_path, edit, config_changes, expected):
    workdir, config = _study(tmp_path, user_cohort, edit)
    if edit is _latin1:  # re-encode the written manifest
        path = tmp_path / "data/manifest.csv"
        path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    if config_changes:
        cfg = yaml.safe_load(config.read_text())
        cfg.update(config_changes)
        config.write_text(yaml.safe_dump(cfg))
    out = run_snakemake(workdir, config, check=False)
    assert "invalid configuration" in out and expected in out, out[-3000:]
    assert not (workdir / "results").exists()


def test_seed_changes_the_split_but_not_the_cohort_of_a_user_manifest(user_cohort, tmp_path):
    """study.seed drives every random choice, and nothing else: for a user manifest the
    cohort table and the preprocessed patches do not depend on it; the folds do."""
    runs = {}
    for seed in (1, 2):
        workdir, config = _study(tmp_path / f"seed{seed}", user_cohort, seed=seed)
        run_snakemake(workdir, config, "--until", "split")
        study = workdir / "results/user"
        runs[seed] = {str(p.relative_to(study)): sha256_file(p) for p in study.rglob("*")
                      if p.is_file() and p.relative_to(study).parts[0] in ("cohort", "cases", "splits")}
    one, two = runs[1], runs[2]
    assert set(one) == set(two)
    unchanged = sorted(p for p in one if one[p] == two[p])
    changed = sorted(p for p in one if one[p] != two[p])
    assert "cohort/cohort.csv" in unchanged and "cases/index.csv" in unchanged
    # the near-duplicate audit lists pairs of images (seed-free); only its 'straddles' column follows the folds,
    # so it changes with the seed exactly when some pair exists
    seed_free = ("cohort/", "cases/", "splits/duplicates.csv")
    assert all(p.startswith(seed_free) for p in unchanged), unchanged
    assert "splits/folds.csv" in changed and set(changed) <= {"splits/folds.csv", "splits/duplicates.csv"}, changed
