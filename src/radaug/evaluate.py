"""Downstream evaluation of one arm on held-out real data, and across-fold statistics.

An *arm* is a way of building the training set of a fold (see :func:`arm_added_rows`):

* ``"real"``: the fold's real training cases only (the reference);
* ``"oversample"``: plus random duplicates of them;
* ``"smote"``: plus SMOTE interpolations between them (Chawla et al. 2002,
  doi:10.1613/jair.953), fitted inside the fold on standardised features;
* any other name (a generator, ``"classical"`` augmentation): plus the rows of
  that arm's data generated for the fold;
* ``"a+b"``: the union of the rows the arms ``a`` and ``b`` add.

Every arm is tested on the same held-out **real** cases of each fold, with the
whole preprocessing chain fitted inside the fold (see :func:`build_classifier`).
The leakage invariants are checked in code for every fold and break the run with
:class:`radaug.errors.LeakageError`.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from radaug.config import BUILTIN_ARMS, arm_components
from radaug.errors import LeakageError, RadaugError
from radaug.features import feature_columns, fold_rows
from radaug.sampling import rebalancing_quotas

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODELS = ("logistic_regression", "random_forest", "svm")
SELECTIONS = ("univariate", "l1")
METRICS = ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1", "brier", "minority_recall")
"""Per-fold metrics: the positive class is ``data.classes[1]``; ``minority_recall`` is the
recall of the class with fewer real training cases in the fold; ``brier`` is lower-is-better."""
MULTICLASS_METRICS = ("auc", "balanced_accuracy", "f1", "brier", "minority_recall")
"""Per-fold metrics of a study with K > 2 classes (plus the per-class ones of :func:`metric_names`):
``auc`` is the one-vs-rest macro AUC, ``f1`` the macro F1, ``brier`` the multi-class Brier score
halved (range [0, 1]) and ``minority_recall`` the recall of the class with fewest real training
cases in the fold; there is no positive class, so no sensitivity or specificity."""
PER_CLASS_PREFIXES = ("recall_", "auc_")
"""Per-class metric columns of a K-class study: ``recall_<class>`` and one-vs-rest ``auc_<class>``."""
PER_FOLD_ID_COLUMNS = ("arm", "repeat", "fold", "n_train_real", "n_train_added", "n_test")
PER_FOLD_COLUMNS = (*PER_FOLD_ID_COLUMNS, *METRICS)
PREDICTION_COLUMNS = ("arm", "repeat", "fold", "case_id", "label", "y_true", "score", "minority")
PROBABILITY_PREFIX = "proba_"
"""Prediction columns of a K-class study: ``proba_<class>``, the predicted probability of each class."""


def metric_names(classes) -> tuple[str, ...]:
    """The per-fold metrics of a study with ``classes``: :data:`METRICS` for two classes, else
    :data:`MULTICLASS_METRICS`, then ``recall_<class>`` and ``auc_<class>`` per class in order."""
    classes = [str(c) for c in classes]
    if len(classes) == 2:
        return METRICS
    return (*MULTICLASS_METRICS, *(f"recall_{c}" for c in classes), *(f"auc_{c}" for c in classes))


def per_fold_columns(classes) -> tuple[str, ...]:
    """Columns of :func:`evaluate_arm`'s per-fold table for ``classes`` (:data:`PER_FOLD_COLUMNS` for two)."""
    return (*PER_FOLD_ID_COLUMNS, *metric_names(classes))


def prediction_columns(classes) -> tuple[str, ...]:
    """Columns of :func:`evaluate_arm`'s predictions for ``classes`` (:data:`PREDICTION_COLUMNS` for two).

    With K > 2 classes ``y_true`` is the index of the true class in ``classes``, ``score`` the
    predicted probability of the true class, ``minority`` the index of the fold's smallest
    class, ``predicted`` the predicted class (largest probability) and ``proba_<class>``
    each class's probability."""
    classes = [str(c) for c in classes]
    if len(classes) == 2:
        return PREDICTION_COLUMNS
    return (*PREDICTION_COLUMNS, "predicted", *(f"{PROBABILITY_PREFIX}{c}" for c in classes))


def summary_metrics(per_fold: pd.DataFrame) -> list[str]:
    """The metric columns of a per-fold table: those of :data:`METRICS` in that order, then the per-class ones."""
    return ([m for m in METRICS if m in per_fold.columns]
            + [c for c in per_fold.columns if str(c).startswith(PER_CLASS_PREFIXES)])
SUMMARY_COLUMNS = (
    "arm", "metric", "mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds",
    "holm_p_value", "effect_size", "pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high",
    "holm_significant",
)
"""Contract columns first (``arm`` … ``n_folds``), then the additional statistics."""

# scikit-learn, scipy.stats and statsmodels are imported in the functions that use them: a job
# that imports this module for one helper (validation, the evaluation summary, the report) does
# not pay seconds of imports for the classifier or the statistics it never runs.


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
        raise ValueError(f"unknown classifier model {model!r}; choose one of {', '.join(MODELS)}")
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


def _is_empty(values: pd.Series) -> pd.Series:
    """True where a case_id is missing (NaN/None) or blank."""
    return values.isna() | (values.astype(str).str.strip() == "")


def data_components(arm: str) -> list[str]:
    """The components of ``arm`` whose rows come from feature files (not built in memory)."""
    return [c for c in arm_components(arm) if c not in BUILTIN_ARMS]


def _check_arm_data(arm_data: pd.DataFrame, arm: str, features: list[str], classes: list[str]) -> None:
    """Check an arm's data against the table contract (not the per-fold leakage rules).

    Arm data without rows is valid whatever its columns: a feature file of an arm
    that added nothing (balanced training folds, ``sampling.cap_per_case: 0``) has
    no feature columns, and the arm trains on the real cases alone.
    """
    if arm_data.empty:
        return
    missing_meta = sorted({"arm", "repeat", "fold", "label", "sample_id", "case_id"} - set(arm_data.columns))
    if missing_meta:
        raise RadaugError(f"arm {arm!r}: the arm data lacks columns {missing_meta}; pass a feature table "
                          "(radaug.features.META_COLUMNS and feature columns)")
    if set(feature_columns(arm_data)) != set(features):
        missing = sorted(set(features) - set(feature_columns(arm_data)))
        extra = sorted(set(feature_columns(arm_data)) - set(features))
        raise RadaugError(
            f"arm {arm!r}: the arm data's feature columns differ from the real features "
            f"(missing: {missing[:5]}, extra: {extra[:5]}); extract both with the same settings"
        )
    other_arms = sorted(set(arm_data["arm"]) - set(data_components(arm)))
    if other_arms:
        raise RadaugError(
            f"arm {arm!r}: the arm data contains rows of arms {other_arms}; pass only the rows of "
            f"{data_components(arm)}"
        )
    unknown = sorted(set(arm_data["label"]) - set(classes))
    if unknown:
        raise RadaugError(f"arm {arm!r}: the arm data has labels {unknown} that are not real classes {classes}")


def _check_leakage(
    train: pd.DataFrame,
    test: pd.DataFrame,
    added: pd.DataFrame,
    train_cases: set,
    where: str,
) -> None:
    """Raise LeakageError if the fold's training or added rows touch its test set."""
    not_real = test.loc[test["source"] != "real", "case_id"]
    if len(not_real):
        raise LeakageError(f"{where}: test rows must be real, but cases {sorted(not_real)[:5]} are not")
    leaked = sorted(set(train["case_id"]) & set(test["case_id"]))
    if leaked:
        raise LeakageError(
            f"{where}: test cases {leaked[:5]} also appear in the training set "
            "(as real cases or as parents of added rows)"
        )
    parents = added.loc[~_is_empty(added["case_id"]), ["sample_id", "case_id"]]
    foreign = parents[~parents["case_id"].isin(train_cases)]
    if len(foreign):
        raise LeakageError(
            f"{where}: arm rows {foreign['sample_id'].head(5).tolist()} derive from cases "
            f"{sorted(set(foreign['case_id']))[:5]}, which are not training cases of this fold"
        )
    shared = sorted(set(added["sample_id"]) & set(test["sample_id"]))
    if shared:
        raise LeakageError(f"{where}: arm rows share sample_ids {shared[:5]} with the test set")


def _class_counts(train_real: pd.DataFrame) -> dict[str, int]:
    labels = train_real["label"]
    return {str(name): int(n) for name, n in labels.value_counts().sort_index().items()}


def oversample(
    train_real: pd.DataFrame, *, seed: int, repeat: int, fold: int, target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
) -> pd.DataFrame:
    """The ``oversample`` arm's added rows: random duplicates of a fold's training rows.

    Per class as many as :func:`radaug.sampling.rebalancing_quotas` gives, drawn
    with replacement by ``numpy.random.default_rng([seed, repeat, fold])``.
    """
    rng = np.random.default_rng([seed, repeat, fold])
    labels = train_real["label"].to_numpy()
    counts = {name: int(np.sum(labels == name)) for name in sorted(set(labels))}
    quotas = rebalancing_quotas(counts, target_ratio, cap_per_case)
    picks = [rng.choice(np.flatnonzero(labels == name), size=quota, replace=True) for name, quota in quotas.items()]
    return train_real.iloc[np.concatenate(picks)]


def smote(
    train_real: pd.DataFrame, *, seed: int, repeat: int, fold: int, target_ratio: float = 1.0,
    cap_per_case: float = 4.0, k_neighbors: int = 5,
) -> pd.DataFrame:
    """The ``smote`` arm's added rows: SMOTE interpolations between a fold's training cases.

    SMOTE (Chawla et al. 2002, doi:10.1613/jair.953, as implemented by
    :class:`imblearn.over_sampling.SMOTE`) places each new row at
    ``x_i + u · (x_nn − x_i)``, ``u ~ U(0, 1)``, between a training case ``x_i`` and
    one of its ``k_neighbors`` nearest same-class neighbours. Distances are
    computed on features median-imputed and standardised with statistics of the
    fold's training rows only; new rows are transformed back to feature units.
    Per class as many rows as :func:`~radaug.sampling.rebalancing_quotas` gives
    (the same quotas as ``oversample`` and the generators). Seeded by
    ``numpy.random.default_rng([seed, repeat, fold, 1])``.

    Returns
    -------
    pandas.DataFrame
        Columns of ``train_real``; ``sample_id`` ``smote-r{repeat}f{fold}-{i}``,
        ``case_id`` empty (a row has two parents), ``source`` and ``arm`` ``"smote"``.

    Raises
    ------
    RadaugError
        A class that needs new rows has fewer than two training cases.
    """
    from imblearn.over_sampling import SMOTE
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    features = feature_columns(train_real)
    counts = _class_counts(train_real)
    quotas = rebalancing_quotas(counts, target_ratio, cap_per_case)
    strategy = {name: counts[name] + quota for name, quota in quotas.items() if quota > 0}
    empty = train_real.iloc[:0].copy()
    if not strategy:
        return empty
    smallest = min(counts[name] for name in strategy)
    if smallest < 2:
        raise RadaugError(
            f"repeat {repeat}, fold {fold}: SMOTE needs at least two training cases of each class it "
            f"grows, but a class has {smallest}; use fewer folds or drop the 'smote' arm"
        )
    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    scaler = StandardScaler()
    z = scaler.fit_transform(imputer.fit_transform(train_real[features].to_numpy(dtype=float)))
    state = int(np.random.default_rng([seed, repeat, fold, 1]).integers(2**31 - 1))
    sampler = SMOTE(sampling_strategy=strategy, k_neighbors=min(k_neighbors, smallest - 1), random_state=state)
    z_all, y_all = sampler.fit_resample(z, train_real["label"].to_numpy())
    new_z, new_y = z_all[len(z):], np.asarray(y_all[len(z):])
    rows = pd.DataFrame(scaler.inverse_transform(new_z), columns=features)
    meta = pd.DataFrame({
        "sample_id": [f"smote-r{repeat}f{fold}-{i:05d}" for i in range(len(rows))],
        "case_id": "", "source": "smote", "arm": "smote", "repeat": repeat, "fold": fold, "label": new_y,
    })
    return pd.concat([meta, rows], axis=1)[list(train_real.columns)]


def arm_added_rows(
    arm: str,
    train_real: pd.DataFrame,
    arm_data: pd.DataFrame | None = None,
    *,
    repeat: int,
    fold: int,
    seed: int,
    target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
) -> pd.DataFrame:
    """The rows an arm adds to one fold's real training set.

    The single definition of an arm's training data, used by evaluation and by
    validation alike, so what is validated is what is trained on.

    Parameters
    ----------
    arm
        ``"real"`` (adds nothing), ``"oversample"`` (:func:`oversample`), ``"smote"``
        (:func:`smote`), any other name (the rows of ``arm_data`` with that
        ``arm``, ``repeat`` and ``fold``), or a combination ``"a+b"`` (the rows
        of every component, in the order given).
    train_real
        The fold's real training rows (a feature table).
    arm_data
        Rows of the arm's file-backed components for any folds (the fold's rows
        are picked here); required when ``arm`` has such a component.
    repeat, fold
        The fold.
    seed, target_ratio, cap_per_case
        Seed and rebalancing rule of the built-in arms.

    Returns
    -------
    pandas.DataFrame
        The added rows with the columns of ``train_real`` (possibly none).
    """
    parts = []
    for component in arm_components(arm):
        if component == "real":
            continue
        if component in ("oversample", "smote"):
            build = oversample if component == "oversample" else smote
            parts.append(build(train_real, seed=seed, repeat=repeat, fold=fold, target_ratio=target_ratio,
                               cap_per_case=cap_per_case))
            continue
        if arm_data is None:
            raise ValueError(f"arm {arm!r} needs arm_data (the rows of {component!r} for every fold)")
        if arm_data.empty:  # the component added nothing in any fold (its table may lack feature columns)
            continue
        in_fold = (arm_data["arm"] == component) & (arm_data["repeat"] == repeat) & (arm_data["fold"] == fold)
        parts.append(arm_data[in_fold])
    parts = [p for p in parts if len(p)]
    if not parts:
        return train_real.iloc[:0]
    return pd.concat(parts, ignore_index=True)[list(train_real.columns)]


def classification_metrics(y_true, score, minority=1, threshold: float = 0.5) -> dict[str, float]:
    """The per-fold metrics of :data:`METRICS` from labels and positive-class probabilities.

    Parameters
    ----------
    y_true
        1 for the positive class, 0 otherwise.
    score
        Predicted probability of the positive class; the predicted label is
        positive when ``score > threshold`` (as ``predict`` of a probabilistic
        scikit-learn classifier for ``threshold=0.5``).
    minority
        ``y_true`` value (0 or 1) of the minority class, scalar or per row.

    Returns
    -------
    dict
        ``auc`` (Mann-Whitney form of the ROC area, ties counted half),
        ``balanced_accuracy``, ``sensitivity`` and ``specificity`` (recall of the
        positive and negative class), ``f1`` (of the positive class, 0 when it is
        never predicted nor present), ``brier`` (mean squared error of ``score``)
        and ``minority_recall``. A metric that needs a class absent from
        ``y_true`` is NaN.
    """
    y_true = np.asarray(y_true, dtype=int)
    weighted = weighted_classification_metrics(y_true, score, np.ones((1, y_true.size)), minority, threshold)
    return {metric: float(values[0]) for metric, values in weighted.items()}


def weighted_classification_metrics(y_true, score, weights, minority=1, threshold: float = 0.5,
                                    ) -> dict[str, np.ndarray]:
    """:func:`classification_metrics` of rows counted with weights, for many weight vectors at once.

    Row ``i`` counts ``weights[b, i]`` times in replicate ``b``: with bootstrap
    counts as weights, replicate ``b`` gives exactly the metrics of the resampled
    rows, without building them. Every metric is a weighted sum, and the AUC the
    weighted Mann-Whitney statistic (ties counted half), so ``B`` replicates cost a
    few ``(B, n)`` matrix operations instead of ``B`` calls.

    Parameters
    ----------
    y_true, score, minority, threshold
        As for :func:`classification_metrics`, one entry per row.
    weights
        ``(B, n)`` non-negative row weights (counts), one row per replicate.

    Returns
    -------
    dict
        The metrics of :func:`classification_metrics`, each an array of ``B`` values.
    """
    y_true = np.asarray(y_true, dtype=int)
    score = np.asarray(score, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    minority = np.broadcast_to(np.asarray(minority, dtype=int), y_true.shape)
    y_pred = score > threshold
    pos, neg = y_true == 1, y_true == 0
    in_minority = y_true == minority
    n_pos, n_neg = weights @ pos, weights @ neg
    tp, fp, fn = weights @ (y_pred & pos), weights @ (y_pred & neg), weights @ (~y_pred & pos)
    tn = weights @ (~y_pred & neg)
    f1_denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity, specificity = tp / n_pos, tn / n_neg
        return {
            "auc": _weighted_auc(score, pos, neg, weights),
            "balanced_accuracy": (sensitivity + specificity) / 2,
            "sensitivity": sensitivity,
            "specificity": specificity,
            "f1": np.where(f1_denominator > 0, 2 * tp / f1_denominator, 0.0),
            "brier": weights @ (score - y_true) ** 2 / weights.sum(axis=1),
            "minority_recall": (weights @ (in_minority & (y_pred == pos))) / (weights @ in_minority),
        }


def _weighted_auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney ROC area (ties counted half) per weight row; NaN without both classes."""
    n_pos, n_neg = weights @ pos, weights @ neg
    # per distinct score (ascending), the weight of positives and negatives there;
    # a positive beats the negatives at lower scores and ties those at its own.
    _, at_value = np.unique(score, return_inverse=True)
    order = np.argsort(at_value, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(at_value[order]) != 0]) if score.size else np.array([], int)
    pos_at = np.add.reduceat((weights * pos)[:, order], starts, axis=1) if score.size else weights[:, :0]
    neg_at = np.add.reduceat((weights * neg)[:, order], starts, axis=1) if score.size else weights[:, :0]
    neg_below = np.cumsum(neg_at, axis=1) - neg_at
    wins = np.sum(pos_at * (neg_below + 0.5 * neg_at), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def multiclass_metrics(y_true, proba, classes, minority=0) -> dict[str, float]:
    """The per-fold metrics of a K-class study (:func:`metric_names`) from class indices and probabilities.

    Parameters
    ----------
    y_true
        Index of each row's true class in ``classes``.
    proba
        ``(n, K)`` predicted class probabilities (columns in ``classes`` order); the
        predicted class is the most probable one (ties: the first).
    classes
        The K class names.
    minority
        Index of the minority class (the fold's smallest), scalar or per row.

    Returns
    -------
    dict
        ``auc`` (one-vs-rest macro AUC: the mean of ``auc_<class>``, each the ROC area
        of that class's probability against all other classes), ``balanced_accuracy``
        (mean per-class recall), ``f1`` (macro F1, a class never predicted nor present
        counting 0), ``brier`` (``mean_i sum_k (p_ik - [y_i = k])² / 2``, the
        multi-class Brier score halved to lie in [0, 1]; for two classes it equals the
        binary score), ``minority_recall``, ``recall_<class>`` and ``auc_<class>``.
        These equal scikit-learn's ``roc_auc_score(multi_class="ovr", average="macro")``,
        ``balanced_accuracy_score``, ``f1_score(average="macro")``, ``recall_score(average=None)``
        and ``brier_score_loss(scale_by_half=True)``. A metric that needs a class absent
        from ``y_true`` is NaN.
    """
    y_true = np.asarray(y_true, dtype=int)
    weighted = weighted_multiclass_metrics(y_true, proba, np.ones((1, y_true.size)), classes, minority)
    return {metric: float(values[0]) for metric, values in weighted.items()}


def weighted_multiclass_metrics(y_true, proba, weights, classes, minority=0) -> dict[str, np.ndarray]:
    """:func:`multiclass_metrics` of rows counted with ``(B, n)`` weights, for the case bootstrap.

    As :func:`weighted_classification_metrics`: row ``i`` counts ``weights[b, i]`` times
    in replicate ``b``, so bootstrap counts as weights give the resampled rows' metrics.
    """
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    classes = [str(c) for c in classes]
    if proba.ndim != 2 or proba.shape != (y_true.size, len(classes)):
        raise ValueError(f"proba must have shape (n rows, {len(classes)} classes) = ({y_true.size}, {len(classes)}), "
                         f"got {proba.shape}")
    minority = np.broadcast_to(np.asarray(minority, dtype=int), y_true.shape)
    y_pred = np.argmax(proba, axis=1)
    correct = y_pred == y_true
    recall, auc, f1 = {}, {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, name in enumerate(classes):
            pos = y_true == k
            tp, fp, fn = weights @ (pos & correct), weights @ (~pos & (y_pred == k)), weights @ (pos & ~correct)
            recall[name] = tp / (weights @ pos)
            auc[name] = _weighted_auc(proba[:, k], pos, ~pos, weights)
            f1[name] = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        one_hot = y_true[:, None] == np.arange(len(classes))[None, :]
        in_minority = y_true == minority
        return {
            "auc": np.mean([auc[c] for c in classes], axis=0),
            "balanced_accuracy": np.mean([recall[c] for c in classes], axis=0),
            "f1": np.mean([f1[c] for c in classes], axis=0),
            "brier": weights @ (np.sum((proba - one_hot) ** 2, axis=1) / 2) / weights.sum(axis=1),
            "minority_recall": (weights @ (in_minority & correct)) / (weights @ in_minority),
            **{f"recall_{c}": recall[c] for c in classes},
            **{f"auc_{c}": auc[c] for c in classes},
        }


def robust_feature_set(invariance: pd.DataFrame, repeat: int, fold: int, features: list[str]) -> list[str]:
    """The features flagged ``robust`` for one fold in an invariance table, in ``features`` order.

    Raises
    ------
    RadaugError
        The table has no row of the fold, or no robust feature for it.
    """
    rows = invariance[(invariance["repeat"] == repeat) & (invariance["fold"] == fold)]
    if rows.empty:
        raise RadaugError(f"the invariance table has no rows for repeat {repeat}, fold {fold}")
    robust = set(rows.loc[rows["robust"].astype(str).str.lower().isin(["true", "1"]), "feature"])
    chosen = [f for f in features if f in robust]
    if not chosen:
        raise RadaugError(
            f"repeat {repeat}, fold {fold}: no feature is robust in the invariance table; set "
            "'evaluation.classifier.robust_features' to false or relax the invariance thresholds"
        )
    return chosen


def evaluate_arm(
    real: pd.DataFrame,
    folds: pd.DataFrame,
    arm: str,
    *,
    positive_class: str,
    classes=None,
    arm_data: pd.DataFrame | None = None,
    classifier: dict | None = None,
    invariance: pd.DataFrame | None = None,
    target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on each fold's training set of one arm and test on the fold's held-out real cases.

    For every ``(repeat, fold)`` of ``folds`` the training set is the real rows
    whose case has role ``train`` plus :func:`arm_added_rows`; the test set is the
    real rows whose case has role ``test``. Before fitting, each fold is checked and
    :class:`~radaug.errors.LeakageError` is raised when a test row is not real, a
    test case appears in the training set's ``case_id`` column (real rows or
    parents of added rows), an added row has a non-empty ``case_id`` that is not a
    training case of its fold, or an added ``sample_id`` is also a test ``sample_id``.

    Parameters
    ----------
    real
        Real feature table: one row per case, ``source == "real"``.
    folds
        Fold table with columns ``case_id``, ``repeat``, ``fold`` and ``role``
        (``"train"`` or ``"test"``).
    arm
        Arm name, e.g. ``"real"``, ``"smote"``, ``"cvae"``, ``"classical+cvae"``.
    positive_class
        Class name counted as positive for AUC, sensitivity and F1 (two classes;
        not used with more).
    classes
        The study's classes in order (config ``data.classes``); default: the real
        labels, sorted. With more than two the metrics are those of
        :func:`multiclass_metrics` (:func:`metric_names`) and the predictions have
        the columns of :func:`prediction_columns`.
    arm_data
        Rows of the arm's file-backed components for all folds; required exactly
        when the arm has such a component (see :func:`data_components`).
    classifier
        Keyword arguments of :func:`build_classifier`; ``seed`` defaults to
        this function's ``seed``. With ``robust_features: True`` each fold uses only
        the features flagged robust for it in ``invariance``.
    invariance
        Invariance table (``repeat, fold, feature, ..., robust``); required when
        ``classifier["robust_features"]`` is true.
    target_ratio, cap_per_case
        Rebalancing rule of the ``oversample`` and ``smote`` arms.
    seed
        Seed of the built-in arms' draws and of the classifier.

    Returns
    -------
    per_fold : pandas.DataFrame
        One row per fold with columns ``PER_FOLD_COLUMNS``: fold identity, training
        and test sizes and the :data:`METRICS` of :func:`classification_metrics`
        (K > 2 classes: :func:`per_fold_columns`).
    predictions : pandas.DataFrame
        One row per test case and fold with columns ``PREDICTION_COLUMNS``;
        ``y_true`` is 1 for the positive class, ``score`` its predicted
        probability and ``minority`` the ``y_true`` value of the fold's minority class
        (K > 2 classes: :func:`prediction_columns`).

    Raises
    ------
    LeakageError
        A leakage invariant is broken in some fold.
    RadaugError
        The data do not fit the contract: the arm data's feature columns,
        ``arm`` values or labels do not match, a fold case has no real features,
        or a fold's training or test set lacks a class.
    ValueError
        Invalid arguments (``positive_class`` not one of the two classes,
        ``arm_data`` given for an arm without file-backed components or missing
        for one with them, robust features without an invariance table).
    """
    features = feature_columns(real)
    labels = sorted(set(real["label"]))
    classes = labels if classes is None else [str(c) for c in classes]
    if sorted(classes) != labels:
        raise RadaugError(f"the real features have labels {labels} but the study's classes (data.classes) are "
                          f"{classes}; extract the features of this cohort again or fix data.classes")
    multiclass = len(classes) > 2
    if not multiclass and (len(classes) != 2 or positive_class not in classes):
        raise ValueError(f"need two classes including positive_class {positive_class!r}; real labels are {classes}")
    if data_components(arm):
        if arm_data is None:
            raise ValueError(f"arm {arm!r} needs arm_data (the rows of {data_components(arm)} for every fold)")
        _check_arm_data(arm_data, arm, features, classes)
    elif arm_data is not None:
        raise ValueError(f"arm {arm!r} builds its own training data; do not pass arm_data")
    unknown_cases = sorted(set(folds["case_id"]) - set(real["case_id"]))
    if unknown_cases:
        raise RadaugError(f"cases {unknown_cases[:5]} of the fold table have no row in the real features")
    bad_roles = sorted(set(folds["role"]) - {"train", "test"})
    if bad_roles:
        raise RadaugError(f"fold table roles must be 'train' or 'test', found {bad_roles}")
    options = {"seed": seed, **(classifier or {})}
    use_robust = bool(options.pop("robust_features", False))
    if use_robust and invariance is None:
        raise ValueError("classifier option robust_features needs the invariance table")

    per_fold_rows, predictions = [], []
    for (repeat, fold), split in folds.groupby(["repeat", "fold"], sort=True):
        repeat, fold = int(repeat), int(fold)
        where = f"arm {arm!r}, repeat {repeat}, fold {fold}"
        train_cases = set(split.loc[split["role"] == "train", "case_id"])
        fold_real = fold_rows(real, repeat, fold)  # all rows, or this fold's (standardised intensities)
        train_real = fold_real[fold_real["case_id"].isin(train_cases)]
        test = fold_real[fold_real["case_id"].isin(set(split.loc[split["role"] == "test", "case_id"]))]
        added = arm_added_rows(arm, train_real, arm_data, repeat=repeat, fold=fold, seed=seed,
                               target_ratio=target_ratio, cap_per_case=cap_per_case)
        train = pd.concat([train_real, added], ignore_index=True)
        _check_leakage(train, test, added, train_cases, where)
        for name, part in (("training", train), ("test", test)):
            if set(part["label"]) != set(classes):
                raise RadaugError(f"{where}: the {name} set has classes {sorted(set(part['label']))}, needs {classes}")
        used = robust_feature_set(invariance, repeat, fold, features) if use_robust else features
        if multiclass:
            fold_row, prediction = _fit_multiclass(options, train, train_real, test, used, classes)
            per_fold_rows.append({"arm": arm, "repeat": repeat, "fold": fold, "n_train_real": len(train_real),
                              "n_train_added": len(added), "n_test": len(test), **fold_row})
            predictions.append(pd.DataFrame({"arm": arm, "repeat": repeat, "fold": fold, **prediction}))
            continue
        pipeline = build_classifier(**options).fit(
            train[used].to_numpy(dtype=float), (train["label"] == positive_class).to_numpy(dtype=int)
        )
        y_true = (test["label"] == positive_class).to_numpy(dtype=int)
        score = pipeline.predict_proba(test[used].to_numpy(dtype=float))[:, 1]
        counts = _class_counts(train_real)
        negative_class = next(c for c in classes if c != positive_class)
        minority = 1 if counts[positive_class] <= counts[negative_class] else 0
        per_fold_rows.append({
            "arm": arm, "repeat": repeat, "fold": fold,
            "n_train_real": len(train_real), "n_train_added": len(added), "n_test": len(test),
            **classification_metrics(y_true, score, minority),
        })
        predictions.append(pd.DataFrame({
            "arm": arm, "repeat": repeat, "fold": fold,
            "case_id": test["case_id"].to_numpy(), "label": test["label"].to_numpy(),
            "y_true": y_true, "score": score, "minority": minority,
        }))
    per_fold = pd.DataFrame(per_fold_rows, columns=list(per_fold_columns(classes)))
    return per_fold, pd.concat(predictions, ignore_index=True)[list(prediction_columns(classes))]


def _fit_multiclass(options: dict, train: pd.DataFrame, train_real: pd.DataFrame, test: pd.DataFrame,
                    used: list[str], classes: list[str]) -> tuple[dict, dict]:
    """One fold of a K-class study: its metrics and its prediction columns."""
    index = {name: k for k, name in enumerate(classes)}
    pipeline = build_classifier(**options).fit(train[used].to_numpy(dtype=float),
                                                train["label"].map(index).to_numpy(dtype=int))
    proba = np.zeros((len(test), len(classes)))
    proba[:, pipeline.classes_] = pipeline.predict_proba(test[used].to_numpy(dtype=float))
    y_true = test["label"].map(index).to_numpy(dtype=int)
    counts = _class_counts(train_real)
    minority = min(range(len(classes)), key=lambda k: counts.get(classes[k], 0))  # ties: the first in order
    prediction = {
        "case_id": test["case_id"].to_numpy(), "label": test["label"].to_numpy(), "y_true": y_true,
        "score": proba[np.arange(len(test)), y_true], "minority": minority,
        "predicted": np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)],
        **{f"{PROBABILITY_PREFIX}{c}": proba[:, k] for k, c in enumerate(classes)},
    }
    return multiclass_metrics(y_true, proba, classes, minority), prediction


def _paired_differences(differences, what: str) -> np.ndarray:
    """``differences`` as a 1-D float array, or ValueError naming the problem."""
    array = np.asarray(differences, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} needs a 1-D sequence of per-fold differences, got an array of shape "
                         f"{array.shape}; pass one difference per (repeat, fold)")
    if np.isnan(array).any():
        raise ValueError(f"{what}: differences {np.flatnonzero(np.isnan(array)).tolist()} are NaN; drop the "
                         "folds whose metric is undefined (e.g. AUC of a single-class test fold) first")
    return array


ZERO_VARIANCE = "zero variance"
"""Reason of a NaN :func:`corrected_resampled_ttest`: the per-fold differences are all equal and not zero."""


def corrected_resampled_ttest(differences, n_train: float, n_test: float) -> tuple[float, float]:
    """Corrected resampled t-test for paired scores of two arms over cross-validation folds.

    Nadeau & Bengio (2003), doi:10.1023/A:1024068626366: fold scores share training
    data, so the naive variance of their differences is too small. With ``J``
    differences of mean ``m`` and sample variance ``s²`` (``ddof=1``)::

        t = m / sqrt((1/J + n_test/n_train) * s²),  df = J - 1

    and the p-value is two-sided from Student's t.

    Parameters
    ----------
    differences
        Per-fold score differences (arm − reference), one per ``(repeat, fold)``: a
        1-D sequence without NaN.
    n_train, n_test
        Training and test set sizes of a fold (means over folds if they vary);
        finite and positive.

    Returns
    -------
    t, p : float
        ``(nan, nan)`` when fewer than two differences. When all differences are
        equal the test is undefined (zero variance): ``(nan, 1.0)`` if they are all
        zero (no difference at all) and ``(nan, nan)`` otherwise (see
        :data:`ZERO_VARIANCE`; typical of few, small test folds, where a metric
        takes few values), never a p-value of 0.

    Raises
    ------
    ValueError
        ``differences`` is not 1-D or holds NaN; ``n_train`` or ``n_test`` is not
        finite and positive.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite positive number (a fold's mean set size), got {value}")
    differences = _paired_differences(differences, "corrected_resampled_ttest")
    n = differences.size
    if n < 2:
        return float("nan"), float("nan")
    mean = differences.mean()
    if np.all(differences == differences[0]):  # zero variance (tested exactly: var() rounds)
        return float("nan"), (1.0 if mean == 0 else float("nan"))
    from scipy import stats

    t = mean / np.sqrt((1 / n + n_test / n_train) * differences.var(ddof=1))
    return float(t), float(2 * stats.t.sf(abs(t), n - 1))


def standardised_effect(differences) -> float:
    """Cohen's d_z of paired differences: ``mean / sd`` (``ddof=1``).

    The paired-samples effect size (Lakens 2013, doi:10.3389/fpsyg.2013.00863). ``0``
    when all differences are zero; NaN when they are equal and non-zero (zero
    variance: undefined, not infinite) and for fewer than two.

    Raises
    ------
    ValueError
        ``differences`` is not 1-D or holds NaN.
    """
    differences = _paired_differences(differences, "standardised_effect")
    if differences.size < 2:
        return float("nan")
    if np.all(differences == differences[0]):
        return 0.0 if differences[0] == 0 else float("nan")
    return float(differences.mean() / differences.std(ddof=1))


def _corrected_interval(values: np.ndarray, n_train: float, n_test: float,
                        confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean with the Nadeau-Bengio corrected variance, clipped to [0, 1].

    ``mean ± t_{(1+confidence)/2, J-1} · sqrt((1/J + n_test/n_train) · var)``: the
    correction accounts for overlapping training sets across folds, the same way as
    :func:`corrected_resampled_ttest`. All summarised metrics lie in [0, 1].
    """
    if values.size < 2:
        return float("nan"), float("nan")
    mean = values.mean()
    scale = np.sqrt((1.0 / values.size + n_test / n_train) * values.var(ddof=1))
    if scale == 0:
        return float(mean), float(mean)
    from scipy import stats

    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=scale)
    return float(max(low, 0.0)), float(min(high, 1.0))


_BOOTSTRAP_CELLS = 2_000_000
"""Replicates x rows per block of :func:`paired_bootstrap_delta` (about 16 MB per float matrix)."""


def paired_bootstrap_delta(
    predictions: pd.DataFrame,
    arm: str,
    reference_arm: str = "real",
    *,
    metrics=METRICS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap CI of the difference of pooled out-of-fold metrics, arm − reference.

    Out-of-fold predictions of both arms are pooled over all folds and paired by
    ``(repeat, fold, case_id)``. Each bootstrap replicate resamples **cases** with
    replacement (all repeats of a case together, so the repeats' dependence is
    kept), computes every metric of :func:`classification_metrics` on the pooled
    predictions of both arms and takes the difference; the interval is the
    percentile interval (Efron & Tibshirani 1993). The draws come from
    ``numpy.random.default_rng(seed)`` and depend only on the cases, so every arm
    is compared on the same replicates.

    Returns
    -------
    pandas.DataFrame
        Index ``metric``; columns ``pooled_delta`` (on all cases), ``ci_low``, ``ci_high``.

    Raises
    ------
    ValueError
        The two arms' predictions do not cover the same test cases, or cases are
        tested an unequal number of times.
    """
    key = ["repeat", "fold", "case_id"]
    a = predictions[predictions["arm"] == arm].set_index(key).sort_index()
    b = predictions[predictions["arm"] == reference_arm].set_index(key).sort_index()
    if a.index.has_duplicates or not a.index.equals(b.index):
        raise ValueError(f"arms {arm!r} and {reference_arm!r} must have predictions for the same test cases")
    if not np.array_equal(a["y_true"].to_numpy(), b["y_true"].to_numpy()):
        raise ValueError(f"arms {arm!r} and {reference_arm!r} disagree on the true labels of some cases")
    case = a.index.get_level_values("case_id").astype(str).to_numpy()
    order = np.argsort(case, kind="stable")
    cases, per_case = np.unique(case[order], return_counts=True)
    if per_case.min() != per_case.max():
        raise ValueError("every case must be tested equally often (once per repeat) for the paired bootstrap")
    shape = (cases.size, int(per_case[0]))
    y = a["y_true"].to_numpy(int)[order].reshape(shape)
    s_arm = a["score"].to_numpy(float)[order].reshape(shape)
    s_ref = b["score"].to_numpy(float)[order].reshape(shape)
    minority = (a["minority"].to_numpy(int) if "minority" in a else np.ones(len(a), int))[order].reshape(shape)
    classes = probability_classes(predictions)
    if classes:  # K > 2 classes: metrics of the class probabilities
        columns = [f"{PROBABILITY_PREFIX}{c}" for c in classes]
        p_arm, p_ref = a[columns].to_numpy(float)[order], b[columns].to_numpy(float)[order]

        def scores(weights):
            return (weighted_multiclass_metrics(y.ravel(), p_arm, weights, classes, minority.ravel()),
                    weighted_multiclass_metrics(y.ravel(), p_ref, weights, classes, minority.ravel()))
    else:
        def scores(weights):
            return (weighted_classification_metrics(y.ravel(), s_arm.ravel(), weights, minority.ravel()),
                    weighted_classification_metrics(y.ravel(), s_ref.ravel(), weights, minority.ravel()))

    def delta(case_counts: np.ndarray) -> np.ndarray:
        """(replicates, metrics) differences arm - reference, cases counted ``case_counts`` times."""
        weights = np.repeat(case_counts, shape[1], axis=1)  # rows are case-major: (case, repeat)
        ma, mb = scores(weights)
        return np.stack([ma[m] - mb[m] for m in metrics], axis=1)

    point = delta(np.ones((1, cases.size)))[0]
    rng = np.random.default_rng(seed)
    draws = np.empty((n_bootstrap, len(metrics)))
    block = max(1, _BOOTSTRAP_CELLS // (cases.size * shape[1]))  # bounds the (replicates, rows) matrices
    for first in range(0, n_bootstrap, block):
        drawn = rng.integers(0, cases.size, (min(block, n_bootstrap - first), cases.size))
        replicate = np.repeat(np.arange(len(drawn)), cases.size)
        counts = np.bincount(replicate * cases.size + drawn.ravel(), minlength=drawn.size).reshape(drawn.shape)
        draws[first:first + len(drawn)] = delta(counts)
    tail = (1 - confidence) / 2 * 100
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0) if n_bootstrap else (point * np.nan,) * 2
    return pd.DataFrame({"pooled_delta": point, "ci_low": low, "ci_high": high}, index=pd.Index(metrics, name="metric"))


def probability_classes(predictions: pd.DataFrame) -> list[str]:
    """The classes of a K-class study's predictions (its ``proba_<class>`` columns); empty for two classes."""
    return [c[len(PROBABILITY_PREFIX):] for c in predictions.columns if str(c).startswith(PROBABILITY_PREFIX)]


def summarise(
    per_fold: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    reference_arm: str = "real",
    metrics=None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Across-fold summary of each arm and metric, compared with the reference arm.

    Parameters
    ----------
    per_fold
        Concatenated ``per_fold`` tables of :func:`evaluate_arm`; every arm must
        cover the same ``(repeat, fold)`` pairs as the reference arm.
    predictions
        Concatenated ``predictions`` of :func:`evaluate_arm` for the pooled
        bootstrap; ``None`` leaves the ``pooled_*`` columns NaN.
    reference_arm
        Arm the others are compared with.
    metrics
        Metric columns of ``per_fold`` to summarise; default: :func:`summary_metrics`
        (those of :data:`METRICS` present, then the per-class metrics of a K-class study).
    confidence
        Level of the confidence intervals.
    alpha
        Level of ``holm_significant``.
    n_bootstrap, seed
        Bootstrap replicates and seed of :func:`paired_bootstrap_delta`.

    Returns
    -------
    pandas.DataFrame
        One row per arm (reference first) and metric, columns ``SUMMARY_COLUMNS``:

        * ``mean``: mean over folds;
        * ``ci_low``, ``ci_high``: Student-t interval over the ``J`` fold values with
          the Nadeau & Bengio (2003) corrected variance ``(1/J + n_test/n_train) · s²``
          (folds share training cases, so the naive ``s²/J`` is too small), clipped to
          the metrics' range [0, 1] (``NaN`` for one fold, ``mean`` on both ends when
          all folds agree);
        * ``delta_vs_real``: mean of the paired per-fold differences arm − reference;
        * ``p_value``: :func:`corrected_resampled_ttest` of those differences with
          the arm's mean ``n_train_real`` and ``n_test``;
        * ``n_folds``: number of folds (``repeats × folds``);
        * ``holm_p_value``: ``p_value`` Holm-adjusted (Holm 1979) across the
          non-reference arms, per metric;
        * ``effect_size``: :func:`standardised_effect` (Cohen's d_z) of the differences;
        * ``pooled_delta``, ``pooled_delta_ci_low``, ``pooled_delta_ci_high``: the
          difference of the metric on pooled out-of-fold predictions and its
          paired case bootstrap interval (:func:`paired_bootstrap_delta`);
        * ``holm_significant``: ``holm_p_value < alpha``.

        The reference arm has ``delta_vs_real`` 0 and NaN tests. A test that is
        undefined (all per-fold differences equal and non-zero, fewer than two
        folds) has NaN ``p_value``, ``holm_p_value`` and ``effect_size`` and is
        never ``holm_significant``; :func:`inference_notes` says why.
    """
    if metrics is None:
        metrics = summary_metrics(per_fold)
    metrics = list(metrics)
    arms = list(dict.fromkeys(per_fold["arm"]))
    if reference_arm not in arms:
        raise ValueError(f"reference arm {reference_arm!r} is not in per_fold (arms: {arms})")
    arms.remove(reference_arm)
    by_arm = {arm: rows.set_index(["repeat", "fold"]) for arm, rows in per_fold.groupby("arm", sort=False)}
    reference = by_arm[reference_arm]
    rows = []
    for arm in [reference_arm, *arms]:
        scores = by_arm[arm]
        if scores.index.has_duplicates or set(scores.index) != set(reference.index):
            raise ValueError(
                f"arm {arm!r} must have each (repeat, fold) of reference arm {reference_arm!r} exactly once"
            )
        pooled = None
        if predictions is not None and arm != reference_arm:
            pooled = paired_bootstrap_delta(predictions, arm, reference_arm, metrics=metrics,
                                            n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        n_train, n_test = scores["n_train_real"].mean(), scores["n_test"].mean()
        for metric in metrics:
            values = scores[metric].to_numpy(dtype=float)
            low, high = _corrected_interval(values, n_train, n_test, confidence)
            if arm == reference_arm:
                delta, p_value, effect = 0.0, float("nan"), float("nan")
            else:
                differences = values - reference[metric].reindex(scores.index).to_numpy(dtype=float)
                delta = float(differences.mean())
                if np.isnan(differences).any():  # a fold's metric is undefined: so is the test
                    p_value, effect = float("nan"), float("nan")
                else:
                    _, p_value = corrected_resampled_ttest(differences, n_train=n_train, n_test=n_test)
                    effect = standardised_effect(differences)
            boot = pooled.loc[metric].tolist() if pooled is not None else [float("nan")] * 3
            rows.append((arm, metric, float(values.mean()), low, high, delta, p_value, len(values),
                         float("nan"), effect, *boot))
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS[:-1]))
    for _, group in summary.groupby("metric", sort=False):
        tested = group["p_value"].dropna()  # the reference arm's p_value is NaN
        if len(tested):
            summary.loc[tested.index, "holm_p_value"] = holm_adjusted(tested.to_numpy())
    summary["holm_significant"] = summary["holm_p_value"] < alpha
    return summary


MIN_TEST_CASES_PER_CLASS = 3
"""Fewer test cases of a class in a fold make per-fold metrics too coarse for inference."""
MIN_FOLDS = 3
"""Fewer repeats × folds leave the corrected t-test with fewer than two degrees of freedom."""


def inference_notes(summary: pd.DataFrame, folds: pd.DataFrame | None = None, per_fold: pd.DataFrame | None = None,
                    *, reference_arm: str = "real") -> list[str]:
    """Plain-language warnings about what a study's statistics can support.

    Parameters
    ----------
    summary
        :func:`summarise`'s table (``arm, metric, delta_vs_real, p_value, n_folds``).
    folds
        Fold table (``repeat, fold, label, role``); checks the test cases per class
        and fold against :data:`MIN_TEST_CASES_PER_CLASS`.
    per_fold
        :func:`evaluate_arm`'s per-fold tables; names the arms that add no rows in
        any fold (they train on the real cases alone and evaluate like the reference).

    Returns
    -------
    list of str
        One sentence per finding, empty when there is nothing to warn about.
    """
    for name, table, needed in (("summary", summary, {"arm", "metric", "delta_vs_real", "p_value", "n_folds"}),
                                ("folds", folds, {"repeat", "fold", "label", "role"}),
                                ("per_fold", per_fold, {"arm", "n_train_added"})):
        if table is not None and not needed <= set(table.columns):
            raise ValueError(f"inference_notes: the {name} table lacks columns {sorted(needed - set(table.columns))}")
    notes = []
    n_folds = int(summary["n_folds"].max()) if len(summary) else 0
    if 0 < n_folds < MIN_FOLDS:
        notes.append(
            f"Only {n_folds} fold(s) (repeats × folds): the corrected resampled t-test has {max(n_folds - 1, 0)} "
            f"degree(s) of freedom; p-values and intervals are not meaningful. Use at least {MIN_FOLDS} "
            "folds or more repeats (split.folds, split.repeats) for inference."
        )
    if folds is not None and len(folds):
        test = folds[folds["role"] == "test"]
        counts = test.groupby(["repeat", "fold", "label"]).size().unstack(fill_value=0)
        small = counts.min(axis=None) if len(counts) else 0
        if len(counts) and small < MIN_TEST_CASES_PER_CLASS:
            worst = counts.min().idxmin()
            notes.append(
                f"Folds are too small for inference: some test folds hold only {int(small)} case(s) of class "
                f"'{worst}' (fewer than {MIN_TEST_CASES_PER_CLASS}), so per-fold sensitivity, specificity and "
                "recall take only a few values and per-fold differences are often identical. Read the deltas as "
                "descriptive; use fewer folds or more cases."
            )
    arms = summary[summary["arm"] != reference_arm]
    undefined = arms[arms["p_value"].isna() & (arms["delta_vs_real"] != 0) & (arms["n_folds"] >= 2)]
    for arm, rows in undefined.groupby("arm", sort=False):
        notes.append(
            f"Arm '{arm}': the per-fold differences of {', '.join(rows['metric'])} are identical in every fold "
            f"({ZERO_VARIANCE}), so the t-test is undefined: p-value, Holm p-value and effect size are left "
            "empty (NaN) and the difference is not called significant."
        )
    if per_fold is not None and len(per_fold):
        added = per_fold.groupby("arm", sort=False)["n_train_added"].sum()
        for arm in added.index[(added == 0).to_numpy()]:
            if arm != reference_arm:
                notes.append(
                    f"Arm '{arm}' adds no rows in any fold (the training folds are already balanced, or "
                    "sampling.cap_per_case is 0): it trains on the real cases alone and evaluates like "
                    f"'{reference_arm}'."
                )
    return notes


def holm_adjusted(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, by :func:`statsmodels.stats.multitest.multipletests`.

    NaN entries (tests that could not be computed) stay NaN and do not count as
    tests: ``[0.01, nan, 0.04]`` gives ``[0.02, nan, 0.04]``, as adjusting the two
    real p-values alone does.

    Its Holm branch calls ``gc.collect()``, which walks every live object (about
    0.08 s per call in a job that has imported pandas and scikit-learn). The
    objects alive before the call are frozen for its duration, so the collection
    only sees what the call itself allocates.

    Raises
    ------
    ValueError
        ``p_values`` is not 1-D, or holds values outside [0, 1] (or infinite).
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm_adjusted needs a 1-D sequence of p-values, got an array of shape {p.shape}")
    tested = ~np.isnan(p)
    outside = np.flatnonzero(tested & ((p < 0) | (p > 1)))
    if outside.size:
        raise ValueError(f"holm_adjusted: p-values must lie in [0, 1]; positions {outside.tolist()[:5]} hold "
                         f"{p[outside].tolist()[:5]}")
    adjusted = np.full(p.shape, np.nan)
    if not tested.any():
        return adjusted
    from statsmodels.stats.multitest import multipletests

    gc.freeze()
    try:
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    finally:
        gc.unfreeze()
    return adjusted


def gate_by_validation(per_fold: pd.DataFrame, predictions: pd.DataFrame, arm_verdicts: pd.DataFrame | None,
                       *, reference_arm: str = "real", arms=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply the validation stage's verdicts to the evaluation: keep, flag or leave out each arm.

    Parameters
    ----------
    per_fold, predictions
        Concatenated tables of :func:`evaluate_arm` for every arm (an arm that
        could not generate has none).
    arm_verdicts
        ``validation/arm_verdicts.csv`` (:func:`radaug.validate.summary.arm_verdicts`),
        or ``None`` when no arm was validated (every arm is kept, ``"not validated"``).
    arms
        Every arm of the study (config ``evaluation.arms``), in order; default:
        the arms of ``per_fold``. Each gets a row in ``verdicts``, evaluated or not.

    Returns
    -------
    per_fold, predictions
        The rows of the arms that are evaluated (``evaluate`` true, and the
        reference arm, which is never validated).
    verdicts
        One row per arm: ``arm``, ``validation_verdict`` (``"reference"`` for
        the reference arm), ``flagged`` (evaluated although validation failed),
        ``evaluated`` and ``note``: why an arm is not evaluated (its generator
        could not generate, naming where and why; or validation failed it and
        ``validation.evaluate_failing_arms`` is false), empty otherwise. Join it
        onto the summary with :func:`summary_with_verdicts`.

    Raises
    ------
    RadaugError
        An arm has no validation verdict, or is to be evaluated but has no per-fold rows.
    """
    arms = list(dict.fromkeys(arms if arms is not None else per_fold["arm"]))
    table = pd.DataFrame({"arm": arms})
    if arm_verdicts is not None and len(arm_verdicts):
        given = arm_verdicts[[c for c in ("arm", "verdict", "evaluate", "flagged", "failing_metrics", "note")
                              if c in arm_verdicts.columns]]
        table = table.merge(given, on="arm", how="left")
    else:
        table = table.assign(verdict="not validated", evaluate=True, flagged=False)
    for column in ("failing_metrics", "note"):
        table[column] = table[column].fillna("").astype(str) if column in table else ""
    is_reference = table["arm"] == reference_arm
    table.loc[is_reference, ["verdict", "evaluate", "flagged"]] = ["reference", True, False]
    missing = table.loc[table["verdict"].isna(), "arm"].tolist()
    if missing:
        raise RadaugError(f"arms {missing} have no validation verdict in arm_verdicts.csv; rerun validation")
    table["evaluated"] = table["evaluate"].astype(str).str.lower() == "true"
    unscored = sorted(set(table.loc[table["evaluated"], "arm"]) - set(per_fold["arm"]))
    if unscored:
        raise RadaugError(f"arms {unscored} are to be evaluated but have no per-fold results; rerun evaluation")
    left_out = ~table["evaluated"] & (table["note"] == "")
    table.loc[left_out, "note"] = [
        f"not evaluated: validation failed it ({metrics or 'see validation'}) and "
        "validation.evaluate_failing_arms is false" for metrics in table.loc[left_out, "failing_metrics"]]
    table["flagged"] = table["evaluated"] & (table["flagged"].astype(str).str.lower() == "true")
    keep = table.loc[table["evaluated"], "arm"]
    verdicts = table.rename(columns={"verdict": "validation_verdict"})
    return (per_fold[per_fold["arm"].isin(keep)], predictions[predictions["arm"].isin(keep)],
            verdicts[["arm", "validation_verdict", "flagged", "evaluated", "note"]].reset_index(drop=True))


def summary_with_verdicts(summary: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The evaluation summary with every arm's verdict: evaluated arms' rows, then rows of those left out.

    ``summary`` is :func:`summarise`'s table of the evaluated arms and
    ``verdicts`` :func:`gate_by_validation`'s. Each arm left out (``evaluated``
    false: it could not generate, or validation failed it) gets one row per
    metric of ``summary`` with empty statistics, so it is never silently
    missing: its ``validation_verdict`` (e.g. ``could not generate``) and
    ``note`` say why.
    """
    table = summary.merge(verdicts, on="arm", how="left")
    left_out = verdicts[~verdicts["evaluated"]]
    if left_out.empty:
        return table
    metrics = list(dict.fromkeys(summary["metric"])) or list(METRICS)
    rows = pd.DataFrame([{"arm": arm, "metric": metric} for arm in left_out["arm"] for metric in metrics])
    rows = rows.merge(left_out, on="arm", how="left")
    rows["holm_significant"] = False
    return pd.concat([table, rows], ignore_index=True)[list(table.columns)]
