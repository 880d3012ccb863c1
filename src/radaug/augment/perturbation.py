"""Perturbation chain for feature robustness (Zwanenburg et al. 2019, doi:10.1038/s41598-018-36938-4).

Each real case is perturbed ``n`` times by a chain of sub-voxel translation,
ROI volume adaptation (growth or shrinkage), contour randomisation and noise
addition (Gaussian in HU for CT, Rician at a target SNR for MR). Features of the
perturbed cases give each feature's intraclass correlation across perturbations
(:mod:`radaug.validate.invariance`).
"""

from __future__ import annotations

import numpy as np

from ..preprocess import CT_AIR_HU
from .chain import RandomChain
from .contour_randomisation import RandomContourRandomisation
from .gaussian_noise import RandomGaussianNoise
from .rician_noise import RandomRicianNoise
from .translation import RandomTranslation
from .volume_adaptation import RandomVolumeAdaptation


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
