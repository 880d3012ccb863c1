"""Is the holdout gates' stated power true? ``min_detectable`` against the copies a test really fails.

``validation/summary.csv`` states per gate the smallest defect it fails with 80%
power at the cell's sizes (``min_detectable``); for the holdout gates (memorization
ratio, share closer than holdout, NNDR ratio) the defect is a share of the
candidate's rows replaced by copies of training rows. The statement comes from a
simulation on real-vs-real halves of the training rows
(:func:`radaug.validate.summary._split_null_and_power`); a reader takes it at its
word ("with 20 cases, a quarter of copies would have been caught"), so it must not
be optimistic.

On resampled Br35H cells (the cells of ``bench_holdout_null.py`` and
``bench_validation_calibration.py --source br35h``: whole near-duplicate groups),
per class, size ``n`` and repetition this bench computes

* **stated, split null** (before): the holdout gates' ``min_detectable`` read
  against the real-vs-real split null (:func:`radaug.validate.summary._null_draws`),
  as it was until the exchange null took over the tests;
* **stated, exchange null** (now): as the library states it,
  :func:`radaug.validate.summary._split_null_and_power` (the exchange null of
  half A, half B and the holdout);
* **true power**: for each copy share ``s`` of the grid, the fresh real candidate
  rows with a share ``s`` (each row with probability ``s``, as the simulation's
  defect) replaced by random training rows that keep their parent's group (as the
  workflow labels a sample with its parent case), tested as a study tests it
  (tested value against its exchange null, :func:`radaug.validate.summary._exchange_draws`,
  fail at ``p_adjusted <= 0.05``), except that the min-P adjustment, here and in the
  stated power, runs across the three holdout gates only: a study adjusts across all
  its gates (about 15), so both its stated and its true power are lower than here,
  and this bench checks the statement's method, not a study's figures.

A stated size is honest when the true fail rate at that size, over the cells of
that class and ``n``, reaches about 80%.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_holdout_power
--study results/br35h_default --sizes 10,20,40 --repeats 30``; writes
``benchmarks/out/holdout_power_<sizes>_<repeats>.csv`` and prints the tables of
BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_holdout_null import cell_options, save_rows
from benchmarks.bench_validation_calibration import META, fresh_real_cells, real_pool

GATES = ["memorization_ratio", "share_closer_than_holdout", "nndr_ratio"]
SETTINGS = {"alpha": 0.05, "nearest_k": 5}
LEVEL = 0.05


def run(study: Path, sizes, repeats: int, draws: int = 200, power_repeats: int = 20) -> pd.DataFrame:
    """One row per class, n, repetition and gate: stated ``min_detectable`` (both nulls) and fails per copy share."""
    from radaug.validate.metrics import holdout_scores
    from radaug.validate.null import DEFECTS, NullDraws, critical_p
    from radaug.validate.registry import METRICS
    from radaug.validate.summary import _exchange_draws, _null_draws, _power, _row_groups, _split_null_and_power

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    directions = {g: METRICS[g].direction for g in GATES}
    shares = DEFECTS["copies"][1]
    rows = []
    plan = [(label, n, repeats) for n in sizes for label in sorted(pool["label"].unique())]
    for label, n, repeat, cells in fresh_real_cells(pool, features, plan):
        train_t, hold_t, fresh_t = cells["_train"], cells["_holdout"], cells["real"]
        train, hold, fresh = (t[features].to_numpy(float) for t in (train_t, hold_t, fresh_t))
        g_train, g_hold = _row_groups(train_t, "group"), _row_groups(hold_t, "group", own="holdout-row-")
        g_fresh = _row_groups(fresh_t, "group")
        split = _null_draws(train, hold, len(fresh), g_train, GATES, SETTINGS, seed=repeat, n_splits=draws)
        before = _power(train, hold, len(fresh), g_train, split, critical_p(split.min_p(), LEVEL),
                        SETTINGS, seed=repeat, repeats=power_repeats)
        _, after = _split_null_and_power(train, hold, len(fresh), g_train, GATES, SETTINGS, seed=repeat,
                                         null_splits=draws, level=LEVEL, power_repeats=power_repeats,
                                         holdout_groups=g_hold)
        fails = {}
        for share in shares:
            rng = np.random.default_rng([2124, n, repeat, int(share * 1000), sum(map(ord, label))])
            cand, g_cand = fresh.copy(), g_fresh.astype(object).copy()
            changed = np.flatnonzero(rng.random(len(cand)) < share)
            parents = rng.integers(len(train), size=len(changed))
            cand[changed], g_cand[changed] = train[parents], g_train[parents]
            tested = holdout_scores(cand, train, hold)
            null = NullDraws(_exchange_draws(train, cand, hold, g_train, g_cand, g_hold, GATES,
                                             seed=repeat, n_draws=draws), directions)
            adjusted = null.adjusted(tested)
            fails[share] = {g: adjusted[g] <= LEVEL for g in GATES}
        rows += [{"label": label, "n": n, "repeat": repeat, "metric": g, "n_train": len(train),
                  "n_candidate": len(fresh), "n_holdout": len(hold),
                  "groups_train": train_t["group"].nunique(), "stated_split": before[g],
                  "stated_exchange": after[g], **{f"fail_{s:g}": fails[s][g] for s in shares}}
                 for g in GATES]
    return pd.DataFrame(rows)


def stated_share(phrase: str) -> float:
    """The copy share a ``min_detectable`` phrase states (inf where the gate missed even the largest)."""
    from radaug.validate.null import UNDETECTABLE

    if not isinstance(phrase, str) or not phrase or phrase.startswith(UNDETECTABLE):
        return float("inf")
    return float(phrase.split(">= ")[1].split("%")[0]) / 100


def tables(results: pd.DataFrame) -> pd.DataFrame:
    """Per class, n and gate: true fail rate per copy share, and the stated shares' distribution (both nulls)."""
    fail_columns = [c for c in results.columns if c.startswith("fail_")]
    out = results.assign(split=results["stated_split"].map(stated_share),
                         exchange=results["stated_exchange"].map(stated_share))
    keys = ["label", "n", "metric"]
    table = out.groupby(keys, sort=False)[fail_columns].mean()
    table.columns = [f"true fail at {c[5:]}" for c in fail_columns]
    for null in ("split", "exchange"):
        table[f"stated median ({null})"] = out.groupby(keys, sort=False)[null].median()
        # the true fail rate at each cell's stated share: honest if about 0.8 or more
        at_stated = out.apply(lambda r, null=null: r.get(f"fail_{r[null]:g}", np.nan)
                              if np.isfinite(r[null]) else np.nan, axis=1)
        table[f"true fail at stated ({null})"] = at_stated.groupby([out[k] for k in keys], sort=False).mean()
    table.insert(0, "cells", out.groupby(keys, sort=False).size())
    return table.reset_index()


def main(argv=None) -> None:
    """``--sizes 10,20,40 --repeats 30 [--draws 200] [--study DIR]``."""
    study, sizes, repeats, draws = cell_options(sys.argv[1:] if argv is None else argv, [10, 20, 40], 30)
    results = run(study, sizes, repeats, draws)
    save_rows(results, "holdout_power", sizes, repeats)
    print(tables(results).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
