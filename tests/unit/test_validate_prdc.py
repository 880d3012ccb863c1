"""PRDC in bounded memory: same values as the reference `prdc` package, no full distance matrix."""

from __future__ import annotations

import contextlib
import io
import math
import tracemalloc

import numpy as np
import prdc as reference_prdc
import pytest

from radaug.validate import kth_neighbour_distances, prdc


def _reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints the set sizes
        return reference_prdc.compute_prdc(real, fake, k)


@pytest.mark.parametrize(
    ("n_real", "n_fake", "n_features", "k", "shift"),
    [(200, 150, 5, 5, 0.3), (100, 300, 20, 3, 0.0), (60, 60, 2, 5, 1.0), (250, 80, 10, 1, 0.5)],
)
def test_values_equal_the_prdc_package(n_real, n_fake, n_features, k, shift):
    rng = np.random.default_rng(n_real + n_fake + k)
    real = rng.normal(size=(n_real, n_features))
    fake = rng.normal(shift, 1.2, size=(n_fake, n_features))
    expected = _reference(real, fake, k)
    # A tiny working memory forces many chunks; the values must not change.
    for working_memory_mb in (1, 64):
        got = prdc(real, fake, k, working_memory_mb=working_memory_mb).as_dict()
        for name, value in expected.items():
            assert got[name] == pytest.approx(float(value), rel=1e-12, abs=1e-12), name


def test_kth_neighbour_distance_excludes_the_row_itself():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(kth_neighbour_distances(points, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(kth_neighbour_distances(points, 2), [3.0, 2.0, 3.0, 6.0])


def test_coverage_drops_when_a_mode_is_missing():
    rng = np.random.default_rng(3)
    modes = lambda n, share_second: np.vstack([  # noqa: E731
        rng.normal(0, 1, size=(n - int(n * share_second), 4)),
        rng.normal(8, 1, size=(int(n * share_second), 4)),
    ])
    real = modes(400, 0.3)
    full, collapsed = prdc(real, modes(400, 0.3)), prdc(real, modes(400, 0.0))
    assert full.coverage > 0.9
    assert collapsed.coverage == pytest.approx(0.7, abs=0.05)
    assert collapsed.precision > 0.9  # every sample it makes is realistic: only coverage sees it


def test_too_few_rows_give_nan_and_bad_input_raises():
    rng = np.random.default_rng(0)
    assert math.isnan(prdc(rng.normal(size=(5, 2)), rng.normal(size=(50, 2)), 5).coverage)
    with pytest.raises(ValueError, match="nearest_k"):
        prdc(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)), 0)
    with pytest.raises(ValueError, match="same number of columns"):
        prdc(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)))


def test_peak_memory_stays_far_below_a_full_distance_matrix():
    """4,000 × 4,000 rows: one full float64 distance matrix alone would take 128 MB."""
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(4000, 10)), rng.normal(size=(4000, 10))
    tracemalloc.start()
    try:
        prdc(real, fake, 5, working_memory_mb=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = 4000 * 4000 * 8
    assert peak < full_matrix / 4, f"peak {peak / 2**20:.1f} MiB"


def test_dataframes_are_aligned_by_column_name_and_different_columns_refused():
    import pandas as pd

    rng = np.random.default_rng(3)
    real = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    fake = pd.DataFrame(rng.normal(size=(30, 3)) + [3.0, 0.0, 0.0], columns=["a", "b", "c"])
    expected = prdc(real.to_numpy(), fake.to_numpy())
    assert prdc(real, fake[["c", "a", "b"]]) == expected  # same features, other order: same values
    with pytest.raises(ValueError, match=r"fake lacks \['c'\], has extra \['d'\]"):
        prdc(real, fake.rename(columns={"c": "d"}))
    with pytest.raises(ValueError, match="both as DataFrames"):
        prdc(real, fake.to_numpy())
    bad = fake.copy()
    bad.iloc[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"fake rows \[4\] hold NaN"):
        prdc(real, bad)


def test_kth_neighbour_distances_refuse_non_finite_rows():
    with pytest.raises(ValueError, match="NaN or infinite"):
        kth_neighbour_distances(np.array([[0.0], [np.nan], [1.0]]), 1)
