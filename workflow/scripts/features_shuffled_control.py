"""PyRadiomics features of the voxel-shuffled version of every real case of one batch.

The image-space negative control of validation (control_negative_shuffle): each case's
ROI intensities are permuted once per study (seed from study.seed and the case id, see
radaug.validate.controls.shuffled_control_features), so shape and first-order histogram
are kept and texture is destroyed; validate_controls picks the fold's training cases.
With per-fold standardisation (preprocess.normalisation: nyul) the shuffled patches are
measured once per fold, in the fold's intensities, as the real ones.
"""
from radaug.features import concat_extractions, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import run_job
from radaug.standardise import fold_images
from radaug.validate.controls import shuffled_control_features


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    per_fold = "folds" in smk.input.keys()  # inputs of the rule only with per-fold standardisation
    index = read_table(smk.input.index) if per_fold else cases
    folds = read_table(smk.input.folds) if per_fold else None
    labels = dict(zip(cases["case_id"].astype(str), cases["label"]))
    case_ids = [str(c) for c in arrays["case_id"]]
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    extractor = make_extractor(smk.input.params_file)
    parts = [shuffled_control_features(extractor, case_ids, [labels[c] for c in case_ids], images, arrays["mask"],
                                       spacing, smk.params.seed, threads=smk.threads, repeat=repeat, fold=fold)
             for repeat, fold, images in fold_images(index, folds, case_ids, arrays["image"])]
    features, failures = concat_extractions(parts)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what=f"voxel-shuffled control case(s) of batch {smk.wildcards.batch}",
        fix=("The ROI is the real case's, which extracted fine, so this points at PyRadiomics settings "
             "that depend on texture (features.params)."),
    )


run_job(snakemake, main)  # noqa: F821
