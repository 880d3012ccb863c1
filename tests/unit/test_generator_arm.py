"""The generator arm of a fold (radaug.generative.arm): one training and one sampling function for
every registered model, dispatched by the model's protocol, and the sample table's columns.

Models are tiny and barely trained (16-pixel patches, a few CPU steps): these tests check the
plumbing (which cases, which codes, which columns), not sample quality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radaug.data.phantom import DOMAINS
from radaug.generative import ConditionalSampler, Translator
from radaug.generative.arm import PROVENANCE_COLUMNS, SAMPLE_COLUMNS, TRANSLATION_COLUMNS, fill_quotas, sample_fold
from radaug.generative.fold_training import build_model, train_fold, training_codes
from radaug.io import save_arrays
from radaug.sampling import SAMPLING_COLUMNS

from .test_cyclegan import SIZE, two_scanner_patches

CLASSES = ["benign", "malignant"]
HYPER = {"cvae": {"base_channels": 4, "latent_dim": 4}, "cyclegan": {"base_channels": 4, "n_res_blocks": 1}}
TRAINING = {"steps": 2, "batch_size": 4, "device": "cpu", "checkpoint_every": 100, "log_every": 1, "threads": 1}
SAMPLING = {"target_ratio": 1.0, "cap_per_case": 2, "roi_size_slack": 10.0, "max_attempts": 2,
            "on_shortfall": "record"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A one-fold study of 18 two-scanner cases (12 train, 6 test): index, folds, one batch archive."""
    images, masks, codes, labels, _ = two_scanner_patches(n=18)
    labels = np.where(np.arange(18) % 3 == 2, "malignant", "benign")  # benign the larger class
    ids = [f"C{i:03d}" for i in range(18)]
    folder = tmp_path_factory.mktemp("arm")
    batch = folder / "batch_0.npz"
    save_arrays(batch, case_id=np.array(ids), image=images.astype(np.float32), mask=masks.astype(np.uint8))
    index = pd.DataFrame({"case_id": ids, "label": labels, "domain": np.array(DOMAINS)[codes],
                          "roi_voxels": masks.reshape(18, -1).sum(axis=1), "spacing": "1.0x1.0",
                          "normalisation": "none", "modality": "CT"})
    folds = pd.DataFrame({"case_id": ids, "patient_id": ids, "group": ids, "label": labels, "repeat": 0, "fold": 0,
                          "role": ["train"] * 12 + ["test"] * 6})
    return index, folds, [str(batch)], folder


def test_training_codes_follow_the_protocol(study):
    index, folds, _, _ = study
    train = folds[folds["role"] == "train"].merge(index[["case_id", "domain"]], on="case_id")
    images = np.zeros((3, SIZE, SIZE), np.float32)
    sampler = build_model("cvae", images, 2, conditioning="auto", hyperparams=HYPER["cvae"])
    translator = build_model("cyclegan", images, 2, conditioning="auto", hyperparams=HYPER["cyclegan"])
    assert sampler.condition_on_mask is False  # auto: joint in 2D
    assert isinstance(translator, Translator) and not isinstance(translator, ConditionalSampler)
    cases, codes = training_codes(sampler, train, CLASSES)
    assert list(codes) == [CLASSES.index(x) for x in train["label"]]
    cases, codes = training_codes(translator, train, CLASSES)
    assert list(codes) == [int(d == "scanner_b") for d in cases["domain"]]


@pytest.mark.parametrize("name, kind_columns", [("cvae", ()), ("cyclegan", TRANSLATION_COLUMNS)])
def test_one_training_and_one_sampling_function_for_every_kind(study, name, kind_columns):
    index, folds, patches, folder = study
    hyper = {**HYPER[name], **({"min_structure": -1.0} if name == "cyclegan" else {})}
    trained = train_fold(name, index=index, folds=folds, patches=patches, fold="r0f0", classes=CLASSES,
                         hyperparams=hyper, conditioning="auto", training=TRAINING, seed=3,
                         checkpoint_path=folder / f"{name}.partial.pt")
    assert trained.model.step == 2 and "images_per_s" not in trained.losses
    assert trained.losses_png.startswith(b"\x89PNG")
    assert set(trained.training_input["case_id"]) <= set(folds.loc[folds["role"] == "train", "case_id"])
    assert trained.curve.empty
    checkpoint = folder / f"{name}.pt"
    trained.model.save(checkpoint)
    result = sample_fold(checkpoint, index=index, folds=folds, patches=patches, fold="r0f0", classes=CLASSES,
                         sampling=SAMPLING, training=TRAINING, shape_model={}, augmentation={}, seed=3)
    assert list(result.table.columns) == [*SAMPLE_COLUMNS, *kind_columns, *PROVENANCE_COLUMNS]
    assert list(result.sampling.columns) == ["model", "fold", *SAMPLING_COLUMNS]
    assert result.sampling.set_index("label")["requested"].to_dict() == {"benign": 0, "malignant": 4}
    assert list(result.arrays["sample_id"]) == list(result.table["sample_id"])
    assert len(result.arrays["image"]) == len(result.arrays["mask"]) == len(result.table)
    if name == "cyclegan":  # translations of the fold's source-domain training cases, each keeping its class
        parents = index.set_index("case_id").loc[result.table["parent_case_id"]]
        assert (parents["domain"] == "scanner_a").all()
        assert list(parents["label"]) == list(result.table["label"])
        assert set(result.table["parent_case_id"]) <= set(folds.loc[folds["role"] == "train", "case_id"])


def test_a_model_of_neither_protocol_is_refused(study):
    index, folds, patches, _ = study

    class Neither:
        name = "neither"

    with pytest.raises(TypeError, match="neither a ConditionalSampler nor a Translator"):
        fill_quotas(Neither(), {"benign": 1}, train=folds.iloc[:0], index=index, folds=folds, patches=patches,
                    classes=CLASSES, fold="r0f0", seed=0, sampling=SAMPLING, shape_model={}, augmentation={})
