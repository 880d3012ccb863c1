"""Tests of the CycleGAN arm: radaug.generative.cyclegan and the two-scanner phantom.

Trainings are real but tiny (16-pixel patches, 4-channel networks, CPU), so the
module runs in well under a minute.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from radaug.config import load_config, validate_config
from radaug.data.phantom import DOMAINS, make_phantom_cohort, phantom_case, scanner_b_appearance
from radaug.errors import ConfigError, SamplingError
from radaug.generative import MODELS, TRANSLATION_MODELS, CycleGAN, get_model, load_model
from radaug.generative.cyclegan import domain_training_set, structure_agreement, translate_with_quotas

from ..conftest import REPO

SIZE = 16
TINY = {"base_channels": 4, "n_res_blocks": 1}
QUIET = {"device": "cpu", "log": lambda message: None}


def _crop(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    lo = np.clip(centre - SIZE // 2, 0, image.shape[0] - SIZE)
    window = tuple(slice(start, start + SIZE) for start in lo)
    return image[window], mask[window]


def two_scanner_patches(n: int = 24, seed: int = 0):
    """Lesion-centred phantom patches, every third case seen by scanner B.

    Returns images, masks, domain codes (0 = scanner_a, 1 = scanner_b), class
    labels, and the scanner-A view of every case (ground truth of the translation).
    """
    rng = np.random.default_rng(seed)
    images, masks, codes, labels, truth = [], [], [], [], []
    for i in range(n):
        label = ("benign", "malignant")[i % 2]
        image, mask = phantom_case(rng, label, "fine", size=32)
        code = int(i % 3 == 0)
        seen = scanner_b_appearance(image, rng) if code else image
        crop, crop_mask = _crop(seen, mask)
        images.append(crop)
        masks.append(crop_mask)
        truth.append(_crop(image, mask)[0])
        codes.append(code)
        labels.append(label)
    return np.array(images), np.array(masks), np.array(codes), np.array(labels), np.array(truth)


@pytest.fixture(scope="module")
def data():
    return two_scanner_patches()


def make(**hyperparams) -> CycleGAN:
    return get_model("cyclegan", patch_size=SIZE, n_classes=2, **{**TINY, **hyperparams})


@pytest.fixture(scope="module")
def trained(data):
    images, masks, codes, _, _ = data
    # lr 10x the paper's, so 240 tiny steps move the generators visibly away from their identity start.
    model = make(lr=2e-3)
    losses = model.fit(images, masks, codes, steps=240, batch_size=4, seed=3, log_every=40, **QUIET)
    return model, losses


def candidates_table(data) -> pd.DataFrame:
    _, _, codes, labels, _ = data
    return pd.DataFrame({"case_id": [f"C{i:03d}" for i in range(len(codes))], "label": labels,
                         "domain": np.array(DOMAINS)[codes]})


# --------------------------------------------------------------------------- #
# Registry and interface
# --------------------------------------------------------------------------- #


def test_registered_as_translation_model_and_rebuilds_from_hyperparams():
    assert TRANSLATION_MODELS == {"cyclegan": CycleGAN}
    assert "cyclegan" not in MODELS  # a translator: the per-class sampling conformance tests do not apply
    model = make(source_domain="T1", target_domain="T2")
    assert model.direction == "T1->T2"
    assert "latent_dim" not in model.hyperparams
    assert type(model)(**model.hyperparams).hyperparams == model.hyperparams


@pytest.mark.parametrize("kwargs, match", [
    ({"source_domain": "a", "target_domain": "a"}, "must differ"),
    ({"source_domain": ""}, "source_domain"),
    ({"lambda_cyc": -1.0}, "lambda_cyc"),
    ({"lambda_id": float("nan")}, "lambda_id"),
    ({"min_structure": 1.5}, "min_structure"),
    ({"n_res_blocks": -1}, "n_res_blocks"),
])
def test_invalid_hyperparameters_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_fit_needs_both_domains_and_binary_codes(data):
    images, masks, codes, _, _ = data
    with pytest.raises(ValueError, match="target domain 'scanner_b'"):
        make().fit(images, masks, np.zeros_like(codes), steps=1, **QUIET)
    with pytest.raises(ValueError, match="codes 0"):
        make().fit(images, masks, codes + 1, steps=1, **QUIET)


def test_is_a_translator_and_has_no_sampling_from_noise(trained):
    """CycleGAN honours the Translator protocol and offers no sample() that would only raise."""
    from radaug.generative import ConditionalSampler, Translator

    model, _ = trained
    assert isinstance(model, Translator) and not isinstance(model, ConditionalSampler)
    assert not hasattr(model, "sample")


def test_translate_before_training_is_refused(data):
    images, masks, _, _, _ = data
    with pytest.raises(RuntimeError, match="not trained"):
        make().translate(images, masks)


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


def test_cycle_consistency_loss_decreases_on_the_two_scanner_phantom(trained):
    _, losses = trained
    assert list(losses["step"]) == [40, 80, 120, 160, 200, 240]
    assert {"loss_g", "adv_g", "cycle", "identity", "loss_d"} <= set(losses.columns)
    cycle = losses["cycle"].to_numpy()
    # Adversarial training is not monotone (one logging interval may spike at this high test lr):
    # judge the median of the last three intervals against the first.
    assert np.median(cycle[-3:]) < 0.5 * cycle[0], cycle
    assert np.isfinite(losses.drop(columns="images_per_s").to_numpy()).all()


def test_generator_starts_as_identity_and_training_moves_it(trained, data):
    model, _ = trained
    images, masks, codes, _, _ = data
    source = codes == 0
    fresh = make(lr=2e-3)
    fresh.intensity = model.intensity
    start = fresh.translate(images[source], masks[source])
    clamp_error = (model.intensity.hi - model.intensity.lo) / 2 * 1e-3  # images clamped to 1 - 1e-3 before atanh
    assert np.abs(start - np.clip(images[source], model.intensity.lo, model.intensity.hi)).max() <= clamp_error * 1.01
    assert np.abs(model.translate(images[source], masks[source]) - start).mean() > 0.1  # HU


def test_same_seed_gives_identical_weights_different_seed_different(data):
    images, masks, codes, _, _ = data
    runs = []
    for seed in (1, 1, 2):
        model = make()
        model.fit(images, masks, codes, steps=4, batch_size=2, seed=seed, **QUIET)
        runs.append(model.nets.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0] if runs[0][k].is_floating_point())


def test_resumed_training_ends_identical_to_an_uninterrupted_run(data, tmp_path):
    images, masks, codes, _, _ = data
    whole = make()
    whole.fit(images, masks, codes, steps=6, batch_size=2, seed=4, **QUIET)
    partial = tmp_path / "ckpt.pt"
    first = make()
    first.fit(images, masks, codes, steps=3, batch_size=2, seed=4, checkpoint_path=partial, **QUIET)
    messages = []
    resumed = make()
    resumed.fit(images, masks, codes, steps=6, batch_size=2, seed=4, checkpoint_path=partial,
                device="cpu", log=messages.append)
    assert any("resuming cyclegan from step 3" in m for m in messages)
    state, expected = resumed.nets.state_dict(), whole.nets.state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_save_load_round_trip_translates_identically(trained, data, tmp_path):
    model, _ = trained
    images, masks, _, _, _ = data
    model.save(tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert isinstance(loaded, CycleGAN) and loaded.hyperparams == model.hyperparams
    assert np.array_equal(loaded.translate(images, masks), model.translate(images, masks))
    assert np.array_equal(model.translate(images, masks, reverse=True), loaded.translate(images, masks, reverse=True))


# --------------------------------------------------------------------------- #
# Structure check
# --------------------------------------------------------------------------- #


def test_structure_agreement_separates_same_case_from_other_cases(data):
    images, masks, codes, _, truth = data
    b = np.flatnonzero(codes == 1)
    same = [structure_agreement(truth[i], images[i], masks[i]) for i in b]
    other = [structure_agreement(truth[i], images[j], masks[i]) for i, j in zip(b, np.roll(b, 1))]
    assert np.median(same) > 0.8 and min(same) > 0.5 > np.median(other)  # 16-pixel patches: noisier than 32
    image, mask = truth[0], masks[0]
    assert structure_agreement(image, image, mask) == pytest.approx(1.0)
    assert structure_agreement(image, 3.0 * image - 200.0, mask) == pytest.approx(1.0)  # contrast change
    assert structure_agreement(image, np.zeros_like(image), mask) == 0.0
    with pytest.raises(ValueError, match="share a shape"):
        structure_agreement(image, image[:-1], mask)


# --------------------------------------------------------------------------- #
# The arm's sampling
# --------------------------------------------------------------------------- #


def test_translations_keep_parent_masks_and_parents_are_source_training_cases(trained, data):
    model, _ = trained
    images, masks, _, _, _ = data
    candidates = candidates_table(data)
    quotas = {"benign": 0, "malignant": 11}
    out_images, out_masks, records, sampling = translate_with_quotas(
        model, quotas, candidates, images, masks, seed=7, fold="r0f1")
    rejected = sampling.set_index("label")["rejected"].to_dict()
    assert len(out_images) == len(out_masks) == len(records) == 11
    by_id = candidates.set_index("case_id")
    for image, mask, record in zip(out_images, out_masks, records):
        parent = candidates.index[candidates["case_id"] == record["parent_case_id"]][0]
        assert by_id.loc[record["parent_case_id"], "domain"] == "scanner_a"
        assert by_id.loc[record["parent_case_id"], "label"] == record["label"] == "malignant"
        assert np.array_equal(mask, masks[parent]) and mask.dtype == np.uint8  # geometry carried over
        assert record["roi_voxels"] == int(masks[parent].sum())
        assert record["direction"] == "scanner_a->scanner_b"
        assert record["structure_agreement"] >= model.hyperparams["min_structure"]
        assert image.shape == images[parent].shape and not np.array_equal(image, images[parent])
    # Every usable parent is used once before any is used twice.
    uses = pd.Series([r["parent_case_id"] for r in records]).value_counts()
    assert uses.max() - uses.min() <= 1
    assert rejected == {"benign": 0, "malignant": rejected["malignant"]}


def test_same_seed_same_samples_different_seed_different_order(trained, data):
    model, _ = trained
    images, masks, _, _, _ = data
    candidates = candidates_table(data)
    quotas = {"benign": 3, "malignant": 3}

    def run(seed):
        return translate_with_quotas(model, quotas, candidates, images, masks, seed=seed, fold="r0f0")

    first, again, other = run(1), run(1), run(2)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], again[0])) and first[2] == again[2]
    assert [r["parent_case_id"] for r in first[2]] != [r["parent_case_id"] for r in other[2]]


def _with_threshold(model: CycleGAN, min_structure: float) -> CycleGAN:
    strict = CycleGAN(**{**model.hyperparams, "min_structure": min_structure})
    strict.nets.load_state_dict(model.nets.state_dict())
    strict.intensity, strict.step = model.intensity, model.step
    return strict


def test_translations_below_the_structure_threshold_are_rejected_and_counted(trained, data):
    model, _ = trained
    images, masks, _, _, _ = data
    candidates = candidates_table(data)
    parents = np.flatnonzero((candidates["domain"] == "scanner_a") & (candidates["label"] == "benign"))
    scores = [structure_agreement(images[p], t, masks[p])
              for p, t in zip(parents, model.translate(images[parents], masks[parents]))]
    threshold = float(np.median(scores))
    strict = _with_threshold(model, threshold)
    _, _, records, sampling = translate_with_quotas(
        strict, {"benign": 5, "malignant": 0}, candidates, images, masks, seed=0, fold="f")
    benign = sampling.set_index("label").loc["benign"]
    assert benign["rejected"] == benign["rejected_structure_below_min_structure"] == sum(
        score < threshold for score in scores) > 0
    assert not benign["short"]
    assert len(records) == 5 and all(r["structure_agreement"] >= threshold for r in records)


def test_a_translation_that_erases_the_image_fails_clearly(trained, data):
    model, _ = trained
    images, masks, _, _, _ = data
    erasing = _with_threshold(model, 0.6)
    erasing.translate = lambda images, masks, **kwargs: np.zeros_like(images)  # no edges left: agreement 0
    with pytest.raises(SamplingError, match="min_structure"):
        translate_with_quotas(erasing, {"benign": 2, "malignant": 0}, candidates_table(data), images, masks,
                              seed=0, fold="f")
    # sampling.on_shortfall: record -> no sample of the class, and the record says why
    out_images, _, records, sampling = translate_with_quotas(
        erasing, {"benign": 2, "malignant": 0}, candidates_table(data), images, masks, seed=0, fold="f",
        on_shortfall="record")
    benign = sampling.set_index("label").loc["benign"]
    assert out_images == [] and records == [] and benign["short"] and benign["accepted"] == 0
    assert benign["rejected_structure_below_min_structure"] == benign["rejected"] > 0
    assert "min_structure" in benign["reasons"]


def test_class_without_source_parents_fails_naming_the_key(trained, data):
    model, _ = trained
    images, masks, _, _, _ = data
    candidates = candidates_table(data).assign(domain="scanner_b")
    with pytest.raises(RuntimeError, match="generative.cyclegan.source_domain"):
        translate_with_quotas(model, {"benign": 1}, candidates, images, masks, seed=0, fold="f")


def test_domain_training_set_selects_both_domains_and_names_missing_ones():
    train = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"],
                          "domain": ["A", "B", "C", "A"]})
    cases, codes = domain_training_set(train, "A", "B")
    assert list(cases["case_id"]) == ["a", "b", "d"] and list(codes) == [0, 1, 0]
    assert list(cases.index) == [0, 1, 2]
    with pytest.raises(ValueError, match="generative.cyclegan.target_domain"):
        domain_training_set(train, "A", "Z")
    with pytest.raises(ValueError, match="'domain' column"):
        domain_training_set(train.drop(columns="domain"), "A", "B")


# --------------------------------------------------------------------------- #
# Phantom domains and config validation
# --------------------------------------------------------------------------- #


def test_phantom_domains_are_off_by_default_and_leave_scanner_a_images_unchanged(tmp_path):
    options = {"n_patients": {"benign": 6, "malignant": 4}, "size": 32, "seed": 3}
    plain = make_phantom_cohort(tmp_path / "plain", **options)
    two = make_phantom_cohort(tmp_path / "two", domains=True, **options)
    again = make_phantom_cohort(tmp_path / "again", domains=True, **options)
    assert set(plain["domain"]) == {""}
    assert set(two["domain"]) == set(DOMAINS)
    assert two.equals(again)
    assert (two.groupby("patient_id")["domain"].nunique() == 1).all()  # one scanner per patient
    import SimpleITK as sitk

    def read(root, rel):
        return sitk.GetArrayFromImage(sitk.ReadImage(str(root / rel)))

    for row in two.itertuples():
        same_image = np.array_equal(read(tmp_path / "plain", row.image), read(tmp_path / "two", row.image))
        assert same_image == (row.domain == "scanner_a")
        assert np.array_equal(read(tmp_path / "plain", row.mask), read(tmp_path / "two", row.mask))


def test_scanner_b_blurs_compresses_and_adds_noise():
    rng = np.random.default_rng(0)
    image, mask = phantom_case(rng, "benign", "fine", size=32)
    b = scanner_b_appearance(image, np.random.default_rng(1))
    assert b.dtype == np.float32 and b.shape == image.shape
    assert image.min() == -1000.0 and b.min() > -300.0  # air compressed by the transfer
    assert np.array_equal(b, scanner_b_appearance(image, np.random.default_rng(1)))
    with pytest.raises(ConfigError, match="domain_b_fraction"):
        make_phantom_cohort("/nonexistent", domains=True, domain_b_fraction=2.0)


BASE = {"study": {"name": "t"}, "data": {"source": "phantom", "classes": ["benign", "malignant"],
                                          "phantom": {"domains": True}},
        "generative": {"models": ["cyclegan"]}, "evaluation": {"arms": ["real", "cyclegan"]}}


def test_cyclegan_config_with_phantom_domains_validates():
    config = validate_config(BASE)
    assert config["generative"]["cyclegan"]["source_domain"] == "scanner_a"
    shipped = load_config(REPO / "config/phantom_domains.yaml", base_dir=REPO)
    assert shipped["generative"]["models"] == ["cyclegan"] and shipped["data"]["phantom"]["domains"]


def _changed(path: str, value):
    config = copy.deepcopy(BASE)
    node = config
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


@pytest.mark.parametrize("config, match", [
    (_changed("data.phantom.domains", False), r"data\.phantom\.domains"),
    (_changed("generative.cyclegan", {"target_domain": "scanner_c"}), r"generative\.cyclegan.*scanner_c"),
    (_changed("generative.cyclegan", {"target_domain": "scanner_a"}), "two different domains"),
    (_changed("data.source", "br35h"), r"generative\.cyclegan"),
])
def test_cyclegan_config_errors_name_the_key(config, match):
    if config["data"]["source"] == "br35h":
        config["data"]["classes"] = ["no_tumour", "tumour"]
        del config["data"]["phantom"]
    with pytest.raises(ConfigError, match=match):
        validate_config(config)


def test_manifest_without_the_domains_fails(tmp_path):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"case_id": ["a", "b"], "patient_id": ["p", "q"], "image": ["a.nii", "b.nii"],
                  "label": ["x", "y"], "domain": ["T1", "T1"]}).to_csv(manifest, index=False)
    config = {"study": {"name": "t"}, "data": {"source": "manifest", "classes": ["x", "y"], "manifest": "m.csv"},
              "split": {"folds": 2}, "generative": {"models": ["cyclegan"],
                                                    "cyclegan": {"source_domain": "T1", "target_domain": "T2"}},
              "evaluation": {"arms": ["real"]}}
    with pytest.raises(ConfigError, match=r"\['T2'\].*found \['T1'\]"):
        validate_config(config, base_dir=tmp_path)


@pytest.mark.parametrize("dims", [2, 3])
def test_networks_are_dimension_generic(dims):
    from radaug.generative.cyclegan import PatchDiscriminator, ResnetTranslator

    patches = torch.rand((2, 2) + (16,) * dims) * 2 - 1
    translator, critic = ResnetTranslator(4, 1, dims), PatchDiscriminator(4, dims)
    out = translator(patches)
    assert out.shape == (2, 1) + (16,) * dims
    assert torch.allclose(out, patches[:, :1].clamp(-1 + 1e-3, 1 - 1e-3), atol=1e-5)  # identity at initialisation
    assert critic(patches).shape == (2, 1) + (4,) * dims  # a map of patch scores
