"""Near-duplicate detection: ground truth (transformed copies are found, other images are not),
the multi-index search against brute force, label-mixing groups, the audit table."""

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from pandas.testing import assert_frame_equal

from radaug import duplicates as D
from radaug.data.phantom import phantom_case
from radaug.errors import LeakageError
from radaug.splits import check_folds, duplicate_audit, duplicate_pairs, make_folds

MAX_BITS = 7


def _scene(seed: int, size: int = 160) -> np.ndarray:
    """A non-symmetric "slice": a phantom body, its lesion and a few seeded structures, 0-255."""
    rng = np.random.default_rng(seed)
    image, _ = phantom_case(rng, "malignant", "coarse", size=size, separation=1.0)
    image = gaussian_filter(image, 2.0)  # tissue texture at the scale of a photograph, not pixel noise
    yy, xx = np.mgrid[:size, :size] / size
    for cy, cx, amp in zip(rng.uniform(0.3, 0.7, 4), rng.uniform(0.3, 0.7, 4), rng.uniform(-80, 300, 4)):
        image = image + amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)  # anatomy-like structures
    image = np.where(image > -900, image, -1000.0)
    lo, hi = image.min(), image.max()
    return (255.0 * (image - lo) / (hi - lo)).astype(np.float32)


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    ha, hb = np.array([D.image_hash(a)], dtype=np.uint64), np.uint64(D.image_hash(b))
    return int(np.bitwise_count(D.dihedral_variants(ha)[:, 0] ^ hb).min())


# crop (2-10 % a side) and combined are below the goal (see BENCHMARKS.md); noise is tested
# at 1 % below: on this synthetic fixture 4 % noise reaches 10-11 bits (Br35H: at most 6)
@pytest.mark.parametrize("name", [t for t in D.TRANSFORMS if t not in ("crop", "combined", "noise")])
def test_a_transformed_copy_is_a_near_duplicate(name):
    rng = np.random.default_rng(7)
    for seed in (1, 2):
        image = _scene(seed)
        assert _distance(image, D.transform(image, name, rng)) <= MAX_BITS, (name, seed)


def test_mild_noise_is_a_near_duplicate():
    image = _scene(1)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 2.55, image.shape), 0, 255)
    assert _distance(image, noisy) <= MAX_BITS


def test_a_light_crop_is_a_near_duplicate():
    image = _scene(3)
    h, w = image.shape
    assert _distance(image, image[4:h - 2, 3:w - 5]) <= MAX_BITS


def test_flips_and_rotations_are_exact_bit_operations():
    image = _scene(4)
    h = np.array([D.image_hash(image)], dtype=np.uint64)
    variants = D.dihedral_variants(h)[:, 0]
    assert int(variants[0]) == int(h[0])
    assert D.image_hash(image.T) == int(variants[4])  # transpose
    assert len(set(variants.tolist())) == 8  # a non-symmetric image: 8 different hashes


def test_different_images_of_the_same_anatomy_are_not_near_duplicates():
    hashes = np.array([D.image_hash(_scene(seed)) for seed in range(10, 30)], dtype=np.uint64)
    pairs, dist = D.near_duplicate_pairs(hashes, MAX_BITS)
    assert len(pairs) == 0, dist


def test_3d_volume_reoriented_and_restacked_is_a_near_duplicate():
    volume, _ = phantom_case(np.random.default_rng(5), "malignant", "coarse", dim=3, size=32, separation=1.0)
    other, _ = phantom_case(np.random.default_rng(6), "benign", "coarse", dim=3, size=32, separation=1.0)
    assert _distance(volume, volume[:, ::-1, :]) <= MAX_BITS  # mirrored in-plane
    assert _distance(volume, volume[2:-1]) <= MAX_BITS  # a few slices fewer
    assert _distance(volume, volume[::-1]) == 0  # slice order does not matter
    assert _distance(volume, other) > 0


def test_canonical_orientation_of_a_flipped_direction():
    sitk = pytest.importorskip("SimpleITK")
    volume, _ = phantom_case(np.random.default_rng(5), "malignant", "coarse", dim=3, size=24, separation=1.0)
    a = sitk.GetImageFromArray(volume)
    b = sitk.GetImageFromArray(np.ascontiguousarray(volume[:, :, ::-1]))
    b.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # same anatomy, stored right-to-left
    b.SetOrigin(a.TransformIndexToPhysicalPoint((23, 0, 0)))
    np.testing.assert_array_equal(D.canonical_array(a), D.canonical_array(b))


def test_multi_index_search_equals_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=300, dtype=np.int64).astype(np.uint64) & ~np.uint64(1)
    # plant near-duplicates: flips of others, a few bits changed, and exact copies
    near = D.dihedral_variants(base[:100])[rng.integers(0, 8, 100), np.arange(100)]
    flips = np.zeros(100, dtype=np.uint64)
    for k in range(100):
        for bit in rng.choice(np.arange(1, 64), rng.integers(0, 12), replace=False):
            flips[k] |= np.uint64(1) << np.uint64(bit)
    hashes = np.concatenate([base, near ^ flips, base[:20]])
    for max_bits in (0, 3, 8, 11):
        for dihedral in (True, False):
            got = D.near_duplicate_pairs(hashes, max_bits, dihedral=dihedral, chunk=64)
            want = D.brute_force_pairs(hashes, max_bits, dihedral=dihedral)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def _clustered_hashes(rng, n_seeds: int, n: int, max_flips: int) -> np.ndarray:
    """Hashes clustered like real ones: flips/rotations of a few seeds with 0..max_flips bits changed, exact copies."""
    seeds = rng.integers(0, 2**63, size=n_seeds, dtype=np.int64).astype(np.uint64) & ~np.uint64(1)
    pick = rng.integers(0, n_seeds, n)
    out = D.dihedral_variants(seeds)[rng.integers(0, 8, n), pick]
    for k in range(n):
        for bit in rng.choice(np.arange(1, 64), rng.integers(0, max_flips + 1), replace=False):
            out[k] ^= np.uint64(1) << np.uint64(bit)
    return np.concatenate([out, out[rng.integers(0, n, n // 10)]])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dc_bit", [False, True])
def test_multi_index_search_equals_brute_force_on_clustered_hashes(seed, dc_bit):
    """Randomised: dense clusters (many pairs per hash), every radius the plan can choose.

    With the DC bit clear (every real hash) each pair is searched from one side; a DC bit
    set on some hashes makes the distance depend on the direction, and both are searched.
    """
    rng = np.random.default_rng(100 + seed)
    hashes = _clustered_hashes(rng, n_seeds=12, n=400, max_flips=14)
    if dc_bit:
        hashes[rng.integers(0, len(hashes), 10)] |= np.uint64(1)
    for max_bits in sorted({0, 1, int(rng.integers(2, 8)), 8, int(rng.integers(9, 20)), 64}):
        for dihedral in (True, False):
            got = D.near_duplicate_pairs(hashes, max_bits, dihedral=dihedral, chunk=int(rng.integers(1, 200)))
            want = D.brute_force_pairs(hashes, max_bits, dihedral=dihedral)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def test_search_plan_is_pigeonhole_complete():
    """Every plan's blocks cover disjoint bits and sum(radius + 1) > max_bits, or it is the plain scan."""
    for n in (10, 1_000, 100_000, 10_000_000):
        for max_bits in range(0, 65):
            plan, _ = D._search_plan(n, max_bits)
            if plan == [(0, 0, 0)]:
                continue
            assert all(0 <= lo < hi <= 64 and 0 <= r < hi - lo for lo, hi, r in plan)
            assert all(a[1] <= b[0] for a, b in zip(plan, plan[1:]))
            assert sum(r + 1 for _, _, r in plan) > max_bits


def test_hashes_are_deterministic_and_formatted():
    image = _scene(8)
    assert D.signature(image) == D.signature(image.copy())
    assert D.signature(image).startswith("dq3:") and len(D.signature(image)) == 20


def test_bad_input_names_the_case():
    with pytest.raises(ValueError, match="case 'c7'.*dup_hash"):
        D.parse_hashes(["dq3:00000000000000ff", "zz"], case_ids=["c1", "c7"])
    with pytest.raises(ValueError, match="NaN"):
        D.image_hash(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="2D or 3D"):
        D.image_hash(np.zeros(8))


def _cases(hashes, labels):
    n = len(hashes)
    return pd.DataFrame({
        "case_id": [f"c{i:02d}" for i in range(n)], "patient_id": [f"p{i:02d}" for i in range(n)],
        "label": labels, "group": "", "dup_hash": [D.format_hash(h) for h in hashes],
        "content_sha256": [f"s{i}" for i in range(n)],
    })


def _distinct(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) & ~np.uint64(1)


def test_a_group_mixing_labels_stops_the_split_naming_the_cases():
    hashes = _distinct(30)
    hashes[7] = D.dihedral_variants(hashes[3:4])[1, 0]  # c07 is a mirrored c03
    labels = ["a" if i % 3 else "b" for i in range(30)]
    labels[3], labels[7] = "a", "b"
    cases = _cases(hashes, labels)
    with pytest.raises(LeakageError, match=r"c03 \(a\), c07 \(b\).*allow_mixed_label_duplicates"):
        make_folds(cases, folds=3)
    folds = make_folds(cases, folds=3, allow_mixed_label_duplicates=True)
    roles = folds.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    assert (roles.loc["c03"] == roles.loc["c07"]).all()


def test_mirrored_copy_never_straddles_and_audit_reports_it():
    hashes = _distinct(40, seed=1)
    hashes[11] = D.dihedral_variants(hashes[2:3])[5, 0] ^ np.uint64(0b110)  # rotated c02, 2 bits off
    cases = _cases(hashes, ["a" if i % 4 else "b" for i in range(40)])
    cases.loc[11, "label"] = cases.loc[2, "label"]
    folds = make_folds(cases, folds=4, seed=2)
    check_folds(folds, cases)
    audit = duplicate_audit(cases, folds, MAX_BITS)
    row = audit[(audit["case_a"] == "c02") & (audit["case_b"] == "c11")].iloc[0]
    assert row["distance"] == 2 and row["grouped"] and not row["straddles"]
    assert not audit.loc[audit["grouped"], "straddles"].any()
    assert list(duplicate_pairs(cases, MAX_BITS)[["a", "b"]].itertuples(index=False, name=None)) == [(2, 11)]


# ---------------------------------------------------------------- window rule (crops)

MIN_SIMILARITY, VERIFY_BITS = 0.915, 16  # split.min_similarity, split.verify_bits: the defaults


def _crop(image, t, b, l, r):
    h, w = image.shape
    return image[int(t * h):h - int(b * h), int(l * w):w - int(r * w)].copy()


def _window_rule(images):
    """Similarities of the pairs the window rule verifies at the default threshold (a pair already at the
    threshold on the coarse grid is not refined: its value is a lower bound of its best framing's)."""
    thumbs = np.stack([D.framed_thumbnail(a) for a in images])
    thumbs = D.decode_thumbnails([D.encode_thumbnail(t) for t in thumbs])  # as stored in the case index
    hashes = np.array([D.image_hash(a) for a in images], dtype=np.uint64)
    pairs, dist, sim = D.similar_pairs(hashes, thumbs, max_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    return {(int(a), int(b)): s for (a, b), s in zip(pairs, sim)}


@pytest.mark.parametrize("cuts", [(0.15, 0.0, 0.1, 0.0), (0.0, 0.2, 0.0, 0.15), (0.1, 0.1, 0.1, 0.1)])
def test_a_crop_into_the_anatomy_is_found_by_the_window_rule(cuts):
    image = _scene(21)
    copy = D.transform(_crop(image, *cuts), "flip_lr", np.random.default_rng(0))
    found = _window_rule([image, copy, _scene(22)])
    assert found.get((0, 1), 0) >= MIN_SIMILARITY, found


def test_crops_of_real_mr_slices_correlate_with_their_source_at_about_their_own_framing():
    """Ground truth on real images nobody on the project made: PyRadiomics' brain MRs, crops of 10-25 % a side.

    Measured: with the stored 64-pixel frame (box + 10 %) the median true pair correlates at 0.985
    and the weakest at 0.92; with the earlier 32-pixel box thumbnail the median was 0.975 and one
    crop fell to 0.88, below the threshold (a window of a small thumbnail is blown up and blurred,
    and a crop's robust box can reach past its source's).
    """
    import SimpleITK as sitk

    from radaug.data.pyradiomics_cases import fetch_cases

    cases = fetch_cases(Path(__file__).resolve().parents[2] / "resources" / "pyradiomics")
    best = []
    for case in ("brain1", "brain2"):
        volume = sitk.GetArrayFromImage(sitk.ReadImage(str(cases[case][0]))).astype(np.float32)
        for z in (len(volume) // 3, len(volume) // 2):
            image = volume[z]
            for cuts in [(0.15, 0.0, 0.1, 0.0), (0.0, 0.2, 0.0, 0.15), (0.1, 0.1, 0.1, 0.1), (0.2, 0.0, 0.2, 0.0),
                         (0.05, 0.2, 0.2, 0.05)]:
                found = _window_rule([image, _crop(image, *cuts)])
                best.append(found.get((0, 1), 0.0))
    assert min(best) >= MIN_SIMILARITY, best  # every crop found at the default threshold
    assert np.median(best) >= 0.98, best


def test_the_window_rule_does_not_link_different_images_of_the_same_anatomy():
    images = [_scene(seed) for seed in range(40, 56)]
    images += [_crop(a, 0.1, 0.0, 0.0, 0.1) for a in images[:4]]  # crops of others, to tempt the windows
    found = _window_rule(images)
    false = {p: s for p, s in found.items() if s >= 0.90 and not (p[1] - p[0] == 16 and p[0] < 4)}
    assert not false, false  # a margin below the threshold (measured: at most 0.864)
    assert all(found.get((i, i + 16), 0) >= MIN_SIMILARITY for i in range(4))


def test_window_search_equals_brute_force():
    rng = np.random.default_rng(3)
    n, w = 60, 5
    windows = rng.integers(0, 2**63, size=(n, w), dtype=np.int64).astype(np.uint64) & ~np.uint64(1)
    hashes = windows[:, 0].copy()
    # plant: image 2k+1's full hash is a flipped, perturbed window of image 2k
    for k in range(0, n - 1, 2):
        h = D.dihedral_variants(windows[k:k + 1, rng.integers(w)])[rng.integers(8), 0]
        for bit in rng.choice(np.arange(1, 64), rng.integers(0, 14), replace=False):
            h ^= np.uint64(1) << np.uint64(bit)
        hashes[k + 1] = h
    windows[:, 0] = hashes
    for max_bits in (4, 12, 20):
        for radius in (0, 1, 2):
            got = D.window_candidates(hashes, windows, max_bits, block_radius=radius, chunk=7)
            want = D.brute_force_window_candidates(hashes, windows, max_bits, block_radius=radius)
            np.testing.assert_array_equal(got, want)
            assert len(want) > 0


@pytest.mark.parametrize("seed", range(3))
def test_window_search_equals_brute_force_on_clustered_hashes(seed):
    """Randomised: images that are flipped, perturbed copies of a few seeds, windows near their full frame."""
    rng = np.random.default_rng(200 + seed)
    n, w = 150, 9
    hashes = _clustered_hashes(rng, n_seeds=6, n=n, max_flips=10)[:n]
    windows = np.repeat(hashes[:, None], w, axis=1)
    for bit in range(1, 64):  # each window: about 4 of the 63 bits changed from the full frame
        windows[:, 1:] ^= np.where(rng.random((n, w - 1)) < 4 / 63, np.uint64(1) << np.uint64(bit), np.uint64(0))
    for max_bits in (6, 16, int(rng.integers(8, 24))):
        for radius in (1, 2):
            got = D.window_candidates(hashes, windows, max_bits, block_radius=radius, chunk=int(rng.integers(1, 60)))
            want = D.brute_force_window_candidates(hashes, windows, max_bits, block_radius=radius)
            np.testing.assert_array_equal(got, want)
            assert len(want) > n


def test_window_hashes_agree_with_the_image_hash_and_windows_are_exact_area_averages():
    image = _scene(9)
    stored = D.framed_thumbnail(image)
    assert stored.shape == (D.STORED, D.STORED)
    # window 0 is the foreground box, resampled from the stored frame: within a few bits of the image's own hash
    assert int(np.bitwise_count(D.window_hashes(stored[None])[0, 0] ^ np.uint64(D.image_hash(image)))) <= 4
    box = D.crop_thumbnails(stored[None], [[0.0] * 4], equalise=True)[0]
    assert np.corrcoef(box.ravel(), D.thumbnail(image).ravel())[0, 1] > 0.99
    # the window reaching the whole frame (cuts -MARGIN) is the 2 x 2 area average of the stored pixels
    whole = D.crop_thumbnails(stored[None], [[-D.MARGIN] * 4], equalise=False)[0]
    np.testing.assert_allclose(whole, stored.reshape(D.THUMB, 2, D.THUMB, 2).mean(axis=(1, 3)), atol=1e-12)


def test_window_matrices_are_the_overlap_formula_over_every_pixel():
    """Only the pixels an output pixel can touch are computed: the same numbers, bit for bit, as over all n."""
    rng = np.random.default_rng(3)
    for n, out in ((64, 32), (32, 32), (517, 64), (40, 64), (7, 3), (1, 5)):
        lo, hi = rng.uniform(-0.3, 0.45, 12), rng.uniform(-0.3, 0.45, 12)
        lo[:3], hi[:3] = [-D.MARGIN, 0.0, 0.25], [0.4, 0.0, -0.125]  # edges on pixel boundaries too
        edges = (lo[:, None] + (1 - hi - lo)[:, None] * np.linspace(0.0, 1.0, out + 1)) * n
        start, stop, pixel = edges[:, :-1, None], edges[:, 1:, None], np.arange(n, dtype=np.float64)
        dense = np.maximum(np.minimum(pixel + 1, stop) - np.maximum(pixel, start), 0.0) / (stop - start)
        np.testing.assert_array_equal(D._window_matrices(lo, hi, n, out), dense)


@pytest.mark.parametrize("moving", [(0, 1), (2, 3)])
def test_a_refinement_trial_on_a_held_axis_scores_as_the_cropped_window(moving):
    """_FixedAxis (the held axis resampled and smoothed once per start) gives crop_thumbnails' similarity."""
    rng = np.random.default_rng(4)
    stored = rng.random((6, D.STORED, D.STORED))
    cuts = rng.uniform(-D.MARGIN, 0.4, (6, 4))
    cuts[0], cuts[1] = -D.MARGIN, [0.4, 0.0, 0.4, -D.MARGIN]  # the refinement's clip limits
    target = D._similarity_vectors(rng.random((6, D.THUMB, D.THUMB)))
    want = np.sum(target * D._similarity_vectors(D.crop_thumbnails(stored, cuts, equalise=False)), axis=-1)
    if moving == (0, 1):  # top/bottom move: columns held, on the transposed frames
        held = D._FixedAxis(np.ascontiguousarray(stored.swapaxes(1, 2)), (2, 3))
        target = target.reshape(-1, D.THUMB, D.THUMB).swapaxes(1, 2).reshape(len(target), -1)
    else:
        held = D._FixedAxis(stored, (0, 1))
    f = D._frame_fractions(cuts)
    held.update(f)
    raw = held.bands(f[:, moving[0]], f[:, moving[1]])
    band = raw - raw.mean(axis=1, keepdims=True)
    got = np.einsum("ij,ij->i", target, band) / np.linalg.norm(band, axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    one = D._FixedAxis(held.stored[2:3], held.held)  # a start's band does not depend on the other starts
    one.update(f[2:3])
    np.testing.assert_array_equal(one.bands(f[2:3, moving[0]], f[2:3, moving[1]])[0], raw[2])


def _plain_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The robust box of a foreground mask as it is, stray parts and all."""
    return tuple(slice(*D._robust_span(mask.sum(axis=a))) for a in (1, 0))


def _head(shape=(229, 235), centre=(120, 116), radii=(85, 75)) -> np.ndarray:
    """A bright ellipse ("head") with a dark hole, on a black field, like a Br35H slice."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    inside = ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 <= 1
    hole = ((yy - centre[0]) / 20) ** 2 + ((xx - centre[1] + 20) / 15) ** 2 <= 1
    return np.where(inside & ~hole, 120.0, 0.0)


def test_the_background_threshold_is_scikit_images_three_class_otsu():
    """The reference: ``skimage.filters.threshold_multiotsu(classes=3, nbins=64)``'s lower threshold, on
    three-mode mixtures, a real brain MR slice (PyRadiomics) and a Br35H-like head; with fewer than three
    grey levels (where scikit-image raises) the two-class threshold."""
    import SimpleITK as sitk
    from skimage.filters import threshold_multiotsu

    from radaug.data.pyradiomics_cases import fetch_cases

    rng = np.random.default_rng(3)
    samples = [np.concatenate([rng.normal(m, sd, n) for m, sd, n in
                               [(0, 1, rng.integers(100, 5000)), (rng.uniform(2, 8), 1, rng.integers(100, 5000)),
                                (rng.uniform(8, 15), 1.5, rng.integers(10, 3000))]]) for _ in range(40)]
    cases = fetch_cases(Path(__file__).resolve().parents[2] / "resources" / "pyradiomics")
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(cases["brain1"][0]))).astype(np.float64)
    samples += [volume[len(volume) // 2], _head() + rng.normal(0, 3, _head().shape)]

    def between(lower: float, upper: float) -> float:  # the three classes' sum of S_k^2 / W_k, in float64
        classes = np.digitize(centres, [lower, upper], right=True)
        return sum(np.sum(hist[classes == k] * centres[classes == k]) ** 2 / max(hist[classes == k].sum(), 1)
                   for k in range(3))

    near_ties = 0
    for values in samples:
        hist, edges = np.histogram(values, bins=64)
        centres = (edges[:-1] + edges[1:]) / 2
        ours, theirs = D._background_threshold(values), threshold_multiotsu(values, classes=3, nbins=64)
        if ours != pytest.approx(theirs[0]):  # scikit-image sums in float32: a near-tie can go the other way
            upper = max((between(ours, c), c) for c in centres if c > ours)[1]
            assert abs(ours - theirs[0]) <= 1.01 * (edges[1] - edges[0])
            assert between(ours, upper) >= between(*theirs) >= (1 - 1e-6) * between(ours, upper)
            near_ties += 1
    assert near_ties <= 2
    two_levels = _head()  # scikit-image needs three levels; two-class Otsu keeps the head
    assert D.foreground_box(two_levels) == _plain_box(two_levels > 0)
    for values in samples[:5]:  # an offset or a scale of the intensities moves nothing (variances on bin positions)
        assert D._background_threshold(values * 1e-6 + 1e8) == pytest.approx(D._background_threshold(values) * 1e-6 + 1e8,
                                                                             rel=0, abs=1e-6)


def test_a_faint_body_with_a_bright_lesion_keeps_the_body_in_its_box():
    """Otsu's two classes put a faint body with the background when a bright part dominates the
    histogram's spread; the box then shrinks to that part, and a copy whose contrast or crop moves the
    split frames another region (the benchmark's gamma, combined and 20 % crop misses; BENCHMARKS.md).
    The background class of a three-class split keeps the body."""
    head = _head() > 0
    image = np.where(head, 40.0, 0.0) + np.random.default_rng(0).normal(0, 2, head.shape)
    image[100:130, 60:90] = 250.0  # the lesion
    assert D._otsu(image) > 40  # two classes: the lesion alone is foreground
    body, lesion = _plain_box(head), _plain_box(image > D._otsu(image))
    for got, want, two_class in zip(D.foreground_box(image), body, lesion):
        assert abs(got.start - want.start) <= 1 and abs(got.stop - want.stop) <= 1  # noise at the rim: a pixel
        assert two_class.stop - two_class.start <= 31  # what the two-class box would have been


@pytest.mark.parametrize("artefact", ["edge_column", "edge_row_2px", "frame", "text", "specks"])
def test_stray_foreground_parts_do_not_move_the_box(artefact):
    """Lines along the image's edge, frames, burnt-in text and specks are left out of the box.

    The audit's case: Br35H's no361 and no551 are one slice, one with a one-pixel bright column
    at its right edge, the other at its left (1.15 % of the foreground, above the robust span's
    1 % tail), which put their boxes 41 pixels apart, so their hashes 18 bits apart.
    """
    clean = _head()
    image = clean.copy()
    if artefact == "edge_column":
        image[:, -1] = 80.0
    elif artefact == "edge_row_2px":
        image[:2, :] = 80.0
    elif artefact == "frame":
        image[[0, -1], :] = image[:, [0, -1]] = 200.0
    elif artefact == "text":  # 3 x 5-pixel "characters" of 1-pixel strokes in a corner, away from the edge
        for k in range(12):
            image[4:9, 4 + 5 * k] = image[4, 4 + 5 * k:7 + 5 * k] = 255.0
    else:  # 400 one-pixel specks left of the head: 2.3 % of the foreground, past the robust span's 1 % tail
        rng = np.random.default_rng(0)
        image[rng.integers(0, 229, 400), rng.integers(0, 36, 400)] = 255.0
    assert (image != clean).any() and D.foreground_box(image) == D.foreground_box(clean)
    assert D.image_hash(image) == D.image_hash(clean)  # the artefacts lie outside the box


def test_the_box_keeps_every_large_part_whole():
    """Whole parts are kept or dropped, never eroded: a head with a thin (2-pixel) outgrowth holding
    over 1 % of the foreground keeps it in its box (an opening would cut it off), two separate large
    parts (a head and a shoulder) both stay in the box; and a foreground made only of small fragments
    (a noisy, low-contrast image) keeps its plain robust box."""
    head = _head(shape=(200, 300), centre=(100, 80), radii=(60, 50))
    head[99:101, 125:161] = head[40:160, 159:161] = 120.0  # an L joined to the head: 2.3 % of the foreground
    assert D.foreground_box(head) == _plain_box(head > 0)
    assert D.foreground_box(head)[1].stop == 161  # an opened foreground's box would end at the head (131)
    two = _head(shape=(200, 300), centre=(100, 80), radii=(60, 50))
    two[40:160, 200:260] = 90.0
    assert D.foreground_box(two) == _plain_box(two > 0)
    fragments = np.zeros((100, 100))
    fragments[10:90:3, 10:90:3] = 1.0  # isolated pixels only: every part is a speck
    np.testing.assert_array_equal(D._main_foreground(fragments > 0.5), fragments > 0.5)
    assert D.foreground_box(fragments) == _plain_box(fragments > 0.5)


def test_the_stored_frame_widens_the_foreground_box_by_the_margin():
    """The frame holds the foreground box plus MARGIN of it on every side; past the image, the image's minimum."""
    image = np.zeros((200, 300))
    image[50:150, 100:200] = 1.0
    stored = D.framed_thumbnail(image)
    bright = stored > 0.5
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    box = D.STORED / (1 + 2 * D.MARGIN)  # the box's share of the frame: 53.3 stored pixels
    for found in (rows, cols):
        assert box - 2 <= len(found) <= box + 1
        assert abs(found[0] - (D.STORED - 1 - found[-1])) <= 1  # the same margin on both sides
    # A frame reaching past the image: the left margin lies outside it and must read the minimum (0),
    # tied with a dark block inside the image, not the 1 of the dark field beside the body (10, with
    # a bright lesion, 20: the field is the background class of the three-class split).
    edge = np.ones((100, 100))
    edge[:, :60] = 10.0
    edge[70:90, 20:50] = 20.0
    edge[40:60, 10:30] = 0.0
    assert D.foreground_box(edge) == (slice(0, 100), slice(0, 60))
    framed = D.framed_thumbnail(edge)
    assert framed[30, 0] == framed[30, 20] == framed.min()
    assert framed[30, -1] > framed.min()  # the dark field inside the frame on the right


def test_thumbnails_round_trip_and_bad_ones_name_the_case():
    thumb = D.framed_thumbnail(_scene(5))
    back = D.decode_thumbnails([D.encode_thumbnail(thumb)])[0]
    assert np.abs(back - thumb).max() <= 0.5 / 255 + 1e-12
    with pytest.raises(ValueError, match="case 'c2'.*dup_thumb"):
        D.decode_thumbnails([D.encode_thumbnail(thumb), "dt4:AAAA"], case_ids=["c1", "c2"])
    with pytest.raises(ValueError, match="case 'c1'.*rebuild the case index"):  # an index from before the frame
        D.decode_thumbnails(["dt1:" + "A" * 1368], case_ids=["c1"])


def _image_cases(images, labels):
    sigs = [D.thumbnail_signature(a) for a in images]
    n = len(images)
    return pd.DataFrame({
        "case_id": [f"c{i:02d}" for i in range(n)], "patient_id": [f"p{i:02d}" for i in range(n)],
        "label": labels, "group": "", "dup_hash": [h for h, _ in sigs], "dup_thumb": [t for _, t in sigs],
        "content_sha256": [f"s{i}" for i in range(n)],
    })


def test_a_cropped_copy_never_straddles_and_the_audit_lists_the_closest_ungrouped_pairs():
    images = [_scene(seed) for seed in range(60, 76)]
    images.append(D.transform(_crop(images[3], 0.0, 0.18, 0.12, 0.0), "rot90", np.random.default_rng(1)))
    cases = _image_cases(images, ["a" if i % 2 else "b" for i in range(16)] + ["a"])
    plain = duplicate_pairs(cases, MAX_BITS)
    assert (3, 16) not in set(zip(plain["a"], plain["b"]))  # the hash rule alone misses this crop
    pairs = duplicate_pairs(cases, MAX_BITS, verify_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    assert list(zip(pairs["a"], pairs["b"], pairs["rule"])) == [(3, 16, "window")]
    folds = make_folds(cases, folds=4, seed=0, verify_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    check_folds(folds, cases)
    roles = folds.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    assert (roles.loc["c03"] == roles.loc["c16"]).all()
    audit = duplicate_audit(cases, folds, MAX_BITS, verify_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    top = audit.iloc[0]
    assert (top["case_a"], top["case_b"], top["linked"], top["grouped"], top["straddles"]) == \
        ("c03", "c16", True, True, False)
    assert top["similarity"] >= MIN_SIMILARITY
    rest = audit[~audit["grouped"]]
    assert len(rest) and (rest["similarity"].fillna(0) < MIN_SIMILARITY).all() and not rest["linked"].any()
    assert rest["similarity"].max() <= 0.905  # the hardest different scenes (c07 - c15): 0.901
    assert not audit.loc[audit["grouped"], "straddles"].any()
    # without the window rule the same split puts them apart in some fold
    apart = make_folds(cases, folds=4, seed=0, verify_bits=0)
    roles = apart.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    assert (roles.loc["c03"] != roles.loc["c16"]).any()


def test_a_case_index_without_thumbnails_is_grouped_by_the_hash_rule_only():
    """Empty ``dup_thumb`` (a case index of a radaug before volume thumbnails, whose volumes had none):
    the split uses the hash rule alone, as for a table without the column."""
    images = [_scene(seed) for seed in range(60, 76)]
    images.append(D.transform(_crop(images[3], 0.0, 0.18, 0.12, 0.0), "rot90", np.random.default_rng(1)))
    cases = _image_cases(images, ["a" if i % 2 else "b" for i in range(16)] + ["a"]).assign(dup_thumb="")
    pairs = duplicate_pairs(cases, MAX_BITS, verify_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    assert_frame_equal(pairs, duplicate_pairs(cases.drop(columns="dup_thumb"), MAX_BITS))


def test_preprocessing_stores_a_frame_thumbnail_for_images_and_a_volume_thumbnail_for_volumes(tmp_path):
    from types import SimpleNamespace

    import SimpleITK as sitk

    from radaug.preprocess import preprocess_case

    for dim, size in ((2, [16, 16]), (3, [16, 16, 8])):
        shape = (24, 40, 40)[3 - dim:]
        image = np.random.default_rng(0).normal(0, 50, shape).astype(np.int16)
        mask = np.zeros(shape, np.uint8)
        mask[(slice(4, 8),) * dim] = 1
        paths = {}
        for name, array in (("image", image), ("mask", mask)):
            paths[name] = tmp_path / f"{name}{dim}.nrrd"
            sitk.WriteImage(sitk.GetImageFromArray(array), str(paths[name]))
        row = SimpleNamespace(case_id="c", patient_id="p", label="a", modality="CT", domain="", group="",
                              image=str(paths["image"]), mask=str(paths["mask"]), image_sha256="", mask_sha256="")
        record = preprocess_case(row, mask_label=None, patch_size=size)[1]
        assert record["dup_hash"].startswith(D.HASH_VERSION + ":")
        prefix = D.VOLUME_VERSION if dim == 3 else D.THUMB_VERSION
        assert record["dup_thumb"].startswith(prefix + ":")


def test_the_split_searches_the_window_rule_once_and_reuses_it(monkeypatch):
    from radaug.splits import window_links

    images = [_scene(seed) for seed in range(60, 76)]
    images.append(D.transform(_crop(images[3], 0.0, 0.18, 0.12, 0.0), "rot90", np.random.default_rng(1)))
    cases = _image_cases(images, ["a" if i % 2 else "b" for i in range(16)] + ["a"])
    rules = dict(verify_bits=VERIFY_BITS, min_similarity=MIN_SIMILARITY)
    folds = make_folds(cases, folds=4, seed=0, **rules)
    audit = duplicate_audit(cases, folds, MAX_BITS, **rules)
    window = window_links(cases.sample(frac=1.0, random_state=0), **rules)  # row order does not matter
    assert ("c03", "c16") in set(zip(window["case_a"], window["case_b"]))
    calls = []
    real = D.similar_pairs
    monkeypatch.setattr(D, "similar_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert_frame_equal(make_folds(cases, folds=4, seed=0, window=window, **rules), folds)
    assert_frame_equal(duplicate_audit(cases, folds, MAX_BITS, window=window, **rules), audit)
    assert calls == []  # both reused the links
    assert window_links(cases, verify_bits=0, min_similarity=MIN_SIMILARITY).empty and calls == []
    with pytest.raises(ValueError, match="not in the case table"):
        make_folds(cases.iloc[:10], folds=2, seed=0, window=window, **rules)


def test_window_candidates_keep_the_best_window_of_every_flip_or_rotation():
    """A left-right symmetric slice can hash closer mirrored than as it is: each variant is verified, not just the closest."""
    rng = np.random.default_rng(11)
    windows = rng.integers(0, 2**63, size=(3, 6), dtype=np.int64).astype(np.uint64) & ~np.uint64(1)
    hashes = windows[:, 0].copy()
    hashes[1] = windows[0, 2]  # image 1 as it is: window 2 of image 0
    windows[0, 4] = D.dihedral_variants(hashes[1:2])[1, 0] ^ np.uint64(1 << 5)  # and mirrored, 1 bit off: window 4
    windows[1, 0] = hashes[1]
    cand = D.window_candidates(hashes, windows, 8)
    rows = {(int(i), int(k)): (int(w), int(d)) for i, j, k, w, d in cand if (i, j) == (1, 0)}
    assert rows[(1, 0)] == (2, 0) and rows[(1, 1)] == (4, 1)


def test_similarity_is_the_band_pass_correlation_and_separates_copies_from_other_slices():
    from scipy.ndimage import gaussian_filter
    from scipy.stats import pearsonr

    a, b = D.thumbnail(_scene(30)), D.thumbnail(_scene(31))
    fine, coarse = D.SIMILARITY_SIGMAS
    band = [gaussian_filter(t, fine, mode="nearest") - gaussian_filter(t, coarse, mode="nearest") for t in (a, b)]
    assert D.similarity(a, b) == pytest.approx(pearsonr(band[0].ravel(), band[1].ravel())[0], abs=1e-12)
    assert D.similarity(a, a) == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    image = _scene(30)
    for name in ("noise", "jpeg", "gamma", "contrast"):
        assert D.similarity(a, D.thumbnail(D.transform(image, name, rng))) >= MIN_SIMILARITY, name
    others = [D.similarity(a, D.thumbnail(_scene(s))) for s in range(31, 41)]
    assert max(others) < 0.85  # measured: 0.655


@pytest.mark.parametrize("k, cut", [(0, (0.1, 0.2, 0.2, 0.2)), (1, (0.0, 0.1, 0.1, 0.1)), (6, (0.2, 0.2, 0.2, 0.2))])
def test_verification_does_not_depend_on_the_hash_matched_pose(k, cut):
    """A crop whose hash matched a wrong window or a wrong mirror of its source is still verified.

    The Br35H crop misses of the issue-16 benchmark: the hash's closest window lay a grid
    step (10 %) away from the crop's framing, where the band-pass correlation is that of
    unrelated images (0.19-0.29), and the greedy refinement from there did not climb out; or
    the hash matched a mirror. Before: this crop, given the start (k=0, window (0.1, 0.2,
    0.2, 0.2)), verified at 0.04, and at (k=1, (0, 0.1, 0.1, 0.1)) at 0.70. Verification now
    scores all 8 flips/rotations against all grid windows and refines from the best.
    """
    image = _scene(25)
    copy = _crop(image, 0.0, 0.15, 0.15, 0.15)
    thumbs = D.decode_thumbnails([D.encode_thumbnail(D.framed_thumbnail(a)) for a in (image, copy)])
    w = int(np.flatnonzero((D.window_cuts() == cut).all(axis=1))[0])
    sim = D.verify_candidates(thumbs, np.array([[1, 0, k, w, 14]]),
                              refine=(MIN_SIMILARITY - D.REFINE_MARGIN, MIN_SIMILARITY))
    assert sim[0] >= MIN_SIMILARITY
    # rows of one ordered pair get one value, whatever their hash-matched pose
    rows = np.array([[1, 0, 0, w, 14], [1, 0, 5, 0, 15], [0, 1, 2, 3, 16]])
    got = D.verify_candidates(thumbs, rows)
    assert got[0] == got[1] >= MIN_SIMILARITY


def test_verification_refuses_candidates_that_are_not_rows_of_five():
    """A (5, 4) array would reshape silently into four wrong rows of five."""
    thumbs = np.zeros((6, D.STORED, D.STORED), dtype=np.uint8)
    with pytest.raises(ValueError, match="rows of"):
        D.verify_candidates(thumbs, np.zeros((5, 4), dtype=np.int64))
    assert D.verify_candidates(thumbs, np.zeros((0, 5), dtype=np.int64)).shape == (0,)


def test_a_long_verification_logs_its_progress_and_an_estimate(monkeypatch, caplog):
    """The window rule grows with the square of the cohort: the split's log says how far it is and how long is left."""
    images = [_scene(s) for s in range(50, 54)]
    thumbs = D.decode_thumbnails([D.encode_thumbnail(D.framed_thumbnail(a)) for a in images])
    rows = np.array([[i, j, 0, 0, 12] for i in range(4) for j in range(4) if i != j])
    quiet = D.verify_candidates(thumbs, rows, chunk=3)
    monkeypatch.setattr(D, "PROGRESS_EVERY", 0.0)  # a line after every chunk but the last
    with caplog.at_level(logging.INFO, logger="radaug.duplicates"):
        assert np.array_equal(D.verify_candidates(thumbs, rows, chunk=3, threads=2), quiet)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "window rule: verifying 12 candidate pairs (12 candidate rows) on 2 thread(s)"
    progress = lines[1:]
    assert len(progress) == 3 and all(re.fullmatch(
        r"window rule: (3|6|9) of 12 candidate pairs verified \(\d+%\) in \d+ s; about \d+ s to go", m)
        for m in progress), progress
    assert D._duration(59.6) == "1 min 00 s" and D._duration(3725) == "1 h 02 min"


def test_verification_on_threads_gives_the_values_of_one_thread():
    """Chunks of pairs run on the job's threads (the split's longest step); each chunk computes what it computes alone."""
    images = [_scene(s) for s in range(50, 56)]
    images += [_crop(images[0], 0.0, 0.15, 0.1, 0.05), _crop(images[1], 0.1, 0.0, 0.0, 0.1)]
    thumbs = D.decode_thumbnails([D.encode_thumbnail(D.framed_thumbnail(a)) for a in images])
    rng = np.random.default_rng(5)
    pairs = [(i, j) for i in range(len(images)) for j in range(len(images)) if i != j]
    rows = np.array([[i, j, rng.integers(8), rng.integers(len(D.window_cuts())), 12] for i, j in pairs])
    refine = (MIN_SIMILARITY - D.REFINE_MARGIN, MIN_SIMILARITY)
    one = D.verify_candidates(thumbs, rows, chunk=5, refine=refine)
    assert np.array_equal(D.verify_candidates(thumbs, rows, chunk=5, refine=refine, threads=3), one)
    assert np.array_equal(D.verify_candidates(thumbs, rows, chunk=len(pairs), refine=refine), one)  # chunking neither
    assert one[pairs.index((6, 0))] >= MIN_SIMILARITY and one[pairs.index((7, 1))] >= MIN_SIMILARITY
