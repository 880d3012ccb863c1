"""Shared conformance tests of every registered generative model, on 2D and 3D phantom patches.

Parametrized from :data:`radaug.generative.REGISTRY`, so a model added to the registry
is checked here without new tests, by the tests of its protocol
(:mod:`radaug.generative.protocols`):

* every model satisfies exactly the protocol of its registry (:data:`~radaug.generative.MODELS`:
  :class:`~radaug.generative.ConditionalSampler`; :data:`~radaug.generative.TRANSLATION_MODELS`:
  :class:`~radaug.generative.Translator`), and never trains on a test-fold case (checked
  through the split and the training-input hashes);
* a conditional sampler (cvae, the GANs, ddpm), in 2D and 3D, trains a few steps on phantom
  (image, mask) patches, samples the requested count per class, gives identical samples and
  an identical saved-model sha256 for the same seed on CPU, round-trips through save/load,
  and conditions on more than two classes;
* a translator (cyclegan), in 2D and 3D, trains a few steps on patches of two domains, gives
  an identical saved-model sha256 for the same seed, translates deterministically in both
  directions within the shape of its input, and round-trips through save/load.

A real SIGKILL of a training process (the loop every model shares) is resumed to the same
final model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from radaug.config import TRANSLATORS
from radaug.data.phantom import phantom_case
from radaug.errors import LeakageError
from radaug.generative import (
    MODELS, REGISTRY, TRANSLATION_MODELS, ConditionalSampler, Translator, get_model, load_model,
)
from radaug.generative.training import fit_in_fold, generator_config_sha256, loss_curve_png, patch_sha256
from radaug.io import sha256_file

SIZE = 16
CLASSES = ["benign", "malignant"]
TINY = {"base_channels": 4, "latent_dim": 4}
TINY_TRANSLATOR = {"base_channels": 4, "n_res_blocks": 1}
FEWER_STEPS = {"ddpm": {"sample_steps": 4}}
"""Model-specific settings that only shorten the test (ddpm: 4 DDIM steps per sample instead of 50)."""
FIT = {"batch_size": 4, "device": "cpu", "log": lambda message: None}


def phantom_patches(dims: int, n: int = 12, seed: int = 0):
    """``n`` phantom cases of alternating class as (ids, images, masks, labels), 16 voxels per side."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    pairs = [phantom_case(rng, CLASSES[c], "fine", dim=dims, size=SIZE) for c in labels]
    ids = [f"case{i:02d}" for i in range(n)]
    return ids, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), labels.astype(np.int64)


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def cohort(request):
    return request.param, phantom_patches(request.param)


@pytest.fixture(params=sorted(MODELS))
def name(request) -> str:
    """A conditional sampler."""
    return request.param


@pytest.fixture(params=sorted(TRANSLATION_MODELS))
def translator(request) -> str:
    return request.param


@pytest.fixture(params=sorted(REGISTRY))
def any_model(request) -> str:
    return request.param


def make(name: str, dims: int):
    tiny = TINY if name in MODELS else TINY_TRANSLATOR
    return get_model(name, patch_size=SIZE, n_classes=2, spatial_dims=dims, **tiny, **FEWER_STEPS.get(name, {}))


def test_every_registered_model_has_exactly_the_protocol_of_its_registry(any_model):
    assert not set(MODELS) & set(TRANSLATION_MODELS) and set(REGISTRY) == set(MODELS) | set(TRANSLATION_MODELS)
    assert set(TRANSLATION_MODELS) == set(TRANSLATORS)  # the torch-free list the config checks and the workflow use
    model = make(any_model, 2)
    assert isinstance(model, ConditionalSampler) == (any_model in MODELS)
    assert isinstance(model, Translator) == (any_model in TRANSLATION_MODELS)


def split_tables(ids, images, masks, labels):
    """One fold: the last four cases (two per class) are its test set; each case its own patient."""
    roles = ["train"] * (len(ids) - 4) + ["test"] * 4
    folds = pd.DataFrame({"case_id": ids, "patient_id": [f"p{c}" for c in ids], "group": ids,
                          "label": [CLASSES[c] for c in labels], "repeat": 0, "fold": 0, "role": roles})
    cases = pd.DataFrame({"case_id": ids, "content_sha256": [patch_sha256(i, m) for i, m in zip(images, masks)]})
    return folds, cases


def train_twice(name: str, dims: int, images, masks, codes, tmp_path) -> list:
    """Two models trained 3 steps with the same seed, saved as model0.pt and model1.pt: the same bytes."""
    models = [make(name, dims) for _ in range(2)]
    for i, model in enumerate(models):
        log = model.fit(images, masks, codes, steps=3, seed=4, checkpoint_path=tmp_path / f"ckpt{i}.pt", **FIT)
        assert model.step == 3 and np.isfinite(log.drop(columns="step").to_numpy()).all()
        model.save(tmp_path / f"model{i}.pt")
    assert sha256_file(tmp_path / "model0.pt") == sha256_file(tmp_path / "model1.pt")
    return models


def test_trains_samples_per_class_reproducibly_and_round_trips(name, cohort, tmp_path):
    dims, (ids, images, masks, labels) = cohort
    shape = (SIZE,) * dims
    models = train_twice(name, dims, images, masks, labels, tmp_path)

    requested = np.repeat([0, 1], [3, 5])
    images0, masks0 = models[0].sample(requested, seed=11)
    assert images0.shape == masks0.shape == (8, *shape)
    assert np.isfinite(images0).all() and masks0.min() >= 0 and masks0.max() <= 1
    for x, y in zip(models[1].sample(requested, seed=11), (images0, masks0)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(models[0].sample(requested, seed=12)[0], images0)

    loaded = load_model(tmp_path / "model0.pt")
    assert type(loaded) is MODELS[name] and loaded.hyperparams == models[0].hyperparams
    assert loaded.spatial_dims == dims and loaded.step == 3
    for x, y in zip(loaded.sample(requested, seed=11), (images0, masks0)):
        np.testing.assert_array_equal(x, y)


def test_never_trains_on_a_test_fold_case(any_model, cohort):
    """Every registered model (a translator's codes are domains: here the alternating labels)."""
    name = any_model
    dims, (ids, images, masks, labels) = cohort
    folds, cases = split_tables(ids, images, masks, labels)
    train = np.flatnonzero(folds["role"] == "train")
    test_hashes = set(cases["content_sha256"][folds["role"] == "test"])
    names = [CLASSES[c] for c in labels]

    def run(rows, patch_rows=None, model=None):
        model = make(name, dims) if model is None else model
        patch_rows = rows if patch_rows is None else patch_rows
        result = fit_in_fold(model, folds=folds, cases=cases, repeat=0, fold=0, case_ids=[ids[i] for i in rows],
                             images=images[patch_rows], masks=masks[patch_rows], labels=labels[rows],
                             label_names=[names[i] for i in rows], steps=2, seed=0, **FIT)
        return model, result

    model, (_, training_input) = run(train)
    assert model.step == 2 and list(training_input["case_id"]) == [ids[i] for i in train]
    assert not set(training_input["patch_sha256"]) & test_hashes

    with_test_case = np.append(train, len(ids) - 1)
    model = make(name, dims)
    with pytest.raises(LeakageError, match="test case"):
        run(with_test_case, model=model)
    # A test patch smuggled in under a training case id is caught by its content hash.
    smuggled = train.copy()
    smuggled[0] = len(ids) - 1
    with pytest.raises(LeakageError, match="content of a test case"):
        run(train, patch_rows=smuggled, model=model)
    assert model.step == 0 and model.intensity is None  # refused before any training


def test_translator_trains_translates_reproducibly_and_round_trips(translator, cohort, tmp_path):
    dims, (ids, images, masks, labels) = cohort
    domains = labels  # alternating codes: 0 the source domain, 1 the target domain
    models = train_twice(translator, dims, images, masks, domains, tmp_path)

    source, source_masks = images[domains == 0], masks[domains == 0]
    translated = models[0].translate(source, source_masks)
    assert translated.shape == source.shape and translated.dtype == np.float32 and np.isfinite(translated).all()
    np.testing.assert_array_equal(models[0].translate(source, source_masks), translated)  # deterministic
    np.testing.assert_array_equal(models[1].translate(source, source_masks), translated)  # same seed, same bytes
    back = models[0].translate(translated, source_masks, reverse=True)
    assert back.shape == source.shape and np.isfinite(back).all()
    assert isinstance(models[0].direction, str) and "->" in models[0].direction

    loaded = load_model(tmp_path / "model0.pt")
    assert type(loaded) is TRANSLATION_MODELS[translator] and loaded.hyperparams == models[0].hyperparams
    assert loaded.spatial_dims == dims and loaded.step == 3
    np.testing.assert_array_equal(loaded.translate(source, source_masks), translated)


@pytest.mark.parametrize("n_classes", [3, 4])
def test_conditions_on_more_than_two_classes(name, n_classes, tmp_path):
    """K-class studies: a model trains on labels 0 .. K-1 and samples each class reproducibly (2D, 2 steps)."""
    rng = np.random.default_rng(n_classes)
    labels = np.arange(4 * n_classes) % n_classes
    names = ["benign", "malignant", "borderline", "borderline"]  # the phantom has three classes; the 4th reuses one
    pairs = [phantom_case(rng, names[c], "fine", dim=2, size=SIZE) for c in labels]
    images, masks = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    model = get_model(name, patch_size=SIZE, n_classes=n_classes, spatial_dims=2, **TINY)
    log = model.fit(images, masks, labels.astype(np.int64), steps=2, seed=1, **FIT)
    assert np.isfinite(log.drop(columns="step").to_numpy()).all()
    requested = np.arange(n_classes).repeat(2)
    kwargs = {"masks": masks[:len(requested)]} if model.condition_on_mask else {}
    drawn = model.sample(requested, seed=5, **kwargs)
    assert drawn[0].shape == (len(requested), SIZE, SIZE) and np.isfinite(drawn[0]).all()
    for x, y in zip(model.sample(requested, seed=5, **kwargs), drawn):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.sample(np.array([n_classes]), seed=5, **({"masks": masks[:1]} if model.condition_on_mask else {}))
    model.save(tmp_path / "model.pt")
    assert load_model(tmp_path / "model.pt").n_classes == n_classes


_TRAIN_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from unit.test_generative_conformance import phantom_patches, make, FIT
    torch.set_num_threads(1)
    _, images, masks, labels = phantom_patches(2)
    model = make("dcgan", 2)
    model.fit(images, masks, labels, steps={steps}, seed=3, checkpoint_path=sys.argv[1], checkpoint_every=5, **FIT)
    model.save(sys.argv[2])
""")


def test_training_resumes_after_sigkill_to_the_same_model(tmp_path):
    """A training process killed with SIGKILL after its first checkpoint, rerun, ends byte-identical."""
    steps = 60
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT.format(tests=os.path.dirname(os.path.dirname(__file__)), steps=steps))
    run = [sys.executable, str(script)]

    subprocess.run([*run, tmp_path / "full.partial.pt", tmp_path / "full.pt"], check=True, timeout=600)

    partial, final = tmp_path / "killed.partial.pt", tmp_path / "killed.pt"
    child = subprocess.Popen([*run, partial, final])
    try:
        deadline = time.monotonic() + 600
        while not partial.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, "the training process finished before it could be killed"
    killed_at = torch.load(partial, weights_only=True)["step"]
    assert 5 <= killed_at < steps and not final.exists()

    resumed = subprocess.run([*run, partial, final], check=True, timeout=600)
    assert resumed.returncode == 0
    assert torch.load(partial, weights_only=True)["step"] == steps
    assert sha256_file(final) == sha256_file(tmp_path / "full.pt")


def test_generator_config_hash_and_loss_plot():
    a = generator_config_sha256("dcgan", {"lr": 2e-4, "latent_dim": 64}, {"steps": 10})
    assert a == generator_config_sha256("dcgan", {"latent_dim": 64, "lr": 2e-4}, {"steps": 10})
    assert a != generator_config_sha256("lsgan", {"lr": 2e-4, "latent_dim": 64}, {"steps": 10})
    assert a != generator_config_sha256("dcgan", {"lr": 2e-4, "latent_dim": 64}, {"steps": 11})
    losses = pd.DataFrame({"step": [5, 10, 15], "loss_d": [1.0, 0.8, 0.7], "loss_g": [0.7, 0.9, 1.1],
                           "images_per_s": [10.0, 20.0, 30.0]})
    png = loss_curve_png(losses, "dcgan, fold r0f0")
    assert png.startswith(b"\x89PNG") and png == loss_curve_png(losses.assign(images_per_s=0.0), "dcgan, fold r0f0")
