"""Named random streams: every seed radaug derives from ``study.seed`` comes from here.

A stream is a name and a *key layout*: the list of integers handed to
:class:`numpy.random.SeedSequence` (or to :func:`numpy.random.default_rng`, which
builds the same ``SeedSequence``) for one purpose and one set of coordinates
(repeat, fold, class, case, draw, ...). The layouts below reproduce, value for
value, the ad-hoc keys the modules used before they were gathered here, so every
output of an existing study is unchanged (``tests/unit/test_seeds.py`` pins one
value per stream); the one exception is the controls' streams, which had shared
their keys with the generator's training and selection seeds (see below).

=====================  ==================================================  ===================================
stream                 key (``seed`` = study seed)                          used by
=====================  ==================================================  ===================================
``training``           ``[seed, repeat, fold]``                             generator training (``generative.training``)
``selection``          ``[seed, repeat, fold, 1]``                          in-fold selection holdout and codes
``generator_sample``   ``[seed, *fold_key, *model, class_index, attempt]``  per-sample seeds of a generator (``sampling``)
``classical_parents``  ``[seed, class_index, repeat, fold]``                 parent order of the classical arm
``classical_sample``   ``[seed, *fold_key, *"classical", class_index, k]``  one classical sample's chain
``perturbation``       ``[seed, *"perturbation", *case_id]``                a case's perturbations
``shuffle``            ``[seed, *"shuffle", *case_id]``                     a case's voxel-shuffled control
``controls``           ``[seed, *"controls", repeat, fold, class_index]``  two seeds: the positive control's
                                                                            halves, the noise control
``oversample``         ``[seed, repeat, fold]``                             ``arms.oversample`` row draws
``smote``              ``[seed, repeat, fold, 1]``                          ``arms.smote``'s ``random_state``
``baseline_split``     ``[seed, split]``                                    real-vs-real baseline halves
``baseline_subsample`` ``[seed, split, size, n_candidate, n_b]``            its size-matched subsamples (the
                                                                            baseline_split key, extended by
                                                                            ``summary._size_matched_draws``)
``null_tested``        ``[seed, 31337, n_train, n_candidate]``              null rule's candidate subsample
``null_permutation``   ``[seed, 6121, draw]``                               permutation null draws
``null_split``         ``[seed, 7919, draw]``                               real-vs-real split null draws
``null_exchange``      ``[seed, 7877, draw]``                               holdout gates' exchange null draws
``power_defect``       ``[seed, 104729, draw, size_milli]``                 power: a defect's draw
``null_missing_p``     ``[seed, *"null_missing_p", *gate, *cell]``          min-P: stand-in p-values of a gate
                                                                            not computed in some null draws
                                                                            (``cell``: a digest of its draws)
``phantom_domain``     ``[seed, 0xD0A1, class_index, k]``                   phantom scanner of a patient
``study``              ``[seed]``                                           the study seed itself: the
                                                                            evaluation bootstrap, the Br35H
                                                                            draw, the phantom's spawn root
=====================  ==================================================  ===================================

``*name`` stands for the Unicode code points of a text (``map(ord, name)``); a
fold key is its text ``r<repeat>f<fold>``. Scikit-learn estimators take an
integer ``random_state``; the split's is :func:`split_random_state`.

Collisions. ``SeedSequence`` pads keys with zeros, so ``[s, r, f]`` and
``[s, r, f, 0]`` are one stream. The controls' keys were ``[seed, repeat, fold,
class_index]``: class 1 was the selection seed's key and class 0 the training
seed's; they now carry the ``"controls"`` tag (this changed the positive and
noise controls' rows, hence the validation tables of the control arms, once).
The keys still shared (thirteen pairs, among ``training``, ``selection``,
``oversample``, ``smote``, ``classical_parents``, ``baseline_split`` and ``study``) are listed in
:data:`SHARED_KEYS`; ``tests/unit/test_seeds.py`` enumerates every
stream over a grid of coordinates and fails on any other shared key.

To add a stream: a new name in :data:`STREAMS` whose layout starts with a text
tag of its own (``Tag("name")``), so it cannot meet another, and a pinned value
in the test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tag:
    """A fixed text in a key, entered as its code points."""

    text: str


@dataclass(frozen=True)
class Text:
    """A text coordinate (a fold key, a model or case id), entered as its code points."""

    name: str


#: name -> key layout after the study seed: a coordinate name (an integer), a
#: :class:`Text` coordinate, a :class:`Tag` or an integer constant.
STREAMS: dict[str, tuple] = {
    "training": ("repeat", "fold"),
    "selection": ("repeat", "fold", 1),
    "generator_sample": (Text("fold_key"), Text("model"), "class_index", "attempt"),
    "classical_parents": ("class_index", "repeat", "fold"),
    "classical_sample": (Text("fold_key"), Tag("classical"), "class_index", "k"),
    "perturbation": (Tag("perturbation"), Text("case_id")),
    "shuffle": (Tag("shuffle"), Text("case_id")),
    "controls": (Tag("controls"), "repeat", "fold", "class_index"),
    "oversample": ("repeat", "fold"),
    "smote": ("repeat", "fold", 1),
    "baseline_split": ("split",),
    "baseline_subsample": ("split", "size", "n_candidate", "n_b"),
    "null_tested": (31337, "n_train", "n_candidate"),
    "null_permutation": (6121, "draw"),
    "null_split": (7919, "draw"),
    "null_exchange": (7877, "draw"),
    "power_defect": (104729, "draw", "size_milli"),
    "power_defect_image": (Tag("power_defect_image"), "draw", "size_milli"),
    "label_other_halves": (Tag("label_other_halves"), "n"),
    "null_missing_p": (Tag("null_missing_p"), Text("gate"), Text("cell")),
    "phantom_domain": (0xD0A1, "class_index", "k"),
    "study": (),
}

#: Pairs of streams that share a key at some coordinates, kept so existing outputs
#: do not change. ``SeedSequence`` pads keys with zeros, so the study seed ``[s]`` is
#: also ``[s, 0, 0]`` (training and ``oversample`` of fold r0f0) and
#: ``classical_parents``' ``[s, class, repeat, fold]`` with ``fold = 0`` is the
#: training key of repeat ``class``, fold ``repeat``; ``baseline_split``'s ``[s, split]``
#: is the training key of repeat ``split``, fold 0. Each pair serves jobs that never
#: use both draws together (a generator's training vs the ``oversample`` arm, its
#: selection vs ``smote``, the evaluation bootstrap vs a fold's training, validation's
#: real-vs-real halves vs a fold's training), so no
#: result is drawn twice from one stream; a new stream must not join this list.
SHARED_KEYS: frozenset[frozenset[str]] = frozenset(map(frozenset, [
    ("training", "oversample"), ("selection", "smote"),
    ("classical_parents", "training"), ("classical_parents", "oversample"),
    ("classical_parents", "selection"), ("classical_parents", "smote"),
    ("study", "training"), ("study", "oversample"), ("study", "classical_parents"),
    ("baseline_split", "training"), ("baseline_split", "oversample"), ("baseline_split", "classical_parents"),
    ("baseline_split", "study"),
]))


def stream_key(name: str, study_seed: int, **coords) -> list[int]:
    """The ``SeedSequence`` key of stream ``name`` at ``coords`` (see the module's table).

    >>> stream_key("training", 7, repeat=0, fold=2)
    [7, 0, 2]
    >>> stream_key("shuffle", 7, case_id="c1")
    [7, 115, 104, 117, 102, 102, 108, 101, 99, 49]
    """
    try:
        layout = STREAMS[name]
    except KeyError:
        raise ValueError(f"unknown random stream '{name}'; the streams are {sorted(STREAMS)}") from None
    needed = {p if isinstance(p, str) else p.name for p in layout if isinstance(p, (str, Text))}
    if set(coords) != needed:
        raise ValueError(f"random stream '{name}' takes the coordinates {sorted(needed)}, got {sorted(coords)}")
    key = [int(study_seed)]
    for part in layout:
        if isinstance(part, Tag):
            key.extend(map(ord, part.text))
        elif isinstance(part, Text):
            key.extend(map(ord, str(coords[part.name])))
        elif isinstance(part, str):
            key.append(int(coords[part]))
        else:
            key.append(int(part))
    return key


def stream_rng(name: str, study_seed: int, **coords) -> np.random.Generator:
    """A fresh :func:`numpy.random.default_rng` of stream ``name`` at ``coords``."""
    return np.random.default_rng(stream_key(name, study_seed, **coords))


def stream_seeds(name: str, study_seed: int, count: int, **coords) -> np.ndarray:
    """``count`` independent 32-bit seeds (as int64) of stream ``name`` at ``coords``."""
    key = stream_key(name, study_seed, **coords)
    return np.random.SeedSequence(key).generate_state(count, dtype=np.uint32).astype(np.int64)


def stream_seed(name: str, study_seed: int, **coords) -> int:
    """One 32-bit integer seed of stream ``name`` at ``coords`` (for a model, a transform, a split).

    >>> stream_seed("training", 7, repeat=0, fold=2) == stream_seed("training", 7, repeat=0, fold=2)
    True
    """
    return int(stream_seeds(name, study_seed, 1, **coords)[0])


def split_random_state(study_seed: int, repeat: int) -> int:
    """The ``random_state`` of repeat ``repeat``'s fold assignment (scikit-learn's ``StratifiedGroupKFold``)."""
    return int(study_seed) + int(repeat)
