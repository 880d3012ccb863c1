"""The split's window-rule verification on a study's case index: CPU, and the values against a saved run.

The ``split`` job's longest step is :func:`radaug.duplicates.verify_candidates`
(the DAG's narrow waist). This times it alone, single-threaded as given by the
environment (``OPENBLAS_NUM_THREADS=1`` for a CPU figure), on the window rule's
candidates of a case index at ``config.yaml``'s thresholds, and compares the
similarities with those of another run (``--compare``, saved by ``--save``): the
largest difference and whether the pairs at or above ``--min-similarity`` are the
same. ``--folds`` also makes the folds and the audit with the split script's calls
(``workflow/scripts/split.py``), at the options and seed of a split provenance
record, and compares them byte for byte with that study's files.

In the harness (``python -m benchmarks.run split_verify``), :func:`run` times the default
study's index (``results/br35h_default/cases/index.csv``, or ``$RADAUG_SPLIT_INDEX``;
made by ``make study``), the first 3,000 ordered pairs with ``--quick``. Alone
(BENCHMARKS.md, "Near-duplicate detection (issue 16)")::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python -m benchmarks.bench_split_verify \\
        results/br35h_default/cases/index.csv --save /tmp/sim.npy [--compare /tmp/sim_main.npy] \\
        [--pairs 3000] [--folds results/br35h_default]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def verify(index_path, *, verify_bits: int = 16, min_similarity: float = 0.915, pairs: int | None = None):
    """``(similarities, candidate rows, images, CPU s, wall s)`` of ``verify_candidates`` on an index's window candidates."""
    from radaug import duplicates
    from radaug.io import read_table
    from radaug.splits import _hash_values

    cases = read_table(index_path, "case_index")
    values, _ = _hash_values(cases)
    thumbs = duplicates.decode_thumbnails(cases["dup_thumb"])
    cuts = duplicates.window_cuts()
    cand = duplicates.window_candidates(values, duplicates.window_hashes(thumbs, cuts), verify_bits)
    if pairs is not None:
        unique, inverse = np.unique(cand[:, :2], axis=0, return_inverse=True)
        rank = np.empty(len(unique), dtype=np.int64)
        rank[np.lexsort((unique[:, 0], unique[:, 1]))] = np.arange(len(unique))  # by j, as verification chunks
        cand = cand[rank[inverse.ravel()] < pairs]
    refine = (min_similarity - duplicates.REFINE_MARGIN, min_similarity)
    cpu, wall = time.process_time(), time.perf_counter()
    sim = duplicates.verify_candidates(thumbs, cand, cuts, refine=refine)
    return sim, cand, len(thumbs), time.process_time() - cpu, time.perf_counter() - wall


def run(quick: bool = False) -> list[dict]:
    from benchmarks import row

    index = Path(os.environ.get("RADAUG_SPLIT_INDEX", REPO / "results" / "br35h_default" / "cases" / "index.csv"))
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no case index; run `make study` (the default study) first, "
                                "or set RADAUG_SPLIT_INDEX to a study's cases/index.csv")
    _, cand, _, cpu, wall = verify(index, pairs=3000 if quick else None)
    return [row("split_verify", "verify_cpu_seconds", cpu, "s"),
            row("split_verify", "verify_ms_cpu_per_candidate", 1000 * cpu / max(len(cand), 1), "ms"),
            row("split_verify", "verify_wall_seconds", wall, "s")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", help="a study's cases/index.csv")
    parser.add_argument("--verify-bits", type=int, default=16)
    parser.add_argument("--min-similarity", type=float, default=0.915)  # config.yaml split.min_similarity
    parser.add_argument("--pairs", type=int, help="only the first PAIRS ordered pairs, in verification's chunk order")
    parser.add_argument("--save", help="write the similarities (one per candidate row) to this .npy")
    parser.add_argument("--compare", help="a .npy of another run on the same index and --pairs")
    parser.add_argument("--folds", help="a study's results folder: remake its splits/ with the split script's calls")
    args = parser.parse_args(argv)

    sim, cand, n_images, cpu, wall = verify(args.index, verify_bits=args.verify_bits,
                                            min_similarity=args.min_similarity, pairs=args.pairs)
    n_pairs = len(np.unique(cand[:, :2], axis=0))
    print(f"{n_images} images, {len(cand)} candidate rows, {n_pairs} ordered pairs: verify_candidates "
          f"{cpu:.1f} s CPU, {wall:.1f} s wall ({1000 * cpu / max(len(cand), 1):.2f} ms CPU a candidate); "
          f"{int((sim >= args.min_similarity).sum())} rows >= {args.min_similarity}")
    if args.save:
        np.save(args.save, sim)
    if args.compare:
        other = np.load(args.compare)
        same = np.array_equal(sim >= args.min_similarity, other >= args.min_similarity)
        print(f"against {args.compare}: max |difference| {np.abs(sim - other).max():.3g}, "
              f"rows >= {args.min_similarity} {'identical' if same else 'DIFFERENT'}")
    if args.folds:
        _remake_splits(Path(args.folds), args.index)


def _remake_splits(study: Path, index_path: str) -> None:
    """The split stage (:func:`radaug.splits.split_study`) at the study's provenance options; byte comparison with its splits/."""
    from radaug.io import read_table, write_csv
    from radaug.splits import split_study

    params = json.loads((study / "provenance" / "split.json").read_text())["params"]
    folds, audit = split_study(read_table(index_path, "case_index"), params["options"], params["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        write_csv(Path(tmp) / "folds.csv", folds)
        write_csv(Path(tmp) / "duplicates.csv", audit)
        for name in ("folds.csv", "duplicates.csv"):
            new, old = (hashlib.sha256((folder / name).read_bytes()).hexdigest()
                        for folder in (Path(tmp), study / "splits"))
            print(f"splits/{name}: {'byte-identical' if new == old else 'DIFFERENT'} (sha256 {new[:12]})")


if __name__ == "__main__":
    main()
