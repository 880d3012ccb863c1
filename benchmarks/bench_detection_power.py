"""Is the detection AUC's stated power true? ``min_detectable`` against the shifts a study's test really fails.

Since 2026-12-03 ``validation/summary.csv`` states the detection AUC's power like
every other gate's: the smallest mean shift (0.1, 0.25, 0.5 or 1 SD in every
feature) it fails in 80% of simulated cells, simulated on real-vs-real halves of
the cell's training rows (:func:`radaug.validate.summary._split_null_and_power`).
A reader takes it at its word, so it must not be optimistic.

On resampled Br35H cells (the cells of ``bench_validation_calibration.py
--source br35h`` and ``bench_holdout_power.py``: whole near-duplicate groups), per
class, size ``n`` and repetition this bench computes

* **stated**: the detection AUC's ``min_detectable`` as a study states it,
  :func:`radaug.validate.summary.validate_arm` under the null rule (power at
  ``validation.power_repeats``, 20);
* **true power**: for each shift of the grid, the fresh real candidate rows
  shifted by that many training-row SDs in every feature and validated as a study
  validates them (the feature and holdout gates, min-P adjusted across them; no
  other classes or patches, so label disagreement and the image gates are left out
  of the adjustment here, and of the stated power alike; power not simulated); the
  detection gate fails at ``p_adjusted <= 0.05``.

A stated shift is honest when the true fail rate at that shift, over the cells of
that class and ``n``, reaches about 80%. The statement is the power of a test on
half the data, so it should be conservative.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_detection_power
--study results/br35h_default --sizes 20,40 --repeats 10``; writes
``benchmarks/out/detection_power_<sizes>_<repeats>.csv`` and prints the table of
BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_holdout_null import cell_options, save_rows
from benchmarks.bench_validation_calibration import META, MIN_ROWS, fresh_real_cells, real_pool

GATE = "detection_auc"
LEVEL = 0.05


def run(study: Path, sizes, repeats: int, draws: int = 200, power_repeats: int = 20) -> pd.DataFrame:
    """One row per class, n and repetition: the stated ``min_detectable`` and whether each shift failed."""
    from radaug.validate.null import DEFECTS
    from radaug.validate.summary import validate_arm

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    shifts = DEFECTS["mean_shift"][1]
    options = {"rule": "null", "level": LEVEL, "null_splits": draws, "detection": True, "group_column": "group",
               "min_rows": MIN_ROWS}
    rows = []
    plan = [(label, n, repeats) for n in sizes for label in sorted(pool["label"].unique())]
    for label, n, repeat, cells in fresh_real_cells(pool, features, plan):
        train, hold, fresh = cells["_train"], cells["_holdout"], cells["real"]
        stated = validate_arm(train, hold, fresh, feature_columns=features, seed=repeat,
                              power_repeats=power_repeats, **options).set_index("metric")
        sd = train[features].std(ddof=1).to_numpy()
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        fails = {}
        for shift in shifts:
            shifted = fresh.copy()
            shifted[features] = fresh[features].to_numpy(float) + shift * sd
            table = validate_arm(train, hold, shifted, feature_columns=features, seed=repeat,
                                 power_repeats=0, **options).set_index("metric")
            fails[shift] = table.loc[GATE, "verdict"]
        rows.append({"label": label, "n": n, "repeat": repeat, "n_train": len(train),
                     "n_candidate": len(fresh), "n_holdout": len(hold),
                     "groups_train": train["group"].nunique(),
                     "fresh_verdict": stated.loc[GATE, "verdict"],
                     "stated": stated.loc[GATE, "min_detectable"],
                     **{f"verdict_{s:g}": fails[s] for s in shifts}})
    return pd.DataFrame(rows)


def stated_shift(phrase: str) -> float:
    """The shift (SD) a ``min_detectable`` phrase states: inf where the gate missed even the largest, NaN where
    nothing is stated (a cell too small for a verdict)."""
    from radaug.validate.null import UNDETECTABLE

    if not isinstance(phrase, str) or not phrase:
        return float("nan")
    if phrase.startswith(UNDETECTABLE):
        return float("inf")
    return float(phrase.split(">= ")[1].split(" SD")[0])


def tables(results: pd.DataFrame) -> pd.DataFrame:
    """Per class and n, over the cells with a verdict (a cell whose sides are too small, e.g. a few large
    near-duplicate groups, is ``insufficient`` and states nothing): true fail rate per shift, the stated shifts,
    the true fail rate at each cell's stated shift."""
    verdicts = [c for c in results.columns if c.startswith("verdict_")]
    out = results[results["fresh_verdict"] != "insufficient"]
    out = out.assign(stated_sd=out["stated"].map(stated_shift),
                     **{f"fail_{c[8:]}": out[c] == "fail" for c in verdicts})
    keys = ["label", "n"]
    by = [out[k] for k in keys]
    table = out.groupby(by, sort=False)[[f"fail_{c[8:]}" for c in verdicts]].mean()
    table.columns = [f"true fail at {c[8:]} SD" for c in verdicts]
    table["stated: none up to 1 SD"] = np.isinf(out["stated_sd"]).groupby(by, sort=False).mean()
    table["stated (median SD)"] = out.groupby(by, sort=False)["stated_sd"].median()
    at_stated = out.apply(lambda r: r.get(f"fail_{r['stated_sd']:g}", np.nan)
                          if np.isfinite(r["stated_sd"]) else np.nan, axis=1)
    table["true fail at stated"] = at_stated.groupby(by, sort=False).mean()
    table["fresh real failed"] = (out["fresh_verdict"] == "fail").groupby(by, sort=False).mean()
    table.insert(0, "cells judged", out.groupby(by, sort=False).size())
    table.insert(0, "cells", results.groupby(keys, sort=False).size())
    return table.reset_index()


def main(argv=None) -> None:
    """``--sizes 20,40 --repeats 10 [--draws 200] [--study DIR]``."""
    study, sizes, repeats, draws = cell_options(sys.argv[1:] if argv is None else argv, [20, 40], 10)
    results = run(study, sizes, repeats, draws)
    save_rows(results, "detection_power", sizes, repeats)
    print(tables(results).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
