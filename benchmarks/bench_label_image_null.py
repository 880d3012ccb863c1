"""The nulls of label disagreement and the image gates on real, public data (issue 21): level and power on Br35H.

Resampled cells of a finished study's real Br35H rows (``features/real.csv``
with each case's near-duplicate ``group``, and the 64 x 64 patches of
``cases/batch_*.npz``), whole groups at a time
(:func:`benchmarks.bench_validation_calibration.grouped_sets`): per class and
``n`` in 10, 20, 40, 100, disjoint training (``n``), holdout (``max(10, n //
4)``) and candidate (``n``) rows, and ``n`` training rows of the other class.
Each gate's own p-value (200 draws, as the default study) is read for

* ``real``: the fresh candidate rows (a perfect generator): the false-fail rate
  (P(p <= 0.05));
* ``other_class`` (label disagreement): ``n`` rows of the *other* class
  presented as this class (the label control);
* ``copy`` (image memorization ratio): copies of training patches (the copy
  control);
* ``one_empty`` and ``fifth_empty`` (implausible share): fresh patches with one
  mask, or a fifth of them, emptied: the permutation p-value, and whether the
  outright rule (a physically impossible patch, none among the real ones) fails it.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_label_image_null [--study DIR] [--cells 40]
[--sizes 10,20,40,100]``; writes ``benchmarks/bench_label_image_null.json`` (another study than the default:
``..._<study>.json``, e.g. ``_br35h_pool`` for ``config/br35h_pool.yaml``'s 1,600 images, where n = 300 fits;
sizes other than the default: ``..._n<sizes>.json``, e.g. ``_br35h_pool_n40_100_300.json``) with the rates per n, class and candidate, and prints the BENCHMARKS.md table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_validation_calibration import REAL_STUDY, grouped_sets, real_pool

SIZES = (10, 20, 40, 100)
DRAWS = 200
LEVEL = 0.05
OUT = Path(__file__).resolve().parent / "bench_label_image_null.json"
SETTINGS = {"alpha": 0.05, "nearest_k": 5}


def real_patches(study: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Case id -> (image, mask) of every real case of the study's preprocessed batches."""
    patches = {}
    for path in sorted((study / "cases").glob("batch_*.npz")):
        with np.load(path, allow_pickle=False) as batch:
            for case, image, mask in zip(batch["case_id"], batch["image"], batch["mask"]):
                patches[str(case)] = (image, mask)
    return patches


def patch_arrays(patches: dict[str, tuple[np.ndarray, np.ndarray]], case_ids) -> tuple[np.ndarray, np.ndarray]:
    """The (images as float, masks) of ``case_ids``, stacked in their order, from :func:`real_patches`."""
    return (np.stack([patches[c][0] for c in case_ids]).astype(float), np.stack([patches[c][1] for c in case_ids]))


def cell_p_values(train, other, cand, holdout, images, g_train, g_cand, g_hold, seed) -> dict[str, float]:
    """Each gate's own p-value of one cell (label disagreement, image memorization ratio, implausible share)."""
    from radaug.validate.images import patch_pool, pooled_implausible_share, pooled_memorization_ratio
    from radaug.validate.null import NullDraws, p_value
    from radaug.validate.summary import _exchange_draws, _permutation_draws, _tested_set, _tested_values

    pool = patch_pool(np.concatenate([i for i, _ in images]), np.concatenate([m for _, m in images]), None)
    nt, nc, nh = len(train), len(cand), len(holdout)
    tested_set = _tested_set(nt, nc, seed)
    gates = ["label_disagreement", "implausible_share"]
    tested = _tested_values({}, ["label_disagreement"], train, cand, holdout, tested_set, None, g_train, g_cand,
                            SETTINGS, seed, other=other)
    tested["implausible_share"] = pooled_implausible_share(pool, tested_set[0], nt + tested_set[1])
    tested["image_memorization_ratio"] = pooled_memorization_ratio(pool, np.arange(nt), nt + np.arange(nc),
                                                                   nt + nc + np.arange(nh))
    perm = _permutation_draws(train, cand, holdout, tested_set, g_train, g_cand, NullDraws({}, {}), gates, SETTINGS,
                              seed=seed, n_draws=DRAWS, n_detection=0, other=other, images=pool)
    exchange = _exchange_draws(train, cand, holdout, g_train, g_cand, g_hold, ["image_memorization_ratio"], SETTINGS,
                               seed=seed, n_draws=DRAWS, images=pool)
    directions = {"label_disagreement": "minimize", "implausible_share": "minimize",
                  "image_memorization_ratio": "maximize"}
    draws = {**perm.values, **exchange}
    return {gate: p_value(tested[gate], draws[gate], directions[gate]) for gate in directions}


def run_cells(study: Path, cells: int, sizes=SIZES) -> list[dict]:
    pool = real_pool(study)
    patches = real_patches(study)
    features = [c for c in pool.columns if c not in {"sample_id", "case_id", "source", "arm", "repeat", "fold",
                                                     "label", "subtype", "group"}]
    labels = sorted(pool["label"].unique())
    rows = []
    for n in sizes:
        for label in labels:
            own = pool[pool["label"] == label].reset_index(drop=True)
            rest = pool[pool["label"] != label].reset_index(drop=True)
            holdout_n = max(10, n // 4)
            if len(own) < 2 * n + holdout_n or len(rest) < 2 * n:
                print(f"{label} n={n}: too few rows, left out")
                continue
            for cell in range(cells):
                rng = np.random.default_rng([4242, n, cell, sum(map(ord, str(label)))])
                t, h, c = grouped_sets(own["group"], [n, holdout_n, n], rng)
                o, swapped = grouped_sets(rest["group"], [n, n], rng)
                sets = {"train": own.iloc[t], "holdout": own.iloc[h], "cand": own.iloc[c], "other": rest.iloc[o]}
                m = {k: v[features].to_numpy(dtype=float) for k, v in sets.items()}
                groups = {k: v["group"].astype(str).to_numpy() for k, v in sets.items()}
                img = {k: patch_arrays(patches, v["case_id"]) for k, v in sets.items()}
                def judge(cand, cand_images, cand_groups, kind):
                    began = time.perf_counter()
                    p = cell_p_values(m["train"], m["other"], cand, m["holdout"],
                                      [img["train"], cand_images, img["holdout"]], groups["train"], cand_groups,
                                      groups["holdout"], seed=cell)
                    empty = int((cand_images[1].reshape(len(cand), -1).max(axis=1) == 0).sum())
                    rows.append({"n": n, "label": label, "cell": cell, "candidate": kind, **p,
                                 "impossible": empty, "seconds": time.perf_counter() - began})

                judge(m["cand"], img["cand"], groups["cand"], "real")
                other_rows = rest.iloc[swapped]
                judge(other_rows[features].to_numpy(dtype=float),
                      patch_arrays(patches, other_rows["case_id"]),
                      np.char.add("o:", other_rows["group"].astype(str).to_numpy()), "other_class")
                take = rng.integers(len(t), size=len(t))
                judge(m["train"][take], (img["train"][0][take], img["train"][1][take]), groups["train"][take], "copy")
                for kind, k in (("one_empty", 1), ("fifth_empty", max(1, len(c) // 5))):
                    masks = img["cand"][1].copy()
                    masks[:k] = 0
                    judge(m["cand"], (img["cand"][0], masks), groups["cand"], kind)
            print(f"{label} n={n}: {cells} cells", flush=True)
    return rows


def table(rows: pd.DataFrame) -> str:
    """The BENCHMARKS.md table: per n and class, P(p <= level) of each gate on each candidate it is read for."""
    reads = [("real", "label_disagreement"), ("real", "image_memorization_ratio"), ("real", "implausible_share"),
             ("other_class", "label_disagreement"), ("copy", "image_memorization_ratio"),
             ("one_empty", "implausible_share"), ("fifth_empty", "implausible_share")]
    lines = ["| n | class | cells | " + " | ".join(f"{c}: {g}" for c, g in reads) + " |",
             "|---|---|---|" + "---|" * len(reads)]
    for (n, label), part in rows.groupby(["n", "label"]):
        cells = part["cell"].nunique()
        rates = [f"{(part.loc[part['candidate'] == c, g] <= LEVEL).mean():.2f}" for c, g in reads]
        lines.append(f"| {n} | {label} | {cells} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def rates(rows: pd.DataFrame) -> list[dict]:
    """Per n, class and candidate: cells and each gate's P(p <= level) (what the JSON keeps; rows are many)."""
    gates = ["label_disagreement", "image_memorization_ratio", "implausible_share"]
    out = []
    for (n, label, candidate), part in rows.groupby(["n", "label", "candidate"]):
        out.append({"n": int(n), "label": label, "candidate": candidate, "cells": int(part["cell"].nunique()),
                    **{gate: round(float((part[gate] <= LEVEL).mean()), 4) for gate in gates},
                    "median_seconds": round(float(part["seconds"].median()), 3)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=REAL_STUDY)
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="n per class, comma-separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    rows = pd.DataFrame(run_cells(args.study, args.cells, sizes))
    out = OUT.with_name(OUT.stem + ("" if args.study.name == REAL_STUDY.name else f"_{args.study.name}")
                        + ("" if tuple(sizes) == SIZES else "_n" + "_".join(map(str, sizes))) + ".json")
    out.write_text(json.dumps({"draws": DRAWS, "level": LEVEL, "rates": rates(rows)}, indent=1))
    print(table(rows))
    print(f"seconds per cell and candidate: median {rows['seconds'].median():.2f}")


if __name__ == "__main__":
    main()
