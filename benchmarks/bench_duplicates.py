"""Near-duplicate detection: recall and precision per transformation, hashing cost, pair search at scale.

Figures (rows of the benchmark contract), for the split's two rules together
(hash: ``MAX_BITS``; window: ``VERIFY_BITS`` and ``MIN_SIMILARITY``):

* ``recall_<transform>``: labelled duplicate pairs (a source image and a copy
  made by :func:`radaug.duplicates.transform`, or ``crop_<pct>``: each side cut
  by up to pct of the image) grouped by either rule, over ``N_BR35H`` Br35H
  images and ``N_PHANTOM`` phantom slices (target ``>= 0.99``).
* ``precision_<transform>``: TP / (TP + FP), FP = sources whose hardest
  negative is grouped (Br35H: any image of the other class, so a tumour vs a
  no-tumour slice of the same anatomy; phantoms: any other phantom).
* ``false_pairs_br35h_cross_class``: pairs grouped among all 1,500 x 1,500
  tumour/no-tumour pairs; ``false_pairs_phantom``: among all pairs of distinct phantoms.
* ``hash_vs_preprocess``, ``windows_vs_preprocess``: seconds per image for the
  hash and thumbnail (in preprocessing) and the 81 window hashes (in the split)
  / seconds of :func:`radaug.preprocess.preprocess_case` on the same images (same run).
* ``search_seconds_<n>``: hash-rule multi-index search of ``n`` hashes drawn
  around 1,000 Br35H hashes (reference: brute force at 10,000);
  ``window_search_seconds_<n>``: the window rule's candidate search, a random
  2,000 queries against all ``n`` x 81 windows timed and scaled; peak memory.
  Two synthetic sets (``_SYNTH``): ``clustered`` (about 12 bits flipped: a
  hundred near-copies of every seed at 100,000, an upper bound) and ``spread``
  (figures ``..._spread_<n>``: each bit flipped with probability 0.25, so copies
  of one seed are as far apart as two different Br35H images).

Br35H is fetched with :mod:`radaug.data.br35h` into ``$RADAUG_BR35H_DIR``
(default ``~/.cache/radaug/br35h``). Run alone:
``.venv/bin/python -m benchmarks.bench_duplicates [--quick] [--3d]`` (quick: fewer images, window-rule hard negatives
among 600 images of each Br35H class, 30,000 hashes; ``--3d``: only the 3D volumes' part, :func:`_quality_3d`,
whose quick rows are ``benchmarks/bench_duplicates.quality_3d_quick.jsonl``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks import check_flags, row

REPO = Path(__file__).resolve().parents[1]
MAX_BITS = 7  # split.near_duplicate_bits: the hash rule
VERIFY_BITS, MIN_SIMILARITY = 16, 0.915  # split.verify_bits, split.min_similarity: the window rule
N_BR35H, N_PHANTOM = 300, 100
N_CROSS_QUICK = 600  # --quick: hard negatives among this many images of each Br35H class (all 1,500 otherwise)
CROP_LEVELS = (0.05, 0.10, 0.15, 0.20)  # crop_<pct>: each side cut by uniform(0, pct) of the image


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
    """Phantom CT slices as a viewer shows them: the body in a soft-tissue display window, air black.

    (Scaling the whole -1000..85 HU range to 0-255 put all body texture in the top 20 grey levels:
    a contrast change then clipped the body to one flat disc and noise of 1-4 % drowned its
    texture, so those "copies" no longer held the image they came from.)
    """
    from radaug.data.phantom import phantom_case

    out = []
    for seed in range(n):
        image, _ = phantom_case(np.random.default_rng(1000 + seed), "malignant" if seed % 2 else "benign", "coarse",
                                size=128, separation=1.0)
        body = image > -500
        lo, hi = np.percentile(image[body], [1, 99])
        out.append(np.where(body, 20 + 215 * np.clip((image - lo) / (hi - lo), 0, 1), 0).astype(np.float32))
    return out


def _all_dist(hashes: np.ndarray, others: np.ndarray) -> np.ndarray:
    from radaug.duplicates import dihedral_variants

    v = dihedral_variants(hashes)
    return np.min(np.stack([np.bitwise_count(x[:, None] ^ others[None, :]) for x in v]), axis=0)


class _Signed(SimpleNamespace):
    """Hashes, stored (quantised) thumbnails and window hashes of a list of images, as the split sees them."""


def _sign(images) -> _Signed:
    from radaug import duplicates as D

    hashes = np.array([D.image_hash(a) for a in images], dtype=np.uint64)
    stored = D.decode_thumbnails([D.encode_thumbnail(D.framed_thumbnail(a)) for a in images])
    return _Signed(hashes=hashes, thumbs=stored, windows=D.window_hashes(stored))


def _window_links(sig: _Signed, queries=None) -> tuple[np.ndarray, np.ndarray]:
    """Verified window-rule candidates (i, j rows) and their similarities."""
    from radaug import duplicates as D

    cand = D.window_candidates(sig.hashes, sig.windows, VERIFY_BITS, queries=queries)
    sim = D.verify_candidates(sig.thumbs, cand, refine=(MIN_SIMILARITY - D.REFINE_MARGIN, MIN_SIMILARITY))
    return cand, sim


def _pair_found(src: _Signed, copy: _Signed) -> tuple[np.ndarray, np.ndarray]:
    """Per source k: is (source k, copy k) grouped by either rule; best window similarity (-1: no candidate)."""
    from radaug import duplicates as D

    n = len(src.hashes)
    by_hash = D.dihedral_distance(src.hashes, copy.hashes) <= MAX_BITS
    both = _Signed(hashes=np.concatenate([src.hashes, copy.hashes]), thumbs=np.concatenate([src.thumbs, copy.thumbs]),
                   windows=np.concatenate([src.windows, copy.windows]))
    cand = D.window_candidates(both.hashes, both.windows, VERIFY_BITS)
    cand = cand[np.abs(cand[:, 0] - cand[:, 1]) == n]
    sim = D.verify_candidates(both.thumbs, cand, refine=(MIN_SIMILARITY - D.REFINE_MARGIN, MIN_SIMILARITY))
    best = np.full(n, -1.0)
    np.maximum.at(best, np.minimum(cand[:, 0], cand[:, 1]), sim)
    return by_hash | (best >= MIN_SIMILARITY), best


def _misses(found: np.ndarray, best: np.ndarray) -> str:
    """The missed sources: how many never became a window-rule candidate, and the best similarity of the rest."""
    miss = np.flatnonzero(~found)
    if not len(miss):
        return "no misses"
    none = int(np.sum(best[miss] < -0.5))
    sims = ", ".join(f"{b:.2f}" for b in sorted(best[miss][best[miss] >= -0.5]))
    return f"misses: sources {miss.tolist()}, {none} without a candidate" + (f", verified at {sims}" if sims else "")


def _crop_level(a: np.ndarray, level: float, rng) -> np.ndarray:
    h, w = a.shape
    t, b, l, r = (rng.uniform(0, level, 4) * [h, h, w, w]).astype(int)
    return a[t:h - b, l:w - r].copy()


def _quality(quick: bool) -> list[dict]:
    from radaug import duplicates as D

    images, labels, _ = _br35h()
    sig = _sign(images)
    rows = []
    # hard negatives 1: every tumour x no-tumour pair of Br35H (different images by construction)
    neg = np.arange(len(images))
    if quick:
        pick = np.random.default_rng(7)
        neg = np.sort(np.concatenate([pick.choice(np.flatnonzero(labels == c), N_CROSS_QUICK, replace=False)
                                      for c in np.unique(labels)]))
    neg_sig = _Signed(hashes=sig.hashes[neg], thumbs=sig.thumbs[neg], windows=sig.windows[neg])
    cross_hash = _all_dist(sig.hashes[labels == "no_tumour"], sig.hashes[labels == "tumour"])
    start = time.perf_counter()
    cand, sim = _window_links(neg_sig)
    verify_seconds = time.perf_counter() - start
    cand[:, :2] = neg[cand[:, :2]]
    cross = labels[cand[:, 0]] != labels[cand[:, 1]]
    false_window = cand[cross & (sim >= MIN_SIMILARITY)]
    n_cross = int((cross_hash <= MAX_BITS).sum()) + len({(min(a, b), max(a, b)) for a, b in false_window[:, :2]})
    n_window_pairs = int(np.prod([np.sum(labels[neg] == c) for c in np.unique(labels)]))
    rows.append(row("duplicates", "false_pairs_br35h_cross_class", n_cross, "pairs", target="<= 0",
                    notes=f"hash rule: all {cross_hash.size:,} tumour x no-tumour pairs; window rule: "
                          f"{n_window_pairs:,} of them ({len(neg):,} images); hash rule: closest at "
                          f"{int(cross_hash.min())} bits; window rule: {int(cross.sum()):,} candidates, most similar "
                          f"{float(sim[cross].max()):.3f} (threshold {MIN_SIMILARITY})"))
    rows.append(row("duplicates", "window_rule_seconds_br35h", verify_seconds, "s",
                    notes=f"search + verification of {len(neg):,} Br35H images: {len(cand):,} candidates "
                          f"({verify_seconds / max(len(cand), 1) * 1e3:.2f} ms each)"))
    bad_sources = set(false_window[:, 0]) | set(false_window[:, 1])
    # hard negatives 2: all pairs of distinct phantoms (same body shape, other texture and lesion)
    phantoms = _phantoms(N_PHANTOM // 2 if quick else N_PHANTOM)
    ph = _sign(phantoms)
    ph_dist = _all_dist(ph.hashes, ph.hashes)
    iu = np.triu_indices(len(ph_dist), 1)
    ph_cand, ph_sim = _window_links(ph)
    ph_false = ph_cand[ph_sim >= MIN_SIMILARITY]
    rows.append(row("duplicates", "false_pairs_phantom",
                    int((ph_dist[iu] <= MAX_BITS).sum()) + len(ph_false) // 2, "pairs", target="<= 0",
                    notes=f"all {len(iu[0]):,} pairs of distinct phantoms; hash rule closest at {int(ph_dist[iu].min())} "
                          f"bits; window rule most similar {float(ph_sim.max()) if len(ph_sim) else float('nan'):.3f}"))
    np.fill_diagonal(ph_dist, 64)
    ph_bad = (ph_dist.min(axis=1) <= MAX_BITS)
    ph_bad[np.unique(ph_false[:, :2])] = True if len(ph_false) else False
    rng = np.random.default_rng(16)
    n = N_BR35H // 3 if quick else N_BR35H
    src = np.sort(rng.choice(len(images), n, replace=False))
    # a source counts as a false positive when its hardest negative (any other-class image) is grouped
    fp = sum(int(i in bad_sources) for i in src) + int(ph_bad.sum())
    sources = [images[i] for i in src] + phantoms
    source_sig = _Signed(hashes=np.concatenate([sig.hashes[src], ph.hashes]),
                         thumbs=np.concatenate([sig.thumbs[src], ph.thumbs]),
                         windows=np.concatenate([sig.windows[src], ph.windows]))
    is_br = np.arange(len(sources)) < n
    names = list(D.TRANSFORMS) + [f"crop_{int(100 * c):02d}" for c in CROP_LEVELS]
    for name in names:
        if name.startswith("crop_"):
            level = int(name[5:]) / 100
            copies = [_crop_level(a, level, rng) for a in sources]
        else:
            copies = [D.transform(a, name, rng) for a in sources]
        found, best = _pair_found(source_sig, _sign(copies))
        tp = int(found.sum())
        rows.append(row("duplicates", f"recall_{name}", tp / len(found), "fraction", target=">= 0.99",
                        notes=f"br35h {found[is_br].mean():.3f}, phantom {found[~is_br].mean():.3f}; window rule "
                              f"alone {float(np.mean(best >= MIN_SIMILARITY)):.3f}; {_misses(found, best)}"))
        rows.append(row("duplicates", f"precision_{name}", tp / max(tp + fp, 1), "fraction", target=">= 0.99",
                        notes=f"{fp} of {len(found)} sources' hardest negatives grouped"))
    return rows


REAL_DRAWS = 8  # random copies of each real volume per transformation (five volumes: one draw each is too noisy)
PHANTOM_DRAWS = 3  # random copies of each phantom volume per transformation (one draw of 20 was a lucky 20/20)
TRANSFORMS_3D = ("reorient", "flip_lr", "restack", "resample", "crop", "contrast", "gamma", "window", "noise",
                 "combined")


def _volume_copy(image, name: str, rng):
    """A labelled near-duplicate of a 3D SimpleITK image, as a user's data set could hold it.

    reorient: the same voxels stored in another axis order and direction (one of 6 DICOM
    orientation codes; the canonical LPS read must undo it); flip_lr: a true left-right mirror of
    the anatomy; restack: 0-15 % of the slices left out at each end; resample: in-plane spacing
    x0.7-1.4 and slice spacing x0.8-1.25 (linear); crop: 2-10 % of each in-plane side; contrast
    ``a x + b``; gamma 0.6-1.7 on the 0-1 range; window: clipped to the 0-10th and 90-100th
    percentiles; noise: Gaussian, SD 1-4 % of the range; combined: restack, resample, gamma,
    noise, then reorient (the others cut and scale the stored axes, which are the anatomy's only
    before a reorientation).
    """
    import SimpleITK as sitk

    if name == "combined":
        for step in ("restack", "resample", "gamma", "noise", "reorient"):
            image = _volume_copy(image, step, rng)
        return image
    if name == "reorient":
        return sitk.DICOMOrient(image, str(rng.choice(["RAS", "LPI", "PIR", "AIL", "SRA", "IRP"])))
    if name == "resample":
        old, size = np.array(image.GetSpacing()), np.array(image.GetSize())
        scale = np.array([rng.uniform(0.7, 1.4)] * 2 + [rng.uniform(0.8, 1.25)])
        new = old * scale
        return sitk.Resample(image, [int(round(n)) for n in size / scale], sitk.Transform(), sitk.sitkLinear,
                             image.GetOrigin(), tuple(new), image.GetDirection(), float(sitk.GetArrayViewFromImage(image).min()))
    a = sitk.GetArrayFromImage(image).astype(np.float32)  # z, y, x
    lo, hi = float(a.min()), float(a.max())
    if name == "flip_lr":
        a = a[:, :, ::-1]
    elif name == "restack":
        z = len(a)
        a = a[int(rng.uniform(0, 0.15) * z):z - int(rng.uniform(0, 0.15) * z)]
    elif name == "crop":
        _, h, w = a.shape
        t, b, l, r = (rng.uniform(0.02, 0.10, 4) * [h, h, w, w]).astype(int)
        a = a[:, t:h - b, l:w - r]
    elif name == "contrast":
        a = rng.uniform(0.6, 1.4) * a + rng.uniform(-0.1, 0.1) * (hi - lo)
    elif name == "gamma":
        a = lo + (hi - lo) * ((a - lo) / max(hi - lo, 1e-6)) ** rng.uniform(0.6, 1.7)
    elif name == "window":
        w0, w1 = np.percentile(a, [rng.uniform(0, 10), rng.uniform(90, 100)])
        a = np.clip(a, w0, w1)
    elif name == "noise":
        a = a + rng.normal(0, rng.uniform(0.01, 0.04) * (hi - lo), a.shape).astype(np.float32)
    else:
        raise ValueError(f"unknown 3D transform {name!r}")
    out = sitk.GetImageFromArray(np.ascontiguousarray(a))
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.GetOrigin())
    return out


MIN_VOLUME_SIMILARITY = 0.7  # split.min_volume_similarity: the volume rule


def _quality_3d(quick: bool) -> list[dict]:
    """The two 3D rules: copies linked (hash within ``MAX_BITS`` or volume similarity at least
    ``MIN_VOLUME_SIMILARITY``), distinct volumes not; and the volume rule's cost.

    Sources: PyRadiomics' five real test volumes (brain MR x2, breast MR, lung CT x2; breast1 is a
    small crop around its lesion, not a whole scan), each copied ``REAL_DRAWS`` times, and phantom CT
    volumes (one body generator, so distinct phantoms are hard negatives of one anatomy), each copied
    ``PHANTOM_DRAWS`` times;
    each signed as the case index signs it (:func:`radaug.preprocess.duplicate_signature`: LPS, the
    foreground mean projection's hash and the volume thumbnail). Reorientation and a linear contrast
    change are found by construction (the LPS read undoes the one; ranks and the histogram
    thresholds ignore the other).
    """
    import time

    import SimpleITK as sitk

    from radaug import preprocess
    from radaug.data.phantom import phantom_case
    from radaug.data.pyradiomics_cases import fetch_cases
    from radaug.duplicates import (VOLUME_COARSE_MARGIN, comparable_extents, decode_volumes, dihedral_distance,
                                   parse_hashes, similar_volumes, volume_similarity)

    def sign(images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = [preprocess.duplicate_signature(image) for image in images]
        levels, voxels = decode_volumes([t for _, t in pairs])
        return parse_hashes([h for h, _ in pairs]), levels, voxels

    cases = fetch_cases(REPO / "resources" / "pyradiomics")
    real = [sitk.ReadImage(str(img)) for img, _ in cases.values()]
    phantoms = []
    for seed in range(20 if quick else 60):
        volume, _ = phantom_case(np.random.default_rng(3000 + seed), "malignant" if seed % 2 else "benign", "coarse",
                                 dim=3, size=48, separation=1.0)
        image = sitk.GetImageFromArray(volume.astype(np.float32))
        image.SetSpacing((0.8, 0.8, 2.5))
        phantoms.append(image)
    sources = real + phantoms
    started = time.process_time()
    hashes, levels, voxels = sign(sources)
    sign_ms = 1e3 * (time.process_time() - started) / len(sources)
    dist = _all_dist(hashes, hashes)
    iu = np.triu_indices(len(sources), 1)
    is_real = np.arange(len(sources)) < len(real)
    started = time.process_time()
    verified, _ = similar_volumes(levels, voxels, min_similarity=MIN_VOLUME_SIMILARITY)  # the split's search
    search_s = time.process_time() - started
    comparable = comparable_extents(voxels[iu[0]], voxels[iu[1]])
    n_compared = int(comparable.sum())
    sim = np.full((len(sources), len(sources)), -1.0)  # every comparable pair at full resolution (no coarse exit)
    full_s = {}
    for a, b in zip(iu[0][comparable], iu[1][comparable]):
        started = time.process_time()
        sim[a, b] = volume_similarity(levels[a], voxels[a], levels[b], voxels[b])
        full_s[a, b] = time.process_time() - started
    real_full_ms = [1e3 * t for (a, b), t in full_s.items() if is_real[a] and is_real[b]]
    real_pair = is_real[iu[0]] & is_real[iu[1]]
    phantom_pair = ~is_real[iu[0]] & ~is_real[iu[1]]
    rows = [
        row("duplicates", "false_pairs_3d", int((dist[iu] <= MAX_BITS).sum()), "pairs", target="<= 0",
            notes=f"hash rule: all {len(iu[0]):,} pairs of {len(real)} real and {len(phantoms)} phantom volumes; closest "
                  f"{int(dist[iu].min())} bits (phantom pairs {int(dist[iu][~is_real[iu[0]]].min())}, "
                  f"pairs with a real volume {int(dist[iu][is_real[iu[0]]].min())})"),
        row("duplicates", "false_pairs_3d_volume", int((sim[iu] >= MIN_VOLUME_SIMILARITY).sum()), "pairs",
            target="<= 0",
            notes=f"volume rule at {MIN_VOLUME_SIMILARITY}: {n_compared:,} of the {len(iu[0]):,} pairs of comparable "
                  f"extent, each scored at full resolution; most similar distinct real pair "
                  f"{sim[iu][real_pair].max():.3f}, phantom pair {sim[iu][phantom_pair].max():.3f}"),
        row("duplicates", "volume_rule_ms_per_pair", 1e3 * search_s / max(n_compared, 1), "ms CPU",
            notes=f"similar_volumes over the {len(sources)} sources ({n_compared:,} compared pairs, "
                  f"{len(verified)} past the coarse pass, one thread); a pair of distinct real volumes of one "
                  f"anatomy at full resolution {min(real_full_ms):.0f}-{max(real_full_ms):.0f} ms "
                  f"({len(real_full_ms)} pairs); signing {sign_ms:.0f} ms CPU a volume on average (hash + volume "
                  "thumbnail)"),
    ]
    rng = np.random.default_rng(17)
    names = [*cases] + [f"phantom{k}" for k in range(len(phantoms))]
    owner = np.repeat(np.arange(len(sources)), [REAL_DRAWS] * len(real) + [PHANTOM_DRAWS] * len(phantoms))
    for name in TRANSFORMS_3D:
        copy_hashes, copy_levels, copy_voxels = sign([_volume_copy(sources[k], name, rng) for k in owner])
        got = dihedral_distance(hashes[owner], copy_hashes)  # the hash rule compares at the best of 8
        value = np.array([volume_similarity(levels[k], voxels[k], copy_levels[i], copy_voxels[i],  # as the split
                                            floor=MIN_VOLUME_SIMILARITY - VOLUME_COARSE_MARGIN)
                          for i, k in enumerate(owner)])
        by_hash, by_volume = got <= MAX_BITS, value >= MIN_VOLUME_SIMILARITY
        found = by_hash | by_volume
        on_real = is_real[owner]

        def count(x):
            return f"real {x[on_real].sum()}/{on_real.sum()}, phantom {x[~on_real].sum()}/{(~on_real).sum()}"

        missed = [f"{names[k]}" + (f" x{n}" if n > 1 else "") for k, n in zip(*np.unique(owner[~found], return_counts=True))]
        rows.append(row("duplicates", f"recall_3d_{name}", found.mean(), "fraction", target=">= 0.99",
                        notes=f"either rule: {count(found)}; hash rule {count(by_hash)} (median {np.median(got):.0f}, "
                              f"max {got.max()} bits); volume rule {count(by_volume)} (lowest similarity real "
                              f"{value[on_real].min():.3f}, phantom {value[~on_real].min():.3f})"
                              + (f"; missed: {', '.join(missed)}" if missed else "")))
    return rows


def _cost() -> list[dict]:
    from radaug import duplicates as D
    from radaug.images import read_image
    from radaug.preprocess import preprocess_case

    _, labels, files = _br35h()
    picked = files[::60]
    t_sig = t_pre = t_win = 0.0
    for f in picked:
        r = SimpleNamespace(case_id="c", patient_id="c", label="x", modality="MR", domain="", group="",
                            image=str(f), mask="", image_sha256="", mask_sha256="")
        start = time.perf_counter()
        preprocess_case(r, patch_size=64, mode="fit", spacing=None, margin=0.05, mask_label=None)
        t_pre += time.perf_counter() - start
        image = read_image(f)
        start = time.perf_counter()
        _, thumb = D.thumbnail_signature(D.canonical_array(image))
        t_sig += time.perf_counter() - start
        start = time.perf_counter()
        D.window_hashes(D.decode_thumbnails([thumb]))
        t_win += time.perf_counter() - start
    k = len(picked)
    return [row("duplicates", "hash_vs_preprocess", t_sig / k, "s/image", reference=t_pre / k,
                notes=f"{k} Br35H images: hash + thumbnail (preprocessing) per image; reference: preprocess_case "
                      "(which includes them) per image"),
            row("duplicates", "windows_vs_preprocess", t_win / k, "s/image", reference=t_pre / k,
                notes="81 window hashes per image (split job), same images; reference: preprocess_case per image")]


_SYNTH = r"""
import json, sys, time
import numpy as np
from radaug import duplicates as D
def peak_mib():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork + exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def noise(rng, n, kind):
    # Per-image XOR masks on bits 1-63 (the DC bit stays 0). clustered: about 12 random bits flipped
    # (a hundred near-copies of every seed at 100,000: an upper bound); spread: every bit flipped with
    # probability 0.25, so two copies of one seed differ in about 24 bits, as two different Br35H
    # images do (median 23): a cohort of distinct images that keeps part of the real bit biases.
    if kind == "clustered":
        out = np.zeros(n, dtype=np.uint64)
        for k in range(12):
            out ^= np.uint64(1) << rng.integers(1, 64, n).astype(np.uint64)
        return out
    weights = np.left_shift(np.uint64(1), np.arange(1, 64, dtype=np.uint64))
    out = np.zeros(n, dtype=np.uint64)
    for start in range(0, n, 10_000):
        bits = rng.random((min(10_000, n - start), 63)) < 0.25
        out[start:start + len(bits)] = np.bitwise_or.reduce(np.where(bits, weights, np.uint64(0)), axis=1)
    return out
"""

_CHILD = _SYNTH + r"""
n, impl, kind = int(sys.argv[1]), sys.argv[2], sys.argv[4]
seeds = np.load(sys.argv[3])
rng = np.random.default_rng(n)
hashes = seeds[rng.integers(0, len(seeds), n)] ^ noise(rng, n, kind)
start, cpu = time.perf_counter(), time.process_time()
pairs = (D.near_duplicate_pairs if impl == "mih" else D.brute_force_pairs)(hashes, %d)[0]
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "pairs": len(pairs), "peak_mib": peak_mib()}))
""" % MAX_BITS


_WINDOW_CHILD = _SYNTH + r"""
n, n_queries, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[4]
seeds = np.load(sys.argv[3])  # (S, W) window hashes of real images
rng = np.random.default_rng(n)
mask = noise(rng, n, kind)  # one mask for all of an image's windows
windows = seeds[rng.integers(0, len(seeds), n)] ^ mask[:, None]
hashes = windows[:, 0].copy()
queries = np.sort(rng.choice(n, min(n_queries, n), replace=False))
start, cpu = time.perf_counter(), time.process_time()
cand = D.window_candidates(hashes, windows, %d, queries=queries)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "queries": len(queries), "candidates": len(cand),
                  "peak_mib": peak_mib()}))
""" % VERIFY_BITS

KINDS = ("clustered", "spread")  # synthetic 100,000-image sets: an upper bound and a cohort of distinct images


def _child(code: str, *args) -> dict:
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _suffix(kind: str, n: int) -> str:
    return f"{n}" if kind == "clustered" else f"{kind}_{n}"


def _window_search(quick: bool) -> list[dict]:
    """The window rule's candidate search at scale: the time of a random subset of queries, scaled to all."""
    import tempfile

    images, _, _ = _br35h()
    seeds = _sign(images[::3]).windows
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "windows.npy"
        np.save(path, seeds)
        for kind in KINDS:
            for n in (10_000, 30_000) if quick else (10_000, 100_000):
                got = _child(_WINDOW_CHILD, n, 2_000, path, kind)
                scale = n / got["queries"]
                rows.append(row("duplicates", f"window_search_seconds_{_suffix(kind, n)}", got["seconds"] * scale, "s",
                                notes=f"{kind}: {got['queries']:,} of {n:,} images' queries timed ({got['seconds']:.1f} s "
                                      f"wall, {got['cpu']:.1f} s CPU) and scaled; about {got['candidates'] * scale:,.0f} "
                                      f"candidates to verify; peak {got['peak_mib']:.0f} MiB ({n:,} x 81 window hashes "
                                      "indexed)"))
    return rows


def _search(quick: bool) -> list[dict]:
    import tempfile

    from radaug import duplicates as D

    images, _, _ = _br35h()
    seeds = np.array([D.image_hash(a) for a in images[::3]], dtype=np.uint64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seeds.npy"
        np.save(path, seeds)
        ref = _child(_CHILD, 10_000, "brute", path, "clustered")
        for kind in KINDS:
            for n in (10_000, 30_000) if quick else (10_000, 100_000):
                got = _child(_CHILD, n, "mih", path, kind)
                is_ref = n == 10_000 and kind == "clustered"
                same = "; same pairs as brute force" if is_ref and got["pairs"] == ref["pairs"] else ""
                rows.append(row("duplicates", f"search_seconds_{_suffix(kind, n)}", got["seconds"], "s",
                                reference=ref["seconds"] if is_ref else None,
                                target="<= 1" if is_ref else "<= 60",
                                notes=f"{kind}: {got['pairs']:,} pairs, {got['cpu']:.1f} s CPU, peak "
                                      f"{got['peak_mib']:.0f} MiB{same}; reference brute force at 10,000 clustered: "
                                      f"{ref['seconds']:.1f} s, {ref['peak_mib']:.0f} MiB"))
    return rows


def run(quick: bool = False) -> list[dict]:
    return _quality(quick) + _quality_3d(quick) + _cost() + _search(quick) + _window_search(quick)


if __name__ == "__main__":
    flags = check_flags(sys.argv[1:], ("--quick", "--3d"))
    for r in _quality_3d("--quick" in flags) if "--3d" in flags else run(quick="--quick" in flags):
        print(json.dumps(r))
