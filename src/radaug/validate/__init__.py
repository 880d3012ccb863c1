"""Validation: can synthetic or augmented radiomics features be trusted?

Metrics compare feature matrices (numpy arrays or DataFrames of numeric
columns) of real and candidate rows; :func:`validate_arm` turns them into
verdicts against real-vs-real baselines. Usable without Snakemake.
"""

from radaug.validate.metrics import (
    METRICS,
    KSBreakdown,
    MetricSpec,
    correlation_distance,
    distance_to_closest_record,
    frechet_distance,
    frechet_from_moments,
    ks_fdr,
    ks_fdr_breakdown,
    memorization_ratio,
    share_closer_than_holdout,
)
from radaug.validate.summary import (
    DEFAULT_THRESHOLDS,
    SUMMARY_COLUMNS,
    VERDICTS,
    overall_verdict,
    validate_arm,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "SUMMARY_COLUMNS",
    "VERDICTS",
    "KSBreakdown",
    "MetricSpec",
    "correlation_distance",
    "distance_to_closest_record",
    "frechet_distance",
    "frechet_from_moments",
    "ks_fdr",
    "ks_fdr_breakdown",
    "memorization_ratio",
    "overall_verdict",
    "share_closer_than_holdout",
    "validate_arm",
]
