"""Shared integration fixtures: the smoke study, run once per test session.

Tests must treat ``smoke`` studies as read-only (copy one with
``shutil.copytree`` before changing it): other test modules read them too.
"""
import fcntl
import subprocess
import sys

import pytest
import yaml

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


FEW_NULL_DRAWS = {"null_splits": 39, "power_repeats": 4, "null_detection_splits": 3}
"""``validation`` settings of the integration studies that check the workflow rather than the null's
calibration: a fifth of the default permutation draws and power repeats (p-values still reach 0.025, below
the level, and every verdict still gets its ``min_detectable``). At the default settings the null rule's
draws were 75-77% of the Nyúl-Udupa and three-class studies' job CPU (194 of 257 CPU-s, 92 of 119; 31 of 100
in the selection study) and the suite ran 30 minutes; the calibration at the default settings is measured in
``benchmarks/`` and by the unit tests of :mod:`radaug.validate`. test_balanced_study runs the default draws
end to end (without control arms); the control arms at the default draws run end to end in ``make study``."""


def config_with(base, dest, overrides):
    """Write ``base`` (a config file) with the nested ``overrides`` merged in to ``dest``; return ``dest``.

    For tests that run a config of ``config/`` but need less of it than a user does
    (e.g. no control arms where the test checks something else): the user-facing file
    stays as documented.
    """
    def merge(node, changes):
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(node.get(key), dict):
                merge(node[key], value)
            else:
                node[key] = value
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    merge(config, overrides)
    dest.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def smoke(tmp_path_factory, worker_id):
    """config/smoke.yaml run once: the finished study folder (``<workdir>/results/smoke``).

    Once per session, not once per pytest-xdist worker: under xdist the study is
    made in the folder the workers share, under a file lock, and a worker that
    needs it while another makes it waits for it (a failed run is remembered, so
    the other worker fails at once with the same output instead of running it again).

    That the same config gives the same hashes in another folder is checked by
    test_faults' SIGKILL test (a second run up to training, interrupted and resumed)
    and by the SLURM test (about half the study), each against this run.
    """
    if worker_id == "master":  # no xdist
        workdir = tmp_path_factory.mktemp("run1")
        run_snakemake(workdir, REPO / "config/smoke.yaml")
        return workdir / "results/smoke"
    shared = tmp_path_factory.getbasetemp().parent  # this session's folder, above every worker's
    workdir, done, failed = shared / "smoke-run1", shared / "smoke-run1.done", shared / "smoke-run1.failed"
    with open(shared / "smoke-run1.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            pytest.fail(f"the smoke study failed in another worker:\n{failed.read_text(encoding='utf-8')}")
        if not done.exists():
            workdir.mkdir(exist_ok=True)
            try:
                run_snakemake(workdir, REPO / "config/smoke.yaml")
            except Exception as exc:
                failed.write_text(str(exc)[-8000:], encoding="utf-8")
                raise
            done.touch()
    return workdir / "results/smoke"
