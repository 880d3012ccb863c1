import numpy as np
import yaml

from radaug.augment import build_perturbation, perturb_case, perturbation_seed
from radaug.config import validate_config

from ..conftest import REPO
from .augment_cases import disc_case


def _options():
    return validate_config(yaml.safe_load((REPO / "config/smoke.yaml").read_text()))["perturbation"]


def test_ct_chain_has_the_four_zwanenburg_perturbations():
    image, mask = disc_case((32, 32), radius=6)
    results = perturb_case(build_perturbation(_options(), "CT"), image, mask, (1, 1), n=3, seed=5)
    assert len(results) == 3
    assert [r["transform"] for r in results[0].chain] == [
        "Affine", "VolumeAdaptation", "ContourRandomisation", "GaussianNoise", "NormaliseIntensity"]
    assert not np.array_equal(results[0].mask, results[1].mask)  # perturbations differ from each other
    again = perturb_case(build_perturbation(_options(), "CT"), image, mask, (1, 1), n=3, seed=5)
    for a, b in zip(results, again):
        np.testing.assert_array_equal(a.image, b.image)


def test_mr_uses_rician_noise():
    image, mask = disc_case((16, 16), radius=4, background=0.0, body=50.0, value=200.0)
    chain = build_perturbation(_options(), "MR")
    assert perturb_case(chain, image, mask, (1, 1), n=1, seed=0)[0].chain[-2]["transform"] == "RicianNoise"


def test_seeds_depend_on_case_and_study_seed_only():
    assert perturbation_seed(0, "a") == perturbation_seed(0, "a")
    assert len({perturbation_seed(0, "a"), perturbation_seed(0, "b"), perturbation_seed(1, "a")}) == 3
