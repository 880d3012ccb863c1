"""Tests of radaug.generative.

The conformance tests run against every model in ``MODELS``: a model added to the
registry is checked for the whole interface contract (shapes, ranges,
determinism, persistence, resume) without writing new tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radaug.generative import CVAE, MODELS, GenerativeModel, get_model, load_model
from radaug.generative.base import IntensityMap
from radaug.generative.device import select_device
from radaug.generative.layers import channel_widths

SIZE = 32


def blobs(n: int, seed: int = 0, *, contrast: tuple[float, float] = (-100.0, 200.0)):
    """Two classes of disks on a noisy background, in CT-like units.

    Class ``c`` has disk intensity ``contrast[c]``; shapes are drawn alike for both.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    labels = np.arange(n) % 2
    images = rng.normal(0.0, 20.0, (n, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.3 * SIZE, 0.7 * SIZE, 2)
        radius = rng.uniform(0.12 * SIZE, 0.25 * SIZE)
        masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        images[i][masks[i] == 1] += contrast[labels[i]]
    return images, masks, labels.astype(np.int64)


@pytest.fixture(scope="module")
def data():
    return blobs(48)


@pytest.fixture(scope="module", params=sorted(MODELS))
def name(request) -> str:
    return request.param


def make(name: str, *, patch_size: int = SIZE, **hyperparams) -> GenerativeModel:
    """A small model (narrow networks, 2 rather than 5 critic steps for wgan_gp, a narrower U-Net and 4 rather
    than 50 DDIM steps for ddpm, keep the tests fast)."""
    small = {"base_channels": 8, "latent_dim": 16, **({"n_critic": 2} if name == "wgan_gp" else {}),
             **({"sample_steps": 4, "base_channels": 4} if name == "ddpm" else {})}
    return get_model(name, patch_size=patch_size, n_classes=2, **{**small, **hyperparams})


def fit(model: GenerativeModel, data, **kwargs):
    options = {"steps": 6, "batch_size": 8, "seed": 0, "device": "cpu", "log": lambda message: None}
    return model.fit(*data, **{**options, **kwargs})


@pytest.fixture(scope="module")
def trained(name, data) -> GenerativeModel:
    model = make(name)
    fit(model, data)
    return model


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def weights_differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[key], b[key]) for key in a if a[key].is_floating_point())


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #


def test_registry_names_and_get_model():
    assert set(MODELS) >= {"cvae", "dcgan", "lsgan", "wgan_gp"}
    for key, cls in MODELS.items():
        model = get_model(key, patch_size=64, n_classes=3)
        assert isinstance(model, cls) and model.name == key and model.step == 0
    with pytest.raises(ValueError, match="unknown generative model"):
        get_model("vae", patch_size=32, n_classes=2)


# --------------------------------------------------------------------------- #
# Conformance: every registered model
# --------------------------------------------------------------------------- #


def test_fit_returns_loss_log(name, data):
    model = make(name)
    messages = []
    log = fit(model, data, steps=7, log_every=3, log=messages.append)
    assert model.step == 7
    assert list(log["step"]) == [3, 6, 7]
    assert log.columns[0] == "step" and log.columns[-1] == "images_per_s"
    assert len(log.columns) > 2
    assert np.isfinite(log.drop(columns="step").to_numpy()).all()
    assert len(messages) == 3 and "step 7/7" in messages[-1]


def test_sample_contract(trained):
    labels = np.array([0, 1, 1, 0, 1])
    images, masks = trained.sample(labels, seed=3, batch_size=2)
    assert images.shape == masks.shape == (5, SIZE, SIZE)
    assert images.dtype == masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    lo, hi = trained.intensity.lo, trained.intensity.hi
    slack = 1e-3 * (hi - lo)
    assert images.min() >= lo - slack and images.max() <= hi + slack
    # physical units: the map's image of varied values in [-1, 1] (the GANs' quantile map puts
    # a narrow physical band where the data are dense, so a physical spread says little)
    unit = trained.intensity.to_unit(images)
    assert np.ptp(unit) > 0.02 and not np.allclose(images, unit, atol=1e-3), "images must come back in physical units"
    np.testing.assert_allclose(trained.intensity.from_unit(unit), images, rtol=0, atol=1e-3 * (hi - lo))
    # Latent codes are drawn up front, so chunking does not change the samples.
    same_images, same_masks = trained.sample(labels, seed=3)
    np.testing.assert_allclose(same_images, images, rtol=0, atol=1e-4 * (hi - lo))
    np.testing.assert_allclose(same_masks, masks, rtol=0, atol=1e-5)

    empty_images, empty_masks = trained.sample(np.array([], dtype=np.int64), seed=0)
    assert empty_images.shape == empty_masks.shape == (0, SIZE, SIZE)


def test_sample_leaves_model_and_global_state_alone(trained):
    rng_state = torch.random.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    before = {k: v.clone() for k, v in trained.nets.state_dict().items()}
    trained.sample(np.array([0, 1] * 4), seed=0)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert trained.nets.training
    assert_same_weights(trained.nets.state_dict(), before)


def test_fit_leaves_global_state_alone(name, data):
    rng_state = torch.random.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    threads = torch.get_num_threads()
    fit(make(name), data, steps=2)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.utils.deterministic.fill_uninitialized_memory == fill
    assert torch.get_num_threads() == threads


def _assert_the_fill_changes_nothing(name, data, monkeypatch, **hyperparams):
    """The premise of ``FILL_UNINITIALIZED_MEMORY = False``: no model reads memory it did not write.

    torch's deterministic mode fills new tensors with NaN by default; a model that read
    uninitialised memory would train or sample differently with and without the fill.
    """
    from radaug.generative import device

    runs = []
    for fill in (True, False):
        monkeypatch.setattr(device, "FILL_UNINITIALIZED_MEMORY", fill)
        model = make(name, **hyperparams)
        fit(model, data, steps=3, batch_size=4)
        runs.append((model.nets.state_dict(), model.sample(np.array([0, 1]), seed=2)))
    (weights_a, (images_a, masks_a)), (weights_b, (images_b, masks_b)) = runs
    assert_same_weights(weights_a, weights_b)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(masks_a, masks_b)


def test_weights_and_samples_do_not_depend_on_filling_uninitialised_memory(name, data, monkeypatch):
    _assert_the_fill_changes_nothing(name, data, monkeypatch)


@pytest.mark.parametrize("model_name", ["ddpm", "dcgan", "cvae"])  # 3D: one network of each kind
def test_3d_weights_and_samples_do_not_depend_on_filling_uninitialised_memory(model_name, monkeypatch):
    rng = np.random.default_rng(4)
    data = (rng.normal(size=(8, 16, 16, 16)).astype(np.float32),
            (rng.random((8, 16, 16, 16)) > 0.7).astype(np.uint8), np.arange(8) % 2)
    _assert_the_fill_changes_nothing(model_name, data, monkeypatch, patch_size=16, spatial_dims=3)


def test_deterministic_mode_is_restored_with_its_fill_setting():
    from radaug.generative.device import deterministic

    def settings():
        return torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory

    cpu = torch.device("cpu")
    before = settings()
    with deterministic(cpu):
        assert settings() == (True, False)
        with deterministic(cpu):  # nested: the inner context restores the outer one's settings
            pass
        assert settings() == (True, False)
    assert settings() == before
    with pytest.raises(RuntimeError, match="inside"):
        with deterministic(cpu):
            raise RuntimeError("inside")
    assert settings() == before


def test_on_cuda_deterministic_algorithms_are_asked_for_in_warn_only_mode_unless_the_caller_is_strict():
    """On CUDA deterministic kernels are chosen where torch has them; where it has none (the 3D
    CycleGAN's reflection-padding backward pass) torch is set to warn instead of stopping the training,
    unless the caller already enforces them strictly (``benchmarks/gpu_check.py --strict``). Only the
    settings are checked here: no CUDA operation runs."""
    from radaug.generative.device import deterministic

    def settings():
        return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()

    cuda = torch.device("cuda")
    before = settings()
    try:
        torch.use_deterministic_algorithms(False)
        with deterministic(cuda):
            assert settings() == (True, True)
            assert not torch.utils.deterministic.fill_uninitialized_memory
        assert settings() == (False, False)
        torch.use_deterministic_algorithms(True)  # a strict caller
        with deterministic(cuda):
            assert settings() == (True, False)
        assert settings() == (True, False)
        torch.use_deterministic_algorithms(True, warn_only=True)
        with deterministic(torch.device("cpu")):  # the CPU is always strict
            assert settings() == (True, False)
        assert settings() == (True, True)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_same_seed_same_model_different_seed_different(name, data, tmp_path):
    a, b, c = make(name), make(name), make(name)
    fit(a, data, seed=5, checkpoint_path=tmp_path / "a.pt")
    fit(b, data, seed=5, checkpoint_path=tmp_path / "b.pt")
    fit(c, data, seed=6)
    assert_same_weights(a.nets.state_dict(), b.nets.state_dict())
    ckpt_a = torch.load(tmp_path / "a.pt", weights_only=True)
    ckpt_b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert_same_weights(ckpt_a["state_dict"], ckpt_b["state_dict"])
    for key in ckpt_a["training"]["optimizers"]:
        state_a = ckpt_a["training"]["optimizers"][key]["state"]
        state_b = ckpt_b["training"]["optimizers"][key]["state"]
        for index in state_a:
            assert_same_weights(state_a[index], state_b[index])
    assert weights_differ(a.nets.state_dict(), c.nets.state_dict())

    labels = np.array([0, 1, 0, 1])
    for x, y in zip(a.sample(labels, seed=1), b.sample(labels, seed=1)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.sample(labels, seed=1)[0], a.sample(labels, seed=2)[0])
    assert not np.array_equal(a.sample(labels, seed=1)[0], c.sample(labels, seed=1)[0])


def test_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "model.pt"
    trained.save(path)
    labels = np.array([1, 0, 1])
    expected = trained.sample(labels, seed=9)
    for loaded in (type(trained).load(path), load_model(path)):
        assert type(loaded) is type(trained)
        assert loaded.hyperparams == trained.hyperparams
        assert loaded.step == trained.step and loaded.intensity == trained.intensity
        for x, y in zip(loaded.sample(labels, seed=9), expected):
            np.testing.assert_array_equal(x, y)

    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"format", "model", "hyperparams", "step", "intensity", "state_dict"}
    assert ckpt["model"] == trained.name and ckpt["step"] == trained.step

    other = next(cls for cls in MODELS.values() if cls is not type(trained))
    with pytest.raises(ValueError, match="load_model"):
        other.load(path)


def test_training_checkpoint_loads_with_weights_only(name, data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = make(name)
    fit(model, data, steps=4, checkpoint_every=2, checkpoint_path=path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 4
    assert set(ckpt["training"]) == {"config", "optimizers", "scaler", "rng", "log"}
    assert ckpt["training"]["config"]["seed"] == 0
    assert [row["step"] for row in ckpt["training"]["log"]["rows"]] == [4]
    labels = np.array([0, 1])
    np.testing.assert_array_equal(load_model(path).sample(labels, seed=0)[0], model.sample(labels, seed=0)[0])


class _Killed(Exception):
    pass


@pytest.mark.parametrize("interruption", ["stopped", "killed"])
def test_resume_matches_uninterrupted_run(name, data, tmp_path, interruption):
    options = {"steps": 20, "log_every": 4, "seed": 2}
    uninterrupted = make(name)
    full_log = fit(uninterrupted, data, **options)

    path = tmp_path / "ckpt.pt"
    first = make(name)
    if interruption == "stopped":
        fit(first, data, **{**options, "steps": 10}, checkpoint_path=path, checkpoint_every=10)
    else:

        def die_at_step_16(message: str) -> None:
            if "step 16/" in message:
                raise _Killed

        with pytest.raises(_Killed):
            fit(first, data, **options, checkpoint_path=path, checkpoint_every=10, log=die_at_step_16)
    assert torch.load(path, weights_only=True)["step"] == 10

    messages = []
    resumed = make(name)
    resumed_log = fit(resumed, data, **options, checkpoint_path=path, checkpoint_every=10, log=messages.append)
    assert any("resuming" in m and "step 10" in m for m in messages)
    assert resumed.step == 20
    assert_same_weights(resumed.nets.state_dict(), uninterrupted.nets.state_dict())
    if interruption == "killed":
        losses = [c for c in full_log.columns if c != "images_per_s"]
        assert resumed_log[losses].equals(full_log[losses])
    else:  # the finished 10-step run logged its last step
        assert list(resumed_log["step"]) == [4, 8, 10, 12, 16, 20]


def test_checkpoint_from_other_config_is_not_resumed(name, data, tmp_path):
    path = tmp_path / "ckpt.pt"
    fit(make(name), data, steps=4, seed=0, checkpoint_path=path)
    messages = []
    other = make(name)
    fit(other, data, steps=4, seed=1, checkpoint_path=path, log=messages.append)
    fresh = make(name)
    fit(fresh, data, steps=4, seed=1)
    assert any("different configuration" in m for m in messages)
    assert_same_weights(other.nets.state_dict(), fresh.nets.state_dict())
    assert torch.load(path, weights_only=True)["training"]["config"]["seed"] == 1


# --------------------------------------------------------------------------- #
# Invalid arguments
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patch_size": 48},
        {"patch_size": 8},
        {"patch_size": 32.0},
        {"n_classes": 0},
        {"n_classes": True},
        {"latent_dim": 0},
        {"base_channels": 0},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"lr": "1e-3"},
    ],
)
def test_invalid_hyperparameters(name, kwargs):
    with pytest.raises(ValueError):
        get_model(name, **{"patch_size": SIZE, "n_classes": 2, **kwargs})


def test_invalid_model_specific_hyperparameters():
    with pytest.raises(ValueError, match="beta"):
        get_model("cvae", patch_size=SIZE, n_classes=2, beta=-1.0)
    with pytest.raises(ValueError, match="spectral_norm"):
        get_model("dcgan", patch_size=SIZE, n_classes=2, spectral_norm="yes")
    with pytest.raises(ValueError, match="beta"):
        get_model("dcgan", patch_size=SIZE, n_classes=2, beta=1.0)
    with pytest.raises(ValueError, match="n_classes"):
        get_model("cvae", patch_size=SIZE)
    with pytest.raises(ValueError, match="conditioning"):
        get_model("lsgan", patch_size=SIZE, n_classes=2, conditioning="concat")
    with pytest.raises(ValueError, match="n_critic"):
        get_model("wgan_gp", patch_size=SIZE, n_classes=2, n_critic=0)
    with pytest.raises(ValueError, match="gp_weight"):
        get_model("dcgan", patch_size=SIZE, n_classes=2, gp_weight=5.0)
    with pytest.raises(ValueError, match="gp_weight"):
        get_model("wgan_gp", patch_size=SIZE, n_classes=2, gp_weight=-1.0)
    with pytest.raises(ValueError, match="spatial_dims"):
        get_model("cvae", patch_size=SIZE, n_classes=2, spatial_dims=4)


def _corrupt(data, which: str):
    images, masks, labels = (a.copy() for a in data)
    if which == "image_shape":
        images = images[:, :16, :16]
    elif which == "image_nan":
        images[0, 0, 0] = np.nan
    elif which == "mask_shape":
        masks = masks[:-1]
    elif which == "mask_values":
        masks[0, 0, 0] = 2
    elif which == "label_range":
        labels[0] = 2
    elif which == "label_dtype":
        labels = labels.astype(np.float64)
    elif which == "label_shape":
        labels = labels[:-1]
    elif which == "empty":
        images, masks, labels = images[:0], masks[:0], labels[:0]
    return images, masks, labels


@pytest.mark.parametrize(
    "which",
    ["image_shape", "image_nan", "mask_shape", "mask_values", "label_range", "label_dtype", "label_shape", "empty"],
)
def test_invalid_data(name, data, which):
    with pytest.raises(ValueError):
        fit(make(name), _corrupt(data, which))


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": 0}, {"batch_size": 0}, {"seed": -1}, {"checkpoint_every": 0}, {"log_every": 0}, {"device": "tpu"}],
)
def test_invalid_fit_arguments(name, data, kwargs):
    with pytest.raises(ValueError):
        fit(make(name), data, **kwargs)


def test_invalid_sample_arguments(trained):
    with pytest.raises(ValueError):
        trained.sample(np.array([0, 2]), seed=0)
    with pytest.raises(ValueError):
        trained.sample(np.array([[0, 1]]), seed=0)
    with pytest.raises(ValueError):
        trained.sample(np.array([0.0, 1.0]), seed=0)
    with pytest.raises(ValueError):
        trained.sample(np.array([0, 1]), seed=-1)
    with pytest.raises(ValueError):
        trained.sample(np.array([0, 1]), seed=0, batch_size=0)


def test_untrained_model_cannot_sample_or_save(name, tmp_path):
    model = make(name)
    with pytest.raises(RuntimeError, match="not trained"):
        model.sample(np.array([0]), seed=0)
    with pytest.raises(RuntimeError, match="not trained"):
        model.save(tmp_path / "m.pt")


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a radaug"):
        load_model(path)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def test_intensity_map_round_trip_and_clipping():
    images = np.linspace(-1000.0, 1000.0, 2001, dtype=np.float32)
    imap = IntensityMap.fit(images)
    assert imap.lo == pytest.approx(-990.0) and imap.hi == pytest.approx(990.0)
    unit = imap.to_unit(images)
    assert unit.dtype == np.float32 and unit.min() == -1.0 and unit.max() == 1.0
    inside = np.abs(images) <= 990
    np.testing.assert_allclose(imap.from_unit(unit)[inside], images[inside], atol=1e-3)
    with pytest.raises(ValueError, match="no intensity spread"):
        IntensityMap.fit(np.zeros((4, 32, 32), np.float32))


def test_quantile_intensity_map_spreads_tissue_next_to_air_and_round_trips():
    # A CT patch: a fifth air at exactly -1000 HU, the rest soft tissue around 50 HU.
    rng = np.random.default_rng(0)
    images = np.where(rng.random((16, 32, 32)) < 0.2, -1000.0, rng.normal(50.0, 15.0, (16, 32, 32)))
    tissue = images[images > -500]
    linear, quantile = IntensityMap.fit(images), IntensityMap.fit(images, "quantile")
    band = lambda imap: np.ptp(np.percentile(imap.to_unit(tissue), (10, 90)))  # noqa: E731
    # the linear map leaves the tissue's 10..90th percentiles a sliver at the top of [-1, 1], where tanh saturates
    assert band(linear) < 0.1 and np.percentile(linear.to_unit(tissue), 10) > 0.8
    assert band(quantile) > 1.0
    unit = quantile.to_unit(images)
    assert unit.dtype == np.float32 and unit.min() == -1.0 and unit.max() == 1.0
    assert quantile.knots[0] == quantile.lo == -1000.0 and quantile.unit[0] == -1.0 and quantile.unit[-1] == 1.0
    assert np.all(np.diff(quantile.knots) > 0) and np.all(np.diff(quantile.unit) > 0)
    inside = (images >= quantile.lo) & (images <= quantile.hi)
    np.testing.assert_allclose(quantile.from_unit(unit)[inside], images[inside], atol=1e-3)
    # a checkpoint stores lists; the map read back is equal
    assert IntensityMap(**quantile.state()) == quantile
    assert set(linear.state()) == {"lo", "hi"}, "a linear map keeps its checkpoint bytes"
    with pytest.raises(ValueError, match="intensity_map must be one of"):
        IntensityMap.fit(images, "log")


def test_gans_map_intensities_through_quantiles_by_default():
    for name in ("dcgan", "lsgan", "wgan_gp"):
        assert get_model(name, patch_size=SIZE, n_classes=2).hyperparams["intensity_map"] == "quantile"
    assert get_model("dcgan", patch_size=SIZE, n_classes=2, intensity_map="linear").hyperparams["intensity_map"] == "linear"
    with pytest.raises(ValueError, match="intensity_map"):
        get_model("dcgan", patch_size=SIZE, n_classes=2, intensity_map="log")


def test_a_gan_saved_before_the_intensity_map_setting_loads_as_linear(data, tmp_path):
    """A checkpoint without ``intensity_map`` (written before it was a hyperparameter) holds a linear map:
    the loaded model says so, rather than the new default, and samples as it did."""
    model = make("dcgan", intensity_map="linear")
    fit(model, data, steps=2)
    path = tmp_path / "old.pt"
    model.save(path)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["hyperparams"]["intensity_map"]
    torch.save(ckpt, path)
    loaded = load_model(path)
    assert loaded.hyperparams["intensity_map"] == "linear" and loaded.intensity == model.intensity
    labels = np.array([0, 1])
    np.testing.assert_array_equal(loaded.sample(labels, seed=0)[0], model.sample(labels, seed=0)[0])


def test_channel_widths_are_anchored_to_resolution():
    assert channel_widths(64, 32) == [8, 16, 32, 64]
    assert channel_widths(32, 32) == [16, 32, 64]
    assert channel_widths(16, 32) == [32, 64]


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    with pytest.raises(ValueError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


# --------------------------------------------------------------------------- #
# Model behaviour
# --------------------------------------------------------------------------- #


def test_cvae_sample_means_follow_the_class():
    images, masks, labels = blobs(64, seed=1, contrast=(-150.0, 150.0))
    model = CVAE(SIZE, 2)
    fit(model, (images, masks, labels), steps=300, batch_size=32)
    real_gap = images[labels == 1].mean() - images[labels == 0].mean()
    generated, mask_prob = model.sample(np.repeat([0, 1], 64), seed=0)
    gap = generated[64:].mean() - generated[:64].mean()
    assert gap > 0.5 * real_gap, (gap, real_gap)
    assert 0.3 * masks.mean() < mask_prob.mean() < 3 * masks.mean()


def test_dcgan_with_spectral_norm_resumes_and_round_trips(data, tmp_path):
    path = tmp_path / "ckpt.pt"
    uninterrupted = make("dcgan", spectral_norm=True)
    fit(uninterrupted, data, steps=8)
    fit(make("dcgan", spectral_norm=True), data, steps=4, checkpoint_path=path, checkpoint_every=4)
    resumed = make("dcgan", spectral_norm=True)
    fit(resumed, data, steps=8, checkpoint_path=path, checkpoint_every=4)
    assert_same_weights(resumed.nets.state_dict(), uninterrupted.nets.state_dict())
    loaded = load_model(path)
    assert loaded.hyperparams["spectral_norm"] is True
    labels = np.array([0, 1])
    np.testing.assert_array_equal(loaded.sample(labels, seed=0)[0], resumed.sample(labels, seed=0)[0])


def test_checkpoint_bytes_do_not_depend_on_the_file_name(tmp_path):
    """torch.save names the archive after the file; equal models must give equal bytes anywhere."""
    from radaug.io import sha256_file

    model = get_model("cvae", patch_size=16, n_classes=2, latent_dim=4, base_channels=4)
    images = np.random.default_rng(0).normal(size=(8, 16, 16)).astype(np.float32)
    masks = np.zeros((8, 16, 16), np.uint8)
    masks[:, 4:12, 4:12] = 1
    model.fit(images, masks, np.array([0, 1] * 4), steps=2, batch_size=4, seed=0, device="cpu", log=lambda m: None)
    model.save(tmp_path / "one.pt")
    model.save(tmp_path / "other_name.pt")
    assert sha256_file(tmp_path / "one.pt") == sha256_file(tmp_path / "other_name.pt")


# --------------------------------------------------------------------------- #
# The GAN family
# --------------------------------------------------------------------------- #


def test_gan_objectives_and_their_defaults():
    from radaug.generative.gan import LEAST_SQUARES, NON_SATURATING, WASSERSTEIN_GP

    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([-1.0, 0.0])
    # Least squares (Mao et al.): a=0, b=c=1.
    assert LEAST_SQUARES.discriminator_loss(torch.ones(2), torch.zeros(2)).item() == 0.0
    assert LEAST_SQUARES.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (2.0 + 0.5))
    assert LEAST_SQUARES.generator_loss(fake).item() == pytest.approx(0.5 * 2.5)
    # Wasserstein: the critic maximises E[D(real)] - E[D(fake)].
    assert WASSERSTEIN_GP.discriminator_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert WASSERSTEIN_GP.generator_loss(fake).item() == pytest.approx(0.5)
    # Non-saturating: -log D(G(z)).
    assert NON_SATURATING.generator_loss(torch.zeros(3)).item() == pytest.approx(np.log(2))
    expected = -np.log(torch.sigmoid(real).numpy()).mean() - np.log(1 - torch.sigmoid(fake).numpy()).mean()
    assert NON_SATURATING.discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)

    wgan, dcgan = get_model("wgan_gp", patch_size=SIZE, n_classes=2), get_model("dcgan", patch_size=SIZE, n_classes=2)
    assert wgan.hyperparams["n_critic"] == 5 and wgan.hyperparams["gp_weight"] == 10.0
    assert [g["betas"] for g in wgan._build_optimizers()["discriminator"].param_groups] == [(0.0, 0.9)]
    assert dcgan.hyperparams["n_critic"] == 1 and "gp_weight" not in dcgan.hyperparams


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    """A linear critic with a unit-norm weight has ‖∇D‖ = 1 everywhere: the penalty must vanish."""
    model = make("wgan_gp")
    model._rng = torch.Generator().manual_seed(0)

    class Linear(torch.nn.Module):
        def forward(self, x, labels):
            return x.flatten(1).sum(dim=1) / x[0].numel() ** 0.5

    model.nets["discriminator"] = Linear()
    real, fake = torch.randn(4, 2, SIZE, SIZE), torch.randn(4, 2, SIZE, SIZE)
    assert model._gradient_penalty(real, fake, torch.zeros(4, dtype=torch.int64)).item() == pytest.approx(0, abs=1e-10)


@pytest.mark.parametrize("gan", ["dcgan", "lsgan", "wgan_gp"])
def test_gan_with_embedding_conditioning_trains_and_logs(gan, data):
    model = make(gan, conditioning="embedding", n_critic=2)
    log = fit(model, data, steps=4, log_every=2)
    expected = {"step", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s"}
    assert set(log.columns) == expected | ({"gradient_penalty"} if gan == "wgan_gp" else set())
    assert np.isfinite(log.drop(columns="step").to_numpy()).all()
    labels = np.array([0, 1])
    np.testing.assert_array_equal(load_model_roundtrip(model).sample(labels, seed=0)[0], model.sample(labels, seed=0)[0])


def load_model_roundtrip(model):
    import io as _io

    buffer = _io.BytesIO()
    torch.save(model._state(), buffer)
    buffer.seek(0)
    return type(model)._from_state(torch.load(buffer, weights_only=True), torch.device("cpu"))

