"""Shared fixtures: small phantom cohorts written to temporary folders."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory):
    """A small 2D phantom cohort on disk and its manifest table."""
    from radaug.data.phantom import make_phantom_cohort

    out = tmp_path_factory.mktemp("phantom")
    table = make_phantom_cohort(out, n_patients={"benign": 8, "malignant": 5}, dim=2, size=48, seed=3)
    return out, table
