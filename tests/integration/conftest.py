"""Shared integration fixtures: the smoke study, run once per test session.

Tests must treat ``smoke`` studies as read-only (copy one with
``shutil.copytree`` before changing it): other test modules read them too.
"""
import subprocess
import sys

import pytest

from ..conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2"]


def run_snakemake(workdir, configfile, *extra, check=True):
    """Run the workflow in ``workdir`` with ``configfile``; return its combined output.

    With ``check`` a non-zero exit fails the test and shows the end of the output.
    """
    cmd = SNAKEMAKE + ["--directory", str(workdir), "--configfile", str(configfile), *extra]
    # UTF-8 whatever the locale: job logs quote reports and file names (Δ, ×, non-ASCII paths)
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """config/smoke.yaml run once: the finished study folder (``<workdir>/results/smoke``).

    That the same config gives the same hashes in another folder is checked by
    test_faults' SIGKILL test (a second, interrupted and resumed run) and by the
    SLURM test, each against this run.
    """
    workdir = tmp_path_factory.mktemp("run1")
    run_snakemake(workdir, REPO / "config/smoke.yaml")
    return workdir / "results/smoke"
