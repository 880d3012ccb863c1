"""Near-duplicate detection: recall and precision per transformation, hashing cost, pair search at scale.

Figures (rows of the benchmark contract):

* ``recall_<transform>``: labelled duplicate pairs (a source image and a copy
  made by :func:`radaug.duplicates.transform`) found within ``MAX_BITS`` bits,
  over ``N_BR35H`` Br35H images and ``N_PHANTOM`` phantom slices (target ``>= 0.99``).
* ``precision_<transform>``: TP / (TP + FP) when each positive pair meets one
  hard negative: the source's *closest* image of the other class (Br35H: a
  tumour vs a no-tumour slice of the same anatomy) or the closest other phantom
  (same body shape, other texture and lesion).
* ``false_pairs_br35h_cross_class``: pairs within ``MAX_BITS`` among all
  1,500 x 1,500 tumour/no-tumour pairs; ``false_pairs_phantom``: among all pairs
  of distinct phantoms.
* ``hash_vs_preprocess``: seconds to hash an original image / seconds of
  :func:`radaug.preprocess.preprocess_case` on the same images (ratio, same run).
* ``search_seconds_<n>``: multi-index pair search of ``n`` hashes drawn around the
  Br35H hashes; reference: brute force (chunked, all 8 variants) at 10,000 in
  the same run; peak memory of the search process.

Br35H is fetched with :mod:`radaug.data.br35h` into ``$RADAUG_BR35H_DIR``
(default ``~/.cache/radaug/br35h``). Run alone:
``.venv/bin/python -m benchmarks.bench_duplicates [--quick]`` (quick: fewer images, 30,000 hashes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks import row

MAX_BITS = 8
N_BR35H, N_PHANTOM = 300, 100


def _br35h():
    import pandas as pd
    from PIL import Image

    from radaug.data import br35h

    root = Path(os.environ.get("RADAUG_BR35H_DIR", Path.home() / ".cache" / "radaug" / "br35h"))
    if not (root / "images" / "index.csv").is_file():
        br35h.extract_br35h(br35h.download_wheel(root), root / "images")
    index = pd.read_csv(root / "images" / "index.csv")
    files = [root / "images" / f for f in index["file"]]
    images = [np.asarray(Image.open(f).convert("L"), dtype=np.float32) for f in files]
    return images, index["label"].to_numpy(), files


def _phantoms(n: int):
    from radaug.data.phantom import phantom_case

    out = []
    for seed in range(n):
        image, _ = phantom_case(np.random.default_rng(1000 + seed), "malignant" if seed % 2 else "benign", "coarse",
                                size=128, separation=1.0)
        out.append((255.0 * (image - image.min()) / (image.max() - image.min())).astype(np.float32))
    return out


def _min_dist(variants: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(N,) best-variant distance of each source (variants (8, N)) to its copy h (N,)."""
    return np.bitwise_count(variants ^ h[None, :]).min(axis=0)


def _all_dist(hashes: np.ndarray, others: np.ndarray) -> np.ndarray:
    from radaug.duplicates import dihedral_variants

    v = dihedral_variants(hashes)
    return np.min(np.stack([np.bitwise_count(x[:, None] ^ others[None, :]) for x in v]), axis=0)


def _quality(quick: bool) -> list[dict]:
    from radaug import duplicates as D

    images, labels, _ = _br35h()
    hashes = np.array([D.image_hash(a) for a in images], dtype=np.uint64)
    cross = _all_dist(hashes[labels == "no_tumour"], hashes[labels == "tumour"])
    rows = [row("duplicates", "false_pairs_br35h_cross_class", int((cross <= MAX_BITS).sum()), "pairs",
                target="<= 0", notes=f"all {cross.size:,} tumour x no-tumour pairs; closest at {int(cross.min())} bits")]
    phantoms = _phantoms(N_PHANTOM // 2 if quick else N_PHANTOM)
    ph_hashes = np.array([D.image_hash(a) for a in phantoms], dtype=np.uint64)
    ph = _all_dist(ph_hashes, ph_hashes)
    np.fill_diagonal(ph, 64)
    iu = np.triu_indices(len(ph), 1)
    rows.append(row("duplicates", "false_pairs_phantom", int((ph[iu] <= MAX_BITS).sum()), "pairs", target="<= 0",
                    notes=f"all {len(iu[0]):,} pairs of distinct phantoms; closest at {int(ph[iu].min())} bits"))
    rng = np.random.default_rng(16)
    n = N_BR35H // 3 if quick else N_BR35H
    src = np.sort(rng.choice(len(images), n, replace=False))
    # hardest negative of each source: its closest image of the other class / other phantom
    d_all = _all_dist(hashes[src], hashes)
    other = labels[None, :] != labels[src][:, None]
    hard_br = np.where(other, d_all, 64).min(axis=1)
    hard_ph = ph.min(axis=1)
    sources = [(images[i], "br35h") for i in src] + [(a, "phantom") for a in phantoms]
    hard = np.concatenate([hard_br, hard_ph])
    src_hashes = np.concatenate([hashes[src], ph_hashes])
    variants = D.dihedral_variants(src_hashes)
    fp = int((hard <= MAX_BITS).sum())
    for name in D.TRANSFORMS:
        copies = np.array([D.image_hash(D.transform(a, name, rng)) for a, _ in sources], dtype=np.uint64)
        d = _min_dist(variants, copies)
        tp = int((d <= MAX_BITS).sum())
        by_set = {s: float(np.mean(d[[k for k, (_, t) in enumerate(sources) if t == s]] <= MAX_BITS))
                  for s in ("br35h", "phantom")}
        rows.append(row("duplicates", f"recall_{name}", tp / len(d), "fraction", target=">= 0.99",
                        notes=f"br35h {by_set['br35h']:.3f}, phantom {by_set['phantom']:.3f}; "
                              f"max {int(d.max())} bits, median {float(np.median(d)):.0f}"))
        rows.append(row("duplicates", f"precision_{name}", tp / max(tp + fp, 1), "fraction", target=">= 0.99",
                        notes=f"{fp} of {len(hard)} hardest negatives within {MAX_BITS} bits"))
    return rows


def _cost() -> dict:
    from radaug import duplicates as D
    from radaug.images import read_image
    from radaug.preprocess import preprocess_case

    _, labels, files = _br35h()
    picked = files[::60]
    t_hash = t_pre = 0.0
    for f in picked:
        r = SimpleNamespace(case_id="c", patient_id="c", label="x", modality="MR", domain="", group="",
                            image=str(f), mask="", image_sha256="", mask_sha256="")
        start = time.perf_counter()
        preprocess_case(r, patch_size=64, patch_mode="fit", spacing=None, margin=0.05, mask_label=None)
        t_pre += time.perf_counter() - start
        image = read_image(f)
        start = time.perf_counter()
        D.signature(D.canonical_array(image))
        t_hash += time.perf_counter() - start
    return row("duplicates", "hash_vs_preprocess", t_hash / len(picked), "s/image", reference=t_pre / len(picked),
               notes=f"{len(picked)} Br35H images; reference: preprocess_case (which includes the hash) per image")


_CHILD = r"""
import json, resource, sys, time
import numpy as np
from radaug import duplicates as D
n, impl = int(sys.argv[1]), sys.argv[2]
seeds = np.load(sys.argv[3])
rng = np.random.default_rng(n)
base = seeds[rng.integers(0, len(seeds), n)]
noise = np.zeros(n, dtype=np.uint64)
for k in range(12):  # about 12 random bit flips around a real hash: clustered like real hashes
    noise ^= np.uint64(1) << rng.integers(1, 64, n).astype(np.uint64)
hashes = base ^ noise
start = time.perf_counter()
pairs = (D.near_duplicate_pairs if impl == "mih" else D.brute_force_pairs)(hashes, %d)[0]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "pairs": len(pairs),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""" % MAX_BITS


def _search(quick: bool) -> list[dict]:
    import subprocess
    import tempfile

    from radaug import duplicates as D

    images, _, _ = _br35h()
    seeds = np.array([D.image_hash(a) for a in images[::3]], dtype=np.uint64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seeds.npy"
        np.save(path, seeds)

        def measure(n, impl):
            out = subprocess.run([sys.executable, "-c", _CHILD, str(n), impl, str(path)],
                                 check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        ref = measure(10_000, "brute")
        for n in (10_000, 30_000) if quick else (10_000, 100_000):
            got = measure(n, "mih")
            same = "; same pairs as brute force" if n == 10_000 and got["pairs"] == ref["pairs"] else ""
            rows.append(row("duplicates", f"search_seconds_{n}", got["seconds"], "s",
                            reference=ref["seconds"] if n == 10_000 else None,
                            target="<= 1" if n == 10_000 else "<= 60",
                            notes=f"{got['pairs']:,} pairs, peak {got['peak_mib']:.0f} MiB{same}; reference brute "
                                  f"force at 10,000: {ref['seconds']:.1f} s, {ref['peak_mib']:.0f} MiB"))
    return rows


def run(quick: bool = False) -> list[dict]:
    return _quality(quick) + [_cost()] + _search(quick)


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(json.dumps(r))
