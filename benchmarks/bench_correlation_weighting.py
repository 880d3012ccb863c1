"""How the correlation distances' permutation null should scale and weigh feature pairs (issue 21).

The correlation gates' permutation null pools the training and candidate rows
after standardising each set on its own (so that a candidate of another
location or scale does not turn every permuted side into a mixture with
spurious correlations). Sets standardised on their own are not exchangeable,
so the null is approximate; on heavy-tailed Br35H features the unweighted
Pearson distance's own p was <= 0.05 for fresh real rows in about 0.2 of cells
of 32 training and 32 candidate tumour rows (``bench_correlation_null.py
--shape``). This script measures, on the same cells, how each way of
standardising and weighing keeps the level and what power it has:

* ``meansd``: per-set mean/SD, every pair weighed alike (the library until 2026-12-03);
* ``weighted``: per-set mean/SD, each pair weighed by the inverse of its
  correlation's large-sample variance estimated from the pool
  (:func:`radaug.validate.metrics.correlation_weights`; the library's
  Pearson rule since 2026-12-03, :func:`radaug.validate.metrics.correlation_contrast`);
* ``iqr`` and ``iqr_weighted``: per-set median/IQR instead of mean/SD;
* ``rank`` and ``rank_weighted``: within-set ranks (Spearman; the second the
  library's Spearman rule since 2026-12-03);
* ``studentised``: each draw's pairs divided by their variance estimated on
  each side (Omelka & Pauly 2012's studentisation, per side);
* ``raw``: the sets pooled as they are (exact, but a candidate of another
  location or scale makes every side a mixture).

Every statistic is the library's :func:`radaug.validate.metrics.correlation_contrast`
(with equal weights where unweighted) of the permuted sides (with every case its own
group the sides' sizes are fixed, so an unweighted variant's p-value is the correlation
distance's on the training rows' norm, the library's before 2026-12-03). Sources: a finished study's rows of one class
(``--source DIR --label L``), ``phantom`` (80 lesions of the calibration pool a cell),
``t3`` (12 features, multivariate t with 3 degrees of freedom: every feature of a row
shares its outliers) and ``twomode`` (the unit tests' 4-feature population: 70% around
0, 30% around 4). Candidates: ``real`` (fresh real rows), ``noise`` (the noise
control: mean + 1 SD, 3 SD, independent) and ``decorrelated_<s>``
(:func:`radaug.validate.null.defective`). Every case its own group, 199 draws.
Prints, per variant, the share of cells with p <= 0.05.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_correlation_weighting
--source results/br35h_default --label tumour --shape 32:32 --cells 200 [--candidate real]
[--variants meansd,weighted] [--offset 0]`` (``--offset``: the first cell's seed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import check_flags

VARIANTS = ("meansd", "weighted", "iqr", "iqr_weighted", "rank", "rank_weighted", "studentised", "raw")


def source_rows(source: str, label: str) -> np.ndarray:
    """The rows cells are drawn from (see the module docstring)."""
    from benchmarks.bench_correlation_null import class_rows

    rng = np.random.default_rng(3)
    if source == "twomode":
        cov = 0.5 + 0.5 * np.eye(4)
        return (rng.multivariate_normal(np.zeros(4), cov, size=4000, method="cholesky")
                + 4.0 * (rng.random(4000) < 0.3)[:, None])
    if source == "t3":
        cov = 0.6 + 0.4 * np.eye(12)
        cov[:6, 6:] = cov[6:, :6] = 0.1
        normal = rng.multivariate_normal(np.zeros(12), cov, size=4000, method="cholesky")
        return normal / np.sqrt(rng.chisquare(3, size=(4000, 1)) / 3)
    return class_rows(source, label)


def _iqr_scaled(rows: np.ndarray) -> np.ndarray:
    low, median, high = np.percentile(rows, [25, 50, 75], axis=0)
    spread = np.where(high > low, high - low, rows.std(axis=0))
    return (rows - median) / spread


def p_value(variant: str, train: np.ndarray, cand: np.ndarray, draws: int, seed: int) -> float:
    """The variant's permutation p-value of ``cand`` against ``train`` (every row its own unit)."""
    from radaug.validate.metrics import (correlation_contrast, correlation_weights, is_constant,
                                         within_set_standardised)

    keep = ~(is_constant(train) | is_constant(cand))
    train, cand = train[:, keep], cand[:, keep]
    method = "spearman" if variant.startswith("rank") else "pearson"
    if variant == "raw":
        sets = [train, cand]
    elif variant.startswith("iqr"):
        sets = [_iqr_scaled(m) for m in (train, cand)]
    else:
        sets = [within_set_standardised(m, method) for m in (train, cand)]
    pool = np.concatenate(sets)
    n_features = pool.shape[1]
    weights = correlation_weights(pool) if variant.endswith("weighted") else np.ones((n_features, n_features))

    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        if variant == "studentised":
            upper = np.triu_indices(n_features, 1)
            variance = (1 / correlation_weights(a))[upper] / len(a) + (1 / correlation_weights(b))[upper] / len(b)
            difference = (np.corrcoef(a, rowvar=False) - np.corrcoef(b, rowvar=False))[upper]
            return float(np.sum(difference**2 / variance))
        return correlation_contrast(a, b, method=method, weights=weights)

    tested = statistic(pool[:len(train)], pool[len(train):])
    rng = np.random.default_rng([seed, 17])
    worse = 0
    for _ in range(draws):
        order = rng.permutation(len(pool))
        worse += statistic(pool[order[:len(train)]], pool[order[len(train):]]) >= tested - 1e-12
    return (1 + worse) / (1 + draws)


def candidate_rows(kind: str, train: np.ndarray, fresh: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from radaug.validate.null import defective

    if kind == "real":
        return fresh
    if kind == "noise":
        mean, sd = train.mean(axis=0), train.std(axis=0, ddof=1)
        return rng.normal(mean + sd, 3 * sd, size=fresh.shape)
    if kind.startswith("decorrelated_"):
        return defective("decorrelation", float(kind.split("_")[1]), train, fresh, len(fresh), rng)
    raise SystemExit(f"--candidate {kind!r}: one of real, noise, decorrelated_<share>")


def main(argv: list[str]) -> None:
    options = {"--source": "phantom", "--label": "tumour", "--shape": "32:32", "--cells": "200",
               "--candidate": "real", "--variants": ",".join(VARIANTS), "--draws": "199", "--offset": "0"}
    check_flags(argv, options=tuple(options), doc=__doc__)
    options.update(dict(zip(argv[::2], argv[1::2])))
    variants = options["--variants"].split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
    n_train, n_cand = (int(x) for x in options["--shape"].split(":"))
    rows = source_rows(options["--source"], options["--label"])
    cells, draws, offset = int(options["--cells"]), int(options["--draws"]), int(options["--offset"])
    began = time.process_time()
    p = {variant: [] for variant in variants}
    for cell in range(offset, offset + cells):
        order = np.random.default_rng([77, cell]).permutation(len(rows))
        if options["--source"] in ("phantom", "t3", "twomode"):
            order = order[:80]
        train, fresh = rows[order[:n_train]], rows[order[n_train:n_train + n_cand]]
        cand = candidate_rows(options["--candidate"], train, fresh, np.random.default_rng([5, cell]))
        for variant in variants:
            p[variant].append(p_value(variant, train, cand, draws, cell))
    name = Path(options["--source"]).name + (f" {options['--label']}" if Path(options["--source"]).exists() else "")
    print(f"{name} {options['--shape']} {options['--candidate']}, {cells} cells from {offset}: share p <= 0.05",
          {variant: round(float(np.mean(np.asarray(values) <= 0.05)), 3) for variant, values in p.items()},
          f"{time.process_time() - began:.0f} CPU s")


if __name__ == "__main__":
    main(sys.argv[1:])
