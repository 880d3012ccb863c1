"""The holdout gates' null on resampled Br35H cells: real-vs-real split null (before) vs exchange null (after).

The holdout gates (memorization ratio, share closer than holdout, NNDR ratio) are
the only gates judged at n = 10 per class and most of a cell's verdict at n = 20
(BENCHMARKS.md, validation calibration). This bench scores them alone, so that many
more cells fit than in ``bench_validation_calibration.py`` (which runs the whole
``validate_arm``): per class, size ``n`` and repetition it draws the same
training, holdout and candidate rows as that bench (:func:`_real_cells`, whole
near-duplicate groups) and computes, for the ``real`` candidate (fresh real rows:
the positive control) and the ``copy`` and ``noise`` controls, each gate's tested
value (:func:`radaug.validate.metrics.holdout_scores`) and its p-value against

* ``split``: the real-vs-real split null the holdout gates had before
  (:func:`radaug.validate.summary._null_draws`: half B of the training rows against
  half A, with the holdout; still the power simulation's null), and
* ``exchange``: the null they have now (:func:`radaug.validate.summary._exchange_draws`:
  training, candidate and holdout rows re-partitioned into three sets of the tested
  sizes, whole groups at a time, a copy always with its parent),

both with ``--draws`` draws (200, the config default), and the min-P adjusted p-value
across the three gates (what a cell of only these gates is judged by).

Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.bench_holdout_null
--study /work/wtstudy2/results/br35h_default --sizes 10 --repeats 100`` (and ``--sizes 20
--repeats 40``); writes ``benchmarks/out/holdout_null_<sizes>_<repeats>.csv`` and prints
the per-gate and whole-cell tables of BENCHMARKS.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import check_flags
from benchmarks.bench_validation_calibration import META, REAL_STUDY, _real_cells, feasible, real_pool

GATES = ["memorization_ratio", "share_closer_than_holdout", "nndr_ratio"]
SETTINGS = {"alpha": 0.05, "nearest_k": 5}
LEVEL = 0.05


def run(study: Path, sizes, repeats: int, draws: int = 200) -> pd.DataFrame:
    """One row per class, n, repetition, candidate, null and gate: tested value, p-value, adjusted p-value."""
    from radaug.validate.metrics import holdout_scores
    from radaug.validate.null import NullDraws
    from radaug.validate.registry import METRICS
    from radaug.validate.summary import _exchange_draws, _null_draws, _row_groups

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    directions = {g: METRICS[g].direction for g in GATES}
    rows = []
    for n in sizes:
        for label in sorted(pool["label"].unique()):
            if not feasible(int((pool["label"] == label).sum()), n)[1]:
                continue
            began = time.process_time()
            for repeat in range(repeats):
                cells = _real_cells(pool, features, label, n, repeat)
                train_t, hold_t = cells["_train"], cells["_holdout"]
                train, hold = (t[features].to_numpy(float) for t in (train_t, hold_t))
                g_train, g_hold = _row_groups(train_t, "group"), _row_groups(hold_t, "group", own="holdout-row-")
                for kind in ("real", "copy", "noise"):
                    if kind not in cells:
                        continue
                    cand = cells[kind][features].to_numpy(float)
                    g_cand = (_row_groups(cells[kind], "group") if "group" in cells[kind].columns
                              else np.array([f"candidate-row-{i}" for i in range(len(cand))]))
                    tested = holdout_scores(cand, train, hold)
                    nulls = {
                        "split": _null_draws(train, hold, len(cand), g_train, GATES, SETTINGS, seed=repeat,
                                             n_splits=draws),
                        "exchange": NullDraws(_exchange_draws(train, cand, hold, g_train, g_cand, g_hold, GATES,
                                                              seed=repeat, n_draws=draws), directions),
                    }
                    for name, null in nulls.items():
                        p = {g: null.p_value(g, tested[g]) for g in GATES}
                        adjusted = null.adjusted(tested)
                        rows += [{"label": label, "n": n, "repeat": repeat, "candidate": kind, "null": name,
                                  "metric": g, "n_train": len(train), "n_holdout": len(hold),
                                  "n_candidate": len(cand), "groups_train": train_t["group"].nunique(),
                                  "groups_holdout": hold_t["group"].nunique(), "tested": tested[g], "p": p[g],
                                  "p_adjusted": adjusted[g]} for g in GATES]
            print(f"{label} n={n}: {repeats} cells, {time.process_time() - began:.0f} CPU s", file=sys.stderr,
                  flush=True)
    return pd.DataFrame(rows)


def tables(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per gate: share of cells with own p <= level; per cell: share failing (min adjusted p <= level)."""
    judged = results[results["p"].notna()]
    keys = ["label", "n", "candidate", "null"]
    gates = judged.groupby([*keys, "metric"], sort=False).agg(
        cells=("p", "size"), p_le_level=("p", lambda p: (p <= LEVEL).mean()),
        p_le_2level=("p", lambda p: (p <= 2 * LEVEL).mean()),
        fail=("p_adjusted", lambda p: (p <= LEVEL).mean())).reset_index()
    cells = (judged.groupby([*keys, "repeat"], sort=False)["p_adjusted"].min().le(LEVEL)
             .groupby(keys, sort=False).agg(cells="size", failing="sum", rate="mean").reset_index())
    return gates, cells


def cell_options(argv, sizes, repeats) -> tuple[Path, list[int], int, int]:
    """``--study DIR --sizes 10,20 --repeats N --draws N`` of the resampled-cell benches, else the defaults given."""
    check_flags(argv, options=("--study", "--sizes", "--repeats", "--draws"))
    study = Path(argv[argv.index("--study") + 1]) if "--study" in argv else REAL_STUDY
    sizes = [int(x) for x in argv[argv.index("--sizes") + 1].split(",")] if "--sizes" in argv else sizes
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else repeats
    draws = int(argv[argv.index("--draws") + 1]) if "--draws" in argv else 200
    return study, sizes, repeats, draws


def save_rows(results: pd.DataFrame, name: str, sizes, repeats: int) -> None:
    """Write a bench's rows to ``benchmarks/out/<name>_<sizes>_<repeats>.csv``."""
    out = Path(__file__).resolve().parent / "out" / f"{name}_{'_'.join(map(str, sizes))}_{repeats}.csv"
    out.parent.mkdir(exist_ok=True)
    results.to_csv(out, index=False)


def main(argv=None) -> None:
    """``--sizes 10,20 --repeats 100 [--draws 200] [--study DIR]``."""
    study, sizes, repeats, draws = cell_options(sys.argv[1:] if argv is None else argv, [10, 20], 40)
    results = run(study, sizes, repeats, draws)
    save_rows(results, "holdout_null", sizes, repeats)
    gates, cells = tables(results)
    print(gates.to_markdown(index=False, floatfmt=".3f"))
    print()
    print(cells.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
