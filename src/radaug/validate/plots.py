"""Figures of the validation summary and details for the study report (matplotlib ``Figure`` objects, Agg only).

Each function takes ``validation/summary.csv`` (or one of the detail tables of
:mod:`radaug.validate.details`) and returns a :class:`matplotlib.figure.Figure`
(no pyplot state), or None when there is nothing to draw.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from radaug.io import truthy
from radaug.validate.registry import METRICS, family
from radaug.validate.thresholds import overall_verdict

VERDICT_CODES = {"insufficient": 0, "pass": 1, "warn": 2, "fail": 3}
VERDICT_COLOURS = ["#d9d9d9", "#4daf4a", "#ffbf00", "#e41a1c"]
PRDC_METRICS = family("precision")
"""The four PRDC gates: the metrics one call of their registered function computes."""


def verdict_heatmap(summary: pd.DataFrame) -> Figure | None:
    """Worst verdict over folds per arm and class (rows) and metric (columns), colour-coded."""
    if summary.empty:
        return None
    cells = summary.groupby(["arm", "class", "metric"])["verdict"].agg(overall_verdict)
    rows = list(dict.fromkeys(zip(summary["arm"], summary["class"])))
    metrics = [m for m in METRICS if m in set(summary["metric"])]
    codes = np.array([[VERDICT_CODES[cells.get((arm, label, m), "insufficient")] for m in metrics]
                      for arm, label in rows])
    fig = Figure(figsize=(1.0 + 0.42 * len(metrics), 1.6 + 0.3 * len(rows)), layout="constrained")
    ax = fig.subplots()
    ax.imshow(codes, cmap=ListedColormap(VERDICT_COLOURS), vmin=0, vmax=3, aspect="auto")
    ax.set_xticks(range(len(metrics)), metrics, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(len(rows)), [f"{arm} / {label}" for arm, label in rows], fontsize="small")
    ax.set_title("verdict (grey insufficient, green pass, amber warn, red fail)", fontsize="small")
    return fig


def prdc_bars(summary: pd.DataFrame) -> Figure | None:
    """Median precision, recall, density and coverage per arm and class, baseline as a tick."""
    table = summary[summary["metric"].isin(PRDC_METRICS)]
    if table.empty:
        return None
    medians = table.groupby(["arm", "class", "metric"])[["value", "baseline"]].median()
    groups = list(dict.fromkeys(zip(table["arm"], table["class"])))
    fig = Figure(figsize=(max(5.0, 0.9 * len(groups) + 2), 3.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(PRDC_METRICS)
    for j, metric in enumerate(PRDC_METRICS):
        x = np.arange(len(groups)) + (j - 1.5) * width
        values = [medians["value"].get((a, c, metric), np.nan) for a, c in groups]
        baselines = [medians["baseline"].get((a, c, metric), np.nan) for a, c in groups]
        ax.bar(x, values, width, label=metric, color=f"C{j}")
        ax.scatter(x, baselines, marker="_", color="black", s=120, zorder=3,
                   label="real-vs-real baseline" if j == 0 else "_nolegend_")
    ax.set_xticks(range(len(groups)), [f"{a}\n{c}" for a, c in groups], fontsize="x-small")
    ax.set_ylabel("median over folds")
    ax.legend(fontsize="x-small", ncols=5, loc="upper center", bbox_to_anchor=(0.5, 1.18))
    return fig


# --------------------------------------------------------------------------- #
# Figures of the validation details (radaug.validate.details)
# --------------------------------------------------------------------------- #

KS_TOP_FEATURES = 30
"""Features shown by :func:`ks_heatmap`: the ones differing most often in the study arms."""

CORRELATION_LEVELS = (-1.0, -0.7, -0.5, -0.3, -0.1, 0.1, 0.3, 0.5, 0.7, 1.0)
"""Colour steps of :func:`correlation_maps`, the same for every panel: white for |difference| < 0.1,
then darker steps; differences beyond ±1 take the darkest step. Steps rather than a continuous scale
read better in grey print and keep the embedded PNG small (few colours compress well)."""

DCR_BINS = 30
"""Bins of each :func:`dcr_histograms` panel (shared by candidate and holdout)."""


def is_control(arm: str) -> bool:
    """Whether ``arm`` is a control arm (named in CONTROL_ARMS or prefixed ``control_``)."""
    from radaug.validate.controls import CONTROL_ARMS

    return arm in CONTROL_ARMS or str(arm).startswith("control_")


def arm_order(arms) -> list[str]:
    """Distinct arms: study arms sorted by name, then control arms (CONTROL_ARMS order, then by name)."""
    from radaug.validate.controls import CONTROL_ARMS

    arms = set(arms)
    controls = [a for a in CONTROL_ARMS if a in arms]
    controls += sorted(a for a in arms if is_control(a) and a not in controls)
    return sorted(a for a in arms if not is_control(a)) + controls


def _short(feature: str) -> str:
    """Feature name without the PyRadiomics image-type prefix (``original_``)."""
    return str(feature).removeprefix("original_")


def _family(feature: str) -> str:
    """PyRadiomics feature class of a name such as ``original_glcm_Contrast`` (``glcm``); else ``""``."""
    parts = str(feature).split("_")
    return parts[1] if len(parts) >= 3 else ""


def ks_heatmap(ks: pd.DataFrame, top: int = KS_TOP_FEATURES) -> Figure | None:
    """Share of folds × classes in which each feature differs (KS, BH FDR), per arm: grey levels.

    Rows are the ``top`` features that differ most often, averaged over the
    study arms (over every arm when there are only controls), ties broken by
    the mean KS statistic, then by name; columns are arms (study arms, then
    controls). White: never differs; black: differs in every fold and class.

    Parameters
    ----------
    ks
        :attr:`radaug.validate.details.ValidationDetails.ks`.
    top
        Number of features shown.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``ks`` is empty.
    """
    if ks.empty:
        return None
    differs = ks.assign(differs=truthy(ks["differs"]).astype(float))
    share = differs.pivot_table(index="feature", columns="arm", values="differs", aggfunc="mean")
    statistic = differs.pivot_table(index="feature", columns="arm", values="ks_statistic", aggfunc="mean")
    arms = arm_order(share.columns)
    study = [a for a in arms if not is_control(a)] or arms
    ranking = pd.DataFrame({"share": share[study].mean(axis=1).to_numpy(),
                            "statistic": statistic[study].mean(axis=1).to_numpy(), "feature": share.index})
    ranking = ranking.sort_values(["share", "statistic", "feature"], ascending=[False, False, True], kind="stable")
    features = list(ranking["feature"][:top])
    values = share.loc[features, arms].to_numpy(float)
    fig = Figure(figsize=(3.2 + 0.45 * len(arms), 1.4 + 0.2 * len(features)), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["Greys"].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks(range(len(arms)), arms, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(len(features)), [_short(f) for f in features], fontsize="x-small")
    if any(is_control(a) for a in arms) and any(not is_control(a) for a in arms):
        ax.axvline(sum(not is_control(a) for a in arms) - 0.5, color="black", linewidth=1.5)
    ax.set_title(f"{len(features)} of {len(share)} features, most often differing first", fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.6, label="share of folds × classes differing")
    return fig


def _family_blocks(ax, features: list[str], label: bool) -> None:
    """Lines between PyRadiomics feature classes; with ``label``, each class named at its middle (y axis)."""
    families = [_family(f) for f in features]
    starts = [i for i in range(len(families)) if i == 0 or families[i] != families[i - 1]]
    ends = starts[1:] + [len(families)]
    for start in starts[1:]:
        ax.axhline(start - 0.5, color="black", linewidth=0.4)
        ax.axvline(start - 0.5, color="black", linewidth=0.4)
    if label:
        ax.set_yticks([(s + e - 1) / 2 for s, e in zip(starts, ends)], [families[s] for s in starts],
                      fontsize="xx-small")


def correlation_maps(correlation: dict, classes: list | None = None, ncols: int = 4) -> Figure | None:
    """Candidate-minus-real Pearson correlation, fold-averaged, one panel per arm and class.

    Every panel shares one diverging scale of fixed steps,
    :data:`CORRELATION_LEVELS` over [-1, 1] (differences beyond it take the
    darkest step), so panels compare. Features keep the feature-table order, so
    PyRadiomics feature classes form blocks, separated by thin lines and named
    on the left column. White: no difference; grey: undefined (a feature
    constant in a set). Arms and classes with no defined difference (fewer than
    two candidate rows in every fold) get no panel.

    Parameters
    ----------
    correlation
        :attr:`radaug.validate.details.ValidationDetails.correlation`.
    classes
        Class order of the panels of one arm; default: sorted.
    ncols
        Panels per row (rounded down to whole arms when an arm has fewer panels).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no matrix holds a defined difference.
    """
    matrices = {key: m for key, m in correlation.items() if np.isfinite(m.to_numpy(float)).any()}
    if not matrices:
        return None
    labels = {label for _, label in matrices}
    order = [c for c in (classes or []) if c in labels] + sorted(labels.difference(classes or []), key=str)
    keys = [(arm, label) for arm in arm_order(a for a, _ in matrices) for label in order if (arm, label) in matrices]
    per_arm = len(order)
    ncols = max(per_arm, ncols // per_arm * per_arm)
    nrows = -(-len(keys) // ncols)
    fig = Figure(figsize=(0.6 + 1.9 * ncols, 0.4 + 1.95 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    levels = np.asarray(CORRELATION_LEVELS)
    cmap = matplotlib.colormaps["RdBu_r"].resampled(len(levels) - 1).with_extremes(bad="0.75")
    norm = BoundaryNorm(levels, cmap.N)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(keys):
            ax.set_axis_off()
            continue
        arm, label = keys[k]
        matrix = matrices[keys[k]]
        values = np.clip(matrix.to_numpy(float), levels[0], levels[-1])
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm,
                          interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        _family_blocks(ax, list(matrix.index), label=k % ncols == 0)
        ax.set_title(f"{arm}\n{label}", fontsize="x-small")
    fig.colorbar(image, ax=axes, shrink=0.5, ticks=levels, label="candidate − real correlation")
    return fig


def dcr_histograms(dcr: pd.DataFrame, ncols: int = 4) -> Figure | None:
    """Distance to the closest training row: candidate (grey bars) vs holdout (black line), per arm.

    Folds and classes are pooled per arm (each distance is in its own fold and
    class's training z-score units). Both sets share the panel's
    :data:`DCR_BINS` bins from 0 to the 99th percentile of the panel's
    distances; larger distances fall into the last bin. Bars are shares of each
    set's rows, so sets of different sizes compare. A copy of training rows
    puts every candidate in the first bin.

    Parameters
    ----------
    dcr
        :attr:`radaug.validate.details.ValidationDetails.dcr`.
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``dcr`` is empty.
    """
    if dcr.empty:
        return None
    arms = arm_order(dcr["arm"])
    ncols = min(ncols, len(arms))
    nrows = -(-len(arms) // ncols)
    fig = Figure(figsize=(0.4 + 2.6 * ncols, 0.6 + 2.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(arms):
            ax.set_axis_off()
            continue
        part = dcr[dcr["arm"] == arms[k]]
        distances = part["distance"].to_numpy(float)
        upper = float(np.quantile(distances, 0.99)) if len(distances) else 1.0
        bins = np.linspace(0.0, upper if upper > 0 else 1.0, DCR_BINS + 1)
        counts = {}
        for name, style in (("candidate", {"histtype": "stepfilled", "color": "0.65"}),
                            ("holdout", {"histtype": "step", "color": "black", "linewidth": 1.3})):
            values = np.clip(part.loc[part["set"] == name, "distance"].to_numpy(float), 0, bins[-1])
            counts[name] = len(values)
            if len(values):
                ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), label=name, **style)
        ax.set_title(f"{arms[k]}\n{counts['candidate']} candidate, {counts['holdout']} holdout rows",
                     fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        if k % ncols == 0:
            ax.set_ylabel("share of rows", fontsize="x-small")
        if k // ncols == nrows - 1 or k + ncols >= len(arms):
            ax.set_xlabel("distance to closest training row (z units)", fontsize="x-small")
    axes.flat[0].legend(fontsize="x-small")
    return fig
