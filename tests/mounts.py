"""Real small or read-only file systems for fault tests (tmpfs; needs root and mount permission).

Where mounting is not permitted (no root, a container without CAP_SYS_ADMIN) the
test is skipped with the reason, never faked.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m"):
    """Mount a tmpfs of ``size`` on ``path`` for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def remount_read_only(path: Path) -> None:
    """Make a tmpfs mounted by :func:`tmpfs` read-only (root ignores chmod, not a read-only mount)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
