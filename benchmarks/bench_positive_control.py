"""The positive control at a study's small sizes: how often fresh real cases fail a whole cell (issue 21).

A study's positive control (:mod:`radaug.validate.controls`) judges half of a
fold's held-out real cases against all its training cases of the class, with the
other half as the holdout. In the default Br35H study the tumour class holds 64
training and 16-17 test cases per fold, so the control has 8 or 9 candidate rows:
fewer than the factor rules' ``min_rows`` of 10, which left the tumour class
without a verdict. The null rule's tests are permutation tests, so under it a
cell is judged from ``nearest_k + 1`` rows
(:func:`radaug.validate.summary.default_min_rows`), unless fewer than half of a
gate's null draws are defined (whole near-duplicate groups too large for the
side: ``insufficient``, with the reason in ``verdict_rule``). This benchmark
measures whether the level holds at those sizes on real data nobody on the
project made.

Cells are drawn as the positive control's are: from the real rows of a finished
study (``--study``: the default Br35H study, whose 80 tumour cases split 64 / 8 / 8
are exactly its folds' structure, or the 1,600-image pool of
``config/br35h_pool.yaml``, whose groups are larger: harsher), per class,
disjoint training (``--train``, 64), candidate (``m``) and holdout (``m``) rows,
whole near-duplicate groups at a time
(:func:`benchmarks.bench_validation_calibration.grouped_sets`; sizes come out
near the targets, the medians are reported), with every row of the other class
as ``train_other`` and the cases' 64 x 64 patches, so all 18 gates are judged as
in a study's cell (200 permutation draws, the detection AUC's 10 forests,
``validation.level`` 0.05, no power simulation). Each gate's row is saved after
each cell (``benchmarks/out/positive_control_rows_<study>_<train>_<sizes>[_<labels>]_from<start>.csv``).
Reported per class and ``m``: cells, the whole-cell false-fail rate (any gate
``fail``) with its exact (Clopper-Pearson) 95% interval and one-sided binomial
p-value against the level, the share of gates whose own p-value is at most the
level, the gate x cell rows left ``insufficient`` by too few defined draws, and
which gates failed.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_positive_control
[--study DIR] [--train 64] [--sizes 8] [--repeats 100] [--start 0] [--labels tumour] [--ungrouped]``, then
``--merge`` (with the same ``--study``, ``--train`` and ``--ungrouped``) to tabulate every saved part; writes
``benchmarks/bench_positive_control_<study>[_ungrouped].json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_label_image_null import patch_arrays, real_patches
from benchmarks.bench_validation_calibration import META, REAL_STUDY, grouped_sets, real_pool

OUT = Path(__file__).resolve().parent / "out"
LEVEL = 0.05


def cells(pool: pd.DataFrame, label: str, train_size: int, m: int, repeats: range):
    """``(repeat, train, candidate, holdout)`` of class ``label``: disjoint sets of whole groups."""
    rows = pool[pool["label"] == label].reset_index(drop=True)
    for repeat in repeats:
        rng = np.random.default_rng([2127, train_size, m, repeat, sum(map(ord, label))])
        train, candidate, holdout = grouped_sets(rows["group"], [train_size, m, m], rng)
        yield repeat, rows.iloc[train], rows.iloc[candidate], rows.iloc[holdout]


def run(study: Path, train_size: int, sizes: list[int], repeats: range, labels=None,
        ungrouped: bool = False) -> pd.DataFrame:
    """Every gate's row of every cell (class, m, repeat), saved after each cell (``labels``: these classes
    only; ``ungrouped``: every case its own group, where the cells' and the nulls' partitions coincide)."""
    from radaug.validate.summary import Patches, validate_arm

    pool = real_pool(study)
    if ungrouped:
        pool = pool.assign(group=pool["case_id"])
    features = [c for c in pool.columns if c not in META]
    patches = real_patches(study)

    # a part run for some classes only names them, so it cannot overwrite another part's rows
    partial = OUT / (f"positive_control_rows_{study.name}{'_ungrouped' if ungrouped else ''}_{train_size}_"
                     f"{'_'.join(map(str, sizes))}{''.join('_' + x for x in sorted(labels or []))}"
                     f"_from{repeats.start}.csv")
    OUT.mkdir(exist_ok=True)
    rows = []
    for m in sizes:
        for label in [x for x in sorted(pool["label"].unique()) if not labels or x in labels]:
            began = time.process_time()
            other = pool[pool["label"] != label]
            for repeat, train, candidate, holdout in cells(pool, label, train_size, m, repeats):
                table = validate_arm(train, holdout, candidate, feature_columns=features, seed=repeat,
                                     detection=True, power_repeats=0, level=LEVEL, rule="null",
                                     group_column="group", train_other=other,
                                     patches=Patches(*patch_arrays(patches, train["case_id"]),
                                                     *patch_arrays(patches, holdout["case_id"]),
                                                     *patch_arrays(patches, candidate["case_id"])))
                for r in table.itertuples():
                    rows.append({"label": label, "m": m, "repeat": repeat, "metric": r.metric,
                                 "n_train": len(train), "n_candidate": len(candidate), "n_holdout": len(holdout),
                                 "groups_candidate": candidate["group"].nunique(), "verdict": r.verdict,
                                 "p_value": r.p_value, "p_adjusted": r.p_adjusted, "n_null": r.n_null,
                                 "verdict_rule": r.verdict_rule})
                partial.write_text(pd.DataFrame(rows).to_csv(index=False))
            print(f"{label} m={m}: {time.process_time() - began:.0f} CPU s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per class and m: cells, whole-cell false fails with an exact interval and p against the level."""
    from scipy.stats import binomtest

    out = []
    for (label, m), part in rows.groupby(["label", "m"], sort=True):
        judged = part[part["verdict"] != "insufficient"]
        failing = judged.loc[judged["verdict"] == "fail", "metric"]
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
                    "insufficient_cells": int(part.loc[part["verdict"] == "insufficient", "repeat"].nunique()),
                    "failing_gates": ", ".join(f"{g} {c}" for g, c in failing.value_counts().items())})
    return pd.DataFrame(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=REAL_STUDY)
    parser.add_argument("--train", type=int, default=64, help="training rows per cell")
    parser.add_argument("--sizes", default="8", help="candidate (= holdout) rows per cell, comma-separated")
    parser.add_argument("--repeats", type=int, default=100, help="cells per class and size")
    parser.add_argument("--start", type=int, default=0, help="first repeat (seeds), to run parts in parallel")
    parser.add_argument("--labels", default="", help="classes to run, comma-separated (default: all)")
    parser.add_argument("--ungrouped", action="store_true",
                        help="every case its own group (diagnosis: the cells' and the nulls' partitions coincide)")
    parser.add_argument("--merge", action="store_true", help="tabulate the saved rows of this study, no new cells")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    name = args.study.name + ("_ungrouped" if args.ungrouped else "")
    if args.merge:
        saved = sorted(OUT.glob(f"positive_control_rows_{name}_{args.train}_*.csv"))
        rows = pd.concat([pd.read_csv(p) for p in saved]).drop_duplicates(["label", "m", "repeat", "metric"])
    else:
        rows = run(args.study, args.train, sizes, range(args.start, args.start + args.repeats),
                   [x for x in args.labels.split(",") if x], args.ungrouped)
    result = table(rows)
    (Path(__file__).resolve().parent / f"bench_positive_control_{name}.json").write_text(json.dumps(
        {"study": args.study.name, "train": args.train, "level": LEVEL, "rows": result.to_dict("records"),
         "seconds_of_this_call": time.perf_counter() - start}, indent=1, default=float))
    print(result.to_markdown(index=False, floatfmt=".3f"))
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
