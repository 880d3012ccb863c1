"""PyRadiomics features of one fold's synthetic set."""

from radaug.features import META_COLUMNS, extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import run_job


def main(smk):
    samples = read_table(smk.input.table)
    arrays = load_arrays(smk.input.samples)
    index = read_table(smk.input.index)
    # A translated sample names its parent case, so the evaluation's leakage checks see it.
    parents = samples["parent_case_id"].fillna("") if "parent_case_id" in samples else ""
    meta = samples[["sample_id", "repeat", "fold", "label"]].assign(
        case_id=parents, source="synthetic", arm=smk.wildcards.model)[list(META_COLUMNS)]
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], parse_spacing(index["spacing"].iloc[0]), meta,
                                         threads=smk.threads)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what=f"synthetic sample(s) of {smk.wildcards.model} {smk.wildcards.fold}",
        fix="Raise study.max_failed_samples to tolerate them, or check the generator's samples (degenerate masks).",
    )


run_job(snakemake, main)  # noqa: F821
