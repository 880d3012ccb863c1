"""PyRadiomics features of one fold's classical-augmentation set (same table format as the synthetic arms)."""

from radaug.errors import RadaugError
from radaug.features import META_COLUMNS, extract_patches, make_extractor, parse_spacing
from radaug.io import load_arrays, read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    samples = read_table(smk.input.table)
    arrays = load_arrays(smk.input.samples)
    index = read_table(smk.input.index)
    # case_id is the parent case, so evaluation's leakage checks apply to every augmented row.
    meta = samples[["sample_id", "case_id", "repeat", "fold", "label"]].assign(
        source="augmented", arm="classical")[list(META_COLUMNS)]
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], parse_spacing(index["spacing"].iloc[0]), meta)
    write_csv(smk.output.failures, failures)
    if len(failures) > smk.params.max_failed:
        raise RadaugError(
            f"feature extraction failed for {len(failures)} augmented sample(s) of {smk.wildcards.fold}, more "
            f"than study.max_failed_samples = {smk.params.max_failed}; reasons in {smk.output.failures}"
        )
    write_csv(smk.output.features, features)


run_job(snakemake, main)  # noqa: F821
