"""Perturbation chain for feature robustness (Zwanenburg et al. 2019, doi:10.1038/s41598-018-36938-4).

Each real case is perturbed ``n`` times by a chain of sub-voxel translation,
ROI volume adaptation (growth or shrinkage), contour randomisation and noise
addition (Gaussian in HU for CT, Rician at a target SNR for MR). Features of the
perturbed cases give each feature's intraclass correlation across perturbations
(:mod:`radaug.validate.invariance`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import RadaugError
from ..preprocess import CT_AIR_HU
from .chain import RandomChain
from .contour_randomisation import RandomContourRandomisation
from .gaussian_noise import RandomGaussianNoise
from .rician_noise import RandomRicianNoise
from .translation import RandomTranslation
from .volume_adaptation import RandomVolumeAdaptation

log = logging.getLogger(__name__)


def build_perturbation(options: dict, modality: str, normalisation: str | None = None) -> RandomChain:
    """The perturbation chain from the ``perturbation`` config section (``normalisation``: as the patches')."""
    padding = CT_AIR_HU if modality == "CT" else None
    spatial = []
    if options["translation_voxels"]:
        spatial.append(RandomTranslation(options["translation_voxels"], "linear", padding))
    if options["volume_change"]:
        spatial.append(RandomVolumeAdaptation(options["volume_change"]))
    if options["contour_amplitude_mm"]:
        spatial.append(RandomContourRandomisation(options["contour_amplitude_mm"], options["contour_smoothness_mm"]))
    photometric = []
    if modality == "CT" and options["noise_sd_hu"]:
        photometric.append(RandomGaussianNoise(options["noise_sd_hu"]))
    if modality != "CT" and options["noise_snr"]:
        photometric.append(RandomRicianNoise(options["noise_snr"]))
    return RandomChain(spatial, photometric, modality=modality, normalisation=normalisation)


def perturbation_seed(seed: int, case_id: str) -> int:
    """One seed per case, derived from the study seed: a case's perturbations do not depend on the fold."""
    key = [seed, *map(ord, "perturbation"), *map(ord, str(case_id))]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


def perturb_case(chain: RandomChain, image: np.ndarray, mask: np.ndarray, spacing, *, n: int, seed: int):
    """``n`` perturbed versions of one case, drawn in turn from ``numpy.random.default_rng(seed)``.

    Returns a list of :class:`~radaug.augment.chain.Augmented`.
    """
    rng = np.random.default_rng(seed)
    return [chain(image, mask, spacing, rng) for _ in range(n)]


def perturbed_features(extractor, cases: pd.DataFrame, images: np.ndarray, masks: np.ndarray, spacing, *,
                       options: dict, seed: int, repeat: int | None = None, fold: int | None = None):
    """PyRadiomics features of ``options["n"]`` perturbations of every case, for one fold's patches.

    ``cases`` (the batch's case table: ``case_id``, ``label``, ``modality``, ``normalisation``)
    is aligned with ``images`` and ``masks``; ``repeat`` and ``fold`` mark the rows (None:
    the study's patches as stored). Every case's draws come from
    :func:`perturbation_seed`, so they are the same in every fold. Rows are
    ``perturbed`` samples of arm ``perturbation`` with ids
    :func:`radaug.validate.invariance.perturbation_sample_id`.

    Returns
    -------
    features, failures
        As :func:`radaug.features.extract_patches`.

    Raises
    ------
    RadaugError
        If perturbing a case fails (the message names it).
    """
    from ..features import extract_patches
    from ..validate.invariance import perturbation_sample_id

    out_images, out_masks, meta = [], [], []
    for i, case in enumerate(cases.itertuples(index=False)):
        chain = build_perturbation(options, case.modality, case.normalisation)
        try:
            results = perturb_case(chain, images[i], masks[i], spacing, n=options["n"],
                                   seed=perturbation_seed(seed, case.case_id))
        except (RuntimeError, ValueError) as exc:
            raise RadaugError(f"case '{case.case_id}': perturbation failed: {exc}") from exc
        for j, result in enumerate(results):
            out_images.append(result.image)
            out_masks.append(result.mask)
            meta.append({"sample_id": perturbation_sample_id(case.case_id, j), "case_id": case.case_id,
                         "source": "perturbed", "arm": "perturbation",
                         "repeat": pd.NA if repeat is None else repeat, "fold": pd.NA if fold is None else fold,
                         "label": case.label})
    return extract_patches(extractor, out_images, out_masks, spacing, pd.DataFrame(meta))


def batch_perturbed_features(extractor, cases: pd.DataFrame, arrays: dict, *, index: pd.DataFrame,
                             folds: pd.DataFrame | None, options: dict, seed: int):
    """Features of ``options["n"]`` perturbations of every real case of one batch (rule ``perturb_features``).

    ``arrays`` is the batch archive (``case_id``, ``image``, ``mask``, aligned with
    ``cases``). With per-fold histogram standardisation (``preprocess.normalisation:
    nyul``; ``folds`` given) every fold's standardised patches are perturbed (the same
    draws) and measured, rows marked with the fold (:func:`perturbed_features`).

    Returns
    -------
    features, failures
        Of every fold, joined (:func:`radaug.features.concat_extractions`).
    """
    from ..features import concat_extractions, parse_spacing
    from ..standardise import fold_images

    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    parts = [perturbed_features(extractor, cases, fold_patches, arrays["mask"], spacing, options=options, seed=seed,
                                repeat=repeat, fold=fold)
             for repeat, fold, fold_patches in fold_images(index, folds, arrays["case_id"], arrays["image"])]
    log.info("%d cases x %d perturbations x %d fold(s)", len(cases), options["n"], len(parts))
    return concat_extractions(parts)
