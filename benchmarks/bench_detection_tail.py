"""The detection AUC's p-value from few null draws: which tail is calibrated, and which has power?

A study scores the detection AUC (a cross-validated random forest,
:func:`radaug.validate.detection.detection_auc`) on only
``validation.null_detection_splits`` (10) permutation draws per cell, so its
p-value needs a parametric tail (``1 / 11`` cannot resolve the levels the min-P
adjustment needs). On resampled Br35H cells (the cells of
``bench_validation_calibration.py --source br35h``: disjoint training and fresh
real candidate rows of one class, whole near-duplicate groups at a time) this
bench computes, per cell,

* the tested AUC of the fresh real rows against the training rows and
  ``--draws`` (30) permutation draws of the pooled rows, whole groups at a time
  (the study's permutation null: groups prefixed by side, folds grouped by the
  unprefixed groups, as :func:`radaug.validate.summary._permutation_draws` draws
  them; a draw leaving one side a single group is skipped, where the study's
  forest would fall back to ungrouped folds). Under the null these ``1 + draws``
  values are exchangeable, so each is judged against 10 of the others: the share
  of p-values at or below 0.05, 0.01 and 0.005 is each tail's false-fail rate.
  The values of one cell are dependent (the effective sample is nearer the
  number of cells than of values), so the tables also give the count of values
  at or below 0.005 and of cells holding one;
* the fresh rows shifted by 0.25, 0.5 and 1 training SD in every feature,
  judged against 10 permutation draws of their own pool: each tail's power.

Tails: ``normal`` (the draws' mean and SD on the AUC's scale: the rule until
2026-12-03), ``t`` (Student's t prediction tail on that scale), ``logit_t`` (the
same on the logit scale: :func:`radaug.validate.null.predictive_p_value`, the
rule since), ``logit_normal``. With ``--variants`` the statistic is also
computed with each fold's forest probabilities corrected for its training
part's class prior (``corrected``), as the mean of per-fold AUCs (``perfold``)
and averaged over three cross-validation seeds (``pooled3``, ``corrected3``):
are the draws' spread and the power a matter of the statistic's own noise?

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_detection_tail --study
results/br35h_default --cells no_tumour:40,tumour:20,no_tumour:64,no_tumour:100 --repeats 10
[--variants]``; writes ``benchmarks/out/detection_tail_<cells>_<repeats>.csv`` (one row per
cell, shift and variant with its draws) and prints the BENCHMARKS.md tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import check_flags
from benchmarks.bench_validation_calibration import META, REAL_STUDY, fresh_real_cells, real_pool

SHIFTS = (0.0, 0.25, 0.5, 1.0)
JUDGED_AGAINST = 10
LEVELS = (0.05, 0.01, 0.005)


def _fit(ref, cand, g_ref, g_cand, seed):
    """Out-of-fold forest probabilities as :func:`~radaug.validate.detection.detection_auc` computes them,
    with each row's fold and the class-1 share of its fold's training part."""
    from sklearn.model_selection import StratifiedGroupKFold

    from radaug.validate.detection import DETECTION_TREES
    from radaug.validate.forest import out_of_fold_proba

    x = np.vstack([ref, cand])
    y = np.r_[np.zeros(len(ref), int), np.ones(len(cand), int)]
    splits = min(5, len(set(g_ref)), len(set(g_cand)))
    folds = list(StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed).split(
        x, y, np.r_[g_ref, g_cand]))
    scores = out_of_fold_proba(x, y, iter(folds), n_trees=DETECTION_TREES, seed=seed)
    fold, prior = np.zeros(len(y), int), np.zeros(len(y))
    for i, (train, test) in enumerate(folds):
        fold[test], prior[test] = i, y[train].mean()
    return y, scores, fold, prior


def statistics(ref, cand, g_ref, g_cand, seed, variants: bool) -> dict[str, float]:
    """The detection AUC (``pooled``: the study's) and, with ``variants``, the alternatives of the module text."""
    from sklearn.metrics import roc_auc_score

    from radaug.validate.detection import DETECTION_TREES, detection_auc

    out = {"pooled": detection_auc(ref, cand, groups_reference=g_ref, groups_candidate=g_cand, seed=seed)}
    if not variants:
        return out
    pooled, corrected, per_fold = [], [], []
    for r in range(3):
        y, s, fold, prior = _fit(ref, cand, g_ref, g_cand, seed + 1000 * r)
        pooled.append(roc_auc_score(y, s))
        eps = 0.5 / DETECTION_TREES
        s, prior = np.clip(s, eps, 1 - eps), np.clip(prior, eps, 1 - eps)
        corrected.append(roc_auc_score(y, np.log(s / (1 - s)) - np.log(prior / (1 - prior))))
        both = [f for f in np.unique(fold) if len(set(y[fold == f])) == 2]
        per_fold.append(np.mean([roc_auc_score(y[fold == f], s[fold == f]) for f in both]) if both else np.nan)
    if abs(pooled[0] - out["pooled"]) > 1e-12:
        raise RuntimeError("the bench's forest differs from detection_auc's")
    out.update(corrected=corrected[0], perfold=per_fold[0], pooled3=np.mean(pooled), corrected3=np.mean(corrected))
    return out


def run(study: Path, cells, repeats: int, draws: int = 30, variants: bool = False) -> pd.DataFrame:
    """One row per cell, shift and statistic: the tested value and its permutation draws (JSON)."""
    from radaug.validate.summary import _group_codes, _permuted_sides

    pool = real_pool(study)
    features = [c for c in pool.columns if c not in META]
    rows = []
    for label, n, repeat, sets in fresh_real_cells(pool, features, [(label, n, repeats) for label, n in cells]):
        train, fresh = sets["_train"], sets["real"]
        ref = train[features].to_numpy(float)
        fresh_rows = fresh[features].to_numpy(float)[:len(ref)]  # drawn to at most the training size
        g_ref = train["group"].astype(str).to_numpy()
        g_cand = fresh["group"].astype(str).to_numpy()[:len(ref)]
        sd = ref.std(axis=0, ddof=1)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        for shift in SHIFTS:
            cand = fresh_rows + shift * sd
            tested = statistics(ref, cand, g_ref, g_cand, repeat, variants)
            pooled, cv_groups = np.vstack([ref, cand]), np.r_[g_ref, g_cand]
            codes = _group_codes(np.r_[np.char.add("r:", g_ref), np.char.add("c:", g_cand)])
            values = []
            for draw in range(draws if shift == 0 else JUDGED_AGAINST):
                a, b = _permuted_sides(codes, len(ref), np.random.default_rng([77, repeat, draw]))
                if len(set(cv_groups[a])) >= 2 and len(set(cv_groups[b])) >= 2:
                    values.append(statistics(pooled[a], pooled[b], cv_groups[a], cv_groups[b], repeat, variants))
            for name, value in tested.items():
                rows.append({"label": label, "n": n, "repeat": repeat, "shift": shift, "statistic": name,
                             "n_train": len(ref), "groups": len(set(g_ref)) + len(set(g_cand)),
                             "tested": value, "draws": json.dumps([v[name] for v in values])})
    return pd.DataFrame(rows)


def _tails():
    from scipy import stats

    from radaug.validate.null import LOGIT_FLOOR, predictive_p_value

    def normal(x, draws, scale=lambda v: v):
        x, draws = scale(x), scale(draws)
        return float(stats.norm.sf((x - draws.mean()) / draws.std(ddof=1)))

    def t(x, draws):
        m = len(draws)
        return float(stats.t.sf((x - draws.mean()) / (draws.std(ddof=1) * np.sqrt(1 + 1 / m)), m - 1))

    def logit(v):
        v = np.clip(v, LOGIT_FLOOR, 1 - LOGIT_FLOOR)
        return np.log(v / (1 - v))

    return {"normal": normal, "t": t, "logit_t": lambda x, d: predictive_p_value(x, d, "minimize"),
            "logit_normal": lambda x, d: normal(x, d, logit)}


def tables(results: pd.DataFrame) -> pd.DataFrame:
    """Per statistic, class, n and tail: the null draws' median SD, false-fail rates, power per shift."""
    results = results.assign(draws=results["draws"].map(lambda s: np.array([v for v in json.loads(s) if v == v])))
    out = []
    for (statistic, label, n), part in results.groupby(["statistic", "label", "n"], sort=False):
        null = part[part["shift"] == 0]
        for tail, p in _tails().items():
            ps = np.array([p(values[i], np.delete(values, i)[:JUDGED_AGAINST])
                           for r in null.itertuples() for values in [np.r_[r.tested, r.draws]]
                           for i in range(len(values))])
            per_cell = np.array([len(r.draws) + 1 for r in null.itertuples()])
            cell_of = np.repeat(np.arange(len(null)), per_cell)
            row = {"statistic": statistic, "label": label, "n": n, "tail": tail, "cells": len(null),
                   "null SD (median)": np.median([np.std(r.draws, ddof=1) for r in null.itertuples()]),
                   **{f"false fail at {level:g}": np.mean(ps <= level) for level in LEVELS},
                   "values at 0.005": int(np.sum(ps <= 0.005)),
                   "cells with one": len(set(cell_of[ps <= 0.005]))}
            for shift in SHIFTS[1:]:
                shifted = part[part["shift"] == shift]
                power = np.array([p(r.tested, r.draws[:JUDGED_AGAINST]) for r in shifted.itertuples()])
                row[f"{shift:g} SD: p <= 0.005"] = np.mean(power <= 0.005)
            out.append(row)
    table = pd.DataFrame(out)
    overall = []
    for (statistic, tail), part in table.groupby(["statistic", "tail"], sort=False):
        weights = part["cells"] / part["cells"].sum()
        overall.append({"statistic": statistic, "label": "all", "n": "-", "tail": tail, "cells": part["cells"].sum(),
                        **{c: float((part[c] * weights).sum()) for c in part.columns
                           if c.startswith("false fail") or "SD:" in c},
                        "values at 0.005": int(part["values at 0.005"].sum()),
                        "cells with one": int(part["cells with one"].sum())})
    return pd.concat([table, pd.DataFrame(overall)], ignore_index=True)


def main(argv=None) -> None:
    """``--cells no_tumour:40,tumour:20 --repeats 10 [--draws 30] [--variants] [--study DIR]`` or ``--table CSV``."""
    argv = check_flags(sys.argv[1:] if argv is None else argv, ("--variants",),
                       ("--cells", "--repeats", "--draws", "--study", "--table"))
    if "--table" in argv:
        results = pd.read_csv(argv[argv.index("--table") + 1])
    else:
        study = Path(argv[argv.index("--study") + 1]) if "--study" in argv else REAL_STUDY
        cells = [(label, int(n)) for label, n in (c.split(":") for c in argv[argv.index("--cells") + 1].split(","))]
        repeats = int(argv[argv.index("--repeats") + 1])
        draws = int(argv[argv.index("--draws") + 1]) if "--draws" in argv else 30
        results = run(study, cells, repeats, draws, variants="--variants" in argv)
        out = Path(__file__).resolve().parent / "out"
        out.mkdir(exist_ok=True)
        name = "_".join(f"{label}{n}" for label, n in cells)
        results.to_csv(out / f"detection_tail_{name}_{repeats}.csv", index=False)
    pd.set_option("display.width", 250)
    print(tables(results).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
