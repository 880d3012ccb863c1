"""Classical augmentation and perturbations with enforced physical plausibility.

One transform per module, TorchIO style: ``RandomX`` samples parameters from a
seeded generator and returns its deterministic twin ``X``, whose record
re-creates the output exactly (:func:`apply_chain`).
"""

from .affine import Affine, RandomAffine, affine_matrix
from .base import RandomTransform, Transform, transform_from_record
from .bias_field import BiasField, RandomBiasField
from .chain import Augmented, NormaliseIntensity, RandomChain, apply_chain, check_ct_anchors
from .classical import (AUGMENTED_COLUMNS, augment_fold, build_augmentation, photometric_settings,
                        rejected_totals, spatial_augmentation)
from .contour_randomisation import ContourRandomisation, RandomContourRandomisation
from .elastic_deformation import ElasticDeformation, RandomElasticDeformation, jacobian_determinant
from .gain import Gain, RandomGain
from .gaussian_blur import GaussianBlur, RandomGaussianBlur
from .gaussian_noise import GaussianNoise, RandomGaussianNoise
from .perturbation import build_perturbation, perturb_case, perturbation_seed
from .rician_noise import RandomRicianNoise, RicianNoise, rician_mean
from .translation import RandomTranslation
from .volume_adaptation import RandomVolumeAdaptation, VolumeAdaptation

__all__ = [
    "AUGMENTED_COLUMNS", "Affine", "Augmented", "BiasField", "ContourRandomisation", "ElasticDeformation", "Gain",
    "GaussianBlur", "GaussianNoise", "NormaliseIntensity", "RandomAffine", "RandomBiasField", "RandomChain",
    "RandomContourRandomisation", "RandomElasticDeformation", "RandomGain", "RandomGaussianBlur",
    "RandomGaussianNoise", "RandomRicianNoise", "RandomTransform", "RandomTranslation", "RandomVolumeAdaptation",
    "RicianNoise", "Transform", "VolumeAdaptation", "affine_matrix", "apply_chain", "augment_fold",
    "build_augmentation", "build_perturbation", "check_ct_anchors", "jacobian_determinant", "perturb_case",
    "perturbation_seed", "photometric_settings", "rejected_totals", "rician_mean", "spatial_augmentation",
    "transform_from_record",
]
