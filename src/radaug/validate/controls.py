"""Positive and negative controls of the validation stage.

A gate means something only if it fails data that is obviously wrong and passes
data that is obviously right. The validation stage therefore scores, per fold
and class, five control "arms" next to the real ones:

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
* ``control_negative_shuffle``: an **image-space** control. Every real case's
  ROI voxels are permuted once per study (:func:`shuffle_roi_voxels`, seed
  from the study seed and the case id) and its PyRadiomics features extracted
  with the study's settings; a fold's candidates are the shuffled versions of
  its training cases. The permutation keeps the ROI (shape features), its
  intensity histogram (first-order features, and gray-level-only ones such as
  GLDM GrayLevelVariance: 31 of the 102 features of the 2D CT settings came
  out unchanged) and everything outside the ROI; it destroys the spatial
  arrangement, so every texture matrix (GLCM, GLRLM, GLSZM, GLDM, NGTDM)
  changes. The shuffled rows therefore leave the real feature manifold: the
  manifold gates must fail it (:data:`SHUFFLE_GATES`). The same safeguard
  exposed a radiomic signature as a volume surrogate (Welch et al. 2019,
  doi:10.1016/j.radonc.2018.10.027).

No single negative control can fail every gate (copies are perfectly faithful,
noise is perfectly novel), hence four, each with the gates it must fail
(:data:`EXPECTED_FAILURES`). Not covered by a feature-space control: ``recall``
(spread-out noise covers the real rows; its failure mode is mode collapse, see
the phantom tests) and ``implausible_share`` (image checks; unit-tested on
patches).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radaug.seeds import stream_seed
from radaug.validate.registry import must_fail

CONTROL_ARMS = ("control_positive", "control_negative_noise", "control_negative_copy",
                "control_negative_label", "control_negative_shuffle")
"""Names of the control arms in ``validation/summary.csv``."""

NOISE_SD_FACTOR = 3.0
"""Standard deviation of the noise control, in real training standard deviations."""

NOISE_SHIFT = 1.0
"""Mean shift of the noise control, in real training standard deviations."""

FIDELITY_GATES = must_fail("control_negative_noise")
"""Gates the noise control must fail (``strong_pairs_kept`` and the means-only Fréchet too)."""

MEMORIZATION_GATES = must_fail("control_negative_copy")
"""Gates the copy control must fail."""

SHUFFLE_GATES = must_fail("control_negative_shuffle")
"""Gates the voxel-shuffled control must fail: those that failed it in every fold and class.

Measured on three cohorts with the 2D settings (``workflow/resources/radiomics_2d_*.yaml``):
the phantom (60 training cases of a class; ``tests/unit/test_validate_phantom.py``),
the smoke study (``config/smoke.yaml``: 8-16 training cases per fold and class; PRDC is
``insufficient`` below 10) and the default Br35H study (64 and 320 training cases per
fold and class, 5 folds). Coverage fell to 0-0.38 and density to 0-0.25 against real
baselines of 0.94-1 and 0.48-1.25 in every judged fold and class of all three.

Seen failing, but not required:

* ``ks_fdr``, ``frechet_means_distance`` and ``detection_auc`` failed on the phantom
  and in every fold and class of Br35H (KS: 50-61% of the features differ; detection
  AUC 0.99-1), but not in the smoke study's small classes (8-9 training cases, halves
  of 4): a real shift that small samples cannot show. ``recall`` failed on Br35H
  (0.03-0.16) and on one phantom draw of two.
* ``image_memorization_ratio`` failed on the phantom and the smoke study (0.03:
  outside the ROI the patch *is* its training parent) but passed on Br35H (about 1),
  whose derived ROI fills half of the patch. It measures how much of the patch the
  ROI covers, not the control, so it is not expected either way.

Not expected to fail: the correlation gates (``correlation_distance`` and its Spearman
twin failed in 2 of Br35H's 10 folds and classes, passed elsewhere) and
``strong_pairs_kept`` (passed everywhere), since shape and first-order features and
their correlations are untouched; the feature-space memorization gates (a shuffled case
is not a copy in feature space; they passed on the phantom and Br35H and in all but one
8-case smoke class) and ``implausible_share`` (ROI and intensity range kept).
"""

EXPECTED_FAILURES = {control: must_fail(control) for control in CONTROL_ARMS if control != "control_positive"}
"""Per negative control, the gates that must fail it: the registry entries naming it in ``must_fail``
(:data:`radaug.validate.registry.METRICS`; adding a gate to a control is one word there)."""


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


def shuffle_roi_voxels(image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    r"""Permute the intensities of the voxels inside the ROI; leave everything else as is.

    A random permutation :math:`\pi` of the ROI voxels :math:`R = \{v : m_v \neq 0\}`,
    drawn from ``numpy.random.default_rng(seed)``, gives
    :math:`x'_v = x_{\pi(v)}` for :math:`v \in R` and :math:`x'_v = x_v` outside.
    The ROI's intensity histogram (hence every first-order feature) and its shape
    (every shape feature) are kept exactly; its spatial structure (texture) is
    destroyed. Works on 2D and 3D arrays alike. Welch et al. used such images with
    randomly permuted voxels, "images without meaningful texture", to show that a
    published radiomic signature was a surrogate for tumour volume (Radiother Oncol
    130:2-9, 2019, doi:10.1016/j.radonc.2018.10.027).

    Parameters
    ----------
    image
        Patch intensities, any shape.
    mask
        ROI of the same shape; non-zero voxels are inside.
    seed
        Seed of the permutation; the same seed gives the same image.

    Returns
    -------
    numpy.ndarray
        A new array of ``image``'s shape and dtype; ``image`` and ``mask`` are not
        changed. An empty ROI gives an unchanged copy.

    Raises
    ------
    ValueError
        If ``image`` and ``mask`` differ in shape.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.shape != mask.shape:
        raise ValueError(f"image shape {image.shape} and mask shape {mask.shape} differ")
    inside = mask != 0
    shuffled = image.copy()
    shuffled[inside] = np.random.default_rng(seed).permutation(image[inside])
    return shuffled


def shuffle_seed(seed: int, case_id: str) -> int:
    """Seed of one case's shuffled control, from the study seed and the case id (not its batch or fold)."""
    return stream_seed("shuffle", seed, case_id=case_id)


def shuffled_sample_id(case_id: str) -> str:
    """Sample id of a case's shuffled control (its ``case_id`` column keeps the parent case)."""
    return f"shuffled-{case_id}"


def shuffle_control_patches(case_ids, images: np.ndarray, masks: np.ndarray,
                            seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shuffled control of every real patch: :func:`shuffle_roi_voxels` with :func:`shuffle_seed`.

    Parameters
    ----------
    case_ids, images, masks
        Real cases and their ``(N, *patch)`` patches, as
        :func:`radaug.preprocess.load_patches` returns them.
    seed
        Study seed.

    Returns
    -------
    sample_ids, images, masks
        :func:`shuffled_sample_id` of each case, the shuffled images and the
        unchanged masks, in input order. Each case's result depends only on the
        study seed, its id and its patch, so the batching of the cases does not matter.
    """
    case_ids = [str(c) for c in case_ids]
    if len(case_ids) != len(images) or len(images) != len(masks):
        raise ValueError(f"{len(case_ids)} case ids, {len(images)} images and {len(masks)} masks")
    shuffled = [shuffle_roi_voxels(image, mask, shuffle_seed(seed, case_id))
                for case_id, image, mask in zip(case_ids, images, masks)]
    return (np.array([shuffled_sample_id(c) for c in case_ids], dtype=str),
            np.stack(shuffled) if shuffled else np.asarray(images).copy(), np.asarray(masks))


def shuffled_control_features(extractor, case_ids, labels, images: np.ndarray, masks: np.ndarray, spacing,
                              seed: int, *, threads: int = 1, repeat: int | None = None,
                              fold: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PyRadiomics features of the voxel-shuffled control of real cases (``control_negative_shuffle``).

    Parameters
    ----------
    extractor
        The study's extractor (:func:`radaug.features.make_extractor`).
    case_ids, labels
        The real cases and their classes, in the order of the patches.
    images, masks, spacing
        Their ``(N, *patch)`` patches and the patch spacing, as for
        :func:`radaug.features.extract_patches`.
    seed
        Study seed (see :func:`shuffle_control_patches`).
    threads
        ITK threads of the extraction.
    repeat, fold
        The fold whose standardised patches these are (``preprocess.normalisation:
        nyul``), written to the rows; None (empty) for the study's one set.

    Returns
    -------
    features, failures
        As :func:`radaug.features.extract_patches`: one row per case with
        ``sample_id`` from :func:`shuffled_sample_id`, the parent ``case_id`` and
        its ``label``, ``source`` ``control`` and ``arm`` ``control_negative_shuffle``.
    """
    from radaug.features import extract_patches

    sample_ids, shuffled, masks = shuffle_control_patches(case_ids, images, masks, seed)
    meta = pd.DataFrame({"sample_id": sample_ids, "case_id": [str(c) for c in case_ids], "source": "control",
                         "arm": "control_negative_shuffle", "repeat": pd.NA if repeat is None else repeat,
                         "fold": pd.NA if fold is None else fold, "label": list(labels)})
    return extract_patches(extractor, shuffled, masks, spacing, meta, threads=threads)

