"""The bad-input catalogue: every entry is one bad config or manifest, and its test.

Each entry states what the message must *name* (the config key, the case, the
file) and what *fix* it must give. An entry is run at library level (the same
checks the Snakefile runs at workflow start and the ``cohort`` job runs before
writing anything); tests/integration/test_bad_inputs_workflow.py runs
representative entries through Snakemake and checks that nothing was written.

To add an entry: write a builder ``def _name(tmp_path) -> Callable`` that sets up
the files and returns the call that must fail, and add a :class:`BadInput` row.

Not in the catalogue yet: an augmentation invalid for a modality. Classical
augmentation is a stage added by the ``aug`` work; its check belongs in
``radaug.config`` beside the arm checks, and its entry here.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug.config import load_config, validate_config
from radaug.errors import ConfigError, ManifestError, RadaugError
from radaug.manifest import read_manifest_table, validate_manifest

from ..conftest import REPO

CLASSES = ["benign", "malignant"]
PHANTOM = {"study": {"name": "t"}, "data": {"source": "phantom", "classes": CLASSES}}


@dataclass(frozen=True)
class BadInput:
    """One catalogue entry: how to build it and what its message must say."""

    name: str
    build: Callable[[Path], Callable[[], object]]
    error: type[RadaugError]
    names: str  # regex: the key, case or file the message must name
    fix: str  # regex: the remedy the message must give


# --- builders: config ----------------------------------------------------------------------

def _config(**changes) -> dict:
    cfg = copy.deepcopy(PHANTOM)
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return cfg


def _validate(**changes):
    def build(tmp_path):
        return lambda: validate_config(_config(**changes), base_dir=tmp_path)
    return build


def _params_file(text):
    def build(tmp_path):
        (tmp_path / "params.yaml").write_text(text)
        return lambda: validate_config(_config(features__params="params.yaml"), base_dir=tmp_path)
    return build


def _config_file(content: bytes):
    def build(tmp_path):
        (tmp_path / "c.yaml").write_bytes(content)
        return lambda: load_config(tmp_path / "c.yaml", base_dir=tmp_path)
    return build


# --- builders: manifest ---------------------------------------------------------------------

def _write_image(path: Path, array: np.ndarray, spacing=None, origin=None, direction=None) -> None:
    image = sitk.GetImageFromArray(array, isVector=False)  # a 4D array is a 4D scalar image, not vectors
    if spacing:
        image.SetSpacing(spacing)
    if origin:
        image.SetOrigin(origin)
    if direction:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path))


def _cohort_files(folder: Path, n: int = 4) -> pd.DataFrame:
    """A valid 2D cohort of ``n`` cases (one patient each, classes alternating) and its table."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:12, 5:12] = 1
    _write_image(folder / "mask.nii.gz", mask)
    rows = []
    for i in range(n):
        _write_image(folder / f"img{i}.nii.gz", rng.normal(size=(20, 20)).astype(np.float32))
        rows.append({"case_id": f"c{i}", "patient_id": f"p{i}", "image": f"img{i}.nii.gz",
                     "mask": "mask.nii.gz", "label": CLASSES[i % 2]})
    return pd.DataFrame(rows)


def _manifest(edit, **kwargs):
    """Build a valid cohort in ``tmp_path/data``, apply ``edit(folder, table)``, validate."""
    def build(tmp_path):
        folder = tmp_path / "data"
        table = _cohort_files(folder)
        table = edit(folder, table) if edit else table
        return lambda: validate_manifest(table, base_dir=folder, classes=CLASSES, source="m.csv", **kwargs)
    return build


def _preprocess(**options):
    """A valid cohort preprocessed with ``options`` overriding the phantom defaults (the preprocess job's call)."""
    def build(tmp_path):
        from radaug.preprocess import patch_options, preprocess_batch

        folder = tmp_path / "data"
        cohort = validate_manifest(_cohort_files(folder), base_dir=folder, classes=CLASSES, source="m.csv")
        pre = {**validate_config(_config())["preprocess"], **options}
        return lambda: preprocess_batch(cohort, 0, 1, mask_label=None, **patch_options(pre))
    return build


def _set(column, row, value):
    def edit(folder, table):
        table.loc[row, column] = value
        return table
    return edit


def _image_case(array, name="bad.mha", column="image", row=1, **geometry):
    def edit(folder, table):
        _write_image(folder / name, array, **geometry)
        table.loc[row, column] = name
        return table
    return edit


def _truncated(name):
    def edit(folder, table):
        _write_image(folder / name, np.ones((8, 20, 20), np.float32))
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
        table.loc[2, "image"] = name
        return table
    return edit


def _with_nan(value):
    array = np.ones((20, 20), np.float32)
    array[4, 4] = value
    return array


def _multilabel():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:6, 2:6], mask[8:14, 8:14] = 1, 2
    return mask


def _outside(kind):
    """An image path that leaves data.data_root: '..', an absolute path, or a symlink."""
    def edit(folder, table):
        outside = folder.parent / "elsewhere"
        outside.mkdir()
        _write_image(outside / "x.nii.gz", np.ones((20, 20), np.float32))
        if kind == "dotdot":
            table.loc[0, "image"] = "../elsewhere/x.nii.gz"
        elif kind == "absolute":
            table.loc[0, "image"] = str(outside / "x.nii.gz")
        else:
            os.symlink(outside / "x.nii.gz", folder / "link.nii.gz")
            table.loc[0, "image"] = "link.nii.gz"
        return table
    return edit


def _confined(kind):
    def build(tmp_path):
        return _manifest(_outside(kind), data_root=tmp_path / "data")(tmp_path)
    return build


def _csv_file(content: bytes):
    def build(tmp_path):
        (tmp_path / "m.csv").write_bytes(content)
        return lambda: read_manifest_table(tmp_path / "m.csv")
    return build


def _manifest_config(n_patients: int, folds: int, **data):
    """A manifest-source config (checked at workflow start, before any job)."""
    def build(tmp_path):
        table = _cohort_files(tmp_path / "data", n=n_patients)
        table.to_csv(tmp_path / "data/manifest.csv", index=False)
        cfg = {"study": {"name": "u"}, "split": {"folds": folds},
               "data": {"source": "manifest", "classes": CLASSES, "manifest": "data/manifest.csv", **data}}
        return lambda: validate_config(cfg, base_dir=tmp_path)
    return build


_3D = np.ones((4, 20, 20), np.float32)

CATALOGUE = [
    # config: keys, types, values (the Snakefile runs these checks before any job)
    BadInput("config: unknown top-level key", _validate(bogus=1), ConfigError, r"'bogus'", r"remove or correct"),
    BadInput("config: unknown nested key", _validate(split__foldz=3), ConfigError, r"'foldz' under 'split'",
             r"remove or correct.*Allowed keys: .*folds"),
    BadInput("config: wrong type", _validate(split__folds="five"), ConfigError, r"split\.folds",
             r"Correct the value"),
    BadInput("config: negative seed", _validate(study__seed=-1), ConfigError, r"study\.seed", r"Correct the value"),
    BadInput("config: missing required key", lambda p: lambda: validate_config({"data": PHANTOM["data"]}),
             ConfigError, r"'study'", r"add it"),
    BadInput("config: one fold", _validate(split__folds=1), ConfigError, r"split\.folds", r"Correct the value"),
    BadInput("config: more folds than patients",
             _validate(split__folds=6, data__phantom={"n_patients": {"benign": 8, "malignant": 5}}),
             ConfigError, r"split\.folds.*'malignant' has only 5", r"Use at most 5 folds or add patients"),
    BadInput("config: unknown arm", _validate(evaluation__arms=["real", "stylegan"]), ConfigError,
             r"evaluation\.arms.*stylegan", r"add the model to 'generative\.models', or remove the arm"),
    BadInput("config: unknown model", _validate(generative__models=["stylegan"]), ConfigError,
             r"generative\.models\.0", r"Correct the value"),
    BadInput("config: arms without the real reference", _validate(evaluation__arms=["oversample"]), ConfigError,
             r"evaluation\.arms", r"Add 'real'"),
    BadInput("config: class names differ from the source's", _validate(data__phantom={"n_patients": {"a": 9, "b": 9}}),
             ConfigError, r"data\.phantom\.n_patients", r"use the same class names"),
    BadInput("config: PyRadiomics params file missing", _validate(features__params="nope.yaml"), ConfigError,
             r"features\.params.*nope\.yaml", r"correct the path"),
    BadInput("config: params file PyRadiomics rejects (type)", _params_file("setting:\n  binWidth: wide\n"),
             ConfigError, r"params\.yaml \(config key 'features\.params'\).*binWidth", r"Fix the file"),
    BadInput("config: params file PyRadiomics rejects (unknown key)", _params_file("settingz:\n  binWidth: 5\n"),
             ConfigError, r"params\.yaml.*settingz", r"Fix the file"),
    BadInput("config: params file PyRadiomics rejects (feature class)", _params_file("featureClass:\n  bogus: []\n"),
             ConfigError, r"params\.yaml.*bogus", r"Fix the file"),
    # config: preprocessing (patches, normalisation) and what the params file must leave to it
    BadInput("config: params file normalises (preprocessing does)", _params_file("setting:\n  normalize: true\n"),
             ConfigError, r"features\.params.*'normalize'", r"preprocess\.normalisation: image_zscore"),
    BadInput("config: params file resamples (preprocessing does)",
             _params_file("setting:\n  resampledPixelSpacing: [1, 1, 1]\n"), ConfigError,
             r"features\.params.*'resampledPixelSpacing'", r"set preprocess\.spacing"),
    BadInput("config: per-axis patch with generators", _validate(preprocess__patch_size=[64, 64, 16]), ConfigError,
             r"preprocess\.patch_size.*\[64, 64, 16\]", r"power of two.*remove the generators"),
    BadInput("config: patch too large for memory",
             _validate(preprocess__patch_size=[512, 512, 512], generative__models=[], evaluation__arms=["real"]),
             ConfigError, r"preprocess\.patch_size.*exceed the limit", r"Use a smaller patch"),
    BadInput("config: percentiles in the wrong order", _validate(preprocess__percentiles=[99, 1]), ConfigError,
             r"preprocess\.percentiles", r"first value must be below"),
    BadInput("config: unknown normalisation", _validate(preprocess__normalisation="histogram"), ConfigError,
             r"preprocess\.normalisation", r"Correct the value"),
    BadInput("preprocess: ROI larger than the patch", _preprocess(patch_size=4), ManifestError,
             r"case 'c0'.*ROI spans \[7, 7\] voxels", r"set preprocess\.patch_size to at least \[7, 7\]"),
    BadInput("config: data_root for a non-manifest source", _validate(data__data_root="."), ConfigError,
             r"data\.data_root.*source is 'phantom'", r"remove the key"),
    BadInput("config: data_root does not exist", _manifest_config(6, 3, data_root="nowhere"), ConfigError,
             r"data\.data_root.*nowhere", r"give the folder"),
    BadInput("config: invalid YAML", _config_file(b"study: [unclosed\n"), ConfigError, r"c\.yaml",
             r"Fix the syntax"),
    BadInput("config: not UTF-8", _config_file("study: {name: caf\xe9}\n".encode("latin-1")), ConfigError,
             r"c\.yaml is not UTF-8", r"save it as UTF-8"),
    # manifest: the table itself
    BadInput("manifest: file missing", lambda p: lambda: read_manifest_table(p / "x.csv"),
             ManifestError, r"x\.csv", r"check 'data\.manifest'"),
    BadInput("manifest: missing columns", _csv_file(b"case,image,label\nc0,a.nii,benign\n"), ManifestError,
             r"m\.csv lacks required column\(s\) \['case_id', 'patient_id'\]", r"it needs"),
    BadInput("manifest: not UTF-8", _csv_file("case_id,patient_id,image,label\nc\xe9,p,x,benign\n".encode("latin-1")),
             ManifestError, r"m\.csv is not UTF-8", r"save it as UTF-8"),
    BadInput("manifest: not a CSV", _csv_file(b'case_id,patient_id,image,label\n"c0,p0,a,b\n'), ManifestError,
             r"m\.csv is not a valid CSV", r"quote cells"),
    BadInput("manifest: duplicate case ids", _manifest(_set("case_id", 1, "c0")), ManifestError,
             r"case 'c0': case_id appears more than once", r"give each row its own case_id"),
    BadInput("manifest: empty case id", _manifest(_set("case_id", 1, "")), ManifestError,
             r"rows \[3\] have an empty case_id", r"give every row an id"),
    BadInput("manifest: empty patient id", _manifest(_set("patient_id", 1, "")), ManifestError,
             r"case 'c1': empty patient_id", r"give the patient"),
    BadInput("manifest: unknown label", _manifest(_set("label", 2, "cancer")), ManifestError,
             r"case 'c2': label 'cancer'", r"correct the label or data\.classes"),
    BadInput("manifest: unknown modality", _manifest(_set("modality", 2, "PET")), ManifestError,
             r"case 'c2': modality 'PET' is not one of \['CT', 'MR', 'other'\] nor a DICOM modality code",
             r"'PET' is written 'PT' in DICOM.*leave the cell empty"),
    BadInput("manifest: unknown modality code", _manifest(_set("modality", 1, "XYZ")), ManifestError,
             r"case 'c1': modality 'XYZ'.*MG", r"use CT for Hounsfield units, MR, the DICOM code, 'other'"),
    BadInput("manifest: single class", _manifest(_set("label", slice(None), "benign")), ManifestError,
             r"no case of class\(es\) \['malignant'\]", r"add cases of that class"),
    BadInput("manifest: patient in two classes", _manifest(_set("patient_id", 1, "p0")), ManifestError,
             r"patient 'p0' has cases in several classes", r"allow_mixed_patient_labels: true"),
    BadInput("manifest: class with fewer patients than folds", _manifest_config(4, 3), ConfigError,
             r"split\.folds.* class '(benign|malignant)' has only 2", r"Use at most 2 folds"),
    BadInput("manifest: class with a single patient", _manifest_config(3, 2), ConfigError,
             r"split\.folds' = 2 is impossible: class 'malignant' has only 1 patient",
             r"Add patients so that class 'malignant' has at least 2"),
    # manifest: the files it names
    BadInput("manifest: image file missing", _manifest(_set("image", 1, "gone.nii.gz")), ManifestError,
             r"case 'c1': image file .*gone\.nii\.gz does not exist", r"correct the path"),
    BadInput("manifest: mask file missing", _manifest(_set("mask", 3, "gone.nii.gz")), ManifestError,
             r"case 'c3': mask file .*gone\.nii\.gz does not exist", r"correct the path"),
    BadInput("manifest: unreadable image", _manifest(lambda f, t: ((f / "junk.nii.gz").write_bytes(b"junk"),
                                                                    _set("image", 0, "junk.nii.gz")(f, t))[1]),
             ManifestError, r"case 'c0': image is unreadable .*junk\.nii\.gz", r"replace the file"),
    BadInput("manifest: truncated .nii.gz", _manifest(_truncated("cut.nii.gz")), ManifestError,
             r"case 'c2': image .*cut\.nii\.gz is truncated", r"copy or export the file again"),
    BadInput("manifest: truncated .nii", _manifest(_truncated("cut.nii")), ManifestError,
             r"case 'c2': image .*cut\.nii is truncated.*header announces", r"copy or export the file again"),
    BadInput("manifest: truncated .mha", _manifest(_truncated("cut.mha")), ManifestError,
             r"case 'c2': image is unreadable .*cut\.mha", r"replace the file"),
    BadInput("manifest: NaN voxels", _manifest(_image_case(_with_nan(np.nan))), ManifestError,
             r"case 'c1': image .*bad\.mha contains NaN or infinite", r"fix or drop the case"),
    BadInput("manifest: infinite voxels", _manifest(_image_case(_with_nan(np.inf))), ManifestError,
             r"case 'c1': image .*bad\.mha contains NaN or infinite", r"fix or drop the case"),
    BadInput("manifest: mask spacing differs", _manifest(_image_case((_multilabel() > 0).astype(np.uint8), "m.nii.gz", "mask",
                                                                    spacing=(2.0, 1.0))),
             ManifestError, r"case 'c1': image and mask geometry differ \(spacing.*tolerance 0\.0001 absolute",
             r"resample the mask"),
    BadInput("manifest: mask origin differs", _manifest(_image_case((_multilabel() > 0).astype(np.uint8), "m.nii.gz",
                                                                   "mask", origin=(3.0, 0.0))),
             ManifestError, r"case 'c1': image and mask geometry differ \(origin", r"resample the mask"),
    BadInput("manifest: mask direction differs", _manifest(_image_case((_multilabel() > 0).astype(np.uint8),
                                                                      "m.nii.gz", "mask",
                                                                      direction=(0.0, 1.0, 1.0, 0.0))),
             ManifestError, r"case 'c1': image and mask geometry differ \(direction", r"resample the mask"),
    BadInput("manifest: mask size differs", _manifest(_image_case(np.ones((10, 20), np.uint8), "m.nii.gz", "mask")),
             ManifestError, r"case 'c1': image and mask geometry differ \(size", r"resample the mask"),
    BadInput("manifest: 2D mask for a 3D image",
             _manifest(lambda f, t: (_write_image(f / "vol.nii.gz", _3D), _set("image", 2, "vol.nii.gz")(f, t))[1]),
             ManifestError, r"case 'c2': image and mask geometry differ \(size: image \(20, 20, 4\) vs mask \(20, 20\)",
             r"resample the mask"),
    BadInput("manifest: empty mask", _manifest(_image_case(np.zeros((20, 20), np.uint8), "m.nii.gz", "mask")),
             ManifestError, r"case 'c1': mask .*m\.nii\.gz is empty", r"give a non-empty ROI"),
    BadInput("manifest: 4D image (time series)", _manifest(_image_case(np.ones((2, 4, 20, 20), np.float32), "t.nii.gz")),
             ManifestError, r"case 'c1': image .*t\.nii\.gz is a 4D image of size \(20, 20, 4, 2\)",
             r"Extract the one 3D volume to analyse"),
    BadInput("manifest: 4D mask", _manifest(_image_case(np.ones((2, 1, 20, 20), np.uint8), "m4.nii.gz", "mask")),
             ManifestError, r"case 'c1': mask .*m4\.nii\.gz is a 4D image", r"Extract the one 3D volume"),
    BadInput("manifest: mask_label matches only some masks",
             _manifest(_image_case((_multilabel() > 0).astype(np.uint8) * 255, "m255.nii.gz", "mask"), mask_label=255),
             ManifestError, r"case 'c0': mask .*mask\.nii\.gz has no voxel with data\.mask_label = 255 \(values \[0\.0, 1\.0\]\)",
             r"data\.mask_label: nonzero"),
    BadInput("manifest: mask with several labels", _manifest(_image_case(_multilabel(), "m.nii.gz", "mask")),
             ManifestError, r"case 'c1': mask .*m\.nii\.gz is not binary", r"set data\.mask_label.*'nonzero'"),
    BadInput("manifest: mask_label absent from the mask",
             _manifest(_image_case(_multilabel(), "m.nii.gz", "mask", row=slice(None)), mask_label=3),
             ManifestError, r"case 'c0': mask .*no voxel with data\.mask_label = 3", r"check data\.mask_label"),
    # manifest: paths escaping data.data_root (symlinks resolved)
    BadInput("manifest: '..' escapes data_root", _confined("dotdot"), ManifestError,
             r"case 'c0': image path .*/data/\.\./elsewhere/x\.nii\.gz resolves to .*outside data\.data_root",
             r"move the file inside data\.data_root"),
    BadInput("manifest: absolute path outside data_root", _confined("absolute"), ManifestError,
             r"case 'c0': image path /.*elsewhere/x\.nii\.gz resolves .*outside data\.data_root",
             r"move the file inside data\.data_root"),
    BadInput("manifest: symlink out of data_root", _confined("symlink"), ManifestError,
             r"case 'c0': image path .*link\.nii\.gz resolves to .*elsewhere/x\.nii\.gz, outside data\.data_root",
             r"move the file inside data\.data_root"),
]


def test_catalogue_is_large_and_names_are_unique():
    assert len(CATALOGUE) >= 25
    assert len({entry.name for entry in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("entry", CATALOGUE, ids=[e.name for e in CATALOGUE])
def test_bad_input_is_refused_with_a_named_fix(entry, tmp_path):
    call = entry.build(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(entry.error) as info:
        call()
    message = str(info.value)
    assert re.search(entry.names, message, re.S), f"does not name {entry.names!r}: {message}"
    assert re.search(entry.fix, message, re.S), f"gives no fix {entry.fix!r}: {message}"
    # nothing was written or changed: validation only reads
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_the_valid_base_cohort_passes(tmp_path):
    """The catalogue's starting point is valid, so each entry fails for its one defect."""
    table = _cohort_files(tmp_path / "data")
    cohort = validate_manifest(table, base_dir=tmp_path / "data", classes=CLASSES, data_root=tmp_path / "data")
    assert len(cohort) == 4
    validate_config(_config(), base_dir=tmp_path)


def test_symlink_inside_data_root_is_allowed(tmp_path):
    folder = tmp_path / "data"
    table = _cohort_files(folder)
    (folder / "sub").mkdir()
    os.symlink(folder / "img0.nii.gz", folder / "sub/link.nii.gz")
    table.loc[0, "image"] = "sub/link.nii.gz"
    cohort = validate_manifest(table, base_dir=folder, classes=CLASSES, data_root=folder)
    assert cohort.loc[cohort["case_id"] == "c0", "image"].item() == str((folder / "img0.nii.gz").resolve())


def test_all_problems_are_listed_at_once(tmp_path):
    folder = tmp_path / "data"
    table = _cohort_files(folder)
    table.loc[0, "image"] = "gone.nii.gz"
    table.loc[1, "label"] = "cancer"
    table.loc[2, "modality"] = "PET"
    with pytest.raises(ManifestError, match=r"has 3 problem\(s\); nothing was written") as info:
        validate_manifest(table, base_dir=folder, classes=CLASSES)
    for case in ("c0", "c1", "c2"):
        assert f"case '{case}'" in str(info.value)


def test_shipped_params_files_are_accepted():
    for params in sorted((REPO / "workflow/resources").glob("radiomics_*.yaml")):
        validate_config(_config(features__params=str(params)), base_dir=REPO)


# --- issue 18: what the refusals above point to must work -----------------------------------

def test_dicom_modality_codes_map_to_the_three_handlings(tmp_path):
    folder = tmp_path / "data"
    table = _cohort_files(folder)
    table["modality"] = ["MG", "ct", "PT", "MR"]
    cohort = validate_manifest(table, base_dir=folder, classes=CLASSES).set_index("case_id")
    assert cohort["modality"].to_dict() == {"c0": "other", "c1": "CT", "c2": "other", "c3": "MR"}


def test_mixed_mask_values_pass_with_nonzero_and_binarise_alike(tmp_path):
    from radaug.preprocess import binarise_mask

    folder = tmp_path / "data"
    table = _image_case((_multilabel() > 0).astype(np.uint8) * 255, "m255.nii.gz", "mask")(folder, _cohort_files(folder))
    cohort = validate_manifest(table, base_dir=folder, classes=CLASSES, mask_label="nonzero")
    assert len(cohort) == 4
    ones = sitk.ReadImage(str(folder / "mask.nii.gz"), sitk.sitkFloat64)
    full = sitk.ReadImage(str(folder / "m255.nii.gz"), sitk.sitkFloat64)
    for mask in (ones, full):
        binary = sitk.GetArrayFromImage(binarise_mask(mask, "nonzero"))
        assert set(np.unique(binary)) == {0, 1}
        np.testing.assert_array_equal(binary, sitk.GetArrayFromImage(mask) != 0)
    validate_config(_config(data__mask_label="nonzero"), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="data.mask_label"):
        validate_config(_config(data__mask_label="any"), base_dir=tmp_path)


def test_mask_spacing_within_float_noise_is_accepted(tmp_path):
    folder = tmp_path / "data"
    noisy = _image_case((_multilabel() > 0).astype(np.uint8), "m.nii.gz", "mask", spacing=(1.00000005, 1.0))
    table = noisy(folder, _cohort_files(folder))
    assert len(validate_manifest(table, base_dir=folder, classes=CLASSES)) == 4


def test_single_patient_class_does_not_advise_fewer_than_two_folds(tmp_path):
    with pytest.raises(ConfigError) as info:
        _manifest_config(3, 2)(tmp_path)()
    assert "at most 1" not in str(info.value)
