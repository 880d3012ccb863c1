"""Figures of the validation summary for the study report (matplotlib ``Figure`` objects, Agg only).

Each function takes ``validation/summary.csv`` as a DataFrame and returns a
:class:`matplotlib.figure.Figure` (no pyplot state), or None when there is
nothing to draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from radaug.validate.metrics import METRICS
from radaug.validate.summary import overall_verdict

VERDICT_CODES = {"insufficient": 0, "pass": 1, "warn": 2, "fail": 3}
VERDICT_COLOURS = ["#d9d9d9", "#4daf4a", "#ffbf00", "#e41a1c"]
PRDC_METRICS = ("precision", "recall", "density", "coverage")


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
