"""Validation: can synthetic or augmented radiomics features be trusted?

Metrics compare feature matrices (numpy arrays or DataFrames of numeric
columns) of real and candidate rows; :func:`validate_arm` turns them into
verdicts against real-vs-real baselines. Usable without Snakemake.
"""

from radaug.validate.controls import CONTROL_ARMS, copy_control, noise_control, shuffle_roi_voxels
from radaug.validate.detection import detection_auc, label_disagreement
from radaug.validate.images import (
    PHYSICAL_HU_RANGE,
    image_distances_to_train,
    image_memorization_ratio,
    patch_vectors,
    physical_intensity_range,
    plausibility,
)
from radaug.validate.manifold import PRDC, kth_neighbour_distances, prdc
from radaug.validate.metrics import (
    METRICS,
    CorrelationBreakdown,
    KSBreakdown,
    MetricSpec,
    correlation_breakdown,
    correlation_distance,
    distance_to_closest_record,
    frechet_distance,
    frechet_from_moments,
    frechet_means_distance,
    ks_fdr,
    ks_fdr_breakdown,
    memorization_ratio,
    nearest_neighbour_distance_ratio,
    nndr_ratio,
    share_closer_than_holdout,
    strong_pairs_kept,
    wasserstein_distance,
)
from radaug.validate.summary import (
    DEFAULT_THRESHOLDS,
    SUMMARY_COLUMNS,
    VERDICTS,
    Patches,
    arm_verdicts,
    overall_verdict,
    validate_arm,
    verdict,
)

__all__ = [
    "CONTROL_ARMS",
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "PHYSICAL_HU_RANGE",
    "PRDC",
    "SUMMARY_COLUMNS",
    "VERDICTS",
    "CorrelationBreakdown",
    "KSBreakdown",
    "MetricSpec",
    "Patches",
    "arm_verdicts",
    "copy_control",
    "correlation_breakdown",
    "correlation_distance",
    "detection_auc",
    "distance_to_closest_record",
    "frechet_distance",
    "frechet_from_moments",
    "frechet_means_distance",
    "image_distances_to_train",
    "image_memorization_ratio",
    "kth_neighbour_distances",
    "ks_fdr",
    "ks_fdr_breakdown",
    "label_disagreement",
    "memorization_ratio",
    "nearest_neighbour_distance_ratio",
    "nndr_ratio",
    "noise_control",
    "overall_verdict",
    "patch_vectors",
    "physical_intensity_range",
    "plausibility",
    "prdc",
    "share_closer_than_holdout",
    "shuffle_roi_voxels",
    "strong_pairs_kept",
    "validate_arm",
    "verdict",
    "wasserstein_distance",
]
