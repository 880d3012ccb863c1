"""Patient-grouped, stratified K-fold splits that keep near-duplicates together.

Cases are linked when they share a patient, a manifest ``group``, identical
content, or a near-identical image (:mod:`radaug.duplicates`): hashes of the
original images within ``near_duplicate_bits`` bits at the best flip/rotation,
or (crops, strong contrast changes) a full-frame hash within ``verify_bits`` of
a crop window of the other image whose aligned thumbnails correlate at
``min_similarity`` or more, or (3D volumes) foreground ranks that correlate at
``min_volume_similarity`` or more at one physical scale; the connected components of these links are the units that
:class:`sklearn.model_selection.StratifiedGroupKFold` assigns to folds, so no
patient and no near-duplicate pair ever straddles train and test.

Folds are a table (one row per case, repeat and fold, ``role`` train/test),
never copies of data. The leakage checks used by every stage that consumes a
fold's training data live here too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import duplicates
from .errors import ConfigError, LeakageError
from .seeds import split_random_state

log = logging.getLogger(__name__)

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


def near_duplicate_pairs(hashes: list[str], max_bits: int, chunk: int = 512) -> np.ndarray:
    """Index pairs (i < j) whose 64-bit hex hashes differ in at most ``max_bits`` bits.

    Plain Hamming distance (no flips); multi-index search, memory linear in N
    (:func:`radaug.duplicates.near_duplicate_pairs`).
    """
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    return duplicates.near_duplicate_pairs(values, max_bits, dihedral=False, chunk=chunk)[0]


PAIR_COLUMNS = ("a", "b", "distance", "similarity", "rule", "linked")


def _hash_values(cases: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """The near-duplicate hashes of a case table and whether they are dihedral (``dup_hash``) or patch ``phash``."""
    if "dup_hash" in cases:
        return duplicates.parse_hashes(cases["dup_hash"].tolist(), "dup_hash", cases["case_id"].tolist()), True
    values = np.empty(len(cases), dtype=np.uint64)
    for i, (case, text) in enumerate(zip(cases["case_id"], cases["phash"])):
        try:
            values[i] = np.uint64(int(str(text), 16))
        except ValueError:
            raise ValueError(f"case {case!r}: column 'phash' = {text!r} is not a 64-bit hex hash") from None
    return values, False


WINDOW_COLUMNS = ("case_a", "case_b", "distance", "similarity")


def thumbnail_kind(cases: pd.DataFrame, *, warn: bool = False) -> str | None:
    """``"image"`` when every case has a 2D ``dup_thumb``, ``"volume"`` when every case has a volume
    thumbnail (:func:`radaug.duplicates.encode_volume`), else None: the hash rule only (with
    ``warn``, a warning names the cause when some cases have a thumbnail)."""
    if "dup_thumb" not in cases or not len(cases):
        return None
    thumbs = cases["dup_thumb"].fillna("").astype(str)
    volume = thumbs.map(duplicates.is_volume_thumbnail)
    missing = thumbs.str.len().eq(0)
    if missing.any() or (volume.any() and not volume.all()):
        if not warn:
            return None
        example = cases["case_id"].to_numpy()[(missing if missing.any() else volume).to_numpy()][:3]
        log.warning("near-duplicates: of %d cases, %d have no dup_thumb and %d have a volume thumbnail (e.g. %s): "
                    "a case index of an older radaug, or 2D images and 3D volumes mixed; only the hash rule links "
                    "this table. Rebuild the case index with this radaug version, or split 2D and 3D cases into "
                    "two studies.", len(cases), int(missing.sum()), int(volume.sum()), ", ".join(map(str, example)))
        return None
    return "volume" if volume.all() else "image"


def _verification(cases: pd.DataFrame, verify_bits: int, min_similarity: float,
                  min_volume_similarity: float | None, *, warn: bool = False) -> tuple[str, float] | None:
    """The table's verified rule and its threshold: ``("window", min_similarity)`` for 2D images
    (``verify_bits > 0``), ``("volume", min_volume_similarity)`` for volumes (not None); None when off."""
    kind = thumbnail_kind(cases, warn=warn) if "dup_hash" in cases else None
    if kind == "image" and int(verify_bits) > 0:
        return "window", float(min_similarity)
    if kind == "volume" and min_volume_similarity is not None:
        return "volume", float(min_volume_similarity)
    return None


def window_links(cases: pd.DataFrame, verify_bits: int, min_similarity: float, *,
                 min_volume_similarity: float | None = None, threads: int = 1) -> pd.DataFrame:
    """Every verified candidate of the window rule (2D) or the volume rule (3D), by case id: the
    split's one expensive search.

    Run it once per split and hand the table to :func:`make_folds` and
    :func:`duplicate_audit` (``window=``), which otherwise each run it again.
    The verification runs on ``threads`` threads (same result on any number).
    Empty (no search) when the rule is off (``verify_bits`` 0 for images,
    ``min_volume_similarity`` None for volumes), for tables without a ``dup_thumb``
    for every case and for old ``phash`` indexes.

    Returns
    -------
    pandas.DataFrame
        :data:`WINDOW_COLUMNS`, ``case_a < case_b`` in row order of the table
        sorted by case id; ``similarity`` of every candidate (linked when at least
        the rule's threshold; :func:`radaug.duplicates.similar_pairs` refines the framing
        of 2D pairs just below it; :func:`radaug.duplicates.similar_volumes` scores volumes),
        ``distance`` the pair's hash distance (2D: to the matched crop window).
    """
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(WINDOW_COLUMNS, (object, object, np.int64, float))})
    cases = cases.sort_values("case_id", ignore_index=True)
    rule = _verification(cases, verify_bits, min_similarity, min_volume_similarity, warn=True)
    if rule is None:
        return empty
    values, _ = _hash_values(cases)
    ids = cases["case_id"].tolist()
    if rule[0] == "volume":
        levels, voxels = duplicates.decode_volumes(cases["dup_thumb"].tolist(), "dup_thumb", ids)
        wp, ws = duplicates.similar_volumes(levels, voxels, min_similarity=rule[1], threads=threads)
        wd = duplicates.dihedral_distance(values[wp[:, 0]], values[wp[:, 1]])
    else:
        thumbs = duplicates.decode_thumbnails(cases["dup_thumb"].tolist(), "dup_thumb", ids)
        wp, wd, ws = duplicates.similar_pairs(values, thumbs, max_bits=int(verify_bits),
                                              min_similarity=rule[1], threads=threads)
    ids = np.asarray(ids, dtype=object)
    return pd.DataFrame({"case_a": ids[wp[:, 0]], "case_b": ids[wp[:, 1]], "distance": wd.astype(np.int64),
                         "similarity": ws}, columns=list(WINDOW_COLUMNS))


def duplicate_pairs(cases: pd.DataFrame, max_bits: int, *, verify_bits: int = 0, min_similarity: float = 1.0,
                    min_volume_similarity: float | None = None, candidates: bool = False,
                    window: pd.DataFrame | None = None) -> pd.DataFrame:
    """Near-duplicate pairs of a case table (row positions ``a < b``), by two rules.

    * ``hash``: the original-image hashes ``dup_hash`` differ in at most
      ``max_bits`` bits at the best flip/rotation (the patch hash ``phash``,
      without flips, for older case indexes).
    * ``window`` (tables with a ``dup_thumb`` for every case: 2D images, and ``verify_bits > 0``): a flip or
      rotation of one image's full-frame hash lies within ``verify_bits`` bits
      of a crop window of the other's (:func:`radaug.duplicates.window_candidates`)
      and the aligned thumbnails have a band-pass correlation (:func:`radaug.duplicates.similarity`) of at least
      ``min_similarity`` (:func:`radaug.duplicates.verify_candidates`).
    * ``volume`` (tables with a volume thumbnail for every case: 3D volumes, and
      ``min_volume_similarity`` set): the two volumes' foreground ranks, compared at one
      physical scale, correlate at ``min_volume_similarity`` or more at their best
      translation and axis mirroring (:func:`radaug.duplicates.volume_similarity`).

    Parameters
    ----------
    candidates
        Also return the window candidates that failed verification (``linked`` false), for the audit.
    window
        The window (or volume) rule's candidates already found (:func:`window_links` of this
        table with the same rule settings), so the search runs once per split.

    Returns
    -------
    pandas.DataFrame
        :data:`PAIR_COLUMNS`: ``distance`` in bits (full-frame for ``hash``,
        to the window for ``window``), ``similarity`` (NaN for a pair found
        only by ``hash``), ``rule`` (``hash``, ``window``, ``volume``, or ``hash+`` either), ``linked``.
    """
    values, dihedral = _hash_values(cases)
    pairs, dist = duplicates.near_duplicate_pairs(values, max_bits, dihedral=dihedral)
    table = pd.DataFrame({"a": pairs[:, 0], "b": pairs[:, 1], "distance": dist, "similarity": np.nan,
                          "rule": "hash", "linked": True})
    rule = _verification(cases, verify_bits, min_similarity, min_volume_similarity) if dihedral else None
    if rule is not None:
        if window is None:
            window = window_links(cases, verify_bits, min_similarity, min_volume_similarity=min_volume_similarity)
        position = pd.Series(np.arange(len(cases)), index=cases["case_id"].to_numpy())
        unknown = sorted(set(window["case_a"]).union(window["case_b"]) - set(position.index))
        if unknown:
            raise ValueError(f"the window-rule links name cases not in the case table: {', '.join(unknown[:5])}; "
                             "compute them with window_links() of this table")
        pa, pb = position.loc[window["case_a"]].to_numpy(), position.loc[window["case_b"]].to_numpy()
        ws = window["similarity"].to_numpy(dtype=float)
        found = pd.DataFrame({"a": np.minimum(pa, pb), "b": np.maximum(pa, pb),
                              "distance": window["distance"].to_numpy(dtype=np.int64), "similarity": ws,
                              "rule": rule[0], "linked": ws >= rule[1]})
        table = pd.concat([table, found], ignore_index=True)
        both = table.groupby(["a", "b"], sort=True)
        table = pd.DataFrame({
            "distance": both["distance"].min(), "similarity": both["similarity"].max(),
            "rule": both["rule"].agg(lambda r: "+".join(sorted(set(r)))),
            "linked": both["linked"].any(),
        }).reset_index()
    if not candidates:
        table = table[table["linked"]]
    table = table.sort_values(["a", "b"], ignore_index=True)
    table[["a", "b", "distance"]] = table[["a", "b", "distance"]].astype(np.int64)
    return table[list(PAIR_COLUMNS)]


def _components(n: int, edges: list[np.ndarray]) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=int)
    e = e.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def _key_edges(cases: pd.DataFrame, columns) -> list[np.ndarray]:
    """Edges linking each row to the first row sharing a non-empty value of a column."""
    edges = []
    for column in columns:
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
    return edges


def duplicate_groups(cases: pd.DataFrame, near_duplicate_bits: int,
                     pairs: pd.DataFrame | None = None, **rules) -> np.ndarray:
    """Component label per case over image links only: near-duplicate pairs and identical content.

    ``rules`` are :func:`duplicate_pairs`' ``verify_bits``, ``min_similarity`` and ``min_volume_similarity``.
    """
    if pairs is None:
        pairs = duplicate_pairs(cases, near_duplicate_bits, **rules)
    edges = [pairs[["a", "b"]].to_numpy(dtype=int)] + _key_edges(cases, ("content_sha256",))
    return _components(len(cases), edges)


def check_label_mixing(cases: pd.DataFrame, dup_components: np.ndarray, allow: bool = False) -> pd.DataFrame:
    """Near-duplicate groups whose images carry different labels; raise unless ``allow``.

    The same image cannot be both classes: either the labels or the grouping are
    wrong, and the user has to look. Patient groups may mix labels (one patient,
    two lesions) and are not checked here.

    Returns
    -------
    pandas.DataFrame
        ``case_id, label, component`` of the cases in mixed groups (empty if none).

    Raises
    ------
    LeakageError
        Naming the cases of each mixed group, unless ``allow``.
    """
    labels = cases["label"].astype(str).to_numpy()
    comp = pd.Series(dup_components)
    n_labels = pd.Series(labels).groupby(comp.to_numpy()).nunique()
    bad = sorted(n_labels.index[n_labels > 1])
    rows = cases.loc[comp.isin(bad).to_numpy(), ["case_id", "label"]].assign(
        component=comp[comp.isin(bad)].to_numpy())
    if bad and not allow:
        detail = "; ".join(
            ", ".join(f"{c} ({lab})" for c, lab in zip(part["case_id"], part["label"]))
            for _, part in rows.groupby("component", sort=True)
        )
        raise LeakageError(
            f"{len(bad)} near-duplicate group(s) mix labels (the same image with two labels): {detail}. "
            "Check these cases' labels, or set config key 'split.allow_mixed_label_duplicates: true' "
            "to keep such groups (they still go to one side of every fold)."
        )
    return rows.reset_index(drop=True)


def leakage_groups(cases: pd.DataFrame, near_duplicate_bits: int,
                   pairs: pd.DataFrame | None = None, **rules) -> np.ndarray:
    """Component label per case linking patients, manifest groups, identical content and near-duplicates.

    Parameters
    ----------
    cases
        Columns ``case_id, patient_id, group`` and ``dup_hash`` (or ``phash``); ``group`` may be empty.
    pairs
        Near-duplicate pairs from :func:`duplicate_pairs`, if already computed.
    rules
        :func:`duplicate_pairs`' ``verify_bits``, ``min_similarity`` and ``min_volume_similarity``.
    """
    if pairs is None:
        pairs = duplicate_pairs(cases, near_duplicate_bits, **rules)
    edges = [pairs[["a", "b"]].to_numpy(dtype=int)]
    edges += _key_edges(cases, ("patient_id", "group", "content_sha256"))
    return _components(len(cases), edges)


def make_folds(cases: pd.DataFrame, *, folds: int, repeats: int = 1, near_duplicate_bits: int = 8,
               verify_bits: int = 0, min_similarity: float = 1.0, min_volume_similarity: float | None = None,
               seed: int = 0, allow_mixed_label_duplicates: bool = False, window: pd.DataFrame | None = None) -> pd.DataFrame:
    """Assign cases to stratified, grouped folds.

    Parameters
    ----------
    cases
        Columns ``case_id, patient_id, label, group, phash`` (and optionally ``content_sha256``).
    folds, repeats
        K and R of repeated K-fold.
    near_duplicate_bits
        Hashes within this Hamming distance are grouped.
    verify_bits, min_similarity
        The window rule of :func:`duplicate_pairs` (config keys ``split.verify_bits``,
        ``split.min_similarity``; ``verify_bits`` 0 turns it off).
    min_volume_similarity
        The volume rule of :func:`duplicate_pairs` (``split.min_volume_similarity``; None turns it off).
    allow_mixed_label_duplicates
        Keep near-duplicate groups whose images have different labels instead of
        raising :class:`LeakageError` (:func:`check_label_mixing`).
    seed
        Repeat ``r`` shuffles with ``seed + r``.
    window
        The window rule's candidates (:func:`window_links`), when the caller already searched them.

    Returns
    -------
    pandas.DataFrame
        :data:`FOLD_COLUMNS`, one row per case, repeat and fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    cases = cases.sort_values("case_id", ignore_index=True)
    pairs = duplicate_pairs(cases, near_duplicate_bits, verify_bits=verify_bits, min_similarity=min_similarity,
                            min_volume_similarity=min_volume_similarity, window=window)
    check_label_mixing(cases, duplicate_groups(cases, near_duplicate_bits, pairs), allow_mixed_label_duplicates)
    components = leakage_groups(cases, near_duplicate_bits, pairs)
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
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split_random_state(seed, repeat))
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


def split_study(index: pd.DataFrame, options: dict, seed: int, *, threads: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split stage: ``(folds, duplicate audit)`` of a case index under the config's ``split`` ``options``.

    The window rule's search (the expensive step, on ``threads`` threads) runs once, for the folds
    and the audit (:func:`window_links`, :func:`make_folds`, :func:`duplicate_audit`).
    """
    rules = {"verify_bits": options["verify_bits"], "min_similarity": options["min_similarity"],
             "min_volume_similarity": options.get("min_volume_similarity")}
    window = window_links(index, rules["verify_bits"], rules["min_similarity"],
                          min_volume_similarity=rules["min_volume_similarity"], threads=threads)
    folds = make_folds(index, folds=options["folds"], repeats=options["repeats"],
                       near_duplicate_bits=options["near_duplicate_bits"], **rules, seed=seed,
                       allow_mixed_label_duplicates=options.get("allow_mixed_label_duplicates", False),
                       window=window)
    audit = duplicate_audit(index, folds, options["near_duplicate_bits"], **rules, window=window)
    return folds, audit


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
            raise LeakageError(
                f"fold {fold_key(repeat, fold)}: test set has no case of class(es) {sorted(missing)}: the cohort has "
                "too few independent groups (patients, manifest groups, near-duplicates) of that class to give "
                "every test fold one. Use fewer folds (split.folds) or add patients of that class.")


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


AUDIT_COLUMNS = ("case_a", "case_b", "label_a", "label_b", "distance", "similarity", "rule", "linked",
                 "grouped", "group_a", "group_b", "straddles")


def duplicate_audit(cases: pd.DataFrame, folds: pd.DataFrame, near_duplicate_bits: int,
                    extra_bits: int = 6, *, verify_bits: int = 0, min_similarity: float = 1.0,
                    min_volume_similarity: float | None = None, similarity_margin: float = 0.1,
                    window: pd.DataFrame | None = None) -> pd.DataFrame:
    """The near-duplicate audit table (``splits/duplicates.csv``).

    Every pair within ``near_duplicate_bits + extra_bits`` bits, and every
    window-rule (or volume-rule) candidate (:func:`duplicate_pairs`) whose similarity is at least
    the rule's threshold (``min_similarity``, ``min_volume_similarity``) less ``similarity_margin``: ``linked`` when a near-duplicate rule
    joins the pair itself (within ``near_duplicate_bits``, or a verified window
    candidate), ``grouped`` when the two share a fold
    group (directly or through other links), so the rows with ``grouped`` false
    are the closest pairs that were *not* grouped; with their fold groups and
    whether the two ever sit on opposite sides of a fold (``straddles``; always
    false for a grouped pair, which :func:`check_folds` guarantees).
    Sorted by similarity (highest first, pairs without one last), then distance and case ids.
    ``window``: the window rule's candidates (:func:`window_links`) if already searched (the split's folds did).
    """
    cases = cases.sort_values("case_id", ignore_index=True)
    radius = min(int(near_duplicate_bits) + int(extra_bits), duplicates.N_BITS)
    pairs = duplicate_pairs(cases, radius, verify_bits=verify_bits, min_similarity=min_similarity,
                            min_volume_similarity=min_volume_similarity, candidates=True, window=window)
    by_hash = duplicate_pairs(cases, near_duplicate_bits)  # cheap: the hash rule alone
    linked_codes = set(zip(by_hash["a"], by_hash["b"]))
    rule = _verification(cases, verify_bits, min_similarity, min_volume_similarity)
    threshold = rule[1] if rule is not None else float(min_similarity)
    verified = pairs["similarity"] >= threshold
    linked_codes |= set(zip(pairs["a"][verified], pairs["b"][verified]))
    near = pairs["rule"].str.contains("hash") | (pairs["similarity"] >= threshold - similarity_margin)
    pairs = pairs[near.to_numpy()]
    ids = cases["case_id"].to_numpy()
    labels = cases["label"].astype(str).to_numpy()
    group_of = folds.drop_duplicates("case_id").set_index("case_id")["group"]
    role = folds.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    ca, cb = ids[a], ids[b]
    straddles = (role.loc[ca].to_numpy() != role.loc[cb].to_numpy()).any(axis=1) if len(a) else np.zeros(0, bool)
    table = pd.DataFrame({
        "case_a": ca, "case_b": cb, "label_a": labels[a], "label_b": labels[b],
        "distance": pairs["distance"].to_numpy(), "similarity": pairs["similarity"].to_numpy().round(4),
        "rule": pairs["rule"].to_numpy(), "linked": [(x, y) in linked_codes for x, y in zip(a, b)],
        "grouped": group_of.loc[ca].to_numpy() == group_of.loc[cb].to_numpy(),
        "group_a": group_of.loc[ca].to_numpy(), "group_b": group_of.loc[cb].to_numpy(), "straddles": straddles,
    }, columns=list(AUDIT_COLUMNS))
    table["_s"] = table["similarity"].fillna(-2.0)
    table = table.sort_values(["_s", "distance", "case_a", "case_b"], ascending=[False, True, True, True],
                              ignore_index=True)
    return table.drop(columns="_s")
