"""The cohort manifest: reading and validating a user's CSV before anything is written.

Columns (README, "Using your own data"): ``case_id, patient_id, image, label`` and optional
``mask, modality (CT|MR|other), domain, group``. Relative paths resolve against
the manifest's folder. :func:`validate_manifest` checks every row and reports
*all* problems at once, each naming the case and what to do, in one format::

    case '<case_id>': <what is wrong, naming the file>; <what to do>.

With ``data_root`` set (config key ``data.data_root``), every image and mask
path, symlinks resolved, must lie inside that folder; a path that escapes it is
reported without the file being opened.
"""

from __future__ import annotations

from pathlib import Path

import gzip
import struct

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .errors import ManifestError
from .images import GEOMETRY_TOLERANCE, UnsupportedDimensionError, geometry, geometry_mismatch, read_image
from .io import sha256_file

REQUIRED_COLUMNS = ("case_id", "patient_id", "image", "label")
OPTIONAL_COLUMNS = ("mask", "modality", "domain", "group")
MODALITIES = ("CT", "MR", "other")
DICOM_MODALITIES = {
    "CT": "CT",
    "MR": "MR",
    **dict.fromkeys(("MG", "CR", "DX", "RG", "IO", "PX", "XA", "RF", "US", "PT", "NM", "OT", "SC", "OCT", "OP",
                     "SM", "XC", "ES", "BMD", "TG", "DG"), "other"),
}
"""DICOM modality codes (DICOM PS3.3 C.7.3.1.1.1) and the intensity handling each gets.

Only CT stores calibrated units shared across scanners (Hounsfield units, kept as
they are); every other code is handled as ``other``: grey values z-scored within
the ROI, like MR. PET (``PT``) is z-scored too: radaug has no SUV handling.
The cohort table keeps only :data:`MODALITIES`.
"""
MASK_NONZERO = "nonzero"
"""``data.mask_label`` value: every non-zero mask voxel is ROI (masks mixing 1 and 255, say)."""
_MODALITY_HINTS = {"PET": "PT", "MRI": "MR", "MAMMOGRAPHY": "MG", "ULTRASOUND": "US", "XRAY": "DX", "X-RAY": "DX"}
# Columns of the validated cohort table every later stage reads.
COHORT_COLUMNS = ("case_id", "patient_id", "label", "modality", "domain", "group",
                  "image", "mask", "image_sha256", "mask_sha256", "dim")
_MAX_LISTED = 25


def read_manifest_table(path: str | Path) -> pd.DataFrame:
    """Read the manifest CSV as strings, checking encoding and columns only."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist: check 'data.manifest' in the config.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"manifest {path} is not UTF-8 (byte {exc.start}): save it as UTF-8 CSV."
        ) from None
    from io import StringIO

    try:
        table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise ManifestError(
            f"manifest {path} is not a valid CSV ({exc}): one header row, comma-separated, quote cells "
            "that contain commas."
        ) from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(
            f"manifest {path} lacks required column(s) {missing}; it needs {list(REQUIRED_COLUMNS)} "
            f"and may have {list(OPTIONAL_COLUMNS)}."
        )
    return _standard_columns(table)


def _standard_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Required and optional columns only, as stripped strings (missing optional ones empty)."""
    table = table.copy()
    for column in OPTIONAL_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table.loc[:, list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)].fillna("").astype(str)
    return table.apply(lambda col: col.str.strip())


def validate_manifest(
    table: pd.DataFrame,
    *,
    base_dir: str | Path,
    classes: list[str],
    allow_mixed_patient_labels: bool = False,
    mask_label: int | None = None,
    default_modality: str = "other",
    source: str = "manifest",
    relative_to: str | Path | None = None,
    data_root: str | Path | None = None,
) -> pd.DataFrame:
    """Check every case of a manifest and return the cohort table.

    Parameters
    ----------
    table
        As returned by :func:`read_manifest_table`.
    base_dir
        Folder against which relative image and mask paths resolve.
    classes
        Allowed labels.
    allow_mixed_patient_labels
        If false, a patient with cases in two classes is an error.
    mask_label
        ROI value in multi-label masks; ``None`` requires binary masks;
        ``"nonzero"`` (:data:`MASK_NONZERO`) takes every non-zero voxel as ROI.
    default_modality
        Modality for rows whose ``modality`` is empty.
    source
        Named in error messages (the manifest path).
    relative_to
        Paths inside this folder are stored relative to it (the study's working
        directory), so the cohort table does not depend on where the study runs.
    data_root
        If given, every image and mask path must resolve (symlinks followed)
        inside this folder (config key ``data.data_root``); others are refused
        unread.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COHORT_COLUMNS`, resolved paths, file hashes, sorted by case_id.

    Raises
    ------
    ManifestError
        Listing every problem found, each naming its case.
    """
    base_dir = Path(base_dir)
    root = Path(data_root).resolve() if data_root is not None else None
    problems: list[str] = []
    table = _standard_columns(table)

    empty_ids = table["case_id"] == ""
    if empty_ids.any():
        lines = [int(i) + 2 for i in np.flatnonzero(empty_ids)]  # CSV line numbers (header is line 1)
        problems.append(f"rows {lines} have an empty case_id: give every row an id.")
    dup = table.loc[table["case_id"].duplicated(keep=False) & ~empty_ids, "case_id"].unique()
    for case in dup:
        problems.append(f"case '{case}': case_id appears more than once; give each row its own case_id.")
    for case in table.loc[table["patient_id"] == "", "case_id"]:
        problems.append(f"case '{case}': empty patient_id; give the patient (or the case id again if unknown).")
    for case, label in table.loc[~table["label"].isin(classes), ["case_id", "label"]].itertuples(index=False):
        problems.append(f"case '{case}': label '{label}' is not one of the configured classes {classes}; "
                        "correct the label or data.classes.")
    for case, mod in table.loc[table["modality"] != "", ["case_id", "modality"]].itertuples(index=False):
        if canonical_modality(mod) is None:
            hint = _MODALITY_HINTS.get(mod.upper())
            hint = f" ('{mod}' is written '{hint}' in DICOM)" if hint else ""
            problems.append(
                f"case '{case}': modality '{mod}' is not one of {list(MODALITIES)} nor a DICOM modality code "
                f"({', '.join(sorted(DICOM_MODALITIES))}){hint}; use CT for Hounsfield units, MR, the DICOM code, "
                "'other' (grey values z-scored within the ROI), or leave the cell empty."
            )
    if not allow_mixed_patient_labels:
        labels_per_patient = table.groupby("patient_id")["label"].nunique()
        for patient in labels_per_patient[labels_per_patient > 1].index:
            problems.append(
                f"patient '{patient}' has cases in several classes; set data.allow_mixed_patient_labels: true "
                "if that is intended."
            )
    present = set(table["label"])
    if not problems and len(present & set(classes)) < len(classes):
        problems.append(f"manifest has no case of class(es) {sorted(set(classes) - present)}: every class needs cases; "
                        "add cases of that class or correct data.classes.")

    rows = []
    for rec in table.itertuples(index=False):
        row, row_problems = _check_case(rec, base_dir, mask_label, root)
        problems.extend(row_problems)
        if row is not None:
            row["modality"] = canonical_modality(rec.modality) or default_modality
            rows.append(row)

    if problems:
        listed = problems[:_MAX_LISTED]
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise ManifestError(
            f"manifest {source} has {len(problems)} problem(s); nothing was written:\n  - "
            + "\n  - ".join(listed) + more
        )
    cohort = pd.DataFrame(rows, columns=list(COHORT_COLUMNS)).sort_values("case_id", ignore_index=True)
    if relative_to is not None:
        root = Path(relative_to).resolve()
        for column in ("image", "mask"):
            cohort[column] = [_relative_if_inside(p, root) for p in cohort[column]]
    return cohort


def canonical_modality(value: str) -> str | None:
    """``CT``, ``MR`` or ``other`` for a manifest modality cell, or ``None`` if unknown (or empty).

    Accepts :data:`MODALITIES` as written and DICOM modality codes in any case
    (:data:`DICOM_MODALITIES`): ``MG`` → ``other``, ``ct`` → ``CT``.
    """
    if not isinstance(value, str):
        raise TypeError(f"modality must be a string, got {type(value).__name__}")
    value = value.strip()
    if value in MODALITIES:
        return value
    return DICOM_MODALITIES.get(value.upper())


def _relative_if_inside(path: str, root: Path) -> str:
    if not path:
        return path
    resolved = Path(path)
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else path


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (base_dir / path)


def _outside_root(case: str, kind: str, path: Path, root: Path | None) -> str | None:
    """A problem line if ``path`` (symlinks resolved) is not inside ``root``."""
    if root is None:
        return None
    resolved = path.resolve()
    if resolved.is_relative_to(root):
        return None
    return (f"case '{case}': {kind} path {path} resolves to {resolved}, outside data.data_root {root}; "
            "move the file inside data.data_root or correct the path.")


def _nifti_truncation(path: Path) -> str | None:
    """Why a NIfTI file is incomplete, or ``None``.

    ITK's NIfTI reader fills a truncated file's missing voxels with zeros without
    an error, so the byte count is checked here against the header: ``vox_offset``
    plus the product of ``dim`` times ``bitpix / 8`` (NIfTI-1 and NIfTI-2 layouts,
    https://nifti.nimh.nih.gov/nifti-1). A gzip stream that ends early or fails its
    CRC is reported too.
    """
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return None
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if name.endswith(".gz") and not gzipped:
        return None  # not gzip at all: SimpleITK's reader reports it as unreadable
    try:
        if gzipped:
            with gzip.open(path, "rb") as f:
                header = f.read(544)
                size = len(header)
                while block := f.read(1 << 20):
                    size += len(block)
        else:
            with open(path, "rb") as f:
                header = f.read(544)
            size = path.stat().st_size
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        return f"its gzip stream is damaged or cut short ({exc})"
    if len(header) < 348:
        return f"it has {len(header)} bytes, fewer than a NIfTI header"
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", header[:4])[0]
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if sizeof_hdr == 540 and len(header) >= 540:
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        return None  # not a header this check understands; SimpleITK's reader decides
    n_dims = max(0, min(int(dims[0]), 7))
    expected = offset + int(np.prod([max(int(d), 1) for d in dims[1:n_dims + 1]])) * max(int(bitpix), 8) // 8
    if size < expected:
        return f"it holds {size} bytes but its header announces {expected}"
    return None


def _read_checked(case: str, kind: str, path: Path, pixel_type) -> tuple[sitk.Image | None, str | None]:
    """Read an image or mask, or say why it cannot be used (naming case, file and fix)."""
    truncated = _nifti_truncation(path)
    if truncated:
        return None, (f"case '{case}': {kind} {path} is truncated or corrupt ({truncated}); "
                      "copy or export the file again.")
    try:
        return read_image(path, pixel_type=pixel_type), None
    except UnsupportedDimensionError as exc:
        return None, f"case '{case}': {kind} {exc}."
    except OSError as exc:
        return None, f"case '{case}': {kind} is unreadable ({exc}); replace the file with a readable image."


def _check_case(rec, base_dir: Path, mask_label: int | None, root: Path | None = None
                ) -> tuple[dict | None, list[str]]:
    case = rec.case_id
    problems = []
    image_path = _resolve(base_dir, rec.image)
    if not rec.image or not image_path.exists():
        return None, [f"case '{case}': image file {image_path} does not exist; correct the path in the "
                      "manifest (relative paths resolve against its folder)."]
    escape = _outside_root(case, "image", image_path, root)
    if escape:
        return None, [escape]
    image, unreadable = _read_checked(case, "image", image_path, sitk.sitkFloat32)
    if unreadable:
        return None, [unreadable]
    voxels = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(voxels).all():
        problems.append(f"case '{case}': image {image_path} contains NaN or infinite voxels; fix or drop the case.")

    mask_path, mask_sha = "", ""
    if rec.mask:
        mpath = _resolve(base_dir, rec.mask)
        if not mpath.exists():
            return None, problems + [f"case '{case}': mask file {mpath} does not exist; correct the path in "
                                     "the manifest or leave the mask cell empty to derive the ROI."]
        escape = _outside_root(case, "mask", mpath, root)
        if escape:
            return None, problems + [escape]
        mask, unreadable = _read_checked(case, "mask", mpath, sitk.sitkFloat64)
        if unreadable:
            return None, problems + [unreadable]
        diffs = geometry_mismatch(geometry(image), geometry(mask))
        if diffs:
            gi, gm = geometry(image), geometry(mask)
            detail = "; ".join(f"{d}: image {gi[d]} vs mask {gm[d]}" for d in diffs)
            problems.append(f"case '{case}': image and mask geometry differ ({detail}; tolerance "
                            f"{GEOMETRY_TOLERANCE:g} absolute + {GEOMETRY_TOLERANCE:g} relative per component); "
                            "resample the mask onto the image.")
        else:
            values = np.unique(sitk.GetArrayViewFromImage(mask))
            if mask_label == MASK_NONZERO:
                if not (values != 0).any():
                    problems.append(f"case '{case}': mask {mpath} is empty (every voxel is 0); give a non-empty "
                                    "ROI.")
            elif mask_label is None:
                if not set(values.tolist()) <= {0.0, 1.0}:
                    problems.append(
                        f"case '{case}': mask {mpath} is not binary (values {values[:6].tolist()}...); "
                        "set data.mask_label to the ROI value, or to 'nonzero' if every non-zero voxel is ROI "
                        "(masks mixing 0/1 and 0/255)."
                    )
                elif 1.0 not in values:
                    problems.append(f"case '{case}': mask {mpath} is empty (no voxel is 1); give a non-empty ROI.")
            elif float(mask_label) not in values:
                problems.append(f"case '{case}': mask {mpath} has no voxel with data.mask_label = {mask_label} "
                                f"(values {values[:6].tolist()}); check data.mask_label or the mask, or set "
                                "data.mask_label: nonzero if masks use different ROI values (e.g. 1 and 255).")
        mask_path, mask_sha = str(mpath.resolve()), sha256_file(mpath) if mpath.is_file() else ""
    row = {
        "case_id": case, "patient_id": rec.patient_id, "label": rec.label, "modality": rec.modality,
        "domain": rec.domain, "group": rec.group,
        "image": str(image_path.resolve()), "mask": mask_path,
        "image_sha256": sha256_file(image_path) if image_path.is_file() else "",
        "mask_sha256": mask_sha, "dim": image.GetDimension(),
    }
    return row, problems
