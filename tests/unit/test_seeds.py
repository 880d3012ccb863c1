"""radaug.seeds: every named stream keeps the values of the ad-hoc key it replaced, and no two share a key.

The pinned values were computed with the code before the streams were gathered
(``np.random.SeedSequence(key).generate_state(...)`` or
``np.random.default_rng(key).integers(2**31 - 1)`` on the old keys), so a
changed layout, which would change every output drawn from it, fails here.
"""
import itertools

import numpy as np
import pytest

from radaug.seeds import SHARED_KEYS, STREAMS, Tag, Text, split_random_state, stream_key, stream_rng, stream_seed, \
    stream_seeds

# (stream, coordinates, first integers(2**31 - 1) of its generator under study seed 7), pinned from the old code
RNG_VALUES = [
    ("classical_parents", {"class_index": 1, "repeat": 1, "fold": 2}, 1709871651),
    ("oversample", {"repeat": 1, "fold": 2}, 1477753205),
    ("smote", {"repeat": 1, "fold": 2}, 839709177),
    ("baseline_split", {"split": 3}, 1563192034),
    ("baseline_subsample", {"split": 3, "size": 5, "n_candidate": 9, "n_b": 6}, 1447424665),
    ("null_tested", {"n_train": 5, "n_candidate": 9}, 1343805329),
    ("null_permutation", {"draw": 3}, 495190639),
    ("null_split", {"draw": 3}, 711331015),
    ("power_defect", {"draw": 3, "size_milli": 250}, 1517150623),
    ("power_defect_image", {"draw": 3, "size_milli": 250}, 1574932442),  # new streams: pinned when added
    ("label_other_halves", {"n": 30}, 1435759994),
    ("null_missing_p", {"gate": "detection_auc", "cell": "0123abcd"}, 710767783),
    ("phantom_domain", {"class_index": 1, "k": 4}, 958326114),
    ("study", {}, 2029167940),
]

# (stream, coordinates, stream_seed under study seed 7), pinned from the old functions
SEED_VALUES = [
    ("training", {"repeat": 1, "fold": 2}, 1734722684),  # generative.training.training_seed(7, 1, 2)
    ("selection", {"repeat": 1, "fold": 2}, 919680490),  # generative.training.selection_seed(7, 1, 2)
    ("perturbation", {"case_id": "case-3"}, 2886518704),  # augment.perturbation.perturbation_seed
    ("classical_sample", {"fold_key": "r1f2", "class_index": 1, "k": 4}, 1610578265),  # augmentation_seed
    ("shuffle", {"case_id": "case-3"}, 1367024894),  # validate.controls.shuffle_seed
]


@pytest.mark.parametrize("name, coords, expected", RNG_VALUES)
def test_generator_streams_keep_their_old_values(name, coords, expected):
    assert stream_rng(name, 7, **coords).integers(2**31 - 1) == expected


@pytest.mark.parametrize("name, coords, expected", SEED_VALUES)
def test_seed_streams_keep_their_old_values(name, coords, expected):
    assert stream_seed(name, 7, **coords) == expected


def test_generator_sample_seeds_keep_their_old_values():
    # sampling.sample_seeds(7, "r1f2", "cvae", 1, 3, 0)
    seeds = stream_seeds("generator_sample", 7, 3, fold_key="r1f2", model="cvae", class_index=1, attempt=0)
    assert seeds.tolist() == [3525612932, 325741906, 2674695400] and seeds.dtype == np.int64


def test_the_study_stream_is_the_study_seed():
    """The bootstrap, the Br35H draw and the phantom's spawn root used ``default_rng(seed)``/``SeedSequence(seed)``."""
    assert stream_rng("study", 7).integers(2**31 - 1) == np.random.default_rng(7).integers(2**31 - 1)
    spawned = np.random.SeedSequence(stream_key("study", 7)).spawn(2)[1].generate_state(2)
    assert (spawned == np.random.SeedSequence(7).spawn(2)[1].generate_state(2)).all()


def test_wrappers_are_the_streams():
    from radaug.augment.classical import augmentation_seed
    from radaug.augment.perturbation import perturbation_seed
    from radaug.generative.training import selection_seed, training_seed
    from radaug.sampling import sample_seeds
    from radaug.validate.controls import shuffle_seed

    assert training_seed(7, 1, 2) == 1734722684 and selection_seed(7, 1, 2) == 919680490
    assert sample_seeds(7, "r1f2", "cvae", 1, 3, 0).tolist() == [3525612932, 325741906, 2674695400]
    assert perturbation_seed(7, "case-3") == 2886518704 and shuffle_seed(7, "case-3") == 1367024894
    assert augmentation_seed(7, "r1f2", 1, 4) == 1610578265
    assert split_random_state(7, 2) == 9


def test_controls_no_longer_take_the_selection_seed():
    """The collision of issue 19: the controls' key was [seed, repeat, fold, class_index]."""
    halves, noise = stream_seeds("controls", 7, 2, repeat=1, fold=2, class_index=1)
    old = np.random.SeedSequence([7, 1, 2, 1]).generate_state(2).tolist()
    assert old[0] == stream_seed("selection", 7, repeat=1, fold=2)  # what the old key collided with
    assert halves not in old and noise not in old
    assert stream_seeds("controls", 7, 2, repeat=1, fold=2, class_index=1).tolist() == [halves, noise]


def _coordinate_values(part):
    name = part if isinstance(part, str) else part.name
    return {"fold_key": ["r0f0", "r0f1", "r1f2"], "model": ["cvae", "dcgan", "ddpm", "cyclegan"],
            "case_id": ["c0", "c1", "P0001-1"], "size_milli": [0, 250, 1000]}.get(name, range(4))


def _pool(key):
    """What SeedSequence makes of a key (it pads with zeros: [s, r, f] and [s, r, f, 0] are one stream)."""
    return tuple(np.random.SeedSequence(key).generate_state(8).tolist())


def test_no_two_streams_share_a_key():
    owners: dict[tuple, set[str]] = {}
    for seed in (0, 7, 42):
        for name, layout in STREAMS.items():
            coords = [p if isinstance(p, str) else p.name for p in layout if isinstance(p, (str, Text))]
            for values in itertools.product(*(_coordinate_values(p) for p in layout if isinstance(p, (str, Text)))):
                key = stream_key(name, seed, **dict(zip(coords, values)))
                owners.setdefault(_pool(key), set()).add(name)
    shared = {frozenset(pair) for names in owners.values() for pair in itertools.combinations(sorted(names), 2)}
    assert shared <= SHARED_KEYS, shared - SHARED_KEYS
    assert not any("controls" in pair for pair in shared)


# Layouts kept from before the streams were named, without a tag or constant of their own.
UNTAGGED = {"training", "selection", "oversample", "smote", "classical_parents", "baseline_split",
            "baseline_subsample", "generator_sample", "study"}


def test_every_new_stream_has_a_tag_or_constant():
    for name, layout in STREAMS.items():
        if name not in UNTAGGED:
            assert any(isinstance(p, (Tag, int)) for p in layout), f"stream '{name}' needs a Tag of its own"


def test_bad_coordinates_name_the_stream():
    with pytest.raises(ValueError, match="'training' takes the coordinates"):
        stream_seed("training", 7, repeat=0)
    with pytest.raises(ValueError, match="unknown random stream 'trainig'"):
        stream_seed("trainig", 7)
