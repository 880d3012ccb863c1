"""Tests of radaug.data.phantom: the seeded digital phantom used as ground truth."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull

from radaug.data.phantom import (
    AIR_HU,
    LABELS,
    MANIFEST_COLUMNS,
    RARE_SUBTYPE,
    SUBTYPES,
    TISSUE_HU,
    Body,
    make_phantom_cohort,
    phantom_case,
    random_body,
)
from radaug.errors import ConfigError

SHAPES = [(2, 64), (3, 32)]


def case(seed, label="benign", subtype="fine", **kwargs):
    return phantom_case(np.random.default_rng(seed), label, subtype, **kwargs)


def solidity(mask):
    """Lesion voxel count over the volume of the convex hull of its voxel corners."""
    corners = np.array(list(itertools.product([-0.5, 0.5], repeat=mask.ndim)))
    points = (np.argwhere(mask)[:, None, :] + corners).reshape(-1, mask.ndim)
    return mask.sum() / ConvexHull(points).volume


def binomial_ok(count, n, p, z=3.0):
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("dim,size", SHAPES)
def test_same_seed_same_arrays_different_seed_different(dim, size):
    image, mask = case(7, "malignant", "rare", dim=dim, size=size)
    again_image, again_mask = case(7, "malignant", "rare", dim=dim, size=size)
    other_image, _ = case(8, "malignant", "rare", dim=dim, size=size)
    assert image.tobytes() == again_image.tobytes()
    assert mask.tobytes() == again_mask.tobytes()
    assert not np.array_equal(image, other_image)


@pytest.mark.parametrize("dim,size", SHAPES)
def test_arrays_have_documented_types_and_valid_masks(dim, size):
    for seed in range(30):
        label, subtype = LABELS[seed % 2], SUBTYPES[seed % 3]
        image, mask = case(seed, label, subtype, dim=dim, size=size, separation=1.0)
        assert image.shape == mask.shape == (size,) * dim
        assert image.dtype == np.float32 and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 1}
        # Lesion surrounded by body tissue: no air next to it, nothing on the image edge.
        grown = ndimage.binary_dilation(mask.astype(bool))
        assert np.all(image[grown] > AIR_HU)
        edge = np.ones(mask.shape, bool)
        edge[(slice(1, -1),) * dim] = False
        assert not mask[edge].any()


@pytest.mark.parametrize("dim,size", SHAPES)
def test_hu_anchors_air_outside_body_tissue_around_40(dim, size):
    for seed in range(10):
        image, mask = case(seed, dim=dim, size=size)
        edge = np.ones(image.shape, bool)
        edge[(slice(1, -1),) * dim] = False
        assert np.all(image[edge] == AIR_HU)
        body = image > AIR_HU
        assert np.all(image[~body] == AIR_HU)
        away_from_lesion = body & ~ndimage.binary_dilation(mask.astype(bool), iterations=3)
        assert abs(np.median(image[away_from_lesion]) - TISSUE_HU) < 10
        assert image[away_from_lesion].std() > 3  # a noise texture, not a flat fill


def test_given_body_sets_the_air_region():
    body = Body(semi_axes=(0.5, 0.9), tissue_hu=40.0, noise_hu=10.0)
    image, _ = phantom_case(np.random.default_rng(0), "benign", "fine", size=64, body=body)
    air_fraction = np.mean(image == AIR_HU)
    assert air_fraction == pytest.approx(1 - math.pi * 0.5 * 0.9 / 4, abs=0.02)
    with pytest.raises(ConfigError, match="dim=3"):
        phantom_case(np.random.default_rng(0), "benign", "fine", dim=3, size=32, body=body)


def test_zero_separation_makes_the_label_invisible():
    for dim, size in SHAPES:
        benign = case(3, "benign", "coarse", dim=dim, size=size, separation=0.0)
        malignant = case(3, "malignant", "coarse", dim=dim, size=size, separation=0.0)
        assert np.array_equal(benign[0], malignant[0]) and np.array_equal(benign[1], malignant[1])
        assert not np.array_equal(benign[0], case(3, "malignant", "coarse", dim=dim, size=size)[0])


def class_statistics(separation, dim=2, size=64, n=40):
    """Mean solidity and median within-lesion HU std per class over ``n`` non-rare cases."""
    out = {}
    for label in ("benign", "malignant"):  # the borderline class has its own test
        shapes, spreads = [], []
        for seed in range(n):
            image, mask = case(seed, label, SUBTYPES[seed % 2], dim=dim, size=size, separation=separation)
            shapes.append(solidity(mask))
            spreads.append(image[mask == 1].std())
        out[label] = np.mean(shapes), np.median(spreads)
    return out


@pytest.mark.parametrize("separation,margin", [(0.6, 0.01), (1.0, 0.03)])
def test_benign_lesions_are_more_compact(separation, margin):
    stats = class_statistics(separation)
    assert stats["benign"][0] > stats["malignant"][0] + margin


@pytest.mark.parametrize("separation,ratio", [(0.6, 1.15), (1.0, 1.3)])
def test_malignant_lesions_are_more_heterogeneous(separation, ratio):
    stats = class_statistics(separation)
    assert stats["malignant"][1] > ratio * stats["benign"][1]


def test_3d_classes_differ_in_shape_and_texture():
    stats = class_statistics(1.0, dim=3, size=32, n=20)
    assert stats["benign"][0] > stats["malignant"][0] + 0.03
    assert stats["malignant"][1] > 1.3 * stats["benign"][1]


def test_subtypes_differ_in_texture():
    """Coarse texture is smoother voxel to voxel; the rare subtype has calcified foci."""

    def roughness(image, mask):
        inner = ndimage.binary_erosion(mask.astype(bool))
        return np.abs(np.diff(image, axis=1))[inner[:, 1:]].mean() / image[mask == 1].std()

    fine = [roughness(*case(seed, subtype="fine")) for seed in range(20)]
    coarse = [roughness(*case(seed, subtype="coarse")) for seed in range(20)]
    assert np.median(fine) > 1.5 * np.median(coarse)
    for seed in range(20):
        rare_image, rare_mask = case(seed, LABELS[seed % 2], RARE_SUBTYPE)
        plain_image, plain_mask = case(seed, LABELS[seed % 2], "fine")
        assert rare_image[rare_mask == 1].max() > 350 > plain_image[plain_mask == 1].max()


@pytest.fixture(scope="module")
def large_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    return out, make_phantom_cohort(out, n_patients={"benign": 240, "malignant": 80}, size=16, seed=11)


def test_rare_subtype_frequency_matches_rare_fraction(large_cohort):
    _, manifest = large_cohort
    counts = manifest["subtype"].value_counts()
    n = len(manifest)
    assert set(counts.index) == set(SUBTYPES)
    assert binomial_ok(counts[RARE_SUBTYPE], n, 0.05)
    assert binomial_ok(counts["fine"], n - counts[RARE_SUBTYPE], 0.5)


def test_patients_share_one_label_and_some_have_several_lesions(large_cohort):
    _, manifest = large_cohort
    per_patient = manifest.groupby("patient_id")
    assert (per_patient["label"].nunique() == 1).all()
    assert per_patient["label"].first().value_counts().to_dict() == {"benign": 240, "malignant": 80}
    lesions = per_patient.size()
    assert set(lesions) == {1, 2, 3}
    assert binomial_ok((lesions > 1).sum(), len(lesions), 0.3)


def test_rare_fraction_is_configurable(tmp_path):
    manifest = make_phantom_cohort(tmp_path, n_patients={"benign": 100}, size=16, rare_fraction=0.5)
    assert binomial_ok((manifest["subtype"] == RARE_SUBTYPE).sum(), len(manifest), 0.5)


@pytest.mark.parametrize("dim,spacing,image_format", [(2, 0.5, "nii.gz"), (3, 1.5, "nrrd")])
def test_manifest_points_to_readable_images(tmp_path, dim, spacing, image_format):
    size = 32
    manifest = make_phantom_cohort(
        tmp_path / "cohort",
        n_patients={"benign": 3, "malignant": 2},
        dim=dim,
        size=size,
        spacing=spacing,
        seed=5,
        image_format=image_format,
    )
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert manifest["case_id"].is_monotonic_increasing and manifest["case_id"].is_unique
    on_disk = pd.read_csv(tmp_path / "cohort" / "manifest.csv", keep_default_na=False)  # domain is "" when off
    pd.testing.assert_frame_equal(on_disk, manifest)
    assert set(manifest["modality"]) == {"CT"}
    for row in manifest.itertuples():
        assert re.fullmatch(r"P\d{4}_L\d", row.case_id) and row.case_id.startswith(row.patient_id + "_")
        arrays = []
        for rel in (row.image, row.mask):
            assert not rel.startswith("/") and rel.endswith("." + image_format)
            image = sitk.ReadImage(str(tmp_path / "cohort" / rel))
            assert image.GetSpacing() == pytest.approx((spacing,) * dim)
            assert image.GetOrigin() == pytest.approx((0.0,) * dim)
            arrays.append(sitk.GetArrayFromImage(image))
        image, mask = arrays
        assert image.shape == mask.shape == (size,) * dim
        assert image.dtype == np.float32 and mask.dtype == np.uint8
        assert mask.sum() > 0 and image.min() == AIR_HU
    assert not [p for p in (tmp_path / "cohort").rglob("*") if ".tmp" in p.name]


def test_cohort_is_byte_deterministic_and_stable_when_patients_are_added(tmp_path):
    def cohort(name, n_patients, seed=0):
        out = tmp_path / name
        manifest = make_phantom_cohort(out, n_patients=n_patients, size=16, seed=seed)
        manifest["image_bytes"] = [(out / rel).read_bytes() for rel in manifest["image"]]
        # Rank of the patient within its class: stable when other classes grow.
        manifest["rank"] = manifest.groupby("label")["patient_id"].rank(method="dense")
        return manifest.set_index(["label", "rank", manifest["case_id"].str[-2:]])["image_bytes"]

    small = cohort("a", {"benign": 3, "malignant": 2})
    assert small.equals(cohort("b", {"benign": 3, "malignant": 2}))
    grown = cohort("c", {"benign": 5, "malignant": 4})
    assert grown.loc[small.index].equals(small)
    other_seed = cohort("d", {"benign": 3, "malignant": 2}, seed=1)
    common = small.index.intersection(other_seed.index)
    assert len(common) >= 5 and not (other_seed[common] == small[common]).any()


def test_patients_lesions_share_a_body(tmp_path):
    manifest = make_phantom_cohort(tmp_path, n_patients={"malignant": 30}, size=32, multi_lesion_fraction=1.0)
    for _, rows in manifest.groupby("patient_id"):
        air = [sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / rel))) == AIR_HU for rel in rows["image"]]
        assert all(np.array_equal(air[0], other) for other in air[1:])


def test_random_body_fits_in_field_of_view():
    rng = np.random.default_rng(0)
    for dim in (2, 3):
        body = random_body(rng, dim)
        assert len(body.semi_axes) == dim and max(body.semi_axes) <= 0.95


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"n_patients": {"benin": 3}}, "n_patients"),
        ({"n_patients": {"benign": -1}}, "n_patients"),
        ({"n_patients": {"benign": 0}}, "n_patients"),
        ({"dim": 4}, "dim"),
        ({"size": 8}, "size"),
        ({"spacing": 0.0}, "spacing"),
        ({"rare_fraction": 1.5}, "rare_fraction"),
        ({"multi_lesion_fraction": -0.1}, "multi_lesion_fraction"),
        ({"separation": 2.0}, "separation"),
        ({"image_format": "mhd"}, "image_format"),
    ],
)
def test_invalid_cohort_arguments_name_the_key(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        make_phantom_cohort(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_invalid_case_arguments_name_the_key():
    with pytest.raises(ConfigError, match="label"):
        case(0, "unknown")
    with pytest.raises(ConfigError, match="subtype"):
        case(0, "benign", "smooth")


def test_borderline_lesions_are_darker_and_more_homogeneous_with_the_benign_shape():
    """Issue 23: the third class has a distinct, known texture effect (mean -20 h HU, sd x exp(-0.5 h))."""
    means, spreads, shapes = {}, {}, {}
    for label in ("benign", "borderline"):
        cases = [case(seed, label, "fine", separation=1.0) for seed in range(30)]
        means[label] = np.median([image[mask == 1].mean() for image, mask in cases])
        spreads[label] = np.median([image[mask == 1].std() for image, mask in cases])
        shapes[label] = [mask for _, mask in cases]
    assert means["borderline"] < means["benign"] - 12  # planted: 20 HU darker
    assert spreads["borderline"] < 0.8 * spreads["benign"]  # planted: sd x exp(-0.5) = 0.61
    # the same random state draws the same (benign) shape: only the texture differs
    assert all(np.array_equal(a, b) for a, b in zip(shapes["benign"], shapes["borderline"]))
    zero = case(3, "borderline", separation=0.0), case(3, "benign", separation=0.0)
    assert np.array_equal(zero[0][0], zero[1][0])


def test_a_third_class_leaves_the_two_class_cohort_unchanged(tmp_path):
    two = make_phantom_cohort(tmp_path / "two", n_patients={"benign": 3, "malignant": 2}, size=16, seed=4)
    three = make_phantom_cohort(tmp_path / "three", n_patients={"benign": 3, "malignant": 2, "borderline": 2},
                                size=16, seed=4)
    assert set(three["label"]) == {"benign", "malignant", "borderline"}
    kept = three[three["label"] != "borderline"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, two)
    for rel in two["image"]:
        assert (tmp_path / "two" / rel).read_bytes() == (tmp_path / "three" / rel).read_bytes()
