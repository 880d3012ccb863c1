"""The volume rule (:mod:`radaug.duplicates`, 3D): copies of real volumes found, distinct ones not.

Ground truth: PyRadiomics' public test volumes (brain MR x2, lung CT x2), each copied the ways
a public 3D data set holds one scan twice (in-plane crop, slices left out, another voxel size, a
gamma change, a mirror, noise, all of them at once), and the two volumes of one anatomy as the
hard negatives. The masked correlation is checked against scikit-image's
``cross_correlate_masked`` and a direct computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radaug import duplicates as D
from radaug.config import schema
from radaug.preprocess import duplicate_signature
from radaug.splits import duplicate_pairs, make_folds, split_study, window_links

REPO = Path(__file__).resolve().parents[2]
THRESHOLD = schema()["properties"]["split"]["properties"]["min_volume_similarity"]["default"]  # 0.7


@pytest.fixture(scope="module")
def volumes() -> dict[str, sitk.Image]:
    from radaug.data.pyradiomics_cases import fetch_cases

    cases = fetch_cases(REPO / "resources" / "pyradiomics")
    return {name: sitk.ReadImage(str(cases[name][0])) for name in ("brain1", "brain2", "lung1", "lung2")}


def _thumb(image: sitk.Image):
    return D.volume_thumbnail(*D.canonical_volume(image))


def _edit(image: sitk.Image, edit) -> sitk.Image:
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    out = sitk.GetImageFromArray(np.ascontiguousarray(edit(array)))
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.GetOrigin())
    return out


def _resample(image: sitk.Image, in_plane: float, slices: float) -> sitk.Image:
    scale = np.array([in_plane, in_plane, slices])
    size = [int(round(n)) for n in np.array(image.GetSize()) / scale]
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         tuple(np.array(image.GetSpacing()) * scale), image.GetDirection(),
                         float(sitk.GetArrayViewFromImage(image).min()))


def _crop(a, f=0.10):
    _, h, w = a.shape
    return a[:, int(f * h):h - int(f * h), int(f * w):w - int(f * w)]


def _restack(a, f=0.15):
    return a[int(f * len(a)):len(a) - int(f * len(a))]


def _gamma(a, g=0.6):
    lo, hi = a.min(), a.max()
    return lo + (hi - lo) * ((a - lo) / (hi - lo)) ** g


def _noise(a, f=0.03):
    return a + np.random.default_rng(0).normal(0, f * np.ptp(a), a.shape).astype(np.float32)


EDITS = {
    "crop": lambda im: _edit(im, _crop),
    "restack": lambda im: _edit(im, _restack),
    "resample": lambda im: _resample(im, 1.4, 1.25),
    "gamma": lambda im: _edit(im, _gamma),
    "mirror": lambda im: _edit(im, lambda a: a[:, :, ::-1]),
    "noise": lambda im: _edit(im, _noise),
    "all": lambda im: _edit(_resample(_edit(im, lambda a: _gamma(_restack(_crop(a)))), 1.4, 1.25), _noise),
}


def test_the_masked_correlation_is_scikit_images_and_the_direct_one():
    from skimage.registration._masked_phase_cross_correlation import cross_correlate_masked

    rng = np.random.default_rng(3)
    a, b = rng.random((6, 7, 5)), rng.random((5, 7, 6))
    b[1:4, 2:6, 1:5] = a[2:5, 1:5, 0:4] + 0.05 * rng.random((3, 4, 4))  # a shifted part of a in b
    ones_a, ones_b = np.ones(a.shape, bool), np.ones(b.shape, bool)
    shape = D._padded_shape(a, b)
    ours = D._masked_ncc(D._Spectra(a, ones_a, shape), D._Spectra(b, ones_b, shape), shape, 0.0)
    reference = cross_correlate_masked(a, b, ones_a, ones_b, mode="full", axes=(0, 1, 2), overlap_ratio=0.0)
    assert ours == pytest.approx(reference.max(), abs=1e-9)

    mask_a, mask_b = rng.random(a.shape) > 0.3, rng.random(b.shape) > 0.3
    ncc, n = D._masked_ncc_map(D._Spectra(a, mask_a, shape), D._Spectra(b, mask_b, shape), shape)
    checked = 0
    for t in np.ndindex(*shape):  # entry t compares a[x + t] with b[x], t modulo the padded shape
        both_a, both_b = [], []
        for x in np.ndindex(*b.shape):
            y = tuple((xi + ti) % si for xi, ti, si in zip(x, t, shape))
            if all(yi < ai for yi, ai in zip(y, a.shape)) and mask_a[y] and mask_b[x]:
                both_a.append(a[y])
                both_b.append(b[x])
        assert n[t] == len(both_a)
        if len(both_a) >= 8:
            assert ncc[t] == pytest.approx(np.corrcoef(both_a, both_b)[0, 1], abs=1e-9)
            checked += 1
    assert checked > 100


def test_copies_of_real_volumes_are_above_the_threshold_and_distinct_volumes_below(volumes):
    thumbs = {name: _thumb(image) for name, image in volumes.items()}
    lowest = 1.0
    for name in ("brain1", "lung2"):
        for edit, make in EDITS.items():
            value = D.volume_similarity(*thumbs[name], *_thumb(make(volumes[name])))
            assert value >= THRESHOLD, (name, edit, value)
            lowest = min(lowest, value)
    assert lowest == pytest.approx(0.806, abs=0.01)  # brain1, every edit at once (measured)
    brains = D.volume_similarity(*thumbs["brain1"], *thumbs["brain2"])
    lungs = D.volume_similarity(*thumbs["lung1"], *thumbs["lung2"])
    assert brains == pytest.approx(0.512, abs=0.01) and lungs == pytest.approx(0.493, abs=0.01)
    assert max(brains, lungs) < THRESHOLD
    assert D.volume_similarity(*thumbs["brain1"], *thumbs["lung1"]) == -1.0  # 200 vs 290 mm across: not compared


@pytest.fixture(scope="module")
def volume_cases(volumes) -> pd.DataFrame:
    """The four real volumes, a cropped lung CT and a brain MR edited every way, as a case index holds them."""
    images = dict(volumes)
    images["lung2_crop"] = EDITS["crop"](volumes["lung2"])
    images["brain1_all"] = EDITS["all"](volumes["brain1"])
    signed = {name: duplicate_signature(image) for name, image in images.items()}
    return pd.DataFrame({"case_id": list(signed), "patient_id": list(signed),
                         "label": ["a", "b", "a", "b", "b", "a"], "group": "",
                         "dup_hash": [h for h, _ in signed.values()], "dup_thumb": [t for _, t in signed.values()]})


def test_the_split_links_the_copies_by_the_volume_rule_and_nothing_else(volume_cases):
    cases = volume_cases
    pairs = duplicate_pairs(cases, 7, min_volume_similarity=THRESHOLD)
    ids = cases["case_id"].to_numpy()
    linked = {(ids[a], ids[b]) for a, b in zip(pairs["a"], pairs["b"])}
    assert linked == {("brain1", "brain1_all"), ("lung2", "lung2_crop")}
    assert pairs["rule"].str.contains("volume").all()
    assert pairs["similarity"].min() >= THRESHOLD
    assert duplicate_pairs(cases, 7).empty  # without the volume rule, the projection's hash links neither copy
    folds = make_folds(cases, folds=2, seed=0, min_volume_similarity=THRESHOLD)
    group = folds.drop_duplicates("case_id").set_index("case_id")["group"]
    assert group["lung2"] == group["lung2_crop"] and group["brain1"] == group["brain1_all"]
    assert group["lung1"] != group["lung2"] and group["brain1"] != group["brain2"]
    assert window_links(cases, 16, 0.915, min_volume_similarity=None).empty  # the rule off: no search


def test_the_audit_and_the_report_use_the_volume_rule_and_its_threshold(volume_cases):
    from radaug.report import _duplicates_section, _thumb

    rules = {"verify_bits": 16, "min_similarity": 0.915, "min_volume_similarity": THRESHOLD}
    folds, audit = split_study(volume_cases, {"folds": 2, "repeats": 1, "near_duplicate_bits": 7, **rules}, 0)
    volume_rows = audit[audit["rule"].str.contains("volume")]
    assert len(volume_rows) >= 2
    # candidates down to the threshold less 0.1, linked at the threshold (not at the 2D rule's 0.915)
    assert (volume_rows["similarity"] >= THRESHOLD - 0.1).all()
    assert (volume_rows["linked"] == (volume_rows["similarity"] >= THRESHOLD)).all()
    assert not audit["straddles"].any()
    middle = _thumb(volume_cases, "lung2")
    assert middle.shape == (D.VOLUME_SIDE, D.VOLUME_SIDE) and 0 <= middle.min() and middle.max() <= 1
    html = _duplicates_section(volume_cases, folds, audit, ["a", "b"], rules)
    assert f"correlate at {THRESHOLD} or more at the best translation" in html
    assert "crop window" not in html  # the 2D window rule does not apply to volumes
    stale = volume_cases.assign(dup_thumb=volume_cases["dup_thumb"].str.replace(D.VOLUME_VERSION, "dv1", n=1))
    assert _thumb(stale, "lung2") is None  # an older index, which a split by the hash rule alone accepts: no picture


def test_a_table_mixing_images_and_volumes_falls_back_to_the_hash_rule_and_says_so(volume_cases, caplog):
    mixed = volume_cases.copy()
    mixed.loc[0, "dup_thumb"] = D.encode_thumbnail(np.zeros((D.STORED, D.STORED)))
    with caplog.at_level("WARNING", logger="radaug.splits"):
        assert window_links(mixed, 16, 0.915, min_volume_similarity=THRESHOLD).empty
    assert "2D images and 3D volumes mixed" in caplog.text and "only the hash rule" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="radaug.splits"):  # an index of a radaug before volume thumbnails
        assert window_links(volume_cases.assign(dup_thumb=""), 16, 0.915, min_volume_similarity=THRESHOLD).empty
    assert "of 6 cases, 6 have no dup_thumb" in caplog.text and "older radaug" in caplog.text


@pytest.mark.parametrize("seed", [3000, 3013])
def test_noise_does_not_move_a_phantom_cts_foreground(seed, monkeypatch):
    """Air at exactly -1000 HU and a body 70 HU wide: noise of 3 % of the range puts half the air
    above the three-class split of the unsmoothed volume (the benchmark's missed noisy phantoms)."""
    from radaug.data.phantom import phantom_case

    volume, _ = phantom_case(np.random.default_rng(seed), "benign", "coarse", dim=3, size=48, separation=1.0)
    volume = volume.astype(np.float32)
    rng = np.random.default_rng(1)
    noisy = volume + rng.normal(0, 0.03 * (volume.max() - volume.min()), volume.shape).astype(np.float32)
    spacing = (2.5, 0.8, 0.8)
    source, copy = D.volume_thumbnail(volume, spacing), D.volume_thumbnail(noisy, spacing)
    assert np.allclose(source[1], copy[1])  # the same foreground box
    assert abs((source[0] > 0).mean() - (copy[0] > 0).mean()) < 0.01
    assert D.volume_similarity(*source, *copy) >= THRESHOLD
    monkeypatch.setattr(D, "VOLUME_SMOOTHING", 0.0)  # unsmoothed: the box is the whole volume, the copy missed
    source, copy = D.volume_thumbnail(volume, spacing), D.volume_thumbnail(noisy, spacing)
    assert (copy[0] > 0).mean() > (source[0] > 0).mean() + 0.1
    assert D.volume_similarity(*source, *copy) < THRESHOLD


def test_a_large_offset_keeps_the_foreground_of_a_wide_type():
    """The smoothing runs in float64 for 32- and 64-bit types (float32 lost a +1e9 offset's volume)."""
    from radaug.data.phantom import phantom_case

    volume, _ = phantom_case(np.random.default_rng(3000), "benign", "coarse", dim=3, size=48, separation=1.0)
    volume = volume.astype(np.float64)
    plain = D.volume_thumbnail(volume, (2.5, 0.8, 0.8))
    shifted = D.volume_thumbnail(volume + 1e9, (2.5, 0.8, 0.8))
    assert np.array_equal(plain[0], shifted[0]) and np.allclose(plain[1], shifted[1])
    integers = D.volume_thumbnail(np.rint(volume).astype(np.int64) + 2_000_000_000, (2.5, 0.8, 0.8))
    assert np.allclose(plain[1], integers[1])  # the same box (ranks differ only where rounding ties values)


def test_the_search_scores_comparable_pairs_the_same_on_any_number_of_threads():
    from scipy import ndimage

    rng = np.random.default_rng(5)

    def smooth():  # structure at the scale of a thumbnail voxel or more, as anatomy has
        return ndimage.gaussian_filter(rng.random((30, 30, 30)), 2.0).astype(np.float32)

    base = smooth()
    levels, voxels = [], []
    for k, (cut, spacing) in enumerate([(0, 1.0), (3, 1.0), (0, 1.0), (0, 3.0)]):
        volume = base[cut:30 - cut] if k < 2 else smooth()
        thumb, voxel = D.volume_thumbnail(volume, (spacing, 1.0, 1.0))
        levels.append(thumb)
        voxels.append(voxel)
    one = D.similar_volumes(np.array(levels), np.array(voxels), min_similarity=0.7, threads=1)
    two = D.similar_volumes(np.array(levels), np.array(voxels), min_similarity=0.7, threads=2, chunk=1)  # 3 chunks
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    pairs = {tuple(p) for p in one[0]}
    assert (0, 1) in pairs and one[1][list(map(tuple, one[0])).index((0, 1))] > 0.9  # 20 % fewer slices, same voxels
    assert not any(3 in p for p in pairs)  # three times as deep: never compared
    assert not D.comparable_extents(voxels[0], voxels[3]) and D.comparable_extents(voxels[0], voxels[1])


def test_volume_thumbnails_round_trip_and_bad_values_name_the_case():
    volume = np.random.default_rng(0).random((12, 20, 16))
    volume[:, :4] = 0.0  # a background band
    levels, voxel = D.volume_thumbnail(volume, (2.5, 0.8, 0.8))
    assert levels.shape == (D.VOLUME_SIDE,) * 3 and levels.dtype == np.uint8
    assert levels.max() == 255 and (levels == 0).any()  # ranks of the compared voxels; the rest 0
    text = D.encode_volume(levels, voxel)
    assert D.is_volume_thumbnail(text) and not D.is_volume_thumbnail(D.encode_thumbnail(np.zeros((D.STORED,) * 2)))
    back, back_voxel = D.decode_volumes([text])
    assert np.array_equal(back[0], levels) and np.allclose(back_voxel[0], voxel)
    assert D.is_volume_thumbnail(text.replace(D.VOLUME_VERSION, "dv1", 1))  # an older version: a volume, rejected below
    for bad in ("", text.replace(D.VOLUME_VERSION, "dv1", 1), text[:-8], f"{D.VOLUME_VERSION}:1,2:AAAA"):
        with pytest.raises(ValueError, match="case 'c7'.*dup_thumb"):
            D.decode_volumes([bad], case_ids=["c7"])
    with pytest.raises(ValueError, match="NaN"):
        D.volume_thumbnail(np.full((4, 4, 4), np.nan), (1, 1, 1))
    with pytest.raises(ValueError, match="3D"):
        D.volume_thumbnail(np.zeros((4, 4)), (1, 1, 1))
    for spacing in ((1, 1), (1, -1, 1), (1, np.inf, 1)):
        with pytest.raises(ValueError, match="spacing"):
            D.volume_thumbnail(volume, spacing)
    flat, _ = D.volume_thumbnail(np.full((6, 6, 6), 7, dtype=np.int16), (1, 1, 1))  # no foreground: all compared, tied
    assert len(np.unique(flat[flat > 0])) == 1
