"""The feature-selection steps of the downstream classifier (:func:`radaug.classifier.build_classifier`).

scikit-learn transformers, in their own module so that importing :mod:`radaug.classifier`
(and with it :mod:`radaug.evaluate`: the evaluation summary, the report) does not import
scikit-learn: :func:`~radaug.classifier.build_classifier` imports this module when it builds a pipeline.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectKBest, SelectorMixin, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.validation import validate_data


class SelectUpToK(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features with the largest ANOVA F statistic, or all when fewer remain.

    Unlike :class:`~sklearn.feature_selection.SelectKBest`, ``k`` is clipped to the
    number of features that reach this step, which is only known at fit time
    (earlier steps of the pipeline may drop constant features).
    """

    def __init__(self, k: int = 20):
        self.k = k

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.selector_ = SelectKBest(f_classif, k=min(self.k, X.shape[1])).fit(X, y)
        return self

    def _get_support_mask(self):
        return self.selector_.get_support()


class SelectL1(SelectorMixin, BaseEstimator):
    """Keep the features with non-zero weight in an L1-penalised logistic regression.

    At most ``k`` of them (the largest absolute weights); when the penalty zeroes
    every weight, the single feature with the largest weight magnitude of a weaker
    penalty (``C × 100``) is kept, so the model after this step always has input.
    Tibshirani (1996), doi:10.1111/j.2517-6161.1996.tb02080.x.
    """

    def __init__(self, k: int | None = 20, C: float = 1.0):
        self.k = k
        self.C = C

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        weights = np.abs(self._weights(X, y, self.C))
        if not np.any(weights > 0):
            weights = np.abs(self._weights(X, y, self.C * 100))
            keep = np.zeros(X.shape[1], dtype=bool)
            keep[int(np.argmax(weights))] = True
            self.support_ = keep
            return self
        order = np.argsort(-weights, kind="stable")
        n = int(np.sum(weights > 0)) if self.k is None else min(self.k, int(np.sum(weights > 0)))
        keep = np.zeros(X.shape[1], dtype=bool)
        keep[order[:n]] = True
        self.support_ = keep
        return self

    @staticmethod
    def _weights(X, y, C):
        model = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, max_iter=5000,
                                   random_state=0)  # liblinear shuffles: fixed, not the global RNG
        if np.unique(y).size > 2:  # liblinear is binary: one L1 model per class, a feature's largest weight
            fitted = OneVsRestClassifier(model).fit(X, y)
            return np.max([np.abs(e.coef_[0]) for e in fitted.estimators_], axis=0)
        return model.fit(X, y).coef_[0]

    def _get_support_mask(self):
        return self.support_


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop features highly correlated with an earlier kept feature.

    Features are visited in column order; one is kept unless its absolute Pearson
    correlation with an already kept feature exceeds ``threshold`` (fitted on the
    training rows only). Constant columns are kept here (a variance filter removes
    them earlier in :func:`radaug.classifier.build_classifier`).
    """

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(X, rowvar=False)) if X.shape[1] > 1 else np.ones((1, 1))
        corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
        keep: list[int] = []
        for j in range(X.shape[1]):
            if all(corr[j, i] <= self.threshold for i in keep):
                keep.append(j)
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[keep] = True
        return self

    def _get_support_mask(self):
        return self.support_
