"""Near-duplicate images: a transformation-invariant signature, a sub-quadratic pair search, groups.

What a radiologist calls "the same image" survives the edits datasets are full
of: a left-right mirror or a 90-degree rotation, a different crop or frame, a
resize, a contrast/gamma/window change, JPEG recompression, mild noise. The
signature of an **original** image (not of radaug's derived patch, whose ROI can
differ between two copies) is built to be invariant to each of these:

1. **Framing** (crop, padding, resizing): the image is cut to the robust bounding
   box of its foreground (Otsu threshold; the 1st-99th percentiles of the
   foreground's row and column positions, so specks of noise or burnt-in text do
   not move it) and resampled (area average) to a ``THUMB`` x ``THUMB``
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
hashes alike.

Pairs within ``max_bits`` are found by multi-index hashing (Norouzi et al.
2012): the hash is cut into ``m`` blocks so that any pair within ``max_bits``
agrees within ``max_bits // m`` bits on some block; candidates come from sorted
block tables, never from an N x N matrix (:func:`near_duplicate_pairs`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

THUMB = 32
BLOCK = 8  # 8 x 8 low frequencies, DC excluded: 63 bits (+1 constant zero bit)
N_BITS = 64
HASH_VERSION = "dq1"
LOG_EPS = 0.05


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


def _robust_span(counts: np.ndarray, tail: float = 0.01) -> tuple[int, int]:
    """First and last index holding the central ``1 - 2 tail`` of a profile's mass."""
    cum = np.cumsum(counts, dtype=float)
    total = cum[-1]
    lo = int(np.searchsorted(cum, tail * total, side="right"))
    hi = int(np.searchsorted(cum, (1 - tail) * total, side="left"))
    return lo, max(hi, lo) + 1


def foreground_box(plane: np.ndarray) -> tuple[slice, slice]:
    """Robust bounding box (rows, columns) of a 2D image's Otsu foreground; the whole image if flat."""
    if plane.max() <= plane.min():
        return slice(None), slice(None)
    fg = plane > _otsu(plane)
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


def thumbnail(array: np.ndarray) -> np.ndarray:
    """The framing- and intensity-normalised ``THUMB`` x ``THUMB`` thumbnail (ranks in [0, 1])."""
    plane = np.asarray(array, dtype=np.float64)
    if plane.ndim == 3:
        plane = _project(plane)
    if plane.ndim != 2:
        raise ValueError(f"an image must be 2D or 3D, got shape {array.shape}")
    if not np.isfinite(plane).all():
        raise ValueError("the image has NaN or infinite pixel values")
    rows, cols = foreground_box(plane)
    thumb = _resize_area(plane[rows, cols], THUMB).ravel()
    ranks = np.empty(thumb.size)
    order = np.argsort(thumb, kind="stable")
    ranks[order] = np.arange(thumb.size)
    # ties (flat regions) share their mean rank, so equal pixels stay equal
    _, inverse, counts = np.unique(thumb, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, ranks) / counts)[inverse]
    return (ranks / (thumb.size - 1)).reshape(THUMB, THUMB)


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


def parse_hashes(values, name: str = "dup_hash", case_ids=None) -> np.ndarray:
    """``dq1:<16 hex>`` strings to uint64; a malformed one raises ValueError naming the case."""
    out = np.empty(len(values), dtype=np.uint64)
    for i, text in enumerate(values):
        prefix, _, digits = str(text).partition(":")
        try:
            if prefix != HASH_VERSION or len(digits) != 16:
                raise ValueError
            out[i] = np.uint64(int(digits, 16))
        except ValueError:
            who = f"case {case_ids[i]!r}" if case_ids is not None else f"row {i}"
            raise ValueError(f"{who}: column '{name}' = {text!r} is not a '{HASH_VERSION}:' + 16 hex digit "
                             "near-duplicate hash; rebuild the case index with this radaug version") from None
    return out


def signature(array: np.ndarray) -> str:
    """:func:`image_hash` as stored in the case index, e.g. ``dq1:8f3a...``."""
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


# ---------------------------------------------------------------- pair search


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def _blocks(max_bits: int) -> list[tuple[int, int]]:
    """Bit ranges of the multi-index blocks: about 16 bits each, so a table lookup is selective."""
    m = 4
    edges = np.linspace(0, N_BITS, m + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:]))


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


def near_duplicate_pairs(hashes, max_bits: int, *, dihedral: bool = True,
                         chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) whose hashes differ in at most ``max_bits`` bits (at the best flip/rotation).

    Multi-index hashing: the 64 bits are cut into 4 blocks; a pair within
    ``max_bits`` agrees within ``max_bits // 4`` bits on at least one block
    (pigeonhole), so each (variant of a) hash looks up, in each block's sorted
    table, only the keys within that radius. Candidates are verified on all 64
    bits. Memory is O(N + candidates of one chunk); exact duplicates are
    searched once.

    Parameters
    ----------
    hashes
        uint64 hashes (:func:`image_hash`), or anything :func:`numpy.asarray` turns into them.
    max_bits
        Hamming radius (0-64).
    dihedral
        Compare at the best of the 8 flips/90-degree rotations (:func:`dihedral_variants`).

    Returns
    -------
    pairs, distances
        ``pairs`` (K, 2) int64 sorted lexicographically, ``distances`` (K,) int64.
    """
    if not 0 <= int(max_bits) <= N_BITS:
        raise ValueError(f"max_bits must be in 0..{N_BITS}, got {max_bits}")
    hashes = np.asarray(hashes, dtype=np.uint64)
    unique, inverse = np.unique(hashes, return_inverse=True)
    n_unique = len(unique)
    variants = dihedral_variants(unique) if dihedral else unique[None, :]
    blocks = _blocks(max_bits)
    radius = int(max_bits) // len(blocks)
    tables = []
    for lo, hi in blocks:
        mask = np.uint64((1 << (hi - lo)) - 1)
        keys = (unique >> np.uint64(lo)) & mask
        order = np.argsort(keys, kind="stable")
        tables.append((lo, mask, keys[order], order, _flip_masks(hi - lo, radius)))
    found_a, found_b, found_d = [], [], []
    for start in range(0, n_unique, chunk):
        q_idx = np.arange(start, min(start + chunk, n_unique))
        cand_a, cand_b = [], []
        for variant in variants:
            q = variant[q_idx]
            for lo, mask, sorted_keys, order, flips in tables:
                qk = ((q >> np.uint64(lo)) & mask)[:, None] ^ flips[None, :]
                left = np.searchsorted(sorted_keys, qk, side="left").ravel()
                right = np.searchsorted(sorted_keys, qk, side="right").ravel()
                counts = right - left
                if not counts.any():
                    continue
                owner = np.repeat(np.repeat(q_idx, len(flips)), counts)
                offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
                cand_a.append(owner)
                cand_b.append(order[np.repeat(left, counts) + offsets])
        if not cand_a:
            continue
        a = np.concatenate(cand_a)
        b = np.concatenate(cand_b)
        keep = a != b
        a, b = a[keep], b[keep]
        d = np.min(np.stack([_popcount(v[a] ^ unique[b]) for v in variants]), axis=0)
        keep = d <= max_bits
        a, b, d = a[keep], b[keep], d[keep]
        lo_ab, hi_ab = np.minimum(a, b), np.maximum(a, b)
        found_a.append(lo_ab)
        found_b.append(hi_ab)
        found_d.append(d)
    return _expand(inverse, found_a, found_b, found_d, n_unique, variants, unique)


def _expand(inverse, found_a, found_b, found_d, n_unique, variants, unique):
    """Pairs of unique hashes back to pairs of rows (rows with equal hashes pair at distance 0)."""
    if found_a:
        a = np.concatenate(found_a).astype(np.int64)
        b = np.concatenate(found_b).astype(np.int64)
        d = np.concatenate(found_d).astype(np.int64)
        code = a * n_unique + b
        code, first = np.unique(code, return_index=True)
        a, b, d = code // n_unique, code % n_unique, d[first]
        # distance is symmetric only up to the min over variants: take min(d(a,b), d(b,a))
        d_rev = np.min(np.stack([_popcount(v[b] ^ unique[a]) for v in variants]), axis=0)
        d = np.minimum(d, d_rev)
    else:
        a = b = d = np.zeros(0, dtype=np.int64)
    members = [[] for _ in range(n_unique)]
    for row, u in enumerate(inverse):
        members[u].append(row)
    rows_a, rows_b, dist = [], [], []
    for rows in members:  # exact duplicates
        for i, j in combinations(rows, 2):
            rows_a.append(i)
            rows_b.append(j)
            dist.append(0)
    for ua, ub, dd in zip(a.tolist(), b.tolist(), d.tolist()):
        for i in members[ua]:
            for j in members[ub]:
                rows_a.append(min(i, j))
                rows_b.append(max(i, j))
                dist.append(dd)
    pairs = np.array([rows_a, rows_b], dtype=np.int64).T.reshape(-1, 2)
    dist = np.array(dist, dtype=np.int64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], dist[order]


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
