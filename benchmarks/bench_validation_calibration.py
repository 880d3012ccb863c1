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

On real, public data (``--source br35h``; issue 21 item 4, "resampled Br35H
features"): the real feature table of a finished study (``features/real.csv``
of ``--study``, default ``results/br35h_default``) with the near-duplicate
``group`` of every case (``splits/folds.csv``) is resampled per class: each cell
draws disjoint training (``n``), holdout (``max(10, n // 4)``) and candidate
(``n``) rows, whole groups at a time (:func:`grouped_sets`), and judges

* ``real``: the candidate rows (fresh real rows the "generator" never saw:
  the positive control), where the class has rows enough for all three sets;
* ``noise`` and ``copy``: the negative controls built from the training rows,
  where it has rows enough for training and holdout.

Where a class has too few rows for a size, the cell is left out and said so
(:func:`feasible`). Rates are per class (column ``label``).

Both rules are read off the same rows (the factor rules from value and baseline),
so their rates compare like with like. The power simulation is left out; the null
has the default 200 draws. The detection AUC (a forest per draw, 10 draws) is left
out unless ``--detection`` is given: then it is judged too and takes part in the
min-P adjustment, so the whole-cell rate is the one a study's cell has (rows saved as
``calibration_rows_detection_*.csv``, tables in ``..._detection.json``). ``--only real`` judges
the phantom's fresh real candidate alone (many cells for the whole-cell false-fail rate
at the cost of one candidate; ``..._real_only.json``). A ``--study`` other than the
default study names its tables, e.g. ``..._br35h_pool_detection.json``. Run: ``OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python -m
benchmarks.bench_validation_calibration [--quick]`` (or parts in parallel with
``--sizes 10,20,40 --repeats 6,6,6 [--start 0]``, then ``--merge``; real data: ``--source br35h [--study DIR]``
with the same options, rows saved after every cell); writes ``benchmarks/bench_validation_calibration.json``
(``..._br35h.json``) and prints
the BENCHMARKS.md tables (per n and candidate; per gate on fresh real rows, :func:`gate_rates`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import check_flags

SIZES = (10, 20, 40, 100, 300)
REPEATS = {10: 10, 20: 10, 40: 10, 100: 5, 300: 2}
QUICK_REPEATS = {10: 4, 20: 4, 40: 4, 100: 2, 300: 1}
POOL = 900
MODES, WEIGHTS = ["fine", "coarse", "rare"], [0.35, 0.35, 0.30]
LEVEL = 0.05
MIN_ROWS = 10
"""``min_rows`` of every cell: the tables in BENCHMARKS.md were made with 10, before the null rule's default
became ``nearest_k + 1`` (2026-12-03); the cells are n >= 10 a side, so it matters only where whole groups
leave a side below 10."""
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


REAL_STUDY = Path(__file__).resolve().parents[1] / "results" / "br35h_default"
REAL_REPEATS = {10: 10, 20: 10, 40: 12, 100: 10, 300: 2}
META = {"sample_id", "case_id", "source", "arm", "repeat", "fold", "label", "subtype", "group"}


def real_pool(study: Path = REAL_STUDY) -> pd.DataFrame:
    """The real feature rows of a finished study with each case's near-duplicate ``group`` (from its folds)."""
    table = pd.read_csv(study / "features" / "real.csv")
    folds = pd.read_csv(study / "splits" / "folds.csv", usecols=["case_id", "group"]).drop_duplicates("case_id")
    pool = table.merge(folds, on="case_id", how="left", validate="one_to_one")
    if pool["group"].isna().any():
        raise RuntimeError(f"{int(pool['group'].isna().sum())} real rows of {study} have no group in splits/folds.csv")
    return pool


def feasible(rows: int, n: int) -> tuple[bool, bool]:
    """Whether ``rows`` rows of a class hold (training + holdout + candidate, training + holdout) at size ``n``."""
    holdout = max(10, n // 4)
    return rows >= 2 * n + holdout, rows >= n + holdout


def grouped_sets(groups: pd.Series, targets: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint row positions of sets of about ``targets`` rows each, whole groups at a time.

    Groups are taken in a random order; each goes to the set furthest below its
    target (relative to it) that it does not overfill (that set's rows plus
    half the group at most its target), or to none. The rule treats the sets
    alike, so training and candidate rows are exchangeable (equal targets);
    sizes come out near, not exactly at, the targets where groups are large.
    """
    codes, _ = pd.factorize(groups)
    order = rng.permutation(codes.max() + 1)
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    sets: list[list[int]] = [[] for _ in targets]
    for g in order:
        size = len(members[g])
        room = [i for i, t in enumerate(targets) if len(sets[i]) + size / 2 <= t]
        if room:
            i = min(room, key=lambda i: (len(sets[i]) / targets[i], rng.random()))
            sets[i].extend(members[g])
    return [np.sort(np.asarray(s, dtype=int)) for s in sets]


def _real_cells(pool: pd.DataFrame, features: list[str], label: str, n: int, repeat: int) -> dict | None:
    """One resampled cell of class ``label``: training, holdout and, where rows allow, fresh real candidate rows."""
    from radaug.validate.controls import copy_control, noise_control

    rows = pool[pool["label"] == label].reset_index(drop=True)
    with_candidate, with_controls = feasible(len(rows), n)
    if not with_controls:
        return None
    rng = np.random.default_rng([2121, n, repeat, sum(map(ord, label))])
    targets = [n, max(10, n // 4)] + ([n] if with_candidate else [])
    sets = grouped_sets(rows["group"], targets, rng)
    train, holdout = rows.iloc[sets[0]], rows.iloc[sets[1]]
    cells = {"noise": noise_control(train, features, len(train), int(rng.integers(2**31))),
             "copy": train.iloc[copy_control(train, len(train), repeat)], "_train": train, "_holdout": holdout}
    if with_candidate:
        cells = {"real": rows.iloc[sets[2]], **cells}
    return cells


def _rows_file(real: bool, detection: bool, sizes, start: int) -> Path:
    """Where a run's rows are saved after every cell (what a run cut short still leaves)."""
    kind = ("real_" if real else "") + ("detection_" if detection else "")
    name = f"calibration_rows_{kind}{'_'.join(map(str, sizes))}_from{start}.csv"
    return PARTIAL.with_name(name)


def fresh_real_cells(pool: pd.DataFrame, features: list[str], plan):
    """``(label, n, repeat, cells)`` of :func:`_real_cells` for each ``(label, n, repeats)`` of ``plan``, repeats in
    order until a class has too few rows for a fresh real candidate; the CPU seconds of each label and n (the
    consumer's work included) go to stderr."""
    for label, n, repeats in plan:
        began = time.process_time()
        for repeat in range(repeats):
            cells = _real_cells(pool, features, label, n, repeat)
            if cells is None or "real" not in cells:
                break
            yield label, n, repeat, cells
        print(f"{label} n={n}: {time.process_time() - began:.0f} CPU s", file=sys.stderr, flush=True)


def run_real(study: Path = REAL_STUDY, sizes=SIZES, repeats=None, start: int = 0,
             detection: bool = False) -> pd.DataFrame:
    """Rows of :func:`run`'s shape, with ``label`` and the sets' sizes, on resampled real rows of ``study``."""
    from radaug.validate.summary import validate_arm
    from radaug.validate.thresholds import merge_thresholds, verdict

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    rules = merge_thresholds(None)
    rows = []
    partial = _rows_file(True, detection, sizes, start)
    partial.parent.mkdir(exist_ok=True)
    for n in sizes:
        for label in sorted(pool["label"].unique()):
            count = int((pool["label"] == label).sum())
            if not feasible(count, n)[1]:
                print(f"{label} n={n}: {count} rows, too few for training and holdout; no cell", file=sys.stderr)
                continue
            if not feasible(count, n)[0]:
                print(f"{label} n={n}: {count} rows, too few for a fresh real candidate; controls only",
                      file=sys.stderr)
            for repeat in range(start, start + (repeats or REAL_REPEATS)[n]):
                cells = _real_cells(pool, features, label, n, repeat)
                for kind, candidate in cells.items():
                    if kind.startswith("_"):
                        continue
                    began = time.process_time()
                    table = validate_arm(cells["_train"], cells["_holdout"], candidate, feature_columns=features,
                                         seed=repeat, detection=detection, power_repeats=0, level=LEVEL, min_rows=MIN_ROWS,
                                         rule="null", group_column="group")
                    seconds = time.process_time() - began
                    for r in table.itertuples():
                        factor = verdict(r.value, r.baseline, rules[r.metric]) if r.verdict != "insufficient" \
                            else "insufficient"
                        rows.append({"label": label, "n": n, "repeat": repeat, "candidate": kind, "metric": r.metric,
                                     "n_train": len(cells["_train"]), "n_holdout": len(cells["_holdout"]),
                                     "n_candidate": len(candidate), "verdict": r.verdict, "factor_verdict": factor,
                                     "p_value": r.p_value, "p_adjusted": r.p_adjusted, "seconds": seconds})
                print(f"{label} n={n} repeat={repeat} done", file=sys.stderr, flush=True)
                partial.write_text(pd.DataFrame(rows).to_csv(index=False))  # what a run cut short still leaves
    return pd.DataFrame(rows)


def run(quick: bool = False, sizes=SIZES, repeats=None, start: int = 0, detection: bool = False,
        only: str | None = None) -> pd.DataFrame:
    """Rows of every phantom cell and candidate (``only``: that candidate alone, e.g. ``real`` for the
    positive control's false-fail rates over many cells)."""
    from radaug.validate.summary import validate_arm
    from radaug.validate.thresholds import merge_thresholds, verdict

    pool = phantom_pool()
    features = [c for c in pool.columns if c not in {"sample_id", "case_id", "source", "arm", "repeat", "fold",
                                                     "label", "subtype"}]
    rules = merge_thresholds(None)
    rows = []
    partial = _rows_file(False, detection, sizes, start)
    if only:
        partial = partial.with_name(partial.name.replace("calibration_rows_", f"calibration_rows_{only}_only_"))
    partial.parent.mkdir(exist_ok=True)
    for n in sizes:
        for repeat in range(start, start + (repeats or (QUICK_REPEATS if quick else REPEATS))[n]):
            cells = _cells(pool, features, n, repeat)
            for kind, candidate in cells.items():
                if kind.startswith("_") or (only and kind != only):
                    continue
                began = time.perf_counter()
                table = validate_arm(cells["_train"], cells["_holdout"], candidate, feature_columns=features,
                                     seed=repeat, detection=detection, power_repeats=0, level=LEVEL, min_rows=MIN_ROWS, rule="null")
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
    keys = ["label", "n", "candidate"] if "label" in results.columns else ["n", "candidate"]
    out = []
    for key, part in judged.groupby(keys, sort=False):
        *label, n, kind = key
        gate_raw = (part["p_value"] <= LEVEL).mean()
        cell = part.groupby("repeat").agg(null=("verdict", lambda v: (v == "fail").any()),
                                          factor=("factor_verdict", lambda v: (v == "fail").any()))
        row = {**dict(zip(["label"], label)), "n": n, "candidate": kind, "cells": len(cell), "gates_judged": part["metric"].nunique(),
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


def per_gate(results: pd.DataFrame, kinds=("real", "noise", "copy")) -> pd.DataFrame:
    """Per class, n, candidate and gate: cells judged, share with the gate's own p <= level, fail rates of both rules.

    For ``noise`` and ``copy`` only the gates the control must fail
    (:data:`radaug.validate.controls.FIDELITY_GATES`, ``MEMORIZATION_GATES``).
    """
    from radaug.validate.controls import FIDELITY_GATES, MEMORIZATION_GATES

    design = {"noise": FIDELITY_GATES, "copy": MEMORIZATION_GATES}
    judged = results[results["p_value"].notna() & results["candidate"].isin(kinds)]
    judged = judged[[kind not in design or metric in design[kind]
                     for kind, metric in zip(judged["candidate"], judged["metric"])]]
    keys = [k for k in ("label", "n", "candidate") if k in judged.columns] + ["metric"]
    return judged.groupby(keys, sort=False).agg(
        cells=("p_value", "size"), p_le_level=("p_value", lambda p: (p <= LEVEL).mean()),
        fail_null=("verdict", lambda v: (v == "fail").mean()),
        fail_factor=("factor_verdict", lambda v: (v == "fail").mean())).reset_index()


def pivot(gates: pd.DataFrame, kind: str) -> pd.DataFrame:
    """:func:`per_gate` of one candidate as counts, a gate per row and a class and n per column.

    Each entry reads ``null / factor of cells``: the cells failing the gate by the
    null rule and by the factor rules, of the cells judged (few cells per column:
    counts say more than rates).
    """
    part = gates[gates["candidate"] == kind]
    text = [f"{round(r.fail_null * r.cells)} / {round(r.fail_factor * r.cells)} of {r.cells}"
            for r in part.itertuples()]
    part = part.assign(entry=text, column=[f"{label} {n}" for label, n in zip(part["label"], part["n"])])
    table = part.pivot(index="metric", columns="column", values="entry").fillna("")
    order = list(dict.fromkeys(part["column"]))
    return table[order].reindex(list(dict.fromkeys(part["metric"]))).reset_index()


def main(argv=None) -> None:
    """``[--source br35h [--study DIR]] [--detection] [--quick] [--sizes 10,20 --repeats 6,6 [--only real]]
    [--merge]``: run, or tabulate saved rows (``--only``: phantom cells of that candidate alone, tables in
    ``..._<candidate>_only.json``).

    ``--source br35h``: the resampled real rows of ``--study`` (:func:`run_real`; its rows are saved as
    ``calibration_rows_real_*.csv`` and merged apart from the phantom's, its tables written to
    ``bench_validation_calibration_br35h.json``, per gate by :func:`per_gate`).
    """
    argv = check_flags(sys.argv[1:] if argv is None else argv, ("--detection", "--merge", "--quick"),
                       ("--source", "--study", "--only", "--sizes", "--repeats", "--start"))
    start = time.perf_counter()
    real = "--source" in argv and argv[argv.index("--source") + 1] == "br35h"
    study = Path(argv[argv.index("--study") + 1]) if "--study" in argv else REAL_STUDY
    detection = "--detection" in argv
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    prefix = _rows_file(real, detection, [], 0).name.split("_from")[0]
    if only:
        prefix = prefix.replace("calibration_rows_", f"calibration_rows_{only}_only_")
    if "--merge" in argv:  # this kind's rows only: the other kinds' names are longer at the same place
        results = pd.concat([pd.read_csv(p) for p in sorted(PARTIAL.parent.glob(prefix + "*.csv"))
                             if p.name[len(prefix):len(prefix) + 1].isdigit()])
    elif "--sizes" in argv:
        sizes = [int(x) for x in argv[argv.index("--sizes") + 1].split(",")]
        counts = [int(x) for x in argv[argv.index("--repeats") + 1].split(",")]
        first = int(argv[argv.index("--start") + 1]) if "--start" in argv else 0
        results = (run_real(study, sizes=sizes, repeats=dict(zip(sizes, counts)), start=first, detection=detection)
                   if real else run(sizes=sizes, repeats=dict(zip(sizes, counts)), start=first, detection=detection,
                                    only=only))
    else:
        results = run_real(study, detection=detection) if real else run(quick="--quick" in argv, detection=detection)
    if real:
        results = results.sort_values(["n", "label", "repeat"], kind="stable")
    table, gates = rates(results), (per_gate(results) if real else gate_rates(results))
    pool = f"_{study.name.removeprefix('br35h_')}" if real and study.name != REAL_STUDY.name else ""  # e.g. _pool
    suffix = ("_br35h" if real else "") + pool + ("_detection" if detection else "")
    path = Path(__file__).resolve().parent / f"bench_validation_calibration{suffix}.json"
    if only:
        suffix += f"_{only}_only"
        path = path.with_name(f"bench_validation_calibration{suffix}.json")
    path.write_text(json.dumps({"rows": table.to_dict("records"), "gates": gates.to_dict("records"),
                                "seconds": time.perf_counter() - start, "level": LEVEL, "quick": "--quick" in argv},
                               indent=1, default=float))
    pd.set_option("display.width", 250)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print()
    print(gates.to_markdown(index=False, floatfmt=".3f"))
    if real:
        for kind in ("real", "noise", "copy"):
            print(f"\n{kind}: cells failing each gate, null rule / factor rules, of the cells judged\n")
            print(pivot(gates, kind).to_markdown(index=False))
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
