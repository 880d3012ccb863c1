"""radaug.validate.forest against scikit-learn's forest in cross_val_predict: equal bit for bit."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

from radaug.validate import forest
from radaug.validate.detection import DETECTION_TREES, detection_auc
from radaug.validate.forest import out_of_fold_proba


def _reference(x, y, splits, n_trees, seed):
    model = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
    return cross_val_predict(model, x, y, cv=splits, method="predict_proba")[:, 1]


def test_the_pinned_scikit_learn_takes_the_fast_path():
    # envs/requirements.txt pins scikit-learn; another version (forest.VERIFIED_SKLEARN) falls
    # back to the library's forest (same values, old cost), which this test makes visible
    assert forest.FAST_PATH


def test_an_unverified_scikit_learn_version_takes_the_library_forest(monkeypatch):
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "99.0")
    assert forest._builder_parts() is None


@pytest.mark.parametrize("seed", [0, 1, 7, 20261203])
@pytest.mark.parametrize("shape", [(12, 1), (40, 3), (130, 93), (301, 17)])
def test_out_of_fold_proba_equals_cross_val_predict_of_the_forest(seed, shape):
    rng = np.random.default_rng(seed + shape[0])
    x = rng.normal(size=shape)
    x[:, 0] = np.round(x[:, 0], 1)  # ties in a feature: split thresholds between equal values
    y = (rng.random(shape[0]) < 0.4).astype(int)
    y[:2] = [0, 1]
    x[y == 1] += 0.3
    splits = list(StratifiedKFold(n_splits=min(5, int(y.sum()), int((1 - y).sum())), shuffle=True,
                                  random_state=seed).split(x, y))
    got = out_of_fold_proba(x, y, splits, n_trees=DETECTION_TREES, seed=seed)
    assert np.array_equal(got, _reference(x, y, splits, DETECTION_TREES, seed))


def test_grouped_splits_duplicate_rows_and_other_tree_counts_are_equal_too():
    rng = np.random.default_rng(3)
    x = np.repeat(rng.normal(size=(30, 6)), 3, axis=0)  # every row three times, as copies of a case
    y = np.repeat(rng.integers(0, 2, 30), 3)
    groups = np.repeat(np.arange(30), 3)
    splits = list(StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=5).split(x, y, groups))
    for n_trees in (1, 30, 64):
        assert np.array_equal(out_of_fold_proba(x, y, splits, n_trees=n_trees, seed=11),
                              _reference(x, y, splits, n_trees, 11))


@pytest.mark.filterwarnings("ignore:Number of classes in training fold")  # the reference's, on purpose
def test_a_training_part_without_class_one_gives_zero_as_cross_val_predict_does():
    x = np.arange(8, dtype=float).reshape(-1, 1)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    # the first part's training rows hold no class-1 row
    splits = [(np.arange(6), np.arange(6, 8)), (np.r_[0:2, 6:8], np.arange(2, 6)), (np.arange(2, 8), np.arange(2))]
    got = out_of_fold_proba(x, y, splits, n_trees=5, seed=0)
    assert np.array_equal(got, _reference(x, y, splits, 5, 0))
    assert np.all(got[6:] == 0.0)


@pytest.mark.filterwarnings("ignore:Number of classes in training fold")
@pytest.mark.parametrize("labels", [(1, 2), ("no_tumour", "tumour"), (0, 2)])
def test_any_two_labels_give_the_second_class_and_a_part_without_the_first_is_handled(labels):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(24, 5))
    y = np.array([labels[0]] * 12 + [labels[1]] * 12, dtype=object if isinstance(labels[0], str) else int)
    x[12:] += 0.8
    # the last part's training rows hold no row of the first class
    splits = [(np.r_[0:6, 12:24], np.arange(6, 12)), (np.r_[6:12, 18:24], np.r_[0:6, 12:18]),
              (np.arange(12, 18), np.arange(18, 24))]
    got = out_of_fold_proba(x, y, splits, n_trees=7, seed=3)
    assert np.array_equal(got, _reference(x, y, splits, 7, 3))
    assert np.all(got[18:] == 1.0)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the library's own, on purpose
def test_what_the_library_refuses_is_refused_alike():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(10, 3)), np.r_[np.zeros(5, int), np.ones(5, int)]
    not_a_partition = [(np.arange(5, 10), np.arange(5))]  # rows 5-9 never tested
    with pytest.raises(ValueError, match="partitions"):
        out_of_fold_proba(x, y, not_a_partition, n_trees=3, seed=0)
    x[0, 0] = 1e39  # finite in float64, beyond float32's range
    splits = list(StratifiedKFold(n_splits=2, shuffle=True, random_state=0).split(x, y))
    with pytest.raises(ValueError, match="too large"):
        out_of_fold_proba(x, y, splits, n_trees=3, seed=0)


def test_non_finite_values_go_to_the_library_forest(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), np.r_[np.zeros(20, int), np.ones(20, int)]
    x[3, 1] = np.nan
    splits = list(StratifiedKFold(n_splits=4, shuffle=True, random_state=0).split(x, y))
    monkeypatch.setattr(forest, "_forest_proba", lambda *a, **k: pytest.fail("the fast path saw a NaN"))
    assert np.array_equal(out_of_fold_proba(x, y, splits, n_trees=10, seed=2), _reference(x, y, splits, 10, 2))


def test_detection_auc_is_the_auc_of_the_library_forest():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(50, 12)), rng.normal(0.4, 1.0, size=(35, 12))
    groups_a, groups_b = rng.integers(0, 25, 50).astype(str), np.char.add("c", rng.integers(0, 20, 35).astype(str))
    x, y = np.vstack([a, b]), np.r_[np.zeros(50, int), np.ones(35, int)]
    groups = np.r_[groups_a, groups_b]
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=4)
    forest_scores = cross_val_predict(RandomForestClassifier(n_estimators=DETECTION_TREES, random_state=4, n_jobs=1),
                                      x, y, cv=cv, groups=groups, method="predict_proba")[:, 1]
    expected = roc_auc_score(y, forest_scores)
    assert detection_auc(a, b, groups_reference=groups_a, groups_candidate=groups_b, seed=4) == expected
