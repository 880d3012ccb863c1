"""The standalone HTML study report.

:func:`build_report` turns a study's tables, arrays and job records into one HTML
page. It is :func:`assemble_report` of two sections rendered on their own,
:func:`render_validation` and :func:`render_generators`: they hold most of the
figures, and the workflow renders them in jobs of their own so that a change
downstream of them (the classifier) only reassembles the page.

Every figure is embedded as a base64 PNG and the styles are inline, so the file
needs no network and no other file: it opens offline, can be archived or mailed
as is, and prints legibly in black and white (verdicts are written out; colours
only repeat them).

The page is deterministic: identical inputs give identical text (no timestamps,
no random ids, PNGs written without the software stamp). Figures are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg renderer, never through
pyplot, so no global figure state is created or left open.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from radaug.provenance import study_version
from radaug import duplicates as dup
from radaug.arms import CLASSICAL_ARM, REFERENCE_ARM
from radaug.errors import LeakageError
from radaug.io import is_true, truthy
from radaug.splits import fold_cases, fold_key, thumbnail_kind
from radaug.validate.thresholds import VERDICTS, overall_verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from radaug.validate.details import ValidationDetails

DPI = 100
"""Resolution of every embedded figure."""

SECTIONS = {
    "summary": "Summary",
    "arms": "Arms and their status",
    "cohort": "Cohort",
    "folds": "Folds",
    "duplicates": "Near-duplicates",
    "evaluation": "Downstream evaluation",
    "roc": "ROC curves",
    "validation": "Validation of synthetic data",
    "generators": "Generators and augmented samples",
    "failures": "Feature-extraction failures",
    "config": "Configuration",
    "provenance": "Provenance",
}
"""Section ids (HTML anchors) and titles, in page order."""

PLOT_METRICS = ("auc", "balanced_accuracy", "minority_recall")
"""Evaluation metrics drawn as dot-and-whisker and forest plots."""
LOWER_IS_BETTER = ("brier",)
"""Evaluation metrics where a negative delta vs real is an improvement."""

SAMPLES_PER_SIDE = 6
NEAREST_PER_CLASS = 3
"""Samples per class shown beside their nearest real training patch."""
_NOT_LOSSES = ("step", "images_per_s")
_SIZES = {"n_reference": "real train", "n_candidate": "synthetic", "n_holdout": "real test"}
_LINESTYLES = ("-", "--", "-.", (0, (1, 1)))
_INTRO = (
    "Every classifier is scored on held-out real cases only: the test folds contain real "
    "cases only. Synthetic data is added to training sets but is never scored. Validation "
    "baselines are real-vs-real: each metric is also computed between two disjoint halves of a "
    "fold's real training cases of the class, and a synthetic set is judged against that baseline. "
    "Loss curves, sample grids and sampling counts are diagnostics of the generators, not results."
)
_CSS = """
body{font-family:system-ui,"Segoe UI",Helvetica,Arial,sans-serif;max-width:72em;margin:1em auto;
padding:0 1em;color:#111;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em;display:block;max-width:100%;overflow-x:auto}
p.reading{font-size:1.1em;font-weight:600}
th,td{border:1px solid #888;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.verdict-pass{background:#d4edda}
td.verdict-insufficient{background:#e2e3e5}
td.verdict-warn{background:#fff3cd}
td.verdict-fail{background:#f8d7da}
pre{background:#f6f6f6;border:1px solid #ccc;padding:.5em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0}
img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#333}
.empty{font-style:italic;color:#555}
@media print{
body{max-width:none;margin:0}
nav{display:none}
figure,tr{break-inside:avoid}
h2,h3{break-after:avoid}
pre{white-space:pre-wrap}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


# --------------------------------------------------------------------------- #
# HTML building blocks
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Cell:
    """A table cell of ready-made HTML, with an optional CSS class."""

    html: str
    css: str = ""


def _fmt(value, spec: str = ".3g") -> str:
    """Text of a value: numbers with ``spec``, missing values as ``n/a``."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), spec)
    return str(value)


def _esc(value, spec: str = ".3g") -> str:
    return html.escape(_fmt(value, spec))


def _cell(value, tag: str) -> str:
    if isinstance(value, _Cell):
        content, css = value.html, value.css
    else:
        content = _esc(value)
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        css = "num" if is_number else ""
    attribute = f' class="{css}"' if css else ""
    return f"<{tag}{attribute}>{content}</{tag}>"


def _table(header: Sequence, rows: Iterable[Sequence]) -> str:
    """An HTML table; plain values are formatted and escaped, :class:`_Cell` values kept."""
    head = "".join(_cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _paragraph(text: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


_NO_DATA = _paragraph("no data", "empty")


def _new_figure(**kwargs) -> Figure:
    """A matplotlib Figure (Agg, no pyplot); matplotlib is imported here, so a report job that draws
    nothing (the generators section of a study without generators) does not pay for it."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _figure(fig: Figure, caption: str) -> str:
    """``fig`` as an embedded PNG with its caption (deterministic bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _ordered(values: Iterable, first: Iterable = ()) -> list:
    """Distinct ``values``: those listed in ``first`` in that order, then the rest sorted."""
    present = set(values)
    head = [v for v in dict.fromkeys(first) if v in present]
    return head + sorted(present.difference(head), key=str)


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #


def _config_section(config: dict) -> str:
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return f"<details><summary>The study's configuration (YAML)</summary><pre>{html.escape(text)}</pre></details>"


def _cohort_section(cohort: pd.DataFrame, classes: list) -> str:
    if cohort.empty:
        return _NO_DATA

    def row(label, part: pd.DataFrame) -> list:
        return [
            label, part["case_id"].nunique(), part["patient_id"].nunique(),
            ", ".join(sorted(part["modality"].astype(str).unique())),
            ", ".join(sorted(part["roi_source"].astype(str).unique())),
            float(part["roi_voxels"].median()), int(truthy(part["roi_truncated"]).sum()),
        ]

    header = ["class", "cases", "patients", "modality", "ROI method", "median ROI voxels", "truncated ROIs"]
    rows = [row(label, cohort[cohort["label"] == label]) for label in classes]
    rows.append(row(_Cell("<strong>all</strong>"), cohort))
    return _table(header, rows)


def _folds_section(folds: pd.DataFrame, classes: list) -> str:
    if folds.empty:
        return _NO_DATA

    def multi_case_groups(part: pd.DataFrame) -> int:
        return int((part.groupby("group")["case_id"].nunique() > 1).sum())

    header = [
        "fold", *(f"train {c}" for c in classes), *(f"test {c}" for c in classes),
        "multi-case groups in train", "multi-case groups in test", "groups in train and test",
    ]
    rows = []
    for (repeat, fold), part in folds.groupby(["repeat", "fold"]):
        train, test = part[part["role"] == "train"], part[part["role"] == "test"]
        train_counts, test_counts = train["label"].value_counts(), test["label"].value_counts()
        rows.append([
            fold_key(repeat, fold),
            *(int(train_counts.get(c, 0)) for c in classes),
            *(int(test_counts.get(c, 0)) for c in classes),
            multi_case_groups(train), multi_case_groups(test),
            len(set(train["group"]) & set(test["group"])),
        ])
    note = _paragraph(
        "Cases sharing a patient, a manifest group or a near-duplicate image form one group "
        f"(groups with more than one case: {multi_case_groups(folds)}). A group is never split "
        "between train and test, so the last column must read 0."
    )
    return note + _table(header, rows)


STRIP_GROUPS, STRIP_WIDTH, STRIP_PAIRS = 4, 8, 6
"""Thumbnail strips of the near-duplicate section: largest groups (images each) and closest ungrouped pairs."""


def duplicate_components(case_ids: Sequence, audit: pd.DataFrame) -> pd.Series:
    """Near-duplicate group of each case: connected components of the audit's ``linked`` pairs (singletons too).

    Group names are ``d<first case id>`` so the labelling does not depend on row order.
    """
    ids = list(case_ids)
    parent = {c: c for c in ids}

    def root(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    if len(audit):
        for a, b in audit.loc[truthy(audit["linked"]), ["case_a", "case_b"]].itertuples(index=False):
            if a in parent and b in parent:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return pd.Series({c: f"d{root(c)}" for c in ids}, name="dup_group")


def straddling_groups(components: pd.Series, folds: pd.DataFrame) -> list[str]:
    """Near-duplicate groups whose cases sit on both sides (train and test) of some fold."""
    if folds.empty:
        return []
    roles = folds.assign(dup_group=folds["case_id"].map(components))
    sides = roles.groupby(["repeat", "fold", "dup_group"])["role"].nunique()
    return sorted(set(sides[sides > 1].index.get_level_values("dup_group")))


def _thumb(cohort: pd.DataFrame, case_id) -> np.ndarray | None:
    if "dup_thumb" not in cohort:
        return None
    text = cohort.loc[cohort["case_id"] == case_id, "dup_thumb"]
    if text.empty or not str(text.iloc[0]):
        return None
    try:
        if dup.is_volume_thumbnail(text.iloc[0]):  # a volume: the middle axial slice of its thumbnail
            levels = dup.decode_volumes([text.iloc[0]], case_ids=[case_id])[0][0]
            return levels[len(levels) // 2] / 255.0
        return dup.decode_thumbnails([text.iloc[0]], case_ids=[case_id])[0]
    except ValueError:  # a thumbnail of an older radaug, which a split with the hash rule alone accepts: no picture
        return None


def _thumb_strip(rows: list[tuple[str, list[tuple[str, np.ndarray | None]]]], caption: str) -> str:
    """One figure row per entry ``(title, [(case label, thumbnail), ...])``."""
    width = max(len(items) for _, items in rows)
    fig = _new_figure(figsize=(1.3 * width, 1.55 * len(rows)))
    for r, (title, items) in enumerate(rows):
        for k, (label, image) in enumerate(items):
            ax = fig.add_subplot(len(rows), width, r * width + k + 1)
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=6)
            if k == 0:
                ax.set_title(title, fontsize=7, loc="left")
    fig.tight_layout()
    return _figure(fig, caption)


def _duplicates_section(cohort: pd.DataFrame, folds: pd.DataFrame, audit: pd.DataFrame | None,
                        classes: list, split: dict) -> str:
    """Near-duplicate groups per class, strips of the largest groups and closest ungrouped pairs, the straddle check.

    Raises
    ------
    LeakageError
        If a near-duplicate group sits on both sides of a fold (the split's own
        check makes this impossible unless files were changed by hand).
    """
    if audit is None or cohort.empty:
        return _NO_DATA
    components = duplicate_components(cohort["case_id"], audit)
    table = cohort[["case_id", "label"]].assign(dup_group=cohort["case_id"].map(components))
    sizes = table.groupby("dup_group")["case_id"].transform("size")
    kind = thumbnail_kind(cohort)
    rules = (f"Images are near-duplicates when their 64-bit hashes (of the original image's foreground box, "
             f"rank-equalised, best of the 8 flips/rotations) differ in at most {split.get('near_duplicate_bits')} "
             "bits" + (f", or when one image's hash lies within {split.get('verify_bits')} bits of a crop window of "
                       f"the other and the aligned thumbnails correlate at {split.get('min_similarity')} or more "
                       "(band-pass correlation of the rank thumbnails)" if kind == "image" and split.get("verify_bits")
                       else "")
             + (f", or (3D volumes; the hash is of the foreground's mean projection) when their foreground ranks, "
                f"compared at one physical voxel size, correlate at {split.get('min_volume_similarity')} or more at "
                "the best translation and axis mirroring (cropped, restacked or resampled copies)"
                if kind == "volume" and split.get("min_volume_similarity") is not None else "")
             + ". Linked images form a group; groups go whole to one side of every fold.")

    def row(label, part: pd.DataFrame, part_sizes: pd.Series) -> list:
        groups = part.groupby("dup_group")["case_id"].size()
        multi = groups[groups > 1]
        return [label, len(part), len(groups), len(multi), int(multi.sum()),
                int(groups.max()) if len(groups) else 0]

    header = ["class", "images", "near-duplicate groups", "multi-image groups", "images in multi-image groups",
              "largest group"]
    rows = [row(label, table[table["label"] == label], sizes) for label in classes]
    rows.append(row(_Cell("<strong>all</strong>"), table, sizes))
    parts = [_paragraph(rules), _table(header, rows)]

    mixed = table.groupby("dup_group")["label"].nunique()
    mixed = sorted(mixed[mixed > 1].index)
    if mixed:
        parts.append(_paragraph(
            f"{len(mixed)} group(s) mix labels (kept because split.allow_mixed_label_duplicates is true): "
            + "; ".join(", ".join(f"{c} ({lab})" for c, lab in table.loc[table["dup_group"] == g,
                                                                          ["case_id", "label"]].to_numpy())
                        for g in mixed)))

    straddle = straddling_groups(components, folds)
    if straddle:
        raise LeakageError(f"near-duplicate group(s) {straddle[:5]} sit in both train and test of a fold; "
                           "rerun the split (splits/folds.csv no longer matches splits/duplicates.csv)")
    n_folds = folds[["repeat", "fold"]].drop_duplicates().shape[0] if not folds.empty else 0
    n_linked = int(truthy(audit["linked"]).sum()) if len(audit) else 0
    parts.append(_paragraph(
        f"Checked: no near-duplicate group straddles train and test in any of the {n_folds} folds "
        f"({n_linked} linked pairs, {int((sizes > 1).sum())} images in multi-image groups)."))

    largest = (table[sizes > 1].groupby("dup_group")["case_id"].agg(list)
               .sort_values(key=lambda s: -s.str.len(), kind="stable").head(STRIP_GROUPS))
    if len(largest) and "dup_thumb" in cohort:
        strip = [(f"{len(members)} images", [(str(c), _thumb(cohort, c)) for c in members[:STRIP_WIDTH]])
                 for members in largest]
        parts.append(_thumb_strip(strip, f"The {len(largest)} largest near-duplicate groups (thumbnails of the "
                                         f"original images' foreground boxes, rank-equalised; at most {STRIP_WIDTH} "
                                         "per group; a volume shows the middle axial slice of its 3D thumbnail)."))
    apart = audit[~truthy(audit["grouped"])].head(STRIP_PAIRS) if len(audit) else audit
    if len(apart) and "dup_thumb" in cohort:
        strip = [(f"sim {_fmt(r.similarity, '.3f')}, {int(r.distance)} bits",
                  [(str(r.case_a), _thumb(cohort, r.case_a)), (str(r.case_b), _thumb(cohort, r.case_b))])
                 for r in apart.itertuples(index=False)]
        parts.append(_thumb_strip(strip, "The closest pairs that were not grouped (highest similarity first): "
                                         "look for a missed duplicate here."))
    if len(apart):
        parts.append(_table(["case a", "case b", "labels", "hash bits", "similarity", "found by"], [
            [r.case_a, r.case_b, f"{r.label_a} / {r.label_b}" if "label_a" in apart else "", int(r.distance),
             _fmt(r.similarity, ".3f"), r.rule] for r in apart.itertuples(index=False)]))
    elif not len(apart):
        parts.append(_paragraph("No candidate pair was left ungrouped.", "empty"))
    return "\n".join(parts)


def _evaluation_figure(evaluation: pd.DataFrame, arms: list) -> str:
    metrics = [m for m in PLOT_METRICS if m in set(evaluation["metric"])]
    fig = _new_figure(figsize=(3.3 * len(metrics), 1.2 + 0.45 * len(arms)), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    positions = np.arange(len(arms))
    for ax, metric in zip(axes, metrics):
        rows = evaluation[evaluation["metric"] == metric].set_index("arm").reindex(arms)
        mean = rows["mean"].to_numpy(float)
        error = np.clip([mean - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - mean], 0, None)
        ax.errorbar(mean, positions, xerr=error, fmt="o", color="black", capsize=3)
        if REFERENCE_ARM in arms:
            ax.axvline(mean[arms.index(REFERENCE_ARM)], color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(f"{metric.replace('_', ' ')} (mean over folds)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, arms)
    axes[0].set_ylabel("arm")
    axes[0].invert_yaxis()
    return _figure(fig, (
        "Mean over folds with its 95% confidence interval per arm (Student t with the Nadeau & Bengio "
        "corrected variance, which accounts for folds sharing training cases); dashed line: mean of the "
        "real-only arm."
    ))


VERDICT_COLOURS = {"pass": "#009E73", "warn": "#E69F00", "fail": "#D55E00"}
"""Okabe-Ito colours (colour-blind safe) of validation verdicts; other verdicts are black."""


def _forest_figure(evaluation: pd.DataFrame, arms: list, verdicts: dict | None = None) -> str:
    """Forest plot: per arm and metric, the delta vs real with its interval; 0 = no effect.

    With ``verdicts`` (arm → validation verdict) each arm is drawn in its verdict's
    colour (:data:`VERDICT_COLOURS`) and its tick label names the verdict.
    """
    metrics = [m for m in PLOT_METRICS if m in set(evaluation["metric"])]
    pooled = "pooled_delta" in evaluation.columns and evaluation["pooled_delta"].notna().any()
    column, low, high = (("pooled_delta", "pooled_delta_ci_low", "pooled_delta_ci_high") if pooled
                         else ("delta_vs_real", "ci_low", "ci_high"))
    fig = _new_figure(figsize=(3.3 * len(metrics), 1.2 + 0.45 * len(arms)), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    positions = np.arange(len(arms))
    for ax, metric in zip(axes, metrics):
        rows = evaluation[evaluation["metric"] == metric].set_index("arm").reindex(arms)
        delta = rows[column].to_numpy(float)
        significant = truthy(rows["holm_significant"]).to_numpy() \
            if "holm_significant" in rows else np.zeros(len(arms), bool)
        if pooled:
            error = np.clip([delta - rows[low].to_numpy(float), rows[high].to_numpy(float) - delta], 0, None)
            error = np.nan_to_num(error)
        else:
            error = None
        colours = [VERDICT_COLOURS.get((verdicts or {}).get(arm, ""), "black") for arm in arms]
        for filled in (True, False):
            for colour in dict.fromkeys(colours):
                pick = (significant == filled) & (np.array(colours) == colour)
                if not pick.any():
                    continue
                ax.errorbar(delta[pick], positions[pick], xerr=None if error is None else error[:, pick],
                            fmt="o", color=colour, markerfacecolor=colour if filled else "white", capsize=3)
        ax.errorbar([], [], fmt="o", color="black", markerfacecolor="black", label="Holm p < α")
        ax.errorbar([], [], fmt="o", color="black", markerfacecolor="white", label="not significant")
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(f"Δ {metric.replace('_', ' ')} vs real")
        ax.grid(axis="x", alpha=0.3)
    labels = [f"{arm} ({verdicts[arm]})" if verdicts and arm in verdicts else arm for arm in arms]
    axes[0].set_yticks(positions, labels)
    axes[0].set_ylabel("arm")
    axes[0].invert_yaxis()
    axes[-1].legend(loc="lower right", fontsize="small")
    tested = evaluation[evaluation["arm"].isin(arms) & evaluation["metric"].isin(metrics)]
    undefined = (", or the test is undefined (NaN p-value, see the notes above the table)"
                 if (tested["p_value"].isna() & (tested["delta_vs_real"] != 0)).any() else "")
    what = ("difference of the metric on pooled out-of-fold predictions with its 95% paired case-bootstrap "
            "interval" if pooled else "mean per-fold difference")
    coloured = (" Colour and label: the arm's validation verdict (green pass, orange warn, vermillion fail, "
                "black other)." if verdicts else "")
    return _figure(fig, (
        f"Forest plot of each arm's effect vs the real-only arm: {what}. Filled dots: the corrected "
        "resampled t-test (Nadeau & Bengio 2003) is significant after Holm correction across arms; "
        f"open dots: not significant{undefined}. Dashed line: no effect.{coloured}"
    ))


def _inference_notes(evaluation: pd.DataFrame, folds: pd.DataFrame, per_fold: pd.DataFrame | None) -> str:
    """The warnings of :func:`radaug.statistics.inference_notes` as a highlighted list (empty if none)."""
    from radaug.statistics import inference_notes

    notes = inference_notes(evaluation, folds if len(folds) else None, per_fold, reference_arm=REFERENCE_ARM)
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f'<div class="notes"><p><strong>Limits of these statistics</strong></p><ul>{items}</ul></div>\n'


def _evaluated(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of evaluated arms (a summary without an ``evaluated`` column: all)."""
    if "evaluated" not in evaluation.columns:
        return evaluation
    return evaluation[truthy(evaluation["evaluated"])]


def arm_status(evaluation: pd.DataFrame, arms: Sequence = ()) -> pd.DataFrame:
    """One row per arm: what became of it (``arm, status, validation, note``).

    Parameters
    ----------
    evaluation
        The evaluation summary (:func:`radaug.evaluate.summary_with_verdicts`:
        ``validation_verdict``, ``flagged``, ``evaluated`` and ``note``; each
        optional).
    arms
        The study's arms (config ``evaluation.arms``), listed first and in
        order; an arm without a row in ``evaluation`` is ``missing`` (which a
        finished workflow never leaves).

    Status: ``reference`` (the real-only arm), ``evaluated``, ``evaluated,
    flagged`` (although validation failed it), ``could not generate`` (a
    generator fell short of its quota: never evaluated as if it had data),
    ``not evaluated`` (validation failed it), or ``missing``.
    """
    from radaug.sampling import COULD_NOT_GENERATE

    rows = []
    by_arm = {arm: part.iloc[0] for arm, part in evaluation.groupby("arm", sort=False)} if len(evaluation) else {}
    for arm in dict.fromkeys([*arms, *by_arm]):
        if arm not in by_arm:
            rows.append([arm, "missing", "n/a", "no row in the evaluation summary"])
            continue
        r = by_arm[arm]
        verdict = str(r.get("validation_verdict", "n/a")) if pd.notna(r.get("validation_verdict")) else "n/a"
        note = str(r.get("note", "")) if pd.notna(r.get("note", "")) else ""
        evaluated = is_true(r.get("evaluated", True))
        if arm == REFERENCE_ARM:
            status = "reference"
        elif verdict == COULD_NOT_GENERATE:
            status = COULD_NOT_GENERATE
        elif not evaluated:
            status = "not evaluated"
        elif is_true(r.get("flagged", "")):
            status = "evaluated, flagged"
        else:
            status = "evaluated"
        rows.append([arm, status, verdict, note])
    return pd.DataFrame(rows, columns=["arm", "status", "validation", "note"])


def _summary_section(evaluation: pd.DataFrame, validation: pd.DataFrame | None, arm_verdicts: pd.DataFrame | None,
                     cohort: pd.DataFrame, folds: pd.DataFrame, failures: pd.DataFrame, arms: Sequence,
                     classes: Sequence = ()) -> str:
    """The study's answer first: the overall reading, one line per arm, controls, data quality, a forest plot."""
    from radaug import findings

    if evaluation.empty:
        return _NO_DATA
    table = findings.arm_findings(evaluation, validation, arms)
    smallest = findings.smallest_class(folds, classes)
    recall_words = findings.recall_words(smallest)
    reading = _paragraph(findings.overall_reading(table, recall_words), "reading")
    rows = table[["arm", "auc", "minority_recall", "verdict", "why"]].itertuples(index=False)
    lines = [findings.control_findings(arm_verdicts, validation),
             *findings.data_quality_lines(cohort, folds, failures)]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    rules = _paragraph(
        "Generated from the study's tables by fixed rules (radaug.findings): an arm improved or lowered a metric "
        "only when the corrected resampled t-test is significant after Holm correction across arms; Δ is the "
        "difference on pooled out-of-fold predictions with its paired bootstrap 95% interval. The validation "
        "column names each failing gate family by the defect it detects, with the median value against the "
        "median real-vs-real baseline over the fold × class cells where it failed.", "empty")
    forest = ""
    evaluated = _evaluated(evaluation)
    shown = [a for a in _ordered(evaluated["arm"], (REFERENCE_ARM,)) if a != REFERENCE_ARM]
    if shown and {"auc", "minority_recall"} & set(evaluated["metric"]):
        verdicts = dict(zip(table["arm"], table["verdict"]))
        forest = _forest_figure(evaluated, shown, verdicts)
    return (reading + _table(["arm", "Δ AUC vs real", f"Δ {recall_words} vs real", "validation", "why"], rows)
            + f"<ul>{items}</ul>" + forest + rules)


def _arms_section(evaluation: pd.DataFrame, arms: Sequence) -> str:
    table = arm_status(evaluation, arms)
    if table.empty:
        return _NO_DATA
    note = _paragraph(
        "Every arm of the study and what became of it. could not generate: a generator of the arm could not "
        "fill its quota with plausible samples in some fold (sampling.on_shortfall: record; the note says where "
        "and why, and synthetic/<model>/sampling/ holds the counts); such an arm is neither validated nor "
        "evaluated. not evaluated: validation failed the arm and validation.evaluate_failing_arms is false. "
        "evaluated, flagged: evaluated although validation failed it."
    )
    return note + _table(["arm", "status", "validation", "note"], table.itertuples(index=False))


def _evaluation_section(evaluation: pd.DataFrame, folds: pd.DataFrame | None = None,
                        per_fold: pd.DataFrame | None = None) -> str:
    left_out = sorted(set(evaluation["arm"]) - set(_evaluated(evaluation)["arm"])) if len(evaluation) else []
    evaluation = _evaluated(evaluation)
    if evaluation.empty:
        return _NO_DATA
    arms = _ordered(evaluation["arm"], (REFERENCE_ARM,))
    optional = [("holm_p_value", "Holm p-value"), ("effect_size", "effect size d_z"),
                ("pooled_delta", "pooled Δ (bootstrap CI)"), ("validation_verdict", "validation")]
    present = [(c, title) for c, title in optional if c in evaluation.columns]
    header = ["metric", "arm", "mean", "95% CI", "Δ vs real", "p-value", *[t for _, t in present], "folds"]
    rows = []
    for metric in _ordered(evaluation["metric"], PLOT_METRICS):
        by_arm = evaluation[evaluation["metric"] == metric].set_index("arm")
        for arm in arms:
            if arm not in by_arm.index:
                continue
            r = by_arm.loc[arm]
            extra = []
            for c, _ in present:
                if c == "pooled_delta":
                    extra.append("n/a" if pd.isna(r[c]) else
                                 f"{_fmt(r[c])} ({_fmt(r['pooled_delta_ci_low'])} – {_fmt(r['pooled_delta_ci_high'])})")
                elif c == "validation_verdict":
                    flagged = is_true(r.get("flagged", ""))
                    extra.append(f"{r[c]}, flagged" if flagged else r[c])
                else:
                    extra.append(r[c])
            rows.append([
                metric, arm, r["mean"], f"{_fmt(r['ci_low'])} – {_fmt(r['ci_high'])}", r["delta_vs_real"],
                r["p_value"], *extra, r["n_folds"],
            ])
    note = _paragraph(
        "Δ vs real: mean of the paired per-fold differences; p-value: corrected resampled t-test "
        "(Nadeau & Bengio 2003, doi:10.1023/A:1024068626366) over the repeats × folds; Holm: adjusted "
        "across arms per metric; effect size: Cohen's d_z of the per-fold differences; pooled Δ: on "
        "the pooled out-of-fold predictions, with a 95% bootstrap interval resampling cases; validation: the "
        "arm's overall validation verdict (flagged: evaluated although validation failed it). "
        f"Lower is better for {', '.join(LOWER_IS_BETTER)}; higher for the others."
    )
    figures = ""
    if set(PLOT_METRICS) & set(evaluation["metric"]):
        figures = _evaluation_figure(evaluation, arms)
        if len(arms) > 1:
            figures += _forest_figure(evaluation, [a for a in arms if a != REFERENCE_ARM])
    notes = _inference_notes(evaluation, folds if folds is not None else pd.DataFrame(), per_fold)
    if left_out:
        note += _paragraph(f"Not evaluated (see Arms and their status): {', '.join(left_out)}.")
    return notes + note + _table(header, rows) + figures


def confusion_matrices(predictions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per arm, the confusion matrix of a K-class study's predictions pooled over repeats and folds.

    Rows are the true classes, columns the predicted ones (the most probable class), both
    in the order of the ``proba_<class>`` columns; a case tested in R repeats counts R times.
    """
    from radaug.evaluate import probability_classes

    classes = probability_classes(predictions)
    return {arm: pd.crosstab(pd.Categorical(part["label"].astype(str), classes),
                             pd.Categorical(part["predicted"].astype(str), classes), dropna=False)
            for arm, part in predictions.groupby("arm", sort=False)}


def _confusion_section(predictions: pd.DataFrame) -> str:
    """K-class studies: one confusion matrix per arm (they have no single positive class for a ROC curve)."""
    parts = [_paragraph(
        "Confusion matrices of the pooled out-of-fold predictions of each arm over all repeats and folds: rows "
        "are the true classes, columns the predicted class (the most probable one); a case counts once per "
        "repeat. The recall of a class is its diagonal cell over its row total. (A study with more than two "
        "classes has no single positive class, so this section shows these instead of ROC curves.)")]
    matrices = confusion_matrices(predictions)
    for arm in _ordered(predictions["arm"], (REFERENCE_ARM,)):
        matrix = matrices[arm]
        parts.append(f"<h4>{html.escape(str(arm))}</h4>")
        parts.append(_table(["true \\ predicted", *matrix.columns.astype(str)],
                            [[label, *(int(v) for v in row)] for label, row in zip(matrix.index.astype(str),
                                                                                    matrix.to_numpy())]))
    return "".join(parts)


def _shows_confusion_matrices(predictions: pd.DataFrame) -> bool:
    """K > 2 classes (predictions carry a ``predicted`` class): the "roc" section shows confusion matrices."""
    return "predicted" in predictions.columns


def _roc_section(predictions: pd.DataFrame) -> str:
    if predictions.empty:
        return _NO_DATA
    if _shows_confusion_matrices(predictions):
        return _confusion_section(predictions)
    from sklearn.metrics import roc_auc_score, roc_curve  # only the study report draws ROC curves

    fig = _new_figure(figsize=(5.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for i, arm in enumerate(_ordered(predictions["arm"], (REFERENCE_ARM,))):
        part = predictions[predictions["arm"] == arm]
        y_true, score = part["y_true"].to_numpy(int), part["score"].to_numpy(float)
        if np.unique(y_true).size < 2:
            continue
        fpr, tpr, _ = roc_curve(y_true, score)
        ax.plot(fpr, tpr, color=f"C{i % 10}", linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                label=f"{arm} (AUC {roc_auc_score(y_true, score):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal",
           xlabel="false positive rate (1 − specificity)", ylabel="true positive rate (sensitivity)")
    ax.legend(loc="lower right", fontsize="small")
    positive = ", ".join(sorted(predictions.loc[predictions["y_true"] == 1, "label"].astype(str).unique()))
    return _figure(fig, (
        f"ROC curves of the pooled out-of-fold predictions of each arm over all repeats and folds "
        f"(positive class: {positive or 'n/a'}). The pooled AUC can differ from the mean per-fold AUC "
        "of the evaluation table."
    ))


def _verdict_cell(value, baseline, verdict: str) -> _Cell:
    css = f"verdict-{verdict}" if verdict in VERDICTS else ""
    return _Cell(f"{_esc(value)} ({_esc(baseline)}) <strong>{html.escape(verdict)}</strong>", css)


POWER_GATES = ("coverage", "frechet_distance", "correlation_distance", "memorization_ratio")
"""Gates whose minimum detectable defect the report quotes: one per defect family (mode, shift, correlation, copies)."""


def power_phrases(validation: pd.DataFrame, classes: list) -> list[str]:
    """Per class, what the quoted gates detect with 80% power, from ``min_detectable`` (most common over folds).

    E.g. ``"With 16 real training cases of class 1 (16 candidate rows): coverage detects a missing
    mode of >= 30% of cases; ..."``. Empty without a ``min_detectable`` column.
    """
    from radaug.validate.null import UNDETECTABLE

    if "min_detectable" not in validation.columns:
        return []
    phrases = []
    for label in _ordered(validation["class"], classes):
        rows = validation[(validation["class"] == label) & validation["metric"].isin(POWER_GATES)
                          & validation["min_detectable"].fillna("").astype(str).ne("")
                          & (validation["verdict"] != "insufficient")]
        if rows.empty:
            continue
        parts = []
        for metric in POWER_GATES:
            found = rows.loc[rows["metric"] == metric, "min_detectable"].astype(str)
            if len(found):
                text = found.mode().iloc[0]
                verb = "misses even" if text.startswith(UNDETECTABLE) else "detects"
                parts.append(f"{metric.replace('_', ' ')} {verb} {text.removeprefix(UNDETECTABLE)}")
        n_ref = int(rows["n_reference"].median()) if "n_reference" in rows else 0
        n_cand = int(rows["n_candidate"].median()) if "n_candidate" in rows else 0
        phrases.append(f"With {n_ref} real training cases of class {label} ({n_cand} candidate rows): "
                       + "; ".join(parts) + ".")
    return phrases


def render_validation(validation: pd.DataFrame, classes: list, details: ValidationDetails | None = None) -> str:
    """HTML of the report's validation section: verdict tables and figures.

    Parameters
    ----------
    validation
        Validation summary (see :func:`build_report`); may be empty.
    classes
        Class labels in display order (:func:`report_classes`).
    details
        Per-feature detail tables (see :func:`build_report`); None: no detail figures.
    """
    if validation.empty:
        return _NO_DATA
    from radaug.validate.registry import METRICS

    metrics = _ordered(validation["metric"], METRICS)
    direction = validation.groupby("metric")["direction"].first()
    better = {"minimize": "lower is better", "maximize": "higher is better"}
    counts = {c: name for c, name in _SIZES.items() if c in validation.columns}
    cells = validation.groupby(["arm", "class", "metric"]).agg(
        value=("value", "median"), baseline=("baseline", "median"), verdict=("verdict", overall_verdict))
    sizes = validation.groupby(["arm", "class"])[list(counts)].median()
    header = [
        "class",
        *(_Cell(f"{html.escape(m)}<br><small>{html.escape(better.get(direction[m], str(direction[m])))}</small>")
          for m in metrics),
        *(["n " + " / ".join(counts.values())] if counts else []),
    ]
    parts = [_paragraph(
        f"Each cell: the median value over the {validation['fold'].nunique()} folds, the median "
        "real-vs-real baseline in parentheses, and the worst verdict of any fold (fail, then warn, "
        "then pass; 'insufficient', too little data for a verdict, only when no fold has one)."
        + (" Verdicts from each gate's null distribution (real data at the candidate's size, simulated "
           "per fold and class): fail when the p-value adjusted across the cell's gates (min-P) is at most "
           "the level, so real data fails a whole cell at most that often; warn when it is at most "
           "twice the level. Gates without a p-value keep the factor rules on the baseline."
           if "p_adjusted" in validation.columns and validation["p_adjusted"].notna().any() else "")
    )]
    for arm in _ordered(validation["arm"]):
        rows = []
        for label in _ordered(validation.loc[validation["arm"] == arm, "class"], classes):
            row = [label]
            for metric in metrics:
                key = (arm, label, metric)
                row.append(_verdict_cell(*cells.loc[key]) if key in cells.index else "n/a")
            if counts:
                row.append(" / ".join(_fmt(n, ".0f") for n in sizes.loc[(arm, label)]))
            rows.append(row)
        parts.append(f"<h3>{html.escape(arm)}</h3>" + _table(header, rows))
        power = power_phrases(validation[validation["arm"] == arm], classes)
        if power:
            parts.append(_paragraph("Power at these sizes (80% of simulated defective cells fail; "
                                    "radaug.validate.null): " + " ".join(power)))
    parts.extend(_validation_figures(validation))
    if details is not None:
        parts.extend(_validation_detail_figures(details, classes))
    described = [m for m in metrics if m in METRICS]
    if described:
        items = "".join(
            f"<li><strong>{html.escape(m)}</strong>: {html.escape(METRICS[m].description)}</li>" for m in described)
        parts.append(f"<ul>{items}</ul>")
    return "\n".join(parts)


def _validation_figures(validation: pd.DataFrame) -> list[str]:
    """Verdict map and PRDC bars of the validation summary (radaug.validate.plots)."""
    from radaug.validate.plots import prdc_bars, verdict_heatmap

    figures = []
    heatmap = verdict_heatmap(validation)
    if heatmap is not None:
        figures.append(_figure(heatmap, "Worst verdict over folds for every arm, class and metric; control "
                                        "arms: control_positive must pass every gate, each negative control "
                                        "must fail the gates it is built for."))
    bars = prdc_bars(validation)
    if bars is not None:
        figures.append(_figure(bars, "Precision, recall, density and coverage (Naeem et al. 2020), median "
                                     "over folds; black ticks: the real-vs-real baseline. Low coverage with "
                                     "high precision is the signature of mode collapse."))
    return figures


def _validation_detail_figures(details: ValidationDetails, classes: list) -> list[str]:
    """KS heat map, correlation-difference maps and DCR histograms of the validation details."""
    from radaug.validate.plots import KS_TOP_FEATURES, correlation_maps, dcr_histograms, ks_heatmap

    figures = []
    heatmap = ks_heatmap(details.ks)
    if heatmap is not None:
        figures.append(_figure(heatmap, (
            f"KS heat map: per arm (columns; study arms left of the vertical line, control arms right) and for "
            f"the {KS_TOP_FEATURES} features that differ most often in the study arms (rows, most often first; "
            "'original_' dropped from the names), the share of folds × classes in which the feature's "
            "distribution differs from the fold's real training cases of the class (two-sample "
            "Kolmogorov-Smirnov test, Benjamini-Hochberg FDR at the level validation.alpha). Grey level: "
            "white never, black in every fold and class. control_negative_noise should be black, "
            "control_positive and control_negative_copy white.")))
    maps = correlation_maps(details.correlation, classes)
    if maps is not None:
        figures.append(_figure(maps, (
            "Correlation-difference maps: candidate minus real Pearson correlation of every feature pair, "
            "averaged over folds, one panel per arm and class (features in feature-table order; thin lines "
            "separate PyRadiomics feature classes, named on the left). One stepped colour scale for every "
            "panel, fixed to [-1, 1] with steps at ±0.1, 0.3, 0.5 and 0.7 (larger differences take the darkest "
            "step): white |difference| < 0.1, red a more positive, blue a more negative candidate correlation; "
            "in black and white, darker means a larger difference either way. Grey: undefined (a feature "
            "constant in a set). A faithful candidate gives a pale panel; copies of training rows a white one.")))
    histograms = dcr_histograms(details.dcr)
    if histograms is not None:
        figures.append(_figure(histograms, (
            "Distance to the closest real training row of the fold and class (DCR, in the training "
            "features' z-score units) of each candidate row (grey bars) and each unseen real test row "
            "(black outline), folds and classes pooled, per arm. Bars are shares of each set's rows; both "
            "sets share the panel's bins, the last of which also holds distances beyond the panel's 99th "
            "percentile. Candidates as novel as unseen real data overlap the outline; copies of training "
            "rows pile up at 0 (control_negative_copy, oversample); noise lies far to the right.")))
    if not figures:
        return []
    note = _paragraph(
        "The detail below compares each candidate set with all real training cases of its fold and class "
        "(the verdicts above use half of them, at matched sample sizes, to have a real-vs-real baseline): "
        "it shows which features and feature pairs differ and how close candidates sit to training cases; "
        "it does not judge. Tables: validation/details/<arm>/ (ks.csv, correlation.npz, dcr.csv).")
    return ["<h3>Validation details</h3>", note, *figures]


def _loss_figure(losses: dict[tuple[str, str], pd.DataFrame]) -> str:
    models = sorted({model for model, _ in losses})
    folds = sorted({fold for _, fold in losses})
    fig = _new_figure(figsize=(7.5, 2.8 * len(models)), layout="constrained")
    for ax, model in zip(fig.subplots(len(models), 1, squeeze=False)[:, 0], models):
        frames = [losses[(model, fold)] for fold in folds if (model, fold) in losses]
        columns = dict.fromkeys(c for frame in frames for c in frame.columns if c not in _NOT_LOSSES)
        for i, column in enumerate(columns):
            for j, frame in enumerate(f for f in frames if column in f.columns):
                ax.plot(frame["step"], frame[column], color=f"C{i % 10}", alpha=0.6, linewidth=1,
                        linestyle=_LINESTYLES[i % len(_LINESTYLES)], label=column if j == 0 else "_nolegend_")
        ax.set(title=model, xlabel="training step", ylabel="loss")
        ax.legend(fontsize="small", loc="upper right")
    return _figure(fig, f"Training losses per model: one line per fold ({len(folds)} folds: {', '.join(folds)}).")


def _selection_section(curves: dict[tuple[str, str], pd.DataFrame]) -> str:
    """In-fold model selection: one small plot per model x fold (Fréchet and coverage against the
    step, chosen step dashed) and a table of the chosen step against the last evaluated one."""
    curves = {key: curve for key, curve in curves.items() if len(curve)}
    if not curves:
        return _NO_DATA
    models = sorted({model for model, _ in curves})
    folds = sorted({fold for _, fold in curves})
    fig = _new_figure(figsize=(2.6 * len(folds) + 0.6, 1.9 * len(models) + 0.4), layout="constrained")
    axes = fig.subplots(len(models), len(folds), squeeze=False)
    rows = []
    for (i, model), (j, fold) in ((m, f) for m in enumerate(models) for f in enumerate(folds)):
        ax = axes[i, j]
        curve = curves.get((model, fold))
        if curve is None:
            ax.set_axis_off()
            continue
        ax.plot(curve["step"], curve["frechet"], color="C0", marker=".", linewidth=1)
        twin = ax.twinx()
        twin.plot(curve["step"], curve["coverage"], color="C1", marker=".", linewidth=1)
        twin.set_ylim(-0.02, 1.02)
        chosen, last = curve[truthy(curve["selected"])], curve.iloc[-1]
        for step in chosen["step"]:
            ax.axvline(step, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{model}, {fold}", fontsize="small")
        ax.tick_params(labelsize="x-small")
        twin.tick_params(labelsize="x-small")
        if len(chosen):
            best = chosen.iloc[0]
            rows.append([model, fold, int(best["step"]), int(last["step"]), _fmt(best["frechet"]),
                         _fmt(last["frechet"]), _fmt(best["coverage"]), _fmt(last["coverage"])])
    caption = ("In-fold model selection (generative.selection): Fréchet distance (blue, left axis, lower is "
               "better) and coverage (orange, right axis) of samples from each evaluated step against the "
               "generator's held-out training cases, on the cheap feature set; the dashed line is the step "
               "whose weights were sampled.")
    return "\n".join([_figure(fig, caption), _table(
        ["model", "fold", "chosen step", "last step", "Fréchet chosen", "Fréchet last", "coverage chosen",
         "coverage last"], rows)])


def _central_slice(array: np.ndarray) -> np.ndarray:
    """A 2-D patch as is; the central slice of a 3-D (D, H, W) patch."""
    return array[array.shape[0] // 2] if array.ndim == 3 else array


def _window(images: Sequence[np.ndarray]) -> tuple[float, float]:
    """One grey-level window for ``images``: the 1st-99th percentile of their pooled (central-slice) values."""
    values = [np.ravel(_central_slice(np.asarray(a, dtype=float))) for a in images]
    low, high = np.nanpercentile(np.concatenate(values) if values else np.zeros(1), [1, 99])
    return float(low), float(high if high > low else low + 1)


def _draw_patch(ax, image: np.ndarray, mask: np.ndarray, window: tuple[float, float] | None = None) -> None:
    """Grey image in ``window`` (default: its own 1st-99th percentile), with the mask outline in red."""
    image, mask = _central_slice(image), _central_slice(mask).astype(float)
    low, high = window or _window([image])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    if mask.min() < 0.5 < mask.max():
        ax.contour(mask, levels=[0.5], colors="red", linewidths=0.8)


def _spread(count: int, n: int) -> np.ndarray:
    """Up to ``n`` evenly spaced positions in ``range(count)``."""
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def _panel_grid(subfig, title: str, panels: dict, classes: list, windows: dict) -> None:
    """One row of patches per class under ``title``; ``panels[label]`` is ``(images, masks)``,
    drawn in the grey-level window ``windows[label]``."""
    subfig.suptitle(title)
    axes = subfig.subplots(len(classes), SAMPLES_PER_SIDE, squeeze=False)
    for row, label in zip(axes, classes):
        images, masks = panels[label]
        for k, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(images):
                _draw_patch(ax, images[k], masks[k], windows[label])
            else:
                ax.set_frame_on(False)
        if not len(images):
            row[0].text(0.5, 0.5, "none", transform=row[0].transAxes, ha="center", va="center")
        row[0].set_ylabel(label)


def _sample_folds(table: pd.DataFrame) -> list[tuple[int, int]]:
    """Distinct ``(repeat, fold)`` pairs of a sample table; empty if it does not record them."""
    if not {"repeat", "fold"} <= set(table.columns):
        return []
    return sorted(set(zip(table["repeat"].astype(int), table["fold"].astype(int))))


def _real_labels(case_ids: np.ndarray, cohort: pd.DataFrame) -> np.ndarray:
    return pd.Series(case_ids).map(dict(zip(cohort["case_id"].astype(str), cohort["label"]))).to_numpy()


def _fold_roles(case_ids: np.ndarray, folds: pd.DataFrame, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the real patches that are training and test cases of fold ``key``."""
    return tuple(np.isin(case_ids, fold_cases(folds, *key, role)["case_id"].astype(str))
                 for role in ("train", "test"))


def _kind(arm: str) -> str:
    return "augmented" if arm == CLASSICAL_ARM else "synthetic"


def _sample_grid(model: str, synthetic: tuple, real_patches: tuple, cohort: pd.DataFrame,
                 folds: pd.DataFrame, classes: list) -> str:
    """Real (left) and synthetic or augmented (right) patches of one arm, one row per class.

    When the samples come from a single fold, the real patches are that fold's
    training cases, i.e. what the generator learned from (or what was augmented).
    Both sides of a class row share one grey-level window, that of the real
    patches shown, so a shift in intensity is seen as such.
    """
    images, masks, table = synthetic
    case_ids, real_images, real_masks = real_patches
    case_ids = np.asarray(case_ids, dtype=str)
    real_labels = _real_labels(case_ids, cohort)
    keys = _sample_folds(table)
    kind = _kind(model)
    made = "made from" if kind == "augmented" else f"of the {model} trained on"
    if len(keys) == 1 and not folds.empty:
        eligible = _fold_roles(case_ids, folds, keys[0])[0]
        caption = (f"{model}, fold {fold_key(*keys[0])}: real training cases of the fold (left) and "
                   f"{kind} samples {made} them (right), one row per class.")
    else:
        eligible = np.ones(case_ids.size, bool)
        shown = ", ".join(fold_key(*k) for k in keys) or "not recorded"
        caption = f"{model}, fold {shown}: real cases (left) and {kind} samples (right), one row per class."
    real, synth, windows = {}, {}, {}
    for label in classes:
        take = np.flatnonzero(eligible & (real_labels == label))
        take = take[_spread(take.size, SAMPLES_PER_SIDE)]
        real[label] = (real_images[take], real_masks[take])
        take = np.flatnonzero(table["label"].to_numpy() == label)[:SAMPLES_PER_SIDE]
        synth[label] = (images[take], masks[take])
        windows[label] = _window(list(real[label][0]) or list(synth[label][0]))
    fig = _new_figure(figsize=(1.9 * SAMPLES_PER_SIDE + 0.5, 0.5 + 1.05 * len(classes)), layout="constrained")
    left, right = fig.subfigures(1, 2, wspace=0.03)
    _panel_grid(left, "real", real, classes, windows)
    _panel_grid(right, kind, synth, classes, windows)
    return _figure(fig, caption + " Red: ROI mask outline; grey levels: one window per class row (1st-99th "
                   "percentile of the real patches shown), the same on both sides; 3-D patches show their "
                   "central slice.")


CLOSEST_COLUMNS = ["label", "sample", "sample_id", "parent", "nearest", "nearest_case", "distance", "held_out_median"]
"""Columns of :func:`closest_to_training`."""


def closest_to_training(synthetic: tuple, real_patches: tuple, cohort: pd.DataFrame, folds: pd.DataFrame,
                        classes: list, per_class: int = NEAREST_PER_CLASS) -> pd.DataFrame:
    """The ``per_class`` samples of one arm closest to a real training patch of their class and fold.

    Distances are those of the image memorization check
    (:func:`radaug.validate.images.nearest_training_patches`), per class as in
    validation: each sample against the fold's real training patches of its
    class. ``held_out_median`` is the median distance of the fold's real test
    patches of the class to the same training patches, the distance an unseen
    real case typically has. ``sample`` and ``nearest`` are positions in the
    samples and in ``real_patches``; ``parent`` is the sample's parent case when
    its table records one (augmented samples), else empty. Empty when the
    samples do not come from a single fold.
    """
    from radaug.validate.images import nearest_training_patches

    images, _, table = synthetic
    keys = _sample_folds(table)
    if len(keys) != 1 or folds.empty:
        return pd.DataFrame(columns=CLOSEST_COLUMNS)
    case_ids, real_images, _ = real_patches
    case_ids = np.asarray(case_ids, dtype=str)
    real_labels = _real_labels(case_ids, cohort)
    train, test = _fold_roles(case_ids, folds, keys[0])
    labels = table["label"].to_numpy()
    sample_ids = table["sample_id"].astype(str).to_numpy() if "sample_id" in table else np.arange(len(table)).astype(str)
    parents = table["case_id"].astype(str).to_numpy() if "case_id" in table else np.full(len(table), "")
    rows = []
    for label in classes:
        cand = np.flatnonzero(labels == label)
        ref = np.flatnonzero(train & (real_labels == label))
        if not cand.size or not ref.size:
            continue
        distances, nearest = nearest_training_patches(images[cand], real_images[ref])
        d_holdout = nearest_training_patches(real_images[test & (real_labels == label)], real_images[ref])[0]
        typical = float(np.median(d_holdout)) if d_holdout.size else math.nan
        for k in np.argsort(distances, kind="stable")[:per_class]:
            s, r = int(cand[k]), int(ref[nearest[k]])
            rows.append([label, s, sample_ids[s], parents[s], r, case_ids[r], float(distances[k]), typical])
    return pd.DataFrame(rows, columns=CLOSEST_COLUMNS)


def _nearest_grid(model: str, synthetic: tuple, real_patches: tuple, cohort: pd.DataFrame,
                  folds: pd.DataFrame, classes: list) -> str:
    """:func:`closest_to_training` of one arm: each sample above its nearest real training patch, and a table."""
    closest = closest_to_training(synthetic, real_patches, cohort, folds, classes)
    if closest.empty:
        return ""
    images, masks, table = synthetic
    _, real_images, real_masks = real_patches
    kind = _kind(model)
    fig = _new_figure(figsize=(0.3 + 1.6 * len(closest), 3.9), layout="constrained")
    axes = fig.subplots(2, len(closest), squeeze=False)
    for row, top, bottom in zip(closest.itertuples(), axes[0], axes[1]):
        window = _window([real_images[row.nearest]])
        _draw_patch(top, images[row.sample], masks[row.sample], window)
        _draw_patch(bottom, real_images[row.nearest], real_masks[row.nearest], window)
        top.set_title(f"{row.label}\nd = {row.distance:.3f}", fontsize="small")
        bottom.set_title(str(row.nearest_case), fontsize="x-small")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_ylabel(kind)
    axes[1][0].set_ylabel("nearest real\ntraining patch")
    key = fold_key(*_sample_folds(table)[0])
    figure = _figure(fig, (
        f"{model}, fold {key}: the {NEAREST_PER_CLASS} {kind} samples per class closest to a real training patch "
        f"of their class (top, with their distance d) and that training patch (bottom, its case id). d: the "
        f"root-mean-square difference of the two patches' z-scored intensities, the distance of the image "
        f"memorization check. Grey levels: the training patch's 1st-99th percentile, the same for both."))
    rows = [[r.label, r.sample_id, *([r.parent or "-"] if kind == "augmented" else []), r.nearest_case,
             r.distance, r.held_out_median] for r in closest.itertuples()]
    header = ["class", "sample", *(["parent case"] if kind == "augmented" else []), "nearest training case",
              "d", "held-out median d"]
    note = ("A sample far closer to a training patch than the fold's held-out real cases usually are "
            "(held-out median d: their median distance to the same training patches) looks like a copy of "
            "training data. ")
    if kind == "augmented":
        note += "Augmented samples are made from a training case (their parent), so small distances are expected."
    return figure + _paragraph(note) + _table(header, rows)


def _sampling_table(sample_tables: pd.DataFrame) -> str:
    if sample_tables.empty:
        return _NO_DATA
    per_fold = sample_tables.groupby(["model", "label", "repeat", "fold"]).agg(
        samples=("sample_id", "size"), quota=("quota", "first"), rejected=("rejected_in_class", "first"))
    per_class = per_fold.groupby(["model", "label"]).agg(
        folds=("samples", "size"), samples=("samples", "sum"), quota=("quota", "sum"), rejected=("rejected", "sum"))
    rows = [
        [model, label, int(r.folds), int(r.samples), int(r.quota), int(r.rejected),
         f"{r.samples / (r.samples + r.rejected):.1%}" if r.samples + r.rejected else "n/a"]
        for (model, label), r in per_class.iterrows()
    ]
    note = _paragraph("Synthetic samples per model and class, summed over folds; rejected draws were "
                      "implausible (empty mask or ROI size outside the class's real range) and redrawn.")
    return note + _table(["model", "class", "folds", "samples", "quota", "rejected draws", "accepted"], rows)


def _sampling_records_table(sampling: pd.DataFrame) -> str:
    """Sampling records (``synthetic/<model>/sampling/``) summed over folds: requested, accepted, why rejected."""
    from radaug.sampling import REASON_COLUMNS

    if sampling.empty:
        return _NO_DATA
    reasons = [(reason, column) for reason, column in REASON_COLUMNS.items() if column in sampling.columns
               and sampling[column].sum() > 0]
    sampling = sampling.assign(short_fold=np.where(truthy(sampling["short"]), sampling["fold"].astype(str), ""))
    rows = []
    for (model, label), part in sampling.groupby(["model", "label"], sort=True):
        requested, accepted, drawn = (int(part[c].sum()) for c in ("requested", "accepted", "drawn"))
        short = ", ".join(f for f in part["short_fold"] if f)
        rows.append([model, label, requested, accepted, drawn, *(int(part[c].sum()) for _, c in reasons),
                     f"{accepted / drawn:.1%}" if drawn else "n/a", short or "none"])
    note = _paragraph(
        "Synthetic samples per model and class, summed over folds: requested (the rebalancing quota), accepted "
        "(plausible), drawn, and the rejected draws by reason (an empty mask, or an ROI size outside the "
        "class's real range widened by sampling.roi_size_slack; cyclegan: structure agreement below "
        "min_structure). Folds where a class fell short of its quota make the arm 'could not generate'.")
    header = ["model", "class", "requested", "accepted", "drawn", *(f"rejected: {r}" for r, _ in reasons),
              "accepted share", "short in folds"]
    return note + _table(header, rows)


def render_generators(losses, real_patches, synthetic, sample_tables, cohort, folds, classes,
                      sampling: pd.DataFrame | None = None,
                      selection: dict[tuple[str, str], pd.DataFrame] | None = None) -> str:
    """HTML of the report's generators section: loss curves, sample grids, the samples
    closest to training beside their nearest real training patch, sampling counts.

    Arguments as in :func:`build_report`; ``classes`` from :func:`report_classes`;
    ``synthetic`` may hold the classical arm's augmented samples under ``"classical"``
    (shown after the generators).
    ``sampling``: the sampling records of every model and fold
    (:data:`radaug.sampling.SAMPLING_COLUMNS` with ``model`` and ``fold``); given,
    the sampling table counts requested, accepted and drawn samples and the
    rejections per reason from them, including classes with no accepted sample.
    ``selection``: the selection curves (``models/<model>/<fold>/selection.csv``) per
    (model, fold) of a study with ``generative.selection.enabled``; given, a
    "Model selection" part shows each curve and the chosen step against the last.
    """
    arms = sorted(synthetic, key=lambda arm: (arm == CLASSICAL_ARM, arm))
    grids = [_sample_grid(arm, synthetic[arm], real_patches, cohort, folds, classes) for arm in arms]
    nearest = [_nearest_grid(arm, synthetic[arm], real_patches, cohort, folds, classes) for arm in arms]
    return "\n".join([
        "<h3>Training losses</h3>", _loss_figure(losses) if losses else _NO_DATA,
        *(["<h3>Model selection</h3>", _selection_section(selection)] if selection else []),
        "<h3>Samples</h3>", *(grids or [_NO_DATA]),
        "<h3>Closest to training</h3>", *([g for g in nearest if g] or [_NO_DATA]),
        "<h3>Sampling</h3>",
        _sampling_table(sample_tables) if sampling is None else _sampling_records_table(sampling),
    ])


def _failures_section(failures: pd.DataFrame, n_reasons: int = 5) -> str:
    if failures.empty:
        return _paragraph("none", "empty")
    per_arm = failures.groupby("arm").size()
    reasons = failures.groupby("reason", sort=False).size().sort_values(ascending=False, kind="stable")
    return "\n".join([
        _table(["arm", "failed samples"], per_arm.items()),
        _paragraph(f"Most frequent reasons ({min(n_reasons, reasons.size)} of {reasons.size}):"),
        _table(["reason", "samples"], reasons.head(n_reasons).items()),
    ])


def _provenance_section(provenance: list[dict], config: dict) -> str:
    if not provenance:
        return _NO_DATA
    # Only reproducible facts: timings and hosts stay in the job records (provenance/),
    # so the same config gives a byte-identical report.
    jobs = pd.DataFrame({
        "rule": [r["rule"] for r in provenance],
        "code_version": [r.get("code_version") or "n/a" for r in provenance],
    })
    seeds = sorted({r["seed"] for r in provenance if r.get("seed") is not None}, key=str)
    prefix = f"results/{config['study']['name']}/"
    artifacts = [
        {"path": str(out["path"]).split(prefix, 1)[-1], "sha256": out["sha256"], "kind": "data"}
        for r in provenance for out in r.get("outputs", ())
    ]
    version = _paragraph(
        f"Study data version: {study_version(artifacts) if artifacts else 'n/a'} — the digest of every data "
        "artifact but this report, computed as manifest.json's study_version is (the manifest, written after "
        "the report, adds the report's own hash; its study_version is the study's version of record)."
    )
    summary = version + _paragraph(
        f"{len(provenance)} jobs. Study seed: {_fmt(config['study'].get('seed'))}; seeds recorded by jobs: "
        f"{', '.join(map(str, seeds)) or 'none'}. Timings and hosts are in each job's record under provenance/."
    )
    rules = [
        [rule, len(part), ", ".join(v[:12] for v in dict.fromkeys(part["code_version"]))]
        for rule, part in jobs.groupby("rule")
    ]
    packages = provenance[0].get("packages", {})
    return "\n".join([
        summary,
        _table(["rule", "jobs", "code versions"], rules),
        _paragraph("Package versions (first job record):"),
        _table(["package", "version"], packages.items()) if packages else _NO_DATA,
    ])


# --------------------------------------------------------------------------- #
# The page
# --------------------------------------------------------------------------- #


def report_classes(declared: Sequence, cohort: pd.DataFrame) -> list:
    """Class labels in display order: ``declared`` (the config's ``data.classes``), then any other of the cohort."""
    declared = list(declared)
    return declared + sorted(set(cohort.get("label", ())).difference(declared), key=str)


def build_report(
    *,
    config: dict,
    cohort: pd.DataFrame,
    folds: pd.DataFrame,
    validation: pd.DataFrame,
    evaluation: pd.DataFrame,
    predictions: pd.DataFrame,
    losses: dict[tuple[str, str], pd.DataFrame],
    real_patches: tuple[np.ndarray, np.ndarray, np.ndarray],
    synthetic: dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]],
    sample_tables: pd.DataFrame,
    failures: pd.DataFrame,
    provenance: list[dict],
    validation_details: ValidationDetails | None = None,
    per_fold: pd.DataFrame | None = None,
    duplicates: pd.DataFrame | None = None,
) -> str:
    """Render the standalone HTML report of one study.

    Parameters
    ----------
    config
        The study configuration, shown as YAML; ``study.name`` titles the page.
    cohort
        Case index: ``case_id, patient_id, label, modality, roi_voxels, roi_source,
        roi_truncated``.
    folds
        Fold table: ``case_id, patient_id, group, label, repeat, fold, role``.
    validation
        Validation summary: ``fold, arm, class, metric, value, baseline, direction,
        verdict`` and optionally ``n_reference, n_candidate, n_holdout``; may be empty.
    evaluation
        Evaluation summary: ``arm, metric, mean, ci_low, ci_high, delta_vs_real,
        p_value, n_folds`` and optionally ``holm_p_value``.
    predictions
        Pooled out-of-fold predictions: ``arm, repeat, fold, case_id, label, y_true, score``.
    losses
        Training-loss frames by ``(model, fold key)``: a ``step`` column and one
        column per logged loss (``images_per_s`` is ignored).
    real_patches
        ``(case_ids, images, masks)`` of the real patches, ``(N, H, W)`` or
        ``(N, D, H, W)``; labels come from ``cohort``.
    synthetic
        Samples of one fold per model: ``(images, masks, table)``, the table with
        ``label`` per sample and, when known, its ``repeat`` and ``fold``; the
        classical arm's augmented samples of one fold may join under ``"classical"``.
    sample_tables
        All synthetic sample tables of all models and folds, with ``model, label,
        repeat, fold, quota, rejected_in_class``; may be empty.
    failures
        Feature-extraction failures: ``sample_id, source, arm, repeat, fold, reason``;
        may be empty.
    provenance
        Job records with ``rule, code_version, packages, seed, seconds, host``.
    validation_details
        Per-feature KS tests, correlation differences and DCR of every validated
        arm (:func:`radaug.validate.details.concat_details` of the validate jobs'
        detail files); draws the KS heat map, correlation-difference maps and
        DCR histograms. None: no detail figures.
    per_fold
        Per-fold evaluation tables of every arm (``arm, n_train_added, ...``); the
        evaluation section names arms that added no rows. None: not checked.
    duplicates
        The split's near-duplicate audit (``splits/duplicates.csv``, :func:`radaug.splits.duplicate_audit`);
        with the cohort's ``dup_thumb`` column it fills the near-duplicate section. None: "no data".

    Returns
    -------
    str
        The HTML page; identical inputs give identical text.

    Notes
    -----
    The page is :func:`assemble_report` of :func:`render_validation` and
    :func:`render_generators`; the workflow renders those two sections in jobs of
    their own, so a change that leaves them alone (the classifier, say) does not
    redraw their figures.
    """
    classes = report_classes(config.get("data", {}).get("classes", ()), cohort)
    return assemble_report(
        config=config, cohort=cohort, folds=folds, evaluation=evaluation, predictions=predictions,
        failures=failures, provenance=provenance, per_fold=per_fold, validation=validation,
        duplicates=duplicates,
        validation_html=render_validation(validation, classes, validation_details),
        generators_html=render_generators(losses, real_patches, synthetic, sample_tables, cohort, folds, classes),
    )


def assemble_report(
    *,
    config: dict,
    cohort: pd.DataFrame,
    folds: pd.DataFrame,
    evaluation: pd.DataFrame,
    predictions: pd.DataFrame,
    failures: pd.DataFrame,
    provenance: list[dict],
    validation_html: str,
    generators_html: str,
    per_fold: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    arm_verdicts: pd.DataFrame | None = None,
    duplicates: pd.DataFrame | None = None,
) -> str:
    """The report page from its data and the two sections rendered beforehand.

    Arguments as in :func:`build_report`; ``validation_html`` and
    ``generators_html`` come from :func:`render_validation` and
    :func:`render_generators`; ``per_fold`` (the evaluate jobs' per-fold tables,
    optional) lets the evaluation section name arms that added no rows;
    ``validation`` (the validation summary) and ``arm_verdicts`` (its per-arm
    verdicts, with the controls) let the summary name failing gates and say
    whether the controls behaved; ``duplicates`` (``splits/duplicates.csv``,
    optional) fills the near-duplicate section. Identical inputs give identical text.
    """
    name = str(config["study"]["name"])
    classes = report_classes(config.get("data", {}).get("classes", ()), cohort)
    arms = config.get("evaluation", {}).get("arms", ())
    bodies = {
        "summary": _summary_section(evaluation, validation, arm_verdicts, cohort, folds, failures, arms, classes),
        "arms": _arms_section(evaluation, arms),
        "cohort": _cohort_section(cohort, classes),
        "folds": _folds_section(folds, classes),
        "duplicates": _duplicates_section(cohort, folds, duplicates, classes, config.get("split", {})),
        "evaluation": _evaluation_section(evaluation, folds, per_fold),
        "roc": _roc_section(predictions),
        "validation": validation_html,
        "generators": generators_html,
        "failures": _failures_section(failures),
        "config": _config_section(config),
        "provenance": _provenance_section(provenance, config),
    }
    titles = dict(SECTIONS)
    if _shows_confusion_matrices(predictions):
        titles["roc"] = "Confusion matrices"
    nav = "".join(f'<li><a href="#{key}">{html.escape(title)}</a></li>' for key, title in titles.items())
    rendered = [f'<section id="{key}">\n<h2>{html.escape(titles[key])}</h2>\n{body}\n</section>'
                for key, body in bodies.items()]
    first, rest = rendered[0], "\n".join(rendered[1:])  # the summary before the table of contents
    title = html.escape(name)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} – radaug study report</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n{first}\n<nav><ol>{nav}</ol></nav>\n"
        f'<section id="how-to-read">\n<h2>How to read this report</h2>\n{_paragraph(_INTRO)}\n</section>\n'
        f"{rest}\n</body>\n</html>\n"
    )
