"""Shared fixtures: small phantom cohorts written to temporary folders."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Keep every integration test on one pytest-xdist worker (``--dist loadgroup``).

    They share the session-scoped smoke study, which each worker would otherwise
    run again, and each runs Snakemake on both cores itself.
    """
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.xdist_group("integration"))


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory):
    """A small 2D phantom cohort on disk and its manifest table."""
    from radaug.data.phantom import make_phantom_cohort

    out = tmp_path_factory.mktemp("phantom")
    table = make_phantom_cohort(out, n_patients={"benign": 8, "malignant": 5}, dim=2, size=48, seed=3)
    return out, table
