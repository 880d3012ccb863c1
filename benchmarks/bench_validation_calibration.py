"""Calibration of the validation verdicts (issue 21): false-fail rates on fresh real data, fail rates on defects.

On the phantom cohort, where fresh real draws exist: PyRadiomics features
(2D CT settings, 102 features) of a pool of phantom lesions of one class with
three texture modes (fine 35%, coarse 35%, rare 30%) are extracted once (and
cached under ``benchmarks/out/``); every simulated cell draws disjoint
training (``n``), holdout (``max(10, n // 4)``) and candidate (``n``) rows
from the pool. Per ``n`` in 10, 20, 40, 100, 300 and per repetition, one cell
is judged with each of:

* ``real``: fresh real rows (a perfect generator): the per-gate false-fail
  rate (the gate's own p-value at most ``level``, and, for the factor rules,
  a ``fail`` verdict) and the whole-cell false-fail rate (any gate fails);
* ``noise`` and ``copy``: the negative controls of
  :mod:`radaug.validate.controls` (must fail the fidelity, resp. memorization gates);
* ``no_rare_mode``: rows without the rare mode (30% of cases missing);
* ``shift_0.5sd``: fresh real rows shifted by 0.5 training SD in every feature.

Both rules are read off the same rows (the factor rules from value and baseline),
so their rates compare like with like. The detection AUC (a forest per draw) and
the power simulation are left out to keep the run short; the null has the
default 200 draws. Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python -m
benchmarks.bench_validation_calibration [--quick]`` (or parts in parallel with
``--sizes 10,20,40 --repeats 6,6,6 [--start 0]``, then ``--merge``); writes ``benchmarks/bench_validation_calibration.json`` and prints
the BENCHMARKS.md tables (per n and candidate; per gate on fresh real rows, :func:`gate_rates`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SIZES = (10, 20, 40, 100, 300)
REPEATS = {10: 10, 20: 10, 40: 10, 100: 5, 300: 2}
QUICK_REPEATS = {10: 4, 20: 4, 40: 4, 100: 2, 300: 1}
POOL = 900
MODES, WEIGHTS = ["fine", "coarse", "rare"], [0.35, 0.35, 0.30]
LEVEL = 0.05
PARTIAL = Path(__file__).resolve().parent / "out" / "calibration_rows.csv"
CACHE = Path(__file__).resolve().parent / "out" / "phantom_pool.csv"
PARAMS = Path(__file__).resolve().parents[1] / "workflow/resources/radiomics_2d_ct.yaml"


def phantom_pool(n: int = POOL, seed: int = 2121) -> pd.DataFrame:
    """PyRadiomics features of ``n`` phantom lesions (class malignant) with their ``subtype``; cached."""
    if CACHE.exists():
        pool = pd.read_csv(CACHE)
        if len(pool) >= n:
            return pool
    from radaug.data.phantom import phantom_case
    from radaug.features import extract_patches, make_extractor

    rng = np.random.default_rng(seed)
    subtypes = rng.choice(MODES, size=n, p=WEIGHTS)
    images, masks = map(np.stack, zip(*(phantom_case(rng, "malignant", s, dim=2, size=48) for s in subtypes)))
    ids = [f"p{i}" for i in range(n)]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "real", "arm": "real",
                         "repeat": 0, "fold": 0, "label": "malignant"})
    table, failures = extract_patches(make_extractor(PARAMS), images, masks, (1.0, 1.0), meta)
    if len(failures):
        raise RuntimeError(f"{len(failures)} phantom extractions failed")
    table["subtype"] = subtypes
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(CACHE, index=False)
    return table


def _cells(pool: pd.DataFrame, features: list[str], n: int, repeat: int) -> dict:
    from radaug.validate.controls import copy_control, noise_control

    rng = np.random.default_rng([21, n, repeat])
    n_holdout = max(10, n // 4)
    order = rng.permutation(len(pool))
    train = pool.iloc[order[:n]]
    holdout = pool.iloc[order[n:n + n_holdout]]
    rest = pool.iloc[order[n + n_holdout:]]
    fresh = rest.iloc[:n]
    no_rare = rest[rest["subtype"] != "rare"].iloc[:n]
    shifted = fresh.copy()
    shifted[features] = fresh[features] + 0.5 * train[features].std(ddof=1).fillna(0).to_numpy()
    return {"real": fresh, "noise": noise_control(train, features, n, int(rng.integers(2**31))),
            "copy": train.iloc[copy_control(train, n, repeat)], "no_rare_mode": no_rare,
            "shift_0.5sd": shifted, "_train": train, "_holdout": holdout}


def run(quick: bool = False, sizes=SIZES, repeats=None, start: int = 0) -> pd.DataFrame:
    from radaug.validate.summary import validate_arm
    from radaug.validate.thresholds import merge_thresholds, verdict

    pool = phantom_pool()
    features = [c for c in pool.columns if c not in {"sample_id", "case_id", "source", "arm", "repeat", "fold",
                                                     "label", "subtype"}]
    rules = merge_thresholds(None)
    rows = []
    partial = PARTIAL.with_name(f"calibration_rows_{'_'.join(map(str, sizes))}_from{start}.csv")
    for n in sizes:
        for repeat in range(start, start + (repeats or (QUICK_REPEATS if quick else REPEATS))[n]):
            cells = _cells(pool, features, n, repeat)
            for kind, candidate in cells.items():
                if kind.startswith("_"):
                    continue
                began = time.perf_counter()
                table = validate_arm(cells["_train"], cells["_holdout"], candidate, feature_columns=features,
                                     seed=repeat, detection=False, power_repeats=0, level=LEVEL, rule="null")
                seconds = time.perf_counter() - began
                for r in table.itertuples():
                    factor = verdict(r.value, r.baseline, rules[r.metric]) if r.verdict != "insufficient" \
                        else "insufficient"
                    rows.append({"n": n, "repeat": repeat, "candidate": kind, "metric": r.metric,
                                 "verdict": r.verdict, "factor_verdict": factor, "p_value": r.p_value,
                                 "p_adjusted": r.p_adjusted, "seconds": seconds})
            print(f"n={n} repeat={repeat} done", file=sys.stderr, flush=True)
        partial.write_text(pd.DataFrame(rows).to_csv(index=False))  # what a run cut short still leaves
    return pd.DataFrame(rows)


def rates(results: pd.DataFrame) -> pd.DataFrame:
    """Per n and candidate: per-gate and whole-cell fail rates of both rules (judged gates with a p-value)."""
    from radaug.validate.controls import FIDELITY_GATES, MEMORIZATION_GATES

    design = {"noise": FIDELITY_GATES, "copy": MEMORIZATION_GATES, "no_rare_mode": ("coverage",),
              "shift_0.5sd": ("ks_fdr", "wasserstein_distance", "frechet_means_distance")}
    judged = results[results["p_value"].notna()]
    out = []
    for (n, kind), part in judged.groupby(["n", "candidate"], sort=False):
        gate_raw = (part["p_value"] <= LEVEL).mean()
        cell = part.groupby("repeat").agg(null=("verdict", lambda v: (v == "fail").any()),
                                          factor=("factor_verdict", lambda v: (v == "fail").any()))
        row = {"n": n, "candidate": kind, "cells": len(cell), "gates_judged": part["metric"].nunique(),
               "gate_p_below_level": gate_raw,
               "gate_fail_null": (part["verdict"] == "fail").mean(),
               "gate_fail_factor": (part["factor_verdict"] == "fail").mean(),
               "cell_fail_null": cell["null"].mean(), "cell_fail_factor": cell["factor"].mean()}
        if kind in design:
            gates = part[part["metric"].isin(design[kind])]
            row["design_gates_fail_null"] = (gates["verdict"] == "fail").mean() if len(gates) else np.nan
            row["design_gates_fail_factor"] = (gates["factor_verdict"] == "fail").mean() if len(gates) else np.nan
        out.append(row)
    return pd.DataFrame(out)


def gate_rates(results: pd.DataFrame) -> pd.DataFrame:
    """Per gate, over every n with a p-value: the false-fail rate on fresh real rows (``real``), by own p and by verdict."""
    judged = results[(results["candidate"] == "real") & results["p_value"].notna()]
    out = judged.groupby("metric", sort=False).agg(
        cells=("p_value", "size"), p_below_level=("p_value", lambda p: (p <= LEVEL).mean()),
        p_below_2level=("p_value", lambda p: (p <= 2 * LEVEL).mean()),
        fail_null=("verdict", lambda v: (v == "fail").mean()))
    return out.reset_index()


def main(argv=None) -> None:
    """``[--quick] [--sizes 10,20 --repeats 6,6] [--merge]``: run (some sizes), or tabulate the saved rows of runs."""
    argv = sys.argv[1:] if argv is None else argv
    start = time.perf_counter()
    if "--merge" in argv:
        results = pd.concat([pd.read_csv(p) for p in sorted(PARTIAL.parent.glob("calibration_rows_*.csv"))])
    elif "--sizes" in argv:
        sizes = [int(x) for x in argv[argv.index("--sizes") + 1].split(",")]
        counts = [int(x) for x in argv[argv.index("--repeats") + 1].split(",")]
        first = int(argv[argv.index("--start") + 1]) if "--start" in argv else 0
        results = run(sizes=sizes, repeats=dict(zip(sizes, counts)), start=first)
    else:
        results = run(quick="--quick" in argv)
    table, gates = rates(results), gate_rates(results)
    path = Path(__file__).resolve().parent / "bench_validation_calibration.json"
    path.write_text(json.dumps({"rows": table.to_dict("records"), "gates": gates.to_dict("records"),
                                "seconds": time.perf_counter() - start, "level": LEVEL, "quick": "--quick" in argv},
                               indent=1, default=float))
    pd.set_option("display.width", 250)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print()
    print(gates.to_markdown(index=False, floatfmt=".3f"))
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
