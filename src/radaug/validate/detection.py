"""Classifier-based checks: can a model tell candidate from real, and does it agree on the label?

Both functions take feature matrices (numpy arrays or DataFrames of numeric
columns) and are deterministic for a given ``seed``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radaug.validate.forest import out_of_fold_proba
from radaug.validate.metrics import FeatureMatrix, aligned

DETECTION_TREES = 30
"""Trees of the real-vs-candidate random forest."""


def detection_auc(
    reference: FeatureMatrix,
    candidate: FeatureMatrix,
    *,
    groups_reference=None,
    groups_candidate=None,
    n_splits: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated ROC AUC of a classifier telling candidate rows from real rows.

    A random forest (:data:`DETECTION_TREES` trees, scale-free, so no feature
    scaling is fitted) is trained to separate ``reference`` (label 0) from
    ``candidate`` (label 1); the out-of-fold probabilities of all rows give one
    AUC. 0.5 means the sets are indistinguishable, 1 that every candidate row is
    recognisable; this is the classifier two-sample test of Lopez-Paz & Oquab
    [1]_, used for synthetic data as the "detection" metric of SDMetrics.

    Parameters
    ----------
    reference, candidate
        Feature matrices with the same features (non-finite columns dropped).
    groups_reference, groups_candidate
        Optional group labels per row (e.g. the case a sample was derived from):
        the folds are grouped (:class:`~sklearn.model_selection.StratifiedGroupKFold`)
        so a case and its derived samples never straddle training and test
        folds, where the grouping allows it. Give both or neither.
    n_splits
        Number of folds; reduced to the size of the smaller set (or the number
        of groups) when that is smaller.
    seed
        Seed of the fold assignment and of the forest.

    Returns
    -------
    float
        In [0, 1]. NaN if a set has fewer than two rows (or groups) or no
        feature is left.

    References
    ----------
    .. [1] Lopez-Paz, D., & Oquab, M. (2017). Revisiting classifier two-sample
       tests. ICLR 2017. arXiv:1610.06545
    """
    _, (ref, cand), _ = aligned(reference, candidate)
    if ref.shape[1] == 0 or len(ref) < 2 or len(cand) < 2:
        return math.nan
    x = np.vstack([ref, cand])
    y = np.r_[np.zeros(len(ref), int), np.ones(len(cand), int)]
    if (groups_reference is None) != (groups_candidate is None):
        raise ValueError("Give both groups_reference and groups_candidate, or neither.")
    groups = None
    if groups_reference is not None:
        groups = np.r_[np.asarray(groups_reference, dtype=str), np.asarray(groups_candidate, dtype=str)]
        splits = min(n_splits, len(set(groups[y == 0])), len(set(groups[y == 1])))
        if splits >= 2:
            cv = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
        else:  # too few groups to keep them apart: fall back to ungrouped folds
            groups = None
    if groups is None:
        splits = min(n_splits, len(ref), len(cand))
        cv = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    # scikit-learn's RandomForestClassifier in cross_val_predict, bit for bit, grown without its
    # per-tree overhead (radaug.validate.forest)
    scores = out_of_fold_proba(x, y, cv.split(x, y, groups), n_trees=DETECTION_TREES, seed=seed)
    return float(roc_auc_score(y, scores))


LABEL_RIDGE = 1.0
"""Ridge penalty of :func:`label_margin` per training row (of the standardised features)."""


def label_margin(train_class: FeatureMatrix, train_other: FeatureMatrix, candidate: FeatureMatrix) -> float:
    """How far the candidate rows lean towards another class: the statistic ``label_disagreement``'s null tests.

    A ridge least-squares classifier (intended class +1, other classes -1, an
    unpenalised intercept, penalty :data:`LABEL_RIDGE` per fitted row) is fit on
    ``train_class`` against ``train_other``; the value is the mean of *minus*
    its decision value over the candidate rows: higher when they look more like
    another class. The features are standardised by the mean and SD of all three
    sets together, which a permutation of class and candidate rows leaves
    unchanged, so the statistic is a function of the partition alone and its
    permutation test (:func:`radaug.validate.summary._permutation_draws`) exact.

    It stands in for the share of :func:`label_disagreement` in the null rule for
    two reasons. The share of a handful of candidate rows takes few values, and
    most permuted draws tie at 0: the test could not resolve the level. And a
    logistic regression per draw costs about 15 ms, 3 s for 200 draws per cell;
    this closed-form fit costs well under a millisecond. NaN if a set has fewer
    than two rows or no feature is left.
    """
    _, (pos, neg, cand), _ = aligned(train_class, train_other, candidate)
    if min(len(pos), len(neg), len(cand)) < 2:
        return math.nan
    rows = np.vstack([pos, neg, cand])
    sd = rows.std(axis=0)
    keep = np.isfinite(sd) & (sd > 0)
    if not keep.any():
        return math.nan
    mean = rows.mean(axis=0)[keep]
    pos, neg, cand = ((m[:, keep] - mean) / sd[keep] for m in (pos, neg, cand))
    x = np.column_stack([np.vstack([pos, neg]), np.ones(len(pos) + len(neg))])
    y = np.r_[np.ones(len(pos)), -np.ones(len(neg))]
    penalty = np.full(x.shape[1], LABEL_RIDGE * len(x))
    penalty[-1] = 0.0
    weights = np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)
    return float(-np.mean(cand @ weights[:-1] + weights[-1]))


def _label_model(seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def label_disagreement(
    train_class: FeatureMatrix,
    train_other: FeatureMatrix,
    candidate: FeatureMatrix,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """Share of candidate rows that a real-data classifier assigns to another class.

    A standardised logistic regression is fit on the real training rows of the
    intended class (``train_class``) against those of every other class
    (``train_other``) and predicts the candidate rows, which were generated or
    augmented *as* the intended class: the value is the share predicted as
    another class. The baseline is the same share for the real training rows of
    the class, predicted out of fold (5-fold stratified cross-validation), i.e.
    how often real cases of the class already look like another class.

    Parameters
    ----------
    train_class, train_other
        Real training rows of the intended class and of the other classes.
    candidate
        Candidate rows labelled with the intended class.
    seed
        Seed of the folds and the solver.

    Returns
    -------
    value, baseline
        Shares in [0, 1]; NaN if a set has fewer than two rows or no feature is
        left (the baseline also if a class has fewer than two rows per fold).
    """
    _, (pos, neg, cand), _ = aligned(train_class, train_other, candidate)
    if pos.shape[1] == 0 or min(len(pos), len(neg), len(cand)) < 2:
        return math.nan, math.nan
    x = np.vstack([pos, neg])
    y = np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)]
    value = float(np.mean(_label_model(seed).fit(x, y).predict(cand) != 1))
    splits = min(5, len(pos), len(neg))
    if splits < 2:
        return value, math.nan
    cv = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    predicted = cross_val_predict(_label_model(seed), x, y, cv=cv)
    return value, float(np.mean(predicted[y == 1] != 1))
