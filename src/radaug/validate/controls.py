"""Positive and negative controls of the validation stage.

A gate means something only if it fails data that is obviously wrong and passes
data that is obviously right. The validation stage therefore scores, per fold
and class, three control "arms" next to the real ones:

* ``control_positive``: half of the fold's held-out real cases, judged with the
  other half as the holdout. Real data the generator never saw: **every gate
  must pass** (up to the baseline's sampling noise).
* ``control_negative_noise``: feature-space noise, each feature drawn
  independently from a normal with the real training mean shifted by
  :data:`NOISE_SHIFT` and :data:`NOISE_SD_FACTOR` times its standard
  deviation. It breaks marginals, correlations and the manifold: **every
  fidelity gate must fail** it (:data:`FIDELITY_GATES`).
* ``control_negative_copy``: exact copies of real training rows (and their
  patches). Copies match the distribution perfectly, so fidelity gates pass;
  **every memorization gate must fail** it (:data:`MEMORIZATION_GATES`).
* ``control_negative_label``: copies of real training rows of the *other*
  classes presented as this class: the label-consistency gate must fail it.

No single negative control can fail every gate (copies are perfectly faithful,
noise is perfectly novel), hence three, each with the gates it must fail
(:data:`EXPECTED_FAILURES`). Not covered by a feature-space control: ``recall``
(spread-out noise covers the real rows; its failure mode is mode collapse, see
the phantom tests) and ``implausible_share`` (image checks; unit-tested on
patches).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTROL_ARMS = ("control_positive", "control_negative_noise", "control_negative_copy",
                "control_negative_label")
"""Names of the control arms in ``validation/summary.csv``."""

NOISE_SD_FACTOR = 3.0
"""Standard deviation of the noise control, in real training standard deviations."""

NOISE_SHIFT = 1.0
"""Mean shift of the noise control, in real training standard deviations."""

FIDELITY_GATES = (
    "ks_fdr",
    "wasserstein_distance",
    "correlation_distance",
    "correlation_distance_spearman",
    "strong_pairs_kept",
    "frechet_distance",
    "frechet_means_distance",
    "precision",
    "density",
    "coverage",
    "detection_auc",
)
"""Gates the noise control must fail (``strong_pairs_kept`` and the means-only Fréchet too)."""

MEMORIZATION_GATES = (
    "memorization_ratio",
    "share_closer_than_holdout",
    "nndr_ratio",
    "image_memorization_ratio",
)
"""Gates the copy control must fail."""

EXPECTED_FAILURES = {
    "control_negative_noise": FIDELITY_GATES,
    "control_negative_copy": MEMORIZATION_GATES,
    "control_negative_label": ("label_disagreement",),
}
"""Per negative control, the gates that must fail it."""


def noise_control(train: pd.DataFrame, feature_columns: list[str], n: int, seed: int) -> pd.DataFrame:
    """Feature-space noise rows: independent normals, mean + 1 SD, 3× the training SD.

    Parameters
    ----------
    train
        Real training rows of one fold and class.
    feature_columns
        Columns to draw; other columns are not produced.
    n
        Number of rows.
    seed
        Seed of the draw.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows with ``sample_id`` (``noise-<i>``) and the feature columns.
    """
    values = train[feature_columns].to_numpy(dtype=float)
    mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(feature_columns))
    sd = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else np.ones(len(feature_columns))
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    draw = np.random.default_rng(seed).normal(size=(n, len(feature_columns)))
    table = pd.DataFrame(mean + NOISE_SHIFT * sd + NOISE_SD_FACTOR * sd * draw, columns=feature_columns)
    table.insert(0, "sample_id", [f"noise-{i}" for i in range(n)])
    return table


def copy_control(train: pd.DataFrame, n: int, seed: int) -> np.ndarray:
    """Row positions of ``n`` training rows to copy (each row once before any repeats).

    Returns positions rather than rows so features and patches are copied alike.
    """
    if len(train) == 0:
        return np.zeros(0, dtype=int)
    rng = np.random.default_rng(seed)
    repeats = -(-n // len(train))
    return np.concatenate([rng.permutation(len(train)) for _ in range(repeats)])[:n]
