"""Patient-grouped, stratified K-fold splits that keep near-duplicates together.

Cases are linked when they share a patient, a manifest ``group``, or a
near-identical perceptual hash (Hamming distance ≤ ``near_duplicate_bits``);
the connected components of these links are the units that
:class:`sklearn.model_selection.StratifiedGroupKFold` assigns to folds, so no
patient and no near-duplicate pair ever straddles train and test.

Folds are a table (one row per case, repeat and fold, ``role`` train/test),
never copies of data. The leakage checks used by every stage that consumes a
fold's training data live here too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, LeakageError

FOLD_COLUMNS = ("case_id", "patient_id", "group", "label", "repeat", "fold", "role")


def fold_key(repeat: int, fold: int) -> str:
    """File-name key of a fold, e.g. ``r0f3``."""
    return f"r{int(repeat)}f{int(fold)}"


def parse_fold_key(key: str) -> tuple[int, int]:
    r, f = key[1:].split("f")
    return int(r), int(f)


def grouped_halves(groups: Sequence, seed: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, seeded halves of a set of rows that never split a group.

    The validation's real-vs-real baselines compare two halves of a fold's
    training cases as "two independent real samples". Near-duplicates (and the
    cases of one patient) are not independent: a pair straddling the halves
    makes the halves look closer than two real samples are, and every baseline
    too optimistic. Groups therefore go whole to one half: in a seeded random
    order, each to the half that is smaller so far (ties to the first), so the
    sizes differ by at most the largest group.

    Parameters
    ----------
    groups
        Group label per row (e.g. the ``group`` column of ``splits/folds.csv``);
        distinct labels for independent rows.
    seed
        Seed of the group order (anything :func:`numpy.random.default_rng` takes).

    Returns
    -------
    tuple of numpy.ndarray
        Sorted row positions of the first and the second half.

    Examples
    --------
    >>> a, b = grouped_halves(["g0", "g0", "g1", "g2"], seed=0)
    >>> sorted(map(int, np.concatenate([a, b])))
    [0, 1, 2, 3]
    """
    codes, _ = pd.factorize(pd.Series(list(groups), dtype=object).astype(str), sort=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=n_groups)
    half_of = np.zeros(n_groups, dtype=int)
    filled = [0, 0]
    for group in np.random.default_rng(seed).permutation(n_groups):
        half = int(filled[1] < filled[0])
        half_of[group] = half
        filled[half] += sizes[group]
    in_first = half_of[codes] == 0
    return np.flatnonzero(in_first), np.flatnonzero(~in_first)


def near_duplicate_pairs(hashes: list[str], max_bits: int, chunk: int = 2048) -> np.ndarray:
    """Index pairs (i < j) whose 64-bit hex hashes differ in at most ``max_bits`` bits.

    Memory is bounded by ``chunk × N`` comparisons at a time.
    """
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs = []
    for start in range(0, len(values), chunk):
        block = values[start:start + chunk, None] ^ values[None, :]
        i, j = np.nonzero(np.bitwise_count(block) <= max_bits)
        i = i + start
        keep = i < j
        pairs.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=int)


def leakage_groups(cases: pd.DataFrame, near_duplicate_bits: int) -> np.ndarray:
    """Component label per case linking patients, manifest groups and near-duplicates.

    Parameters
    ----------
    cases
        Columns ``case_id, patient_id, group, phash`` (``group`` may be empty).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(cases)
    edges = [near_duplicate_pairs(cases["phash"].tolist(), near_duplicate_bits)]
    for column in ("patient_id", "group", "content_sha256"):
        if column not in cases:
            continue
        keys = cases[column].fillna("").astype(str)
        codes = pd.factorize(keys)[0]
        valid = keys.to_numpy() != ""
        first = {}
        for i, (code, ok) in enumerate(zip(codes, valid)):
            if ok:
                first.setdefault(code, i)
        linked = [(first[code], i) for i, (code, ok) in enumerate(zip(codes, valid)) if ok and first[code] != i]
        if linked:
            edges.append(np.array(linked))
    e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=int)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def make_folds(cases: pd.DataFrame, *, folds: int, repeats: int = 1, near_duplicate_bits: int = 8,
               seed: int = 0) -> pd.DataFrame:
    """Assign cases to stratified, grouped folds.

    Parameters
    ----------
    cases
        Columns ``case_id, patient_id, label, group, phash`` (and optionally ``content_sha256``).
    folds, repeats
        K and R of repeated K-fold.
    near_duplicate_bits
        Hashes within this Hamming distance are grouped.
    seed
        Repeat ``r`` shuffles with ``seed + r``.

    Returns
    -------
    pandas.DataFrame
        :data:`FOLD_COLUMNS`, one row per case, repeat and fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    cases = cases.sort_values("case_id", ignore_index=True)
    components = leakage_groups(cases, near_duplicate_bits)
    group_names = np.array([f"g{c:05d}" for c in components])
    y = cases["label"].to_numpy()
    per_class = pd.Series(components).groupby(y).nunique()
    too_few = per_class[per_class < folds]
    if len(too_few):
        detail = ", ".join(f"'{c}': {n}" for c, n in too_few.items())
        raise ConfigError(
            f"config key 'split.folds' = {folds} is impossible: after grouping patients and near-duplicates, "
            f"independent groups per class are {detail}. Use fewer folds or add patients."
        )
    rows = []
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(len(cases)), y, groups=components)):
            role = np.full(len(cases), "train", dtype=object)
            role[test] = "test"
            rows.append(pd.DataFrame({
                "case_id": cases["case_id"], "patient_id": cases["patient_id"], "group": group_names,
                "label": y, "repeat": repeat, "fold": fold, "role": role,
            }))
    table = pd.concat(rows, ignore_index=True)
    check_folds(table, cases)
    return table


def fold_cases(folds: pd.DataFrame, repeat: int, fold: int, role: str) -> pd.DataFrame:
    sel = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold) & (folds["role"] == role)]
    return sel.sort_values("case_id", ignore_index=True)


def check_folds(folds: pd.DataFrame, cases: pd.DataFrame) -> None:
    """Every fold's train and test sets share no case, patient, group, or content hash; each class is tested."""
    content = cases.set_index("case_id").get("content_sha256")
    for (repeat, fold), part in folds.groupby(["repeat", "fold"]):
        train = part[part["role"] == "train"]
        test = part[part["role"] == "test"]
        for column in ("case_id", "patient_id", "group"):
            shared = set(train[column]) & set(test[column])
            if shared:
                raise LeakageError(f"fold {fold_key(repeat, fold)}: {column} {sorted(shared)[:5]} in both train and test")
        if content is not None:
            shared = set(content[train["case_id"]]) & set(content[test["case_id"]])
            if shared:
                raise LeakageError(f"fold {fold_key(repeat, fold)}: identical image content in train and test")
        missing = set(part["label"]) - set(test["label"])
        if missing:
            raise LeakageError(f"fold {fold_key(repeat, fold)}: test set has no case of class(es) {sorted(missing)}")


def check_training_input(folds: pd.DataFrame, cases: pd.DataFrame, repeat: int, fold: int,
                         used_case_ids) -> None:
    """Raise :class:`LeakageError` if data derived from ``used_case_ids`` could leak into the fold's test set.

    Used before a generator or augmenter trains: every case must be a train case of
    the fold, and none may share a patient, leakage group or content hash with a test case.
    """
    part = folds[(folds["repeat"] == repeat) & (folds["fold"] == fold)]
    by_case = part.set_index("case_id")
    used = pd.Index(pd.unique(pd.Series(list(used_case_ids), dtype=str)))
    unknown = used.difference(by_case.index)
    if len(unknown):
        raise LeakageError(f"fold {fold_key(repeat, fold)}: training input has cases not in the split: {list(unknown[:5])}")
    used_rows = by_case.loc[used]
    test_rows = by_case[by_case["role"] == "test"]
    bad = used_rows.index[used_rows["role"] != "train"]
    if len(bad):
        raise LeakageError(f"fold {fold_key(repeat, fold)}: test case(s) {list(bad[:5])} in a training input")
    for column in ("patient_id", "group"):
        shared = set(used_rows[column]) & set(test_rows[column])
        if shared:
            raise LeakageError(f"fold {fold_key(repeat, fold)}: training input shares {column} {sorted(shared)[:5]} with the test set")
    if "content_sha256" in cases:
        content = cases.set_index("case_id")["content_sha256"]
        if set(content[used]) & set(content[test_rows.index]):
            raise LeakageError(f"fold {fold_key(repeat, fold)}: training input has the same image content as a test case")
