"""Issue 17: a tiny 3D CT study from a user's manifest of NIfTI files, end to end, with a weak generator.

The volumes are phantom CT lesions (``radaug.data.phantom.phantom_case``) written
as a user would have them: ``.nii.gz`` images and masks in a folder of their own,
0.8 mm voxels, an origin off zero, every other case stored in RAS voxel order,
one case a DICOM series with rescale slope/intercept, and a manifest CSV naming
them (not the built-in phantom source); ``preprocess.orientation: LPS``. Two generator arms run on 16^3 patches:

* ``cvae``, mask-conditioned (the 3D default): its masks come from the fold's
  shape model, so it fills its quotas and is validated and evaluated;
* ``dcgan``, forced to generate image and mask jointly
  (``generative.model_conditioning``) after a few steps: it cannot draw
  plausible 3D lesion masks, so with ``sampling.on_shortfall: record`` it writes
  its shortfall record and its arm is reported as "could not generate" by
  validation, evaluation and the report, while every other arm completes and
  ``radaug verify`` accepts the study.
"""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from ..conftest import REPO
from .conftest import FEW_NULL_DRAWS, run_snakemake

pytestmark = pytest.mark.integration

CLASSES = ["benign", "malignant"]
PATIENTS = {"benign": 7, "malignant": 4}
SPACING = 0.8
ARMS = ["real", "oversample", "cvae", "dcgan"]


def _volume(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((SPACING,) * 3)
    image.SetOrigin((-12.0, 30.5, -101.2))
    return image


def _write(image: sitk.Image, path, orientation: str) -> None:
    sitk.WriteImage(sitk.DICOMOrient(image, orientation), str(path), useCompression=True)


def write_user_cohort(folder) -> pd.DataFrame:
    """3D CT volumes (24^3 voxels, HU) with lesion masks, and the manifest naming them.

    As public data comes: most cases .nii.gz, every other one stored in RAS voxel order
    (the others LPS), and one malignant case a DICOM series folder whose scanner values
    need the rescale slope and intercept to become HU (mask as .nii.gz beside it).
    """
    from radaug.data.phantom import phantom_case

    from ..unit.test_images import _write_dicom_series

    (folder / "ct").mkdir(parents=True)
    (folder / "seg").mkdir()
    rows = []
    for label in CLASSES:
        for k in range(PATIENTS[label]):
            rng = np.random.default_rng([17, CLASSES.index(label), k])
            image, mask = phantom_case(rng, label, "fine", dim=3, size=24)
            case = f"{label[:3].upper()}{k:02d}"
            if label == "malignant" and k == 0:
                _write_dicom_series(folder / "ct" / case, image.astype(np.int16), spacing=(SPACING,) * 3,
                                    rescale=(1, -1024))
                geometry = sitk.ReadImage(sorted(str(f) for f in (folder / "ct" / case).iterdir())[0])
                seg = sitk.GetImageFromArray(mask)
                seg.SetSpacing((SPACING,) * 3)
                seg.SetOrigin(geometry.GetOrigin())
                _write(seg, folder / "seg" / f"{case}_lesion.nii.gz", "LPS")
                image_path = f"ct/{case}"
            else:
                orientation = "RAS" if k % 2 else "LPS"
                _write(_volume(image.astype(np.int16)), folder / "ct" / f"{case}.nii.gz", orientation)
                _write(_volume(mask), folder / "seg" / f"{case}_lesion.nii.gz", orientation)
                image_path = f"ct/{case}.nii.gz"
            rows.append({"case_id": case, "patient_id": f"pt-{case}", "image": image_path,
                         "mask": f"seg/{case}_lesion.nii.gz", "label": label, "modality": "CT"})
    manifest = pd.DataFrame(rows)
    manifest.to_csv(folder / "manifest.csv", index=False)
    return manifest


def study_config(manifest) -> dict:
    return {
        "study": {"name": "nifti3d", "seed": 5},
        "data": {"source": "manifest", "classes": CLASSES, "manifest": str(manifest)},
        "features": {"params": str(REPO / "workflow/resources/radiomics_3d_ct.yaml")},
        "preprocess": {"patch_mode": "crop", "patch_size": 16, "batches": 1, "orientation": "LPS"},
        "split": {"folds": 2},
        "generative": {
            "models": ["cvae", "dcgan"], "steps": 4, "batch_size": 4, "checkpoint_every": 4, "log_every": 2,
            "model_conditioning": {"dcgan": "joint"},  # cvae: mask (the 3D default)
            "cvae": {"base_channels": 4}, "dcgan": {"base_channels": 4},
        },
        "sampling": {"cap_per_case": 1, "max_attempts": 2, "on_shortfall": "record"},
        "validation": {"min_rows": 2, "controls": False, "detection": False, **FEW_NULL_DRAWS},
        "evaluation": {"arms": ARMS, "classifier": {"k_features": 5}, "bootstrap": 20},
    }


def test_a_3d_nifti_study_completes_with_a_generator_that_could_not_generate(tmp_path):
    data = tmp_path / "user_data"
    write_user_cohort(data)
    config = tmp_path / "nifti3d.yaml"
    config.write_text(yaml.safe_dump(study_config(data / "manifest.csv")))
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake(work, config)
    study = work / "results/nifti3d"

    index = pd.read_csv(study / "cases/index.csv")
    assert len(index) == sum(PATIENTS.values()) and set(index["modality"]) == {"CT"}
    assert set(index["orientation"]) == {"LPS"}  # RAS files reoriented (preprocess.orientation: LPS)
    from radaug.preprocess import load_patches

    ids, patches, masks = load_patches(sorted(study.glob("cases/batch_*.npz")))
    dicom = patches[list(ids).index("MAL00")][masks[list(ids).index("MAL00")] > 0]
    assert -200 < dicom.mean() < 300  # rescaled to HU (the stored values are HU + 1024)

    # the shortfall record: dcgan is short in some fold and says why; cvae filled every quota
    records = pd.concat(pd.read_csv(p) for p in sorted((study / "synthetic").glob("*/sampling/*.csv")))
    assert set(records["model"]) == {"cvae", "dcgan"}
    short = records[records["short"]]
    assert set(short["model"]) == {"dcgan"}, records
    reason_columns = [c for c in records.columns if c.startswith("rejected_")]
    assert (short[reason_columns].sum(axis=1) == short["rejected"]).all() and (short["rejected"] > 0).all()
    assert short["reasons"].str.contains("empty mask|ROI below range|ROI above range").all()
    cvae = records[records["model"] == "cvae"]
    assert (cvae["accepted"] == cvae["requested"]).all() and cvae["requested"].sum() > 0

    verdicts = pd.read_csv(study / "validation/arm_verdicts.csv").set_index("arm")
    assert verdicts.loc["dcgan", "verdict"] == "could not generate" and not verdicts.loc["dcgan", "evaluate"]
    assert "dcgan fell short of its quota" in verdicts.loc["dcgan", "note"]
    assert verdicts.loc["cvae", "verdict"] not in ("could not generate", "nothing added")

    summary = pd.read_csv(study / "evaluation/summary.csv")
    assert list(dict.fromkeys(summary["arm"])) == ["real", "oversample", "cvae", "dcgan"]
    dcgan = summary[summary["arm"] == "dcgan"]
    assert (dcgan["validation_verdict"] == "could not generate").all() and dcgan["mean"].isna().all()
    assert not dcgan["evaluated"].any() and dcgan["note"].str.contains("fell short").all()
    others = summary[summary["arm"] != "dcgan"]
    assert others["evaluated"].all() and others["mean"].notna().all()
    per_fold = pd.read_csv(study / "evaluation/per_fold/cvae.csv")
    assert (per_fold["n_train_added"] > 0).all()  # the mask-conditioned arm trained with its samples

    report = (study / "report.html").read_text(encoding="utf-8")
    arms = report[report.index('<section id="arms">'):report.index('<section id="config">')]
    assert "<td>dcgan</td><td>could not generate</td>" in arms and "<td>cvae</td><td>evaluated" in arms
    verify = subprocess.run([sys.executable, "-m", "radaug.cli", "verify", str(study)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert verify.returncode == 0, verify.stdout + verify.stderr
