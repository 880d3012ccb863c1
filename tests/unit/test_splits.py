import numpy as np
import pandas as pd
import pytest

from radaug.errors import ConfigError, LeakageError
from radaug.splits import check_training_input, fold_cases, make_folds, near_duplicate_pairs


def _cases(n=60, seed=0):
    rng = np.random.default_rng(seed)
    hashes = [f"{int(h):016x}" for h in rng.integers(0, 2**63, size=n, dtype=np.int64)]
    return pd.DataFrame({
        "case_id": [f"c{i:03d}" for i in range(n)],
        "patient_id": [f"p{i // 2:03d}" for i in range(n)],  # two cases per patient
        "label": ["a" if i % 6 else "b" for i in range(n)],
        "group": "", "phash": hashes,
        "content_sha256": [f"h{i}" for i in range(n)],
    })


def test_hamming_pairs():
    pairs = near_duplicate_pairs(["0000000000000000", "0000000000000003", "ffffffffffffffff"], 2)
    assert pairs.tolist() == [[0, 1]]
    assert near_duplicate_pairs(["0000000000000000", "0000000000000007"], 2).tolist() == []


def test_folds_are_grouped_and_stratified():
    cases = _cases()
    # case 5 is a near-duplicate (1 bit) of case 40: different patients
    cases.loc[5, "phash"] = f"{int(cases.loc[40, 'phash'], 16) ^ 1:016x}"
    folds = make_folds(cases, folds=5, repeats=2, seed=3)
    assert len(folds) == len(cases) * 5 * 2
    for (r, k), part in folds.groupby(["repeat", "fold"]):
        test = part[part["role"] == "test"]
        assert set(test["label"]) == {"a", "b"}
        roles = part.set_index("case_id")["role"]
        assert roles["c005"] == roles["c040"]  # near-duplicates on the same side
        assert roles["c004"] == roles["c005"]  # same patient on the same side
    # every case is tested exactly once per repeat
    assert (folds[folds["role"] == "test"].groupby("repeat")["case_id"].nunique() == len(cases)).all()


def test_folds_are_seeded():
    a = make_folds(_cases(), folds=3, seed=1)
    b = make_folds(_cases(), folds=3, seed=1)
    c = make_folds(_cases(), folds=3, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_too_few_groups_after_grouping():
    cases = _cases(12)
    cases["phash"] = "0000000000000000"  # everything is one near-duplicate group
    with pytest.raises(ConfigError, match="split.folds"):
        make_folds(cases, folds=3, allow_mixed_label_duplicates=True)


def test_training_input_check_catches_leaks():
    cases = _cases()
    folds = make_folds(cases, folds=3, seed=0)
    train = fold_cases(folds, 0, 0, "train")["case_id"]
    test = fold_cases(folds, 0, 0, "test")["case_id"]
    check_training_input(folds, cases, 0, 0, train)
    with pytest.raises(LeakageError, match="test case"):
        check_training_input(folds, cases, 0, 0, list(train) + [test.iloc[0]])
    leaked = cases.copy()
    leaked.loc[leaked["case_id"] == train.iloc[0], "content_sha256"] = \
        leaked.loc[leaked["case_id"] == test.iloc[0], "content_sha256"].iloc[0]
    with pytest.raises(LeakageError, match="same image content"):
        check_training_input(folds, leaked, 0, 0, train)
    with pytest.raises(LeakageError, match="not in the split"):
        check_training_input(folds, cases, 0, 0, ["nobody"])


def test_grouped_halves_keep_groups_whole_balanced_and_seeded():
    from radaug.splits import grouped_halves

    rng = np.random.default_rng(3)
    groups = np.repeat([f"g{i}" for i in range(40)], rng.integers(1, 5, size=40))
    a, b = grouped_halves(groups, seed=7)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(len(groups)))
    assert not set(groups[a]) & set(groups[b])
    assert abs(len(a) - len(b)) <= 4
    same_a, _ = grouped_halves(groups, seed=7)
    other_a, _ = grouped_halves(groups, seed=8)
    assert np.array_equal(a, same_a) and not np.array_equal(a, other_a)
    # Independent rows: an even split of the rows.
    a, b = grouped_halves([str(i) for i in range(9)], seed=0)
    assert (len(a), len(b)) == (5, 4) or (len(a), len(b)) == (4, 5)
    assert grouped_halves([], seed=0)[0].size == 0


def test_three_class_folds_test_every_class_and_a_small_class_is_named():
    """Issue 23: stratified grouped folds over K classes; too few groups of a class names it."""
    cases = _cases(60)
    cases["label"] = ["a", "b", "c"] * 20
    cases["patient_id"] = [f"p{i:03d}" for i in range(60)]
    folds = make_folds(cases, folds=4, seed=1)
    test = folds[folds["role"] == "test"].groupby(["fold", "label"]).size().unstack(fill_value=0)
    assert (test >= 4).all(axis=None), test
    few = cases[(cases["label"] != "c") | (cases.index < 9)]  # 3 patients of class c
    with pytest.raises(ConfigError, match="'c': 3"):
        make_folds(few, folds=4)
