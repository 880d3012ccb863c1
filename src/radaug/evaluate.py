"""Downstream evaluation of one arm on held-out real data: the per-fold driver, its leakage
checks and the classification metrics; and the gating of arms by validation verdicts.

For every fold, :func:`evaluate_arm` trains the classifier (:mod:`radaug.classifier`) on the
fold's real training cases plus the rows the arm adds (:mod:`radaug.arms`, one definition
shared with validation) and scores it on the fold's held-out **real** cases, with the whole
preprocessing chain fitted inside the fold. The leakage invariants are checked in code for
every fold and break the run with :class:`radaug.errors.LeakageError`. The metrics of a fold
(:data:`CLASSIFICATION_METRICS`, or :func:`metric_names` for K > 2 classes) are computed here; the
across-fold statistics are :mod:`radaug.statistics`. :func:`gate_by_validation` and
:func:`summary_with_verdicts` keep, flag or leave out arms by their validation verdicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radaug.arms import REFERENCE_ARM, arm_added_rows, class_counts, data_components
from radaug.classifier import build_classifier
from radaug.errors import LeakageError, RadaugError
from radaug.features import feature_columns, fold_rows
from radaug.io import truthy

CLASSIFICATION_METRICS = ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1", "brier", "minority_recall")
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
PER_FOLD_COLUMNS = (*PER_FOLD_ID_COLUMNS, *CLASSIFICATION_METRICS)
PREDICTION_COLUMNS = ("arm", "repeat", "fold", "case_id", "label", "y_true", "score", "minority")
PROBABILITY_PREFIX = "proba_"
"""Prediction columns of a K-class study: ``proba_<class>``, the predicted probability of each class."""


def metric_names(classes) -> tuple[str, ...]:
    """The per-fold metrics of a study with ``classes``: :data:`CLASSIFICATION_METRICS` for two classes, else
    :data:`MULTICLASS_METRICS`, then ``recall_<class>`` and ``auc_<class>`` per class in order."""
    classes = [str(c) for c in classes]
    if len(classes) == 2:
        return CLASSIFICATION_METRICS
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
    """The metric columns of a per-fold table: those of :data:`CLASSIFICATION_METRICS` in that order, then the per-class ones."""
    return ([m for m in CLASSIFICATION_METRICS if m in per_fold.columns]
            + [c for c in per_fold.columns if str(c).startswith(PER_CLASS_PREFIXES)])


def probability_classes(predictions: pd.DataFrame) -> list[str]:
    """The classes of a K-class study's predictions (its ``proba_<class>`` columns); empty for two classes."""
    return [c[len(PROBABILITY_PREFIX):] for c in predictions.columns if str(c).startswith(PROBABILITY_PREFIX)]


# scikit-learn is imported by radaug.classifier and radaug.arms in the functions that use it: a job
# that imports this module for one helper (the evaluation summary, the report) does not pay
# seconds of imports for the classifier it never runs.


def _is_empty(values: pd.Series) -> pd.Series:
    """True where a case_id is missing (NaN/None) or blank."""
    return values.isna() | (values.astype(str).str.strip() == "")


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


def classification_metrics(y_true, score, minority=1, threshold: float = 0.5) -> dict[str, float]:
    """The per-fold metrics of :data:`CLASSIFICATION_METRICS` from labels and positive-class probabilities.

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
    robust = set(rows.loc[truthy(rows["robust"]), "feature"])
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
    target_ratio: float,
    cap_per_case: float,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on each fold's training set of one arm and test on the fold's held-out real cases.

    For every ``(repeat, fold)`` of ``folds`` the training set is the real rows
    whose case has role ``train`` plus :func:`radaug.arms.arm_added_rows`; the test set is the
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
        when the arm has such a component (see :func:`radaug.arms.data_components`).
    classifier
        Keyword arguments of :func:`radaug.classifier.build_classifier`; ``seed`` defaults to
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
        and test sizes and the :data:`CLASSIFICATION_METRICS` of :func:`classification_metrics`
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
        counts = class_counts(train_real)
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
    counts = class_counts(train_real)
    minority = min(range(len(classes)), key=lambda k: counts.get(classes[k], 0))  # ties: the first in order
    prediction = {
        "case_id": test["case_id"].to_numpy(), "label": test["label"].to_numpy(), "y_true": y_true,
        "score": proba[np.arange(len(test)), y_true], "minority": minority,
        "predicted": np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)],
        **{f"{PROBABILITY_PREFIX}{c}": proba[:, k] for k, c in enumerate(classes)},
    }
    return multiclass_metrics(y_true, proba, classes, minority), prediction


def gate_by_validation(per_fold: pd.DataFrame, predictions: pd.DataFrame, arm_verdicts: pd.DataFrame | None, *,
                       reference_arm: str = REFERENCE_ARM, arms=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply the validation stage's verdicts to the evaluation: keep, flag or leave out each arm.

    Parameters
    ----------
    per_fold, predictions
        Concatenated tables of :func:`evaluate_arm` for every arm (an arm that
        could not generate has none).
    arm_verdicts
        ``validation/arm_verdicts.csv`` (:func:`radaug.validate.verdicts.arm_verdicts`),
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
    table["evaluated"] = truthy(table["evaluate"])
    unscored = sorted(set(table.loc[table["evaluated"], "arm"]) - set(per_fold["arm"]))
    if unscored:
        raise RadaugError(f"arms {unscored} are to be evaluated but have no per-fold results; rerun evaluation")
    left_out = ~table["evaluated"] & (table["note"] == "")
    table.loc[left_out, "note"] = [
        f"not evaluated: validation failed it ({metrics or 'see validation'}) and "
        "validation.evaluate_failing_arms is false" for metrics in table.loc[left_out, "failing_metrics"]]
    table["flagged"] = table["evaluated"] & truthy(table["flagged"])
    keep = table.loc[table["evaluated"], "arm"]
    verdicts = table.rename(columns={"verdict": "validation_verdict"})
    return (per_fold[per_fold["arm"].isin(keep)], predictions[predictions["arm"].isin(keep)],
            verdicts[["arm", "validation_verdict", "flagged", "evaluated", "note"]].reset_index(drop=True))


def summary_with_verdicts(summary: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The evaluation summary with every arm's verdict: evaluated arms' rows, then rows of those left out.

    ``summary`` is :func:`radaug.statistics.summarise`'s table of the evaluated arms and
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
    metrics = list(dict.fromkeys(summary["metric"])) or list(CLASSIFICATION_METRICS)
    rows = pd.DataFrame([{"arm": arm, "metric": metric} for arm in left_out["arm"] for metric in metrics])
    rows = rows.merge(left_out, on="arm", how="left")
    rows["holm_significant"] = False
    return pd.concat([table, rows], ignore_index=True)[list(table.columns)]
