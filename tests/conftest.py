"""Shared fixtures: small phantom cohorts written to temporary folders.

One compute thread per test process (BLAS, OpenMP, torch): ``make test`` runs two
pytest workers on CI's two cores, so further threads only contend for them, and on a
loaded machine an idle-spinning OpenMP or BLAS thread costs far more than it saves
(two torch threads made test_ddpm's toy ~15x slower; an eigendecomposition took 370 ms
instead of 7 ms, radaug.validate.summary). The variables are set before numpy and torch
load (the libraries read them then) and reach the tests' subprocesses; Snakemake sets
them per job anyway (its ``threads``).
"""
import os
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory):
    """A small 2D phantom cohort on disk and its manifest table."""
    from radaug.data.phantom import make_phantom_cohort

    out = tmp_path_factory.mktemp("phantom")
    table = make_phantom_cohort(out, n_patients={"benign": 8, "malignant": 5}, dim=2, size=48, seed=3)
    return out, table
