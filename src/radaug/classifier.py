"""The downstream classifier: one scikit-learn pipeline, fitted inside each fold.

:func:`build_classifier` chains imputation, feature filters, scaling, feature selection
and the model, so that fitting it on a fold's training rows never lets the test rows
influence any step. The selection steps themselves are scikit-learn transformers in
:mod:`radaug.selectors`. scikit-learn is imported inside :func:`build_classifier`, so
importing this module (evaluation does, at import) costs nothing until a pipeline is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

CLASSIFIERS = ("logistic_regression", "random_forest", "svm")
"""Classifier models of ``evaluation.classifier.model`` (not the generators of ``generative.models``)."""
SELECTIONS = ("univariate", "l1")
"""Feature selections of ``evaluation.classifier.selection``."""


def build_classifier(
    *,
    model: str = "logistic_regression",
    k_features: int | None = 20,
    selection: str = "univariate",
    correlation_threshold: float | None = 0.95,
    class_weight: str | None = None,
    C: float = 1.0,
    seed: int = 0,
) -> Pipeline:
    """The downstream classifier: preprocessing, feature selection and model in one pipeline.

    Steps: median imputation → removal of constant features → removal of features
    correlated above ``correlation_threshold`` with an earlier one → standardisation
    → feature selection (``k_features`` by ANOVA F, or non-zero L1 weights) → model.
    All steps live in the pipeline, so fitting it on a fold's training set never lets
    the test set influence imputation, filtering, scaling or selection.

    Parameters
    ----------
    model
        ``"logistic_regression"`` (L2, ``max_iter=5000``), ``"random_forest"``
        (500 trees) or ``"svm"`` (RBF kernel, its decision values Platt-scaled to
        probabilities by ``CalibratedClassifierCV(..., ensemble=False)`` with 5-fold
        internal cross-validation, so each class needs at least 5 training rows).
    k_features
        Number of features to keep, clipped to the number available; ``None``
        keeps all (``"univariate"``) or every non-zero weight (``"l1"``).
    selection
        ``"univariate"`` (ANOVA F, :class:`~sklearn.feature_selection.SelectKBest`)
        or ``"l1"`` (L1-penalised logistic regression with strength ``C``).
    correlation_threshold
        Absolute Pearson correlation above which a feature is dropped; ``None``
        disables the filter.
    class_weight
        ``None`` or ``"balanced"``, passed to the model.
    C
        Inverse regularisation strength (logistic regression, SVM, L1 selection).
    seed
        Random state of the random forest (the other models are deterministic).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted pipeline with steps ``impute``, ``variance``, ``correlation`` (when
        enabled), ``scale``, ``select`` (unless univariate with ``k_features=None``)
        and ``model``.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from radaug.selectors import CorrelationFilter, SelectL1, SelectUpToK

    valid_k = isinstance(k_features, int) and not isinstance(k_features, bool) and k_features >= 1
    if k_features is not None and not valid_k:
        raise ValueError(f"k_features must be a positive integer or None, got {k_features!r}")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown feature selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if correlation_threshold is not None and not 0 < correlation_threshold <= 1:
        raise ValueError(f"correlation_threshold must be in (0, 1] or None, got {correlation_threshold!r}")
    if model == "logistic_regression":
        estimator = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000)
    elif model == "random_forest":
        estimator = RandomForestClassifier(n_estimators=500, class_weight=class_weight, random_state=seed)
    elif model == "svm":
        estimator = CalibratedClassifierCV(SVC(C=C, class_weight=class_weight), method="sigmoid", ensemble=False)
    else:
        raise ValueError(f"unknown classifier model {model!r}; choose one of {', '.join(CLASSIFIERS)}")
    steps = [
        ("impute", SimpleImputer(strategy="median")),
        ("variance", VarianceThreshold()),
    ]
    if correlation_threshold is not None:
        steps.append(("correlation", CorrelationFilter(threshold=correlation_threshold)))
    steps.append(("scale", StandardScaler()))
    if selection == "l1":
        steps.append(("select", SelectL1(k=k_features, C=C)))
    elif k_features is not None:
        steps.append(("select", SelectUpToK(k=k_features)))
    steps.append(("model", estimator))
    return Pipeline(steps)
