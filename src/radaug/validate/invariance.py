"""Feature robustness: intraclass correlation of features across perturbations.

Each of ``n`` cases (targets) is measured ``k`` times, once per perturbation
(Zwanenburg et al. 2019, *Sci Rep*, doi:10.1038/s41598-018-36938-4). From the
two-way ANOVA mean squares of the ``n × k`` table of one feature (Shrout &
Fleiss 1979, *Psychol Bull*, doi:10.1037/0033-2909.86.2.420; McGraw & Wong 1996,
*Psychol Methods*, doi:10.1037/1082-989X.1.1.30):

* ICC(1,1) = (BMS − WMS) / (BMS + (k − 1) WMS): one-way random effects, single
  measurement. It fits perturbations: the j-th perturbation of one case has
  nothing in common with the j-th perturbation of another (random draws, not
  fixed raters), so radaug decides robustness on it by default.
* ICC(3,1) = (BMS − EMS) / (BMS + (k − 1) EMS): two-way mixed, consistency.

95 % confidence intervals are the F-based intervals of Shrout & Fleiss (their
Table 4 / McGraw & Wong's Table 7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ICC_COLUMNS = ("icc1", "icc1_low", "icc1_high", "icc3", "icc3_low", "icc3_high")
INVARIANCE_COLUMNS = ("repeat", "fold", "feature", *ICC_COLUMNS, "robust")  # (contract) invariance/<fold>.csv


def mean_squares(values: np.ndarray) -> dict[str, np.ndarray]:
    """Two-way ANOVA mean squares of ``(n targets, k raters[, F features])`` values.

    Returns BMS (between targets), WMS (within targets), JMS (between raters)
    and EMS (residual), each of shape ``(F,)`` (or scalars for 2D input).
    """
    y = np.asarray(values, dtype=float)
    n, k = y.shape[:2]
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 targets and 2 measurements each, got {n} x {k}")
    grand = y.mean(axis=(0, 1))
    ss_total = ((y - grand) ** 2).sum(axis=(0, 1))
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum(axis=0)
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum(axis=0)
    ss_within = ss_total - ss_rows
    ss_error = ss_within - ss_cols
    return {"BMS": ss_rows / (n - 1), "WMS": ss_within / (n * (k - 1)), "JMS": ss_cols / (k - 1),
            "EMS": ss_error / ((n - 1) * (k - 1))}


def icc(values: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """ICC(1,1) and ICC(3,1) with their ``1 − alpha`` F-based confidence intervals.

    Parameters
    ----------
    values
        ``(n targets, k measurements)`` or ``(n, k, F)`` for ``F`` features at once.
    alpha
        Two-sided level of the intervals.

    Returns
    -------
    dict
        :data:`ICC_COLUMNS` → value (array over features for 3D input). A
        feature that is constant across all targets and measurements has no
        defined ICC (NaN); one without any error variance has ICC 1 with
        interval [1, 1].

    Raises
    ------
    ValueError
        Input that is not 2-D or 3-D, holds NaN or infinite values (which would
        make every output NaN), has fewer than 2 targets or measurements, or
        ``alpha`` outside (0, 1).

    Examples
    --------
    Shrout & Fleiss' (1979) six targets rated by four judges:

    >>> y = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> r = icc(y)
    >>> round(float(r["icc1"]), 2), round(float(r["icc3"]), 2)
    (0.17, 0.71)
    """
    y = np.asarray(values, dtype=float)
    if y.ndim not in (2, 3):
        raise ValueError(f"icc needs a (targets, measurements) table or (targets, measurements, features) array, "
                         f"got {y.ndim}-D input of shape {y.shape}")
    if not np.isfinite(y).all():
        cells = np.argwhere(~np.isfinite(y))[:5].tolist()
        raise ValueError(f"icc: values at (target, measurement[, feature]) {cells} are NaN or infinite; drop those "
                         "targets first (feature_iccs does, per feature)")
    if not 0 < alpha < 1:
        raise ValueError(f"icc: alpha must be in (0, 1), got {alpha}")
    from scipy import stats  # here, not at module level: the perturbation jobs import this module for ids only

    n, k = y.shape[:2]
    ms = mean_squares(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {}
        for name, error, df_error in (("icc1", ms["WMS"], n * (k - 1)), ("icc3", ms["EMS"], (n - 1) * (k - 1))):
            f_observed = ms["BMS"] / error
            f_low = f_observed / stats.f.ppf(1 - alpha / 2, n - 1, df_error)
            f_high = f_observed * stats.f.ppf(1 - alpha / 2, df_error, n - 1)
            exact = error == 0  # no measurement error at all: ICC and both bounds are 1
            out[name] = (ms["BMS"] - error) / (ms["BMS"] + (k - 1) * error)
            out[f"{name}_low"] = np.where(exact, 1.0, (f_low - 1) / (f_low + k - 1))
            out[f"{name}_high"] = np.where(exact, 1.0, (f_high - 1) / (f_high + k - 1))
    constant = (ms["BMS"] == 0) & (ms["WMS"] == 0)
    return {key: np.where(constant, np.nan, value) for key, value in out.items()}


def feature_iccs(perturbed: pd.DataFrame, features: list[str], *, case_column: str = "case_id",
                 perturbation_column: str = "perturbation", alpha: float = 0.05) -> pd.DataFrame:
    """ICCs of every feature of a table of perturbed cases.

    Parameters
    ----------
    perturbed
        One row per (case, perturbation) with the feature columns.
    features
        Feature columns to assess.
    case_column, perturbation_column
        Which columns identify the target and the measurement.
    alpha
        Two-sided level of the intervals.

    Returns
    -------
    pandas.DataFrame
        ``feature, n_cases, n_perturbations`` and :data:`ICC_COLUMNS`. Per
        feature, cases with a missing (non-finite) value in any perturbation are
        left out.

    Raises
    ------
    ValueError
        The table lacks the case, perturbation or feature columns, has no rows,
        or holds a (case, perturbation) pair more than once.
    """
    needed = [case_column, perturbation_column, *features]
    missing = [c for c in dict.fromkeys(needed) if c not in perturbed.columns]
    if missing:
        raise ValueError(f"feature_iccs: the perturbed table lacks columns {missing[:5]}; it needs one row per "
                         f"({case_column}, {perturbation_column}) with the feature columns")
    if perturbed.empty:
        raise ValueError("feature_iccs: the perturbed table has no rows; ICCs need at least 2 cases with 2 "
                         "perturbations each (check perturbation.n and the fold's training cases)")
    duplicated = perturbed.duplicated([case_column, perturbation_column], keep=False)
    if duplicated.any():
        pairs = perturbed.loc[duplicated, [case_column, perturbation_column]].drop_duplicates().head(5)
        raise ValueError(f"feature_iccs: ({case_column}, {perturbation_column}) pairs "
                         f"{list(pairs.itertuples(index=False, name=None))} occur more than once; each case's "
                         "perturbation must be measured once (drop duplicated rows)")
    wide = perturbed.pivot(index=case_column, columns=perturbation_column, values=list(features))
    k = perturbed[perturbation_column].nunique()
    rows = []
    for feature in features:
        table = wide[feature].to_numpy(dtype=float)
        table = table[np.isfinite(table).all(axis=1)]
        row = {"feature": feature, "n_cases": len(table), "n_perturbations": k}
        if len(table) >= 2 and k >= 2:
            row.update({key: float(v) for key, v in icc(table, alpha).items()})
        else:
            row.update({key: np.nan for key in ICC_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows, columns=["feature", "n_cases", "n_perturbations", *ICC_COLUMNS])


def robust_features(iccs: pd.DataFrame, statistic: str = "icc1", threshold: float = 0.9) -> pd.Series:
    """Whether each feature is robust: the chosen ICC column is at least ``threshold`` (NaN is not robust)."""
    if statistic not in ICC_COLUMNS:
        raise ValueError(f"statistic must be one of {ICC_COLUMNS}, got {statistic!r}")
    return (iccs[statistic] >= threshold).fillna(False).astype(bool)


def invariance_table(perturbed: pd.DataFrame, features: list[str], train_cases, *, repeat: int, fold: int,
                     statistic: str = "icc1", threshold: float = 0.9) -> pd.DataFrame:
    """One fold's invariance table (:data:`INVARIANCE_COLUMNS`) from its training cases' perturbations only."""
    part = perturbed[perturbed["case_id"].isin(set(train_cases))]
    table = feature_iccs(part, features)
    table["robust"] = robust_features(table, statistic, threshold)
    table.insert(0, "fold", fold)
    table.insert(0, "repeat", repeat)
    return table[list(INVARIANCE_COLUMNS)]


def perturbation_sample_id(case_id: str, j: int) -> str:
    """Sample id of a case's ``j``-th perturbation in the perturbed feature tables."""
    return f"{case_id}~p{j:03d}"


def perturbation_index(sample_ids: pd.Series) -> pd.Series:
    """The perturbation number of :func:`perturbation_sample_id` ids."""
    parts = sample_ids.astype(str).str.rsplit("~p", n=1)
    if not parts.map(len).eq(2).all():
        raise ValueError(f"sample ids {sample_ids[parts.map(len) != 2].head(3).tolist()} are not perturbation ids")
    return parts.str[1].astype(int)
