"""Sample one fold's synthetic set from a trained model, with rebalancing quotas (radaug.generative.arm.sample_fold).

Besides the samples and their table, writes the fold's sampling record
(radaug.sampling.SAMPLING_COLUMNS: per class requested, accepted, drawn, rejected
per reason). With sampling.on_shortfall: record a generator that cannot fill a
quota keeps what it has and the record says so; stop raises SamplingError.
"""
import torch

from radaug.generative.arm import sample_fold
from radaug.io import read_table, save_arrays, write_csv
from radaug.snakemake_adapter import run_job


def main(smk):
    # The rule's thread count (1): torch would otherwise start one thread per core in each of the
    # sampling jobs Snakemake runs in parallel, and CPU results would depend on the machine.
    torch.set_num_threads(smk.threads)
    result = sample_fold(
        smk.input.checkpoint, index=read_table(smk.input.index), folds=read_table(smk.input.folds),
        patches=smk.input.patches, fold=smk.wildcards.fold, classes=smk.params.classes,
        sampling=smk.params.sampling, training=smk.params.training, shape_model=smk.params.shape_model,
        augmentation=smk.params.augmentation, seed=smk.params.seed)
    save_arrays(smk.output.samples, **result.arrays)
    write_csv(smk.output.table, result.table)
    write_csv(smk.output.sampling, result.sampling)


run_job(snakemake, main)  # noqa: F821
