"""Features of n perturbations of every real case of one batch (robustness analysis).

With per-fold histogram standardisation (preprocess.normalisation: nyul) every fold's
standardised patches are perturbed (the same draws) and measured, rows marked with the fold.
"""
import pandas as pd

from radaug.augment import build_perturbation, perturb_case, perturbation_seed
from radaug.errors import RadaugError
from radaug.features import concat_extractions, extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import log, run_job
from radaug.standardise import fold_images
from radaug.validate.invariance import perturbation_sample_id


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    opts = smk.params.options
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    per_fold = "folds" in smk.input.keys()  # inputs of the rule only with per-fold standardisation
    index = read_table(smk.input.index) if per_fold else cases
    folds = read_table(smk.input.folds) if per_fold else None
    extractor = make_extractor(smk.input.params_file)
    parts = [perturbed_features(smk, extractor, cases, fold_patches, arrays["mask"], spacing, repeat, fold)
             for repeat, fold, fold_patches in fold_images(index, folds, arrays["case_id"], arrays["image"])]
    log.info("%d cases x %d perturbations x %d fold(s)", len(cases), opts["n"], len(parts))
    features, failures = concat_extractions(parts)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what="perturbed sample(s)",
        fix="Raise study.max_failed_samples to tolerate them, or narrow the perturbation ranges (perturbation.*).",
    )


def perturbed_features(smk, extractor, cases, patches, patch_masks, spacing, repeat, fold):
    """Features of every case's perturbations, for one fold's patches (repeat, fold None: the study's)."""
    opts = smk.params.options
    images, masks, meta = [], [], []
    for i, case in enumerate(cases.itertuples(index=False)):
        chain = build_perturbation(opts, case.modality, case.normalisation)
        try:
            results = perturb_case(chain, patches[i], patch_masks[i], spacing, n=opts["n"],
                                   seed=perturbation_seed(smk.params.seed, case.case_id))
        except (RuntimeError, ValueError) as exc:
            raise RadaugError(f"case '{case.case_id}': perturbation failed: {exc}") from exc
        for j, result in enumerate(results):
            images.append(result.image)
            masks.append(result.mask)
            meta.append({"sample_id": perturbation_sample_id(case.case_id, j), "case_id": case.case_id,
                         "source": "perturbed", "arm": "perturbation",
                         "repeat": pd.NA if repeat is None else repeat, "fold": pd.NA if fold is None else fold,
                         "label": case.label})
    return extract_patches(extractor, images, masks, spacing, pd.DataFrame(meta))


run_job(snakemake, main)  # noqa: F821
