"""A study on real 3D images made by nobody on this project: the PyRadiomics cases, end to end.

PyRadiomics ships four real patients with expert lesion masks that suit a study (``brain1``,
``brain2``: MR, 0.78 x 0.78 x 6.5 mm, stored with a flipped axis; ``lung1``, ``lung2``: CT,
0.57-0.63 x 0.57-0.63 x 5 mm; ``breast1`` is a 45-pixel-wide crop with no room for a
control region and is left out; :mod:`radaug.data.pyradiomics_cases`). No outcome label
ships with them, so the study asks the classic radiomics control question instead:
lesion against healthy tissue of the same patient. Each patient gives three regions: the
expert lesion mask, its mirror image across the body's left-right midline (the
contralateral side: 0 voxels of overlap, inside the body for these four) and that mirror
shifted by the lesion's height (a second healthy region), so the lesion class is the
minority (4 vs 8) and the generators have something to fill.

What it shows: the chain runs on anisotropic real volumes, CT and MR together (z-scored
per image, ``preprocess.modality: other``), stored in two voxel orientations (reoriented to
LPS), resampled to 2 mm, with three masks per image (``data.allow_mixed_patient_labels``;
one image signature per patient, so ``split.allow_mixed_label_duplicates``), folds that
keep each patient's regions together, a classical and a mask-conditioned 3D generator arm,
validation, evaluation on held-out patients, the report and a verified manifest. What it
cannot show: anything about augmentation's benefit (four patients; the AUCs are noise).
Without its ``allow_*`` and ``orientation`` keys this config stops with errors naming those
keys (mixed labels per patient, mixed voxel orientations, one image under two labels); that
is not asserted here. The report is covered through ``radaug verify`` only.
"""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radaug.data.pyradiomics_cases import CASES, fetch_cases

from ..conftest import REPO
from .conftest import FEW_NULL_DRAWS, run_snakemake

pytestmark = pytest.mark.integration

PATIENTS = ("brain1", "brain2", "lung1", "lung2")
ARMS = ["real", "oversample", "classical", "cvae"]


def _mask_like(voxels: np.ndarray, zyx: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    z, y, x = zyx
    inside = (y >= 0) & (y < voxels.shape[1]) & (x >= 0) & (x < voxels.shape[2])
    out = np.zeros(voxels.shape, np.uint8)
    out[z[inside], y[inside], x[inside]] = 1
    return out


def write_public_cohort(folder, cases) -> pd.DataFrame:
    """Manifest of lesion and healthy-tissue regions of the public cases (masks written beside it)."""
    folder.mkdir(parents=True)
    rows = []
    for patient in PATIENTS:
        image_path, label_path = cases[patient]
        label = sitk.ReadImage(str(label_path))
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
        lesion = sitk.GetArrayFromImage(label) > 0
        body = image > np.percentile(image, 30)
        z, y, x = np.nonzero(lesion)
        columns = np.flatnonzero(body.any(axis=(0, 1)))
        mirrored_x = np.round(columns.min() + columns.max() - x).astype(int)
        height = y.max() - y.min() + 4
        masks = {"lesion": lesion.astype(np.uint8), "contralateral": _mask_like(lesion, (z, y, mirrored_x)),
                 "contralateral_shifted": _mask_like(lesion, (z, y - height, mirrored_x))}
        for region, mask in masks.items():
            if region != "lesion":  # healthy tissue: off the lesion, inside the body
                assert not (mask & lesion).any() and body[mask > 0].mean() > 0.6, (patient, region)
            written = sitk.GetImageFromArray(mask)
            written.CopyInformation(label)
            path = folder / f"{patient}_{region}.nrrd"
            sitk.WriteImage(written, str(path), useCompression=True)
            rows.append({"case_id": f"{patient}_{region}", "patient_id": patient, "image": str(image_path),
                         "mask": path.name, "label": "lesion" if region == "lesion" else "healthy",
                         "modality": CASES[patient]})
    manifest = pd.DataFrame(rows)
    manifest.to_csv(folder / "manifest.csv", index=False)
    return manifest


def study_config(manifest) -> dict:
    return {
        "study": {"name": "public3d", "seed": 7},
        "data": {"source": "manifest", "classes": ["healthy", "lesion"], "manifest": str(manifest),
                 "allow_mixed_patient_labels": True},
        "features": {"params": str(REPO / "workflow/resources/radiomics_3d_mr.yaml")},
        "preprocess": {"patch_mode": "crop", "patch_size": 32, "spacing": [2.0, 2.0, 2.0],
                       "normalisation": "image_zscore", "modality": "other", "orientation": "LPS", "batches": 1},
        "split": {"folds": 4, "allow_mixed_label_duplicates": True},
        "generative": {"models": ["cvae"], "steps": 4, "batch_size": 4, "checkpoint_every": 4, "log_every": 2,
                       "cvae": {"base_channels": 4}},
        "sampling": {"cap_per_case": 1, "max_attempts": 2, "on_shortfall": "record"},
        "validation": {"min_rows": 2, "controls": False, "detection": False, **FEW_NULL_DRAWS},
        "evaluation": {"arms": ARMS, "classifier": {"k_features": 5}, "bootstrap": 20},
    }


def test_the_public_3d_cases_run_end_to_end(tmp_path):
    cases = fetch_cases(REPO / "resources" / "pyradiomics")
    manifest = write_public_cohort(tmp_path / "public", cases)
    config = tmp_path / "public3d.yaml"
    config.write_text(yaml.safe_dump(study_config(tmp_path / "public" / "manifest.csv")))
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake(work, config)
    study = work / "results/public3d"

    index = pd.read_csv(study / "cases/index.csv").set_index("case_id")
    assert sorted(index.index) == sorted(manifest["case_id"])
    assert set(index["orientation"]) == {"LPS"} and set(index["spacing"]) == {"2x2x2"}
    assert not index["roi_truncated"].any()  # every region fits its 32^3 patch at 2 mm
    lesion = index.loc[[f"{p}_lesion" for p in PATIENTS], "roi_voxels"]
    assert (lesion > 0).all() and lesion["lung2_lesion"] > 10 * lesion["brain2_lesion"]  # real sizes, not one template

    folds = pd.read_csv(study / "splits/folds.csv")
    tested = folds[folds["role"] == "test"].groupby("fold")["patient_id"].unique()
    assert sorted(p for patients in tested for p in patients) == sorted(PATIENTS)  # one held-out patient a fold
    for _, fold in folds.groupby("fold"):
        roles = fold.groupby("patient_id")["role"].nunique()
        assert (roles == 1).all()  # a patient's three regions never straddle train and test

    records = pd.concat(pd.read_csv(p) for p in sorted((study / "synthetic").glob("cvae/sampling/*.csv")))
    assert (records["accepted"] == records["requested"]).all() and records["requested"].sum() > 0

    summary = pd.read_csv(study / "evaluation/summary.csv")
    assert list(dict.fromkeys(summary["arm"])) == ARMS
    assert summary["evaluated"].all() and summary.loc[summary["metric"] == "auc", "mean"].notna().all()
    per_fold = pd.read_csv(study / "evaluation/per_fold/cvae.csv")
    assert (per_fold["n_train_added"] > 0).all()
    verify = subprocess.run([sys.executable, "-m", "radaug.cli", "verify", str(study)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert verify.returncode == 0, verify.stdout + verify.stderr
