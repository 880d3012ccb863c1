"""Calibration and power of the correlation gates' permutation null (issue 21).

The three correlation gates (Pearson and Spearman correlation distance, strong
pairs kept) are permutation tests of the candidate against all training rows,
each set standardised on its own (:func:`radaug.validate.summary._permutation_draws`;
the Pearson distance's p-value, since 2026-12-03, on its pairs' correlation differences in
standard errors, :func:`radaug.validate.metrics.correlation_contrast`; ``bench_correlation_weighting.py``
compares the ways of scaling and weighing).
This script measures them on phantom lesion features (the pool of
``bench_validation_calibration.py``, 102 PyRadiomics features, three texture
modes), per simulated cell of ``n`` training and ``n`` candidate rows:

* ``real``: fresh real rows: P(p <= 0.05) and P(p <= 0.1) must be near 0.05 and 0.1;
* ``noise``: the noise control of :mod:`radaug.validate.controls`;
* ``decorrelated_<s>``: fresh real rows with each feature's value taken from
  another random row in a share ``s`` of rows
  (:func:`radaug.validate.null.defective`, ``decorrelation``; ``s = 1``: every
  column shuffled independently);
* ``no_rare_mode``: fresh real rows without the rare mode (30% of cases).

It reports per gate and candidate the share of cells with p <= 0.05 and <= 0.1
(per-gate p-values, before the min-P adjustment across a cell's gates), and
the CPU seconds of the three gates' draws per cell. ``--cost``: CPU seconds of
a default-size cell's validation with these two gates on the split null and on
the permutation null (:func:`cost`). ``--shape 64:8 --cells 300 [--source
DIR --label tumour]``: fresh real rows only, at unequal sizes (training :
candidate), 8 more left out as a holdout, from one class's rows (``--source``:
a finished study's real rows, every case its own group; default the phantom
pool, of which 80 rows a cell, the size of the default Br35H study's tumour
class), to see the gates at a study's positive-control
sizes (:func:`shape_run`). Run:
``OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.bench_correlation_null [--quick | --cost |
--shape T:C]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

GATES = ["correlation_distance", "correlation_distance_spearman", "strong_pairs_kept"]
SETTINGS = {"alpha": 0.05, "nearest_k": 5}
FULL = {("real", 40): 200, ("real", 20): 200, ("noise", 40): 40, ("noise", 100): 10,
        ("decorrelated_1", 40): 20, ("decorrelated_0.5", 40): 20, ("decorrelated_0.25", 40): 20,
        ("no_rare_mode", 40): 20}
QUICK = {("real", 40): 40, ("noise", 40): 10, ("decorrelated_0.5", 40): 5, ("no_rare_mode", 40): 5}


def _candidate(kind: str, cells: dict, features: list[str], rng) -> np.ndarray:
    from radaug.validate.null import defective

    if kind.startswith("decorrelated_"):
        fresh = cells["real"][features].to_numpy(float)
        train = cells["_train"][features].to_numpy(float)
        return defective("decorrelation", float(kind.split("_")[1]), train, fresh, len(fresh), rng)
    return cells[kind][features].to_numpy(float)


def p_values(train: np.ndarray, cand: np.ndarray, seed: int, draws: int) -> tuple[dict, float]:
    """Per-gate p-values of ``cand`` against the library's permutation null, and the draws' CPU seconds."""
    from radaug.validate.null import NullDraws
    from radaug.validate.summary import _permutation_draws, _tested_set, _tested_values

    ids_t, ids_c = (np.array([f"{p}{i}" for i in range(len(m))]) for p, m in (("t", train), ("c", cand)))
    tested_set = _tested_set(len(train), len(cand), seed)
    tested = _tested_values({}, GATES, train, cand, train[:0], tested_set, None, ids_t, ids_c, SETTINGS, seed)
    began = time.process_time()
    null = _permutation_draws(train, cand, train[:0], tested_set, ids_t, ids_c, NullDraws({}, {}), GATES,
                              SETTINGS, seed=seed, n_draws=draws, n_detection=0)
    seconds = time.process_time() - began
    return {g: null.p_value(g, tested[g]) for g in GATES}, seconds


def run(plan: dict, draws: int) -> pd.DataFrame:
    from benchmarks.bench_validation_calibration import _cells, phantom_pool

    pool = phantom_pool()
    features = [c for c in pool.columns if c not in {"sample_id", "case_id", "source", "arm", "repeat", "fold",
                                                     "label", "subtype"}]
    rows = []
    for (kind, n), count in plan.items():
        for repeat in range(count):
            cells = _cells(pool, features, n, 1000 + repeat)  # repeats 1000+: not the calibration bench's cells
            train = cells["_train"][features].to_numpy(float)
            cand = _candidate(kind, cells, features, np.random.default_rng([21, n, repeat]))
            p, seconds = p_values(train, cand, repeat, draws)
            rows += [{"candidate": kind, "n": n, "repeat": repeat, "gate": g, "p_value": v, "cpu_s": seconds}
                     for g, v in p.items()]
    return pd.DataFrame(rows)


def class_rows(source: str, label: str) -> np.ndarray:
    """Feature rows of the phantom pool (``source`` "phantom") or of one class of a finished study's real rows."""
    from benchmarks.bench_validation_calibration import META, phantom_pool, real_pool

    if source == "phantom":
        rows = phantom_pool()
    else:
        pool = real_pool(Path(source))
        rows = pool[pool["label"] == label]
    return rows[[c for c in rows.columns if c not in META]].to_numpy(float)


def shape_run(source: str, label: str, n_train: int, n_cand: int, cells: int, draws: int) -> dict[str, float]:
    """P(p <= 0.05) per gate over ``cells`` random partitions of one class's rows (80 of the phantom pool, or all a
    study's ``label`` rows) into ``n_train`` training and ``n_cand`` candidate rows (8 more left out, as a holdout)."""
    values = class_rows(source, label)
    p = []
    for repeat in range(cells):
        order = np.random.default_rng([77, repeat]).permutation(len(values))
        if source == "phantom":
            order = order[:80]
        p.append(p_values(values[order[:n_train]], values[order[n_train:n_train + n_cand]], repeat, draws)[0])
    p = pd.DataFrame(p)
    return {gate: float((p[gate] <= 0.05).mean()) for gate in GATES}


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Per candidate, n and gate: cells, P(p <= 0.05), P(p <= 0.1), NaN share, median CPU s of a cell's draws."""
    return (results.groupby(["candidate", "n", "gate"], sort=False)
            .agg(cells=("p_value", "size"), p_le_005=("p_value", lambda p: float(np.mean(p <= 0.05 + 1e-12))),
                 p_le_01=("p_value", lambda p: float(np.mean(p <= 0.1 + 1e-12))),
                 nan=("p_value", lambda p: float(np.mean(np.isnan(p)))), cpu_s=("cpu_s", "median"))
            .reset_index())


def cost(n_train: int = 64, n_holdout: int = 16, n_features: int = 100) -> dict[str, float]:
    """CPU seconds of one default-size cell's ``validate_arm`` (null rule, default draws and power), two ways.

    ``split``: Pearson correlation distance and strong pairs kept on the
    real-vs-real split null (as before this change; registry entries replaced in
    this process); ``permutation``: as registered now. Same data, same process,
    the split cache cleared before each.
    """
    import dataclasses

    from radaug.validate import registry
    from radaug.validate.summary import clear_caches, validate_arm

    rng = np.random.default_rng(2)
    columns = [f"f{i}" for i in range(n_features)]
    mixing = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features)
    draw = lambda n: pd.DataFrame(rng.normal(size=(n, n_features)) @ mixing, columns=columns)  # noqa: E731
    train, holdout, candidate, other = draw(n_train), draw(n_holdout), draw(n_train), draw(n_train)
    now = {name: registry.METRICS[name] for name in ("correlation_distance", "strong_pairs_kept")}
    before = {name: dataclasses.replace(spec, null="split", null_function=None) for name, spec in now.items()}
    seconds = {}
    try:
        for label, specs in (("split", before), ("permutation", now), ("split_again", before)):
            registry.METRICS.update(specs)
            clear_caches()
            began = time.process_time()
            validate_arm(train, holdout, candidate, feature_columns=columns, train_other=other, seed=0, rule="null")
            seconds[label] = time.process_time() - began
    finally:
        registry.METRICS.update(now)
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cells (rough rates, a few minutes)")
    parser.add_argument("--draws", type=int, default=199, help="permutation draws per cell")
    parser.add_argument("--only", default="", help="comma-separated candidate kinds to run (default: all)")
    parser.add_argument("--sizes", default="", help="comma-separated n to run (default: all of the plan)")
    parser.add_argument("--shape", default="",
                        help="TRAIN:CANDIDATE: fresh real rows of one class only (see the docstring)")
    parser.add_argument("--cells", type=int, default=300, help="cells of --shape")
    parser.add_argument("--source", default="phantom", help="--shape's rows: phantom, or a finished study's dir")
    parser.add_argument("--label", default="tumour", help="--shape's class of a study's rows")
    parser.add_argument("--cost", action="store_true", help="only the CPU seconds of one default-size cell, "
                        "split null against permutation for the two gates (see cost())")
    args = parser.parse_args(argv)
    if args.shape:
        n_train, n_cand = (int(x) for x in args.shape.split(":"))
        began = time.process_time()
        rates = shape_run(args.source, args.label, n_train, n_cand, args.cells, args.draws)
        label = "" if args.source == "phantom" else args.label
        print(Path(args.source).name, label, args.shape, args.cells, {g: round(v, 3) for g, v in rates.items()},
              f"{time.process_time() - began:.0f} CPU s")
        return
    if args.cost:
        print({label: round(seconds, 2) for label, seconds in cost().items()})
        return
    plan = QUICK if args.quick else FULL
    if args.only:
        plan = {key: count for key, count in plan.items() if key[0] in args.only.split(",")}
    if args.sizes:
        plan = {key: count for key, count in plan.items() if str(key[1]) in args.sizes.split(",")}
    began = time.time()
    results = run(plan, args.draws)
    print(table(results).to_markdown(index=False, floatfmt=".3f"))
    print(f"\n{time.time() - began:.0f} s, {args.draws} draws per cell")


if __name__ == "__main__":
    main()
