"""Validation: can synthetic or augmented radiomics features be trusted?

Metrics compare feature matrices (numpy arrays or DataFrames of numeric
columns) of real and candidate rows; :func:`validate_arm` turns them into
verdicts against real-vs-real baselines. Usable without Snakemake.

Names are imported lazily (PEP 562): ``import radaug.validate`` is cheap, and a
submodule (with scipy or scikit-learn behind it) loads on first use of a name
from it, so code that needs only the verdict rules (config checks at every
Snakemake start) does not pay for the scientific stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "CONTROL_ARMS": "controls",
    "CorrelationBreakdown": "metrics",
    "DEFAULT_THRESHOLDS": "thresholds",
    "KSBreakdown": "metrics",
    "METRICS": "registry",
    "MetricSpec": "registry",
    "PHYSICAL_HU_RANGE": "images",
    "PRDC": "manifold",
    "Patches": "summary",
    "SUMMARY_COLUMNS": "verdicts",
    "VERDICTS": "thresholds",
    "arm_verdicts": "verdicts",
    "copy_control": "controls",
    "correlation_breakdown": "metrics",
    "correlation_distance": "metrics",
    "detection_auc": "detection",
    "distance_to_closest_record": "metrics",
    "frechet_distance": "metrics",
    "frechet_from_moments": "metrics",
    "frechet_means_distance": "metrics",
    "image_distances_to_train": "images",
    "image_memorization_ratio": "images",
    "ks_fdr": "metrics",
    "ks_fdr_breakdown": "metrics",
    "kth_neighbour_distances": "manifold",
    "label_disagreement": "detection",
    "memorization_ratio": "metrics",
    "merge_thresholds": "thresholds",
    "nearest_neighbour_distance_ratio": "metrics",
    "nearest_training_patches": "images",
    "nndr_ratio": "metrics",
    "noise_control": "controls",
    "overall_verdict": "thresholds",
    "patch_vectors": "images",
    "physical_intensity_range": "images",
    "plausibility": "images",
    "pooled_normal_scores": "metrics",
    "prdc": "manifold",
    "ranked_location_distances": "metrics",
    "share_closer_than_holdout": "metrics",
    "shuffle_roi_voxels": "controls",
    "strong_pairs_kept": "metrics",
    "strong_pairs_strength": "metrics",
    "validate_arm": "summary",
    "verdict": "thresholds",
    "wasserstein_distance": "metrics",
}
"""Public name -> submodule of :mod:`radaug.validate` that defines it."""

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'radaug.validate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"radaug.validate.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])
