"""Arms: the ways of building a fold's training set, and the one definition of the rows each adds.

An *arm* is a way of building the training set of a fold (see :func:`arm_added_rows`):

* ``"real"``: the fold's real training cases only (the reference, :data:`REFERENCE_ARM`);
* ``"oversample"``: plus random duplicates of them (:func:`oversample`);
* ``"smote"``: plus SMOTE interpolations between them (Chawla et al. 2002,
  doi:10.1613/jair.953), fitted inside the fold on standardised features (:func:`smote`);
* ``"classical"`` (:data:`CLASSICAL_ARM`) or a generator of ``generative.models``: plus the
  rows of that arm's feature files for the fold (its *data components*);
* ``"a+b"`` (:data:`ARM_SEPARATOR`): the union of the rows the arms ``a`` and ``b`` add.

This module is the arm vocabulary for the whole project: the configuration checks
``evaluation.arms`` with :func:`check_arms`, the workflow maps an arm's data and
generator components (:func:`data_components`, :func:`generator_components`) to the
feature files, samples and sampling records it needs, evaluation and validation both
take an arm's rows from :func:`arm_added_rows`, so what is validated is what is
trained on. To add a built-in arm: a builder next to :func:`oversample`, its name in
:data:`BUILTIN_ARMS` and in :data:`_BUILDERS`.

scikit-learn and imbalanced-learn are imported inside :func:`smote`, so a job that
imports this module for the vocabulary does not pay for them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radaug.errors import ConfigError, RadaugError
from radaug.features import feature_columns
from radaug.sampling import rebalancing_quotas
from radaug.seeds import stream_rng

REFERENCE_ARM = "real"
"""The arm every other arm is compared with: the fold's real training cases alone; never validated."""
BUILTIN_ARMS = (REFERENCE_ARM, "oversample", "smote")
"""Arms whose added rows are built in memory from the fold's real training cases."""
CLASSICAL_ARM = "classical"
"""The arm of classical augmentation (its rows come from feature files, like a generator's)."""
ARM_SEPARATOR = "+"
"""Joins arms into a combined arm: ``classical+wgan_gp`` adds the rows of both."""


def arm_components(arm: str) -> list[str]:
    """The single arms a (possibly combined) arm is made of: ``"a+b"`` → ``["a", "b"]``."""
    return arm.split(ARM_SEPARATOR)


def data_components(arm: str) -> list[str]:
    """The components of ``arm`` whose rows come from feature files (not built in memory)."""
    return [c for c in arm_components(arm) if c not in BUILTIN_ARMS]


def generator_components(arm: str) -> list[str]:
    """The components of ``arm`` that are generators (data components other than :data:`CLASSICAL_ARM`)."""
    return [c for c in data_components(arm) if c != CLASSICAL_ARM]


def check_arms(arms: list[str], models: list[str]) -> None:
    """Check config ``evaluation.arms``: every arm is built in, classical, one of ``models`` (config
    ``generative.models``) or a combination of two or more of them, ``real`` is listed, and no
    combination is listed twice.

    Raises
    ------
    ConfigError
        Naming the arm and the fix.
    """
    key = "config key 'evaluation.arms'"
    known = [*BUILTIN_ARMS, CLASSICAL_ARM, *models]
    for arm in arms:
        parts = arm_components(arm)
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise ConfigError(
                f"{key}: arm {arm!r} has unknown part(s) {unknown}. Arms are {', '.join(map(repr, known))} "
                f"(the generators listed in 'generative.models') or combinations like 'classical{ARM_SEPARATOR}"
                f"{models[0] if models else 'smote'}'; add the model to 'generative.models', or remove the arm."
            )
        if len(parts) > 1 and (REFERENCE_ARM in parts or len(set(parts)) != len(parts)):
            raise ConfigError(
                f"{key}: combined arm {arm!r} must join two or more different arms other than 'real' "
                "(every arm already contains the real training cases)."
            )
    if REFERENCE_ARM not in arms:
        raise ConfigError(f"{key} must include 'real': it is the reference every arm is compared to. "
                          "Add 'real' to the list.")
    canonical = {}
    for arm in arms:
        same = canonical.setdefault(frozenset(arm_components(arm)), arm)
        if same != arm:
            raise ConfigError(f"{key}: arms {same!r} and {arm!r} are the same combination; list it once.")


def class_counts(train_real: pd.DataFrame) -> dict[str, int]:
    """Real training cases per class of a fold (labels sorted): what quotas and the fold's minority class
    are computed from."""
    labels = train_real["label"]
    return {str(name): int(n) for name, n in labels.value_counts().sort_index().items()}


def oversample(
    train_real: pd.DataFrame, *, seed: int, repeat: int, fold: int, target_ratio: float, cap_per_case: float,
) -> pd.DataFrame:
    """The ``oversample`` arm's added rows: random duplicates of a fold's training rows.

    Per class as many as :func:`radaug.sampling.rebalancing_quotas` gives, drawn
    with replacement by the ``oversample`` stream of :mod:`radaug.seeds` (key ``[seed, repeat, fold]``).
    """
    rng = stream_rng("oversample", seed, repeat=repeat, fold=fold)
    labels = train_real["label"].to_numpy()
    counts = {name: int(np.sum(labels == name)) for name in sorted(set(labels))}
    quotas = rebalancing_quotas(counts, target_ratio=target_ratio, cap_per_case=cap_per_case)
    picks = [rng.choice(np.flatnonzero(labels == name), size=quota, replace=True) for name, quota in quotas.items()]
    return train_real.iloc[np.concatenate(picks)]


def smote(
    train_real: pd.DataFrame, *, seed: int, repeat: int, fold: int, target_ratio: float, cap_per_case: float,
    k_neighbors: int = 5,
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
    the ``smote`` stream of :mod:`radaug.seeds` (key ``[seed, repeat, fold, 1]``).

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
    counts = class_counts(train_real)
    quotas = rebalancing_quotas(counts, target_ratio=target_ratio, cap_per_case=cap_per_case)
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
    state = int(stream_rng("smote", seed, repeat=repeat, fold=fold).integers(2**31 - 1))
    sampler = SMOTE(sampling_strategy=strategy, k_neighbors=min(k_neighbors, smallest - 1), random_state=state)
    z_all, y_all = sampler.fit_resample(z, train_real["label"].to_numpy())
    new_z, new_y = z_all[len(z):], np.asarray(y_all[len(z):])
    rows = pd.DataFrame(scaler.inverse_transform(new_z), columns=features)
    meta = pd.DataFrame({
        "sample_id": [f"smote-r{repeat}f{fold}-{i:05d}" for i in range(len(rows))],
        "case_id": "", "source": "smote", "arm": "smote", "repeat": repeat, "fold": fold, "label": new_y,
    })
    return pd.concat([meta, rows], axis=1)[list(train_real.columns)]


_BUILDERS = {"oversample": oversample, "smote": smote}
"""The builder of each built-in arm that adds rows (every entry of :data:`BUILTIN_ARMS` but the reference)."""


def arm_added_rows(
    arm: str,
    train_real: pd.DataFrame,
    arm_data: pd.DataFrame | None = None,
    *,
    repeat: int,
    fold: int,
    seed: int,
    target_ratio: float,
    cap_per_case: float,
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
        if component == REFERENCE_ARM:
            continue
        if component in BUILTIN_ARMS:
            parts.append(_BUILDERS[component](train_real, seed=seed, repeat=repeat, fold=fold,
                                              target_ratio=target_ratio, cap_per_case=cap_per_case))
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
