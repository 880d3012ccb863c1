"""PyRadiomics feature extraction on patches (real, augmented and synthetic alike).

Patches are handed to PyRadiomics as in-memory SimpleITK images, so there is no
per-sample file I/O and no per-sample process start. A sample whose extraction
fails (e.g. a degenerate synthetic mask) is recorded with the reason instead of
stopping the job; the caller decides how many failures are tolerable.

ITK filters (PyRadiomics' cropping, mask checks) run with as many threads as the job
was given, one by default: on patch-sized images a thread pool costs more than it
saves (about 15% of the extraction time on 64x64 patches), and parallel jobs each
spawning one thread per core would oversubscribe the cores Snakemake shares out.
The thread count does not change any feature value.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, RadaugError

META_COLUMNS = ("sample_id", "case_id", "source", "arm", "repeat", "fold", "label")
FAILURE_COLUMNS = ("sample_id", "source", "arm", "repeat", "fold", "reason")


def make_extractor(params_file: str | Path):
    """A PyRadiomics extractor from a parameter YAML; PyRadiomics' own validation applies."""
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)  # its console handler
    logging.getLogger("radiomics").setLevel(logging.WARNING)  # and what propagates to the job log
    params_file = Path(params_file)
    if not params_file.is_file():
        raise ConfigError(f"PyRadiomics parameter file {params_file} does not exist (config key 'features.params').")
    try:
        return featureextractor.RadiomicsFeatureExtractor(str(params_file))
    except Exception as exc:  # PyRadiomics raises pykwalify/ValueError types for bad params
        raise ConfigError(
            f"PyRadiomics rejects the parameter file {params_file} (config key 'features.params'): {exc}"
        ) from None


@contextmanager
def itk_threads(threads: int):
    """Set SimpleITK's default number of threads for filters created inside the block, then restore it."""
    if int(threads) < 1:
        raise ValueError(f"ITK threads must be at least 1, got {threads}")
    import SimpleITK as sitk  # here, not at the top: the table functions serve jobs that never read images

    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def extract_patches(extractor, images: np.ndarray, masks: np.ndarray, spacing, meta: pd.DataFrame,
                    *, threads: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract features of every patch.

    Parameters
    ----------
    extractor
        From :func:`make_extractor`.
    images, masks
        ``(N, *patch)`` arrays; masks binary.
    spacing
        Patch spacing (x, y[, z]) in mm, shared by all patches.
    meta
        ``N`` rows with :data:`META_COLUMNS`, in the order of the arrays.
    threads
        ITK threads for PyRadiomics' image filters (the job's thread count); features
        do not depend on it.

    Returns
    -------
    features, failures
        Rows of :data:`META_COLUMNS` plus one column per ``original_*`` feature,
        and one row per failed sample with the reason.
    """
    if len(meta) != len(images):
        raise ValueError(f"{len(meta)} metadata rows for {len(images)} patches")
    import SimpleITK as sitk

    rows, failures = [], []
    for i, record in enumerate(meta.to_dict("records")):
        image = sitk.GetImageFromArray(np.asarray(images[i], dtype=np.float32))
        mask = sitk.GetImageFromArray(np.asarray(masks[i], dtype=np.uint8))
        image.SetSpacing(tuple(float(s) for s in spacing))
        mask.CopyInformation(image)
        try:
            with itk_threads(threads):
                result = extractor.execute(image, mask)
        except Exception as exc:  # PyRadiomics signals degenerate ROIs with ValueError/AssertionError
            failures.append({**{k: record[k] for k in FAILURE_COLUMNS if k in record},
                             "reason": f"{type(exc).__name__}: {exc}"})
            continue
        features = {k: float(v) for k, v in result.items() if k.startswith("original_")}
        rows.append({**record, **features})
    table = pd.DataFrame.from_records(rows)
    if table.empty:
        table = pd.DataFrame(columns=list(META_COLUMNS))
    return table, pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))


def write_extraction(features: pd.DataFrame, failures: pd.DataFrame, *, features_path, failures_path,
                     max_failed: int, what: str, fix: str) -> None:
    """Write an extraction job's outputs: the failures table, then the features if few enough failed.

    Every feature job (real, synthetic, augmented, perturbed, control) ends this
    way, so they share one tolerance rule and one message.

    Parameters
    ----------
    features, failures
        From :func:`extract_patches`.
    features_path, failures_path
        Output paths (written atomically).
    max_failed
        Failures tolerated (config ``study.max_failed_samples``, or 0).
    what
        What failed, for the message, e.g. ``"synthetic sample(s) of cvae r0f1"``.
    fix
        What the user can do about it, for the message.

    Raises
    ------
    RadaugError
        If more than ``max_failed`` samples failed; the features are then not
        written. The first reasons are in the message: Snakemake removes a failed
        job's outputs, failures table included.
    """
    from .io import write_csv

    write_csv(failures_path, failures)
    if len(failures) > max_failed:
        reasons = "; ".join(f"{r.sample_id}: {r.reason}" for r in failures.head(5).itertuples())
        raise RadaugError(
            f"feature extraction failed for {len(failures)} {what}, more than study.max_failed_samples = "
            f"{max_failed} (first reasons: {reasons}). {fix}"
        )
    write_csv(features_path, features)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Feature columns of a feature table: every column not in :data:`META_COLUMNS`, in table order."""
    return [c for c in table.columns if c not in META_COLUMNS]


def concat_extractions(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ``(features, failures)`` pair from several :func:`extract_patches` results (one per fold).

    A single part is returned as it is, so a once-per-study extraction writes the
    same bytes as before per-fold extraction existed.
    """
    if len(parts) == 1:
        return parts[0]
    features = pd.concat([f for f, _ in parts], ignore_index=True)
    failures = pd.concat([f for _, f in parts], ignore_index=True)
    return features, failures


def fold_rows(table: pd.DataFrame, repeat: int, fold: int) -> pd.DataFrame:
    """The rows of a real-case feature table (real, voxel-shuffled control) that belong to one fold.

    Real features are measured once per study (``repeat`` and ``fold`` empty)
    unless intensities are standardised per fold (``preprocess.normalisation:
    nyul``, :mod:`radaug.standardise`): then the table has one row per case and
    fold, and a fold must see its own. Every consumer of these tables takes a
    fold's rows here.

    Raises
    ------
    RadaugError
        If the table is per fold but has no row of this fold.
    """
    if "fold" not in table or table["fold"].isna().all():
        return table
    rows = table[(table["repeat"] == repeat) & (table["fold"] == fold)]
    if rows.empty:
        raise RadaugError(f"the real-case feature table is per fold (preprocess.normalisation: nyul) but has no "
                          f"row of repeat {repeat}, fold {fold}: extract the real features again")
    return rows


def parse_spacing(text: str) -> tuple[float, ...]:
    return tuple(float(s) for s in str(text).split("x"))
