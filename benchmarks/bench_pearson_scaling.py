"""The Pearson correlation distance's permutation null on resampled Br35H cells: per-set mean/SD vs median/IQR scaling.

The permutation null of the Pearson correlation distance re-partitions the training
and candidate rows after standardising each set on its own
(:func:`radaug.validate.summary._standardised_pools`: mean and sample SD). On Br35H's
heavy-tailed features fresh real rows got its own p <= 0.05 in 6 of 20 cells
(BENCHMARKS.md, validation calibration). Per class and size this bench draws the cells
of ``bench_validation_calibration.py --source br35h`` (:func:`_real_cells`) and computes
the gate's own p-value (200 draws) of the ``real`` candidate and the ``noise`` control
with each scaling: ``meansd`` (the library's) and ``robust`` (:func:`robust_pools`:
centred on the median, divided by the interquartile range; a candidate, not in the
library: on the unit tests' two-mode 4-feature population it made the test conservative,
2 of 200 cells at p <= 0.05, BENCHMARKS.md).

Since 2026-12-03 the library's Pearson null weighs each feature pair
(:func:`radaug.validate.metrics.correlation_contrast`), with weights from the
pool this script replaces in the draws but from the mean/SD pool in the tested
value, so its ``robust`` column is no longer a consistent variant: its table
(BENCHMARKS.md) is reproduced at commit f75588f; ``bench_correlation_weighting.py``
compares both scalings, weighted and not, consistently.

Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.bench_pearson_scaling
--study /work/wtstudy2/results/br35h_default --cells no_tumour:20,tumour:20,no_tumour:40,no_tumour:100
--repeats 100``; prints the share of cells with p <= 0.05 and <= 0.1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import check_flags
from benchmarks.bench_validation_calibration import META, REAL_STUDY, _real_cells, real_pool

GATE = "correlation_distance"
SETTINGS = {"alpha": 0.05, "nearest_k": 5}


def robust_pools(train: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`radaug.validate.summary._standardised_pools` with each set centred on its median and divided by its IQR.

    An affine map per set (the SD where the IQR is 0), so each set's correlations and
    the tested value are unchanged; only the mixed permuted sides differ.
    """
    from scipy.stats import rankdata

    from radaug.validate.metrics import is_constant

    keep = (np.isfinite(train).all(axis=0) & np.isfinite(cand).all(axis=0)
            & ~is_constant(train) & ~is_constant(cand))
    sets = [m[:, keep] for m in (train, cand)]

    def scale(m: np.ndarray) -> np.ndarray:
        q1, q3 = np.percentile(m, [25, 75], axis=0)
        return np.where(q3 > q1, q3 - q1, m.std(axis=0, ddof=1))

    z_pool = np.concatenate([(m - np.median(m, axis=0)) / scale(m) for m in sets])
    rank_pool = np.concatenate([rankdata(m, axis=0) / (len(m) + 1) for m in sets])
    return z_pool, rank_pool


def run(study: Path, plan, repeats: int, draws: int = 200) -> pd.DataFrame:
    import radaug.validate.summary as summary

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    library = summary._standardised_pools
    rows = []
    for label, n in plan:
        began = time.process_time()
        for repeat in range(repeats):
            cells = _real_cells(pool, features, label, n, repeat)
            train = cells["_train"][features].to_numpy(float)
            holdout = cells["_holdout"][features].to_numpy(float)
            g_train = summary._row_groups(cells["_train"], "group")
            for kind in ("real", "noise"):
                if kind not in cells:
                    continue
                cand = cells[kind][features].to_numpy(float)
                g_cand = (summary._row_groups(cells[kind], "group") if "group" in cells[kind].columns
                          else np.array([f"candidate-row-{i}" for i in range(len(cand))]))
                tested_set = summary._tested_set(len(train), len(cand), repeat)
                tested = summary._tested_values({}, [GATE], train, cand, holdout, tested_set, None, g_train, g_cand,
                                                SETTINGS, repeat)[GATE]
                for name, pools in (("meansd", library), ("robust", robust_pools)):
                    summary._standardised_pools = pools
                    try:
                        null = summary._permutation_draws(train, cand, holdout, tested_set, g_train, g_cand,
                                                          summary.NullDraws({}, {}), [GATE], SETTINGS, seed=repeat,
                                                          n_draws=draws, n_detection=0)
                    finally:
                        summary._standardised_pools = library
                    rows.append({"label": label, "n": n, "repeat": repeat, "candidate": kind, "scaling": name,
                                 "p": null.p_value(GATE, tested)})
        print(f"{label} n={n}: {time.process_time() - began:.0f} CPU s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    """``--cells no_tumour:20,tumour:20 --repeats 100 [--study DIR]``."""
    argv = check_flags(sys.argv[1:] if argv is None else argv, options=("--cells", "--repeats", "--study"))
    study = Path(argv[argv.index("--study") + 1]) if "--study" in argv else REAL_STUDY
    text = argv[argv.index("--cells") + 1] if "--cells" in argv else "no_tumour:20,tumour:20,no_tumour:40"
    plan = [(label, int(n)) for label, n in (item.split(":") for item in text.split(","))]
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 100
    results = run(study, plan, repeats)
    table = results.groupby(["label", "n", "candidate", "scaling"], sort=False)["p"].agg(
        cells="size", p_le_005=lambda p: (p <= 0.05).mean(), p_le_01=lambda p: (p <= 0.1).mean()).reset_index()
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
