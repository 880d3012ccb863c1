"""Downstream evaluation of one arm on held-out real data, and across-fold statistics.

An *arm* is a way of building the training set of a fold:

* ``"real"``: the fold's real training cases only;
* ``"oversample"``: the real training cases plus random duplicates of them, as
  many per class as :func:`radaug.sampling.rebalancing_quotas` allows;
* any other name (a generator, classical augmentation): the real training cases
  plus the rows of that arm's data generated for the fold.

Every arm is tested on the same held-out **real** cases of each fold, with the
whole preprocessing chain fitted inside the fold (see :func:`build_classifier`).
The leakage invariants are checked in code for every fold and break the run with
:class:`radaug.errors.LeakageError`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, SelectorMixin, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import validate_data
from statsmodels.stats.multitest import multipletests

from radaug.config import BASE_ARMS
from radaug.errors import LeakageError, RadaugError
from radaug.features import feature_columns
from radaug.sampling import rebalancing_quotas

MODELS = ("logistic_regression", "random_forest", "svm")
PER_FOLD_COLUMNS = (
    "arm", "repeat", "fold", "n_train_real", "n_train_added", "n_test",
    "auc", "balanced_accuracy", "sensitivity_minority", "specificity",
)
PREDICTION_COLUMNS = ("arm", "repeat", "fold", "case_id", "label", "y_true", "score")
SUMMARY_COLUMNS = (
    "arm", "metric", "mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds",
    "holm_p_value",
)


class _SelectUpToK(SelectorMixin, BaseEstimator):
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


def build_classifier(
    *,
    model: str = "logistic_regression",
    k_features: int | None = 20,
    class_weight: str | None = None,
    C: float = 1.0,
    seed: int = 0,
) -> Pipeline:
    """The downstream classifier: preprocessing, feature selection and model in one pipeline.

    Steps: median imputation → removal of constant features → standardisation →
    the ``k_features`` features with the largest ANOVA F statistic → model. All
    steps live in the pipeline, so fitting it on a fold's training set never lets
    the test set influence imputation, scaling or selection.

    Parameters
    ----------
    model
        ``"logistic_regression"`` (L2, ``max_iter=5000``), ``"random_forest"``
        (500 trees) or ``"svm"`` (RBF kernel, its decision values Platt-scaled to
        probabilities by ``CalibratedClassifierCV(..., ensemble=False)`` with 5-fold
        internal cross-validation, so each class needs at least 5 training rows).
    k_features
        Number of features to keep, clipped to the number available; ``None``
        keeps all.
    class_weight
        ``None`` or ``"balanced"``, passed to the model.
    C
        Inverse regularisation strength (logistic regression and SVM only).
    seed
        Random state of the random forest (the other models are deterministic).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted pipeline with steps ``impute``, ``variance``, ``scale``, ``select``
        (only when ``k_features`` is not ``None``) and ``model``.
    """
    valid_k = isinstance(k_features, int) and not isinstance(k_features, bool) and k_features >= 1
    if k_features is not None and not valid_k:
        raise ValueError(f"k_features must be a positive integer or None, got {k_features!r}")
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
        ("scale", StandardScaler()),
    ]
    if k_features is not None:
        steps.append(("select", _SelectUpToK(k=k_features)))
    steps.append(("model", estimator))
    return Pipeline(steps)


def _is_empty(values: pd.Series) -> pd.Series:
    """True where a case_id is missing (NaN/None) or blank."""
    return values.isna() | (values.astype(str).str.strip() == "")


def _check_arm_data(arm_data: pd.DataFrame, arm: str, features: list[str], classes: list[str]) -> None:
    """Check an arm's data against the table contract (not the per-fold leakage rules)."""
    if set(feature_columns(arm_data)) != set(features):
        missing = sorted(set(features) - set(feature_columns(arm_data)))
        extra = sorted(set(feature_columns(arm_data)) - set(features))
        raise RadaugError(
            f"arm {arm!r}: the arm data's feature columns differ from the real features "
            f"(missing: {missing[:5]}, extra: {extra[:5]}); extract both with the same settings"
        )
    other_arms = sorted(set(arm_data["arm"]) - {arm})
    if other_arms:
        raise RadaugError(f"arm {arm!r}: the arm data contains rows of other arms {other_arms}; pass one arm's rows")
    unknown = sorted(set(arm_data["label"]) - set(classes))
    if unknown:
        raise RadaugError(f"arm {arm!r}: the arm data has labels {unknown} that are not real classes {classes}")


def _check_leakage(
    train: pd.DataFrame,
    test: pd.DataFrame,
    fold_arm_data: pd.DataFrame | None,
    train_cases: set,
    where: str,
) -> None:
    """Raise LeakageError if the fold's training or arm data touches its test set."""
    not_real = test.loc[test["source"] != "real", "case_id"]
    if len(not_real):
        raise LeakageError(f"{where}: test rows must be real, but cases {sorted(not_real)[:5]} are not")
    leaked = sorted(set(train["case_id"]) & set(test["case_id"]))
    if leaked:
        raise LeakageError(
            f"{where}: test cases {leaked[:5]} also appear in the training set "
            "(as real cases or as parents of added rows)"
        )
    if fold_arm_data is None:
        return
    parents = fold_arm_data.loc[~_is_empty(fold_arm_data["case_id"]), ["sample_id", "case_id"]]
    foreign = parents[~parents["case_id"].isin(train_cases)]
    if len(foreign):
        raise LeakageError(
            f"{where}: arm rows {foreign['sample_id'].head(5).tolist()} derive from cases "
            f"{sorted(set(foreign['case_id']))[:5]}, which are not training cases of this fold"
        )
    shared = sorted(set(fold_arm_data["sample_id"]) & set(test["sample_id"]))
    if shared:
        raise LeakageError(f"{where}: arm rows share sample_ids {shared[:5]} with the test set")


def oversample(
    train_real: pd.DataFrame, *, seed: int, repeat: int, fold: int, target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
) -> pd.DataFrame:
    """The ``oversample`` arm's added rows: random duplicates of a fold's training rows.

    Per class as many as :func:`radaug.sampling.rebalancing_quotas` gives, drawn
    with replacement by ``numpy.random.default_rng([seed, repeat, fold])``, so
    evaluation and validation see the same rows.
    """
    rng = np.random.default_rng([seed, repeat, fold])
    labels = train_real["label"].to_numpy()
    counts = {name: int(np.sum(labels == name)) for name in sorted(set(labels))}
    quotas = rebalancing_quotas(counts, target_ratio, cap_per_case)
    picks = [rng.choice(np.flatnonzero(labels == name), size=quota, replace=True) for name, quota in quotas.items()]
    return train_real.iloc[np.concatenate(picks)]


def evaluate_arm(
    real: pd.DataFrame,
    folds: pd.DataFrame,
    arm: str,
    *,
    positive_class: str,
    arm_data: pd.DataFrame | None = None,
    classifier: dict | None = None,
    target_ratio: float = 1.0,
    cap_per_case: float = 4.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on each fold's training set of one arm and test on the fold's held-out real cases.

    For every ``(repeat, fold)`` of ``folds`` the training set is the real rows
    whose case has role ``train`` plus the arm's added rows:

    * ``"real"``: none;
    * ``"oversample"``: training rows drawn with replacement per class, as many as
      :func:`~radaug.sampling.rebalancing_quotas` gives for the fold's training
      class counts, with ``numpy.random.default_rng([seed, repeat, fold])``;
    * any other arm: the rows of ``arm_data`` with this ``repeat`` and ``fold``.

    The test set is the real rows whose case has role ``test``. Before fitting,
    each fold is checked and :class:`~radaug.errors.LeakageError` is raised when
    a test row is not real, a test case appears in the training set's
    ``case_id`` column (real rows or parents of added rows), an ``arm_data`` row
    has a non-empty ``case_id`` that is not a training case of its fold, or an
    ``arm_data`` ``sample_id`` is also a test ``sample_id``.

    Parameters
    ----------
    real
        Real feature table: one row per case, ``source == "real"``.
    folds
        Fold table with columns ``case_id``, ``repeat``, ``fold`` and ``role``
        (``"train"`` or ``"test"``).
    arm
        Arm name.
    positive_class
        Class name counted as positive for AUC and sensitivity.
    arm_data
        The arm's rows for all folds; required for arms other than ``"real"``
        and ``"oversample"``, which take none.
    classifier
        Keyword arguments of :func:`build_classifier`; ``seed`` defaults to
        this function's ``seed``.
    target_ratio, cap_per_case
        Rebalancing rule of the ``"oversample"`` arm, see
        :func:`~radaug.sampling.rebalancing_quotas`.
    seed
        Seed of the oversampling draws and of the classifier.

    Returns
    -------
    per_fold : pandas.DataFrame
        One row per fold with columns ``PER_FOLD_COLUMNS``: fold identity,
        training and test sizes, ROC AUC of the positive-class probability,
        balanced accuracy, sensitivity (recall of the positive class) and
        specificity of the classifier's predicted labels.
    predictions : pandas.DataFrame
        One row per test case and fold with columns ``PREDICTION_COLUMNS``;
        ``y_true`` is 1 for the positive class and ``score`` its predicted
        probability.

    Raises
    ------
    LeakageError
        A leakage invariant is broken in some fold.
    RadaugError
        The data do not fit the contract: the arm data's feature columns,
        ``arm`` values or labels do not match, a fold case has no real features,
        a fold has no arm data, or a fold's training or test set lacks a class.
    ValueError
        Invalid arguments (``positive_class`` not one of the two classes,
        ``arm_data`` given for a built-in arm or missing for another).
    """
    features = feature_columns(real)
    classes = sorted(set(real["label"]))
    if len(classes) != 2 or positive_class not in classes:
        raise ValueError(f"need two classes including positive_class {positive_class!r}; real labels are {classes}")
    if arm in BASE_ARMS and arm_data is not None:
        raise ValueError(f"arm {arm!r} builds its own training data; do not pass arm_data")
    if arm not in BASE_ARMS:
        if arm_data is None:
            raise ValueError(f"arm {arm!r} needs arm_data (its generated rows for every fold)")
        _check_arm_data(arm_data, arm, features, classes)
    unknown_cases = sorted(set(folds["case_id"]) - set(real["case_id"]))
    if unknown_cases:
        raise RadaugError(f"cases {unknown_cases[:5]} of the fold table have no row in the real features")
    bad_roles = sorted(set(folds["role"]) - {"train", "test"})
    if bad_roles:
        raise RadaugError(f"fold table roles must be 'train' or 'test', found {bad_roles}")
    options = {"seed": seed, **(classifier or {})}

    fold_rows, predictions = [], []
    for (repeat, fold), split in folds.groupby(["repeat", "fold"], sort=True):
        repeat, fold = int(repeat), int(fold)
        where = f"arm {arm!r}, repeat {repeat}, fold {fold}"
        train_cases = set(split.loc[split["role"] == "train", "case_id"])
        train_real = real[real["case_id"].isin(train_cases)]
        test = real[real["case_id"].isin(set(split.loc[split["role"] == "test", "case_id"]))]
        fold_arm_data = None
        if arm == "oversample":
            added = oversample(train_real, seed=seed, repeat=repeat, fold=fold, target_ratio=target_ratio,
                               cap_per_case=cap_per_case)
        elif arm == "real":
            added = train_real.iloc[:0]
        else:
            # A fold may legitimately add nothing (every rebalancing quota is 0 there).
            fold_arm_data = arm_data[(arm_data["repeat"] == repeat) & (arm_data["fold"] == fold)]
            added = fold_arm_data
        train = pd.concat([train_real, added], ignore_index=True)
        _check_leakage(train, test, fold_arm_data, train_cases, where)
        for name, part in (("training", train), ("test", test)):
            if set(part["label"]) != set(classes):
                raise RadaugError(f"{where}: the {name} set has classes {sorted(set(part['label']))}, needs {classes}")

        pipeline = build_classifier(**options).fit(
            train[features].to_numpy(dtype=float), (train["label"] == positive_class).to_numpy(dtype=int)
        )
        x_test = test[features].to_numpy(dtype=float)
        y_true = (test["label"] == positive_class).to_numpy(dtype=int)
        score = pipeline.predict_proba(x_test)[:, 1]
        y_pred = pipeline.predict(x_test)
        fold_rows.append({
            "arm": arm, "repeat": repeat, "fold": fold,
            "n_train_real": len(train_real), "n_train_added": len(added), "n_test": len(test),
            "auc": roc_auc_score(y_true, score),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "sensitivity_minority": recall_score(y_true, y_pred, pos_label=1),
            "specificity": recall_score(y_true, y_pred, pos_label=0),
        })
        predictions.append(pd.DataFrame({
            "arm": arm, "repeat": repeat, "fold": fold,
            "case_id": test["case_id"].to_numpy(), "label": test["label"].to_numpy(),
            "y_true": y_true, "score": score,
        }))
    per_fold = pd.DataFrame(fold_rows, columns=list(PER_FOLD_COLUMNS))
    return per_fold, pd.concat(predictions, ignore_index=True)[list(PREDICTION_COLUMNS)]


def corrected_resampled_ttest(differences, n_train: float, n_test: float) -> tuple[float, float]:
    """Corrected resampled t-test for paired scores of two arms over cross-validation folds.

    Nadeau & Bengio (2003): fold scores share training data, so the naive variance
    of their differences is too small. With ``J`` differences of mean ``m`` and
    sample variance ``s²`` (``ddof=1``)::

        t = m / sqrt((1/J + n_test/n_train) * s²),  df = J - 1

    and the p-value is two-sided from Student's t.

    Parameters
    ----------
    differences
        Per-fold score differences (arm − reference), one per ``(repeat, fold)``.
    n_train, n_test
        Training and test set sizes of a fold (means over folds if they vary).

    Returns
    -------
    t, p : float
        ``(nan, nan)`` when fewer than two differences. When all differences are
        equal, ``(nan, 1.0)`` if they are all zero and ``(±inf, 0.0)`` otherwise.
    """
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    differences = np.asarray(differences, dtype=float)
    n = differences.size
    if n < 2:
        return float("nan"), float("nan")
    mean = differences.mean()
    if np.all(differences == differences[0]):  # zero variance (tested exactly: var() rounds)
        return (float("nan"), 1.0) if mean == 0 else (float(np.copysign(np.inf, mean)), 0.0)
    t = mean / np.sqrt((1 / n + n_test / n_train) * differences.var(ddof=1))
    return float(t), float(2 * stats.t.sf(abs(t), n - 1))


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
    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=scale)
    return float(max(low, 0.0)), float(min(high, 1.0))


def summarise(
    per_fold: pd.DataFrame,
    reference_arm: str = "real",
    metrics=("auc", "balanced_accuracy", "sensitivity_minority"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Across-fold summary of each arm and metric, compared with the reference arm.

    Parameters
    ----------
    per_fold
        Concatenated ``per_fold`` tables of :func:`evaluate_arm`; every arm must
        cover the same ``(repeat, fold)`` pairs as the reference arm.
    reference_arm
        Arm the others are compared with.
    metrics
        Metric columns of ``per_fold`` to summarise.
    confidence
        Level of the confidence interval.

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
        * ``n_folds``: number of folds;
        * ``holm_p_value``: ``p_value`` Holm-adjusted across the non-reference
          arms, per metric.

        The reference arm has ``delta_vs_real`` 0 and ``p_value`` NaN.
    """
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
        for metric in metrics:
            values = scores[metric].to_numpy(dtype=float)
            low, high = _corrected_interval(values, scores["n_train_real"].mean(), scores["n_test"].mean(),
                                            confidence)
            if arm == reference_arm:
                delta, p_value = 0.0, float("nan")
            else:
                differences = values - reference[metric].reindex(scores.index).to_numpy(dtype=float)
                delta = float(differences.mean())
                _, p_value = corrected_resampled_ttest(
                    differences, n_train=scores["n_train_real"].mean(), n_test=scores["n_test"].mean()
                )
            rows.append((arm, metric, float(values.mean()), low, high, delta, p_value, len(values)))
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS[:-1]))
    summary["holm_p_value"] = np.nan
    for _, group in summary.groupby("metric", sort=False):
        tested = group["p_value"].dropna()  # the reference arm's p_value is NaN
        if len(tested):
            summary.loc[tested.index, "holm_p_value"] = multipletests(tested.to_numpy(), method="holm")[1]
    return summary
