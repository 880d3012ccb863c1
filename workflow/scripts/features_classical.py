"""PyRadiomics features of one fold's classical-augmentation set (same table format as the synthetic arms)."""

from radaug.features import META_COLUMNS, extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.snakemake_adapter import run_job


def main(smk):
    samples = read_table(smk.input.table)
    arrays = load_arrays(smk.input.samples)
    index = read_table(smk.input.index)
    # case_id is the parent case, so evaluation's leakage checks apply to every augmented row.
    meta = samples[["sample_id", "case_id", "repeat", "fold", "label"]].assign(
        source="augmented", arm="classical")[list(META_COLUMNS)]
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], parse_spacing(index["spacing"].iloc[0]), meta)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what=f"augmented sample(s) of {smk.wildcards.fold}",
        fix="Raise study.max_failed_samples to tolerate them, or narrow the augmentation ranges that empty the ROI.",
    )


run_job(snakemake, main)  # noqa: F821
