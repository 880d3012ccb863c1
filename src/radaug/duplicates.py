"""Near-duplicate images: a transformation-invariant signature, a sub-quadratic pair search, groups.

What a radiologist calls "the same image" survives the edits datasets are full
of: a left-right mirror or a 90-degree rotation, a different crop or frame, a
resize, a contrast/gamma/window change, JPEG recompression, mild noise. The
signature of an **original** image (not of radaug's derived patch, whose ROI can
differ between two copies) is built to be invariant to each of these:

1. **Framing** (crop, padding, resizing): the image is cut to the robust bounding
   box of its foreground (everything above the background class of a three-class
   Otsu split, without the foreground's stray parts: lines along the image edge,
   frames, burnt-in text and specks,
   :func:`foreground_box`; then the 1st-99th percentiles of the foreground's row and
   column positions) and resampled (area average) to a ``THUMB`` x ``THUMB``
   thumbnail, whatever the aspect ratio.
2. **Intensity** (contrast, gamma, windowing): the thumbnail is replaced by its
   ranks (histogram equalisation), invariant to every increasing intensity map.
3. **Structure**: the 2D DCT of the equalised thumbnail; the signs of its
   ``BLOCK`` x ``BLOCK`` lowest frequencies (DC left out) are the hash bits, a
   perceptual hash (pHash, Zauner 2010) on the normalised thumbnail. Low
   frequencies survive JPEG and noise.
4. **Flips and 90-degree rotations** (the dihedral group D4): a mirror of the
   image negates the DCT coefficients of odd frequency along the mirrored axis
   and a transpose transposes them, so the hash of each of the 8 variants is an
   exact bit operation on the hash (:func:`dihedral_variants`); two images are
   compared at the best of the 8.

3D volumes are read in a canonical orientation (:func:`canonical_array`, LPS) and
hashed as the mean projection along the slice axis over the foreground slices,
so the same stack in another orientation, or with a few slices more or fewer,
hashes alike. A projection's box moves when a copy's crop or restack cuts the
anatomy, and its mean is no increasing map of the source's when the intensities
are (gamma, window): the hash found 8 of 40 in-plane crops of real volumes and 30
of 40 of their restacks and gamma/window changes (BENCHMARKS.md, "3D volumes").
The **volume rule** uses what a 3D image has and a 2D photograph has not, its
voxel size in mm: a copy cropped, restacked or resampled differs from its source
by a translation once both are at one physical scale (up to half a thumbnail voxel, not
modelled: BENCHMARKS.md). The case index stores a
``VOLUME_SIDE``^3 rank thumbnail of each volume's foreground box (thresholded on the
volume smoothed by a one-voxel Gaussian, so that noise does not lift the air into it)
and its voxel size (:func:`volume_thumbnail`); two are resampled to the coarser voxel size and
correlated (Pearson, over the voxels both hold as foreground) at every
translation by FFT (Padfield 2012's masked correlation, :func:`_masked_ncc_map`)
and each of the 8 axis mirrorings (:func:`volume_similarity`). Every pair of
comparable physical extent is compared (:func:`similar_volumes`): quadratic, as
3D cohorts are hundreds of volumes, not the 2D data sets' hundred thousand images.

Pairs within ``max_bits`` are found by multi-index hashing (Norouzi et al.
2012): the hash is cut into blocks with radii r_i such that ``sum(r_i + 1) >
max_bits``, so any pair within ``max_bits`` agrees within r_i bits on some block
i (:func:`_search_plan`); candidates come from dense bucket tables of the block
keys (:class:`_BucketTable`), never from an N x N matrix (:func:`near_duplicate_pairs`).

Crops that cut into the anatomy move the foreground box and escape the hash.
The **window rule** catches them: the case index also stores a 64 x 64 rank
thumbnail of the foreground box widened by 10 % per side (``dup_thumb``,
:func:`framed_thumbnail`); at split time each gives the hashes of 81 crop
windows of its box (:func:`window_hashes`), every image's full-frame hash (8
flips/rotations) is looked up among all windows by multi-index hashing
(:func:`window_candidates`), and each candidate pair is verified by the band-pass
correlation (:func:`similarity`) of the aligned 32 x 32 windows (one image's box,
a window of the other's frame): a coarse pass scores every flip/rotation against
every grid window, and the framing is refined from the best of them (and from the
hash-matched pose), out into the margin where a crop's box reaches past its
source's (:func:`verify_candidates`, :func:`similar_pairs`). Refining only from
the hash-matched pose missed 2 of 150 crops of 2-10 % per side in the issue-16
benchmark (the hash's closest window a grid step off the crop's framing, where
the correlation is 0.19-0.29, or a wrong mirror); the coarse pass finds them
(crops 2-10 % and combined edits 0.987 / 0.993 -> 1.00), for 2.2-2.4x the CPU per
candidate (12.2 vs 5.6 ms on 400 Br35H images, 10.3 vs 4.2 ms on 200; BENCHMARKS.md,
"Near-duplicate detection"). Most of that CPU is the refinement's trials; each moves one
side, so the axis it does not move is resampled and smoothed once per start
(:class:`_FixedAxis`) and a trial is two small matrix products: on the default Br35H
study (480 images, 33,360 candidates) verification takes 2.7 instead of 7.9 ms of CPU a
candidate (92 vs 265 s), with the same similarities up to rounding (2.7e-15) and the
same folds (BENCHMARKS.md, "Near-duplicate detection (issue 16)", 2026-12-02).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

log = logging.getLogger(__name__)

THUMB = 32
BLOCK = 8  # 8 x 8 low frequencies, DC excluded: 63 bits (+1 constant zero bit)
N_BITS = 64
HASH_VERSION = "dq3"
LOG_EPS = 0.05
STRAY_FRACTION = 0.005  # a foreground part under this share of the foreground is left out of the box


# ---------------------------------------------------------------- signature


def canonical_array(image) -> np.ndarray:
    """Pixel array of a SimpleITK image, 3D volumes reoriented to LPS first (a view for 2D)."""
    import SimpleITK as sitk

    if image.GetDimension() == 3:
        image = sitk.DICOMOrient(image, "LPS")
        return sitk.GetArrayFromImage(image)
    return sitk.GetArrayViewFromImage(image)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between[:-1]))]) if len(between) > 1 else float(centres[0])


def _background_threshold(values: np.ndarray, bins: int = 64) -> float:
    """The lower threshold of a three-class Otsu split (background | tissue | bright) of ``values``.

    Every pair of thresholds on a ``bins``-bin histogram is tried; the pair maximising the
    between-class variance ``sum_k S_k^2 / W_k`` wins (Otsu 1979, extended to three classes as in
    scikit-image's ``threshold_multiotsu``). Everything above the lower threshold is foreground, so
    a low-contrast body is not put with the background as a two-class split can do when a bright
    lesion or skull dominates the histogram.

    The threshold is the centre of the background class's last bin, as scikit-image's; the
    pixels of that bin above it count as foreground (half a bin, 2 grey levels of a 0-255 image).
    The variances are computed on the bin positions 0 .. 1 (the argmax is the same for any
    increasing affine map of the intensities), so an offset or a scale of the data costs no
    precision."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w = np.cumsum(hist, dtype=float)  # weight and sum of classes [0, i]
    s = np.cumsum(hist * np.linspace(0.0, 1.0, bins))
    i, j = np.triu_indices(bins - 1, k=1)  # class 1 = [0, i], class 2 = (i, j], class 3 = (j, end]
    w2 = w[j] - w[i]  # classes 1 and 3 hold the first and last bins, never empty unless the values are constant
    with np.errstate(divide="ignore", invalid="ignore"):
        between = s[i] ** 2 / w[i] + (s[j] - s[i]) ** 2 / w2 + (s[-1] - s[j]) ** 2 / (w[-1] - w[j])
    between[(w2 == 0) | np.isnan(between)] = -np.inf
    if not np.isfinite(between).any():  # fewer than three grey levels
        return _otsu(values)
    return float(centres[i[int(np.argmax(between))]])


def _robust_span(counts: np.ndarray, tail: float = 0.01) -> tuple[int, int]:
    """First and last index holding the central ``1 - 2 tail`` of a profile's mass."""
    cum = np.cumsum(counts, dtype=float)
    total = cum[-1]
    lo = int(np.searchsorted(cum, tail * total, side="right"))
    hi = int(np.searchsorted(cum, (1 - tail) * total, side="left"))
    return lo, max(hi, lo) + 1


def _main_foreground(fg: np.ndarray) -> np.ndarray:
    """``fg`` without its stray parts: connected parts that vanish under a 3 x 3 opening (lines
    1-2 pixels wide, frames, text strokes) or hold under ``STRAY_FRACTION`` of the foreground
    (specks, characters). Whole parts are kept or dropped, so a large body is never eroded.
    ``fg`` itself where that would keep less than half of it (a foreground of fragments).

    Parts are 4-connected (``ndimage.label``'s default): a diagonal one-pixel stroke falls apart
    into specks, which go either way. The opening is in pixels, so a thin structure of a
    downsized copy can vanish where its source's survives (measured: resize recall 1.00 on the
    benchmark, BENCHMARKS.md "The audit's misses fixed")."""
    from scipy import ndimage

    labels, n = ndimage.label(fg)
    if n < 2:
        return fg
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    total = sizes[1:].sum()
    solid = np.zeros(n + 1, dtype=bool)
    solid[np.unique(labels[ndimage.binary_opening(fg, structure=np.ones((3, 3), dtype=bool))])] = True
    keep = solid & (sizes >= STRAY_FRACTION * total)
    keep[0] = False
    return keep[labels] if sizes[keep].sum() >= 0.5 * total else fg


def foreground_box(plane: np.ndarray) -> tuple[slice, slice]:
    """Robust bounding box (rows, columns) of a 2D image's foreground; the whole image if flat.

    The foreground is every pixel above the background class of a three-class Otsu split
    (:func:`_background_threshold`). Otsu's two classes put a faint body with the background
    where a bright lesion or skull dominates the histogram: the box shrank to that part, and a
    gamma change or a crop of the copy moved the split and framed another region (nine misses of
    the issue-16 benchmark's copies; one with three classes: BENCHMARKS.md, "The foreground above
    a background class").

    The box spans the 1st-99th percentiles of the foreground's rows and columns after its stray
    parts are left out (:func:`_main_foreground`). Without that, a one-pixel bright column along
    one edge of a Br35H slice (1.15 % of its foreground) pulled the box 41 pixels from its copy's,
    and the two straddled a fold (BENCHMARKS.md, "An independent audit of the default study's folds").
    """
    if plane.max() <= plane.min():
        return slice(None), slice(None)
    fg = _main_foreground(plane > _background_threshold(plane))
    if fg.sum() < 4:
        return slice(None), slice(None)
    r0, r1 = _robust_span(fg.sum(axis=1))
    c0, c1 = _robust_span(fg.sum(axis=0))
    if r1 - r0 < 2 or c1 - c0 < 2:
        return slice(None), slice(None)
    return slice(r0, r1), slice(c0, c1)


def _resize_area(plane: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
                      .resize((size, size), Image.Resampling.BOX), dtype=np.float64)


def _project(volume: np.ndarray) -> np.ndarray:
    """Mean of a (z, y, x) volume over its foreground slices (slices with foreground voxels)."""
    fg = volume > _otsu(volume)
    per_slice = fg.reshape(len(volume), -1).sum(axis=1)
    if per_slice.sum() == 0:
        return volume.mean(axis=0)
    z0, z1 = _robust_span(per_slice)
    return volume[z0:z1].mean(axis=0)


def _plane(array: np.ndarray) -> np.ndarray:
    """The 2D plane a signature is computed on: the image, or a volume's foreground mean projection."""
    plane = np.asarray(array, dtype=np.float64)
    if plane.ndim == 3:
        plane = _project(plane)
    if plane.ndim != 2:
        raise ValueError(f"an image must be 2D or 3D, got shape {array.shape}")
    if not np.isfinite(plane).all():
        raise ValueError("the image has NaN or infinite pixel values")
    return plane


def _box_thumbnail(plane: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    thumb = _resize_area(plane[rows, cols], THUMB).ravel()
    ranks = np.empty(thumb.size)
    order = np.argsort(thumb, kind="stable")
    ranks[order] = np.arange(thumb.size)
    # ties (flat regions) share their mean rank, so equal pixels stay equal
    _, inverse, counts = np.unique(thumb, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, ranks) / counts)[inverse]
    return (ranks / (thumb.size - 1)).reshape(THUMB, THUMB)


def thumbnail(array: np.ndarray) -> np.ndarray:
    """The framing- and intensity-normalised ``THUMB`` x ``THUMB`` thumbnail (ranks in [0, 1])."""
    plane = _plane(array)
    return _box_thumbnail(plane, *foreground_box(plane))


def _coefficients(thumb: np.ndarray) -> np.ndarray:
    from scipy.fft import dctn

    return dctn(thumb - 0.5, norm="ortho")[:BLOCK, :BLOCK]


_WEIGHTS = np.left_shift(np.uint64(1), np.arange(N_BITS, dtype=np.uint64))


def _pack(bits: np.ndarray) -> np.uint64:
    flat = bits.ravel().astype(bool).copy()
    flat[0] = False  # DC: constant after equalisation
    return np.uint64(np.bitwise_or.reduce(_WEIGHTS[flat])) if flat.any() else np.uint64(0)


def image_hash(array: np.ndarray) -> int:
    """The 64-bit near-duplicate hash of an original image (2D, or 3D as (z, y, x)).

    Raises
    ------
    ValueError
        If the array is not 2D/3D or has non-finite values.
    """
    return int(_pack(_coefficients(thumbnail(array)) > 0))


def format_hash(value: int) -> str:
    return f"{HASH_VERSION}:{int(value):016x}"


def _who(case_ids, i: int) -> str:
    """How an error names row ``i`` of a case table: its case id when known."""
    return f"case {case_ids[i]!r}" if case_ids is not None else f"row {i}"


def parse_hashes(values, name: str = "dup_hash", case_ids=None) -> np.ndarray:
    """``dq3:<16 hex>`` strings to uint64; a malformed one raises ValueError naming the case."""
    out = np.empty(len(values), dtype=np.uint64)
    for i, text in enumerate(values):
        prefix, _, digits = str(text).partition(":")
        try:
            if prefix != HASH_VERSION or len(digits) != 16:
                raise ValueError
            out[i] = np.uint64(int(digits, 16))
        except ValueError:
            who = _who(case_ids, i)
            raise ValueError(f"{who}: column '{name}' = {text!r} is not a '{HASH_VERSION}:' + 16 hex digit "
                             "near-duplicate hash; rebuild the case index with this radaug version") from None
    return out


def signature(array: np.ndarray) -> str:
    """:func:`image_hash` as stored in the case index, e.g. ``dq3:8f3a...``."""
    return format_hash(image_hash(array))


# ---------------------------------------------------------------- dihedral group


def _bit_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.arange(N_BITS) // BLOCK  # row (vertical) frequency of each bit
    v = np.arange(N_BITS) % BLOCK  # column (horizontal) frequency
    odd_v = np.uint64(np.bitwise_or.reduce(_WEIGHTS[(v % 2 == 1)]))  # negated by a left-right mirror
    odd_u = np.uint64(np.bitwise_or.reduce(_WEIGHTS[(u % 2 == 1)]))  # negated by an up-down mirror
    transpose = v * BLOCK + u  # bit i goes to position transpose[i]
    return np.array(odd_v), np.array(odd_u), transpose


_ODD_V, _ODD_U, _TRANSPOSE = _bit_maps()
_DC = np.uint64(1)


def _transpose_bits(h: np.ndarray) -> np.ndarray:
    out = np.zeros_like(h)
    for i, j in enumerate(_TRANSPOSE):
        if i != j:
            out |= ((h >> np.uint64(i)) & np.uint64(1)) << np.uint64(j)
        else:
            out |= h & _WEIGHTS[i]
    return out


def dihedral_variants(hashes: np.ndarray) -> np.ndarray:
    """The hashes of the 8 flips/90-degree rotations of each image, shape (8, N); row 0 is the identity.

    Exact: mirroring negates the odd-frequency DCT coefficients along that axis
    (their sign bits flip; a coefficient of exactly zero is the only exception)
    and transposing transposes the coefficient block.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    keep = ~_DC
    lr = (h ^ _ODD_V) & keep
    ud = (h ^ _ODD_U) & keep
    both = (h ^ _ODD_V ^ _ODD_U) & keep
    base = [h, lr, ud, both]
    return np.stack(base + [_transpose_bits(x) for x in base])


def dihedral_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of each pair ``(a[k], b[k])`` at the best of the 8 flips/rotations of ``a[k]``."""
    b = np.asarray(b, dtype=np.uint64)
    if not b.size:
        return np.zeros(0, dtype=np.int64)
    return np.bitwise_count(dihedral_variants(a) ^ b[None, :]).min(axis=0).astype(np.int64)


# ---------------------------------------------------------------- pair search


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def _flip_masks(width: int, radius: int) -> np.ndarray:
    """All ``width``-bit masks with at most ``radius`` bits set (the Hamming ball around 0)."""
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


MAX_TABLE_BITS = 20  # widest block of a dense bucket table (2^20 buckets: 16 MiB of counts and offsets)
LOOKUP_COST = 2.5  # a bucket lookup costs about as much as 2.5 candidate entries (measured, BENCHMARKS.md)
CANDIDATE_BUDGET = 1 << 22  # about this many candidate entries per query chunk (a few hundred MiB at most)


def _ball_size(width: int, radius: int) -> int:
    return sum(comb(width, r) for r in range(min(radius, width) + 1))


def _search_plan(n: int, max_bits: int) -> tuple[list[tuple[int, int, int]], float]:
    """Blocks ``(lo, hi, radius)`` of the multi-index search of ``n`` hashes, and its expected work per query.

    Generalised pigeonhole (Norouzi et al. 2012): cut the 64 bits into blocks and
    give block i a radius r_i (-1: the block is not looked up). If
    ``sum(r_i + 1) > max_bits``, two hashes within ``max_bits`` agree within r_i
    bits on some block i (else they would differ in at least ``sum(r_i + 1)``
    bits). The radii are spread evenly (wider blocks first), which keeps the
    Hamming balls small: 4 blocks of 16 bits at 8 bits need radii 2, 1, 1, 1 (188
    lookups a query), not 2, 2, 2, 2 (548). Of 3 to 8 near-equal blocks, the
    plan with the least expected work for uniform hashes (lookups plus bucket
    entries, ``ball * (LOOKUP_COST + n / 2^width)``, in candidate entries) is taken: 4 blocks of 16 bits at
    100,000 hashes, 5 of 12-13 bits at 30,000. If even that exceeds ``n``, a plain
    scan (one block of width 0: every hash is a candidate) is cheaper.
    """
    best, best_cost = [(0, 0, 0)], float(n)
    for m in range(3, 9):
        edges = np.linspace(0, N_BITS, m + 1).round().astype(int)
        widths = np.diff(edges)
        if widths.max() > MAX_TABLE_BITS:
            continue
        base, extra = divmod(int(max_bits) + 1, m)
        radii = np.full(m, base - 1)
        radii[np.argsort(-widths, kind="stable")[:extra]] += 1
        if (radii >= widths).any():
            continue  # a block would be looked up whole: the scan does that with less work
        cost = sum(_ball_size(w, r) * (LOOKUP_COST + n / 2.0 ** w) for w, r in zip(widths, radii) if r >= 0)
        if cost < best_cost:
            best, best_cost = [(int(lo), int(hi), int(r)) for lo, hi, r in zip(edges[:-1], edges[1:], radii)
                               if r >= 0], cost
    return best, best_cost


class _BucketTable:
    """Hashes sorted by one block's key, with dense bucket offsets: a key's entries are one contiguous run.

    A counting sort (``np.bincount`` over the ``2^width`` keys) instead of
    ``np.searchsorted``: a lookup is two array reads, whatever the table size.
    Memory: 12 bytes an entry (the sorted hashes and their int32 row numbers).
    """

    def __init__(self, hashes: np.ndarray, lo: int, hi: int, radius: int):
        self.lo, self.mask = np.uint64(lo), np.uint64((1 << (hi - lo)) - 1)
        keys = self.keys(hashes)
        self.index = np.int32 if len(hashes) < 2**31 else np.int64
        narrow = keys.astype(np.uint16) if hi - lo <= 16 else keys  # numpy sorts 16-bit keys by radix sort
        self.order = np.argsort(narrow, kind="stable").astype(self.index)  # within a bucket: ascending row
        self.sorted = hashes[self.order]
        self.counts = np.bincount(keys, minlength=1 << (hi - lo))
        self.starts = np.cumsum(self.counts) - self.counts
        self.flips = _flip_masks(hi - lo, radius).astype(np.int64)

    def keys(self, hashes: np.ndarray) -> np.ndarray:
        return ((hashes >> self.lo) & self.mask).astype(np.int64)

    def near(self, queries: np.ndarray, max_bits: int, counts: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entries whose key is within the block radius of a query's key and whose hash is within ``max_bits``.

        Returns ``(owner, row, distance)``: ``owner`` indexes ``queries``, ``row`` the hashes the table was built from.
        The work is one pass of a few numpy operations over the candidate entries. ``counts``
        (per bucket, at most ``self.counts``) looks at the first entries of each bucket only:
        as a bucket is in ascending row order, those of the rows below some bound.
        """
        qk = self.keys(queries)[:, None] ^ self.flips[None, :]
        counts = (self.counts if counts is None else counts)[qk].ravel()
        ends = np.cumsum(counts)
        total = int(ends[-1]) if len(ends) else 0
        # run r covers table positions starts[qk[r]] .. + counts[r] - 1, i.e. pos = t + shift[r]
        pos = np.repeat(self.starts[qk].ravel() - (ends - counts), counts)
        pos += np.arange(total)
        x = self.sorted[pos]
        x ^= np.repeat(np.repeat(queries, len(self.flips)), counts)
        hit = np.flatnonzero(_popcount(x) <= max_bits)
        d = _popcount(x[hit])
        owner = np.searchsorted(ends, hit, side="right") // len(self.flips)
        return owner, self.order[pos[hit]].astype(np.int64), d.astype(np.int64)


def near_duplicate_pairs(hashes, max_bits: int, *, dihedral: bool = True,
                         chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) whose hashes differ in at most ``max_bits`` bits (at the best flip/rotation).

    Multi-index hashing (:func:`_search_plan`): the 64 bits are cut into blocks
    with radii such that a pair within ``max_bits`` agrees within its block's
    radius on at least one block; each (flip/rotation of a) distinct hash looks
    up, in each block's bucket table (:class:`_BucketTable`), the keys within that
    radius, and each such candidate is checked on all 64 bits for that
    flip/rotation. Exact: the same pairs and distances as :func:`brute_force_pairs`.

    Work is proportional to the candidates (pairs agreeing within the radius on
    some block; each pair looked for from one side only when the DC bit is clear,
    as in every :func:`image_hash`), memory to N plus one chunk's candidates (about
    ``CANDIDATE_BUDGET`` entries) plus the pairs found; exact duplicates are
    searched once.

    Parameters
    ----------
    hashes
        uint64 hashes (:func:`image_hash`), or anything :func:`numpy.asarray` turns into them.
    max_bits
        Hamming radius (0-64).
    dihedral
        Compare at the best of the 8 flips/90-degree rotations (:func:`dihedral_variants`).
    chunk
        Most distinct hashes queried at once (fewer when the plan expects many candidates each).

    Returns
    -------
    pairs, distances
        ``pairs`` (K, 2) int64 sorted lexicographically, ``distances`` (K,) int64.
    """
    if not 0 <= int(max_bits) <= N_BITS:
        raise ValueError(f"max_bits must be in 0..{N_BITS}, got {max_bits}")
    max_bits = int(max_bits)
    hashes = np.asarray(hashes, dtype=np.uint64).ravel()
    unique, inverse = np.unique(hashes, return_inverse=True)
    n_unique = len(unique)
    variants = dihedral_variants(unique) if dihedral else unique[None, :]
    plan, per_query = _search_plan(n_unique, max_bits)
    tables = [_BucketTable(unique, lo, hi, r) for lo, hi, r in plan]
    # With the DC bit clear everywhere (every dup_hash) a flip/rotation is an isometry, the
    # distance is symmetric and each pair is found from its later hash: a query looks only at
    # the hashes before it (a prefix of every bucket), half the work. Else both ways round.
    symmetric = not dihedral or not (unique & _DC).any()
    seen = [np.zeros_like(t.counts) for t in tables]  # per bucket: entries of the rows already queried
    step = int(max(1, min(chunk, CANDIDATE_BUDGET // max(per_query * len(variants), 1))))
    found = []
    for start in range(0, n_unique, step):
        stop = min(start + step, n_unique)
        if symmetric:
            for table, count in zip(tables, seen):
                count += np.bincount(table.keys(unique[start:stop]), minlength=len(count))
        codes = []
        for variant in variants:
            q = variant[start:stop]
            for table, count in zip(tables, seen):
                owner, b, _ = table.near(q, max_bits, count if symmetric else None)
                a = owner + start
                keep = b < a if symmetric else a != b
                codes.append(np.minimum(a, b)[keep] * n_unique + np.maximum(a, b)[keep])
        if codes:
            found.append(np.unique(np.concatenate(codes)))
    code = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    a, b = code // n_unique, code % n_unique
    # the distance at the best variant, either way round (a variant clears the DC bit, so the
    # two directions can differ by that bit for hashes that set it)
    d = np.min(np.stack([_popcount(v[a] ^ unique[b]) for v in variants]
                        + [_popcount(v[b] ^ unique[a]) for v in variants]), axis=0).astype(np.int64)
    return _rows_of_unique_pairs(inverse, a, b, d)


def _rows_of_unique_pairs(inverse: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of distinct hashes back to pairs of rows; rows with equal hashes pair at distance 0.

    Each unique pair (a, b) yields every (row of a, row of b); each hash
    held by s rows yields its s (s - 1) / 2 pairs of rows. Sorted lexicographically.
    """
    n_unique = int(inverse.max()) + 1 if len(inverse) else 0
    rows = np.argsort(inverse, kind="stable")  # rows grouped by hash, ascending within
    size = np.bincount(inverse, minlength=n_unique)
    first = np.cumsum(size) - size
    same = np.flatnonzero(size > 1)
    ua = np.concatenate([same, a]).astype(np.int64)
    ub = np.concatenate([same, b]).astype(np.int64)
    dist = np.concatenate([np.zeros(len(same), dtype=np.int64), d])
    n_cross = size[ua] * size[ub]
    pair = np.repeat(np.arange(len(ua)), n_cross)
    t = np.arange(len(pair)) - np.repeat(np.cumsum(n_cross) - n_cross, n_cross)
    i = rows[first[ua[pair]] + t // size[ub[pair]]]
    j = rows[first[ub[pair]] + t % size[ub[pair]]]
    keep = (ua[pair] != ub[pair]) | (i < j)  # within one hash: each pair of rows once
    i, j, dist = np.minimum(i, j)[keep], np.maximum(i, j)[keep], dist[pair][keep]
    order = np.lexsort((j, i))
    return np.stack([i[order], j[order]], axis=1).astype(np.int64).reshape(-1, 2), dist[order]


def brute_force_pairs(hashes, max_bits: int, *, dihedral: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Reference O(N^2) search (tests and benchmark only)."""
    h = np.asarray(hashes, dtype=np.uint64)
    variants = dihedral_variants(h) if dihedral else h[None, :]
    d = np.min(np.stack([_popcount(v[:, None] ^ h[None, :]) for v in variants]), axis=0)
    d = np.minimum(d, d.T)
    i, j = np.nonzero(np.triu(d <= max_bits, k=1))
    order = np.lexsort((j, i))
    return np.stack([i[order], j[order]], axis=1).astype(np.int64), d[i[order], j[order]].astype(np.int64)


# ---------------------------------------------------------------- ground truth (benchmark and tests)

DIHEDRAL_NAMES = ("flip_lr", "flip_ud", "rot90", "rot180", "rot270", "transpose", "antitranspose")
TRANSFORMS = DIHEDRAL_NAMES + ("crop", "reframe", "resize", "contrast", "gamma", "window", "jpeg", "noise",
                               "combined")


def _dihedral(a: np.ndarray, name: str) -> np.ndarray:
    return {
        "flip_lr": lambda x: x[:, ::-1], "flip_ud": lambda x: x[::-1], "rot90": lambda x: np.rot90(x, 1),
        "rot180": lambda x: np.rot90(x, 2), "rot270": lambda x: np.rot90(x, 3), "transpose": lambda x: x.T,
        "antitranspose": lambda x: np.rot90(x, 2).T,
    }[name](a)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32)


def _resize_to(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F")
                      .resize((max(shape[1], 8), max(shape[0], 8)), Image.Resampling.BILINEAR), dtype=np.float32)


def transform(image: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """A labelled near-duplicate of a 2D image (intensities 0-255): one of :data:`TRANSFORMS`, random strength.

    Strengths: crop removes 2-10 % of each side; reframe pads each side with
    0-25 % background; resize scales by 0.5-2 (aspect 0.9-1.1); contrast
    ``a x + b`` (a 0.6-1.4, b -30..30, clipped to 0-255); gamma 0.6-1.7;
    window clips to the 0-10th and 90-100th percentiles and stretches; JPEG
    quality 30-90; noise Gaussian with SD 1-4 % of 255; combined = a random flip
    or rotation, crop, resize, gamma and JPEG.
    """
    a = np.asarray(image, dtype=np.float32)
    h, w = a.shape
    if name in DIHEDRAL_NAMES:
        return np.ascontiguousarray(_dihedral(a, name))
    if name == "crop":
        t, b, l, r = (rng.uniform(0.02, 0.10, 4) * [h, h, w, w]).astype(int)
        return a[t:h - b, l:w - r].copy()
    if name == "reframe":
        t, b, l, r = (rng.uniform(0.0, 0.25, 4) * [h, h, w, w]).astype(int)
        return np.pad(a, ((t, b), (l, r)), constant_values=float(a.min()))
    if name == "resize":
        s = rng.uniform(0.5, 2.0)
        aspect = rng.uniform(0.9, 1.1)
        return _resize_to(a, (int(round(h * s * aspect)), int(round(w * s))))
    if name == "contrast":
        return np.clip(rng.uniform(0.6, 1.4) * a + rng.uniform(-30, 30), 0, 255).astype(np.float32)
    if name == "gamma":
        return (255.0 * (a / 255.0) ** rng.uniform(0.6, 1.7)).astype(np.float32)
    if name == "window":
        lo, hi = np.percentile(a, [rng.uniform(0, 10), rng.uniform(90, 100)])
        return (255.0 * np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)).astype(np.float32)
    if name == "jpeg":
        return _jpeg(a, int(rng.integers(30, 91)))
    if name == "noise":
        return np.clip(a + rng.normal(0, rng.uniform(0.01, 0.04) * 255, a.shape), 0, 255).astype(np.float32)
    if name == "combined":
        a = transform(a, DIHEDRAL_NAMES[int(rng.integers(len(DIHEDRAL_NAMES)))], rng)
        for step in ("crop", "resize", "gamma", "jpeg"):
            a = transform(a, step, rng)
        return a
    raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")


# ---------------------------------------------------------------- crop windows and verification
#
# A crop that cuts into the anatomy moves the foreground box, so the full-frame
# hashes of an image and of its crop differ in many bits. The crop is, however,
# (close to) a *window* of the original's foreground box. Each image therefore
# also gets the hashes of a small grid of windows of its thumbnail (each side cut
# by one of ``WINDOW_CUTS``); every image's full-frame hash, at each of the 8
# flips/rotations, is looked up among all windows of all other images. A hash hit
# is only a candidate: it is grouped when the band-pass correlation of the aligned
# thumbnails (the matching window vs the other image's foreground box, at the
# matching flip/rotation) reaches ``min_similarity``. The correlation looks at
# every pixel, so it keeps precision where 64 bits alone would not.

THUMB_VERSION = "dt4"
STORED = 64  # side of the stored thumbnail (``dup_thumb``)
MARGIN = 0.1  # the stored thumbnail frames the foreground box widened by this fraction of its size per side
WINDOW_CUTS = (0.0, 0.1, 0.2)
BLOCK_BITS = 16  # multi-index block width of the window search
BLOCK_RADIUS = 2  # a candidate agrees within this many bits on one block: pigeonhole-complete to 4 * 3 - 1 = 11 bits


def framed_thumbnail(array: np.ndarray) -> np.ndarray:
    """The stored thumbnail: ``STORED`` x ``STORED`` ranks of the foreground box widened by ``MARGIN`` per side.

    The window rule cuts windows of one image's box and compares them with another
    image's full frame at ``THUMB`` x ``THUMB``. Two things set how close a crop and
    its source can come (measured on 10-20 % crops of Br35H images, BENCHMARKS.md):

    * *resolution*: a window of 60 % of a 32-pixel thumbnail is 19 pixels blown up
      to 32, blurred against the crop's own thumbnail (at the exact framing, band-pass
      similarity 0.88-0.94 where the same pixels at full resolution give 1.00); cut
      from 64 pixels, the window is resampled down, not up;
    * *reach*: a crop's robust foreground box (1st-99th percentiles of the foreground)
      is not always inside its source's, as cutting the anatomy moves those percentiles
      (by up to 4 % of the box, measured); the margin lets a window reach past the
      source's box.

    Outside the image the frame holds the image's minimum (the background). The area
    average is exact at fractional edges, so the box is at :data:`MARGIN` ``/ (1 + 2 MARGIN)``
    of the frame on every side.
    """
    plane = _plane(array)
    return _framed(plane, foreground_box(plane))


def _framed(plane: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    matrices = []
    for span, length in zip(box, plane.shape):
        start, stop, _ = span.indices(length)
        widen = MARGIN * (stop - start)
        matrices.append(_window_matrices((start - widen) / length, (length - stop - widen) / length, length, STORED)[0])
    low, span = plane.min(), max(float(np.ptp(plane)), 1e-12)
    framed = matrices[0] @ ((plane - low) / span) @ matrices[1].T  # outside the image: 0, the minimum
    # rounded, so that a flat region (the background, the frame past the image) stays one run of
    # tied ranks instead of being ranked by the rounding errors of the resampling
    return _ranks(np.round(framed, 9))


def encode_thumbnail(thumb: np.ndarray) -> str:
    """A stored (``STORED`` x ``STORED``) rank thumbnail as in the case index: ``dt4:`` + base64 of uint8 levels."""
    import base64

    levels = np.clip(np.rint(np.asarray(thumb, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    if levels.shape != (STORED, STORED):
        raise ValueError(f"a stored thumbnail must be {STORED} x {STORED}, got {levels.shape}")
    return f"{THUMB_VERSION}:" + base64.b64encode(levels.tobytes()).decode("ascii")


def decode_thumbnails(values, name: str = "dup_thumb", case_ids=None) -> np.ndarray:
    """Stored thumbnails (:func:`encode_thumbnail`) to an (N, STORED, STORED) float array in [0, 1].

    Raises
    ------
    ValueError
        Naming the case of a malformed value.
    """
    import base64
    import binascii

    out = np.empty((len(values), STORED, STORED), dtype=np.float64)
    for i, text in enumerate(values):
        prefix, _, body = str(text).partition(":")
        try:
            if prefix != THUMB_VERSION:
                raise ValueError
            raw = np.frombuffer(base64.b64decode(body, validate=True), dtype=np.uint8)
            if raw.size != STORED * STORED:
                raise ValueError
        except (ValueError, binascii.Error):
            who = _who(case_ids, i)
            raise ValueError(f"{who}: column '{name}' is not a '{THUMB_VERSION}:' near-duplicate thumbnail; "
                             "rebuild the case index with this radaug version") from None
        out[i] = raw.reshape(STORED, STORED) / 255.0
    return out


def thumbnail_signature(array: np.ndarray) -> tuple[str, str]:
    """``(dup_hash, dup_thumb)`` of an original image: its hash and its stored (framed) thumbnail."""
    plane = _plane(array)  # projected, and its foreground box found, once for both
    box = foreground_box(plane)
    thumb = _box_thumbnail(plane, *box)
    return format_hash(int(_pack(_coefficients(thumb) > 0))), encode_thumbnail(_framed(plane, box))


def window_cuts(levels=WINDOW_CUTS) -> np.ndarray:
    """All (top, bottom, left, right) side cuts from ``levels``, shape (W, 4); row 0 is the full frame."""
    grid = np.array(np.meshgrid(levels, levels, levels, levels, indexing="ij")).reshape(4, -1).T
    grid = grid[np.lexsort(grid.T[::-1])]
    return grid[(grid[:, 0] + grid[:, 1] < 0.9) & (grid[:, 2] + grid[:, 3] < 0.9)]


def _window_matrices(lo, hi, n: int = THUMB, out: int | None = None) -> np.ndarray:
    """(K, out, n) matrices that area-resample spans of an n-pixel axis to ``out`` pixels (default n).

    Span k leaves out the fraction ``lo[k]`` at the start and ``hi[k]`` at the end
    (negative: the span reaches past the axis, where it reads zeros). Exact area
    averaging of piecewise-constant pixels: each weight is the overlap of an input
    pixel with an output pixel, over the output pixel's width. Only the few input
    pixels an output pixel can touch (its width rounded up, plus one) are computed;
    the rest are zeros (the same numbers as the formula over all n pixels, 3x faster
    for the refinement's 64 -> 32 windows).
    """
    out = n if out is None else out
    lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(hi, dtype=np.float64))
    t = np.linspace(0.0, 1.0, out + 1)
    edges = (lo[:, None] + (1 - hi - lo)[:, None] * t[None, :]) * n  # (K, out + 1)
    start, stop = edges[:, :-1, None], edges[:, 1:, None]
    taps = min(n, int(np.ceil(np.max(stop - start, initial=0.0))) + 1)  # pixels one output pixel can touch
    first = np.clip(np.floor(edges[:, :-1]), 0, n - taps).astype(np.intp)  # (K, out)
    pixel = first[:, :, None] + np.arange(taps)
    overlap = np.minimum(pixel + 1.0, stop) - np.maximum(pixel.astype(np.float64), start)
    matrices = np.zeros((len(lo), out, n))
    at = (np.arange(len(lo) * out, dtype=np.intp) * n).reshape(len(lo), out, 1) + pixel  # flat indices
    matrices.reshape(-1)[at] = np.maximum(overlap, 0.0) / (stop - start)
    return matrices


def _resample_axis(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, out: int) -> np.ndarray:
    """Area average of the last axis of each x[k] (K, m, n) over ``[lo[k] n, (1 - hi[k]) n]``, to ``out`` pixels.

    The same numbers as ``x @ _window_matrices(lo, hi, n, out).swapaxes(1, 2)`` for spans within
    the axis, from the running sum: linear between pixel edges, read at the new edges and differenced
    (read by flat indices: ``np.take_along_axis`` gives the same numbers for twice the CPU).
    """
    k, m, n = x.shape
    running = np.zeros((k, m, n + 1))
    np.cumsum(x, axis=-1, out=running[..., 1:])
    t = np.linspace(0.0, 1.0, out + 1)
    edges = np.clip((lo[:, None] + (1 - hi - lo)[:, None] * t[None, :]) * n, 0.0, n)  # (K, out + 1)
    base = np.minimum(np.floor(edges).astype(np.intp), n - 1)[:, None, :]
    frac = (edges[:, None, :] - base)
    at = (np.arange(k * m, dtype=np.intp) * (n + 1)).reshape(k, m, 1) + base  # flat index of each edge's pixel
    flat = running.reshape(-1)
    below = flat.take(at)
    at_edges = below + (flat.take(at + 1) - below) * frac
    return (at_edges[..., 1:] - at_edges[..., :-1]) / (edges[:, 1:] - edges[:, :-1])[:, None, :]


def _frame_fractions(cuts: np.ndarray) -> np.ndarray:
    """Cuts of the foreground box (``-MARGIN`` .. 1) as fractions of the stored frame."""
    return (MARGIN + np.asarray(cuts, dtype=np.float64)) / (1 + 2 * MARGIN)


def crop_thumbnails(thumbs: np.ndarray, cuts: np.ndarray, *, equalise: bool = True) -> np.ndarray:
    """``THUMB`` x ``THUMB`` window of each stored thumbnail (K, STORED, STORED) at its own cuts (K, 4).

    Cuts (top, bottom, left, right) are fractions of the foreground box; 0 is the box
    itself (the full frame of :func:`thumbnail`), a negative cut down to ``-MARGIN``
    reaches into the stored margin. Rank-equalised unless ``equalise`` is false. The
    window rule's verification takes the windows un-equalised: they are resampled from
    rank thumbnails already, so an increasing intensity map changes them only through
    the interpolation.
    """
    cuts = np.asarray(cuts, dtype=np.float64).reshape(-1, 4)
    if (cuts < -MARGIN - 1e-9).any() or (cuts[:, 0] + cuts[:, 1] >= 1).any() or (cuts[:, 2] + cuts[:, 3] >= 1).any():
        raise ValueError(f"crop cuts must be at least -MARGIN ({-MARGIN}) and leave a span on each axis")
    f = _frame_fractions(cuts)
    columns_done = _resample_axis(np.asarray(thumbs, dtype=np.float64), f[:, 2], f[:, 3], THUMB)
    out = np.swapaxes(_resample_axis(np.swapaxes(columns_done, 1, 2), f[:, 0], f[:, 1], THUMB), 1, 2)
    return _ranks(out) if equalise else out


def _ranks(x: np.ndarray) -> np.ndarray:
    """Tie-averaged ranks in [0, 1] over the last two axes (the histogram equalisation of :func:`thumbnail`).

    Vectorised over the leading axes: one sort, and each run of equal values gets its mean position.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-2] * x.shape[-1])
    m, size = flat.shape
    order = np.argsort(flat, axis=-1)  # any order within a run of ties: the run shares its mean rank
    s = np.take_along_axis(flat, order, axis=-1)
    start = np.ones((m, size), dtype=bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    run = np.cumsum(start.ravel()) - 1  # run id of each sorted position
    pos = np.tile(np.arange(size, dtype=np.float64), m)
    first = pos[start.ravel()]
    mean_pos = first + (np.bincount(run) - 1) / 2.0
    ranks = np.empty((m, size))
    np.put_along_axis(ranks, order, mean_pos[run].reshape(m, size), axis=-1)
    return (ranks / (size - 1)).reshape(x.shape)


def window_thumbnails(thumbs: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Rank-equalised window thumbnails, shape (N, W, THUMB, THUMB), of (N, STORED, STORED) stored thumbnails."""
    f = _frame_fractions(np.asarray(cuts, dtype=np.float64).reshape(-1, 4))
    rows = _window_matrices(f[:, 0], f[:, 1], STORED, THUMB)
    cols = _window_matrices(f[:, 2], f[:, 3], STORED, THUMB)
    return _ranks(np.matmul(np.matmul(rows[None], np.asarray(thumbs)[:, None]), np.swapaxes(cols, 1, 2)[None]))


def thumbnail_hashes(thumbs: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each rank thumbnail of an (..., THUMB, THUMB) array (as :func:`image_hash`)."""
    from scipy.fft import dctn

    coef = dctn(np.asarray(thumbs) - 0.5, axes=(-2, -1), norm="ortho")[..., :BLOCK, :BLOCK]
    bits = (coef > 0).reshape(*coef.shape[:-2], N_BITS)
    bits[..., 0] = False
    return np.bitwise_or.reduce(np.where(bits, _WEIGHTS, np.uint64(0)), axis=-1)


def window_hashes(thumbs: np.ndarray, cuts: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
    """Hashes (N, W) of the :func:`window_cuts` windows of each thumbnail; column 0 is the full frame."""
    cuts = window_cuts() if cuts is None else cuts
    out = np.empty((len(thumbs), len(cuts)), dtype=np.uint64)
    for start in range(0, len(thumbs), chunk):
        out[start:start + chunk] = thumbnail_hashes(window_thumbnails(thumbs[start:start + chunk], cuts))
    return out


def _dihedral_index(a: np.ndarray, k: int) -> np.ndarray:
    """Variant ``k`` of :func:`dihedral_variants` applied to the last two axes of an array."""
    if k & 1:
        a = a[..., :, ::-1]
    if k & 2:
        a = a[..., ::-1, :]
    if k & 4:
        a = np.swapaxes(a, -1, -2)
    return a


SIMILARITY_SIGMAS = (1.0, 4.0)  # difference of Gaussians, in thumbnail pixels


@lru_cache(maxsize=8)
def _gaussian_operator(n: int, sigma: float) -> np.ndarray:
    """(n, n) matrix of a 1D Gaussian filter (scipy's ``gaussian_filter1d``, mode ``nearest``)."""
    from scipy.ndimage import gaussian_filter1d

    operator = gaussian_filter1d(np.eye(n), sigma, axis=0, mode="nearest")
    operator.setflags(write=False)  # shared by every caller through the cache
    return operator


def _similarity_vectors(x: np.ndarray) -> np.ndarray:
    """Thumbnails (..., n, n) to unit vectors whose dot products are :func:`similarity`.

    The difference of Gaussians is applied as two small matrix products per side (the filters
    are linear): equal to ``scipy.ndimage.gaussian_filter`` with mode ``nearest``, and several
    times faster on a stack of 32 x 32 thumbnails (verification's coarse pass scores 81 windows of
    each image; its refinement applies the same filters through :class:`_FixedAxis`).
    """
    x = np.asarray(x, dtype=np.float64)
    band = np.zeros_like(x)
    for sign, sigma in zip((1.0, -1.0), SIMILARITY_SIGMAS):
        along_rows, along_cols = (_gaussian_operator(n, float(sigma)) for n in x.shape[-2:])
        band += sign * (along_rows @ x @ along_cols.T)
    r = band.reshape(*x.shape[:-2], -1)
    r = r - r.mean(axis=-1, keepdims=True)
    return r / np.maximum(np.linalg.norm(r, axis=-1, keepdims=True), 1e-12)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Band-pass correlation of paired rank thumbnails (..., THUMB, THUMB).

    The Pearson correlation of the difference of Gaussians (``SIMILARITY_SIGMAS``:
    1 and 4 thumbnail pixels) of the two rank thumbnails. The fine Gaussian forgives
    noise, JPEG blocks and the sub-pixel blur of a window cut from a thumbnail; taking
    away the coarse one removes what every slice of one anatomy shares (a bright
    ellipse on a dark field), so two different brain slices correlate far less than two
    copies of one (measured: BENCHMARKS.md, README "Near-duplicates"). Full-frame
    thumbnails are rank thumbnails, so the measure is invariant to increasing intensity
    maps; crop windows of them (:func:`crop_thumbnails`) are so up to their interpolation.
    """
    return np.sum(_similarity_vectors(a) * _similarity_vectors(b), axis=-1)


def window_candidates(hashes, windows, max_bits: int, *, block_radius: int = BLOCK_RADIUS,
                      chunk: int = 1024, queries=None) -> np.ndarray:
    """Candidate pairs of the window rule: some flip/rotation of image i's full-frame hash near a window of image j.

    A candidate is an ordered pair (i, j), i != j, with a variant ``k`` of
    ``hashes[i]`` (:func:`dihedral_variants`) and a window ``w`` of j such that
    the two agree within ``block_radius`` bits on at least one of the four
    16-bit blocks (the multi-index key) and within ``max_bits`` bits in all.
    Of each ordered pair and flip/rotation ``k``, the window ``w`` at the smallest distance is kept
    (ties: lowest w): the closest *variant* alone is not enough, as a left-right symmetric anatomy
    (an axial brain slice) can hash closer mirrored than as it is.

    Each block has a dense bucket table of all N x W window hashes
    (:class:`_BucketTable`, 12 bytes an entry); queries go in chunks sized so that
    one chunk's block matches stay near ``CANDIDATE_BUDGET`` entries. Memory:
    O(N W + one chunk + the candidates found). Work: one pass over the block
    matches, which grow as N^2 W (about 1 % of all query-window pairs on Br35H-like
    hashes, of which about 1 % are within ``max_bits``: BENCHMARKS.md).

    Parameters
    ----------
    hashes
        (N,) full-frame hashes (uint64).
    windows
        (N, W) window hashes (:func:`window_hashes`).
    chunk
        Most query images at once.
    queries
        Row numbers of the images to look up (default: all); the benchmark times a subset.

    Returns
    -------
    numpy.ndarray
        (K, 5) int64 rows ``i, j, k, w, distance`` sorted by i, j, k (up to 8 rows per pair).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    windows = np.asarray(windows, dtype=np.uint64)
    n, n_windows = windows.shape
    flat = windows.ravel()
    variants = dihedral_variants(hashes)
    tables = [_BucketTable(flat, lo, lo + BLOCK_BITS, block_radius) for lo in range(0, N_BITS, BLOCK_BITS)]
    per_query = len(variants) * sum(len(t.flips) for t in tables) * (LOOKUP_COST + len(flat) / 2.0 ** BLOCK_BITS)
    step = int(max(1, min(chunk, CANDIDATE_BUDGET // per_query)))
    found = []
    queries = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    for start in range(0, len(queries), step):
        q_idx = queries[start:start + step]
        rows = []
        for k, variant in enumerate(variants):
            q = variant[q_idx]
            for table in tables:
                owner, e, d = table.near(q, max_bits)
                i, j = q_idx[owner], e // n_windows
                keep = i != j
                rows.append(np.stack([i, j, np.full(len(i), k), e % n_windows, d], axis=1)[keep])
        rows = np.concatenate(rows)
        if len(rows):
            found.append(_best_per_pair(rows))
    if not found:
        return np.zeros((0, 5), dtype=np.int64)
    return np.concatenate(found).astype(np.int64, copy=False)


def _best_per_pair(rows: np.ndarray) -> np.ndarray:
    """Rows ``i, j, k, w, d``: the smallest (d, w) of each (i, j, k), sorted by i, j, k.

    Sorted by one packed int64 key (i, j, k, d, w) when it fits, about 5x faster than a
    five-key ``np.lexsort``; equal keys are equal rows, so their order does not matter.
    """
    if not len(rows):
        return rows
    lo = rows.min(axis=0)
    span = [int(x) for x in rows.max(axis=0) - lo + 1]  # i, j, k, w, d
    if np.prod([float(x) for x in span]) < 2.0**62:
        r = rows - lo
        key = (((r[:, 0] * span[1] + r[:, 1]) * span[2] + r[:, 2]) * span[4] + r[:, 4]) * span[3] + r[:, 3]
        order = np.argsort(key)
    else:
        order = np.lexsort((rows[:, 3], rows[:, 4], rows[:, 2], rows[:, 1], rows[:, 0]))
    rows = rows[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:, 0] != rows[:-1, 0]) | (rows[1:, 1] != rows[:-1, 1]) | (rows[1:, 2] != rows[:-1, 2])
    return rows[first]


def brute_force_window_candidates(hashes, windows, max_bits: int, *, block_radius: int = BLOCK_RADIUS) -> np.ndarray:
    """Reference O(N^2 W) version of :func:`window_candidates` (tests only)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    windows = np.asarray(windows, dtype=np.uint64)
    n, n_windows = windows.shape
    variants = dihedral_variants(hashes)
    rows = []
    for k in range(8):
        x = variants[k][:, None, None] ^ windows[None, :, :]  # (i, j, w)
        d = np.bitwise_count(x).astype(np.int64)
        block_ok = np.zeros(x.shape, dtype=bool)
        for lo in range(0, N_BITS, BLOCK_BITS):
            block_ok |= np.bitwise_count((x >> np.uint64(lo)) & np.uint64((1 << BLOCK_BITS) - 1)) <= block_radius
        i, j, w = np.nonzero(block_ok & (d <= max_bits))
        keep = i != j
        rows.append(np.stack([i[keep], j[keep], np.full(keep.sum(), k), w[keep], d[i, j, w][keep]], axis=1))
    rows = np.concatenate(rows) if rows else np.zeros((0, 5), dtype=np.int64)
    return _best_per_pair(rows.astype(np.int64)) if len(rows) else rows.astype(np.int64)


PROGRESS_EVERY = 60.0  # seconds between the window rule's progress lines in the split's log


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _run_chunks(task, n_chunks: int, threads: int) -> None:
    """``task(0) .. task(n_chunks - 1)``, on up to ``threads`` threads; a chunk's exception is re-raised.

    The pool's threads are the job's threads: BLAS (Snakemake sets it to the job's threads too)
    runs on one each, as in a one-thread job, instead of threads x threads on the job's cores.
    After a failure, queued chunks do not run.
    """
    pool_size = min(int(threads), n_chunks)
    if pool_size <= 1:
        for n_chunk in range(n_chunks):
            task(n_chunk)
        return
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    pool = ThreadPoolExecutor(max_workers=pool_size)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            list(pool.map(task, range(n_chunks)))  # list(): re-raises a chunk's exception
    finally:
        pool.shutdown(cancel_futures=True)


class _Progress:
    """Progress lines of a long verification (pairs done, time spent, an estimate of the rest).

    The window rule's cost grows with the square of the cohort (BENCHMARKS.md, issue 16): a
    few thousand 2D images keep the split busy for an hour, and without these lines its log
    would say nothing until the end. Thread-safe: chunks on the pool's threads report here.
    """

    def __init__(self, total: int, rule: str = "window rule", what: str = "candidate pairs verified"):
        self.total, self.done, self.rule, self.what = total, 0, rule, what
        self.start = self.last = time.monotonic()
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last < PROGRESS_EVERY or self.done >= self.total:
                return
            self.last = now
            spent = now - self.start
            log.info("%s: %d of %d %s (%.0f%%) in %s; about %s to go", self.rule, self.done, self.total, self.what, 100.0 * self.done / self.total, _duration(spent),
                     _duration(spent * (self.total - self.done) / self.done))


REFINE_STEP = 0.0125
REFINE_MARGIN = 0.6  # pairs whose best grid start is this far below the threshold are refined
REFINE_ROUNDS = 20  # up to 20 x 1.25 % = 25 % of the box per side from the grid window
# flips/rotations whose best grid window scores within this of the pair's best are starts too
# (0: the best only; 0.05 added 1.8 starts per Br35H negative pair and recalled nothing more)
START_MARGIN = 0.0


def _window_vectors(thumbs: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(N, W, THUMB * THUMB) float32 :func:`similarity` vectors of every grid window of each stored thumbnail."""
    n, n_cuts = len(thumbs), len(cuts)
    windows = crop_thumbnails(np.repeat(thumbs, n_cuts, axis=0), np.tile(cuts, (n, 1)), equalise=False)
    return _similarity_vectors(windows).astype(np.float32).reshape(n, n_cuts, -1)


def verify_candidates(thumbs: np.ndarray, candidates: np.ndarray, cuts: np.ndarray | None = None,
                      chunk: int = 256, rounds: int = REFINE_ROUNDS, refine: tuple[float, float] = (-1.0, 2.0),
                      threads: int = 1) -> np.ndarray:
    """Band-pass similarity (:func:`similarity`) of each candidate's image i against its image j, at the best pose.

    Verification is per ordered pair (i, j): the candidate's own flip/rotation
    ``k`` and grid window ``w`` only say that the pair is worth a look (rows of one
    pair get one value). For a pair:

    1. **Coarse**: image i's foreground box (``THUMB`` x ``THUMB`` from its stored
       thumbnail, :func:`crop_thumbnails`) at each of the 8 flips/rotations is
       scored against each :func:`window_cuts` grid window of image j (8 x 81 dot
       products of :func:`similarity` vectors; a window's vectors are computed once
       per image j in a chunk).
    2. **Starts**: of each flip/rotation, its best grid window; every flip/rotation
       whose best lies within ``START_MARGIN`` of the pair's best is a start, and so
       is each of the pair's candidate rows (its hash-matched ``k`` and ``w``).
    3. **Refinement** of each start when the pair's best lies in ``[refine[0],
       refine[1])``: up to ``rounds`` rounds of moving each side by ``REFINE_STEP``
       (of the box) in or out (out to ``-MARGIN``, into the stored margin) while the
       similarity grows, so a crop between two grid windows is compared at (about)
       its own framing. (A pair already above ``refine[1]`` stays above it.)

    The value is the best over the grid and the refined starts. Why not start from
    the hash's ``(k, w)`` alone: the closest hash window of a true crop can lie a grid step
    away from its framing, where the band-pass correlation is near that of unrelated
    images (0.19-0.29 measured) and a greedy refinement does not climb out; and the
    hash can match a wrong mirror of a symmetric slice while the right one misses the
    multi-index key (BENCHMARKS.md, issue 16).

    Chunks of pairs are independent and run on ``threads`` threads (numpy
    releases the GIL in the element-wise loops that take most of the time);
    each chunk computes exactly what it computes alone, so the values do not
    depend on ``threads``.
    """
    cuts = window_cuts() if cuts is None else np.asarray(cuts, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.size == 0:
        candidates = candidates.reshape(0, 5)
    if candidates.ndim != 2 or candidates.shape[1] != 5:
        raise ValueError(f"verify_candidates: candidates must be rows of (i, j, k, w, distance), got shape "
                         f"{candidates.shape}; pass window_candidates' output")
    pairs, inverse = np.unique(candidates[:, :2], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))  # by j: a chunk computes each j's windows once
    value = np.empty(len(pairs))
    rank = np.empty(len(pairs), dtype=np.int64)
    rank[order] = np.arange(len(order))
    row_rank = rank[inverse]  # each candidate row's pair, in chunk order
    rows_by_rank = np.argsort(row_rank, kind="stable")
    row_bounds = np.searchsorted(row_rank[rows_by_rank], np.arange(0, len(order) + chunk, chunk))
    n_chunks = -(-len(order) // chunk)
    pool_size = min(int(threads), n_chunks) if threads > 1 and n_chunks > 1 else 1
    if len(pairs):
        log.info("window rule: verifying %d candidate pairs (%d candidate rows) on %d thread(s)",
                 len(pairs), len(candidates), pool_size)
    progress = _Progress(len(pairs))

    def verify_chunk(n_chunk: int) -> None:
        start = n_chunk * chunk
        sel = order[start:start + chunk]
        own = candidates[rows_by_rank[row_bounds[n_chunk]:row_bounds[n_chunk + 1]]]  # the chunk's candidate rows
        own_c = rank[inverse[rows_by_rank[row_bounds[n_chunk]:row_bounds[n_chunk + 1]]]] - start
        i, j = pairs[sel, 0], pairs[sel, 1]
        frames = _similarity_vectors(crop_thumbnails(thumbs[i], np.zeros((len(i), 4)), equalise=False))
        full = np.stack([_dihedral_index(frames.reshape(-1, THUMB, THUMB), k) for k in range(8)], axis=1)
        full = full.reshape(len(i), 8, -1)  # (C, 8 flips/rotations, THUMB^2), unit vectors
        uj, j_at = np.unique(j, return_inverse=True)
        grid = np.matmul(full.astype(np.float32), _window_vectors(thumbs[uj], cuts)[j_at.ravel()].swapaxes(1, 2))
        best_w = grid.argmax(axis=2)  # (C, 8)
        best_k = grid.max(axis=2).astype(np.float64)
        best = best_k.max(axis=1)
        undecided = (best >= refine[0]) & (best < refine[1])
        todo_c, todo_k = np.nonzero((best_k >= best[:, None] - START_MARGIN) & undecided[:, None])
        todo_w = best_w[todo_c, todo_k]
        own_score = grid[own_c, own[:, 2], own[:, 3]]  # the candidates' own (k, w) are starts too, as before
        hash_start = undecided[own_c] & (own_score >= refine[0]) & (own_score < refine[1])
        todo_c = np.concatenate([todo_c, own_c[hash_start]])
        todo_k = np.concatenate([todo_k, own[hash_start, 2]])
        todo_w = np.concatenate([todo_w, own[hash_start, 3]])
        todo_c, todo_k, todo_w = np.unique(np.stack([todo_c, todo_k, todo_w]), axis=1)  # a pose once per pair
        if len(todo_c):
            best = np.maximum(best, _refine(full[todo_c, todo_k], thumbs[j[todo_c]], cuts[todo_w],
                                            grid[todo_c, todo_k, todo_w], rounds, owner=todo_c, n_owners=len(sel)))
        value[sel] = best  # chunks write disjoint rows
        progress.add(len(sel))

    _run_chunks(verify_chunk, n_chunks, pool_size)
    return value[inverse]


@lru_cache(maxsize=1)
def _band_operator() -> np.ndarray:
    """(2 THUMB, THUMB) stack ``[G_1^T; -G_4^T]`` of :data:`SIMILARITY_SIGMAS`' Gaussians (see :class:`_FixedAxis`)."""
    fine, coarse = (_gaussian_operator(THUMB, float(sigma)) for sigma in SIMILARITY_SIGMAS)
    operator = np.concatenate([fine.T, -coarse.T])
    operator.setflags(write=False)  # shared by every caller through the cache
    return operator


class _FixedAxis:
    """A refinement's windows with one axis' cuts held: that axis resampled and smoothed once, per start.

    The band of a window ``W = R X C^T`` (rows ``R``, columns ``C``: :func:`_window_matrices`
    of the stored thumbnail ``X``) is ``G_1 W G_1^T - G_4 W G_4^T`` (:func:`_similarity_vectors`).
    A refinement trial moves one side, so one of ``R``, ``C`` is the same as in the start's
    last accepted window. For trials of the left and right sides this class keeps
    ``G_s R X`` (s = 1, 4: 2 x THUMB lines of STORED pixels) of each start, and a trial is
    two matrix products: the columns' window matrices (a batched product) and the column
    Gaussians (a product with :func:`_band_operator` per start), instead of resampling both axes of
    ``X`` and smoothing both: 36 instead of 184 microseconds of CPU a start, and a start's
    held axis costs about 1.6 trials to recompute, which happens only after an accepted move
    of the other axis (BENCHMARKS.md, issue 16). For the top and bottom sides the same is
    done on ``X^T``, which gives the band transposed.
    Mathematically the same numbers as :func:`crop_thumbnails` + :func:`_similarity_vectors`
    (they differ by rounding, about 1e-15). Memory: 32 KiB of lines a start and axis, plus the
    transposed frame (about 35 MiB more for a chunk's at most 356 starts on the default study).
    """

    def __init__(self, stored: np.ndarray, held: tuple[int, int]):
        # stored: (K, STORED, STORED), the held axis first (``held @ stored`` resamples it), the moving one last;
        # held: the two columns of the frame fractions (K, 4) that cut the held axis
        self.stored, self.held = stored, held
        self.lines = np.empty((len(stored), THUMB, 2, STORED))
        self.stale = np.ones(len(stored), dtype=bool)

    def update(self, fractions: np.ndarray) -> None:
        """Recompute the smoothed held axis of the starts marked ``stale`` at their frame ``fractions`` (K, 4)."""
        rows = np.flatnonzero(self.stale)
        if len(rows):
            f = fractions[rows]
            held = _window_matrices(f[:, self.held[0]], f[:, self.held[1]], STORED, THUMB)  # (k, THUMB, STORED)
            fine, coarse = (_gaussian_operator(THUMB, float(sigma)) for sigma in SIMILARITY_SIGMAS)
            smoothed = np.matmul(np.concatenate([fine, coarse]), np.matmul(held, self.stored[rows]))  # (k, 2T, S)
            self.lines[rows] = smoothed.reshape(len(rows), 2, THUMB, STORED).swapaxes(1, 2)
            self.stale[rows] = False

    def bands(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(K, THUMB * THUMB) bands of the windows whose moving axis spans ``lo`` .. ``hi`` (frame fractions)."""
        moving = _window_matrices(lo, hi, STORED, THUMB)  # (K, THUMB, STORED)
        k = len(lo)
        along = np.matmul(self.lines.reshape(k, 2 * THUMB, STORED), moving.swapaxes(1, 2))  # (K, 2T, T)
        # one product per start, not one (K THUMB, 2 THUMB) product: BLAS may round a row differently
        # with the number of rows, and a pair's value must not depend on its chunk
        return np.matmul(along.reshape(k, THUMB, 2 * THUMB), _band_operator()).reshape(k, THUMB * THUMB)

    def keep(self, rows: np.ndarray) -> None:
        self.stored, self.lines, self.stale = self.stored[rows], self.lines[rows], self.stale[rows]


def _refine(full: np.ndarray, other: np.ndarray, at: np.ndarray, sub: np.ndarray, rounds: int, *,
            owner: np.ndarray, n_owners: int) -> np.ndarray:
    """Greedy refinement of window framings ``at`` of stored thumbnails ``other`` against vectors ``full``.

    Each trial moves one side of every active start by ``REFINE_STEP``; its similarity
    comes from a :class:`_FixedAxis` of the axis the side does not move (kept per start,
    recomputed only after an accepted move of the other axis), the same value as
    :func:`crop_thumbnails` + :func:`_similarity_vectors` up to rounding.

    Returns the best similarity reached per owner (``-inf`` for owners without a start).
    """
    at, sub = at.astype(np.float64).copy(), sub.astype(np.float64).copy()
    full = np.asarray(full, dtype=np.float64).reshape(-1, THUMB, THUMB)
    other = np.asarray(other, dtype=np.float64)
    # side 0, 1 (top, bottom) move rows: columns held, on X^T (band and ``full`` transposed); 2, 3 the reverse
    axes = [_FixedAxis(np.ascontiguousarray(other.swapaxes(1, 2)), (2, 3)), _FixedAxis(other, (0, 1))]
    targets = [full.swapaxes(1, 2).reshape(len(full), -1), full.reshape(len(full), -1)]
    active = np.arange(len(at))  # a start that did not move in a round never moves again: it leaves
    for _ in range(rounds):
        if not len(active):
            break
        moved = np.zeros(len(active), dtype=bool)
        for side in range(4):
            held, target = axes[side // 2], targets[side // 2]
            held.update(_frame_fractions(at[active]))
            for step in (REFINE_STEP, -REFINE_STEP):
                trial = at[active]
                trial[:, side] = np.clip(trial[:, side] + step, -MARGIN, 0.4)
                f = _frame_fractions(trial)
                lo, hi = (f[:, 0], f[:, 1]) if side < 2 else (f[:, 2], f[:, 3])
                band = held.bands(lo, hi)
                band -= band.mean(axis=1, keepdims=True)
                norm = np.sqrt(np.einsum("ij,ij->i", band, band))
                sim = np.einsum("ij,ij->i", target, band) / np.maximum(norm, 1e-12)
                better = sim > sub[active] + 1e-9
                at[active[better]], sub[active[better]] = trial[better], sim[better]
                moved |= better
                axes[1 - side // 2].stale |= better  # the other axis' held window moved
        active = active[moved]
        for held in axes:
            held.keep(moved)
        targets = [t[moved] for t in targets]
    out = np.full(n_owners, -np.inf)
    np.maximum.at(out, owner, sub)
    return out


def similar_pairs(hashes, thumbs: np.ndarray, *, max_bits: int, min_similarity: float,
                  block_radius: int = BLOCK_RADIUS, refine_margin: float = REFINE_MARGIN,
                  cuts: np.ndarray | None = None, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a < b) joined by the window rule: a hash candidate whose aligned thumbnails correlate.

    Candidates (:func:`window_candidates` within ``max_bits``) are verified by
    :func:`verify_candidates`; pairs whose best coarse (grid) score lies within ``refine_margin``
    below ``min_similarity`` get their framing refined, on ``threads`` threads.

    Returns
    -------
    pairs, distances, similarities
        ``pairs`` (K, 2) sorted; of a pair found in both directions, the more similar direction.
        Every verified candidate is returned with its similarity; the caller keeps
        those with ``similarity >= min_similarity`` (the audit wants the rest too).
    """
    cuts = window_cuts() if cuts is None else cuts
    cand = window_candidates(hashes, window_hashes(thumbs, cuts), max_bits, block_radius=block_radius)
    sim = verify_candidates(thumbs, cand, cuts, refine=(min_similarity - refine_margin, min_similarity),
                            threads=threads)
    a = np.minimum(cand[:, 0], cand[:, 1])
    b = np.maximum(cand[:, 0], cand[:, 1])
    order = np.lexsort((-sim, b, a))
    a, b, d, sim = a[order], b[order], cand[order, 4], sim[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return np.stack([a[first], b[first]], axis=1).reshape(-1, 2), d[first], sim[first]


# ---------------------------------------------------------------- 3D volumes: the volume rule

VOLUME_VERSION = "dv2"
VOLUME_SIDE = 24  # the stored volume thumbnail: VOLUME_SIDE^3 voxels of the foreground box widened by MARGIN per side
VOLUME_FOREGROUND = 0.5  # a thumbnail voxel is compared when at least this share of it is foreground
VOLUME_SMOOTHING = 1.0  # the foreground is thresholded on the volume smoothed by a Gaussian of this SD, in voxels
VOLUME_EXTENT_RATIO = 0.6  # frames whose physical extents differ by more than this factor on an axis are not compared
VOLUME_COVER = 0.75  # a resampled voxel is compared when this share of it holds compared thumbnail voxels
VOLUME_OVERLAP = 0.5  # a translation counts when it covers this share of the smaller volume's compared voxels
VOLUME_COARSE_MARGIN = 0.35  # pairs whose coarse pass is this far under the threshold skip the full-resolution pass
FLIP_MARGIN = 0.1  # mirrorings within this of the coarse pass's best are scored at full resolution
AXIS_FLIPS = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))  # the 8 mirrorings of the (z, y, x) axes
_VOLUME_PREFIX = re.compile(r"dv\d+:")  # a volume thumbnail of any version (an older one is rejected on decoding)


def canonical_volume(image) -> tuple[np.ndarray, np.ndarray]:
    """A 3D SimpleITK image's (z, y, x) array in LPS and its voxel spacing (z, y, x) in mm."""
    import SimpleITK as sitk

    image = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayFromImage(image), np.asarray(image.GetSpacing(), dtype=np.float64)[::-1]


def _volume_foreground(volume: np.ndarray) -> np.ndarray:
    """Voxels above the background class (:func:`_background_threshold`) without the parts under
    ``STRAY_FRACTION`` of the foreground (6-connected; unless that would keep under half of it).

    Both are taken on the volume smoothed by a Gaussian of ``VOLUME_SMOOTHING`` voxels, in float32
    for volumes of up to 16-bit integers or float32 (float64 otherwise, so a large offset keeps its
    precision). The SD is in voxels, not mm, on purpose: it is there to average out voxel noise,
    which is independent per voxel whatever its size (an isotropic 0.8 mm SD, tried on one draw of
    the benchmark's phantoms, was no better: BENCHMARKS.md).

    Unsmoothed, noise of 1-4 % of the range on a phantom CT (air exactly -1000 HU, the body 70 HU
    wide) put the three-class split inside the air's peak: 73-92 % of the volume was
    "foreground", the thumbnail framed the whole volume and the volume rule missed 14 of 20 noisy
    copies (BENCHMARKS.md, "3D volumes: a foreground robust to noise")."""
    from scipy import ndimage

    volume = np.asarray(volume)
    volume = ndimage.gaussian_filter(volume, VOLUME_SMOOTHING, output=np.result_type(volume.dtype, np.float32))
    fg = volume > _background_threshold(volume)
    labels, n = ndimage.label(fg)
    if n < 2:
        return fg
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= STRAY_FRACTION * sizes[1:].sum()
    keep[0] = False
    return keep[labels] if sizes[keep].sum() >= 0.5 * sizes[1:].sum() else fg


def _apply_axes(volume: np.ndarray, matrices, slab: int = 32) -> np.ndarray:
    """``matrices[k]`` (out_k, n_k) applied along axis k of a 3D array, in float64.

    The first axis is reduced ``slab`` rows of axis 1 at a time, so a large volume of a narrow
    type (int16 CT) is never copied whole to float64."""
    first = np.empty((matrices[0].shape[0],) + volume.shape[1:])
    for j in range(0, volume.shape[1], slab):
        first[:, j:j + slab] = np.tensordot(matrices[0], np.asarray(volume[:, j:j + slab], dtype=np.float64),
                                            axes=(1, 0))
    volume = first
    for axis, matrix in enumerate(matrices[1:], start=1):
        volume = np.moveaxis(np.tensordot(matrix, np.moveaxis(volume, axis, 0), axes=(1, 0)), 0, axis)
    return volume


def volume_thumbnail(volume: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """A volume's stored thumbnail: ``(levels, voxel)``.

    ``levels`` (uint8, ``VOLUME_SIDE``^3): the foreground box (1st-99th percentiles of the
    foreground's positions along each axis) widened by ``MARGIN`` per side, area-resampled;
    the voxels inside the image and at least ``VOLUME_FOREGROUND`` foreground hold their rank
    among those voxels (1-255, histogram equalisation: invariant to increasing intensity maps),
    the others 0 (not compared: background and the frame past the image). ``voxel``: the size of
    a thumbnail voxel in mm along (z, y, x), from the image's spacing, so that two thumbnails
    can be compared at one physical scale (:func:`volume_similarity`).
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"a volume must be 3D, got shape {volume.shape}")
    if volume.dtype.kind == "f" and not np.isfinite(volume).all():
        raise ValueError("the volume has NaN or infinite voxel values")
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.shape != (3,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise ValueError(f"a volume's spacing must be 3 positive sizes in mm (z, y, x), got {spacing.tolist()}")
    low, high = float(volume.min()), float(volume.max())
    if high > low:
        fg = _volume_foreground(volume)
    else:
        fg = np.ones(volume.shape, dtype=bool)
    if fg.sum() < 8:
        fg = np.ones(volume.shape, dtype=bool)
    matrices, voxel = [], []
    for axis, (n, step) in enumerate(zip(volume.shape, spacing)):
        start, stop = _robust_span(fg.sum(axis=tuple(a for a in range(3) if a != axis)))
        widen = MARGIN * (stop - start)
        matrices.append(_window_matrices((start - widen) / n, (n - stop - widen) / n, n, VOLUME_SIDE)[0])
        voxel.append((stop - start + 2 * widen) * step / VOLUME_SIDE)
    framed = _apply_axes(volume, matrices)
    coverage = [m.sum(axis=1) for m in matrices]  # the share of each thumbnail voxel inside the image, per axis
    inside = np.einsum("i,j,k->ijk", *coverage) > 0.999
    compared = inside & (_apply_axes(fg, matrices) >= VOLUME_FOREGROUND)
    levels = np.zeros(framed.shape, dtype=np.uint8)
    if compared.any():
        span = high - low
        values = (framed[compared] - low) / span if span > 0 else np.zeros(int(compared.sum()))  # rows sum to 1 inside
        ranks = _ranks(np.round(values, 9)[None, :])[0] if compared.sum() > 1 else np.ones(1)
        levels[compared] = 1 + np.rint(ranks * 254).astype(np.uint8)
    return levels, np.asarray(voxel)


def encode_volume(levels: np.ndarray, voxel) -> str:
    """A volume thumbnail as in the case index's ``dup_thumb``: ``dv2:<voxel z,y,x mm>:`` + base64 of the levels."""
    import base64

    levels = np.asarray(levels)
    if levels.shape != (VOLUME_SIDE,) * 3 or levels.dtype != np.uint8:
        raise ValueError(f"a volume thumbnail must be uint8 {VOLUME_SIDE}^3, got {levels.dtype} {levels.shape}")
    sizes = ",".join(f"{float(v):.9g}" for v in voxel)
    return f"{VOLUME_VERSION}:{sizes}:" + base64.b64encode(levels.tobytes()).decode("ascii")


def is_volume_thumbnail(text) -> bool:
    """Whether a stored ``dup_thumb`` is a volume's, of this version or an older one (which
    :func:`decode_volumes` rejects, asking for the case index to be rebuilt)."""
    return _VOLUME_PREFIX.match(str(text)) is not None


def decode_volumes(values, name: str = "dup_thumb", case_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Stored volume thumbnails (:func:`encode_volume`) to ``(levels (N, S, S, S) uint8, voxels (N, 3) mm)``.

    Raises
    ------
    ValueError
        Naming the case of a malformed value.
    """
    import base64
    import binascii

    levels = np.empty((len(values), VOLUME_SIDE, VOLUME_SIDE, VOLUME_SIDE), dtype=np.uint8)
    voxels = np.empty((len(values), 3))
    for i, text in enumerate(values):
        prefix, _, rest = str(text).partition(":")
        sizes, _, body = rest.partition(":")
        try:
            if prefix != VOLUME_VERSION:
                raise ValueError
            voxel = np.array([float(v) for v in sizes.split(",")])
            raw = np.frombuffer(base64.b64decode(body, validate=True), dtype=np.uint8)
            if voxel.shape != (3,) or not (np.isfinite(voxel).all() and (voxel > 0).all()) or raw.size != VOLUME_SIDE ** 3:
                raise ValueError
        except (ValueError, binascii.Error):
            who = _who(case_ids, i)
            raise ValueError(f"{who}: column '{name}' is not a '{VOLUME_VERSION}:' near-duplicate volume thumbnail; "
                             "rebuild the case index with this radaug version") from None
        levels[i] = raw.reshape((VOLUME_SIDE,) * 3)
        voxels[i] = voxel
    return levels, voxels


def _at_voxel(levels: np.ndarray, voxel: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A thumbnail area-resampled to voxels of exactly ``target`` mm (coarser): ``(values, compared)``.

    The last resampled voxel of an axis reaches past the thumbnail (where it reads zeros) rather
    than the scale being rounded to whole voxels (up to 3 % off at 24 voxels, 7 % at the coarse
    pass's 12: a reviewer measured true copies at 0.76-0.83 that score 0.83-0.92 at the exact
    scale). A resampled voxel is compared when ``VOLUME_COVER`` of it is; its value is the mean
    rank of the compared thumbnail voxels it covers. (Requiring all of it eroded the coarse pass's
    masks to a few hundred voxels, where a copy of a lung CT scored its right mirror 0.15 and a
    wrong one 0.38.)
    """
    matrices = []
    for n, v, t in zip(levels.shape, voxel, target):
        out = max(2, int(np.ceil(n * v / t - 1e-9)))
        matrices.append(_window_matrices(0.0, 1.0 - out * t / (n * v), n, out)[0])
    compared = levels > 0
    total = _apply_axes(np.where(compared, levels / 255.0, 0.0), matrices)
    cover = _apply_axes(compared, matrices)
    mask = cover >= VOLUME_COVER
    return np.where(mask, total / np.where(mask, cover, 1.0), 0.0), mask


class _Spectra:
    """The FFTs a masked correlation needs of one (values, mask) volume, on a common padded shape."""

    def __init__(self, values: np.ndarray, mask: np.ndarray, shape):
        from scipy.fft import rfftn

        m = mask.astype(np.float64)
        v = values * m
        self.count = float(m.sum())
        self.mask, self.values, self.squares = (rfftn(x, shape) for x in (m, v, v * v))


def _masked_ncc_map(fixed: _Spectra, moving: _Spectra, shape) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of two masked volumes at every translation, and the voxels both masks hold
    there (Padfield 2012, "Masked object registration in the Fourier domain"): six correlations by FFT.

    Entry ``t`` of the (padded, circular) maps compares ``fixed[x + t]`` with ``moving[x]``; NaN
    where the overlap holds fewer than 2 voxels or either side is constant on it.
    """
    from scipy.fft import irfftn

    def corr(a, b):
        return irfftn(a * np.conj(b), shape)

    n = np.round(corr(fixed.mask, moving.mask))
    sf, sm = corr(fixed.values, moving.mask), corr(fixed.mask, moving.values)
    sff, smm, sfm = corr(fixed.squares, moving.mask), corr(fixed.mask, moving.squares), corr(fixed.values, moving.values)
    m = np.maximum(n, 1.0)
    den = np.sqrt(np.maximum(sff - sf * sf / m, 0.0) * np.maximum(smm - sm * sm / m, 0.0))
    ok = (n >= 2) & (den > 1e-9 * m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, (sfm - sf * sm / m) / den, np.nan), n


def _masked_ncc(fixed: _Spectra, moving: _Spectra, shape, min_overlap: float) -> float:
    """Best :func:`_masked_ncc_map` value over the translations whose overlap holds at least
    ``min_overlap`` of the smaller mask; -1 if none does."""
    ncc, n = _masked_ncc_map(fixed, moving, shape)
    ncc = ncc[n >= min_overlap * min(fixed.count, moving.count)]
    ncc = ncc[np.isfinite(ncc)]
    return float(ncc.max()) if ncc.size else -1.0


def _padded_shape(a: np.ndarray, b: np.ndarray) -> list[int]:
    from scipy.fft import next_fast_len

    return [next_fast_len(x + y - 1, real=True) for x, y in zip(a.shape, b.shape)]


def _flip_scores(fixed, moving, flips, min_overlap) -> list[float]:
    """:func:`_masked_ncc` of ``fixed`` against each axis mirroring ``flips`` of ``moving`` ((values, mask) pairs)."""
    shape = _padded_shape(fixed[0], moving[0])
    spectra = _Spectra(*fixed, shape)
    return [_masked_ncc(spectra, _Spectra(np.flip(moving[0], flip), np.flip(moving[1], flip), shape), shape,
                        min_overlap) for flip in flips]


def comparable_extents(voxel_a, voxel_b, ratio: float = VOLUME_EXTENT_RATIO) -> np.ndarray:
    """Whether two volume frames' physical extents are within ``ratio`` of each other on every axis."""
    a, b = np.asarray(voxel_a, dtype=np.float64), np.asarray(voxel_b, dtype=np.float64)
    return (np.minimum(a, b) >= ratio * np.maximum(a, b)).all(axis=-1)


def _volume_pair(levels_a, voxel_a, levels_b, voxel_b, floor: float, min_overlap: float) -> tuple[float, bool]:
    """``(similarity, verified)``: :func:`volume_similarity`, or the coarse pass's best (not verified)
    when that is under ``floor``."""
    target = np.maximum(voxel_a, voxel_b)
    coarse = np.array(_flip_scores(_at_voxel(levels_a, voxel_a, 2 * target), _at_voxel(levels_b, voxel_b, 2 * target),
                                   AXIS_FLIPS, min_overlap))
    if coarse.max() < floor:
        return float(coarse.max()), False
    flips = [f for f, c in zip(AXIS_FLIPS, coarse) if c >= coarse.max() - FLIP_MARGIN]
    fine = _flip_scores(_at_voxel(levels_a, voxel_a, target), _at_voxel(levels_b, voxel_b, target), flips, min_overlap)
    return max(fine), True


def volume_similarity(levels_a, voxel_a, levels_b, voxel_b, *, floor: float = -np.inf,
                      min_overlap: float = VOLUME_OVERLAP) -> float:
    """How alike two volume thumbnails (:func:`volume_thumbnail`) are, at one physical scale.

    Both are area-resampled to the coarser voxel size along each axis, so that a copy
    re-sampled to other voxels, cropped in plane or re-stacked (slices left out) differs from
    its source by a translation only: whole voxels, which the correlation tries, plus up to half
    a voxel per axis where the copy's frame starts, which it does not (half-voxel offsets lifted
    copies by up to 0.09 but two distinct lung CTs by 0.13: measured, not adopted; BENCHMARKS.md).
    The value is the best masked Pearson correlation of their compared voxels (the foreground's
    ranks; :func:`_masked_ncc`, every translation covering ``min_overlap`` of the smaller one)
    over the 8 axis mirrorings (``AXIS_FLIPS``): a coarse pass at twice the voxel size scores all
    8, and those within ``FLIP_MARGIN`` of its best are scored at full resolution (of the
    benchmark's 600 copies, 598 scored best at full resolution in the coarse pass's best mirror,
    and the right mirror was never more than 0.044 under that best; BENCHMARKS.md). A pair whose
    coarse best is under ``floor`` gets that value, without the full-resolution pass (the split's
    search, :func:`similar_volumes`). -1 for frames of incomparable physical extent
    (:func:`comparable_extents`): a copy is not cut by more than 40 % along an axis, so a
    lesion-centred crop of a whole scan is not compared with it.
    """
    voxel_a, voxel_b = np.asarray(voxel_a, dtype=np.float64), np.asarray(voxel_b, dtype=np.float64)
    if not comparable_extents(voxel_a, voxel_b):
        return -1.0
    return _volume_pair(levels_a, voxel_a, levels_b, voxel_b, floor, min_overlap)[0]


def similar_volumes(levels: np.ndarray, voxels: np.ndarray, *, min_similarity: float,
                    coarse_margin: float = VOLUME_COARSE_MARGIN, threads: int = 1,
                    chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of volume thumbnails scored by :func:`volume_similarity`: the volume rule's search.

    Every pair of comparable physical extent is scored (the search is quadratic in the number of
    volumes: BENCHMARKS.md gives the cost per pair); a pair whose coarse pass stays more than
    ``coarse_margin`` under ``min_similarity`` is left out without the full-resolution pass (the
    coarse best of the benchmark's copies that the rule links was at least 0.61, with
    ``min_similarity`` 0.7; distinct volumes' coarse best is 0.33 in the median, BENCHMARKS.md).
    Chunks of ``chunk`` pairs run on ``threads`` threads; the result does not depend on their
    number.

    Returns
    -------
    pairs, similarities
        The pairs that reached the full-resolution pass, with their similarity; the caller keeps
        those with ``similarity >= min_similarity`` (the audit wants the rest too).
    """
    levels = np.asarray(levels)
    voxels = np.asarray(voxels, dtype=np.float64)
    a, b = np.triu_indices(len(levels), 1)
    keep = comparable_extents(voxels[a], voxels[b])
    a, b = a[keep], b[keep]
    floor = float(min_similarity) - float(coarse_margin)
    if len(a):
        log.info("volume rule: comparing %d pairs of %d volumes on %d thread(s)", len(a), len(levels), max(int(threads), 1))
    progress = _Progress(len(a), "volume rule", "pairs compared")
    value = np.full(len(a), -1.0)
    verified = np.zeros(len(a), dtype=bool)

    def run(n_chunk: int) -> None:
        pairs = range(n_chunk * chunk, min((n_chunk + 1) * chunk, len(a)))
        for k in pairs:
            value[k], verified[k] = _volume_pair(levels[a[k]], voxels[a[k]], levels[b[k]], voxels[b[k]], floor,
                                                 VOLUME_OVERLAP)
        progress.add(len(pairs))

    _run_chunks(run, -(-len(a) // chunk), int(threads))
    return np.stack([a[verified], b[verified]], axis=1).reshape(-1, 2), value[verified]
