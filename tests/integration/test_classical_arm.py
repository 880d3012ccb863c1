"""The classical arm and the invariance analysis inside the smoke study (reuses the session fixture)."""
import json

import numpy as np
import pandas as pd
import pytest

from radaug.augment import apply_chain
from radaug.features import META_COLUMNS, parse_spacing
from radaug.io import load_arrays
from radaug.preprocess import load_patches
from radaug.validate.invariance import INVARIANCE_COLUMNS

pytestmark = pytest.mark.integration


def test_augmented_samples_derive_from_fold_training_cases_only(smoke):
    study = smoke
    folds = pd.read_csv(study / "splits/folds.csv")
    for path in sorted((study / "features/classical").glob("r*f*.csv")):
        if path.name.endswith("failures.csv"):
            continue
        table = pd.read_csv(path)
        assert list(table.columns[:len(META_COLUMNS)]) == list(META_COLUMNS)
        assert (table["source"] == "augmented").all() and (table["arm"] == "classical").all()
        repeat, fold = int(path.stem[1:].split("f")[0]), int(path.stem.split("f")[1])
        part = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)].set_index("case_id")
        assert (part.loc[table["case_id"], "role"] == "train").all(), path
        # Same quotas as every arm: the minority class is filled, the majority gets nothing.
        assert set(table["label"]) == {"malignant"}


def test_an_augmented_sample_is_recreated_exactly_from_its_record(smoke):
    study = smoke
    table = pd.read_csv(study / "augmented/classical/r0f0.csv")
    arrays = load_arrays(study / "augmented/classical/r0f0.npz")
    spacing = parse_spacing(pd.read_csv(study / "cases/index.csv")["spacing"].iloc[0])
    for i in (0, len(table) - 1):
        row = table.iloc[i]
        _, images, masks = load_patches(sorted((study / "cases").glob("batch_*.npz")), [row["case_id"]])
        image, mask = apply_chain(json.loads(row["chain"]), images[0], masks[0], spacing)
        np.testing.assert_array_equal(image, arrays["image"][i])
        np.testing.assert_array_equal(mask, arrays["mask"][i])


def test_invariance_tables_follow_the_contract(smoke):
    study = smoke
    tables = sorted((study / "invariance").glob("r*f*.csv"))
    assert len(tables) == 3
    for path in tables:
        table = pd.read_csv(path)
        assert list(table.columns) == list(INVARIANCE_COLUMNS)
        assert table["robust"].dtype == bool and table["feature"].is_unique
        assert table["robust"].any() and not table["robust"].all()  # shape features move, some do not
