"""Train one generative model on one fold's training cases only."""
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from radaug.generative import TRANSLATION_MODELS, get_model
from radaug.generative.cyclegan import domain_training_set
from radaug.io import read_table, sha256_array, write_csv
from radaug.preprocess import load_patches
from radaug.provenance import log, run_job
from radaug.splits import check_training_input, fold_cases, parse_fold_key


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
    check_training_input(folds, index, repeat, fold, train["case_id"])
    ids, images, masks = load_patches(smk.input.patches, list(train["case_id"]))
    # The training-input record: every case the model saw, with the content hash of its patch.
    write_csv(smk.output.training_input, pd.DataFrame({
        "case_id": ids, "label": train["label"],
        "patch_sha256": [sha256_array(np.stack([i, m.astype(np.float32)])) for i, m in zip(images, masks)],
    }))
    opts = smk.params.training
    model = get_model(smk.wildcards.model, patch_size=images.shape[-1], n_classes=len(classes),
                      **smk.params.hyperparams)
    # Work-in-progress checkpoint beside the output: a killed job resumes from it when rerun.
    partial = Path(smk.output.checkpoint).with_name("checkpoint.partial.pt")
    seed = int(np.random.SeedSequence([smk.params.seed, repeat, fold]).generate_state(1)[0])
    losses = model.fit(images, masks, labels, steps=opts["steps"], batch_size=opts["batch_size"], seed=seed,
                       device=opts["device"], checkpoint_path=partial, checkpoint_every=opts["checkpoint_every"],
                       log=log.info)
    model.save(smk.output.checkpoint)
    partial.unlink(missing_ok=True)
    # Throughput is in the job log; the hashed loss table keeps only deterministic values.
    write_csv(smk.output.losses, losses.drop(columns="images_per_s"))


run_job(snakemake, main)  # noqa: F821
