"""Training a generative model inside one fold: leakage guard, training-input record, seed, loss plot.

The library side of the ``train_generator`` rule, usable without Snakemake:

>>> losses, training_input = fit_in_fold(model, folds=folds, cases=index, repeat=0, fold=1,
...                                      case_ids=ids, images=images, masks=masks, labels=labels,
...                                      label_names=names, steps=1200)  # doctest: +SKIP

:func:`fit_in_fold` refuses (raises :class:`radaug.errors.LeakageError` before any
training step) a training input with a case of the fold's test set, a case sharing a
patient, leakage group or content with one, or a patch array whose content hash equals
a test case's, and returns the training-input record (every case with the sha256 of the
patch the model saw) that the study keeps beside the checkpoint.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd

from radaug.errors import LeakageError
from radaug.io import canonical_json, sha256_array, sha256_bytes
from radaug.seeds import stream_seed
from radaug.splits import check_training_input, fold_cases, fold_key

from .base import GenerativeModel
from .selection import Selection, SelectionOptions, holdout_in_fold


def patch_sha256(image: np.ndarray, mask: np.ndarray) -> str:
    """Content hash of one (image, mask) patch, as ``content_sha256`` in the case index."""
    return sha256_array(np.stack([np.asarray(image, np.float32), np.asarray(mask).astype(np.float32)]))


def training_input_table(case_ids: Sequence[str], label_names: Sequence[str], images: np.ndarray,
                         masks: np.ndarray) -> pd.DataFrame:
    """The training-input record: ``case_id, label, patch_sha256`` of every patch a model saw."""
    return pd.DataFrame({
        "case_id": list(case_ids),
        "label": list(label_names),
        "patch_sha256": [patch_sha256(i, m) for i, m in zip(images, masks)],
    })


def check_training_patches(training_input: pd.DataFrame, folds: pd.DataFrame, cases: pd.DataFrame,
                           repeat: int, fold: int) -> None:
    """Raise :class:`LeakageError` if a training patch has the content of one of the fold's test cases.

    Complements :func:`radaug.splits.check_training_input`, which checks case ids,
    patients and groups: this one checks the arrays actually handed to the model.
    """
    if "content_sha256" not in cases:
        return
    test_ids = fold_cases(folds, repeat, fold, "test")["case_id"]
    test_hashes = set(cases.set_index("case_id").loc[test_ids, "content_sha256"])
    leaked = training_input.loc[training_input["patch_sha256"].isin(test_hashes), "case_id"]
    if len(leaked):
        raise LeakageError(
            f"fold {fold_key(repeat, fold)}: training patch(es) of {list(leaked[:5])} have the content of a "
            "test case; the patches do not belong to the listed case ids"
        )


def training_seed(study_seed: int, repeat: int, fold: int) -> int:
    """The seed of a fold's generator training, derived from the study seed and the fold."""
    return stream_seed("training", study_seed, repeat=repeat, fold=fold)


def fit_in_fold(
    model: GenerativeModel,
    *,
    folds: pd.DataFrame,
    cases: pd.DataFrame,
    repeat: int,
    fold: int,
    case_ids: Sequence[str],
    images: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    selection: SelectionOptions | None = None,
    selection_seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``model`` on training cases of one fold, after checking that none can leak into its test set.

    Parameters
    ----------
    model
        An untrained (or resumable) model.
    folds
        The split table (``case_id, patient_id, group, label, repeat, fold, role``).
    cases
        The case index (``case_id`` and, if known, ``content_sha256`` per case).
    repeat, fold
        The fold.
    case_ids, label_names
        Case id and class name of each patch.
    images, masks, labels
        The patches and integer labels, as for :meth:`GenerativeModel.fit`.
    selection
        In-fold model selection (:mod:`radaug.generative.selection`) of a
        class-conditional model, or None. Given, whole groups of the cases are held
        out (:func:`~radaug.generative.selection.holdout_in_fold`, seeded by
        ``selection_seed``), the model is fitted on the rest and ends with the weights
        of its best-scored step (``model.selection`` records the step and the curve).
    selection_seed
        Seeds the holdout and the latent codes of every evaluation.
    **fit_kwargs
        Passed to :meth:`GenerativeModel.fit` (``steps``, ``seed``, ``checkpoint_path``, ...).

    Returns
    -------
    losses, training_input
        The loss log of ``fit`` and the training-input record
        (:func:`training_input_table`; with ``selection`` a ``role`` column says
        whether a case was fitted on, ``fit``, or held out for selection, ``selection``).

    Raises
    ------
    radaug.errors.LeakageError
        Before any training, if a case or patch is, or is linked to, a test case of the fold.
    """
    check_training_input(folds, cases, repeat, fold, case_ids)
    training_input = training_input_table(case_ids, label_names, images, masks)
    check_training_patches(training_input, folds, cases, repeat, fold)
    if selection is None:
        return model.fit(images, masks, labels, **fit_kwargs), training_input
    fit, held = holdout_in_fold(folds, repeat, fold, case_ids, label_names, selection.holdout, selection_seed)
    training_input["role"] = np.where(np.isin(np.arange(len(case_ids)), held), "selection", "fit")
    chooser = Selection(selection, holdout_images=images[held], holdout_masks=masks[held],
                        holdout_labels=np.asarray(labels)[held], fit_images=images[fit], fit_masks=masks[fit],
                        fit_labels=np.asarray(labels)[fit], seed=selection_seed)
    losses = model.fit(images[fit], masks[fit], np.asarray(labels)[fit], selection=chooser, **fit_kwargs)
    return losses, training_input


def selection_seed(study_seed: int, repeat: int, fold: int) -> int:
    """The seed of a fold's selection holdout and evaluation samples (not the training seed's stream)."""
    return stream_seed("selection", study_seed, repeat=repeat, fold=fold)


def generator_config_sha256(model: str, hyperparams: dict, training: dict) -> str:
    """sha256 of the canonical JSON of a generator's name, hyperparameters and training options.

    Recorded with every synthetic sample: samples from generators configured alike
    share it, whatever the checkpoint bytes.
    """
    return sha256_bytes(canonical_json({"model": model, "hyperparams": hyperparams, "training": training}).encode())


def loss_curve_png(losses: pd.DataFrame, title: str) -> bytes:
    """A PNG of every loss column of a loss log against ``step`` (deterministic bytes).

    ``images_per_s`` (timing, not a loss) is left out.
    """
    from matplotlib.figure import Figure  # lazy: matplotlib is only needed for plots

    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.subplots()
    for column in losses.columns:
        if column not in ("step", "images_per_s"):
            ax.plot(losses["step"], losses[column], label=column, linewidth=1.2)
    ax.set(title=title, xlabel="training step", ylabel="mean over logging interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()
