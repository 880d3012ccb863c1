"""Train one generative model on one fold's training cases only (radaug.generative.fold_training.train_fold; in the
fold's standardised intensities with preprocess.normalisation: nyul). With generative.selection.enabled a
class-conditional model is fitted on part of them, scored on a held-out part every N steps,
and keeps its best step's weights (radaug.generative.selection); the curve goes to selection.csv."""
from pathlib import Path

import torch

from radaug.generative.fold_training import train_fold
from radaug.io import read_table, write_bytes, write_csv
from radaug.snakemake_adapter import run_job


def main(smk):
    # The configured count, not smk.threads (which Snakemake lowers to --cores): results on CPU
    # depend on the thread count, and the same config must give the same bytes.
    torch.set_num_threads(smk.params.training["threads"])
    # Work-in-progress checkpoint beside the output: a killed job resumes from it when rerun.
    partial = Path(smk.output.checkpoint).with_name("checkpoint.partial.pt")
    result = train_fold(
        smk.wildcards.model, index=read_table(smk.input.index, "case_index"), folds=read_table(smk.input.folds, "folds"),
        patches=smk.input.patches, fold=smk.wildcards.fold, classes=smk.params.classes,
        hyperparams=smk.params.hyperparams, conditioning=smk.params.conditioning, training=smk.params.training,
        seed=smk.params.seed, checkpoint_path=partial)
    result.model.save(smk.output.checkpoint)
    partial.unlink(missing_ok=True)
    write_csv(smk.output.training_input, result.training_input)
    write_csv(smk.output.losses, result.losses)
    write_bytes(smk.output.losses_plot, result.losses_png)
    if "selection" in smk.output.keys():  # generative.selection.enabled
        write_csv(smk.output.selection, result.curve)


run_job(snakemake, main)  # noqa: F821
