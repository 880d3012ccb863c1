"""Validation of a whole study arm (every fold and class) and of the control arms.

The loops the workflow's ``validate`` jobs run, kept in the library so a
notebook user can validate a study's tables without Snakemake. Fold roles come
from ``splits/folds.csv``: the reference is the fold's real training cases of
the class, the memorization holdout the fold's real **test** cases of the class
(the generators never saw them; they are used here only to validate, never to
fit anything).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from radaug.errors import RadaugError
from radaug.features import fold_rows
from radaug.seeds import stream_seeds
from radaug.splits import fold_cases, fold_key, grouped_halves
from radaug.validate.controls import copy_control, noise_control, shuffle_control_patches
from radaug.validate.details import ValidationDetails, collect_details, set_details
from radaug.validate.summary import Patches, validate_arm
from radaug.validate.verdicts import STUDY_SUMMARY_COLUMNS

PatchSet = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(ids, images, masks)``: patches and the case or sample id of each."""


def _fold_patch_set(real_patches, repeat, fold) -> PatchSet | None:
    """The real patches a fold sees: one set for the study, or the fold's own from a mapping keyed
    ``(repeat, fold)`` when intensities are standardised per fold (:mod:`radaug.standardise`)."""
    if isinstance(real_patches, Mapping):
        return real_patches[(int(repeat), int(fold))]
    return real_patches


def _take(patches: PatchSet | None, ids) -> tuple[np.ndarray, np.ndarray] | None:
    if patches is None:
        return None
    position = {str(i): k for k, i in enumerate(patches[0])}
    missing = [i for i in ids if str(i) not in position]
    if missing:
        raise KeyError(f"no patch for ids {missing[:5]} ({len(missing)} in all)")
    take = np.array([position[str(i)] for i in ids], dtype=int)
    return patches[1][take], patches[2][take]


def _options(options: Mapping | None) -> dict:
    options = dict(options or {})
    return {
        "thresholds": options.get("thresholds") or {},
        "alpha": options.get("alpha", 0.05),
        "nearest_k": options.get("nearest_k", 5),
        "min_rows": options.get("min_rows"),  # None: summary.default_min_rows of the rule
        "detection": options.get("detection", True),
        "rule": options.get("rule", "null"),
        "level": options.get("level", 0.05),
        "null_splits": options.get("null_splits", 200),
        "null_detection_splits": options.get("null_detection_splits", 10),
        "power_repeats": options.get("power_repeats", 20),
        "group_column": "group",
    }


def _with_groups(table: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the leakage ``group`` of the case each row is (or derives from), by ``case_id``.

    Rows without a known parent case get no group (each is its own, see
    :func:`radaug.validate.summary.validate_arm`); folds without a ``group``
    column make each case its own group.
    """
    unique = folds.drop_duplicates("case_id").set_index("case_id")
    group_of = unique["group"] if "group" in unique.columns else unique.index.to_series()
    table = table.copy()
    table["group"] = table["case_id"].map(group_of) if "case_id" in table.columns else np.nan
    return table


def _fold_sets(real: pd.DataFrame, folds: pd.DataFrame, only: str | None = None):
    """Yield ``(repeat, fold, train, test)`` real feature rows of every fold, with their ``group``.

    ``only``: the key (:func:`radaug.splits.fold_key`) of the one fold to yield; None yields every fold.
    A per-fold real table (standardised intensities) gives each fold its own rows
    (:func:`radaug.features.fold_rows`).
    """
    real = _with_groups(real, folds)
    keys = [fold_key(r, f) for (r, f), _ in folds.groupby(["repeat", "fold"])]
    if only is not None and only not in keys:
        raise RadaugError(f"fold {only!r} is not in the folds table (its folds: {', '.join(keys) or 'none'}); "
                          "pass a fold key of splits/folds.csv, e.g. r0f0.")
    for (repeat, fold), _ in folds.groupby(["repeat", "fold"]):
        if only is not None and fold_key(repeat, fold) != only:
            continue
        rows = fold_rows(real, repeat, fold)
        train = rows[rows["case_id"].isin(fold_cases(folds, repeat, fold, "train")["case_id"])]
        test = rows[rows["case_id"].isin(fold_cases(folds, repeat, fold, "test")["case_id"])]
        yield repeat, fold, train, test


def _label_table(table: pd.DataFrame, fold: str, arm: str, label) -> pd.DataFrame:
    table.insert(0, "class", label)
    table.insert(0, "arm", arm)
    table.insert(0, "fold", fold)
    return table


def _patches(train_p, holdout_p, cand_p, intensity_range) -> Patches | None:
    if train_p is None or holdout_p is None or cand_p is None:
        return None
    return Patches(*train_p, *holdout_p, *cand_p, intensity_range=intensity_range)


def validate_study_arm(
    real: pd.DataFrame,
    folds: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    arm: str,
    feature_columns: list[str],
    options: Mapping | None = None,
    seed: int = 0,
    real_patches: PatchSet | None = None,
    candidate_patches: PatchSet | None = None,
    intensity_range: tuple[float, float] | None = None,
    return_details: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, ValidationDetails]:
    """Validate one arm's candidate rows in every fold and class.

    Parameters
    ----------
    real
        Real feature table (``case_id``, ``label`` and feature columns).
    folds
        ``splits/folds.csv``.
    candidates
        The arm's rows of every fold: ``repeat``, ``fold``, ``label``, feature
        columns; ``sample_id`` when ``candidate_patches`` is given; ``case_id``
        (the parent case) where a row derives from one.
    arm
        Arm name written to the ``arm`` column.
    feature_columns
        Features to compare.
    options
        The config's ``validation`` section (``thresholds``, ``alpha``,
        ``nearest_k``, ``min_rows``, ``detection``, ``rule``, ``level``,
        ``null_splits``, ``null_detection_splits``, ``power_repeats``).
    seed
        Study seed.
    real_patches, candidate_patches
        ``(ids, images, masks)`` of the real cases (by ``case_id``) and of the
        candidate samples (by ``sample_id``); both enable the image-space checks.
        With per-fold standardisation, ``real_patches`` maps ``(repeat, fold)``
        to the fold's real patches.
    intensity_range
        Physical intensity range of the modality (see
        :func:`radaug.validate.images.physical_intensity_range`).
    return_details
        Also return the per-feature, per-pair and per-row detail of every fold
        and class (:func:`radaug.validate.details.set_details`); the summary is
        the same either way.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STUDY_SUMMARY_COLUMNS`, one row per fold, class and metric.
    ValidationDetails
        Only with ``return_details``: see :func:`radaug.validate.details.collect_details`.
    """
    opts = _options(options)
    candidates = _with_groups(candidates, folds)
    rows, details = [], []
    for repeat, fold, train, test in _fold_sets(real, folds):
        fold_candidates = candidates[(candidates["repeat"] == repeat) & (candidates["fold"] == fold)]
        fold_patches = _fold_patch_set(real_patches, repeat, fold)
        for label in sorted(set(fold_candidates["label"])):
            cand = fold_candidates[fold_candidates["label"] == label]
            train_c, test_c = train[train["label"] == label], test[test["label"] == label]
            patches = None
            if fold_patches is not None and candidate_patches is not None:
                patches = _patches(_take(fold_patches, train_c["case_id"]), _take(fold_patches, test_c["case_id"]),
                                   _take(candidate_patches, cand["sample_id"]), intensity_range)
            table = validate_arm(train_c, test_c, cand, feature_columns=feature_columns, seed=seed,
                                 train_other=train[train["label"] != label], patches=patches, **opts)
            rows.append(_label_table(table, fold_key(repeat, fold), arm, label))
            if return_details:
                details.append((fold_key(repeat, fold), arm, label, set_details(
                    train_c, test_c, cand, feature_columns=feature_columns, alpha=opts["alpha"])))
    summary = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=STUDY_SUMMARY_COLUMNS)
    return (summary, collect_details(details, feature_columns)) if return_details else summary


def validate_controls(
    real: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    feature_columns: list[str],
    options: Mapping | None = None,
    seed: int = 0,
    real_patches: PatchSet | None = None,
    intensity_range: tuple[float, float] | None = None,
    shuffled: pd.DataFrame | None = None,
    return_details: bool = False,
    fold: str | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, ValidationDetails]:
    """Score the control arms of :mod:`radaug.validate.controls` in every fold and class.

    * ``control_positive``: one seeded half of the fold's real test cases of the
      class as the candidate, the other half as the memorization holdout (whole
      near-duplicate groups, :func:`radaug.splits.grouped_halves`).
    * ``control_negative_noise``: as many noise rows as training rows.
    * ``control_negative_copy``: copies of as many training rows (and patches).
    * ``control_negative_label``: as many copies of other-class training rows.
    * ``control_negative_shuffle`` (given ``shuffled``): the voxel-shuffled
      versions of the training cases, with their shuffled patches
      (:func:`~radaug.validate.controls.shuffle_control_patches`, recomputed
      from ``real_patches`` with ``seed``) for the image-space checks.

    Parameters
    ----------
    shuffled
        Features of every real case's voxel-shuffled patch (``sample_id``,
        ``case_id`` of the parent case, ``label``, feature columns); None
        leaves ``control_negative_shuffle`` out.
    fold
        Score only the fold with this key (``r<repeat>f<fold>``, :func:`radaug.splits.fold_key`);
        None scores every fold. Every random choice is seeded per fold and class (from ``seed``,
        the repeat, the fold and the class), never drawn from a stream shared across folds, so
        the folds' results stacked in fold order (the workflow's ``validate_controls_fold`` jobs,
        joined by :func:`radaug.io.concat_csv_text` and :func:`radaug.validate.details.fold_means`) are those of one call over every fold, row for row.

    Other parameters and the return value as :func:`validate_study_arm`, without candidates.

    Raises
    ------
    RadaugError
        If ``fold`` is not a fold of ``folds``.
    """
    opts = _options(options)
    per_fold = isinstance(real_patches, Mapping)
    study_shuffled = shuffle_control_patches(*real_patches, seed) if (
        shuffled is not None and real_patches is not None and not per_fold) else None
    rows, details = [], []
    for repeat, fold_number, train, test in _fold_sets(real, folds, only=fold):
        key = fold_key(repeat, fold_number)
        fold_patches = _fold_patch_set(real_patches, repeat, fold_number)
        shuffled_patches = study_shuffled
        if per_fold and shuffled is not None:
            # Shuffling permutes ROI voxels and standardisation maps each voxel alone, so the two
            # commute: the fold's shuffled patches are its standardised patches, shuffled.
            shuffled_patches = shuffle_control_patches(*fold_patches, seed)
        fold_shuffled = fold_rows(shuffled, repeat, fold_number) if shuffled is not None else None
        for label in sorted(set(train["label"])):
            train_c, test_c = train[train["label"] == label], test[test["label"] == label]
            other = train[train["label"] != label]
            halves_seed, noise_seed = map(int, stream_seeds("controls", seed, 2, repeat=repeat, fold=fold_number,
                                                            class_index=sorted(set(train["label"])).index(label)))
            as_candidate, as_holdout = grouped_halves(test_c["group"], halves_seed)
            positive, positive_holdout = test_c.iloc[as_candidate], test_c.iloc[as_holdout]
            copies = train_c.iloc[copy_control(train_c, len(train_c), seed)]
            noise = noise_control(train_c, feature_columns, len(train_c), noise_seed)
            controls = {
                "control_positive": (positive, positive_holdout, _patches(
                    _take(fold_patches, train_c["case_id"]), _take(fold_patches, positive_holdout["case_id"]),
                    _take(fold_patches, positive["case_id"]), intensity_range)),
                "control_negative_noise": (noise, test_c, None),
                "control_negative_label": (other.iloc[copy_control(other, len(train_c), seed)], test_c, None),
                "control_negative_copy": (copies, test_c, _patches(
                    _take(fold_patches, train_c["case_id"]), _take(fold_patches, test_c["case_id"]),
                    _take(fold_patches, copies["case_id"]), intensity_range)),
            }
            if shuffled is not None:
                shuffled_c = fold_shuffled[fold_shuffled["case_id"].isin(train_c["case_id"])]
                controls["control_negative_shuffle"] = (shuffled_c, test_c, _patches(
                    _take(fold_patches, train_c["case_id"]), _take(fold_patches, test_c["case_id"]),
                    _take(shuffled_patches, shuffled_c["sample_id"]), intensity_range))
            for arm, (cand, holdout, patches) in controls.items():
                table = validate_arm(train_c, holdout, cand, feature_columns=feature_columns, seed=seed,
                                     train_other=other, patches=patches, **opts)
                rows.append(_label_table(table, key, arm, label))
                if return_details:
                    details.append((key, arm, label, set_details(
                        train_c, holdout, cand, feature_columns=feature_columns, alpha=opts["alpha"])))
    summary = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=STUDY_SUMMARY_COLUMNS)
    return (summary, collect_details(details, feature_columns)) if return_details else summary
