"""The positive control at a study's small sizes: how often fresh real cases fail a whole cell (issue 21).

A study's positive control (:mod:`radaug.validate.controls`) judges half of a
fold's held-out real cases against all its training cases of the class, with the
other half as the holdout. In the default Br35H study the tumour class holds 64
training and 16-17 test cases per fold, so the control has 8 or 9 candidate rows:
fewer than the factor rules' ``min_rows`` of 10, which left the tumour class
without a verdict. The null rule's tests are permutation tests (exact at any size;
the detection AUC's t tail is measured at 20 and more rows in
``bench_detection_tail``), so under it a cell is judged from ``nearest_k + 1`` rows
(:func:`radaug.validate.summary.default_min_rows`). This benchmark measures
whether the promise holds at those sizes on real data nobody on the project made.

Cells are drawn as the positive control's are: from the real feature rows of a
finished study (default: the 1,600-image Br35H pool of ``config/br35h_pool.yaml``,
``results/br35h_pool``), per class, disjoint training (``--train``, 64), candidate
(``m``) and holdout (``m``) rows, whole near-duplicate groups at a time
(:func:`benchmarks.bench_validation_calibration.grouped_sets`); each cell is judged
with the study's defaults (200 permutation draws, the detection AUC's 10 forests,
``validation.level`` 0.05, no power simulation) and the rows of every gate are
saved after each cell (``benchmarks/out/positive_control_rows_*.csv``). Reported
per class and ``m``: cells, the whole-cell false-fail rate (any gate ``fail``) with
its exact (Clopper-Pearson) 95% interval and one-sided binomial p-value against the
level, the share of gates whose own p-value is at most the level, and which gates
failed.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_positive_control
[--study DIR] [--train 64] [--sizes 6,8] [--repeats 40] [--merge]``; writes
``benchmarks/bench_positive_control.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_validation_calibration import META, grouped_sets, real_pool

ROOT = Path(__file__).resolve().parents[1]
POOL_STUDY = ROOT / "results" / "br35h_pool"
OUT = Path(__file__).resolve().parent / "out"
LEVEL = 0.05


def cells(pool: pd.DataFrame, label: str, train_size: int, m: int, repeats: int):
    """``(repeat, train, candidate, holdout)`` of class ``label``: disjoint sets of whole groups."""
    rows = pool[pool["label"] == label].reset_index(drop=True)
    for repeat in range(repeats):
        rng = np.random.default_rng([2127, train_size, m, repeat, sum(map(ord, label))])
        train, candidate, holdout = grouped_sets(rows["group"], [train_size, m, m], rng)
        yield repeat, rows.iloc[train], rows.iloc[candidate], rows.iloc[holdout]


def run(study: Path, train_size: int, sizes: list[int], repeats: int) -> pd.DataFrame:
    """Every gate's row of every cell (class, m, repeat), saved after each cell."""
    from radaug.validate.summary import validate_arm

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    partial = OUT / f"positive_control_rows_{study.name}_{train_size}_{'_'.join(map(str, sizes))}.csv"
    OUT.mkdir(exist_ok=True)
    rows = []
    for m in sizes:
        for label in sorted(pool["label"].unique()):
            began = time.process_time()
            for repeat, train, candidate, holdout in cells(pool, label, train_size, m, repeats):
                table = validate_arm(train, holdout, candidate, feature_columns=features, seed=repeat,
                                     detection=True, power_repeats=0, level=LEVEL, rule="null",
                                     group_column="group")
                for r in table.itertuples():
                    rows.append({"label": label, "m": m, "repeat": repeat, "metric": r.metric,
                                 "n_train": len(train), "n_candidate": len(candidate), "n_holdout": len(holdout),
                                 "verdict": r.verdict, "p_value": r.p_value, "p_adjusted": r.p_adjusted})
                partial.write_text(pd.DataFrame(rows).to_csv(index=False))
            print(f"{label} m={m}: {time.process_time() - began:.0f} CPU s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per class and m: cells, whole-cell false fails with an exact interval and p against the level."""
    from scipy.stats import binomtest

    out = []
    for (label, m), part in rows.groupby(["label", "m"], sort=True):
        judged = part[part["verdict"] != "insufficient"]
        per_cell = judged.groupby("repeat")["verdict"].agg(lambda v: (v == "fail").any())
        fails, n = int(per_cell.sum()), len(per_cell)
        test = binomtest(fails, n, LEVEL, alternative="greater")
        low, high = binomtest(fails, n).proportion_ci(0.95, method="exact")  # two-sided Clopper-Pearson
        out.append({"label": label, "m": m, "cells": n, "gates_judged": judged["metric"].nunique(),
                    "median_rows": f"{int(part['n_train'].median())}/{int(part['n_candidate'].median())}/"
                                   f"{int(part['n_holdout'].median())}",
                    "cell_fails": fails, "cell_fail_rate": fails / n, "ci_low": low, "ci_high": high,
                    "p_vs_level": test.pvalue, "gate_p_le_level": float((judged["p_value"] <= LEVEL).mean()),
                    "insufficient_rows": int((part["verdict"] == "insufficient").sum()),
                    "failing_gates": ", ".join(f"{g} {c}" for g, c in
                                               judged.loc[judged["verdict"] == "fail", "metric"].value_counts().items())})
    return pd.DataFrame(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=POOL_STUDY)
    parser.add_argument("--train", type=int, default=64, help="training rows per cell")
    parser.add_argument("--sizes", default="6,8", help="candidate (= holdout) rows per cell, comma-separated")
    parser.add_argument("--repeats", type=int, default=40, help="cells per class and size")
    parser.add_argument("--merge", action="store_true", help="tabulate the saved rows of this study, no new cells")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.merge:
        rows = pd.concat([pd.read_csv(p) for p in sorted(OUT.glob(f"positive_control_rows_{args.study.name}_*.csv"))])
    else:
        rows = run(args.study, args.train, sizes, args.repeats)
    result = table(rows)
    (Path(__file__).resolve().parent / "bench_positive_control.json").write_text(json.dumps(
        {"study": args.study.name, "train": args.train, "level": LEVEL, "rows": result.to_dict("records"),
         "seconds": time.perf_counter() - start}, indent=1, default=float))
    print(result.to_markdown(index=False, floatfmt=".3f"))
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
