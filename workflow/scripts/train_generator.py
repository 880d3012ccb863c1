"""Train one generative model on one fold's training cases only (in the fold's standardised
intensities with preprocess.normalisation: nyul). With generative.selection.enabled a
class-conditional model is fitted on part of them, scored on a held-out part every N steps,
and keeps its best step's weights (radaug.generative.selection); the curve goes to selection.csv."""
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from radaug.generative import TRANSLATION_MODELS, get_model, mask_conditioned
from radaug.generative.cyclegan import domain_training_set
from radaug.generative.selection import SelectionOptions, curve_table
from radaug.generative.training import fit_in_fold, loss_curve_png, selection_seed, training_seed
from radaug.io import read_table, write_bytes, write_csv
from radaug.preprocess import load_patches
from radaug.snakemake_adapter import log, run_job
from radaug.splits import fold_cases, parse_fold_key
from radaug.standardise import content_index, for_fold, scale_record


def main(smk):
    # The configured count, not smk.threads (which Snakemake lowers to --cores): results on CPU
    # depend on the thread count, and the same config must give the same bytes.
    torch.set_num_threads(smk.params.training["threads"])
    repeat, fold = parse_fold_key(smk.wildcards.fold)
    index = read_table(smk.input.index)
    folds = read_table(smk.input.folds)
    train = fold_cases(folds, repeat, fold, "train")
    classes = smk.params.classes
    labels = np.array([classes.index(x) for x in train["label"]], dtype=np.int64)
    if smk.wildcards.model in TRANSLATION_MODELS:
        # Translation models learn from the fold-train cases of their two domains; the codes replace the labels.
        train = train.merge(index[["case_id", "domain"]], on="case_id", how="left", validate="one_to_one")
        hyper = smk.params.hyperparams
        train, labels = domain_training_set(train, hyper["source_domain"], hyper["target_domain"])
    standardisation = for_fold(index, folds, repeat, fold)  # None unless preprocess.normalisation: nyul
    ids, images, masks = load_patches(smk.input.patches, list(train["case_id"]), standardisation=standardisation)
    if standardisation is not None:
        log.info("histogram standardisation %s", scale_record(standardisation))
        # the training-patch check compares standardised training patches with standardised test patches
        index = content_index(index, *load_patches(smk.input.patches, list(index["case_id"]),
                                                   standardisation=standardisation))
    opts = smk.params.training
    mode = {} if smk.wildcards.model in TRANSLATION_MODELS else {
        "condition_on_mask": mask_conditioned(smk.params.conditioning, images.ndim - 1)}
    model = get_model(smk.wildcards.model, patch_size=images.shape[-1], n_classes=len(classes),
                      spatial_dims=images.ndim - 1, **mode, **smk.params.hyperparams)
    # Work-in-progress checkpoint beside the output: a killed job resumes from it when rerun.
    partial = Path(smk.output.checkpoint).with_name("checkpoint.partial.pt")
    selection = None
    if "selection" in opts and smk.wildcards.model not in TRANSLATION_MODELS:
        selection = SelectionOptions.from_config(opts["selection"])
    losses, training_input = fit_in_fold(
        model, folds=folds, cases=index, repeat=repeat, fold=fold, case_ids=ids, images=images, masks=masks,
        labels=labels, label_names=list(train["label"]), selection=selection,
        selection_seed=selection_seed(smk.params.seed, repeat, fold), steps=opts["steps"], batch_size=opts["batch_size"],
        seed=training_seed(smk.params.seed, repeat, fold), device=opts["device"], checkpoint_path=partial,
        checkpoint_every=opts["checkpoint_every"], log_every=opts["log_every"], log=log.info)
    model.save(smk.output.checkpoint)
    partial.unlink(missing_ok=True)
    # The training-input record: every case the model saw, with the content hash of its patch.
    write_csv(smk.output.training_input, training_input)
    # Throughput is in the job log; the hashed loss table keeps only deterministic values.
    write_csv(smk.output.losses, losses.drop(columns="images_per_s"))
    write_bytes(smk.output.losses_plot, loss_curve_png(losses, f"{smk.wildcards.model}, fold {smk.wildcards.fold}"))
    if "selection" in smk.output.keys():
        names = classes if smk.wildcards.model not in TRANSLATION_MODELS else []
        # a translation model is not selected: its curve has no rows
        curve = curve_table(model.selection, names) if model.selection else pd.DataFrame(columns=["step"])
        write_csv(smk.output.selection, curve)
        if model.selection:
            log.info("selected step %s of %s (%s)", model.selected_step, model.step, model.selection["metric"])


run_job(snakemake, main)  # noqa: F821
