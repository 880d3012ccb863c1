"""Out-of-fold random-forest probabilities for the detection AUC, grown tree by tree.

:func:`radaug.validate.detection.detection_auc` fits a small random forest per
cross-validation fold, and the null rule scores it on many permuted draws per
validation cell: on the default study's validation, about half the CPU time
went to these forests. For forests of 30 trees on some hundred rows,
scikit-learn spends about two thirds of a fit on per-tree bookkeeping (cloning
the estimator, which inspects its signature, and re-checking inputs), not on
growing trees (BENCHMARKS.md, "Detection AUC's forests grown tree by tree").

:func:`out_of_fold_proba` grows the same trees, from the same seeds, with
scikit-learn's own tree builder (its ``Tree``, ``BestSplitter``, ``Gini`` and
``DepthFirstTreeBuilder``, the objects ``DecisionTreeClassifier.fit`` builds)
and averages their class fractions in the same order, so its result equals
``cross_val_predict(RandomForestClassifier(n_estimators, random_state=seed,
n_jobs=1), x, y, cv=cv, method="predict_proba")`` bit for bit
(``tests/unit/test_validate_forest.py``, over seeds, shapes, groups and ties).
Those builder classes are private to scikit-learn, and their behaviour (how a
tree stores its class fractions, how seeds and bootstraps are drawn) is only
checked against the library for the versions in :data:`VERIFIED_SKLEARN` (the
one ``envs/requirements.txt`` pins). With another version, where the classes
cannot be built as here, for labels that are not two classes, test parts that do
not partition the rows, or values that are not finite in float32 (the forest's
missing-value handling), the function calls scikit-learn's forest itself: the
library's result (or its error) at the old cost. :data:`FAST_PATH` says which.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_INT32_MAX = np.iinfo(np.int32).max

VERIFIED_SKLEARN = ("1.9.1",)
"""scikit-learn versions whose forest this module's trees were checked against, bit for bit."""


def _builder_parts():
    """scikit-learn's tree-building classes, or None where the version is not verified or they do not build."""
    try:
        import sklearn
        from sklearn.tree._criterion import Gini
        from sklearn.tree._splitter import BestSplitter
        from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

        if sklearn.__version__ not in VERIFIED_SKLEARN:
            return None
        n_classes = np.array([2], dtype=np.intp)
        x = np.array([[0.0], [1.0]], dtype=np.float32)
        y = np.array([[0.0], [1.0]])
        tree = Tree(1, n_classes, 1)
        splitter = BestSplitter(Gini(1, n_classes), 1, 1, 0.0, np.random.RandomState(0), None)
        DepthFirstTreeBuilder(splitter, 2, 1, 0.0, _INT32_MAX, 0.0).build(tree, x, y, np.ones(2), None)
        if not np.array_equal(tree.predict(x), [[1.0, 0.0], [0.0, 1.0]]):
            return None
    except Exception:  # noqa: BLE001 - any failure means: use the library's forest
        return None
    return Tree, BestSplitter, Gini, DepthFirstTreeBuilder


_PARTS = _builder_parts()
FAST_PATH = _PARTS is not None
"""Whether forests are grown here (True) or by scikit-learn's ``RandomForestClassifier`` (False)."""


def _forest_proba(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_trees: int, seed: int) -> np.ndarray:
    """``RandomForestClassifier(n_trees, random_state=seed).fit(x_train, y_train).predict_proba(x_test)``.

    ``x_train`` and ``x_test`` in float32, ``y_train`` the codes 0 .. k-1 of the k classes
    present in the training rows (``np.unique``'s inverse, as the forest encodes them). Mirrors
    scikit-learn 1.9's ``BaseForest.fit`` and ``DecisionTreeClassifier._fit`` for the
    defaults used here (Gini, ``max_features="sqrt"``, bootstrap of n rows, no depth or
    leaf limits, no class or sample weights): a tree's seed is the forest's next
    ``randint(2**31 - 1)``; the seed draws the tree's bootstrap (as counts) and, afresh,
    seeds its splitter; a tree's class fractions are summed in tree order and divided by
    the number of trees. Columns are the k classes, in order.
    """
    tree_cls, splitter_cls, gini_cls, builder_cls = _PARTS
    y = np.ascontiguousarray(y_train.reshape(-1, 1), dtype=np.float64)
    n_rows, n_features = x_train.shape
    k = int(y_train.max()) + 1
    n_classes = np.array([k], dtype=np.intp)
    max_features = max(1, int(np.sqrt(n_features)))
    proba = np.zeros((len(x_test), k))
    # One generator reseeded per use: RandomState(s) and reseeding give the same stream, and
    # constructing one costs about 120 us against 2 us (a quarter of a small forest's time).
    state = np.random.RandomState(0)  # reseeded before every draw below
    for tree_seed in np.random.RandomState(seed).randint(_INT32_MAX, size=n_trees):
        state.seed(tree_seed)
        rows = state.randint(0, n_rows, n_rows).astype(np.int32)
        weights = np.bincount(rows, minlength=n_rows).astype(np.float64)
        tree = tree_cls(n_features, n_classes, 1)
        state.seed(tree_seed)  # the splitter draws its seed from a fresh RandomState(tree_seed) at build
        splitter = splitter_cls(gini_cls(1, n_classes), max_features, 1, 0.0, state, None)
        builder_cls(splitter, 2, 1, 0.0, _INT32_MAX, 0.0).build(tree, x_train, y, weights, None)
        proba += tree.predict(x_test)
    return proba / n_trees


def out_of_fold_proba(x: np.ndarray, y: np.ndarray, splits: Iterable[tuple[np.ndarray, np.ndarray]],
                      *, n_trees: int, seed: int) -> np.ndarray:
    """Out-of-fold probability of the second class from a random forest fit on each split's training rows.

    Parameters
    ----------
    x
        Feature matrix (rows x features).
    y
        Two classes (any labels): the probability returned is the second's, in sorted order.
    splits
        ``(train, test)`` row indices whose test parts partition the rows (a
        scikit-learn splitter's ``split``).
    n_trees, seed
        The forest's ``n_estimators`` and ``random_state``.

    Returns
    -------
    numpy.ndarray
        Per row, the forest's probability of the second class when the row was held out:
        ``cross_val_predict(RandomForestClassifier(n_estimators=n_trees,
        random_state=seed, n_jobs=1), x, y, cv=..., method="predict_proba")[:, 1]``
        (0 where a training part lacked that class, as there).
    """
    x, y, seed = np.asarray(x, dtype=float), np.asarray(y), int(seed)
    splits = [(np.asarray(train), np.asarray(test)) for train, test in splits]
    with np.errstate(over="ignore"):  # beyond float32's range: inf, which sends it to the library's forest
        x32 = x.astype(np.float32)  # as the forest's input check converts it
    labels, codes = np.unique(y, return_inverse=True)  # as cross_val_predict encodes them
    tested = np.sort(np.concatenate([test for _, test in splits])) if splits else np.array([], dtype=int)
    if (not FAST_PATH or len(labels) != 2 or not np.isfinite(x32).all()
            or not np.array_equal(tested, np.arange(len(y)))):
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import cross_val_predict

        forest = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
        return cross_val_predict(forest, x, y, cv=splits, method="predict_proba")[:, 1]
    out = np.zeros(len(y))
    for train, test in splits:
        present, train_codes = np.unique(codes[train], return_inverse=True)
        if 1 in present:  # a class absent from the training part: 0, as there
            proba = _forest_proba(x32[train], train_codes, x32[test], n_trees, seed)
            out[test] = proba[:, int(np.searchsorted(present, 1))]
    return out
