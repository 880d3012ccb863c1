"""Features of n perturbations of every real case of one batch (robustness analysis;
radaug.augment.perturbation.batch_perturbed_features).

With per-fold histogram standardisation (preprocess.normalisation: nyul) every fold's
standardised patches are perturbed (the same draws) and measured, rows marked with the fold.
"""
from radaug.augment.perturbation import batch_perturbed_features
from radaug.features import make_extractor, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import run_job


def main(smk):
    cases = read_table(smk.input.table)
    per_fold = "folds" in smk.input.keys()  # inputs of the rule only with per-fold standardisation
    features, failures = batch_perturbed_features(
        make_extractor(smk.input.params_file), cases, load_arrays(smk.input.patches),
        index=read_table(smk.input.index) if per_fold else cases,
        folds=read_table(smk.input.folds) if per_fold else None, options=smk.params.options, seed=smk.params.seed)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what="perturbed sample(s)",
        fix="Raise study.max_failed_samples to tolerate them, or narrow the perturbation ranges (perturbation.*).",
    )


run_job(snakemake, main)  # noqa: F821
