"""PyRadiomics features of one batch of real cases: once per study, or once per fold when
intensities are standardised per fold (preprocess.normalisation: nyul; repeat and fold then say which)."""
import pandas as pd

from radaug.features import concat_extractions, extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import run_job
from radaug.standardise import fold_images


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    per_fold = "folds" in smk.input.keys()  # inputs of the rule only with per-fold standardisation
    index = read_table(smk.input.index) if per_fold else cases
    folds = read_table(smk.input.folds) if per_fold else None
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    extractor = make_extractor(smk.input.params_file)
    parts = []
    for repeat, fold, images in fold_images(index, folds, arrays["case_id"], arrays["image"]):
        meta = pd.DataFrame({"sample_id": cases["case_id"], "case_id": cases["case_id"], "source": "real",
                             "arm": "real", "repeat": pd.NA if repeat is None else repeat,
                             "fold": pd.NA if fold is None else fold, "label": cases["label"]})
        parts.append(extract_patches(extractor, images, arrays["mask"], spacing, meta, threads=smk.threads))
    features, failures = concat_extractions(parts)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what="real case(s)",
        fix="Check the listed cases' masks and images (validate the manifest), or raise study.max_failed_samples.",
    )


run_job(snakemake, main)  # noqa: F821
